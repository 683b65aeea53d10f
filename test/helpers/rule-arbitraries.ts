// fast-check generators for rule lists and the hosts they are asked about, shared by the
// property tests that check the matcher (rules-matcher.property.test.ts) and the PAC script
// (pac-agreement.property.test.ts). Rules and hosts are drawn from a small alphabet of labels so
// that exact, domain, suffix and regex patterns really hit, and port conditions really make host
// matches fall through. Each test brings its own alphabet of targets, CIDRs, patterns and ports.

import fc from 'fast-check';
import type { HostPattern, PortRange, Rule, RuleMatch, RuleTarget } from '../../shared/rules/index.ts';

export const LABELS = ['a', 'b', 'ex', 'com', 'x-y'];
export const REGEXES = [
  '^a\\.',
  'com$',
  'ex',
  '^(a|b)\\.',
  'x-y',
  '^[a-e]+$',
  'COM\\.',
  '^ex(\\.com)?$',
  'b\\.ex\\.',
];
export const SUFFIXES = ['a', 'm', '.com', 'x.com', '.ex', 'b.ex', '-y', 'a.b', 'om'];

export interface RuleAlphabet {
  targets: readonly RuleTarget[];
  cidrs: readonly string[];
  regexes: readonly string[];
  suffixes: readonly string[];
  ports: readonly PortRange[];
  /** The weight of IP-only matches among the match kinds (hosts-only weighs 6). */
  ipsWeight: number;
}

export const nameArb: fc.Arbitrary<string> = fc
  .array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 3 })
  .map((ls) => ls.join('.'));

/** Random case and an optional trailing dot, which must not change any decision. */
export const spelledArb = (name: string): fc.Arbitrary<string> =>
  fc
    .tuple(fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }), fc.boolean())
    .map(
      ([upper, dot]) =>
        [...name].map((ch, i) => (upper[i] ? ch.toUpperCase() : ch)).join('') + (dot ? '.' : ''),
    );

/** Rule lists of up to 25 rules, mostly enabled, ids `rule-0`, `rule-1`, … */
export function ruleListArb(alphabet: RuleAlphabet): fc.Arbitrary<Rule[]> {
  const hostPatternArb: fc.Arbitrary<HostPattern> = fc.oneof(
    {
      weight: 4,
      arbitrary: nameArb.chain(spelledArb).map((value): HostPattern => ({ type: 'exact', value })),
    },
    {
      weight: 4,
      arbitrary: nameArb
        .chain(spelledArb)
        .map((value): HostPattern => ({ type: 'domain', value: `*.${value}` })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(...alphabet.suffixes)
        .map((value): HostPattern => ({ type: 'suffix', value })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...alphabet.regexes).map((value): HostPattern => ({ type: 'regex', value })),
    },
  );

  const portsArb = fc.array(fc.constantFrom(...alphabet.ports), { minLength: 1, maxLength: 3 });
  const hostsArb = fc.array(hostPatternArb, { minLength: 1, maxLength: 3 });
  const ipsArb = fc.array(fc.constantFrom(...alphabet.cidrs), { minLength: 1, maxLength: 3 });

  const matchArb: fc.Arbitrary<RuleMatch> = fc.oneof(
    { weight: 6, arbitrary: hostsArb.map((hosts): RuleMatch => ({ hosts })) },
    {
      weight: 4,
      arbitrary: fc.tuple(hostsArb, portsArb).map(([hosts, ports]): RuleMatch => ({ hosts, ports })),
    },
    { weight: alphabet.ipsWeight, arbitrary: ipsArb.map((ips): RuleMatch => ({ ips })) },
    { weight: 2, arbitrary: fc.tuple(ipsArb, portsArb).map(([ips, ports]): RuleMatch => ({ ips, ports })) },
    { weight: 1, arbitrary: portsArb.map((ports): RuleMatch => ({ ports })) },
    { weight: 1, arbitrary: fc.constant<RuleMatch>({}) },
  );

  return fc
    .array(
      fc.record({
        enabled: fc.oneof(
          { weight: 6, arbitrary: fc.constant(true) },
          { weight: 1, arbitrary: fc.constant(false) },
        ),
        match: matchArb,
        target: fc.constantFrom(...alphabet.targets),
      }),
      { maxLength: 25 },
    )
    .map((parts) => parts.map((part, i): Rule => ({ id: `rule-${i}`, ...part })));
}

/**
 * Hosts that the rules name (so that exact and domain hits are common), plus free names and the
 * IP hosts the caller weighs in.
 */
export function hostArb(
  rules: readonly Rule[],
  ipHosts: fc.WeightedArbitrary<string>[],
): fc.Arbitrary<string> {
  const named: string[] = [];
  for (const rule of rules) {
    for (const p of rule.match.hosts ?? []) {
      if (p.type === 'exact') named.push(p.value);
      if (p.type === 'domain') named.push(p.value.slice(2), `www.${p.value.slice(2)}`);
    }
  }
  return fc.oneof(
    { weight: 3, arbitrary: nameArb.chain(spelledArb) },
    ...ipHosts,
    ...(named.length > 0
      ? [{ weight: 3, arbitrary: fc.constantFrom(...named).chain((n) => spelledArb(n.replace(/\.$/, ''))) }]
      : []),
  );
}
