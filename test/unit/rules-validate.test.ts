import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  validateHostPattern,
  validateRules,
  validateRuleset,
  validateTarget,
  type ValidationError,
} from '../../shared/rules/index.ts';

function ruleWith(match: unknown): unknown {
  return { id: 'r', enabled: true, match, target: { kind: 'direct' } };
}

function patternErrors(type: string, value: unknown): ValidationError[] {
  return validateRules([ruleWith({ hosts: [{ type, value }] })]);
}

const AT = 'rules[0].match.hosts[0]';

describe('host pattern values', () => {
  const cases: [string, string, string | null][] = [
    // [type, value, message or null when valid]
    ['domain', '*.exa mple.com', "'*.exa mple.com' is not a valid domain pattern: spaces are not allowed"],
    ['domain', '*.example.com', null],
    ['domain', '*.Example.COM.', null],
    ['domain', '*.internal', null],
    [
      'domain',
      'example.com',
      "'example.com' is not a valid domain pattern: it must start with '*.', as in '*.example.com' (or use an exact pattern for this one host)",
    ],
    [
      'domain',
      '.example.com',
      "'.example.com' is not a valid domain pattern: it must start with '*.', as in '*.example.com' (or use an exact pattern for this one host)",
    ],
    [
      'domain',
      '*',
      "'*' is not a valid domain pattern: it must name a domain, as in '*.example.com' (leave out \"hosts\" to match every host)",
    ],
    [
      'domain',
      '*.*.example.com',
      "'*.*.example.com' is not a valid domain pattern: '*' is only allowed as the leading '*.'",
    ],
    ['domain', '*.', "'*.' is not a valid domain pattern: the host name is empty"],
    [
      'domain',
      '*.10.0.0.1',
      "'*.10.0.0.1' is not a valid domain pattern: it is an IP address: put it in match.ips instead",
    ],
    ['exact', 'example.com', null],
    ['exact', 'EXAMPLE.com.', null],
    ['exact', 'under_score.example.com', null],
    ['exact', 'xn--bcher-kva.example', null],
    ['exact', '', "'' is not a valid exact host pattern: the host name is empty"],
    ['exact', '.', "'.' is not a valid exact host pattern: the host name is empty"],
    ['exact', 'exa mple.com', "'exa mple.com' is not a valid exact host pattern: spaces are not allowed"],
    ['exact', 'example.com\t', "'example.com\t' is not a valid exact host pattern: spaces are not allowed"],
    [
      'exact',
      '*.example.com',
      "'*.example.com' is not a valid exact host pattern: wildcards are not allowed here: use a domain pattern such as '*.example.com'",
    ],
    [
      'exact',
      'https://example.com/path',
      "'https://example.com/path' is not a valid exact host pattern: write only the host name, without 'https://' or a path",
    ],
    [
      'exact',
      'example.com:8080',
      "'example.com:8080' is not a valid exact host pattern: a port is not part of a host pattern: put ports in match.ports",
    ],
    [
      'exact',
      '10.0.0.1',
      "'10.0.0.1' is not a valid exact host pattern: it is an IP address: put it in match.ips instead",
    ],
    [
      'exact',
      '[::1]',
      "'[::1]' is not a valid exact host pattern: it is an IP address: put it in match.ips instead",
    ],
    [
      'exact',
      '2001:db8::1',
      "'2001:db8::1' is not a valid exact host pattern: it is an IP address: put it in match.ips instead",
    ],
    [
      'exact',
      'bücher.example',
      "'bücher.example' is not a valid exact host pattern: write international names in their punycode form ('xn--...')",
    ],
    [
      'exact',
      'a+b.example',
      "'a+b.example' is not a valid exact host pattern: the character '+' is not allowed (use letters, digits, '-', '_' and '.')",
    ],
    [
      'exact',
      'a..example',
      "'a..example' is not a valid exact host pattern: it has an empty label (two dots in a row)",
    ],
    [
      'exact',
      '.example.com',
      "'.example.com' is not a valid exact host pattern: it has an empty label (a leading dot)",
    ],
    [
      'exact',
      `${'a'.repeat(64)}.com`,
      `'${'a'.repeat(64)}.com' is not a valid exact host pattern: the label '${'a'.repeat(64)}' is longer than 63 characters`,
    ],
    [
      'exact',
      `${'abcdefghi.'.repeat(26)}com`,
      `'${'abcdefghi.'.repeat(26).slice(0, 77)}...' is not a valid exact host pattern: it is longer than 253 characters`,
    ],
    ['suffix', 'ample.com', null],
    ['suffix', '.example.com', null],
    ['suffix', '', "'' is not a valid suffix pattern: the suffix is empty"],
    ['suffix', '.', "'.' is not a valid suffix pattern: the suffix is empty"],
    [
      'suffix',
      '*.example.com',
      "'*.example.com' is not a valid suffix pattern: a suffix is plain text and '*' is not a wildcard here: use a domain pattern such as '*.example.com'",
    ],
    ['suffix', 'a..com', "'a..com' is not a valid suffix pattern: it has an empty label (two dots in a row)"],
    ['suffix', 'exa mple', "'exa mple' is not a valid suffix pattern: spaces are not allowed"],
    ['regex', '^([a-z0-9-]+\\.)*example\\.com$', null],
    ['regex', '^(www|cdn)\\d{1,3}\\.example\\.(com|org)$', null],
    ['regex', '(a|b)+', null],
    ['regex', '', "'' is not a valid regex pattern: the pattern is empty"],
    [
      'regex',
      'a'.repeat(513),
      `'${'a'.repeat(77)}...' is not a valid regex pattern: it is longer than 512 characters`,
    ],
    [
      'regex',
      '/example\\.com/i',
      "'/example\\.com/i' is not a valid regex pattern: write the pattern without the surrounding slashes or flags (it is already case-insensitive)",
    ],
    [
      'regex',
      '(example',
      "'(example' is not a valid regex pattern: it does not compile (Invalid regular expression: /(example/i: Unterminated group)",
    ],
    [
      'regex',
      '^(a+)+$',
      "'^(a+)+$' is not a valid regex pattern: a repeated group around a repeated atom, such as '(a+)+', can take exponential time: simplify it",
    ],
    [
      'regex',
      '(?:[a-z]*)*x',
      "'(?:[a-z]*)*x' is not a valid regex pattern: a repeated group around a repeated atom, such as '(a+)+', can take exponential time: simplify it",
    ],
    [
      'regex',
      '^(\\w+|x)+$',
      "'^(\\w+|x)+$' is not a valid regex pattern: a repeated group around a repeated atom, such as '(a+)+', can take exponential time: simplify it",
    ],
  ];
  for (const [type, value, message] of cases) {
    it(`${type} ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}: ${message === null ? 'valid' : 'invalid'}`, () => {
      assert.deepEqual(patternErrors(type, value), message === null ? [] : [{ path: AT, message }]);
    });
  }
});

