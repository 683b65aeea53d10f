import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessRule } from '../../shared/config/schema.ts';
import { RulesValidationError } from '../../shared/rules/matcher.ts';
import {
  type AccessAllow,
  type AccessDeny,
  type AccessPending,
  type AccessPolicy,
  type AccessVerdict,
  compileAccess,
  needsResolution,
} from '../../native-host/src/policy/access.ts';
import type {
  ClientIdentity,
  IdentityFailure,
  IdentityLookup,
  lookupClientIdentity,
} from '../../native-host/src/policy/client-identity.ts';
import { addressOf } from '../../native-host/src/protocol/address.ts';
import type { TunnelRequest } from '../../native-host/src/server/types.ts';

interface RequestOptions {
  host?: string;
  port?: number;
  client?: string;
  local?: string;
  user?: string;
}

function request(options: RequestOptions = {}): TunnelRequest {
  return {
    id: 7,
    protocol: 'socks5',
    command: 'connect',
    destination: addressOf(options.host ?? 'example.com', options.port ?? 443),
    client: { host: options.client ?? '127.0.0.1', port: 50123 },
    local: { host: options.local ?? '127.0.0.1', port: 1080 },
    user: options.user,
  };
}

interface IdentityStub {
  readonly fn: typeof lookupClientIdentity;
  readonly calls: { program: boolean }[];
}

function identityStub(identity: IdentityLookup): IdentityStub {
  const calls: { program: boolean }[] = [];
  return {
    calls,
    fn: async (_client, _server, options) => {
      calls.push({ program: options.program });
      return identity;
    },
  };
}

interface PolicyOptions {
  localClients?: 'owner' | 'any';
  privateDestinations?: 'auto' | 'allow' | 'deny';
  ownerUid?: number;
  listenIsLoopback?: boolean;
  now?: () => Date;
  identity?: IdentityStub;
  debug?: string[];
}

function policy(access: AccessRule[], options: PolicyOptions = {}): AccessPolicy {
  const identity = options.identity ?? identityStub(undefined);
  const debug = options.debug;
  return compileAccess(
    {
      access,
      localClients: options.localClients ?? 'any',
      privateDestinations: options.privateDestinations ?? 'allow',
    },
    {
      ownerUid: options.ownerUid ?? 1000,
      listenIsLoopback: options.listenIsLoopback ?? true,
      now: options.now,
      identity: identity.fn,
      logger: debug === undefined ? undefined : { debug: (message) => debug.push(message) },
    },
  );
}

function asPending(verdict: AccessVerdict): AccessPending {
  assert.equal(verdict.kind, 'pending', `expected pending, got ${JSON.stringify(verdict)}`);
  return verdict as AccessPending;
}

const ALLOW: AccessAllow = { kind: 'allow' };
const allowBy = (rule: string): AccessAllow => ({ kind: 'allow', rule });
const ruleDeny = (rule: string, what: string): AccessDeny => ({
  kind: 'deny',
  rule,
  reason: `access rule '${rule}' denies connections ${what}; change that rule, or add an allow rule before it, to permit them`,
});

describe('access: rules in general', () => {
  test('no rules allow everything', async () => {
    assert.deepEqual(await policy([]).evaluate(request()), ALLOW);
  });

  test('first match wins; no match allows', async () => {
    const p = policy([
      { id: 'bob-ssh', action: 'allow', users: ['bob'], ports: [22] },
      { id: 'no-ssh', action: 'deny', ports: [22] },
    ]);
    assert.deepEqual(await p.evaluate(request({ user: 'bob', port: 22 })), allowBy('bob-ssh'));
    assert.deepEqual(
      await p.evaluate(request({ user: 'alice', port: 22 })),
      ruleDeny('no-ssh', 'as user alice from 127.0.0.1 to example.com:22'),
    );
    assert.deepEqual(await p.evaluate(request({ user: 'alice', port: 443 })), ALLOW);
  });

  test('a rule is labelled by its id, else its name, else its position', async () => {
    const p = policy([
      { id: 'by-id', name: 'Named', action: 'deny', ports: [1] },
      { name: 'Only a name', action: 'deny', ports: [2] },
      { action: 'deny', ports: [3] },
    ]);
    assert.equal(((await p.evaluate(request({ port: 1 }))) as AccessDeny).rule, 'by-id');
    assert.equal(((await p.evaluate(request({ port: 2 }))) as AccessDeny).rule, 'Only a name');
    assert.equal(((await p.evaluate(request({ port: 3 }))) as AccessDeny).rule, 'access[2]');
  });

  test('a rule without conditions matches everything', async () => {
    assert.deepEqual(
      await policy([{ id: 'all', action: 'deny' }]).evaluate(
        request({ client: '::1', host: '::1', port: 80 }),
      ),
      ruleDeny('all', 'from [::1] to [::1]:80'),
    );
  });

  test('all present conditions must hold', async () => {
    const p = policy([
      { id: 'r', action: 'deny', users: ['bob'], ports: [443], hosts: [{ type: 'exact', value: 'a.test' }] },
    ]);
    assert.equal((await p.evaluate(request({ user: 'bob', host: 'a.test', port: 443 }))).kind, 'deny');
    assert.equal((await p.evaluate(request({ user: 'bob', host: 'b.test', port: 443 }))).kind, 'allow');
    assert.equal((await p.evaluate(request({ user: 'bob', host: 'a.test', port: 80 }))).kind, 'allow');
    assert.equal((await p.evaluate(request({ user: 'eve', host: 'a.test', port: 443 }))).kind, 'allow');
  });

  test('invalid rules are refused with the field path', () => {
    const paths = (access: AccessRule[]): string[] => {
      try {
        policy(access);
      } catch (error) {
        assert.ok(error instanceof RulesValidationError);
        return error.errors.map((e) => e.path);
      }
      return [];
    };
    assert.deepEqual(paths([{ action: 'deny', sources: ['10.0.0.1/8'] }]), ['access[0].sources[0]']);
    assert.deepEqual(paths([{ action: 'deny' }, { action: 'deny', destinations: ['nonsense'] }]), [
      'access[1].destinations[0]',
    ]);
    assert.deepEqual(paths([{ action: 'deny', hosts: [{ type: 'regex', value: '(' }] }]), [
      'access[0].hosts[0]',
    ]);
    assert.deepEqual(paths([{ action: 'deny', ports: [0] }]), ['access[0].ports[0]']);
    assert.deepEqual(paths([{ action: 'deny', time: { timeZone: 'Mars/Olympus' } }]), ['access[0].time']);
  });
});

