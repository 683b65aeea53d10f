import type { RouteHint } from '../../../shared/messages/route-hint.ts';
import type { InboundUser } from '../auth/users.ts';
import type { Outbound, Endpoint } from '../outbound/outbound.ts';
import type { Address } from '../protocol/address.ts';
import type { CommandName } from '../protocol/socks5.ts';

export interface Timeouts {
  /** From accept until the request is answered; a silent client must not hold a slot. */
  readonly handshakeMs: number;
  /** An established tunnel with no bytes either way for this long is closed (0 = never). */
  readonly idleMs: number;
  readonly connectMs: number;
  /** How long BIND waits for the peer to connect. */
  readonly bindMs: number;
  /** A UDP association with no datagrams for this long is closed. */
  readonly udpIdleMs: number;
  /** On shutdown, how long running tunnels may go on before they are cut. */
  readonly shutdownGraceMs: number;
}

export interface Limits {
  readonly maxConnections: number;
  /** Per UDP association: distinct destinations it may send to. */
  readonly maxUdpDestinations: number;
}

export interface ServerSettings {
  readonly listen: Endpoint;
  readonly protocols: { readonly socks4: boolean; readonly socks5: boolean };
  readonly users: readonly InboundUser[];
  /** Sources (IP or CIDR) allowed to use password-less SOCKS4 when users are required. */
  readonly socks4AllowFrom: readonly string[];
  readonly timeouts: Timeouts;
  readonly limits: Limits;
}

export type Protocol = 'socks4' | 'socks4a' | 'socks5';

/** What the policy layer sees of a request; it decides, the server carries it out. */
export interface TunnelRequest {
  readonly id: number;
  readonly protocol: Protocol;
  readonly command: CommandName;
  readonly destination: Address;
  readonly client: Endpoint;
  /** The address the client reached us on. */
  readonly local: Endpoint;
  readonly user: string | undefined;
  /**
   * The target a browser chose by a rule only it can decide (a Firefox container), sent as the
   * SOCKS5 username while no inbound users are configured (shared/messages/route-hint.ts).
   */
  readonly routeHint?: RouteHint | undefined;
}

/** The policy's answer for one destination of a UDP association. */
export type DatagramVerdict =
  | {
      readonly kind: 'allow';
      /**
       * For the direct exit: the one address that was checked, which is where the datagrams
       * go (a name is never resolved again after the check). Absent through an upstream.
       */
      readonly address?: string;
    }
  | { readonly kind: 'deny'; readonly rule: string; readonly reason: string }
  /** The name did not resolve: nothing to judge or send to; worth asking again a bit later. */
  | { readonly kind: 'unresolved'; readonly reason: string };

/**
 * Judges each destination of an allowed UDP association as a CONNECT to it would be judged.
 * The policy layer builds it per association; the relay asks once per destination.
 */
export interface DatagramPolicy {
  /** Datagrams the server sends itself: names are resolved here, once, and the address checked. */
  direct(destination: Address): Promise<DatagramVerdict>;
  /** Datagrams an upstream relays: it resolves names, so they are judged unresolved. */
  upstream(destination: Address): Promise<DatagramVerdict>;
}

export type Dispatch =
  | {
      readonly kind: 'allow';
      readonly outbound: Outbound;
      readonly rule?: string;
      readonly route?: string;
      /** UDP ASSOCIATE only: the per-datagram access check; without it every destination may be used. */
      readonly datagramPolicy?: DatagramPolicy;
    }
  | { readonly kind: 'deny'; readonly reason: string; readonly rule?: string };

export type Dispatcher = (request: TunnelRequest) => Dispatch | Promise<Dispatch>;
