import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cidrContains,
  compileRules,
  type Decision,
  formatIp,
  type HostPattern,
  parseCidr,
  parseHostIp,
  parseIp,
  parseIpDetailed,
  type Rule,
  type RuleMatch,
  type RulesValidationError,
  type RuleTarget,
} from '../../shared/rules/index.ts';

const DIRECT: RuleTarget = { kind: 'direct' };
const BLOCK: RuleTarget = { kind: 'block' };
const DEFAULT: RuleTarget = { kind: 'route', routeId: 'default-route' };
const route = (routeId: string): RuleTarget => ({ kind: 'route', routeId });

const exact = (value: string): HostPattern => ({ type: 'exact', value });
const domain = (value: string): HostPattern => ({ type: 'domain', value });
const suffix = (value: string): HostPattern => ({ type: 'suffix', value });
const regex = (value: string): HostPattern => ({ type: 'regex', value });

function rule(id: string, match: RuleMatch, target: RuleTarget = route(`to-${id}`), enabled = true): Rule {
  return { id, enabled, match, target };
}

interface Case {
  name: string;
  rules: Rule[];
  host: string;
  port?: number;
  /** Id of the rule that must win, or 'default'. */
  expect: string;
}

function expected(rules: readonly Rule[], expect: string): Decision {
  if (expect === 'default') return { matched: 'default', target: DEFAULT };
  const ruleIndex = rules.findIndex((r) => r.id === expect);
  assert.ok(ruleIndex >= 0, `test case names unknown rule ${expect}`);
  return { matched: 'rule', ruleId: expect, ruleIndex, target: rules[ruleIndex]!.target };
}

function runTable(cases: readonly Case[]): void {
  for (const c of cases) {
    it(c.name, () => {
      const decision = compileRules(c.rules, DEFAULT).decide({ host: c.host, port: c.port ?? 443 });
      assert.deepEqual(decision, expected(c.rules, c.expect));
    });
  }
}