describe('access: users', () => {
  test('inbound user names, case-sensitive; no user never matches', async () => {
    const p = policy([{ id: 'u', action: 'deny', users: ['bob', 'carol'] }]);
    assert.equal((await p.evaluate(request({ user: 'carol' }))).kind, 'deny');
    assert.deepEqual(await p.evaluate(request({ user: 'Bob' })), ALLOW);
    assert.deepEqual(await p.evaluate(request()), ALLOW);
  });
});

describe('access: sources', () => {
  const p = policy([
    { id: 'lan4', action: 'deny', sources: ['192.168.0.0/16', '10.1.2.3'] },
    { id: 'lan6', action: 'deny', sources: ['2001:db8::/32'] },
  ]);

  test('IPv4 CIDR and single address', async () => {
    assert.deepEqual(
      await p.evaluate(request({ client: '192.168.7.9' })),
      ruleDeny('lan4', 'from 192.168.7.9 to example.com:443'),
    );
    assert.equal(((await p.evaluate(request({ client: '10.1.2.3' }))) as AccessDeny).rule, 'lan4');
    assert.deepEqual(await p.evaluate(request({ client: '10.1.2.4' })), ALLOW);
  });

  test('IPv4-mapped clients (dual-stack listeners) match IPv4 ranges', async () => {
    assert.equal(((await p.evaluate(request({ client: '::ffff:192.168.0.1' }))) as AccessDeny).rule, 'lan4');
  });

  test('IPv6 CIDR', async () => {
    assert.deepEqual(
      await p.evaluate(request({ client: '2001:db8:1::5' })),
      ruleDeny('lan6', 'from [2001:db8:1::5] to example.com:443'),
    );
    assert.deepEqual(await p.evaluate(request({ client: '2001:db9::5' })), ALLOW);
  });
});

describe('access: hosts', () => {
  const p = policy([
    { id: 'corp', action: 'deny', hosts: [{ type: 'domain', value: '*.corp.example' }], ports: [443] },
    { id: 'ones', action: 'deny', hosts: [{ type: 'suffix', value: '.1' }] },
  ]);

  test('host patterns as in routing rules, with ports', async () => {
    assert.equal(((await p.evaluate(request({ host: 'wiki.corp.example' }))) as AccessDeny).rule, 'corp');
    assert.equal(((await p.evaluate(request({ host: 'CORP.example.' }))) as AccessDeny).rule, 'corp');
    assert.deepEqual(await p.evaluate(request({ host: 'wiki.corp.example', port: 80 })), ALLOW);
    assert.deepEqual(await p.evaluate(request({ host: 'corp.example.org' })), ALLOW);
  });

  test('an IP literal never matches host patterns, in any spelling', async () => {
    for (const host of ['10.0.0.1', '127.1', '0x7f000001', '::1']) {
      assert.deepEqual(await p.evaluate(request({ host })), ALLOW, host);
    }
    assert.equal(((await p.evaluate(request({ host: 'printer.1' }))) as AccessDeny).rule, 'ones');
  });
});

describe('access: ports', () => {
  test('single ports and ranges', async () => {
    const p = policy([{ id: 'p', action: 'deny', ports: [25, { from: 6000, to: 6010 }] }]);
    assert.equal((await p.evaluate(request({ port: 25 }))).kind, 'deny');
    assert.equal((await p.evaluate(request({ port: 6000 }))).kind, 'deny');
    assert.equal((await p.evaluate(request({ port: 6010, host: '10.0.0.1' }))).kind, 'deny');
    assert.equal((await p.evaluate(request({ port: 6011 }))).kind, 'allow');
    assert.equal((await p.evaluate(request({ port: 26 }))).kind, 'allow');
  });
});

