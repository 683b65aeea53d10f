/**
 * The seam between the inbound server and whatever carries a connection onward. The server
 * asks an Outbound for a connection (or a BIND) to a destination and never dials itself, so a
 * chain of upstream proxies plugs in exactly where the direct dialer stands.
 */
import type { OnReadOpts, Socket } from 'node:net';
import type { Address } from '../protocol/address.ts';
import { Rep, type RepCode } from '../protocol/socks5.ts';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** How a socket we open reads, when it goes straight into the relay (server/relay.ts). */
export interface SocketReads {
  readonly onread: OnReadOpts;
  /** Called with the socket as soon as it exists. */
  adopt(socket: Socket): void;
}

export interface OutboundOptions {
  /** Aborted when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
  /**
   * For a socket that will be relayed as it is: read into the relay's buffers. Only an exit
   * that hands over the very socket it opened (direct) uses it; a chain speaks to its hops
   * over that socket first and ignores it.
   */
  readonly reads?: () => SocketReads;
  /**
   * Access control on resolved addresses, for exits that resolve here (direct): given every
   * address the name resolved to, returns the ones that may be connected to, or throws an
   * OutboundError (REP 02). The exit then connects to exactly those, never resolving again.
   */
  readonly vetAddresses?: (addresses: readonly string[]) => readonly string[];
}

export interface Connected {
  readonly socket: Socket;
  /** What the client is told as BND.ADDR/BND.PORT. */
  readonly bound: Endpoint;
  /** The address actually connected to (after resolution), for logs and access checks. */
  readonly remote: Endpoint;
  /**
   * The label of the outbound that carried it, when that may differ from the one asked
   * (a route that failed over to its fallback).
   */
  readonly via?: string;
}

export interface PendingBind {
  /** Where the peer is expected to connect: the first BIND reply. */
  readonly bound: Endpoint;
  /** Resolves when the peer connects: the second BIND reply, then relaying. */
  readonly accepted: Promise<{ socket: Socket; peer: Endpoint }>;
  /** Gives up waiting (client left, or timeout). */
  cancel(): void;
}

/** A UDP association opened at an upstream SOCKS5 server, which relays the datagrams on. */
export interface UpstreamUdpAssociation {
  readonly kind: 'upstream';
  /** The upstream's relay: where our datagrams go, and the only source accepted back. */
  readonly relay: Endpoint;
  /**
   * The TCP control connection to the upstream, paused, with its errors already handled. The
   * upstream keeps the association exactly as long as it is open: destroy it to end it; its
   * 'close' means the upstream ended it.
   */
  readonly control: Socket;
  /** The outbound that carried it (a failover route names the way it actually went). */
  readonly via: string;
}

/** The answer of a route that failed over to the direct exit: datagrams go out from here. */
export interface DirectUdpAssociation {
  readonly kind: 'direct';
  readonly via: string;
}

export type UdpAssociation = UpstreamUdpAssociation | DirectUdpAssociation;

export interface Outbound {
  /** A short label for logs: "direct", "chain corp>abroad". */
  readonly label: string;
  connect(destination: Address, options: OutboundOptions): Promise<Connected>;
  bind(destination: Address, listenOn: Endpoint, options: OutboundOptions): Promise<PendingBind>;
  /**
   * Opens a UDP association for a SOCKS5 UDP ASSOCIATE. Outbounds without it cannot carry UDP,
   * except the direct exit, whose datagrams the server relays itself. Rejects with an
   * OutboundError (failure 'unsupported', REP 07, for a route UDP cannot take).
   */
  udpAssociate?(options: OutboundOptions): Promise<UdpAssociation>;
}

export type OutboundFailure =
  | 'refused'
  | 'timeout'
  | 'unreachable'
  | 'not-found'
  | 'auth-failed'
  | 'rejected'
  | 'protocol'
  | 'aborted'
  | 'denied'
  | 'unsupported'
  | 'other';

/** A failure to reach a destination, carrying the one REP the client will see. */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  readonly rep: RepCode;
  readonly failure: OutboundFailure;
  /** 1-based hop number in a chain; undefined for the direct exit. */
  readonly hop: number | undefined;

  constructor(
    message: string,
    rep: RepCode,
    failure: OutboundFailure,
    hop?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.rep = rep;
    this.failure = failure;
    this.hop = hop;
  }
}

/**
 * The refusal for a UDP ASSOCIATE that a route cannot carry: a UDP association can be opened at
 * one SOCKS5 server, but no proxy protocol forwards one through another proxy's TCP tunnel.
 */
export function udpNotSupported(why: string): OutboundError {
  return new OutboundError(
    `${why}; UDP can only go through a single SOCKS5 upstream`,
    Rep.COMMAND_NOT_SUPPORTED,
    'unsupported',
  );
}