describe('host pattern shape', () => {
  it('a string instead of a pattern object', () => {
    assert.deepEqual(validateHostPattern('*.example.com', 'p'), [
      {
        path: 'p',
        message:
          "a host pattern must be an object such as { type: 'domain', value: '*.example.com' }, not '*.example.com'",
      },
    ]);
  });

  it('an unknown type', () => {
    assert.deepEqual(patternErrors('wildcard', '*.example.com'), [
      { path: `${AT}.type`, message: "type must be 'exact', 'domain', 'suffix' or 'regex'" },
    ]);
  });

  it('a value that is not a string', () => {
    assert.deepEqual(patternErrors('exact', 42), [
      { path: `${AT}.value`, message: 'value must be a string' },
    ]);
  });

  it('an unknown field', () => {
    assert.deepEqual(validateRules([ruleWith({ hosts: [{ type: 'exact', value: 'a.test', flags: 'i' }] })]), [
      { path: `${AT}.flags`, message: "unknown field 'flags'" },
    ]);
  });
});

describe('ports', () => {
  const cases: [unknown, ValidationError[]][] = [
    [443, []],
    [{ from: 8000, to: 8999 }, []],
    [{ from: 8000, to: 8000 }, []],
    [
      0,
      [{ path: 'rules[0].match.ports[0]', message: 'a port must be a whole number from 1 to 65535, not 0' }],
    ],
    [
      70000,
      [
        {
          path: 'rules[0].match.ports[0]',
          message: 'a port must be a whole number from 1 to 65535, not 70000',
        },
      ],
    ],
    [
      1.5,
      [
        {
          path: 'rules[0].match.ports[0]',
          message: 'a port must be a whole number from 1 to 65535, not 1.5',
        },
      ],
    ],
    [
      '8000-8999',
      [
        {
          path: 'rules[0].match.ports[0]',
          message: 'write the range as { from: 8000, to: 8999 }, not as a string',
        },
      ],
    ],
    [
      '443',
      [{ path: 'rules[0].match.ports[0]', message: 'write the port as a number (443), not as a string' }],
    ],
    [
      'https',
      [
        {
          path: 'rules[0].match.ports[0]',
          message:
            "'https' is not a port: use a number such as 443 or a range such as { from: 8000, to: 8999 }",
        },
      ],
    ],
    [
      null,
      [
        {
          path: 'rules[0].match.ports[0]',
          message:
            'a port must be a number such as 443 or a range such as { from: 8000, to: 8999 }, not null',
        },
      ],
    ],
    [
      { from: 9000, to: 8000 },
      [
        {
          path: 'rules[0].match.ports[0]',
          message: 'the range starts at 9000, after its end 8000: swap them',
        },
      ],
    ],
    [
      { from: 0, to: '80' },
      [
        {
          path: 'rules[0].match.ports[0].from',
          message: "'from' must be a whole number from 1 to 65535, not 0",
        },
        {
          path: 'rules[0].match.ports[0].to',
          message: "'to' must be a whole number from 1 to 65535, not '80'",
        },
      ],
    ],
    [
      { from: 1, to: 2, step: 1 },
      [{ path: 'rules[0].match.ports[0].step', message: "unknown field 'step'" }],
    ],
  ];
  for (const [entry, errors] of cases) {
    it(`port entry ${JSON.stringify(entry)}`, () => {
      assert.deepEqual(validateRules([ruleWith({ ports: [entry] })]), errors);
    });
  }
});

