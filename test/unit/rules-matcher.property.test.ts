// The indexed matcher must agree exactly with the obvious definition: loop over the rules in
// order and return the first enabled one whose conditions all hold. Rules and hosts are drawn
// from a small alphabet of labels so that exact, domain, suffix and regex patterns really hit,
// and port conditions really make host matches fall through.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type Cidr,
  cidrContains,
  compileRules,
  type Decision,
  type Destination,
  formatIp,
  type HostPattern,
  type IpAddress,
  parseCidr,
  parseHostIp,
  parseIp,
  type PortRange,
  type Rule,
  type RuleTarget,
} from '../../shared/rules/index.ts';
import { hostArb, REGEXES, ruleListArb, SUFFIXES } from '../helpers/rule-arbitraries.ts';

const TARGETS: RuleTarget[] = [
  { kind: 'direct' },
  { kind: 'block' },
  { kind: 'route', routeId: 'r1' },
  { kind: 'route', routeId: 'r2' },
];
const DEFAULT_TARGET: RuleTarget = { kind: 'route', routeId: 'fallback' };
const IP_HOSTS = [
  '10.0.0.1',
  '10.0.0.1.',
  '10.1.2.3',
  '192.168.1.5',
  '127.0.0.1',
  '8.8.8.8',
  '::1',
  '[::1]',
  '::ffff:127.0.0.1',
  '[::ffff:10.0.0.1]',
  '2001:db8::1',
  '[2001:DB8:1::5]',
  'fe80::1',
];
const CIDRS = [
  '10.0.0.0/8',
  '10.1.0.0/16',
  '10.0.0.1',
  '192.168.0.0/16',
  '127.0.0.0/8',
  '0.0.0.0/0',
  '::1',
  '::/0',
  '2001:db8::/32',
  '2001:db8:1::/48',
  'fe80::/10',
  '::ffff:127.0.0.0/104',
];
const PORTS: PortRange[] = [22, 80, 443, { from: 8000, to: 8999 }, { from: 1, to: 1024 }];
const DEST_PORTS = [22, 80, 443, 1024, 8080, 8500, 9000];

const rulesArb = ruleListArb({
  targets: TARGETS,
  cidrs: CIDRS,
  regexes: REGEXES,
  suffixes: SUFFIXES,
  ports: PORTS,
  ipsWeight: 2,
});

/** Hosts that the rules name (so that exact and domain hits are common), plus free ones. */
function destinationsArb(rules: readonly Rule[]): fc.Arbitrary<Destination[]> {
  const host = hostArb(rules, [{ weight: 1, arbitrary: fc.constantFrom(...IP_HOSTS) }]);
  return fc.array(fc.record({ host, port: fc.constantFrom(...DEST_PORTS) }), {
    minLength: 1,
    maxLength: 12,
  });
}

// --- the reference: no index, no shortcuts -------------------------------------------------

function toBigInt(address: IpAddress): bigint {
  let value = 0n;
  for (const byte of address.bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

function refContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.address.version !== address.version) return false;
  const shift = BigInt((address.version === 4 ? 32 : 128) - cidr.prefix);
  return toBigInt(cidr.address) >> shift === toBigInt(address) >> shift;
}

const norm = (s: string): string => s.toLowerCase().replace(/\.$/, '');

function refHostMatches(pattern: HostPattern, host: string): boolean {
  switch (pattern.type) {
    case 'exact':
      return host === norm(pattern.value);
    case 'domain': {
      const base = norm(pattern.value.slice(2));
      return host === base || host.endsWith(`.${base}`);
    }
    case 'suffix':
      return host.endsWith(norm(pattern.value));
    case 'regex':
      return new RegExp(pattern.value, 'i').test(host);
  }
}

function refPortMatches(range: PortRange, port: number): boolean {
  return typeof range === 'number' ? range === port : port >= range.from && port <= range.to;
}

interface RefResult {
  decision: Decision;
  /** An earlier enabled rule matched the destination but not the port. */
  fellThroughOnPort: boolean;
}

