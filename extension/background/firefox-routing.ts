/**
 * Firefox's side of the proxy setting: no PAC script, but proxy.onRequest asking us about every
 * request, answered from the shared rule matcher. That lets Firefox do what a PAC cannot: see
 * the tab's container and private windows (rules with `contexts`), and tell the host which
 * route such a rule chose (shared/messages/route-hint.ts), since the host cannot see either.
 *
 * Matching requests go to the host as SOCKS5 with proxyDNS, so the name travels unresolved and
 * is resolved at the exit; `direct` targets go DIRECT. Fail-closed answers the proxy alone, so a
 * dead host fails the request; fallback adds DIRECT after it, which Firefox tries when the
 * proxy cannot be reached.
 *
 * `routingPlan` (pure) turns the background state into a plan; `proxyInfoFor` (pure) answers one
 * request from it; `RequestRouting` keeps the plan in force for the listener.
 */
import { hintCredentials } from '../../shared/messages/route-hint.ts';
import { type CompiledRuleset, compileRules } from '../../shared/rules/matcher.ts';
import type { RequestContext, Rule } from '../../shared/rules/types.ts';
import type { ProxyControl } from '../shared/ui-protocol.ts';
import type { ApplyOutcome } from './proxy-control.ts';
import type { BackgroundState, ProxyEndpoint } from './state.ts';

/** The host's default listen address, for when it has never told us its own. */
const DEFAULT_ENDPOINT: ProxyEndpoint = { host: '127.0.0.1', port: 1080 };

/** Seconds Firefox skips a proxy it could not reach, before trying it again (fallback only). */
const FAILOVER_SECONDS = 5;

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'http:': 80,
  'ws:': 80,
  'https:': 443,
  'wss:': 443,
  'ftp:': 21,
};

/** What proxy.onRequest passes, as far as routing needs it. */
export interface RequestDetails {
  readonly url: string;
  readonly cookieStoreId?: string;
  readonly incognito?: boolean;
}

export type ProxyInfo =
  | { readonly type: 'direct' }
  | {
      readonly type: 'socks';
      readonly host: string;
      readonly port: number;
      readonly proxyDNS: true;
      readonly username?: string;
      readonly password?: string;
      readonly failoverTimeout?: number;
    };

export type RoutingPlan =
  /** Off: no opinion, so the browser's own proxy settings apply. */
  | { readonly kind: 'off' }
  /** Rules the matcher refuses (the host would too): everything goes to the host meanwhile. */
  | { readonly kind: 'invalid'; readonly message: string; readonly proxy: ProxyEndpoint }
  | {
      readonly kind: 'rules';
      readonly ruleset: CompiledRuleset;
      /** Ids of the rules with a contexts condition: their route must be named to the host. */
      readonly contextRules: ReadonlySet<string>;
      readonly proxy: ProxyEndpoint;
      readonly fallback: boolean;
    };

const ALL_TO_HOST = compileRules([], { kind: 'block' });

export function routingPlan(state: BackgroundState): RoutingPlan {
  if (!state.enabled) return { kind: 'off' };
  const fallback = state.settings.failMode === 'fallback-direct';
  const proxy = state.endpoint ?? DEFAULT_ENDPOINT;
  const { config } = state;
  if (config === undefined) {
    // Nothing of ours survives a restart here (unlike Chrome's PAC): until the host tells us its
    // rules, everything goes to it, which decides correctly, so nothing leaks around it.
    return { kind: 'rules', ruleset: ALL_TO_HOST, contextRules: new Set(), proxy, fallback };
  }
  try {
    const ruleset = compileRules(config.rules, config.defaultTarget);
    return { kind: 'rules', ruleset, contextRules: contextRuleIds(config.rules), proxy, fallback };
  } catch (error) {
    return { kind: 'invalid', message: error instanceof Error ? error.message : String(error), proxy };
  }
}

function contextRuleIds(rules: readonly Rule[]): ReadonlySet<string> {
  return new Set(rules.filter((r) => r.match.contexts !== undefined).map((r) => r.id));
}

/** Host and port the way the matcher (and the host, through SOCKS) sees them; undefined when the URL has none. */
export function destinationOf(url: string): { host: string; port: number } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.hostname === '') return undefined;
  const port = parsed.port === '' ? DEFAULT_PORTS[parsed.protocol] : Number(parsed.port);
  if (port === undefined) return undefined;
  return { host: parsed.hostname, port };
}

export function contextOf(details: RequestDetails): RequestContext {
  return {
    ...(details.cookieStoreId !== undefined ? { cookieStoreId: details.cookieStoreId } : {}),
    private: details.incognito === true,
  };
}

const DIRECT: readonly ProxyInfo[] = Object.freeze([{ type: 'direct' } as const]);

/**
 * The answer for one request: undefined (the browser's own settings) when off; otherwise DIRECT
 * exactly when the rules say direct, else the host, with DIRECT after it in fallback mode.
 * An invalid plan, or a URL the rules cannot judge, goes to the host: it decides correctly.
 */
export function proxyInfoFor(plan: RoutingPlan, details: RequestDetails): readonly ProxyInfo[] | undefined {
  if (plan.kind === 'off') return undefined;
  if (plan.kind === 'invalid') return toHost(plan.proxy, false, undefined);
  const destination = destinationOf(details.url);
  if (destination === undefined) return toHost(plan.proxy, plan.fallback, undefined);
  const decision = plan.ruleset.decide(destination, contextOf(details));
  if (decision.target.kind === 'direct') return DIRECT;
  if (decision.matched === 'rule' && plan.contextRules.has(decision.ruleId)) {
    const credentials = hintCredentials(
      decision.target.kind === 'route'
        ? { kind: 'route', routeId: decision.target.routeId, ruleId: decision.ruleId }
        : { kind: 'block', ruleId: decision.ruleId },
    );
    return toHost(plan.proxy, plan.fallback, credentials);
  }
  return toHost(plan.proxy, plan.fallback, undefined);
}

function toHost(
  proxy: ProxyEndpoint,
  fallback: boolean,
  credentials: { username: string; password: string } | undefined,
): readonly ProxyInfo[] {
  const socks: ProxyInfo = {
    type: 'socks',
    host: proxy.host,
    port: proxy.port,
    proxyDNS: true,
    ...(credentials ?? {}),
    ...(fallback ? { failoverTimeout: FAILOVER_SECONDS } : {}),
  };
  return fallback ? [socks, { type: 'direct' }] : [socks];
}

/**
 * The plan in force, for the proxy.onRequest listener. `apply` takes effect at once (the next
 * request uses it): there is no browser setting to write, and so no other extension's to lose to.
 */
export class RequestRouting {
  private plan: RoutingPlan = { kind: 'off' };

  /** The listener's answer under the plan in force. */
  proxyFor(details: RequestDetails): readonly ProxyInfo[] | undefined {
    return proxyInfoFor(this.plan, details);
  }

  level(): ProxyControl {
    return this.plan.kind === 'off' ? 'controllable_by_this_extension' : 'controlled_by_this_extension';
  }

  apply(state: BackgroundState): ApplyOutcome {
    const plan = routingPlan(state);
    this.plan = plan;
    if (plan.kind === 'invalid') return { kind: 'failed', message: plan.message };
    return { kind: 'applied', level: this.level() };
  }
}
