// The generated PAC script, run the way a browser runs it: in a fresh JavaScript context whose
// only extras are the PAC helper functions. The helpers throw and record every call, because a
// call would mean the browser resolves a name (or probes its own addresses) before the request
// reaches the SOCKS server, which is the DNS leak the local hop exists to prevent.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { buildSync } from 'esbuild';
import ts from 'typescript';
import { generatePac, type PacInput } from '../../shared/pac/generate.ts';
import { PAC_RUNTIME } from '../../shared/pac/runtime.ts';
import {
  type HostPattern,
  type Rule,
  type RuleMatch,
  RulesValidationError,
  type RuleTarget,
} from '../../shared/rules/index.ts';

const PAC_HELPERS = [
  'alert',
  'convert_addr',
  'dateRange',
  'dnsDomainIs',
  'dnsDomainLevels',
  'dnsResolve',
  'dnsResolveEx',
  'getClientVersion',
  'isInNet',
  'isInNetEx',
  'isPlainHostName',
  'isResolvable',
  'isResolvableEx',
  'localHostOrDomainIs',
  'myIpAddress',
  'myIpAddressEx',
  'shExpMatch',
  'sortIpAddressList',
  'timeRange',
  'weekdayRange',
];

interface LoadedPac {
  find(url: string, host: string): string;
  /** PAC helpers the script called (must stay empty). */
  helperCalls: string[];
  /** Internal errors FindProxyForURL swallowed (must stay 0). */
  failures(): number;
}

interface PacState {
  failures: number;
  loadError: string | null;
}

function loadPac(source: string, prepare?: (context: vm.Context) => void): LoadedPac {
  const helperCalls: string[] = [];
  const sandbox: Record<string, unknown> = {};
  for (const name of PAC_HELPERS) {
    sandbox[name] = (...args: unknown[]): never => {
      helperCalls.push(`${name}(${args.map(String).join(', ')})`);
      throw new Error(`the PAC script called ${name}`);
    };
  }
  const context = vm.createContext(sandbox);
  prepare?.(context);
  vm.runInContext(source, context, { filename: 'switchyard.pac' });
  const state = context.SwitchyardPac as PacState;
  assert.equal(state.loadError, null, 'the PAC script failed to load');
  const fn = context.FindProxyForURL;
  assert.equal(typeof fn, 'function', 'FindProxyForURL is not a function');
  return {
    find: (url, host) => (fn as (u: string, h: string) => unknown)(url, host) as string,
    helperCalls,
    failures: () => state.failures,
  };
}

const PROXY = 'SOCKS5 127.0.0.1:1080';
const DIRECT: RuleTarget = { kind: 'direct' };
const BLOCK: RuleTarget = { kind: 'block' };
const ROUTE: RuleTarget = { kind: 'route', routeId: 'corp' };

const exact = (value: string): HostPattern => ({ type: 'exact', value });
const domain = (value: string): HostPattern => ({ type: 'domain', value });
const suffix = (value: string): HostPattern => ({ type: 'suffix', value });
const regex = (value: string): HostPattern => ({ type: 'regex', value });

let nextId = 0;
function rule(match: RuleMatch, target: RuleTarget, enabled = true): Rule {
  return { id: `r${nextId++}`, enabled, match, target };
}

function pacFor(rules: Rule[], overrides: Partial<PacInput> = {}): string {
  return generatePac({
    rules,
    defaultTarget: ROUTE,
    proxy: { host: '127.0.0.1', port: 1080 },
    fallback: 'fail-closed',
    ...overrides,
  });
}

interface Case {
  name: string;
  rules: Rule[];
  defaultTarget?: RuleTarget;
  /** [url, host as the browser passes it, expected answer] */
  requests: [string, string, string][];
}