describe('host patterns', () => {
  runTable([
    {
      name: 'exact matches the host itself',
      rules: [rule('a', { hosts: [exact('example.com')] })],
      host: 'example.com',
      expect: 'a',
    },
    {
      name: 'exact does not match a subdomain',
      rules: [rule('a', { hosts: [exact('example.com')] })],
      host: 'www.example.com',
      expect: 'default',
    },
    {
      name: 'exact does not match a parent domain',
      rules: [rule('a', { hosts: [exact('www.example.com')] })],
      host: 'example.com',
      expect: 'default',
    },
    {
      name: 'exact is case-insensitive in pattern and host',
      rules: [rule('a', { hosts: [exact('ExAmple.COM')] })],
      host: 'EXAMPLE.com',
      expect: 'a',
    },
    {
      name: 'exact ignores a trailing dot on the host',
      rules: [rule('a', { hosts: [exact('example.com')] })],
      host: 'example.com.',
      expect: 'a',
    },
    {
      name: 'exact ignores a trailing dot on the pattern',
      rules: [rule('a', { hosts: [exact('example.com.')] })],
      host: 'example.com',
      expect: 'a',
    },
    {
      name: 'domain matches its base domain',
      rules: [rule('a', { hosts: [domain('*.example.com')] })],
      host: 'example.com',
      expect: 'a',
    },
    {
      name: 'domain matches a deep subdomain',
      rules: [rule('a', { hosts: [domain('*.example.com')] })],
      host: 'a.b.c.example.com',
      expect: 'a',
    },
    {
      name: 'domain does not match a host that merely ends with the same text',
      rules: [rule('a', { hosts: [domain('*.example.com')] })],
      host: 'notexample.com',
      expect: 'default',
    },
    {
      name: 'domain does not match a different domain containing the base as a label',
      rules: [rule('a', { hosts: [domain('*.example.com')] })],
      host: 'example.com.evil.org',
      expect: 'default',
    },
    {
      name: 'domain is case-insensitive and ignores trailing dots',
      rules: [rule('a', { hosts: [domain('*.Example.Com.')] })],
      host: 'WWW.EXAMPLE.COM.',
      expect: 'a',
    },
    {
      name: 'domain on a top-level domain',
      rules: [rule('a', { hosts: [domain('*.internal')] })],
      host: 'git.corp.internal',
      expect: 'a',
    },
    {
      name: 'suffix is a plain string suffix',
      rules: [rule('a', { hosts: [suffix('ample.com')] })],
      host: 'example.com',
      expect: 'a',
    },
    {
      name: 'suffix does not match when the host is shorter',
      rules: [rule('a', { hosts: [suffix('ample.com')] })],
      host: 'mple.com',
      expect: 'default',
    },
    {
      name: 'suffix with a leading dot matches subdomains only',
      rules: [rule('a', { hosts: [suffix('.example.com')] })],
      host: 'example.com',
      expect: 'default',
    },
    {
      name: 'suffix is case-insensitive and ignores trailing dots',
      rules: [rule('a', { hosts: [suffix('AMPLE.com.')] })],
      host: 'www.EXAMPLE.com.',
      expect: 'a',
    },
    {
      name: 'regex is unanchored',
      rules: [rule('a', { hosts: [regex('ampl')] })],
      host: 'www.example.com',
      expect: 'a',
    },
    {
      name: 'regex anchors apply to the normalised host (trailing dot removed)',
      rules: [rule('a', { hosts: [regex('\\.com$')] })],
      host: 'example.com.',
      expect: 'a',
    },
    {
      name: 'regex is tested case-insensitively',
      rules: [rule('a', { hosts: [regex('^WWW\\.Example\\.')] })],
      host: 'www.EXAMPLE.org',
      expect: 'a',
    },
    {
      name: 'regex that does not match falls to default',
      rules: [rule('a', { hosts: [regex('^cdn\\d+\\.')] })],
      host: 'cdnx.example.com',
      expect: 'default',
    },
    {
      name: 'any pattern in a hosts list may match',
      rules: [
        rule('a', { hosts: [exact('one.test'), domain('*.two.test'), suffix('three.test'), regex('^four')] }),
      ],
      host: 'x.two.test',
      expect: 'a',
    },
    {
      name: 'host patterns never match an IP-literal destination',
      rules: [rule('a', { hosts: [suffix('.1'), regex('^127\\.')] })],
      host: '127.0.0.1',
      expect: 'default',
    },
    {
      name: 'a dotted name that is not a strict IPv4 literal is a host name',
      rules: [rule('ip', { ips: ['10.0.0.0/8'] }), rule('name', { hosts: [suffix('.0.1')] })],
      host: '010.0.0.1',
      expect: 'name',
    },
  ]);
});

describe('rule order', () => {
  runTable([
    {
      name: 'first match wins among indexed rules (domain before exact)',
      rules: [
        rule('dom', { hosts: [domain('*.example.com')] }),
        rule('ex', { hosts: [exact('www.example.com')] }),
      ],
      host: 'www.example.com',
      expect: 'dom',
    },
    {
      name: 'first match wins among indexed rules (exact before domain)',
      rules: [
        rule('ex', { hosts: [exact('www.example.com')] }),
        rule('dom', { hosts: [domain('*.example.com')] }),
      ],
      host: 'www.example.com',
      expect: 'ex',
    },
    {
      name: 'an earlier, more general domain beats a later, more specific one',
      rules: [rule('com', { hosts: [domain('*.com')] }), rule('ex', { hosts: [domain('*.example.com')] })],
      host: 'www.example.com',
      expect: 'com',
    },
    {
      name: 'an earlier scanned rule beats a later indexed rule',
      rules: [rule('sfx', { hosts: [suffix('.com')] }), rule('ex', { hosts: [exact('www.example.com')] })],
      host: 'www.example.com',
      expect: 'sfx',
    },
    {
      name: 'an earlier indexed rule beats a later scanned rule',
      rules: [rule('ex', { hosts: [exact('www.example.com')] }), rule('re', { hosts: [regex('example')] })],
      host: 'www.example.com',
      expect: 'ex',
    },
    {
      name: 'an earlier catch-all beats everything after it',
      rules: [rule('all', {}), rule('ex', { hosts: [exact('www.example.com')] })],
      host: 'www.example.com',
      expect: 'all',
    },
    {
      name: 'a disabled rule is skipped',
      rules: [
        rule('off', { hosts: [exact('www.example.com')] }, BLOCK, false),
        rule('on', { hosts: [domain('*.example.com')] }, DIRECT),
      ],
      host: 'www.example.com',
      expect: 'on',
    },
    {
      name: 'a disabled scanned rule is skipped',
      rules: [rule('off', { hosts: [regex('.')] }, BLOCK, false), rule('on', { hosts: [suffix('com')] })],
      host: 'example.com',
      expect: 'on',
    },
    {
      name: 'a disabled catch-all is skipped',
      rules: [rule('off', {}, BLOCK, false)],
      host: 'example.com',
      expect: 'default',
    },
    {
      name: 'the winning index counts disabled rules before it',
      rules: [
        rule('off1', {}, BLOCK, false),
        rule('off2', {}, BLOCK, false),
        rule('on', { hosts: [exact('a.test')] }),
      ],
      host: 'a.test',
      expect: 'on',
    },
  ]);
});

