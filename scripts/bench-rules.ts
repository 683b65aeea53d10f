// Benchmark of the rule matcher on a large, mixed rule list: compile time and decisions per
// second. Exported for the project's benchmark runner; prints one JSON line when run directly:
//   node --import tsx scripts/bench-rules.ts

import { pathToFileURL } from 'node:url';
import {
  compileRules,
  type Destination,
  type Rule,
  type RuleMatch,
  type RuleTarget,
} from '../shared/rules/index.ts';

export interface RulesBenchResult {
  rules: number;
  compileMs: number;
  decisionsPerSecond: number;
  nsPerDecision: number;
}

const RULE_COUNT = 10_000;
const REGEX_COUNT = 50;
const MEASURE_MS = 1000;
const WARMUP_MS = 150;

/** mulberry32: a seeded generator so every run measures the same rules and hosts. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TLDS = ['com', 'net', 'org', 'io', 'dev', 'example'];

export function buildRules(random: () => number): { rules: Rule[]; exactHosts: string[]; domains: string[] } {
  const int = (n: number): number => Math.floor(random() * n);
  const targets: RuleTarget[] = [
    { kind: 'direct' },
    { kind: 'block' },
    { kind: 'route', routeId: 'corp' },
    { kind: 'route', routeId: 'abroad' },
  ];
  const matches: RuleMatch[] = [];
  const exactHosts: string[] = [];
  const domains: string[] = [];
  for (let i = 0; i < RULE_COUNT - REGEX_COUNT; i++) {
    const site = `site${i}.${TLDS[i % TLDS.length]}`;
    const roll = random();
    let match: RuleMatch;
    if (roll < 0.6) {
      const host = `www${int(3)}.${site}`;
      exactHosts.push(host);
      match = { hosts: [{ type: 'exact', value: host }] };
    } else if (roll < 0.9) {
      domains.push(site);
      match = { hosts: [{ type: 'domain', value: `*.${site}` }] };
    } else if (roll < 0.94) {
      match = { hosts: [{ type: 'suffix', value: `-cdn${i}.${TLDS[i % TLDS.length]}` }] };
    } else if (roll < 0.985) {
      match = { ips: [`10.${int(256)}.${int(256)}.0/24`] };
    } else {
      match = { ips: [`2001:db8:${int(65536).toString(16)}::/48`] };
    }
    if (random() < 0.1) match.ports = [443, { from: 8000, to: 8999 }];
    matches.push(match);
  }
  for (let i = 0; i < REGEX_COUNT; i++) {
    const at = int(matches.length + 1);
    matches.splice(at, 0, {
      hosts: [{ type: 'regex', value: `^(ads?|track)\\d*\\.tracker${i}\\.(com|net)$` }],
    });
  }
  const rules = matches.map(
    (match, i): Rule => ({
      id: `rule-${i}`,
      enabled: random() > 0.02,
      match,
      target: targets[i % targets.length]!,
    }),
  );
  return { rules, exactHosts, domains };
}

export function buildDestinations(
  random: () => number,
  exactHosts: string[],
  domains: string[],
): Destination[] {
  const int = (n: number): number => Math.floor(random() * n);
  const ports = [443, 80, 8080, 22];
  const dests: Destination[] = [];
  for (let i = 0; i < 2000; i++) {
    const roll = random();
    let host: string;
    if (roll < 0.35) host = exactHosts[int(exactHosts.length)]!;
    else if (roll < 0.65) host = `img.static.${domains[int(domains.length)]!}`;
    else if (roll < 0.75) host = `Cache${int(50)}.Edge.Unlisted${int(1000)}.com.`;
    else if (roll < 0.85) host = `x-cdn${int(RULE_COUNT)}.${TLDS[int(TLDS.length)]}`;
    else if (roll < 0.9) host = `ads${int(9)}.tracker${int(60)}.com`;
    else if (roll < 0.97) host = `10.${int(256)}.${int(256)}.${int(256)}`;
    else host = `[2001:db8:${int(65536).toString(16)}::${int(65536).toString(16)}]`;
    dests.push({ host, port: ports[int(ports.length)]! });
  }
  return dests;
}

export async function benchRules(): Promise<RulesBenchResult> {
  const random = prng(0x5717c4);
  const { rules, exactHosts, domains } = buildRules(random);
  const dests = buildDestinations(random, exactHosts, domains);

  const compileStart = performance.now();
  const compiled = compileRules(rules, { kind: 'direct' });
  const compileMs = performance.now() - compileStart;

  // The checksum keeps the optimiser from discarding decisions nobody reads.
  let checksum = 0;
  const pass = (): void => {
    for (const dest of dests) {
      const decision = compiled.decide(dest);
      checksum += decision.matched === 'rule' ? decision.ruleIndex : -1;
    }
  };
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) pass();

  let decisions = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < MEASURE_MS) {
    pass();
    decisions += dests.length;
    elapsed = performance.now() - start;
  }
  if (!Number.isFinite(checksum)) throw new Error('unreachable: checksum overflow');

  const decisionsPerSecond = Math.round((decisions / elapsed) * 1000);
  return {
    rules: rules.length,
    compileMs: Math.round(compileMs * 100) / 100,
    decisionsPerSecond,
    nsPerDecision: Math.round((elapsed * 1e6) / decisions),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchRules()));
}
