// The browser and the host must never disagree about which requests skip the local hop: the
// generated PAC script, run in a sandbox with the PAC helpers, answers 'DIRECT' exactly when the
// host's matcher picks a direct target, and the proxy otherwise. Rules and destinations come from
// small alphabets so that every pattern kind really matches, ports really make matches fall
// through, and route or block rules really shadow later direct ones.
//   FUZZ_RUNS=20000 node --import tsx --test test/unit/pac-agreement.property.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import fc from 'fast-check';
import { buildDestinations, buildRules, prng } from '../../scripts/bench-rules.ts';
import { generatePac, type PacFallback } from '../../shared/pac/generate.ts';
import {
  compileRules,
  type Destination,
  type PortRange,
  type Rule,
  type RuleTarget,
} from '../../shared/rules/index.ts';
import { hostArb, REGEXES, ruleListArb, SUFFIXES } from '../helpers/rule-arbitraries.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const PROXY_HOST = '127.0.0.1';
const PROXY_PORT = 1080;

const PAC_HELPERS = [
  'dnsResolve',
  'dnsResolveEx',
  'isInNet',
  'isInNetEx',
  'isResolvable',
  'isResolvableEx',
  'myIpAddress',
  'myIpAddressEx',
  'sortIpAddressList',
  'dnsDomainIs',
  'localHostOrDomainIs',
  'isPlainHostName',
  'dnsDomainLevels',
  'shExpMatch',
  'weekdayRange',
  'dateRange',
  'timeRange',
  'alert',
];

type FindProxy = (url: string, host: string) => string;

interface Sandbox {
  find: FindProxy;
  helperCalls: string[];
  failures(): number;
}

function loadPac(source: string): Sandbox {
  const helperCalls: string[] = [];
  const globals: Record<string, unknown> = {};
  for (const name of PAC_HELPERS) {
    globals[name] = (): never => {
      helperCalls.push(name);
      throw new Error(`the PAC script called ${name}`);
    };
  }
  const context = vm.createContext(globals);
  vm.runInContext(source, context);
  const state = context.SwitchyardPac as { failures: number; loadError: string | null };
  assert.equal(state.loadError, null);
  return { find: context.FindProxyForURL as FindProxy, helperCalls, failures: () => state.failures };
}

// --- generators (test/helpers/rule-arbitraries.ts), over a wider alphabet than the matcher test

const TARGETS: RuleTarget[] = [
  { kind: 'direct' },
  { kind: 'direct' },
  { kind: 'block' },
  { kind: 'route', routeId: 'r1' },
  { kind: 'route', routeId: 'r2' },
];
const IP_HOSTS = [
  '10.0.0.1',
  '10.0.0.1.',
  '10.1.2.3',
  '10.255.0.9',
  '192.168.1.5',
  '127.0.0.1',
  '8.8.8.8',
  '010.0.0.1',
  '10.0.0.256',
  '::1',
  '[::1]',
  '::ffff:127.0.0.1',
  '[::ffff:10.0.0.1]',
  // How WHATWG URL parsing (and so Chrome's PAC host) spells mapped addresses.
  '::ffff:a00:1',
  '::ffff:c0a8:105',
  '0:0:0:0:0:ffff:a01:203',
  '::a00:1',
  '2001:db8::1',
  '[2001:DB8:1::5]',
  '2001:db8:1:0:0:0:0:ffff',
  'fe80::1',
  'fe80::1%eth0',
  '1::2::3',
];
const CIDRS = [
  '10.0.0.0/8',
  '10.1.0.0/16',
  '10.0.0.1',
  '10.128.0.0/9',
  '10.0.0.0/31',
  '192.168.0.0/16',
  '192.168.1.4/30',
  '127.0.0.0/8',
  '0.0.0.0/0',
  '::1',
  '::/0',
  '::/1',
  '2001:db8::/32',
  '2001:db8:1::/48',
  '2001:db8::/47',
  '2001:db8::/33',
  'fe80::/10',
  '::ffff:127.0.0.0/104',
  '::ffff:10.0.0.0/105',
  '::ffff:0:0/96',
  '::fffe:0:0/95',
];
const PAC_REGEXES = [...REGEXES, '\\d', ':'];
const PAC_SUFFIXES = [...SUFFIXES, '1', '.1'];
const PORTS: PortRange[] = [
  21,
  22,
  80,
  443,
  { from: 8000, to: 8999 },
  { from: 1, to: 1024 },
  { from: 444, to: 65535 },
];
const DEST_PORTS = [21, 22, 80, 443, 1024, 8080, 8500, 9000];
const SCHEMES: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };

const rulesArb = ruleListArb({
  targets: TARGETS,
  cidrs: CIDRS,
  regexes: PAC_REGEXES,
  suffixes: PAC_SUFFIXES,
  ports: PORTS,
  ipsWeight: 3,
});

interface Request {
  /** The destination as the host sees it. */
  dest: Destination;
  url: string;
  /** The host argument as the PAC engine passes it. */
  pacHost: string;
}

const v4Arb = fc
  .tuple(fc.constantFrom(10, 127, 192), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((parts) => parts.join('.'));
const v6Arb = fc
  .tuple(fc.constantFrom('2001:db8', '2001:db8:1', 'fe80:0', '0:0'), fc.nat(0xffff))
  .map(([head, tail]) => `${head}::${tail.toString(16)}`);
const mappedArb = v4Arb.chain((v4) => {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  const hex = `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  return fc.constantFrom(`::ffff:${v4}`, hex, `[${hex}]`);
});

/** Hosts that the rules name (so that exact and domain hits are common), plus free ones. */
function requestsArb(rules: readonly Rule[]): fc.Arbitrary<Request[]> {
  const host = hostArb(rules, [
    { weight: 2, arbitrary: fc.constantFrom(...IP_HOSTS) },
    { weight: 1, arbitrary: fc.oneof(v4Arb, v6Arb, mappedArb) },
  ]);
  const requestArb = fc
    .record({
      host,
      scheme: fc.constantFrom(...Object.keys(SCHEMES)),
      port: fc.option(fc.constantFrom(...DEST_PORTS), { nil: undefined }),
      explicitDefault: fc.boolean(),
      userinfo: fc.boolean(),
      bracketPacHost: fc.boolean(),
      path: fc.constantFrom('/', '/p/q', '/?a=b:c', '/#f@g', ''),
    })
    .map(({ host, scheme, port, explicitDefault, userinfo, bracketPacHost, path }): Request => {
      const bare = host.startsWith('[') ? host.slice(1, -1) : host;
      const isV6 = bare.includes(':');
      const destPort = port ?? SCHEMES[scheme]!;
      const portPart = port !== undefined || explicitDefault ? `:${destPort}` : '';
      const urlHost = isV6 ? `[${bare}]` : bare;
      const url = `${scheme}://${userinfo ? 'user:p%40ss@' : ''}${urlHost}${portPart}${path}`;
      // Chrome passes IPv6 hosts without brackets; other engines may not.
      const pacHost = isV6 && bracketPacHost ? `[${bare}]` : bare;
      return { dest: { host, port: destPort }, url, pacHost };
    });
  return fc.array(requestArb, { minLength: 1, maxLength: 12 });
}

const proxyAnswer = (fallback: PacFallback): string =>
  `SOCKS5 ${PROXY_HOST}:${PROXY_PORT}${fallback === 'direct' ? '; DIRECT' : ''}`;