const CASES: Case[] = [
  {
    name: 'targets: direct goes DIRECT, route and block go to the host',
    rules: [
      rule({ hosts: [exact('direct.test')] }, DIRECT),
      rule({ hosts: [exact('route.test')] }, ROUTE),
      rule({ hosts: [exact('block.test')] }, BLOCK),
    ],
    requests: [
      ['https://direct.test/', 'direct.test', 'DIRECT'],
      ['https://route.test/', 'route.test', PROXY],
      ['https://block.test/', 'block.test', PROXY],
    ],
  },
  {
    name: 'default target: direct',
    rules: [rule({ hosts: [exact('corp.test')] }, ROUTE)],
    defaultTarget: DIRECT,
    requests: [
      ['https://elsewhere.test/', 'elsewhere.test', 'DIRECT'],
      ['https://corp.test/', 'corp.test', PROXY],
    ],
  },
  {
    name: 'default target: block and route go to the host',
    rules: [],
    defaultTarget: BLOCK,
    requests: [['https://elsewhere.test/', 'elsewhere.test', PROXY]],
  },
  {
    name: 'exact: case-insensitive, one trailing dot ignored, no subdomains',
    rules: [rule({ hosts: [exact('Intranet.Example.')] }, DIRECT)],
    requests: [
      ['http://intranet.example/', 'intranet.example', 'DIRECT'],
      ['http://INTRANET.example./', 'INTRANET.example.', 'DIRECT'],
      ['http://www.intranet.example/', 'www.intranet.example', PROXY],
      ['http://intranet.example../', 'intranet.example..', PROXY],
    ],
  },
  {
    name: 'domain: the base and every subdomain, not look-alikes',
    rules: [rule({ hosts: [domain('*.example.com')] }, DIRECT)],
    requests: [
      ['https://example.com/', 'example.com', 'DIRECT'],
      ['https://a.b.example.com/', 'a.b.example.com', 'DIRECT'],
      ['https://notexample.com/', 'notexample.com', PROXY],
      ['https://example.com.evil.test/', 'example.com.evil.test', PROXY],
    ],
  },
  {
    name: 'suffix: a plain string suffix, dotted or not',
    rules: [rule({ hosts: [suffix('ample.com')] }, DIRECT), rule({ hosts: [suffix('-cdn')] }, DIRECT)],
    requests: [
      ['https://example.com/', 'example.com', 'DIRECT'],
      ['https://www.sample.com/', 'www.sample.com', 'DIRECT'],
      ['https://ample.com/', 'ample.com', 'DIRECT'],
      ['https://mple.com/', 'mple.com', PROXY],
      ['https://edge-cdn/', 'edge-cdn', 'DIRECT'],
      ['https://edge-cdn.test/', 'edge-cdn.test', PROXY],
    ],
  },
  {
    name: 'regex: unanchored, case-insensitive, against the normalised host',
    rules: [rule({ hosts: [regex('Tracker\\d+\\.')] }, DIRECT), rule({ hosts: [regex('^cdn\\.')] }, DIRECT)],
    requests: [
      ['https://ads.tracker12.com/', 'ads.tracker12.com', 'DIRECT'],
      ['https://cdn.site.test/', 'cdn.site.test', 'DIRECT'],
      ['https://x.cdn.site.test/', 'x.cdn.site.test', PROXY],
      ['https://tracker.com/', 'tracker.com', PROXY],
    ],
  },
  {
    name: 'host patterns never match IP literals',
    rules: [rule({ hosts: [regex('^10\\.'), regex(':'), suffix('.1')] }, DIRECT)],
    requests: [
      ['http://10.0.0.1/', '10.0.0.1', PROXY],
      ['http://[::1]/', '::1', PROXY],
      // Not a strict dotted quad, so a name (leading zeros mean octal to some resolvers).
      ['http://10.0.0.01/', '10.0.0.01', 'DIRECT'],
    ],
  },
  {
    name: 'IPv4 ranges and single addresses',
    rules: [
      rule({ ips: ['10.0.0.0/8', '192.168.1.5'] }, DIRECT),
      rule({ ips: ['172.16.0.0/12'] }, ROUTE),
      rule({ ips: ['0.0.0.0/0'] }, DIRECT),
    ],
    defaultTarget: ROUTE,
    requests: [
      ['http://10.200.3.4/', '10.200.3.4', 'DIRECT'],
      ['http://192.168.1.5/', '192.168.1.5', 'DIRECT'],
      ['http://172.31.255.255/', '172.31.255.255', PROXY],
      ['http://8.8.8.8/', '8.8.8.8', 'DIRECT'],
      ['http://8.8.8.8./', '8.8.8.8.', 'DIRECT'],
      // Names never match IP ranges.
      ['http://ten.example/', 'ten.example', PROXY],
    ],
  },
  {
    name: 'IPv6 ranges; the host arrives without brackets (Chrome) or with them',
    rules: [rule({ ips: ['2001:db8::/32', 'fe80::/10'] }, DIRECT)],
    requests: [
      ['http://[2001:db8:1::5]/', '2001:db8:1::5', 'DIRECT'],
      ['http://[2001:db8:1::5]/', '[2001:db8:1::5]', 'DIRECT'],
      ['http://[2001:DB8::1]:8080/', '2001:DB8::1', 'DIRECT'],
      ['http://[febf:ffff::1]/', 'febf:ffff::1', 'DIRECT'],
      ['http://[fec0::1]/', 'fec0::1', PROXY],
      ['http://[2001:db9::1]/', '2001:db9::1', PROXY],
      ['http://[::1]/', '::1', PROXY],
      // A zone id names an interface, not a destination: the host treats it as a name.
      ['http://[fe80::1%25eth0]/', 'fe80::1%eth0', PROXY],
    ],
  },
  {
    name: 'IPv4-mapped IPv6 is the IPv4 address, however it is spelled',
    rules: [rule({ ips: ['10.0.0.0/8'] }, DIRECT), rule({ ips: ['::ffff:192.168.0.0/112'] }, DIRECT)],
    requests: [
      ['http://[::ffff:10.0.0.1]/', '::ffff:10.0.0.1', 'DIRECT'],
      // WHATWG URL parsing (Chrome, Firefox) serialises it in hex.
      ['http://[::ffff:a00:1]/', '::ffff:a00:1', 'DIRECT'],
      ['http://[0:0:0:0:0:ffff:a00:1]/', '0:0:0:0:0:ffff:a00:1', 'DIRECT'],
      ['http://192.168.7.7/', '192.168.7.7', 'DIRECT'],
      ['http://[::ffff:c0a8:707]/', '::ffff:c0a8:707', 'DIRECT'],
      // IPv4-compatible (::a.b.c.d) is not mapped.
      ['http://[::a00:1]/', '::a00:1', PROXY],
    ],
  },
  {
    name: 'ports: lists and ranges, from the URL or the scheme default',
    rules: [rule({ hosts: [domain('*.example.com')], ports: [443, { from: 8000, to: 8999 }, 21] }, DIRECT)],
    requests: [
      ['https://example.com/', 'example.com', 'DIRECT'],
      ['wss://example.com/socket', 'example.com', 'DIRECT'],
      ['http://example.com/', 'example.com', PROXY],
      ['ws://example.com/', 'example.com', PROXY],
      ['http://example.com:8000/', 'example.com', 'DIRECT'],
      ['http://example.com:8999/x?y#z', 'example.com', 'DIRECT'],
      ['http://example.com:9000/', 'example.com', PROXY],
      ['https://example.com:444/', 'example.com', PROXY],
      ['HTTPS://example.com/', 'example.com', 'DIRECT'],
      ['ftp://example.com/', 'example.com', 'DIRECT'],
      ['http://user:pass@example.com:8080/', 'example.com', 'DIRECT'],
      ['http://example.com:/', 'example.com', PROXY],
    ],
  },
  {
    name: 'a URL whose port cannot be told goes to the host',
    rules: [rule({}, DIRECT)],
    requests: [
      ['gopher://example.com/', 'example.com', PROXY],
      ['gopher://example.com:70/', 'example.com', 'DIRECT'],
      ['http://example.com:99999/', 'example.com', PROXY],
      ['http://example.com:8o/', 'example.com', PROXY],
      ['example.com', 'example.com', PROXY],
    ],
  },
  {
    name: 'disabled rules are skipped',
    rules: [rule({ hosts: [exact('a.test')] }, ROUTE, false), rule({ hosts: [exact('a.test')] }, DIRECT)],
    requests: [['https://a.test/', 'a.test', 'DIRECT']],
  },
  {
    name: 'first match wins: a route rule shadows a later direct rule',
    rules: [
      rule({ hosts: [exact('secret.corp.example')] }, ROUTE),
      rule({ hosts: [domain('*.corp.example')] }, DIRECT),
      rule({ hosts: [regex('^ads\\.')] }, BLOCK),
      rule({ hosts: [suffix('.example')] }, DIRECT),
    ],
    requests: [
      ['https://secret.corp.example/', 'secret.corp.example', PROXY],
      ['https://wiki.corp.example/', 'wiki.corp.example', 'DIRECT'],
      ['https://ads.other.example/', 'ads.other.example', PROXY],
      ['https://www.other.example/', 'www.other.example', 'DIRECT'],
    ],
  },
  {
    name: 'a host match with a port mismatch falls through to later rules',
    rules: [
      rule({ hosts: [exact('app.test')], ports: [22] }, ROUTE),
      rule({ ips: ['10.0.0.0/8'], ports: [{ from: 1, to: 1024 }] }, BLOCK),
      rule({ ports: [443] }, DIRECT),
      rule({ ips: ['10.0.0.0/8'] }, DIRECT),
    ],
    requests: [
      ['https://app.test/', 'app.test', 'DIRECT'],
      ['http://app.test:22/', 'app.test', PROXY],
      ['http://app.test/', 'app.test', PROXY],
      ['https://10.1.1.1/', '10.1.1.1', PROXY],
      ['http://10.1.1.1:8080/', '10.1.1.1', 'DIRECT'],
    ],
  },
  {
    name: 'host names that are also property names of plain objects',
    rules: [
      rule({ hosts: [exact('__proto__')] }, DIRECT),
      rule({ hosts: [domain('*.constructor')] }, DIRECT),
      rule({ hosts: [suffix('x.hasownproperty')] }, DIRECT),
    ],
    requests: [
      ['http://__proto__/', '__proto__', 'DIRECT'],
      ['http://a.constructor/', 'a.constructor', 'DIRECT'],
      ['http://ax.hasownproperty/', 'ax.hasownproperty', 'DIRECT'],
      ['http://constructor.x/', 'constructor.x', PROXY],
      ['http://tostring/', 'tostring', PROXY],
      ['http://valueof/', 'valueOf', PROXY],
    ],
  },
];

