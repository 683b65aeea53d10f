// The rule matcher: compiles an ordered rule list once, then decides each connection.
//
// Index design. Semantics are "the enabled rule with the lowest index whose conditions all hold",
// and decide() computes exactly that without looping over every rule:
//
// - Host names are looked up in hash maps built at compile time. `exact` is keyed by the
//   normalised host; `domain` is keyed by the base of '*.base' patterns and probed with each label
//   suffix of the host ('a.b.example.com', 'b.example.com', 'example.com', 'com'), which is how
//   a domain pattern covers the base and all its subdomains.
// - Every key holds all the rules that indexed it, in ascending rule order, and the lookup takes
//   the first one whose remaining condition (ports) also holds. Keys are never collapsed to one
//   "lowest index" because a rule whose host matches but whose port does not must fall through
//   to later rules. Candidates from all lookups are combined by taking the minimum rule index.
// - A suffix pattern with a dot ('ample.com', '.example.com') can only match a host that has the
//   part after the pattern's first dot ('com', 'example.com') as a label suffix, so it is
//   indexed under that part and checked with endsWith during the same label walk. Only dotless
//   suffixes ('m', '-cdn') are scanned.
// - IPv4/IPv6 ranges are indexed per prefix length, keyed by the address shifted right by the
//   host bits: one map lookup per distinct prefix length in the rule list instead of a loop over
//   every range.
// - What cannot be indexed (regexes, dotless suffixes, ports-only rules, catch-alls) sits in a
//   scan list in rule order. The scan stops at the first match or as soon as it reaches a rule
//   whose index is not below the best indexed candidate, so first-match-wins is preserved while
//   an indexed hit early in the list leaves little to scan.
// - A rule mixing pattern kinds appears in several structures, each with only its own patterns:
//   the host condition is an OR over patterns, so any of them proves it.
// - IP-literal destinations never match host patterns (see types.ts), so they consult only the
//   range index and a scan list of rules without a hosts condition.
// - A `contexts` condition (Firefox containers, private windows) is checked next to the ports
//   on each candidate, like them: it never decides where a rule is indexed.
//
// Decisions are built and frozen at compile time, so decide() allocates only the host's
// lowercase copy and its suffix slices, or for an IP literal the parsed address.

import { type Cidr, type IpAddress, parseCidr, parseHostIp } from './ip.ts';
import {
  type Decision,
  type DefaultDecision,
  type Destination,
  PRIVATE_CONTEXT,
  type RequestContext,
  type Rule,
  type RuleDecision,
  type RuleTarget,
  type ValidationError,
} from './types.ts';
import { normalizeHost, REGEX_FLAGS, validateRules, validateTarget } from './validate.ts';

export interface CompiledRuleset {
  /** Length of the rule list that was compiled, disabled rules included. */
  readonly ruleCount: number;
  /**
   * The first enabled rule that matches, else the default. Rules with a `contexts` condition
   * match only when `context` is given and names one of their contexts.
   */
  decide(destination: Destination, context?: RequestContext): Decision;
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
  /** The rule's contexts, or null when it has no contexts condition. */
  readonly contexts: ReadonlySet<string> | null;
  readonly decision: RuleDecision;
}

interface SuffixEntry {
  readonly entry: Entry;
  readonly suffix: string;
}

interface NameScanEntry {
  readonly entry: Entry;
  /** True when the rule has no hosts condition at all. */
  readonly anyHost: boolean;
  readonly suffixes: readonly string[];
  readonly regexes: readonly RegExp[];
}

interface V4Table {
  /** Host bits of this prefix length: the key is the address shifted right by them. */
  readonly shift: number;
  readonly map: Map<number, Entry[]>;
}

interface V6Table {
  readonly shift: bigint;
  readonly map: Map<bigint, Entry[]>;
}

function portsMatch(ports: readonly number[] | null, port: number): boolean {
  if (ports === null) return true;
  for (let i = 0; i < ports.length; i += 2) {
    if (port >= ports[i]! && port <= ports[i + 1]!) return true;
  }
  return false;
}

function contextsMatch(contexts: ReadonlySet<string> | null, context: RequestContext | undefined): boolean {
  if (contexts === null) return true;
  if (context === undefined) return false;
  if (context.private === true && contexts.has(PRIVATE_CONTEXT)) return true;
  return context.cookieStoreId !== undefined && contexts.has(context.cookieStoreId);
}

/** The conditions besides the host or address, which every index leaves to the lookup. */
function accepts(entry: Entry, port: number, context: RequestContext | undefined): boolean {
  return portsMatch(entry.ports, port) && contextsMatch(entry.contexts, context);
}