describe('ips', () => {
  const cases: [unknown, string | null][] = [
    ['10.0.0.0/8', null],
    ['192.168.1.5', null],
    ['2001:db8::/32', null],
    ['::ffff:10.0.0.0/104', null],
    [
      '10.0.0.0/33',
      "'10.0.0.0/33' is not a valid IP address or CIDR range: prefix length must be a number from 0 to 32 for IPv4",
    ],
    [
      '10.0.0.1/8',
      "'10.0.0.1/8' is not a valid IP address or CIDR range: address has bits set outside the /8 prefix: did you mean '10.0.0.0/8'?",
    ],
    ['300.1.1.1', "'300.1.1.1' is not a valid IP address or CIDR range: each octet must be 0-255"],
    [
      'fe80::1%eth0',
      "'fe80::1%eth0' is not a valid IP address or CIDR range: zone ids (such as %eth0) are not allowed",
    ],
    ['example.com', "'example.com' is not a valid IP address or CIDR range: unexpected character 'e'"],
    [8, "an IP entry must be a string such as '10.0.0.0/8', not 8"],
  ];
  for (const [entry, message] of cases) {
    it(`ips entry ${JSON.stringify(entry)}`, () => {
      assert.deepEqual(
        validateRules([ruleWith({ ips: [entry] })]),
        message === null ? [] : [{ path: 'rules[0].match.ips[0]', message }],
      );
    });
  }
});

describe('contexts', () => {
  it('container cookieStoreIds and private are valid', () => {
    assert.deepEqual(
      validateRules([ruleWith({ contexts: ['firefox-container-1', 'firefox-default', 'private'] })]),
      [],
    );
    assert.deepEqual(
      validateRules([ruleWith({ hosts: [{ type: 'domain', value: '*.corp.test' }], contexts: ['private'] })]),
      [],
    );
  });

  it('an empty list, a non-string and a name that is not an id are explained', () => {
    assert.deepEqual(validateRules([ruleWith({ contexts: [] })]), [
      {
        path: 'rules[0].match.contexts',
        message:
          'contexts is empty: list at least one of containers or private windows, or leave contexts out to match any',
      },
    ]);
    const errors = validateRules([ruleWith({ contexts: [3, 'Work container'] })]);
    assert.deepEqual(
      errors.map((e) => e.path),
      ['rules[0].match.contexts[0]', 'rules[0].match.contexts[1]'],
    );
    assert.match(errors[0]!.message, /cookieStoreId such as 'firefox-container-1' or 'private', not 3/);
    assert.match(errors[1]!.message, /'Work container' is not a container id/);
  });
});