describe('access: destinations', () => {
  const rules: AccessRule[] = [
    { id: 'blocked', action: 'deny', hosts: [{ type: 'exact', value: 'blocked.test' }] },
    { id: 'no-lan', action: 'deny', destinations: ['10.0.0.0/8', 'fd00::/8'] },
    { id: 'web', action: 'allow', ports: [443] },
    { id: 'rest', action: 'deny' },
  ];
  const p = policy(rules);

  test('an IP literal is judged at once', async () => {
    assert.deepEqual(
      await p.evaluate(request({ host: '10.2.3.4' })),
      ruleDeny('no-lan', 'from 127.0.0.1 to 10.2.3.4:443'),
    );
    assert.deepEqual(
      await p.evaluate(request({ host: 'fd00::5' })),
      ruleDeny('no-lan', 'from 127.0.0.1 to [fd00::5]:443'),
    );
    assert.deepEqual(await p.evaluate(request({ host: '93.184.216.34' })), allowBy('web'));
    assert.equal(
      ((await p.evaluate(request({ host: '93.184.216.34', port: 80 }))) as AccessDeny).rule,
      'rest',
    );
  });

  test('a rule decided before the destinations rule needs no resolution', async () => {
    assert.equal(((await p.evaluate(request({ host: 'blocked.test' }))) as AccessDeny).rule, 'blocked');
  });

  test('a name waits for resolution; each address is judged on its own', async () => {
    const pending = asPending(await p.evaluate(request({ host: 'mixed.test' })));
    assert.equal(needsResolution(pending), true);
    assert.equal(pending.host, 'mixed.test');
    assert.deepEqual(pending.resolve(['10.0.0.5', '93.184.216.34', 'fd00::1', '2606:2800::1']), {
      kind: 'allow',
      rule: 'web',
      addresses: ['93.184.216.34', '2606:2800::1'],
      excluded: [
        {
          address: '10.0.0.5',
          ...ruleDeny('no-lan', 'from 127.0.0.1 to mixed.test (10.0.0.5):443'),
        },
        {
          address: 'fd00::1',
          ...ruleDeny('no-lan', 'from 127.0.0.1 to mixed.test (fd00::1):443'),
        },
      ].map(({ address, rule, reason }) => ({ address, rule, reason })),
    });
  });

  test('a name whose every address is denied is denied', async () => {
    const pending = asPending(await p.evaluate(request({ host: 'lan.test' })));
    assert.deepEqual(
      pending.resolve(['10.0.0.5']),
      ruleDeny('no-lan', 'from 127.0.0.1 to lan.test (10.0.0.5):443'),
    );
    const two = pending.resolve(['10.0.0.5', '10.0.0.6']);
    assert.equal(two.kind, 'deny');
    assert.equal((two as AccessDeny).rule, 'no-lan');
    assert.match(
      (two as AccessDeny).reason,
      /^none of the 2 addresses of lan\.test may be used; the first: /,
    );
    assert.deepEqual(pending.resolve([]), {
      kind: 'deny',
      rule: 'builtin:no-address',
      reason: 'lan.test resolved to no addresses',
    });
  });

  test('later rules still see the name and the port per address', async () => {
    const pending = asPending(await p.evaluate(request({ host: 'web.test', port: 80 })));
    const verdict = pending.resolve(['10.0.0.1', '1.1.1.1']);
    assert.equal(verdict.kind, 'deny');
    assert.equal((verdict as AccessDeny).rule, 'no-lan');
    assert.match((verdict as AccessDeny).reason, /none of the 2 addresses/);
  });

  test('allow rules with destinations pick addresses too', async () => {
    const q = policy([
      { id: 'cdn', action: 'allow', destinations: ['93.184.216.0/24'] },
      { id: 'rest', action: 'deny' },
    ]);
    const pending = asPending(await q.evaluate(request({ host: 'cdn.test' })));
    const verdict = pending.resolve(['1.1.1.1', '93.184.216.34']);
    assert.equal(verdict.kind, 'allow');
    assert.deepEqual((verdict as AccessAllow).addresses, ['93.184.216.34']);
    assert.equal((verdict as AccessAllow).rule, 'cdn');
    assert.deepEqual(
      (verdict as AccessAllow).excluded?.map((e) => [e.address, e.rule]),
      [['1.1.1.1', 'rest']],
    );
  });

  test('unresolved(): at a chained exit, destinations do not match a name', async () => {
    const pending = asPending(await p.evaluate(request({ host: 'mixed.test' })));
    assert.deepEqual(pending.unresolved(), allowBy('web'));
    const p80 = asPending(await p.evaluate(request({ host: 'mixed.test', port: 80 })));
    assert.equal((p80.unresolved() as AccessDeny).rule, 'rest');
  });

  test('a non-canonical numeric name is judged as its address', async () => {
    // 0x0a000001 is 10.0.0.1 to getaddrinfo.
    const verdict = await p.evaluate(request({ host: '0x0a000001' }));
    assert.deepEqual(verdict, ruleDeny('no-lan', 'from 127.0.0.1 to 0x0a000001:443'));
    // Allowed on its parsed address, but still resolved so that the resolver's reading is checked.
    const pending = asPending(await p.evaluate(request({ host: '1.1' })));
    assert.deepEqual(pending.resolve(['1.0.0.1']), {
      ...allowBy('web'),
      addresses: ['1.0.0.1'],
      excluded: [],
    });
    assert.equal((pending.resolve(['10.0.0.1']) as AccessDeny).rule, 'no-lan');
  });

  test('verdicts of canonical literals and of names without destination rules are final', async () => {
    const q = policy([{ id: 'web', action: 'allow', ports: [443] }]);
    assert.equal(needsResolution(await q.evaluate(request({ host: 'example.com' }))), false);
    assert.equal(needsResolution(await p.evaluate(request({ host: '1.1.1.1' }))), false);
  });
});