function freezeTarget(target: RuleTarget): Readonly<RuleTarget> {
  return Object.freeze(
    target.kind === 'route' ? { kind: 'route', routeId: target.routeId } : { kind: target.kind },
  );
}

function addToIndex<K>(map: Map<K, Entry[]>, key: K, entry: Entry): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [entry]);
  else if (list[list.length - 1] !== entry) list.push(entry);
}

/** The first entry of `list` (ascending rule order) that beats `bestIndex` and accepts the port and context. */
function firstPortMatch(
  list: readonly Entry[] | undefined,
  port: number,
  context: RequestContext | undefined,
  bestIndex: number,
): Entry | null {
  if (list === undefined) return null;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i]!;
    if (entry.index >= bestIndex) return null;
    if (accepts(entry, port, context)) return entry;
  }
  return null;
}

function firstSuffixMatch(
  list: readonly SuffixEntry[] | undefined,
  host: string,
  port: number,
  context: RequestContext | undefined,
  bestIndex: number,
): Entry | null {
  if (list === undefined) return null;
  for (let i = 0; i < list.length; i++) {
    const { entry, suffix } = list[i]!;
    if (entry.index >= bestIndex) return null;
    if (host.endsWith(suffix) && accepts(entry, port, context)) return entry;
  }
  return null;
}

function matchesScannedHost(rule: NameScanEntry, host: string): boolean {
  for (const suffix of rule.suffixes) if (host.endsWith(suffix)) return true;
  for (const regex of rule.regexes) if (regex.test(host)) return true;
  return false;
}

function v4Key(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function v6Key(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = 0; i < 16; i += 4) value = (value << 32n) | BigInt(v4Key(bytes.subarray(i, i + 4)));
  return value;
}

class Compiled implements CompiledRuleset {
  readonly ruleCount: number;
  private readonly exact = new Map<string, Entry[]>();
  private readonly domain = new Map<string, Entry[]>();
  /** Suffix patterns containing a dot, keyed by the part after their first dot. */
  private readonly suffix = new Map<string, SuffixEntry[]>();
  private readonly v4Tables: V4Table[] = [];
  private readonly v6Tables: V6Table[] = [];
  private readonly nameScan: NameScanEntry[] = [];
  /** Rules without hosts or ips conditions, the only unindexed ones an IP literal can match. */
  private readonly ipScan: Entry[] = [];
  private readonly defaultDecision: DefaultDecision;

  constructor(rules: readonly Rule[], defaultTarget: RuleTarget) {
    this.ruleCount = rules.length;
    this.defaultDecision = Object.freeze({ matched: 'default', target: freezeTarget(defaultTarget) });
    const v4ByPrefix = new Map<number, V4Table>();
    const v6ByPrefix = new Map<number, V6Table>();
    for (let index = 0; index < rules.length; index++) {
      const rule = rules[index]!;
      if (!rule.enabled) continue;
      const { hosts, ips, ports, contexts } = rule.match;
      const decision: RuleDecision = Object.freeze({
        matched: 'rule',
        ruleId: rule.id,
        ruleIndex: index,
        target: freezeTarget(rule.target),
      });
      const flatPorts =
        ports === undefined ? null : ports.flatMap((p) => (typeof p === 'number' ? [p, p] : [p.from, p.to]));
      const entry: Entry = {
        index,
        ports: flatPorts,
        contexts: contexts === undefined ? null : new Set(contexts),
        decision,
      };
      if (ips !== undefined) {
        for (const text of ips) this.indexCidr(cidrOf(text), entry, v4ByPrefix, v6ByPrefix);
        continue;
      }
      if (hosts === undefined) {
        this.nameScan.push({ entry, anyHost: true, suffixes: [], regexes: [] });
        this.ipScan.push(entry);
        continue;
      }
      const scannedSuffixes: string[] = [];
      const regexes: RegExp[] = [];
      for (const pattern of hosts) {
        switch (pattern.type) {
          case 'exact':
            addToIndex(this.exact, normalizeHost(pattern.value), entry);
            break;
          case 'domain':
            addToIndex(this.domain, normalizeHost(pattern.value.slice(2)), entry);
            break;
          case 'suffix': {
            const suffix = normalizeHost(pattern.value);
            const dot = suffix.indexOf('.');
            if (dot === -1) {
              scannedSuffixes.push(suffix);
            } else {
              const tail = suffix.slice(dot + 1);
              const list = this.suffix.get(tail);
              if (list === undefined) this.suffix.set(tail, [{ entry, suffix }]);
              else list.push({ entry, suffix });
            }
            break;
          }
          case 'regex':
            regexes.push(new RegExp(pattern.value, REGEX_FLAGS));
            break;
        }
      }
      if (scannedSuffixes.length > 0 || regexes.length > 0) {
        this.nameScan.push({ entry, anyHost: false, suffixes: scannedSuffixes, regexes });
      }
    }
    this.v4Tables.push(...v4ByPrefix.values());
    this.v6Tables.push(...v6ByPrefix.values());
  }

