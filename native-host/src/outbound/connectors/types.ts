/**
 * A connector speaks one upstream protocol's client handshake over a stream it is given. The
 * stream may be a plain TCP connection to the hop or a tunnel through earlier hops; the
 * connector cannot tell and does not care, which is what makes a chain nothing more than
 * connectors applied in turn.
 *
 * Ownership: the caller owns the stream. A connector never destroys or ends it, not even on
 * failure (a failed hop leaves the stream in an unknown state, so the caller should destroy
 * it), and it leaves no listeners behind. On success the stream is paused with any bytes that
 * arrived after the proxy's reply put back in front, so the tunnel loses nothing.
 */
import type { Socket } from 'node:net';
import type { Address } from '../../protocol/address.ts';
import type { Endpoint } from '../outbound.ts';

export type ConnectorProtocol = 'socks5' | 'socks4' | 'socks4a' | 'http';

export interface HopCredentials {
  readonly username: string;
  readonly password: string;
}

export interface ConnectorRequest {
  readonly command: 'connect' | 'bind';
  /** What this hop is asked to reach: the next hop, or the destination at the last hop. */
  readonly target: Address;
  /** SOCKS5 offers username/password only when given; SOCKS4 sends the username as user id. */
  readonly credentials?: HopCredentials;
  readonly signal: AbortSignal;
  /** Bounds the whole handshake, up to and including the (first) reply. */
  readonly timeoutMs: number;
  /** How long BIND waits for the second reply; by default only the signal ends the wait. */
  readonly bindTimeoutMs?: number;
  /** 1-based position in the chain, and a name for people, both used in every error message. */
  readonly hop: number;
  readonly hopName: string;
}

export interface ConnectorResult {
  /**
   * BND.ADDR/BND.PORT of the (first) reply. 0.0.0.0 means "the hop's own address", which only
   * the caller knows (through a tunnel the stream's remote address is hop 1, not this hop).
   * HTTP says nothing, so an HTTP hop always reports 0.0.0.0:0.
   */
  readonly bound: Endpoint;
}

export interface BindResult extends ConnectorResult {
  /**
   * Resolves with the peer named in the second reply, after which the stream carries the
   * peer's bytes. Rejects with an OutboundError (never unhandled if ignored).
   */
  readonly peer: Promise<Endpoint>;
}

export interface Connector {
  readonly protocol: ConnectorProtocol;
  /** Rejects with an OutboundError whose message starts with `hop N (name)`. */
  handshake(stream: Socket, request: ConnectorRequest): Promise<ConnectorResult | BindResult>;
}

export function isBindResult(result: ConnectorResult | BindResult): result is BindResult {
  return 'peer' in result;
}