describe('access: time windows', () => {
  // 2024-06-03 is a Monday; Asia/Tokyo has no daylight saving.
  let clock = new Date('2024-06-03T10:00:00+09:00');
  const p = policy(
    [
      {
        id: 'office-hours',
        action: 'allow',
        time: {
          days: ['mon', 'tue', 'wed', 'thu', 'fri'],
          from: '09:00',
          to: '18:00',
          timeZone: 'Asia/Tokyo',
        },
      },
      {
        id: 'night',
        action: 'allow',
        hosts: [{ type: 'exact', value: 'backup.test' }],
        time: { from: '22:00', to: '06:00', timeZone: 'Asia/Tokyo' },
      },
      { id: 'closed', action: 'deny' },
    ],
    { now: () => clock },
  );

  test('inside and outside office hours, on the injected clock', async () => {
    clock = new Date('2024-06-03T10:00:00+09:00');
    assert.deepEqual(await p.evaluate(request()), allowBy('office-hours'));
    clock = new Date('2024-06-03T18:00:00+09:00');
    assert.equal(((await p.evaluate(request())) as AccessDeny).rule, 'closed');
    clock = new Date('2024-06-08T10:00:00+09:00'); // Saturday
    assert.equal(((await p.evaluate(request())) as AccessDeny).rule, 'closed');
    // 01:00 UTC on Monday is 10:00 in Tokyo: the zone decides, not the host.
    clock = new Date('2024-06-03T01:00:00Z');
    assert.deepEqual(await p.evaluate(request()), allowBy('office-hours'));
  });

  test('a window across midnight', async () => {
    clock = new Date('2024-06-08T23:30:00+09:00');
    assert.deepEqual(await p.evaluate(request({ host: 'backup.test' })), allowBy('night'));
    clock = new Date('2024-06-09T05:59:00+09:00');
    assert.deepEqual(await p.evaluate(request({ host: 'backup.test' })), allowBy('night'));
    clock = new Date('2024-06-09T06:00:00+09:00');
    assert.equal(((await p.evaluate(request({ host: 'backup.test' }))) as AccessDeny).rule, 'closed');
  });
});