describe('the PAC script agrees with the host router', () => {
  it('on generated rule lists and requests', { timeout: 300_000 }, (t) => {
    const stats = { runs: 0, requests: 0, direct: 0, ruleHits: 0, ipRequests: 0, fallThroughs: 0 };
    fc.assert(
      fc.property(
        rulesArb.chain((rules) =>
          fc.tuple(
            fc.constant(rules),
            fc.constantFrom<RuleTarget>(
              { kind: 'direct' },
              { kind: 'block' },
              { kind: 'route', routeId: 'r1' },
            ),
            fc.constantFrom<PacFallback>('fail-closed', 'direct'),
            requestsArb(rules),
          ),
        ),
        ([rules, defaultTarget, fallback, requests]) => {
          stats.runs++;
          const compiled = compileRules(rules, defaultTarget);
          const withoutPorts = compileRules(
            rules.map((r) =>
              r.match.hosts === undefined && r.match.ips === undefined
                ? r
                : { ...r, match: { ...r.match, ports: undefined } },
            ),
            defaultTarget,
          );
          const pac = loadPac(
            generatePac({ rules, defaultTarget, proxy: { host: PROXY_HOST, port: PROXY_PORT }, fallback }),
          );
          for (const { dest, url, pacHost } of requests) {
            const decision = compiled.decide(dest);
            const expected = decision.target.kind === 'direct' ? 'DIRECT' : proxyAnswer(fallback);
            assert.equal(pac.find(url, pacHost), expected, `FindProxyForURL('${url}', '${pacHost}')`);
            stats.requests++;
            if (expected === 'DIRECT') stats.direct++;
            if (decision.matched === 'rule') stats.ruleHits++;
            if (/^[[\d:]|:/.test(dest.host)) stats.ipRequests++;
            // Without port conditions an earlier rule would have won: its port made it fall through.
            const loose = withoutPorts.decide(dest);
            if (
              loose.matched === 'rule' &&
              (decision.matched === 'default' || loose.ruleIndex < decision.ruleIndex)
            ) {
              stats.fallThroughs++;
            }
          }
          assert.deepEqual(pac.helperCalls, []);
          assert.equal(pac.failures(), 0);
        },
      ),
      { numRuns: RUNS },
    );
    t.diagnostic(JSON.stringify(stats));
    // Guard the generators: a property that never matches anything proves nothing.
    if (RUNS >= 200) {
      assert.ok(stats.direct > stats.requests * 0.2, `only ${stats.direct} of ${stats.requests} DIRECT`);
      assert.ok(stats.direct < stats.requests * 0.8, `${stats.direct} of ${stats.requests} DIRECT`);
      assert.ok(stats.ruleHits > stats.requests * 0.3, `only ${stats.ruleHits} rule hits`);
      assert.ok(stats.ipRequests > stats.requests * 0.15, `only ${stats.ipRequests} IP requests`);
      assert.ok(stats.fallThroughs > RUNS / 20, `only ${stats.fallThroughs} port fall-throughs`);
    }
  });

  it('on the 10,000-rule benchmark list', () => {
    const random = prng(0x9ac);
    const { rules, exactHosts, domains } = buildRules(random);
    const dests = buildDestinations(random, exactHosts, domains);
    for (const defaultTarget of [
      { kind: 'direct' },
      { kind: 'route', routeId: 'corp' },
    ] satisfies RuleTarget[]) {
      const compiled = compileRules(rules, defaultTarget);
      const pac = loadPac(
        generatePac({
          rules,
          defaultTarget,
          proxy: { host: PROXY_HOST, port: PROXY_PORT },
          fallback: 'fail-closed',
        }),
      );
      let direct = 0;
      for (const dest of dests) {
        const expected =
          compiled.decide(dest).target.kind === 'direct' ? 'DIRECT' : proxyAnswer('fail-closed');
        const host = dest.host.startsWith('[') ? dest.host.slice(1, -1) : dest.host;
        const url = `https://${dest.host}:${dest.port}/`;
        assert.equal(pac.find(url, host), expected, url);
        if (expected === 'DIRECT') direct++;
      }
      assert.ok(direct > 0 && direct < dests.length);
      assert.deepEqual(pac.helperCalls, []);
      assert.equal(pac.failures(), 0);
    }
  });
});
