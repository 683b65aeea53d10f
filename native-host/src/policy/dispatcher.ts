/**
 * Policy in front of mechanism: for each request, access control first, then the routing
 * rules, and the result is an Outbound for the server to use (or a denial it answers with
 * REP 02 / CD 91). Built once per config; a reload builds a new one for new connections.
 */
import type { Config } from '../../../shared/config/schema.ts';
import type { CredentialSource } from '../credentials/credentials.ts';
import type { Logger } from '../log/logger.ts';
import { DirectOutbound } from '../outbound/direct.ts';
import { buildRouteOutbounds } from '../outbound/failover.ts';
import { type Outbound, OutboundError } from '../outbound/outbound.ts';
import type { ResolvedAddress } from '../outbound/resolve.ts';
import { UpstreamHealth } from '../outbound/upstream-health.ts';
import { Rep } from '../protocol/socks5.ts';
import type { Address } from '../protocol/address.ts';
import type {
  DatagramPolicy,
  DatagramVerdict,
  Dispatch,
  Dispatcher,
  TunnelRequest,
} from '../server/types.ts';
import {
  type AccessAllow,
  type AccessDeny,
  type AccessPending,
  type AccessPolicy,
  compileAccess,
} from './access.ts';
import type { lookupClientIdentity } from './client-identity.ts';
import { Router, routeLabel } from './router.ts';

export interface DispatcherInputs {
  readonly config: Config;
  readonly credentials: CredentialSource;
  readonly logger: Logger;
  /** Kept across reloads so a known-dead upstream stays known. */
  readonly health?: UpstreamHealth;
  readonly ownerUid?: number | undefined;
  readonly listenIsLoopback: boolean;
  readonly now?: () => Date;
  readonly identity?: typeof lookupClientIdentity;
  /** Replaces the system resolver for the direct exit and first hops (tests). */
  readonly lookup?: (host: string) => Promise<ResolvedAddress[]>;
}

export interface Policy {
  readonly dispatch: Dispatcher;
  readonly router: Router;
  readonly access: AccessPolicy;
  readonly routes: ReadonlyMap<string, Outbound>;
  readonly direct: DirectOutbound;
  readonly health: UpstreamHealth;
}

/** The direct exit for one request whose destination still needs its addresses checked. */
function vettedDirect(direct: DirectOutbound, pending: AccessPending): Outbound {
  const vetAddresses = (addresses: readonly string[]): readonly string[] => {
    const verdict = pending.resolve(addresses);
    if (verdict.kind === 'deny') {
      throw new OutboundError(
        `denied by access rule ${verdict.rule}: ${verdict.reason}`,
        Rep.NOT_ALLOWED,
        'denied',
      );
    }
    return verdict.addresses ?? addresses;
  };
  return {
    label: direct.label,
    connect: (destination, options) => direct.connect(destination, { ...options, vetAddresses }),
    bind: (destination, listenOn, options) => direct.bind(destination, listenOn, options),
  };
}

function datagramDeny(verdict: AccessDeny): DatagramVerdict {
  return { kind: 'deny', rule: `access ${verdict.rule}`, reason: verdict.reason };
}

/**
 * The access rules applied to each destination of one UDP association, the way a CONNECT from
 * the same client would be judged: at the direct exit on the resolved address (resolved once,
 * and that address is the one used), through an upstream on the destination as named.
 */
function datagramPolicyFor(
  access: AccessPolicy,
  direct: DirectOutbound,
  association: TunnelRequest,
): DatagramPolicy {
  return {
    async direct(destination: Address): Promise<DatagramVerdict> {
      const verdict = await access.evaluateDatagram(association, destination);
      if (verdict.kind === 'deny') return datagramDeny(verdict);
      if (verdict.kind === 'allow' && destination.type !== 'domain') {
        return { kind: 'allow', address: destination.host };
      }
      let addresses: string[];
      try {
        addresses = (await direct.resolve(destination)).map((a) => a.address);
      } catch (error) {
        return { kind: 'unresolved', reason: error instanceof Error ? error.message : String(error) };
      }
      const final: AccessAllow | AccessDeny =
        verdict.kind === 'pending' ? verdict.resolve(addresses) : verdict;
      if (final.kind === 'deny') return datagramDeny(final);
      // One destination, one address: replies are matched to what was sent to.
      return { kind: 'allow', address: (final.addresses ?? addresses)[0]! };
    },
    async upstream(destination: Address): Promise<DatagramVerdict> {
      const verdict = await access.evaluateDatagram(association, destination);
      const final = verdict.kind === 'pending' ? verdict.unresolved() : verdict;
      return final.kind === 'deny' ? datagramDeny(final) : { kind: 'allow' };
    },
  };
}

