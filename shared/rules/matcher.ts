// The rule matcher: compiles an ordered rule list once, then decides each connection.
//
// Index design. Semantics are "the enabled rule with the lowest index whose conditions all hold",
// and decide() computes exactly that without looping over every rule:
//
// - Host names are looked up in two hash maps built at compile time. `exact` is keyed by the
//   normalised host; `domain` is keyed by the base of '*.base' patterns and probed with each label
//   suffix of the host ('a.b.example.com', 'b.example.com', 'example.com', 'com'), which is how
//   a domain pattern covers the base and all its subdomains. Each key holds every rule that
//   indexed it, in ascending rule order, so the first entry whose port condition also holds is
//   the best candidate for that key; entries are never collapsed to one "lowest index" because
//   a rule whose host matches but whose port does not must fall through to later rules.
// - Rules that cannot be indexed (suffix and regex patterns, ports-only rules, catch-alls) sit in
//   a scan list in rule order. The scan stops at the first match or as soon as it reaches a rule
//   whose index is not below the best indexed candidate, so first-match-wins is preserved while
//   the usual case (an indexed hit early in the list) scans little or nothing.
// - A rule mixing indexable and scanned patterns appears in both structures, each with only its
//   own patterns: the host condition is an OR over patterns, so either path proves it.
// - IP-literal destinations never match host patterns (see types.ts), so they use a separate
//   scan list holding only rules without a hosts condition: CIDR, ports-only and catch-alls.
//
// Decisions are built and frozen at compile time, so decide() allocates only the host's
// lowercase copy and its suffix slices.

import { type Cidr, cidrContains, type IpAddress, parseCidr, parseHostIp } from './ip.ts';
import type {
  Decision,
  DefaultDecision,
  Destination,
  Rule,
  RuleDecision,
  RuleTarget,
  ValidationError,
} from './types.ts';
import { normalizeHost, REGEX_FLAGS, validateRules, validateTarget } from './validate.ts';

export interface CompiledRuleset {
  /** Length of the rule list that was compiled, disabled rules included. */
  readonly ruleCount: number;
  decide(destination: Destination): Decision;
}

export class RulesValidationError extends Error {
  readonly errors: readonly ValidationError[];