function refDecide(rules: readonly Rule[], dest: Destination): RefResult {
  const host = norm(dest.host);
  const ip = parseHostIp(host);
  let fellThroughOnPort = false;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (!rule.enabled) continue;
    const { hosts, ips, ports } = rule.match;
    const hostOk = hosts === undefined || (ip === null && hosts.some((p) => refHostMatches(p, host)));
    const ipOk =
      ips === undefined ||
      (ip !== null &&
        ips.some((text) => {
          const parsed = parseCidr(text);
          return parsed.ok && refContains(parsed.cidr, ip);
        }));
    const portOk = ports === undefined || ports.some((r) => refPortMatches(r, dest.port));
    if (hostOk && ipOk && portOk) {
      return {
        decision: { matched: 'rule', ruleId: rule.id, ruleIndex: i, target: rule.target },
        fellThroughOnPort,
      };
    }
    if (hostOk && ipOk && (hosts !== undefined || ips !== undefined)) fellThroughOnPort = true;
  }
  return { decision: { matched: 'default', target: DEFAULT_TARGET }, fellThroughOnPort };
}

describe('matcher agrees with the naive reference', () => {
  it('on generated rule lists and destinations', { timeout: 120_000 }, (t) => {
    const stats = { runs: 0, decisions: 0, ruleHits: 0, ipHits: 0, portFallThroughs: 0 };
    const kinds = new Set<string>();
    fc.assert(
      fc.property(
        rulesArb.chain((rules) => fc.tuple(fc.constant(rules), destinationsArb(rules))),
        ([rules, dests]) => {
          stats.runs++;
          const compiled = compileRules(rules, DEFAULT_TARGET);
          for (const dest of dests) {
            const ref = refDecide(rules, dest);
            assert.deepEqual(compiled.decide(dest), ref.decision, `destination ${dest.host}:${dest.port}`);
            stats.decisions++;
            if (ref.fellThroughOnPort) stats.portFallThroughs++;
            if (ref.decision.matched === 'rule') {
              stats.ruleHits++;
              const winner = rules[ref.decision.ruleIndex]!.match;
              if (winner.ips) stats.ipHits++;
              for (const p of winner.hosts ?? []) if (refHostMatches(p, norm(dest.host))) kinds.add(p.type);
              if (!winner.hosts && !winner.ips) kinds.add(winner.ports ? 'ports-only' : 'catch-all');
            }
          }
        },
      ),
      { numRuns: 4000, interruptAfterTimeLimit: 60_000 },
    );
    t.diagnostic(JSON.stringify({ ...stats, kinds: [...kinds].sort() }));
    // Guard the generators themselves: a property that never matches anything proves nothing.
    assert.ok(stats.runs >= 1000, `only ${stats.runs} runs completed`);
    assert.ok(
      stats.ruleHits > stats.decisions * 0.3,
      `only ${stats.ruleHits} of ${stats.decisions} decisions hit a rule`,
    );
    assert.ok(stats.ipHits > 100, `only ${stats.ipHits} IP rule hits`);
    assert.ok(stats.portFallThroughs > 100, `only ${stats.portFallThroughs} port fall-throughs`);
    assert.deepEqual([...kinds].sort(), ['catch-all', 'domain', 'exact', 'ports-only', 'regex', 'suffix']);
  });
});

describe('IP helpers agree with a bigint reference', () => {
  const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((bytes): IpAddress => ({ version: 4, bytes }));
  const v6 = fc
    .tuple(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 8 }),
    )
    .map(([bytes, zeroGroups]): IpAddress => {
      // Zero runs exercise '::' compression, which random bytes would almost never produce.
      for (const g of zeroGroups) bytes.fill(0, g * 2, g * 2 + 2);
      return { version: 6, bytes };
    });
  const address = fc.oneof(v4, v6);

  it('formatIp output parses back to the same address', () => {
    fc.assert(
      fc.property(address, (addr) => {
        const text = formatIp(addr);
        const parsed = parseIp(text);
        assert.ok(parsed !== null, text);
        assert.equal(parsed.version, addr.version);
        assert.deepEqual([...parsed.bytes], [...addr.bytes]);
      }),
      { numRuns: 3000 },
    );
  });

  it('cidrContains matches the shift-and-compare definition', () => {
    fc.assert(
      fc.property(address, address, fc.integer({ min: 0, max: 128 }), (net, addr, rawPrefix) => {
        const prefix = rawPrefix % ((net.version === 4 ? 32 : 128) + 1);
        const shift = BigInt((net.version === 4 ? 32 : 128) - prefix);
        const masked = (toBigInt(net) >> shift) << shift;
        const bytes = new Uint8Array(net.bytes.length);
        for (let i = bytes.length - 1, v = masked; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
        const cidr: Cidr = { address: { version: net.version, bytes } as IpAddress, prefix };
        assert.equal(cidrContains(cidr, addr), refContains(cidr, addr));
        assert.equal(cidrContains(cidr, net), true);
      }),
      { numRuns: 3000 },
    );
  });
});
