/**
 * A route's answer to "the first hop is down": use the fallback (the direct exit, or another
 * route) for the same request. Only an unreachable first hop fails over; a refusal, an auth
 * failure or anything at a later hop is a real answer from a reachable chain, and going around
 * it would send traffic somewhere the user did not choose for a reason that is not an outage.
 */
import type { Route, Upstream } from '../../../shared/config/schema.ts';
import type { CredentialSource } from '../credentials/credentials.ts';
import type { Address } from '../protocol/address.ts';
import { ChainOutbound, type ChainOptions, type ChainTimeouts } from './chain.ts';
import { DirectOutbound, outboundErrorFrom } from './direct.ts';
import {
  type Connected,
  type Endpoint,
  type Outbound,
  OutboundError,
  type OutboundOptions,
  type PendingBind,
  type UdpAssociation,
  udpNotSupported,
} from './outbound.ts';
import { type UpstreamHealth, isFirstHopDown } from './upstream-health.ts';

export interface FailoverOptions {
  /** A chain; when it is known down (its health), it fails at once and the fallback runs. */
  readonly primary: Outbound;
  /** Undefined: the route fails (onFirstHopDown 'fail'). */
  readonly fallback?: Outbound | undefined;
}

export class FailoverOutbound implements Outbound {
  readonly label: string;
  private readonly primary: Outbound;
  private readonly fallback: Outbound | undefined;

  constructor(options: FailoverOptions) {
    this.primary = options.primary;
    this.fallback = options.fallback;
    this.label = this.fallback ? `${this.primary.label}, else ${this.fallback.label}` : this.primary.label;
  }

  async connect(destination: Address, options: OutboundOptions): Promise<Connected> {
    const { primary, fallback } = this;
    try {
      const connected = await primary.connect(destination, options);
      return { ...connected, via: connected.via ?? primary.label };
    } catch (error) {
      if (!fallback || !isFirstHopDown(error) || options.signal.aborted) throw error;
      try {
        const connected = await fallback.connect(destination, options);
        return { ...connected, via: connected.via ?? fallback.label };
      } catch (fallbackError) {
        throw bothFailed(error, fallback, fallbackError);
      }
    }
  }

  async bind(destination: Address, listenOn: Endpoint, options: OutboundOptions): Promise<PendingBind> {
    const { primary, fallback } = this;
    try {
      return await primary.bind(destination, listenOn, options);
    } catch (error) {
      if (!fallback || !isFirstHopDown(error) || options.signal.aborted) throw error;
      try {
        return await fallback.bind(destination, listenOn, options);
      } catch (fallbackError) {
        throw bothFailed(error, fallback, fallbackError);
      }
    }
  }

  /** As for connect: only an unreachable first hop sends the association to the fallback. */
  async udpAssociate(options: OutboundOptions): Promise<UdpAssociation> {
    const { primary, fallback } = this;
    try {
      return await udpThrough(primary, options);
    } catch (error) {
      if (!fallback || !isFirstHopDown(error) || options.signal.aborted) throw error;
      try {
        return await udpThrough(fallback, options);
      } catch (fallbackError) {
        throw bothFailed(error, fallback, fallbackError);
      }
    }
  }
}

/** The direct exit has no association to open: the server relays its datagrams itself. */
function udpThrough(outbound: Outbound, options: OutboundOptions): Promise<UdpAssociation> {
  if (outbound.udpAssociate) return outbound.udpAssociate(options);
  if (outbound instanceof DirectOutbound) return Promise.resolve({ kind: 'direct', via: outbound.label });
  return Promise.reject(udpNotSupported(`${outbound.label} cannot carry UDP`));
}

/** The fallback's failure decides the REP; the message keeps why the fallback was needed. */
function bothFailed(primary: OutboundError, fallback: Outbound, error: unknown): OutboundError {
  const second = outboundErrorFrom(error, fallback.label);
  return new OutboundError(
    `${primary.message}; then ${fallback.label} failed too: ${second.message}`,
    second.rep,
    second.failure,
    second.hop,
    { cause: second },
  );
}

export interface RouteOutboundInputs {
  readonly routes: readonly Route[];
  readonly upstreams: readonly Upstream[];
  readonly credentials: CredentialSource;
  readonly timeouts: ChainTimeouts;
  /** One for all routes, so that routes sharing a first hop share what is known about it. */
  readonly health: UpstreamHealth;
  /** The exit for onFirstHopDown 'direct'. */
  readonly direct: Outbound;
  readonly resolve?: ChainOptions['resolve'];
}

/**
 * Every route's outbound, wrapped with its fallbacks. Fallbacks are followed through other
 * routes with a visited set: in a cycle (A falls back to B, B to A) the chain of fallbacks
 * stops before it would come back, so A's fallback is B without a fallback of its own.
 */
export function buildRouteOutbounds(inputs: RouteOutboundInputs): Map<string, Outbound> {
  const upstreams = new Map(inputs.upstreams.map((u) => [u.id, u]));
  const routes = new Map(inputs.routes.map((r) => [r.id, r]));
  const chains = new Map(
    inputs.routes.map((route) => [
      route.id,
      new ChainOutbound({
        route,
        upstreams,
        credentials: inputs.credentials,
        timeouts: inputs.timeouts,
        health: inputs.health,
        ...(inputs.resolve ? { resolve: inputs.resolve } : {}),
      }),
    ]),
  );

  const withFallbacks = (routeId: string, visited: ReadonlySet<string>): Outbound => {
    const route = routes.get(routeId)!;
    const chain = chains.get(routeId)!;
    const policy = route.onFirstHopDown;
    if (policy === 'fail') return chain;
    if (policy === 'direct') return new FailoverOutbound({ primary: chain, fallback: inputs.direct });
    if (!routes.has(policy.route)) {
      throw new Error(`route '${routeId}' falls back to route '${policy.route}', which does not exist`);
    }
    if (visited.has(policy.route)) return chain;
    const fallback = withFallbacks(policy.route, new Set([...visited, policy.route]));
    return new FailoverOutbound({ primary: chain, fallback });
  };

  return new Map(inputs.routes.map((route) => [route.id, withFallbacks(route.id, new Set([route.id]))]));
}