describe('generated PAC script', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const pac = loadPac(
        pacFor(c.rules, c.defaultTarget === undefined ? {} : { defaultTarget: c.defaultTarget }),
      );
      for (const [url, host, expected] of c.requests) {
        assert.equal(pac.find(url, host), expected, `FindProxyForURL('${url}', '${host}')`);
      }
      assert.deepEqual(pac.helperCalls, [], 'PAC helpers called');
      assert.equal(pac.failures(), 0, 'FindProxyForURL swallowed an internal error');
    });
  }

  it('falls back to DIRECT only when asked to', () => {
    const rules = [rule({ hosts: [exact('direct.test')] }, DIRECT)];
    const closed = loadPac(pacFor(rules, { fallback: 'fail-closed' }));
    const open = loadPac(pacFor(rules, { fallback: 'direct' }));
    assert.equal(closed.find('https://other.test/', 'other.test'), 'SOCKS5 127.0.0.1:1080');
    assert.equal(open.find('https://other.test/', 'other.test'), 'SOCKS5 127.0.0.1:1080; DIRECT');
    assert.equal(open.find('https://direct.test/', 'direct.test'), 'DIRECT');
    assert.ok(!pacFor(rules, { fallback: 'fail-closed' }).includes('; DIRECT'));
  });

  it('skips rules with a contexts condition, as the host does', () => {
    const rules = [
      rule({ hosts: [exact('intranet.test')], contexts: ['firefox-container-1'] }, DIRECT),
      rule({ contexts: ['private'] }, DIRECT),
      rule({ hosts: [exact('direct.test')] }, DIRECT),
    ];
    const pac = loadPac(pacFor(rules));
    assert.equal(pac.find('https://intranet.test/', 'intranet.test'), PROXY);
    assert.equal(pac.find('https://other.test/', 'other.test'), PROXY);
    assert.equal(pac.find('https://direct.test/', 'direct.test'), 'DIRECT');
  });

  it('names the proxy it is given', () => {
    const run = (host: string, port: number): string =>
      loadPac(pacFor([], { proxy: { host, port } })).find('https://a.test/', 'a.test');
    assert.equal(run('127.0.0.1', 31080), 'SOCKS5 127.0.0.1:31080');
    assert.equal(run('::1', 1080), 'SOCKS5 [::1]:1080');
    assert.equal(run('[::1]', 1080), 'SOCKS5 [::1]:1080');
    assert.equal(run('localhost', 9050), 'SOCKS5 localhost:9050');
  });

  it('refuses invalid rules, proxies and fallbacks', () => {
    assert.throws(
      () => pacFor([rule({ hosts: [exact('a b')] }, DIRECT)]),
      (e: unknown) => e instanceof RulesValidationError && e.errors[0]?.path === 'rules[0].match.hosts[0]',
    );
    assert.throws(
      () => pacFor([], { defaultTarget: { kind: 'nowhere' } as unknown as RuleTarget }),
      RulesValidationError,
    );
    for (const port of [0, 65536, 1.5, Number.NaN]) {
      assert.throws(() => pacFor([], { proxy: { host: '127.0.0.1', port } }), RangeError);
    }
    for (const host of ['', '127.0.0.1; DIRECT', 'h\u00f6st', 'a b']) {
      assert.throws(() => pacFor([], { proxy: { host, port: 1080 } }), RangeError);
    }
    assert.throws(() => pacFor([], { fallback: 'open' as PacInput['fallback'] }), RangeError);
  });

  it('is pure: the same input gives the same text', () => {
    const rules = CASES.flatMap((c) => c.rules);
    assert.equal(pacFor(rules), pacFor(structuredClone(rules)));
  });

  it('answers with the host when the engine cannot compile a regex, and never guesses DIRECT', () => {
    const rules = [
      rule({ hosts: [exact('early.test')] }, DIRECT),
      rule({ hosts: [regex('^ads\\.')] }, ROUTE),
      rule({ hosts: [domain('*.late.test')] }, DIRECT),
      rule({ hosts: [suffix('x'), regex('^y')] }, ROUTE),
    ];
    // An engine whose RegExp rejects every pattern (the script's own literal still works).
    const pac = loadPac(pacFor(rules, { defaultTarget: DIRECT }), (context) => {
      vm.runInContext('RegExp = function () { throw new SyntaxError("unsupported"); };', context);
    });
    assert.equal(pac.find('https://early.test/', 'early.test'), 'DIRECT');
    assert.equal(pac.find('https://www.late.test/', 'www.late.test'), PROXY);
    assert.equal(pac.find('https://nothing.test/', 'nothing.test'), PROXY);
    assert.equal(pac.find('https://10.0.0.1/', '10.0.0.1'), 'DIRECT');
    assert.equal(pac.failures(), 0);
  });

  it('answers with the host when its own code fails', () => {
    const pac = loadPac(pacFor([rule({}, DIRECT)]));
    // A host argument whose conversion to a string throws stands in for any internal error.
    const bad = { toString: (): string => assert.fail('boom') } as unknown as string;
    assert.equal(pac.find('https://a.test/', bad), PROXY);
    assert.equal(pac.failures(), 1);
  });

  it('is ES5 that any PAC engine can load', () => {
    const source = pacFor([
      rule(
        { hosts: [exact('a.test'), domain('*.b.test'), suffix('.c.test'), suffix('-d'), regex('^e')] },
        DIRECT,
      ),
      rule({ ips: ['10.0.0.0/8', '2001:db8::/33'], ports: [443, { from: 1, to: 9 }] }, ROUTE),
      rule({ ports: [80] }, DIRECT),
    ]);
    assert.deepEqual(es5Violations(source), []);
    assert.deepEqual(es5Violations(`(${PAC_RUNTIME})`), []);
    // The check itself must see modern syntax.
    const modern = [
      'var a = b?.c;',
      'var a = b ?? c;',
      'var a = () => 1;',
      'let a = 1;',
      'const a = 1;',
      'var a = `x`;',
      'for (var k of []) {}',
      'var { a } = b;',
      'var a = { b };',
      'var a = [...b];',
      'function f(a = 1) {}',
      'function* g() {}',
      'class A {}',
      'var a = 2 ** 3;',
      'var a = /x/u;',
      'var a = 0b11;',
      'var a = { [b]: 1 };',
      'var a = { b() {} };',
      'a ||= 1;',
      'async function f() {}',
    ];
    for (const snippet of modern) assert.notDeepEqual(es5Violations(snippet), [], snippet);
    // And the text must be a script that runs.
    loadPac(source);
  });

  it('comes out the same from the minified bundle', async () => {
    const entry = fileURLToPath(new URL('../../shared/pac/generate.ts', import.meta.url));
    const bundle = buildSync({
      entryPoints: [entry],
      bundle: true,
      minify: true,
      keepNames: true,
      format: 'esm',
      platform: 'neutral',
      write: false,
    });
    const code = bundle.outputFiles[0]!.text;
    const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as {
      generatePac: typeof generatePac;
    };
    for (const c of CASES) {
      const input: PacInput = {
        rules: c.rules,
        defaultTarget: c.defaultTarget ?? ROUTE,
        proxy: { host: '127.0.0.1', port: 1080 },
        fallback: 'fail-closed',
      };
      const fromBundle = mod.generatePac(input);
      assert.equal(fromBundle, generatePac(input), c.name);
      const pac = loadPac(fromBundle);
      for (const [url, host, expected] of c.requests)
        assert.equal(pac.find(url, host), expected, `${c.name}: ${url}`);
    }
  });
});