describe('match', () => {
  it('an empty match is a valid catch-all', () => {
    assert.deepEqual(validateRules([ruleWith({})]), []);
  });

  it('a match that is not an object', () => {
    assert.deepEqual(validateRules([ruleWith('*.example.com')]), [
      {
        path: 'rules[0].match',
        message: "match must be an object with hosts, ips, ports and/or contexts, not '*.example.com'",
      },
    ]);
  });

  it('an unknown condition (a typo must not turn the rule into a catch-all)', () => {
    assert.deepEqual(validateRules([ruleWith({ host: [{ type: 'exact', value: 'a.test' }] })]), [
      {
        path: 'rules[0].match.host',
        message: "unknown field 'host' (conditions are hosts, ips, ports and contexts)",
      },
    ]);
  });

  it('empty lists', () => {
    assert.deepEqual(validateRules([ruleWith({ hosts: [], ports: [] })]), [
      {
        path: 'rules[0].match.hosts',
        message: 'hosts is empty: list at least one of host patterns, or leave hosts out to match any',
      },
      {
        path: 'rules[0].match.ports',
        message: 'ports is empty: list at least one of ports, or leave ports out to match any',
      },
    ]);
  });

  it('a list that is not a list', () => {
    assert.deepEqual(validateRules([ruleWith({ ips: '10.0.0.0/8' })]), [
      { path: 'rules[0].match.ips', message: 'ips must be a list of addresses or CIDR ranges' },
    ]);
  });

  it('hosts and ips together', () => {
    assert.deepEqual(
      validateRules([ruleWith({ hosts: [{ type: 'exact', value: 'a.test' }], ips: ['10.0.0.0/8'] })]),
      [
        {
          path: 'rules[0].match',
          message:
            'a rule cannot have both hosts and ips: a destination is either a host name or an IP address, so it would never match; split it into two rules',
        },
      ],
    );
  });

  it('reports every bad entry with its own index', () => {
    const errors = validateRules([
      ruleWith({}),
      ruleWith({}),
      ruleWith({}),
      {
        id: 'fourth',
        enabled: true,
        match: {
          hosts: [
            { type: 'exact', value: 'ok.test' },
            { type: 'suffix', value: '' },
          ],
          ports: [443, 0],
        },
        target: { kind: 'block' },
      },
    ]);
    assert.deepEqual(errors, [
      { path: 'rules[1].id', message: "the id 'r' is already used by rules[0]: rule ids must be unique" },
      { path: 'rules[2].id', message: "the id 'r' is already used by rules[0]: rule ids must be unique" },
      { path: 'rules[3].match.hosts[1]', message: "'' is not a valid suffix pattern: the suffix is empty" },
      { path: 'rules[3].match.ports[1]', message: 'a port must be a whole number from 1 to 65535, not 0' },
    ]);
  });
});

describe('rule fields', () => {
  it('a rule that is not an object', () => {
    assert.deepEqual(validateRules([null, 'rule']), [
      { path: 'rules[0]', message: 'a rule must be an object, not null' },
      { path: 'rules[1]', message: "a rule must be an object, not 'rule'" },
    ]);
  });

  it('missing id, enabled, match and target', () => {
    assert.deepEqual(validateRules([{}]), [
      { path: 'rules[0].id', message: 'a rule needs an id: a non-empty string' },
      { path: 'rules[0].enabled', message: 'enabled must be true or false' },
      {
        path: 'rules[0].match',
        message: 'match must be an object with hosts, ips, ports and/or contexts, not undefined',
      },
      {
        path: 'rules[0].target',
        message: "a target must be an object such as { kind: 'direct' }, not undefined",
      },
    ]);
  });

  it('wrong types for enabled and name, and an unknown field', () => {
    assert.deepEqual(
      validateRules([
        { id: 'a', enabled: 'yes', name: 3, match: {}, target: { kind: 'direct' }, priority: 1 },
      ]),
      [
        { path: 'rules[0].priority', message: "unknown field 'priority'" },
        { path: 'rules[0].enabled', message: 'enabled must be true or false' },
        { path: 'rules[0].name', message: 'name must be a string' },
      ],
    );
  });

  it('the rules list itself must be a list', () => {
    assert.deepEqual(validateRules({ rules: [] }), [
      { path: 'rules', message: 'rules must be a list, not an object' },
    ]);
  });

  it('paths are relative to the given path', () => {
    assert.deepEqual(
      validateRules([{ ...(ruleWith({}) as object), enabled: 1 }], { path: 'profiles[2].rules' }),
      [{ path: 'profiles[2].rules[0].enabled', message: 'enabled must be true or false' }],
    );
  });

  it('a valid list has no errors', () => {
    assert.deepEqual(
      validateRules(
        [
          {
            id: 'corp',
            name: 'Intranet',
            enabled: true,
            match: {
              hosts: [{ type: 'domain', value: '*.corp.example' }],
              ports: [443, { from: 8000, to: 8999 }],
            },
            target: { kind: 'route', routeId: 'corp-gw' },
          },
          {
            id: 'lan',
            enabled: false,
            match: { ips: ['10.0.0.0/8', 'fd00::/8'] },
            target: { kind: 'direct' },
          },
          {
            id: 'ads',
            enabled: true,
            match: { hosts: [{ type: 'regex', value: '^ads?\\d*\\.' }] },
            target: { kind: 'block' },
          },
        ],
        { routeIds: ['corp-gw'] },
      ),
      [],
    );
  });
});