export function buildPolicy(inputs: DispatcherInputs): Policy {
  const { config } = inputs;
  const resolve = {
    hosts: config.hosts,
    ...(inputs.lookup ? { lookup: inputs.lookup } : {}),
  };
  const direct = new DirectOutbound({
    connectTimeoutMs: config.timeouts.connectMs,
    bindTimeoutMs: config.timeouts.bindMs,
    ...resolve,
  });
  const health = inputs.health ?? new UpstreamHealth({ retryMs: config.timeouts.upstreamRetryMs });
  const routes = buildRouteOutbounds({
    routes: config.routes,
    upstreams: config.upstreams,
    credentials: inputs.credentials,
    timeouts: {
      connectMs: config.timeouts.connectMs,
      hopHandshakeMs: config.timeouts.hopHandshakeMs,
      bindMs: config.timeouts.bindMs,
    },
    health,
    direct,
    resolve,
  });
  const router = new Router(config);
  const access = compileAccess(
    {
      access: config.access,
      localClients: config.localClients,
      privateDestinations: config.privateDestinations,
    },
    {
      ownerUid: inputs.ownerUid,
      listenIsLoopback: inputs.listenIsLoopback,
      logger: inputs.logger,
      ...(inputs.now ? { now: inputs.now } : {}),
      ...(inputs.identity ? { identity: inputs.identity } : {}),
    },
  );

  const dispatch = async (request: TunnelRequest): Promise<Dispatch> => {
    const verdict = await access.evaluate(request);
    if (verdict.kind === 'deny')
      return { kind: 'deny', rule: `access ${verdict.rule}`, reason: verdict.reason };
    // The association is judged on its client above; its destinations, one by one, here.
    const udp =
      request.command === 'udp-associate'
        ? { datagramPolicy: datagramPolicyFor(access, direct, request) }
        : {};
    const decision = request.routeHint
      ? router.fromHint(request.routeHint)
      : router.decide(request.destination.host, request.destination.port);
    const rule = decision.ruleLabel;
    if (request.routeHint?.kind === 'route' && !decision.route) {
      // The browser's rules name a route this config does not have (edited since, or another
      // config): refuse rather than guess a way out.
      const reason = `the browser asked for route ${request.routeHint.routeId} (${rule}), which does not exist`;
      inputs.logger.warn('route hint refused', {
        id: request.id,
        dest: `${request.destination.host}:${request.destination.port}`,
        route: request.routeHint.routeId,
        rule,
      });
      return { kind: 'deny', rule, reason };
    }
    switch (decision.target.kind) {
      case 'block':
        return { kind: 'deny', rule, reason: `blocked by rule ${rule}` };
      case 'direct':
        return {
          kind: 'allow',
          rule,
          outbound: verdict.kind === 'pending' ? vettedDirect(direct, verdict) : direct,
          ...udp,
        };
      case 'route': {
        const outbound = routes.get(decision.target.routeId);
        if (!outbound || !decision.route) {
          return {
            kind: 'deny',
            rule,
            reason: `rule ${rule} names route ${decision.target.routeId}, which is missing`,
          };
        }
        if (verdict.kind === 'pending') {
          // The exit resolves the name where we cannot see it: only IP-literal conditions apply.
          const final = verdict.unresolved();
          if (final.kind === 'deny')
            return { kind: 'deny', rule: `access ${final.rule}`, reason: final.reason };
        }
        return {
          kind: 'allow',
          rule,
          route: routeLabel(decision.route, router.upstreams),
          outbound,
          ...udp,
        };
      }
    }
  };
  return { dispatch, router, access, routes, direct, health };
}
