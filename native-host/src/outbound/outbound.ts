/**
 * The seam between the inbound server and whatever carries a connection onward. The server
 * asks an Outbound for a connection (or a BIND) to a destination and never dials itself, so a
 * chain of upstream proxies plugs in exactly where the direct dialer stands.
 */
import type { Socket } from 'node:net';
import type { Address } from '../protocol/address.ts';
import type { RepCode } from '../protocol/socks5.ts';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface OutboundOptions {
  /** Aborted when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
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

export interface Outbound {
  /** A short label for logs: "direct", "chain corp>abroad". */
  readonly label: string;
  connect(destination: Address, options: OutboundOptions): Promise<Connected>;
  bind(destination: Address, listenOn: Endpoint, options: OutboundOptions): Promise<PendingBind>;
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