describe('targets', () => {
  const cases: [unknown, ValidationError[]][] = [
    [{ kind: 'direct' }, []],
    [{ kind: 'block' }, []],
    [{ kind: 'route', routeId: 'vpn' }, []],
    [
      'direct',
      [{ path: 't', message: "a target must be an object such as { kind: 'direct' }, not 'direct'" }],
    ],
    [{ kind: 'proxy' }, [{ path: 't.kind', message: "target kind must be 'route', 'direct' or 'block'" }]],
    [{ kind: 'route' }, [{ path: 't.routeId', message: 'a route target needs the id of a route' }]],
    [
      { kind: 'route', routeId: '' },
      [{ path: 't.routeId', message: 'a route target needs the id of a route' }],
    ],
    [
      { kind: 'route', routeId: 'gone' },
      [{ path: 't.routeId', message: "there is no route with id 'gone'" }],
    ],
    [{ kind: 'direct', routeId: 'vpn' }, [{ path: 't.routeId', message: "unknown field 'routeId'" }]],
  ];
  for (const [target, errors] of cases) {
    it(`target ${JSON.stringify(target)}`, () => {
      assert.deepEqual(validateTarget(target, 't', new Set(['vpn'])), errors);
    });
  }

  it('rule targets are checked against the known routes', () => {
    assert.deepEqual(
      validateRules([{ id: 'a', enabled: true, match: {}, target: { kind: 'route', routeId: 'nope' } }], {
        routeIds: ['vpn'],
      }),
      [{ path: 'rules[0].target.routeId', message: "there is no route with id 'nope'" }],
    );
  });

  it('validateRuleset checks rules and the default target', () => {
    assert.deepEqual(
      validateRuleset(
        { rules: [ruleWith({ ports: [0] })], defaultTarget: { kind: 'route', routeId: 'x' } },
        { routeIds: [] },
      ),
      [
        { path: 'rules[0].match.ports[0]', message: 'a port must be a whole number from 1 to 65535, not 0' },
        { path: 'defaultTarget.routeId', message: "there is no route with id 'x'" },
      ],
    );
    assert.deepEqual(validateRuleset(null), [{ path: '', message: 'a ruleset must be an object, not null' }]);
  });
});

describe('robustness', () => {
  it('never throws on arbitrary input', () => {
    const anyRule = fc.oneof(
      fc.anything(),
      fc.record({
        id: fc.oneof(fc.string(), fc.anything()),
        enabled: fc.oneof(fc.boolean(), fc.anything()),
        match: fc.oneof(
          fc.anything(),
          fc.record(
            {
              hosts: fc.oneof(
                fc.anything(),
                fc.array(fc.oneof(fc.anything(), fc.record({ type: fc.anything(), value: fc.anything() }))),
              ),
              ips: fc.oneof(fc.anything(), fc.array(fc.oneof(fc.string(), fc.anything()))),
              ports: fc.oneof(fc.anything(), fc.array(fc.oneof(fc.integer(), fc.anything()))),
            },
            { requiredKeys: [] },
          ),
        ),
        target: fc.oneof(
          fc.anything(),
          fc.record({ kind: fc.constantFrom('route', 'direct', 'block', 'x'), routeId: fc.anything() }),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.array(anyRule)), (input) => {
        const errors = validateRules(input);
        assert.ok(Array.isArray(errors));
        for (const error of errors)
          assert.ok(typeof error.path === 'string' && typeof error.message === 'string');
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary pattern strings', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('exact', 'domain', 'suffix', 'regex'),
        fc.string({ maxLength: 40 }),
        (type, value) => {
          assert.ok(Array.isArray(validateHostPattern({ type, value })));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
