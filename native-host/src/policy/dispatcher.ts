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
import type { Dispatch, Dispatcher, TunnelRequest } from '../server/types.ts';
import { type AccessPending, type AccessPolicy, compileAccess } from './access.ts';
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
    const decision = router.decide(request.destination.host, request.destination.port);
    const rule = decision.ruleLabel;
    switch (decision.target.kind) {
      case 'block':
        return { kind: 'deny', rule, reason: `blocked by rule ${rule}` };
      case 'direct':
        return {
          kind: 'allow',
          rule,
          outbound: verdict.kind === 'pending' ? vettedDirect(direct, verdict) : direct,
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
        return { kind: 'allow', rule, route: routeLabel(decision.route, router.upstreams), outbound };
      }
    }
  };
  return { dispatch, router, access, routes, direct, health };
}