// --- ES5 syntax check ------------------------------------------------------------------------

const ES5_KINDS = new Set<ts.SyntaxKind>([
  ts.SyntaxKind.SourceFile,
  ts.SyntaxKind.EndOfFileToken,
  ts.SyntaxKind.Identifier,
  ts.SyntaxKind.StringLiteral,
  ts.SyntaxKind.NumericLiteral,
  ts.SyntaxKind.RegularExpressionLiteral,
  ts.SyntaxKind.NullKeyword,
  ts.SyntaxKind.TrueKeyword,
  ts.SyntaxKind.FalseKeyword,
  ts.SyntaxKind.ThisKeyword,
  ts.SyntaxKind.VariableStatement,
  ts.SyntaxKind.VariableDeclarationList,
  ts.SyntaxKind.VariableDeclaration,
  ts.SyntaxKind.FunctionDeclaration,
  ts.SyntaxKind.FunctionExpression,
  ts.SyntaxKind.Parameter,
  ts.SyntaxKind.Block,
  ts.SyntaxKind.EmptyStatement,
  ts.SyntaxKind.ExpressionStatement,
  ts.SyntaxKind.IfStatement,
  ts.SyntaxKind.ForStatement,
  ts.SyntaxKind.ForInStatement,
  ts.SyntaxKind.WhileStatement,
  ts.SyntaxKind.DoStatement,
  ts.SyntaxKind.BreakStatement,
  ts.SyntaxKind.ContinueStatement,
  ts.SyntaxKind.ReturnStatement,
  ts.SyntaxKind.ThrowStatement,
  ts.SyntaxKind.TryStatement,
  ts.SyntaxKind.CatchClause,
  ts.SyntaxKind.SwitchStatement,
  ts.SyntaxKind.CaseBlock,
  ts.SyntaxKind.CaseClause,
  ts.SyntaxKind.DefaultClause,
  ts.SyntaxKind.ObjectLiteralExpression,
  ts.SyntaxKind.PropertyAssignment,
  ts.SyntaxKind.ArrayLiteralExpression,
  ts.SyntaxKind.PropertyAccessExpression,
  ts.SyntaxKind.ElementAccessExpression,
  ts.SyntaxKind.CallExpression,
  ts.SyntaxKind.NewExpression,
  ts.SyntaxKind.ParenthesizedExpression,
  ts.SyntaxKind.ConditionalExpression,
  ts.SyntaxKind.QuestionToken,
  ts.SyntaxKind.ColonToken,
  ts.SyntaxKind.BinaryExpression,
  ts.SyntaxKind.PrefixUnaryExpression,
  ts.SyntaxKind.PostfixUnaryExpression,
  ts.SyntaxKind.TypeOfExpression,
  ts.SyntaxKind.VoidExpression,
  ts.SyntaxKind.DeleteExpression,
  // Binary operators appear as token children of BinaryExpression.
  ts.SyntaxKind.EqualsToken,
  ts.SyntaxKind.PlusEqualsToken,
  ts.SyntaxKind.MinusEqualsToken,
  ts.SyntaxKind.EqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsToken,
  ts.SyntaxKind.EqualsEqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsEqualsToken,
  ts.SyntaxKind.LessThanToken,
  ts.SyntaxKind.GreaterThanToken,
  ts.SyntaxKind.LessThanEqualsToken,
  ts.SyntaxKind.GreaterThanEqualsToken,
  ts.SyntaxKind.PlusToken,
  ts.SyntaxKind.MinusToken,
  ts.SyntaxKind.AsteriskToken,
  ts.SyntaxKind.SlashToken,
  ts.SyntaxKind.PercentToken,
  ts.SyntaxKind.AmpersandToken,
  ts.SyntaxKind.BarToken,
  ts.SyntaxKind.CaretToken,
  ts.SyntaxKind.LessThanLessThanToken,
  ts.SyntaxKind.GreaterThanGreaterThanToken,
  ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken,
  ts.SyntaxKind.AmpersandAmpersandToken,
  ts.SyntaxKind.BarBarToken,
  ts.SyntaxKind.CommaToken,
  ts.SyntaxKind.InKeyword,
  ts.SyntaxKind.InstanceOfKeyword,
]);