describe('access: local users and programs', () => {
  const bob: ClientIdentity = { uid: 1001, userName: 'bob', pid: 4242, program: '/usr/bin/curl' };

  test('localUsers by name or uid', async () => {
    for (const entry of ['bob', 1001, '1001']) {
      const p = policy([{ id: 'no-bob', action: 'deny', localUsers: [entry] }], {
        identity: identityStub(bob),
      });
      assert.equal(((await p.evaluate(request())) as AccessDeny).rule, 'no-bob', String(entry));
    }
    const p = policy([{ id: 'no-carol', action: 'deny', localUsers: ['carol', 1002] }], {
      identity: identityStub(bob),
    });
    assert.deepEqual(await p.evaluate(request()), ALLOW);
  });

  test('programs by full path or executable name', async () => {
    for (const entry of ['/usr/bin/curl', 'curl']) {
      const p = policy([{ id: 'no-curl', action: 'deny', programs: [entry] }], {
        identity: identityStub(bob),
      });
      assert.equal(((await p.evaluate(request())) as AccessDeny).rule, 'no-curl', entry);
    }
    for (const entry of ['/bin/curl', 'wget', 'cur']) {
      const p = policy([{ id: 'no-curl', action: 'deny', programs: [entry] }], {
        identity: identityStub(bob),
      });
      assert.deepEqual(await p.evaluate(request()), ALLOW, entry);
    }
  });

  test('identity is fetched lazily, once, and the program only when a rule needs it', async () => {
    const none = identityStub(bob);
    await policy([{ action: 'deny', ports: [1] }], { identity: none }).evaluate(request());
    assert.deepEqual(none.calls, []);

    const users = identityStub(bob);
    const p = policy(
      [
        { action: 'deny', ports: [1], localUsers: ['x'] },
        { action: 'deny', localUsers: ['y'] },
        { action: 'deny', localUsers: ['z'] },
      ],
      { identity: users },
    );
    await p.evaluate(request());
    assert.deepEqual(users.calls, [{ program: false }]);

    const programs = identityStub(bob);
    await policy(
      [
        { action: 'deny', localUsers: ['x'] },
        { action: 'deny', programs: ['x'] },
      ],
      {
        identity: programs,
      },
    ).evaluate(request());
    assert.deepEqual(programs.calls, [{ program: true }]);

    // A rule decided before the identity rules spares the lookup.
    const early = identityStub(bob);
    await policy(
      [
        { action: 'allow', ports: [443] },
        { action: 'deny', localUsers: ['bob'] },
      ],
      {
        identity: early,
      },
    ).evaluate(request());
    assert.deepEqual(early.calls, []);
  });

  test('clients elsewhere have no local identity and match no such condition', async () => {
    const stub = identityStub(bob);
    const p = policy([{ id: 'no-bob', action: 'deny', localUsers: ['bob'] }], { identity: stub });
    assert.deepEqual(await p.evaluate(request({ client: '192.168.1.7', local: '192.168.1.5' })), ALLOW);
    assert.deepEqual(stub.calls, []);
  });

  test('an identity that cannot be read matches no such condition', async () => {
    const p = policy(
      [
        { id: 'only-bob', action: 'allow', localUsers: ['bob'] },
        { id: 'rest', action: 'deny' },
      ],
      {
        identity: identityStub(undefined),
      },
    );
    assert.equal(((await p.evaluate(request())) as AccessDeny).rule, 'rest');
  });

  test('identity needed after a pending destination is fetched before resolve()', async () => {
    const stub = identityStub(bob);
    const p = policy(
      [
        { id: 'no-lan', action: 'deny', destinations: ['10.0.0.0/8'] },
        { id: 'no-bob', action: 'deny', localUsers: ['bob'] },
      ],
      { identity: stub },
    );
    const pending = asPending(await p.evaluate(request({ host: 'x.test' })));
    assert.equal(stub.calls.length, 1);
    assert.equal((pending.resolve(['1.1.1.1']) as AccessDeny).rule, 'no-bob');
    assert.equal(stub.calls.length, 1);
  });
});