describe('ports', () => {
  runTable([
    {
      name: 'a single port matches',
      rules: [rule('a', { ports: [443] })],
      host: 'x.test',
      port: 443,
      expect: 'a',
    },
    {
      name: 'a single port rejects another',
      rules: [rule('a', { ports: [443] })],
      host: 'x.test',
      port: 444,
      expect: 'default',
    },
    {
      name: 'any port of a list may match',
      rules: [rule('a', { ports: [22, 80, 443] })],
      host: 'x.test',
      port: 80,
      expect: 'a',
    },
    {
      name: 'a range includes its start',
      rules: [rule('a', { ports: [{ from: 8000, to: 8999 }] })],
      host: 'x.test',
      port: 8000,
      expect: 'a',
    },
    {
      name: 'a range includes its end',
      rules: [rule('a', { ports: [{ from: 8000, to: 8999 }] })],
      host: 'x.test',
      port: 8999,
      expect: 'a',
    },
    {
      name: 'a range excludes the port after its end',
      rules: [rule('a', { ports: [{ from: 8000, to: 8999 }] })],
      host: 'x.test',
      port: 9000,
      expect: 'default',
    },
    {
      name: 'a mixed list of ports and ranges',
      rules: [rule('a', { ports: [443, { from: 8000, to: 8999 }] })],
      host: 'x.test',
      port: 8443,
      expect: 'a',
    },
    {
      name: 'a ports-only rule matches IP destinations',
      rules: [rule('a', { ports: [53] })],
      host: '10.0.0.1',
      port: 53,
      expect: 'a',
    },
    {
      name: 'host and port must both hold',
      rules: [rule('a', { hosts: [exact('x.test')], ports: [443] })],
      host: 'y.test',
      port: 443,
      expect: 'default',
    },
    {
      name: 'host match + port mismatch falls through to a later rule on the same exact key',
      rules: [
        rule('https', { hosts: [exact('x.test')], ports: [443] }),
        rule('any', { hosts: [exact('x.test')] }),
      ],
      host: 'x.test',
      port: 80,
      expect: 'any',
    },
    {
      name: 'host match + port mismatch falls through to a later domain rule',
      rules: [
        rule('https', { hosts: [exact('www.x.test')], ports: [443] }),
        rule('dom', { hosts: [domain('*.x.test')] }),
      ],
      host: 'www.x.test',
      port: 80,
      expect: 'dom',
    },
    {
      name: 'host match + port mismatch on a domain falls through to a parent domain',
      rules: [
        rule('sub', { hosts: [domain('*.www.x.test')], ports: [443] }),
        rule('parent', { hosts: [domain('*.x.test')] }),
      ],
      host: 'a.www.x.test',
      port: 80,
      expect: 'parent',
    },
    {
      name: 'host match + port mismatch falls through to a later scanned rule',
      rules: [
        rule('https', { hosts: [exact('x.test')], ports: [443] }),
        rule('re', { hosts: [regex('^x\\.')] }),
      ],
      host: 'x.test',
      port: 80,
      expect: 're',
    },
    {
      name: 'host match + port mismatch on a scanned rule falls through to a later indexed rule',
      rules: [
        rule('re', { hosts: [regex('^x\\.')], ports: [443] }),
        rule('ex', { hosts: [exact('x.test')] }),
      ],
      host: 'x.test',
      port: 80,
      expect: 'ex',
    },
    {
      name: 'host match + port mismatch falls through to the default',
      rules: [rule('https', { hosts: [domain('*.x.test')], ports: [443] })],
      host: 'x.test',
      port: 80,
      expect: 'default',
    },
    {
      name: 'ip match + port mismatch falls through to a later rule',
      rules: [rule('ssh', { ips: ['10.0.0.0/8'], ports: [22] }), rule('lan', { ips: ['10.1.0.0/16'] })],
      host: '10.1.2.3',
      port: 443,
      expect: 'lan',
    },
  ]);
});