  constructor(errors: readonly ValidationError[]) {
    const shown = errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`);
    const more = errors.length > 5 ? `; and ${errors.length - 5} more` : '';
    super(`invalid rules: ${shown.join('; ')}${more}`);
    this.name = 'RulesValidationError';
    this.errors = errors;
  }
}

interface Entry {
  readonly index: number;
  /** Flattened inclusive [from, to] pairs, or null when the rule has no port condition. */
  readonly ports: readonly number[] | null;
  readonly decision: RuleDecision;
}

interface NameScanEntry extends Entry {
  /** True when the rule has no hosts condition at all. */
  readonly anyHost: boolean;
  readonly suffixes: readonly string[];
  readonly regexes: readonly RegExp[];
}

interface IpScanEntry extends Entry {
  readonly cidrs: readonly Cidr[] | null;
}

function portsMatch(ports: readonly number[] | null, port: number): boolean {
  if (ports === null) return true;
  for (let i = 0; i < ports.length; i += 2) {
    if (port >= ports[i]! && port <= ports[i + 1]!) return true;
  }
  return false;
}

function freezeTarget(target: RuleTarget): Readonly<RuleTarget> {
  return Object.freeze(
    target.kind === 'route' ? { kind: 'route', routeId: target.routeId } : { kind: target.kind },
  );
}

function addToIndex(map: Map<string, Entry[]>, key: string, entry: Entry): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [entry]);
  else if (list[list.length - 1] !== entry) list.push(entry);
}

/** The first entry of `list` (ascending rule order) that beats `bestIndex` and accepts the port. */
function firstPortMatch(list: readonly Entry[] | undefined, port: number, bestIndex: number): Entry | null {
  if (list === undefined) return null;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i]!;
    if (entry.index >= bestIndex) return null;
    if (portsMatch(entry.ports, port)) return entry;
  }
  return null;
}

class Compiled implements CompiledRuleset {
  readonly ruleCount: number;
  private readonly exact = new Map<string, Entry[]>();
  private readonly domain = new Map<string, Entry[]>();
  private readonly nameScan: NameScanEntry[] = [];
  private readonly ipScan: IpScanEntry[] = [];
  private readonly defaultDecision: DefaultDecision;

  constructor(rules: readonly Rule[], defaultTarget: RuleTarget) {
    this.ruleCount = rules.length;
    this.defaultDecision = Object.freeze({ matched: 'default', target: freezeTarget(defaultTarget) });
    for (let index = 0; index < rules.length; index++) {
      const rule = rules[index]!;
      if (!rule.enabled) continue;
      const { hosts, ips, ports } = rule.match;
      const decision: RuleDecision = Object.freeze({
        matched: 'rule',
        ruleId: rule.id,
        ruleIndex: index,
        target: freezeTarget(rule.target),
      });
      const flatPorts =
        ports === undefined ? null : ports.flatMap((p) => (typeof p === 'number' ? [p, p] : [p.from, p.to]));
      const entry: Entry = { index, ports: flatPorts, decision };
      if (hosts === undefined) {
        if (ips === undefined) this.nameScan.push({ ...entry, anyHost: true, suffixes: [], regexes: [] });
        const cidrs =
          ips === undefined
            ? null
            : ips.map((text) => {
                const parsed = parseCidr(text);
                // Unreachable after validation; kept so a bad entry can never silently match.
                if (!parsed.ok)
                  throw new RulesValidationError([
                    { path: `rules[${index}].match.ips`, message: parsed.error },
                  ]);
                return parsed.cidr;
              });
        this.ipScan.push({ ...entry, cidrs });
        continue;
      }
      const suffixes: string[] = [];
      const regexes: RegExp[] = [];
      for (const pattern of hosts) {
        switch (pattern.type) {
          case 'exact':
            addToIndex(this.exact, normalizeHost(pattern.value), entry);
            break;
          case 'domain':
            addToIndex(this.domain, normalizeHost(pattern.value.slice(2)), entry);
            break;
          case 'suffix':
            suffixes.push(normalizeHost(pattern.value));
            break;
          case 'regex':
            regexes.push(new RegExp(pattern.value, REGEX_FLAGS));
            break;
        }
      }
      if (suffixes.length > 0 || regexes.length > 0) {
        this.nameScan.push({ ...entry, anyHost: false, suffixes, regexes });
      }
    }
  }

  decide(destination: Destination): Decision {
    const port = destination.port;
    const ip = parseHostIp(destination.host);
    let best: Entry | null = null;
    let bestIndex = this.ruleCount;

    if (ip !== null) {
      for (const rule of this.ipScan) {
        if (rule.index >= bestIndex) break;
        if (!portsMatch(rule.ports, port)) continue;
        if (rule.cidrs === null || anyCidrContains(rule.cidrs, ip)) {
          best = rule;
          break;
        }
      }
      return best === null ? this.defaultDecision : best.decision;
    }

    const host = normalizeHost(destination.host);
    const exactHit = firstPortMatch(this.exact.get(host), port, bestIndex);
    if (exactHit !== null) {
      best = exactHit;
      bestIndex = exactHit.index;
    }
    for (let from = 0; ; ) {
      const hit = firstPortMatch(this.domain.get(from === 0 ? host : host.slice(from)), port, bestIndex);
      if (hit !== null) {
        best = hit;
        bestIndex = hit.index;
      }
      const dot = host.indexOf('.', from);
      if (dot === -1) break;
      from = dot + 1;
    }
    for (const rule of this.nameScan) {
      if (rule.index >= bestIndex) break;
      if (!portsMatch(rule.ports, port)) continue;
      if (rule.anyHost || matchesScannedHost(rule, host)) {
        best = rule;
        break;
      }
    }
    return best === null ? this.defaultDecision : best.decision;
  }
}

function anyCidrContains(cidrs: readonly Cidr[], ip: IpAddress): boolean {
  for (const cidr of cidrs) if (cidrContains(cidr, ip)) return true;
  return false;
}

function matchesScannedHost(rule: NameScanEntry, host: string): boolean {
  for (const suffix of rule.suffixes) if (host.endsWith(suffix)) return true;
  for (const regex of rule.regexes) if (regex.test(host)) return true;
  return false;
}

/**
 * Validates and compiles an ordered rule list. Throws RulesValidationError (carrying every
 * problem with its field path) when the rules or the default target are invalid, so a bad
 * config is refused as a whole rather than half-applied.
 */
export function compileRules(rules: readonly Rule[], defaultTarget: RuleTarget): CompiledRuleset {
  const errors = [...validateRules(rules), ...validateTarget(defaultTarget, 'defaultTarget')];
  if (errors.length > 0) throw new RulesValidationError(errors);
  return new Compiled(rules, defaultTarget);
}