describe('access: owner only', () => {
  const bob: ClientIdentity = { uid: 1001, userName: 'bob' };
  const owner: ClientIdentity = { uid: 1000, userName: 'alice' };
  const ownerDeny: AccessDeny = {
    kind: 'deny',
    rule: 'builtin:owner-only',
    reason:
      'local user bob (uid 1001) is not the owner of this Switchyard (uid 1000); set localClients: "any" or ' +
      'add an access rule to allow (action: "allow", localUsers: ["bob"])',
  };

  test('another local user is refused, the owner is not', async () => {
    assert.deepEqual(
      await policy([], { localClients: 'owner', identity: identityStub(bob) }).evaluate(request()),
      ownerDeny,
    );
    assert.deepEqual(
      await policy([], { localClients: 'owner', identity: identityStub(owner) }).evaluate(request()),
      ALLOW,
    );
    const v6 = await policy([], { localClients: 'owner', identity: identityStub(bob) }).evaluate(
      request({ client: '::1', local: '::1' }),
    );
    assert.deepEqual(v6, ownerDeny);
    const mapped = await policy([], { localClients: 'owner', identity: identityStub(bob) }).evaluate(
      request({ client: '::ffff:127.0.0.1', local: '::ffff:127.0.0.1' }),
    );
    assert.deepEqual(mapped, ownerDeny);
  });

  test('a user without a name is named by uid', async () => {
    const verdict = await policy([], {
      localClients: 'owner',
      identity: identityStub({ uid: 4321 }),
    }).evaluate(request());
    assert.deepEqual(verdict, {
      kind: 'deny',
      rule: 'builtin:owner-only',
      reason:
        'local user with uid 4321 is not the owner of this Switchyard (uid 1000); set localClients: "any" or ' +
        'add an access rule to allow (action: "allow", localUsers: [4321])',
    });
  });

  test('localClients "any" does not look', async () => {
    const stub = identityStub(bob);
    assert.deepEqual(await policy([], { localClients: 'any', identity: stub }).evaluate(request()), ALLOW);
    assert.deepEqual(stub.calls, []);
  });

  test('where the platform cannot tell (the lookup answers undefined), allowed with a debug line', async () => {
    const debug: string[] = [];
    const verdict = await policy([], {
      localClients: 'owner',
      identity: identityStub(undefined),
      debug,
    }).evaluate(request());
    assert.deepEqual(verdict, ALLOW);
    assert.equal(debug.length, 1);
    assert.match(debug[0]!, /cannot tell which local user/);
  });

  const emfile: IdentityFailure = { kind: 'failure', reason: 'EMFILE reading /proc/net/tcp', code: 'EMFILE' };
  const unknownDeny = (why: string): AccessDeny => ({
    kind: 'deny',
    rule: 'builtin:owner-only',
    reason: `could not determine which local user runs this client (${why}); refusing because localClients is "owner"`,
  });

  test('where Linux could not tell (a typed failure), refused: fail closed, no debug line', async () => {
    const debug: string[] = [];
    const stub = identityStub(emfile);
    const verdict = await policy([], { localClients: 'owner', identity: stub, debug }).evaluate(request());
    assert.deepEqual(verdict, unknownDeny('EMFILE reading /proc/net/tcp'));
    assert.deepEqual(debug, []);
    assert.deepEqual(stub.calls, [{ program: false }]);
    const gone: IdentityFailure = {
      kind: 'failure',
      reason:
        'no socket from port 50123 to port 1080 in /proc/net/tcp or /proc/net/tcp6; the client may have closed',
    };
    assert.deepEqual(
      await policy([], { localClients: 'owner', identity: identityStub(gone) }).evaluate(
        request({ client: '::1', local: '::1' }),
      ),
      unknownDeny(gone.reason),
    );
  });

  test('a failure is refused whatever the rules allow: no localUsers rule can match an unknown user', async () => {
    const p = policy(
      [
        { id: 'bob-ok', action: 'allow', localUsers: ['bob', 1000] },
        { id: 'curl-ok', action: 'allow', programs: ['curl'] },
        { id: 'all', action: 'allow' },
      ],
      { localClients: 'owner', identity: identityStub(emfile) },
    );
    assert.deepEqual(await p.evaluate(request()), unknownDeny('EMFILE reading /proc/net/tcp'));
    // A name to resolve does not get as far as pending either.
    assert.deepEqual(
      await p.evaluate(request({ host: 'x.test' })),
      unknownDeny('EMFILE reading /proc/net/tcp'),
    );
  });

  test('an identity function that throws counts as a failure', async () => {
    const p = compileAccess(
      { access: [], localClients: 'owner', privateDestinations: 'allow' },
      {
        ownerUid: 1000,
        listenIsLoopback: true,
        identity: async () => {
          throw new Error('EACCES reading /proc/net/tcp');
        },
      },
    );
    assert.deepEqual(await p.evaluate(request()), unknownDeny('EACCES reading /proc/net/tcp'));
  });

  test('a failure costs nothing where the owner check does not apply', async () => {
    // Remote clients are never looked up.
    const remote = policy([], {
      localClients: 'owner',
      identity: identityStub(emfile),
      listenIsLoopback: false,
    });
    assert.deepEqual(
      await remote.evaluate(request({ client: '192.168.1.7', local: '192.168.1.5', host: '1.1.1.1' })),
      ALLOW,
    );
    // localClients "any": no owner check; localUsers and programs conditions match no one.
    const any = policy(
      [
        { id: 'alice-only', action: 'allow', localUsers: ['alice'] },
        { id: 'rest', action: 'deny' },
      ],
      { localClients: 'any', identity: identityStub(emfile) },
    );
    assert.equal(((await any.evaluate(request())) as AccessDeny).rule, 'rest');
  });

  test('a UDP association whose user cannot be told is refused, and so are its datagrams', async () => {
    const p = policy([], { localClients: 'owner', identity: identityStub(emfile) });
    const association: TunnelRequest = { ...request({ host: '0.0.0.0', port: 0 }), command: 'udp-associate' };
    assert.deepEqual(await p.evaluate(association), unknownDeny('EMFILE reading /proc/net/tcp'));
    assert.deepEqual(
      await p.evaluateDatagram(association, addressOf('1.1.1.1', 53)),
      unknownDeny('EMFILE reading /proc/net/tcp'),
    );
  });

  test('remote clients are not local users; a local client on our own LAN address is', async () => {
    const stub = identityStub(bob);
    const p = policy([], { localClients: 'owner', identity: stub, listenIsLoopback: false });
    assert.deepEqual(
      await p.evaluate(request({ client: '192.168.1.7', local: '192.168.1.5', host: '1.1.1.1' })),
      ALLOW,
    );
    assert.deepEqual(stub.calls, []);
    assert.deepEqual(
      await p.evaluate(request({ client: '192.168.1.5', local: '192.168.1.5', host: '1.1.1.1' })),
      ownerDeny,
    );
  });

  test('an allow rule naming the user in localUsers admits them; other allow rules do not', async () => {
    const admit = policy([{ id: 'bob-ok', action: 'allow', localUsers: ['bob'] }], {
      localClients: 'owner',
      identity: identityStub(bob),
    });
    assert.deepEqual(await admit.evaluate(request()), allowBy('bob-ok'));

    const broad = policy(
      [
        { id: 'web', action: 'allow', ports: [443] },
        { id: 'bob-ok', action: 'allow', localUsers: ['bob'] },
      ],
      {
        localClients: 'owner',
        identity: identityStub(bob),
      },
    );
    assert.deepEqual(await broad.evaluate(request()), ownerDeny);
    assert.deepEqual(await broad.evaluate(request({ port: 80 })), allowBy('bob-ok'));

    const denyFirst = policy(
      [
        { id: 'no-80', action: 'deny', ports: [80] },
        { id: 'bob-ok', action: 'allow', localUsers: [1001] },
      ],
      {
        localClients: 'owner',
        identity: identityStub(bob),
      },
    );
    assert.equal(((await denyFirst.evaluate(request({ port: 80 }))) as AccessDeny).rule, 'no-80');
  });

  test('the owner check comes first and looks the identity up once', async () => {
    const stub = identityStub({ ...bob, program: '/usr/bin/wget' });
    const p = policy(
      [
        { id: 'bob-ok', action: 'allow', localUsers: ['bob'], programs: ['curl'] },
        { id: 'no-wget', action: 'deny', programs: ['wget'] },
      ],
      { localClients: 'owner', identity: stub },
    );
    assert.equal(((await p.evaluate(request())) as AccessDeny).rule, 'no-wget');
    assert.deepEqual(stub.calls, [{ program: true }]);
  });
});