  private indexCidr(
    cidr: Cidr,
    entry: Entry,
    v4ByPrefix: Map<number, V4Table>,
    v6ByPrefix: Map<number, V6Table>,
  ): void {
    if (cidr.address.version === 4) {
      let table = v4ByPrefix.get(cidr.prefix);
      if (table === undefined) {
        table = { shift: 32 - cidr.prefix, map: new Map() };
        v4ByPrefix.set(cidr.prefix, table);
      }
      // `>>> 32` is `>>> 0` in JavaScript, so a /0 range gets the key 0 explicitly.
      addToIndex(table.map, table.shift === 32 ? 0 : v4Key(cidr.address.bytes) >>> table.shift, entry);
    } else {
      let table = v6ByPrefix.get(cidr.prefix);
      if (table === undefined) {
        table = { shift: BigInt(128 - cidr.prefix), map: new Map() };
        v6ByPrefix.set(cidr.prefix, table);
      }
      addToIndex(table.map, v6Key(cidr.address.bytes) >> table.shift, entry);
    }
  }

  decide(destination: Destination, context?: RequestContext): Decision {
    const port = destination.port;
    // Normalise first so that '10.0.0.1.' is the address it spells, not a name that would dodge
    // every IP rule and still be dialled as 10.0.0.1 by a lenient resolver.
    const host = normalizeHost(destination.host);
    const ip = parseHostIp(host);
    if (ip !== null) return this.decideIp(ip, port, context);

    let best = firstPortMatch(this.exact.get(host), port, context, this.ruleCount);
    let bestIndex = best === null ? this.ruleCount : best.index;
    for (let from = 0; ; ) {
      const key = from === 0 ? host : host.slice(from);
      const domainHit = firstPortMatch(this.domain.get(key), port, context, bestIndex);
      if (domainHit !== null) {
        best = domainHit;
        bestIndex = domainHit.index;
      }
      const suffixHit = firstSuffixMatch(this.suffix.get(key), host, port, context, bestIndex);
      if (suffixHit !== null) {
        best = suffixHit;
        bestIndex = suffixHit.index;
      }
      const dot = host.indexOf('.', from);
      if (dot === -1) break;
      from = dot + 1;
    }
    for (const rule of this.nameScan) {
      if (rule.entry.index >= bestIndex) break;
      if (!accepts(rule.entry, port, context)) continue;
      if (rule.anyHost || matchesScannedHost(rule, host)) {
        best = rule.entry;
        break;
      }
    }
    return best === null ? this.defaultDecision : best.decision;
  }

  private decideIp(ip: IpAddress, port: number, context: RequestContext | undefined): Decision {
    let best: Entry | null = null;
    let bestIndex = this.ruleCount;
    if (ip.version === 4) {
      const key = v4Key(ip.bytes);
      for (const table of this.v4Tables) {
        const hit = firstPortMatch(
          table.map.get(table.shift === 32 ? 0 : key >>> table.shift),
          port,
          context,
          bestIndex,
        );
        if (hit !== null) {
          best = hit;
          bestIndex = hit.index;
        }
      }
    } else if (this.v6Tables.length > 0) {
      const key = v6Key(ip.bytes);
      for (const table of this.v6Tables) {
        const hit = firstPortMatch(table.map.get(key >> table.shift), port, context, bestIndex);
        if (hit !== null) {
          best = hit;
          bestIndex = hit.index;
        }
      }
    }
    for (const entry of this.ipScan) {
      if (entry.index >= bestIndex) break;
      if (accepts(entry, port, context)) {
        best = entry;
        break;
      }
    }
    return best === null ? this.defaultDecision : best.decision;
  }
}

function cidrOf(text: string): Cidr {
  const parsed = parseCidr(text);
  // Unreachable after validation; a range that does not parse must never be dropped silently.
  if (!parsed.ok) throw new RulesValidationError([{ path: 'ips', message: parsed.error }]);
  return parsed.cidr;
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