describe('IP and CIDR', () => {
  runTable([
    {
      name: 'IPv4 CIDR contains an address',
      rules: [rule('a', { ips: ['10.0.0.0/8'] })],
      host: '10.200.3.4',
      expect: 'a',
    },
    {
      name: 'IPv4 CIDR excludes an address',
      rules: [rule('a', { ips: ['10.0.0.0/8'] })],
      host: '11.0.0.1',
      expect: 'default',
    },
    {
      name: 'IPv4 single address',
      rules: [rule('a', { ips: ['192.168.1.5'] })],
      host: '192.168.1.5',
      expect: 'a',
    },
    {
      name: 'IPv4 single address excludes its neighbour',
      rules: [rule('a', { ips: ['192.168.1.5'] })],
      host: '192.168.1.4',
      expect: 'default',
    },
    {
      name: 'IPv4 prefix not on a byte boundary',
      rules: [rule('a', { ips: ['172.16.0.0/12'] })],
      host: '172.31.255.255',
      expect: 'a',
    },
    {
      name: 'IPv4 prefix not on a byte boundary excludes the next block',
      rules: [rule('a', { ips: ['172.16.0.0/12'] })],
      host: '172.32.0.0',
      expect: 'default',
    },
    {
      name: 'IPv4 /0 matches every IPv4 address',
      rules: [rule('a', { ips: ['0.0.0.0/0'] })],
      host: '8.8.8.8',
      expect: 'a',
    },
    {
      name: 'IPv6 CIDR contains an address',
      rules: [rule('a', { ips: ['2001:db8::/32'] })],
      host: '2001:db8:ffff::1',
      expect: 'a',
    },
    {
      name: 'IPv6 CIDR excludes an address',
      rules: [rule('a', { ips: ['2001:db8::/32'] })],
      host: '2001:db9::1',
      expect: 'default',
    },
    {
      name: 'IPv6 in brackets',
      rules: [rule('a', { ips: ['2001:db8::/32'] })],
      host: '[2001:DB8::1]',
      expect: 'a',
    },
    {
      name: 'IPv6 loopback as a single address',
      rules: [rule('a', { ips: ['::1'] })],
      host: '[::1]',
      expect: 'a',
    },
    {
      name: 'IPv6 written in full matches a compressed rule',
      rules: [rule('a', { ips: ['fe80::/10'] })],
      host: 'FE80:0000:0000:0000:0000:0000:0000:0001',
      expect: 'a',
    },
    {
      name: 'an IPv6 rule does not match IPv4',
      rules: [rule('a', { ips: ['::/0'] })],
      host: '127.0.0.1',
      expect: 'default',
    },
    {
      name: 'an IPv4 rule does not match IPv6',
      rules: [rule('a', { ips: ['0.0.0.0/0'] })],
      host: '::1',
      expect: 'default',
    },
    {
      name: 'IPv4-mapped IPv6 matches as IPv4',
      rules: [rule('a', { ips: ['127.0.0.0/8'] })],
      host: '::ffff:127.0.0.1',
      expect: 'a',
    },
    {
      name: 'IPv4-mapped IPv6 in brackets and hex form matches as IPv4',
      rules: [rule('a', { ips: ['127.0.0.0/8'] })],
      host: '[::ffff:7f00:1]',
      expect: 'a',
    },
    {
      name: 'IPv4-mapped IPv6 is not matched by an IPv6 range',
      rules: [rule('v6', { ips: ['::/0'] }), rule('v4', { ips: ['0.0.0.0/0'] })],
      host: '::ffff:10.0.0.1',
      expect: 'v4',
    },
    {
      name: 'an IPv4-mapped range in a rule matches plain IPv4',
      rules: [rule('a', { ips: ['::ffff:10.0.0.0/104'] })],
      host: '10.9.8.7',
      expect: 'a',
    },
    {
      name: 'any entry of an ips list may match',
      rules: [rule('a', { ips: ['10.0.0.0/8', '::1'] })],
      host: '::1',
      expect: 'a',
    },
    {
      name: 'an ips rule never matches a host name',
      rules: [rule('a', { ips: ['0.0.0.0/0', '::/0'] })],
      host: 'example.com',
      expect: 'default',
    },
    {
      name: 'a zone id makes the host a (non-matching) name, not an address',
      rules: [rule('a', { ips: ['fe80::/10'] })],
      host: 'fe80::1%eth0',
      expect: 'default',
    },
    {
      name: 'an IPv4 literal with a trailing dot is still an address',
      rules: [rule('name', { hosts: [regex('^10\\.')] }), rule('ip', { ips: ['10.0.0.0/8'] })],
      host: '10.0.0.1.',
      expect: 'ip',
    },
    {
      name: 'rules after an IP rule still apply to IP destinations',
      rules: [rule('host', { hosts: [exact('example.com')] }), rule('ip', { ips: ['10.0.0.0/8'] })],
      host: '10.0.0.1',
      expect: 'ip',
    },
  ]);
});