describe('access: private destinations', () => {
  const privateDeny = (what: string, why = 'auto'): AccessDeny => ({
    kind: 'deny',
    rule: 'builtin:private-destinations',
    reason:
      `${what}; Switchyard refuses loopback, private, link-local and multicast destinations ` +
      (why === 'auto'
        ? 'when it listens beyond loopback, so that clients on the network cannot reach this machine or its LAN; ' +
          'set privateDestinations: "allow" to permit them'
        : 'because privateDestinations is "deny"; set it to "allow" to permit them'),
  });
  const exposed = policy([], { listenIsLoopback: false, privateDestinations: 'auto' });

  test('auto: allowed when listening on loopback, refused beyond it', async () => {
    const local = policy([], { listenIsLoopback: true, privateDestinations: 'auto' });
    assert.equal(local.restrictsPrivate, false);
    assert.equal(exposed.restrictsPrivate, true);
    assert.deepEqual(await local.evaluate(request({ host: '127.0.0.1', client: '127.0.0.1' })), ALLOW);
    assert.deepEqual(
      await exposed.evaluate(request({ host: '127.0.0.1', client: '192.168.1.7' })),
      privateDeny('127.0.0.1 is a loopback address (this machine)'),
    );
    assert.deepEqual(
      await exposed.evaluate(request({ host: '192.168.1.1', client: '192.168.1.7' })),
      privateDeny('192.168.1.1 is a private network address'),
    );
    assert.deepEqual(
      await exposed.evaluate(request({ host: 'fe80::1', client: '192.168.1.7' })),
      privateDeny('fe80::1 is a link-local address'),
    );
  });

  test('deny and allow are unconditional', async () => {
    const deny = policy([], { listenIsLoopback: true, privateDestinations: 'deny' });
    assert.deepEqual(
      await deny.evaluate(request({ host: '10.0.0.1' })),
      privateDeny('10.0.0.1 is a private network address', 'deny'),
    );
    const allow = policy([], { listenIsLoopback: false, privateDestinations: 'allow' });
    assert.deepEqual(await allow.evaluate(request({ host: '10.0.0.1', client: '192.168.1.7' })), ALLOW);
  });

  test('127.1, 0x7f000001, 2130706433 and ::ffff:127.0.0.1 are loopback', async () => {
    for (const host of [
      '127.1',
      '0x7f000001',
      '2130706433',
      '::ffff:127.0.0.1',
      '[::ffff:7f00:1]',
      '0.0.0.0',
      '::',
    ]) {
      const verdict = await exposed.evaluate(request({ host, client: '192.168.1.7' }));
      assert.equal(verdict.kind, 'deny', host);
      assert.equal((verdict as AccessDeny).rule, 'builtin:private-destinations', host);
    }
    assert.deepEqual(
      await exposed.evaluate(request({ host: '127.1', client: '192.168.1.7' })),
      privateDeny('127.1 means 127.0.0.1, a loopback address (this machine)'),
    );
  });

  test('names are judged on their resolved addresses', async () => {
    const pending = asPending(await exposed.evaluate(request({ host: 'localhost', client: '192.168.1.7' })));
    assert.deepEqual(
      pending.resolve(['127.0.0.1']),
      privateDeny('localhost resolves to 127.0.0.1, a loopback address (this machine)'),
    );
    const rebinding = asPending(
      await exposed.evaluate(request({ host: 'rebind.test', client: '192.168.1.7' })),
    );
    assert.deepEqual(rebinding.resolve(['93.184.216.34', '10.0.0.1', '::1']), {
      kind: 'allow',
      addresses: ['93.184.216.34'],
      excluded: [
        {
          address: '10.0.0.1',
          ...privateDeny('rebind.test resolves to 10.0.0.1, a private network address'),
        },
        { address: '::1', ...privateDeny('rebind.test resolves to ::1, a loopback address (this machine)') },
      ].map(({ address, rule, reason }) => ({ address, rule, reason })),
    });
    // Through a chain the exit resolves in its own network: not ours to judge.
    assert.deepEqual(rebinding.unresolved(), ALLOW);
  });

  test('a public non-canonical numeric name is resolved and checked', async () => {
    const pending = asPending(await exposed.evaluate(request({ host: '0x08080808', client: '192.168.1.7' })));
    assert.deepEqual(pending.resolve(['8.8.8.8']), { kind: 'allow', addresses: ['8.8.8.8'], excluded: [] });
    assert.equal(pending.resolve(['127.0.0.1']).kind, 'deny');
  });

  test('allow rules do not override it; a deny rule before the name is resolved ends it early', async () => {
    const p = policy(
      [
        { id: 'lan-ok', action: 'allow', destinations: ['192.168.0.0/16'] },
        { id: 'no-x', action: 'deny', hosts: [{ type: 'exact', value: 'x.test' }] },
      ],
      { listenIsLoopback: false, privateDestinations: 'auto' },
    );
    assert.equal(
      ((await p.evaluate(request({ host: '192.168.1.1', client: '192.168.1.7' }))) as AccessDeny).rule,
      'builtin:private-destinations',
    );
    const pending = asPending(await p.evaluate(request({ host: 'x.test', client: '192.168.1.7' })));
    assert.equal((pending.resolve(['192.168.1.1']) as AccessDeny).rule, 'builtin:private-destinations');
    assert.equal((pending.resolve(['1.1.1.1']) as AccessDeny).rule, 'no-x');
    const q = policy([{ id: 'no-x', action: 'deny', hosts: [{ type: 'exact', value: 'x.test' }] }], {
      listenIsLoopback: false,
    });
    assert.equal(
      ((await q.evaluate(request({ host: 'x.test', client: '192.168.1.7' }))) as AccessDeny).rule,
      'no-x',
    );
  });

  test('a resolver answer that is not an address is refused', async () => {
    const pending = asPending(await exposed.evaluate(request({ host: 'odd.test', client: '192.168.1.7' })));
    const verdict = pending.resolve(['not-an-ip']);
    assert.equal(verdict.kind, 'deny');
    assert.equal((verdict as AccessDeny).rule, 'builtin:no-address');
  });
});