/**
 * Syntax newer than ES5 in `source`, one entry per node. Node's vm runs any modern syntax, so
 * the check walks TypeScript's syntax tree and accepts only node kinds that ES5 has; a few ES5
 * kinds that can carry newer syntax (let/const, generators, default parameters, regex flags,
 * binary and octal literals) are looked at more closely.
 */
function es5Violations(source: string): string[] {
  const file = ts.createSourceFile(
    'switchyard.pac.js',
    source,
    ts.ScriptTarget.Latest,
    true,
    ts.ScriptKind.JS,
  );
  const found: string[] = [];
  const report = (node: ts.Node, what: string): void => {
    const { line } = file.getLineAndCharacterOfPosition(node.getStart(file));
    found.push(`line ${line + 1}: ${what}`);
  };
  const visit = (node: ts.Node): void => {
    if (!ES5_KINDS.has(node.kind)) report(node, ts.SyntaxKind[node.kind]);
    else if (ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.BlockScoped) !== 0) {
      report(node, 'let/const');
    } else if ((ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node)) && node.asteriskToken) {
      report(node, 'generator');
    } else if (
      ts.isParameter(node) &&
      (node.initializer !== undefined || node.dotDotDotToken !== undefined)
    ) {
      report(node, 'default or rest parameter');
    } else if (ts.isRegularExpressionLiteral(node) && !/\/[gim]*$/.test(node.text)) {
      report(node, `regex flags in ${node.text}`);
    } else if (ts.isNumericLiteral(node) && /^0[bo]|_/i.test(node.getText(file))) {
      report(node, `numeric literal ${node.getText(file)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}