describe('default target and decisions', () => {
  it('no rules: the default target, marked as default', () => {
    const decision = compileRules([], DEFAULT).decide({ host: 'example.com', port: 443 });
    assert.deepEqual(decision, { matched: 'default', target: { kind: 'route', routeId: 'default-route' } });
  });

  it('a direct default target', () => {
    const decision = compileRules([rule('a', { hosts: [exact('a.test')] })], DIRECT).decide({
      host: 'b.test',
      port: 80,
    });
    assert.deepEqual(decision, { matched: 'default', target: { kind: 'direct' } });
  });

  it('a matching rule reports its id, index and target', () => {
    const rules = [
      rule('x', { hosts: [exact('x.test')] }),
      rule('blocker', { hosts: [exact('ads.test')] }, BLOCK),
    ];
    const decision = compileRules(rules, DEFAULT).decide({ host: 'ads.test', port: 443 });
    assert.deepEqual(decision, {
      matched: 'rule',
      ruleId: 'blocker',
      ruleIndex: 1,
      target: { kind: 'block' },
    });
  });

  it('decisions are frozen and unaffected by later edits of the rule list', () => {
    const rules = [rule('a', { hosts: [exact('a.test')] }, route('r1'))];
    const compiled = compileRules(rules, DEFAULT);
    rules[0]!.target = route('r2');
    rules[0]!.match.hosts!.push(exact('b.test'));
    const decision = compiled.decide({ host: 'a.test', port: 1 });
    assert.deepEqual(decision, {
      matched: 'rule',
      ruleId: 'a',
      ruleIndex: 0,
      target: { kind: 'route', routeId: 'r1' },
    });
    assert.ok(Object.isFrozen(decision) && Object.isFrozen(decision.target));
    assert.deepEqual(compiled.decide({ host: 'b.test', port: 1 }), { matched: 'default', target: DEFAULT });
  });

  it('reports the number of compiled rules, disabled ones included', () => {
    assert.equal(compileRules([rule('a', {}), rule('b', {}, DIRECT, false)], DEFAULT).ruleCount, 2);
  });

  it('refuses invalid rules with every error and its path', () => {
    const bad = [
      rule('a', { hosts: [domain('*.exa mple.com')] }),
      rule('a', { ips: ['10.0.0.1/8'] }),
    ] as Rule[];
    assert.throws(
      () => compileRules(bad, { kind: 'route', routeId: '' }),
      (error: RulesValidationError) => {
        assert.equal(error.name, 'RulesValidationError');
        assert.deepEqual(error.errors, [
          {
            path: 'rules[0].match.hosts[0]',
            message: "'*.exa mple.com' is not a valid domain pattern: spaces are not allowed",
          },
          {
            path: 'rules[1].match.ips[0]',
            message:
              "'10.0.0.1/8' is not a valid IP address or CIDR range: address has bits set outside the /8 prefix: did you mean '10.0.0.0/8'?",
          },
          { path: 'rules[1].id', message: "the id 'a' is already used by rules[0]: rule ids must be unique" },
          { path: 'defaultTarget.routeId', message: 'a route target needs the id of a route' },
        ]);
        return true;
      },
    );
  });
});

