/**
 * Which way a destination goes, by the shared rule matcher: the rule that matched, its target,
 * and for a route its hops. Pure: no sockets, so `switchyard route` and the extension's tester
 * answer exactly what the server would do.
 */
import type { Config, Route, Upstream } from '../../../shared/config/schema.ts';
import type { RouteHint } from '../../../shared/messages/route-hint.ts';
import { type CompiledRuleset, compileRules } from '../../../shared/rules/matcher.ts';
import type { RuleTarget } from '../../../shared/rules/types.ts';

export interface RouteDecision {
  /** The matching rule's id, or undefined for the default target. */
  readonly ruleId: string | undefined;
  /** For logs: the rule's name or id, or 'default'. */
  readonly ruleLabel: string;
  readonly target: Readonly<RuleTarget>;
  readonly route: Route | undefined;
  readonly hops: readonly Upstream[];
}

export function upstreamLabel(upstream: Upstream): string {
  return upstream.name ?? upstream.id;
}

export function routeLabel(route: Route, upstreams: ReadonlyMap<string, Upstream>): string {
  const hops = route.hops.map((id) => {
    const u = upstreams.get(id);
    return u ? upstreamLabel(u) : id;
  });
  return `route ${route.name ?? route.id} (${hops.join(' > ')})`;
}

export class Router {
  private readonly ruleset: CompiledRuleset;
  private readonly ruleLabels: readonly string[];
  private readonly ruleIds: readonly string[];
  readonly routes: ReadonlyMap<string, Route>;
  readonly upstreams: ReadonlyMap<string, Upstream>;

  constructor(config: Pick<Config, 'rules' | 'defaultTarget' | 'routes' | 'upstreams'>) {
    this.ruleset = compileRules(config.rules, config.defaultTarget);
    this.ruleLabels = config.rules.map((r) => r.name ?? r.id);
    this.ruleIds = config.rules.map((r) => r.id);
    this.routes = new Map(config.routes.map((r) => [r.id, r]));
    this.upstreams = new Map(config.upstreams.map((u) => [u.id, u]));
  }

  decide(host: string, port: number): RouteDecision {
    const decision = this.ruleset.decide({ host, port });
    const ruleId = decision.matched === 'rule' ? decision.ruleId : undefined;
    const ruleLabel =
      decision.matched === 'rule' ? (this.ruleLabels[decision.ruleIndex] ?? decision.ruleId) : 'default';
    const target = decision.target;
    const route = target.kind === 'route' ? this.routes.get(target.routeId) : undefined;
    const hops = route
      ? route.hops.map((id) => this.upstreams.get(id)).filter((u): u is Upstream => !!u)
      : [];
    return { ruleId, ruleLabel, target, route, hops };
  }

  /**
   * The decision a browser made by a rule only it can apply (shared/messages/route-hint.ts),
   * labelled by that rule when this config has it.
   */
  fromHint(hint: RouteHint): RouteDecision {
    const index = hint.ruleId === undefined ? -1 : this.ruleIds.indexOf(hint.ruleId);
    const ruleLabel = `${index >= 0 ? (this.ruleLabels[index] ?? hint.ruleId) : 'browser rule'} (in the browser)`;
    const ruleId = index >= 0 ? hint.ruleId : undefined;
    if (hint.kind === 'block')
      return { ruleId, ruleLabel, target: { kind: 'block' }, route: undefined, hops: [] };
    const route = this.routes.get(hint.routeId);
    const hops = route
      ? route.hops.map((id) => this.upstreams.get(id)).filter((u): u is Upstream => !!u)
      : [];
    return { ruleId, ruleLabel, target: { kind: 'route', routeId: hint.routeId }, route, hops };
  }

  /** One line for people: `rule corp -> route corp (gw > abroad)`. */
  describe(decision: RouteDecision): string {
    const rule = decision.ruleId === undefined ? 'default target' : `rule ${decision.ruleLabel}`;
    switch (decision.target.kind) {
      case 'direct':
        return `${rule} -> direct`;
      case 'block':
        return `${rule} -> block`;
      case 'route':
        return decision.route
          ? `${rule} -> ${routeLabel(decision.route, this.upstreams)}`
          : `${rule} -> missing route ${decision.target.routeId}`;
    }
  }
}