describe('access: UDP ASSOCIATE', () => {
  const associate = (options: RequestOptions & { user?: string } = {}): TunnelRequest => ({
    ...request({ host: '0.0.0.0', port: 0, ...options }),
    command: 'udp-associate',
  });

  test('the association is judged on the client alone', async () => {
    const p = policy([{ id: 'no-bob', action: 'deny', users: ['bob'] }]);
    assert.deepEqual(
      await p.evaluate(associate({ user: 'bob' })),
      ruleDeny('no-bob', 'as user bob from 127.0.0.1 to 0.0.0.0:0'),
    );
    assert.deepEqual(await p.evaluate(associate({ user: 'alice' })), ALLOW);
  });

  test('a rule about destinations defers to the datagrams', async () => {
    const p = policy([
      { id: 'corp-dns', action: 'allow', hosts: [{ type: 'domain', value: '*.corp.test' }], ports: [53] },
      { id: 'rest', action: 'deny' },
    ]);
    const association = associate();
    assert.deepEqual(await p.evaluate(association), ALLOW);
    assert.deepEqual(
      await p.evaluateDatagram(association, addressOf('ns.corp.test', 53)),
      allowBy('corp-dns'),
    );
    assert.deepEqual(
      await p.evaluateDatagram(association, addressOf('1.1.1.1', 53)),
      ruleDeny('rest', 'from 127.0.0.1 to 1.1.1.1:53'),
    );
  });

  test('the client address zeros are not a private destination; datagram destinations are', async () => {
    const p = policy([], { listenIsLoopback: false, privateDestinations: 'auto' });
    const association = associate({ client: '192.168.1.7', local: '192.168.1.5' });
    assert.deepEqual(await p.evaluate(association), ALLOW);
    const lan = await p.evaluateDatagram(association, addressOf('192.168.1.1', 53));
    assert.equal((lan as AccessDeny).rule, 'builtin:private-destinations');
    const pending = asPending(await p.evaluateDatagram(association, addressOf('dns.test', 53)));
    assert.deepEqual(pending.resolve(['9.9.9.9', '10.0.0.53']).kind, 'allow');
  });

  test('the identity is looked up once per association', async () => {
    const stub = identityStub({ uid: 1000, userName: 'alice' });
    const p = policy(
      [
        { id: 'no-bob', action: 'deny', localUsers: ['bob'] },
        { id: 'no-dns', action: 'deny', ports: [53], programs: ['curl'] },
      ],
      { localClients: 'owner', identity: stub },
    );
    const association = associate();
    assert.deepEqual(await p.evaluate(association), ALLOW);
    await Promise.all([
      p.evaluateDatagram(association, addressOf('1.1.1.1', 53)),
      p.evaluateDatagram(association, addressOf('8.8.8.8', 53)),
    ]);
    assert.deepEqual(stub.calls, [{ program: true }]);
  });
});