describe('IP literal parsing', () => {
  const canonical: [string, string][] = [
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0000:0000:0000::0001', '2001:db8::1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::ffff:0102:0304', '::ffff:1.2.3.4'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ];
  for (const [input, output] of canonical) {
    it(`parses ${input} as ${output}`, () => {
      const address = parseIp(input);
      assert.ok(address !== null);
      assert.equal(formatIp(address), output);
    });
  }

  const invalid: [string, string][] = [
    ['', 'empty address'],
    ['1.2.3', 'an IPv4 address has exactly four octets'],
    ['1.2.3.4.5', 'an IPv4 address has exactly four octets'],
    ['1.2.3.256', 'each octet must be 0-255'],
    ['1.2.3.04', 'octets must not have leading zeros'],
    ['1.2..4', 'empty octet'],
    ['1.2.3.4.', 'empty octet'],
    ['1.2.3.x', "unexpected character 'x'"],
    ['fe80::1%eth0', 'zone ids (such as %eth0) are not allowed'],
    ['1:2:3:4:5:6:7', 'an IPv6 address without "::" has exactly eight groups'],
    ['1:2:3:4:5:6:7:8:9', 'an IPv6 address without "::" has exactly eight groups'],
    ['1:2:3:4::5:6:7:8', 'too many groups'],
    ['1::2::3', '"::" may appear only once'],
    [':1::', 'misplaced colon'],
    ['1:::2', '"::" may appear only once'],
    ['12345::', 'each group has at most four hex digits'],
    ['g::', "unexpected character 'g'"],
    ['1.2.3.4::', 'an embedded IPv4 address may only appear at the end'],
    ['::1.2.3', 'embedded IPv4 address: an IPv4 address has exactly four octets'],
  ];
  for (const [input, error] of invalid) {
    it(`rejects ${JSON.stringify(input)}: ${error}`, () => {
      assert.deepEqual(parseIpDetailed(input), { ok: false, error });
    });
  }

  it('parseHostIp strips brackets and unmaps IPv4', () => {
    assert.equal(formatIp(parseHostIp('[::ffff:127.0.0.1]')!), '127.0.0.1');
    assert.equal(formatIp(parseHostIp('::FFFF:7F00:1')!), '127.0.0.1');
    assert.equal(parseHostIp('[1.2.3.4]'), null);
    assert.equal(parseHostIp('example.com'), null);
    assert.equal(parseHostIp('host1'), null);
  });

  it('parseCidr rejects bad prefixes and host bits', () => {
    assert.deepEqual(parseCidr('10.0.0.0/33'), {
      ok: false,
      error: 'prefix length must be a number from 0 to 32 for IPv4',
    });
    assert.deepEqual(parseCidr('::/129'), {
      ok: false,
      error: 'prefix length must be a number from 0 to 128 for IPv6',
    });
    assert.deepEqual(parseCidr('10.0.0.0/08'), {
      ok: false,
      error: 'prefix length must be a number from 0 to 32 for IPv4',
    });
    assert.deepEqual(parseCidr('10.0.0.0/'), {
      ok: false,
      error: 'prefix length must be a number from 0 to 32 for IPv4',
    });
    assert.deepEqual(parseCidr('2001:db8::1/32'), {
      ok: false,
      error: "address has bits set outside the /32 prefix: did you mean '2001:db8::/32'?",
    });
  });

  it('parseCidr turns an IPv4-mapped range into IPv4', () => {
    const parsed = parseCidr('::ffff:192.168.0.0/112');
    assert.ok(parsed.ok);
    assert.equal(formatIp(parsed.cidr.address), '192.168.0.0');
    assert.equal(parsed.cidr.prefix, 16);
  });

  it('cidrContains checks the prefix bit by bit', () => {
    const contains = (cidr: string, ip: string): boolean => {
      const parsed = parseCidr(cidr);
      assert.ok(parsed.ok);
      return cidrContains(parsed.cidr, parseIp(ip)!);
    };
    assert.equal(contains('192.168.1.0/31', '192.168.1.1'), true);
    assert.equal(contains('192.168.1.0/31', '192.168.1.2'), false);
    assert.equal(contains('2001:db8::/127', '2001:db8::1'), true);
    assert.equal(contains('2001:db8::/127', '2001:db8::2'), false);
    assert.equal(contains('::/0', 'ffff::'), true);
    assert.equal(contains('0.0.0.0/0', '::'), false);
  });
});

describe('contexts (Firefox containers and private windows)', () => {
  const work = 'firefox-container-1';
  const rules: Rule[] = [
    rule('work', { contexts: [work] }, route('corp')),
    rule('private-direct', { hosts: [domain('*.news.test')], contexts: ['private'] }, DIRECT),
    rule('news', { hosts: [domain('*.news.test')] }, route('abroad')),
    rule('lan', { ips: ['10.0.0.0/8'], contexts: [work] }, BLOCK),
  ];
  const compiled = compileRules(rules, DEFAULT);
  const ruleOf = (d: Decision): string => (d.matched === 'rule' ? d.ruleId : 'default');

  it('without a context (the host, the PAC script) rules with contexts never match', () => {
    assert.equal(ruleOf(compiled.decide({ host: 'www.news.test', port: 443 })), 'news');
    assert.equal(ruleOf(compiled.decide({ host: 'intranet.test', port: 443 })), 'default');
    assert.equal(ruleOf(compiled.decide({ host: '10.1.2.3', port: 22 })), 'default');
  });

  it('a container rule matches every request from that container, and only from it', () => {
    const inWork = { cookieStoreId: work };
    assert.equal(ruleOf(compiled.decide({ host: 'intranet.test', port: 443 }, inWork)), 'work');
    assert.equal(ruleOf(compiled.decide({ host: 'www.news.test', port: 443 }, inWork)), 'work');
    assert.equal(ruleOf(compiled.decide({ host: '10.1.2.3', port: 22 }, inWork)), 'work');
    const other = { cookieStoreId: 'firefox-container-2' };
    assert.equal(ruleOf(compiled.decide({ host: 'intranet.test', port: 443 }, other)), 'default');
    assert.equal(ruleOf(compiled.decide({ host: 'www.news.test', port: 443 }, other)), 'news');
  });

  it("'private' matches private windows, through the host index too", () => {
    const priv = { cookieStoreId: 'firefox-private', private: true };
    assert.equal(ruleOf(compiled.decide({ host: 'www.news.test', port: 443 }, priv)), 'private-direct');
    assert.equal(ruleOf(compiled.decide({ host: 'www.news.test', port: 443 }, { private: false })), 'news');
  });

  it('first match wins across context and plain rules', () => {
    const ordered = compileRules(
      [
        rule('lan', { ips: ['10.0.0.0/8'], contexts: ['firefox-container-1'] }, BLOCK),
        rule('all-10', { ips: ['10.0.0.0/8'] }, DIRECT),
      ],
      DEFAULT,
    );
    assert.equal(ruleOf(ordered.decide({ host: '10.0.0.1', port: 80 }, { cookieStoreId: work })), 'lan');
    assert.equal(ruleOf(ordered.decide({ host: '10.0.0.1', port: 80 })), 'all-10');
  });
});
