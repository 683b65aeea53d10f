/**
 * Access control end to end.
 *
 * (a) In-process: the real SOCKS server with the real policy (buildPolicy from a config that
 *     passed the schema) and an injected clock and resolver. Each way a rule can deny (inbound
 *     user, source, destination name, destination address after resolution, port, time window)
 *     answers REP 02 to SOCKS5 and CD 91 to SOCKS4, logs the denying rule, and never reaches the
 *     target; and so do private destinations when listening beyond loopback.
 * (b) Real processes: `serve` running as root, and curl run as ANOTHER OS user (setpriv), which
 *     is refused by default and admitted by `localClients: "any"` or a `localUsers` allow rule;
 *     and a `programs` rule that refuses curl while Python (PySocks) gets through.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type ConfigInput, validateConfig } from '../../shared/config/schema.ts';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import type { InboundUser } from '../../native-host/src/auth/users.ts';
import { silentLogger } from '../../native-host/src/log/logger.ts';
import type { ResolvedAddress } from '../../native-host/src/outbound/resolve.ts';
import { buildPolicy } from '../../native-host/src/policy/dispatcher.ts';
import {
  OTHER_USER,
  PYTHON,
  SETPRIV,
  type ServeProcess,
  type TempDir,
  curl,
  ensureOtherUser,
  linesFor,
  parseTextLog,
  pick,
  runProgram,
  socks4Connect,
  socks5Connect,
  startServe,
  tempDir,
  writeConfig,
} from '../helpers/configs.ts';
import { type EchoServer, startEchoServer } from '../helpers/net.ts';
import { type TestServer, startSocksServer } from '../helpers/socks-server.ts';
import { SMALL_BODY, type TestHttpServer, startHttpServer } from '../helpers/switchyard-process.ts';
import { waitFor } from '../helpers/wait.ts';

const TEST_TIMEOUT = 20_000;
const NOT_ALLOWED = 0x02;
const SOCKS4_REJECTED = 91;
const SOCKS4_GRANTED = 90;

// ---- (a) in-process ---------------------------------------------------------------------------

interface PolicyServerOptions {
  readonly listenIsLoopback?: boolean;
  readonly now?: () => Date;
  readonly users?: InboundUser[];
  readonly socks4AllowFrom?: string[];
}

interface PolicyServer {
  readonly server: TestServer;
  readonly port: number;
  /** Names handed to the resolver (the hosts map answers first and is not counted). */
  readonly lookups: string[];
  /** The `tunnel denied` / `tunnel failed` lines for `dest`, as fields. */
  lines(msg: 'tunnel denied' | 'tunnel failed' | 'tunnel closed', dest: string): Record<string, string>[];
  close(): Promise<void>;
}

/** A resolver that knows localhost only: nothing here may reach DNS. */
function testLookup(lookups: string[]) {
  return async (host: string): Promise<ResolvedAddress[]> => {
    lookups.push(host);
    if (host === 'localhost') {
      return [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ];
    }
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
}

async function policyServer(
  input: Omit<ConfigInput, 'version'>,
  options: PolicyServerOptions = {},
): Promise<PolicyServer> {
  const result = validateConfig({ version: 1, ...input });
  if (!result.ok) throw new Error(`bad test config: ${JSON.stringify(result.issues)}`);
  const lookups: string[] = [];
  const policy = buildPolicy({
    config: result.config,
    credentials: async () => undefined,
    logger: silentLogger,
    ownerUid: process.getuid?.(),
    listenIsLoopback: options.listenIsLoopback ?? true,
    ...(options.now ? { now: options.now } : {}),
    lookup: testLookup(lookups),
  });
  const server = await startSocksServer({
    dispatch: policy.dispatch,
    ...(options.users ? { users: options.users } : {}),
    ...(options.socks4AllowFrom ? { socks4AllowFrom: options.socks4AllowFrom } : {}),
  });
  return {
    server,
    port: server.port,
    lookups,
    lines: (msg, dest) =>
      parseTextLog(server.logs.join(''))
        .filter((l) => l.msg === msg && l.fields.dest === dest)
        .map((l) => ({ ...l.fields })),
    close: () => server.close(),
  };
}

/** SOCKS5 CONNECT; returns the REP and closes. */
async function rep5(
  port: number,
  host: string,
  destPort: number,
  options: Parameters<typeof socks5Connect>[3] = {},
): Promise<number> {
  const { rep, socket } = await socks5Connect(port, host, destPort, options);
  socket.destroy();
  return rep;
}

/** SOCKS4 (IPv4 literal) or SOCKS4a (name) CONNECT; returns CD and closes. */
async function cd4(port: number, host: string, destPort: number, localAddress?: string): Promise<number> {
  const { cd, socket } = await socks4Connect(port, host, destPort, localAddress ? { localAddress } : {});
  socket.destroy();
  return cd;
}

describe('access rules, in-process with the real policy', () => {
  let echo: EchoServer;
  let echo2: EchoServer;
  let echo6: EchoServer;

  before(async () => {
    [echo, echo2, echo6] = await Promise.all([startEchoServer(), startEchoServer(), startEchoServer('::1')]);
  });
  after(async () => {
    await Promise.all([echo?.close(), echo2?.close(), echo6?.close()]);
  });

  /** The denial line for `dest`: rule and protocol, once it is logged. */
  async function denied(p: PolicyServer, dest: string, count: number): Promise<Record<string, string>[]> {
    await waitFor(() => p.lines('tunnel denied', dest).length >= count, `${count} denied lines for ${dest}`);
    return p.lines('tunnel denied', dest);
  }

  test('by inbound user: bob gets REP 02 and the rule is logged; alice gets through', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const [alice, bob] = await Promise.all([hashPassword('alice-pw'), hashPassword('bob-pw')]);
    const p = await policyServer(
      { access: [{ id: 'no-bob', action: 'deny', users: ['bob'] }] },
      {
        users: [
          { name: 'alice', passwordHash: alice },
          { name: 'bob', passwordHash: bob },
        ],
        socks4AllowFrom: ['127.0.0.1'],
      },
    );
    try {
      const dest = `127.0.0.1:${echo.port}`;
      assert.equal(
        await rep5(p.port, '127.0.0.1', echo.port, { user: { name: 'bob', password: 'bob-pw' } }),
        2,
      );
      const [line] = await denied(p, dest, 1);
      assert.deepEqual(pick(line!, ['user', 'proto', 'rule']), {
        user: 'bob',
        proto: 'socks5',
        rule: 'access no-bob',
      });
      assert.equal(
        line!.reason,
        `access rule 'no-bob' denies connections as user bob from 127.0.0.1 to ${dest}; ` +
          'change that rule, or add an allow rule before it, to permit them',
      );
      assert.equal(echo.sockets.length, 0, 'the denied request reached the target');
      assert.equal(
        await rep5(p.port, '127.0.0.1', echo.port, { user: { name: 'alice', password: 'alice-pw' } }),
        0,
      );
      // SOCKS4 carries no authenticated user, so a users rule cannot match it (it is let in only
      // because socks4AllowFrom names its source).
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port), SOCKS4_GRANTED);
    } finally {
      await p.close();
    }
  });

  test('by source CIDR: 127.0.0.2 gets REP 02 / CD 91, 127.0.0.1 gets through', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const p = await policyServer({
      access: [{ id: 'not-from-2', action: 'deny', sources: ['127.0.0.2/32'] }],
    });
    try {
      const accepted = echo.sockets.length;
      const dest = `127.0.0.1:${echo.port}`;
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port, { localAddress: '127.0.0.2' }), NOT_ALLOWED);
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port, '127.0.0.2'), SOCKS4_REJECTED);
      const lines = await denied(p, dest, 2);
      assert.deepEqual(
        lines.map((l) => [l.proto, l.rule, l.client?.replace(/:\d+$/, '')]),
        [
          ['socks5', 'access not-from-2', '127.0.0.2'],
          ['socks4', 'access not-from-2', '127.0.0.2'],
        ],
      );
      assert.equal(echo.sockets.length, accepted, 'a denied request reached the target');
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), 0);
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port), SOCKS4_GRANTED);
    } finally {
      await p.close();
    }
  });

  test('by destination host pattern: *.blocked.test is refused before any resolution', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const p = await policyServer({
      access: [{ id: 'no-blocked', action: 'deny', hosts: [{ type: 'domain', value: '*.blocked.test' }] }],
      hosts: { 'www.blocked.test': ['127.0.0.1'], 'fine.test': ['127.0.0.1'] },
    });
    try {
      const accepted = echo.sockets.length;
      assert.equal(await rep5(p.port, 'www.blocked.test', echo.port), NOT_ALLOWED);
      assert.equal(await cd4(p.port, 'www.blocked.test', echo.port), SOCKS4_REJECTED);
      assert.equal(await rep5(p.port, 'blocked.test', echo.port), NOT_ALLOWED);
      const lines = await denied(p, `www.blocked.test:${echo.port}`, 2);
      assert.deepEqual(
        lines.map((l) => [l.proto, l.rule]),
        [
          ['socks5', 'access no-blocked'],
          ['socks4a', 'access no-blocked'],
        ],
      );
      assert.equal((await denied(p, `blocked.test:${echo.port}`, 1))[0]?.rule, 'access no-blocked');
      assert.equal(echo.sockets.length, accepted, 'a denied request reached the target');
      assert.equal(await rep5(p.port, 'fine.test', echo.port), 0);
      assert.equal(await cd4(p.port, 'fine.test', echo.port), SOCKS4_GRANTED);
      assert.deepEqual(p.lookups, []);
    } finally {
      await p.close();
    }
  });

  test('by destination address after resolution: a hosts-map name for 127.0.0.1 under a 127.0.0.0/8 deny', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const p = await policyServer({
      access: [{ id: 'no-loopback4', action: 'deny', destinations: ['127.0.0.0/8'] }],
      hosts: { 'inside.test': ['127.0.0.1'], 'v6.test': ['::1'] },
    });
    try {
      const accepted = echo.sockets.length;
      assert.equal(await rep5(p.port, 'inside.test', echo.port), NOT_ALLOWED);
      assert.equal(await cd4(p.port, 'inside.test', echo.port), SOCKS4_REJECTED);
      const dest = `inside.test:${echo.port}`;
      await waitFor(() => p.lines('tunnel failed', dest).length === 2, 'two failed lines');
      const reason =
        `denied by access rule no-loopback4: access rule 'no-loopback4' denies connections from 127.0.0.1 to ` +
        `inside.test (127.0.0.1):${echo.port}; change that rule, or add an allow rule before it, to permit them`;
      assert.deepEqual(
        p.lines('tunnel failed', dest).map((l) => pick(l, ['proto', 'rule', 'via', 'result', 'error'])),
        ['socks5', 'socks4a'].map((proto) => ({
          proto,
          rule: 'default',
          via: 'direct',
          result: 'rep 2 (not allowed by ruleset)',
          error: reason,
        })),
      );
      // The literal is refused before routing, without connecting either.
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), NOT_ALLOWED);
      assert.equal((await denied(p, `127.0.0.1:${echo.port}`, 1))[0]?.rule, 'access no-loopback4');
      assert.equal(echo.sockets.length, accepted, 'a denied request reached the target');
      // An address outside the range is fine.
      assert.equal(await rep5(p.port, 'v6.test', echo6.port), 0);
      await waitFor(() => echo6.sockets.length === 1, 'the ::1 target');
    } finally {
      await p.close();
    }
  });

  test('by port: the denied port gets REP 02 / CD 91, another port gets through', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const p = await policyServer({ access: [{ id: 'no-port', action: 'deny', ports: [echo.port] }] });
    try {
      const accepted = echo.sockets.length;
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), NOT_ALLOWED);
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port), SOCKS4_REJECTED);
      const lines = await denied(p, `127.0.0.1:${echo.port}`, 2);
      assert.deepEqual(
        lines.map((l) => [l.proto, l.rule]),
        [
          ['socks5', 'access no-port'],
          ['socks4', 'access no-port'],
        ],
      );
      assert.equal(echo.sockets.length, accepted, 'a denied request reached the target');
      assert.equal(await rep5(p.port, '127.0.0.1', echo2.port), 0);
      assert.equal(await cd4(p.port, '127.0.0.1', echo2.port), SOCKS4_GRANTED);
    } finally {
      await p.close();
    }
  });

  test('by time window: allowed inside office hours, denied outside (injected clock)', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    // Monday 2024-01-01, in UTC.
    let now = new Date('2024-01-01T10:00:00Z');
    const p = await policyServer(
      {
        access: [
          {
            id: 'office-hours',
            action: 'allow',
            time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00', timeZone: 'UTC' },
          },
          { id: 'after-hours', action: 'deny' },
        ],
      },
      { now: () => now },
    );
    try {
      const dest = `127.0.0.1:${echo.port}`;
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), 0);
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port), SOCKS4_GRANTED);
      now = new Date('2024-01-01T16:59:00Z');
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), 0);

      const accepted = echo.sockets.length;
      now = new Date('2024-01-01T17:00:00Z');
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), NOT_ALLOWED);
      now = new Date('2024-01-06T12:00:00Z'); // Saturday
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port), SOCKS4_REJECTED);
      const lines = await denied(p, dest, 2);
      assert.deepEqual(
        lines.map((l) => [l.proto, l.rule]),
        [
          ['socks5', 'access after-hours'],
          ['socks4', 'access after-hours'],
        ],
      );
      assert.equal(echo.sockets.length, accepted, 'a denied request reached the target');
    } finally {
      await p.close();
    }
  });

  test('privateDestinations "auto" beyond loopback denies 127.0.0.1, 127.1, localhost and [::1]', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const p = await policyServer({}, { listenIsLoopback: false });
    try {
      const accepted = echo.sockets.length;
      const accepted6 = echo6.sockets.length;
      assert.equal(await rep5(p.port, '127.0.0.1', echo.port), NOT_ALLOWED);
      assert.equal(await rep5(p.port, '127.1', echo.port), NOT_ALLOWED);
      assert.equal(await rep5(p.port, 'localhost', echo.port), NOT_ALLOWED);
      assert.equal(await rep5(p.port, '[::1]', echo6.port), NOT_ALLOWED);
      assert.equal(await cd4(p.port, '127.0.0.1', echo.port), SOCKS4_REJECTED);
      assert.equal(await cd4(p.port, '127.1', echo.port), SOCKS4_REJECTED);
      assert.equal(await cd4(p.port, 'localhost', echo.port), SOCKS4_REJECTED);

      const why =
        'Switchyard refuses loopback, private, link-local and multicast destinations when it listens ' +
        'beyond loopback, so that clients on the network cannot reach this machine or its LAN; ' +
        'set privateDestinations: "allow" to permit them';
      const rule = 'access builtin:private-destinations';
      const at = (host: string) => `${host}:${echo.port}`;
      await waitFor(() => p.lines('tunnel denied', at('127.0.0.1')).length === 2, 'denied 127.0.0.1');
      assert.deepEqual(
        p.lines('tunnel denied', at('127.0.0.1')).map((l) => pick(l, ['proto', 'rule', 'reason'])),
        ['socks5', 'socks4'].map((proto) => ({
          proto,
          rule,
          reason: `127.0.0.1 is a loopback address (this machine); ${why}`,
        })),
      );
      await waitFor(() => p.lines('tunnel denied', at('127.1')).length === 2, 'denied 127.1');
      assert.deepEqual(
        p.lines('tunnel denied', at('127.1')).map((l) => pick(l, ['proto', 'rule', 'reason'])),
        ['socks5', 'socks4a'].map((proto) => ({
          proto,
          rule,
          reason: `127.1 means 127.0.0.1, a loopback address (this machine); ${why}`,
        })),
      );
      const v6 = `[::1]:${echo6.port}`;
      await waitFor(() => p.lines('tunnel denied', v6).length === 1, 'denied ::1');
      assert.deepEqual(pick(p.lines('tunnel denied', v6)[0]!, ['proto', 'rule', 'reason']), {
        proto: 'socks5',
        rule,
        reason: `::1 is a loopback address (this machine); ${why}`,
      });
      // A name is judged on what it resolves to, at the direct exit, before connecting.
      await waitFor(() => p.lines('tunnel failed', at('localhost')).length === 2, 'failed localhost');
      assert.deepEqual(
        p.lines('tunnel failed', at('localhost')).map((l) => pick(l, ['proto', 'result', 'error'])),
        ['socks5', 'socks4a'].map((proto) => ({
          proto,
          result: 'rep 2 (not allowed by ruleset)',
          error:
            'denied by access rule builtin:private-destinations: none of the 2 addresses of localhost may be ' +
            `used; the first: localhost resolves to 127.0.0.1, a loopback address (this machine); ${why}`,
        })),
      );
      assert.deepEqual(p.lookups, ['localhost', 'localhost']);
      assert.equal(echo.sockets.length, accepted, 'a denied request reached the target');
      assert.equal(echo6.sockets.length, accepted6, 'a denied request reached the ::1 target');
    } finally {
      await p.close();
    }
    // The same config listening on loopback lets them through: 'auto' follows the listen address.
    const loopback = await policyServer({}, { listenIsLoopback: true });
    try {
      assert.equal(await rep5(loopback.port, '127.0.0.1', echo.port), 0);
      assert.equal(await rep5(loopback.port, 'localhost', echo.port), 0);
    } finally {
      await loopback.close();
    }
  });
});

// ---- (b) real processes, another OS user ------------------------------------------------------

const ROOT = process.getuid?.() === 0;

/** PySocks, remote DNS: GET /small; prints the status line and the body's length. */
const PYSOCKS_GET = `
import socket, sys
import socks
pport, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socks.socksocket(socket.AF_INET, socket.SOCK_STREAM)
s.set_proxy(socks.SOCKS5, '127.0.0.1', pport, rdns=True)
s.settimeout(10)
try:
    s.connect((host, port))
except socks.ProxyError as e:
    print('refused', e.msg if hasattr(e, 'msg') else e)
    sys.exit(3)
s.sendall(b'GET /small HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')
data = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b'\\r\\n\\r\\n')
print(head.split(b'\\r\\n')[0].decode(), len(body))
`;

describe('real processes: a client run as another OS user, and programs', () => {
  let other: { uid: number; gid: number };
  let dir: TempDir;
  let http: TestHttpServer;
  let owner: ServeProcess;
  let anyUser: ServeProcess;
  let admitted: ServeProcess;
  let noCurl: ServeProcess;

  before(async () => {
    assert.ok(process.platform === 'linux', 'client identity reads Linux /proc');
    assert.ok(ROOT, 'running a client as another OS user needs root');
    assert.ok(existsSync(SETPRIV) && existsSync(PYTHON), `needs ${SETPRIV} and ${PYTHON}`);
    [other, dir, http] = await Promise.all([
      ensureOtherUser(),
      tempDir('switchyard-access-'),
      startHttpServer(),
    ]);
    const start = async (name: string, config: Omit<ConfigInput, 'version'>): Promise<ServeProcess> => {
      const file = dir.path(`${name}.json`);
      await writeConfig(file, config);
      return startServe({ args: ['--listen', '127.0.0.1:0', '--config', file] });
    };
    [owner, anyUser, admitted, noCurl] = await Promise.all([
      start('owner', {}),
      start('any', { localClients: 'any' }),
      start('admitted', { access: [{ id: 'admit-other', action: 'allow', localUsers: [OTHER_USER] }] }),
      start('no-curl', { access: [{ id: 'no-curl', action: 'deny', programs: ['curl'] }] }),
    ]);
  });

  after(async () => {
    await Promise.all([owner?.stop(), anyUser?.stop(), admitted?.stop(), noCurl?.stop(), http?.close()]);
    await dir?.remove();
  });

  const url = () => `http://localhost:${http.port}${http.smallPath}`;
  const viaProxy = (host: ServeProcess) => ['--socks5-hostname', `127.0.0.1:${host.port}`, url()];

  test(`by default a client run as ${OTHER_USER} is refused: curl exits 97, "tunnel denied" names the rule`, {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(viaProxy(owner), { as: other });
    assert.equal(r.code, 97, r.stderr);
    assert.deepEqual(r.body, Buffer.alloc(0));
    const dest = `localhost:${http.port}`;
    await waitFor(() => linesFor(owner.stderr(), 'tunnel denied', dest).length === 1, 'the denied line');
    assert.deepEqual(
      pick(linesFor(owner.stderr(), 'tunnel denied', dest)[0]!.fields, ['proto', 'rule', 'reason']),
      {
        proto: 'socks5',
        rule: 'access builtin:owner-only',
        reason:
          `local user ${OTHER_USER} (uid ${other.uid}) is not the owner of this Switchyard (uid 0); ` +
          `set localClients: "any" or add an access rule to allow (action: "allow", localUsers: ["${OTHER_USER}"])`,
      },
    );
    assert.match(owner.stderr(), / tunnel denied .* rule="access builtin:owner-only" /);
    // The owner (root) itself gets through the same process.
    const mine = await curl(viaProxy(owner));
    assert.equal(mine.code, 0, mine.stderr);
    assert.deepEqual(mine.body, SMALL_BODY);
  });

  test(`with localClients "any", the same ${OTHER_USER} client gets through`, {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(viaProxy(anyUser), { as: other });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.body, SMALL_BODY);
    assert.deepEqual(linesFor(anyUser.stderr(), 'tunnel denied'), []);
  });

  test(`with an allow rule naming ${OTHER_USER} in localUsers, it gets through`, {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(viaProxy(admitted), { as: other });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.body, SMALL_BODY);
    assert.deepEqual(linesFor(admitted.stderr(), 'tunnel denied'), []);
  });

  test('a programs rule naming curl refuses curl (run as root) but not python (PySocks)', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(viaProxy(noCurl));
    assert.equal(r.code, 97, r.stderr);
    const dest = `localhost:${http.port}`;
    await waitFor(() => linesFor(noCurl.stderr(), 'tunnel denied', dest).length === 1, 'the denied line');
    assert.deepEqual(
      pick(linesFor(noCurl.stderr(), 'tunnel denied', dest)[0]!.fields, ['proto', 'rule', 'reason']),
      {
        proto: 'socks5',
        rule: 'access no-curl',
        reason:
          `access rule 'no-curl' denies connections from 127.0.0.1 to ${dest}; ` +
          'change that rule, or add an allow rule before it, to permit them',
      },
    );

    const py = await runProgram(PYTHON, [
      '-c',
      PYSOCKS_GET,
      String(noCurl.port),
      'localhost',
      String(http.port),
    ]);
    assert.deepEqual(py, {
      code: 0,
      signal: null,
      stdout: `HTTP/1.1 200 OK ${SMALL_BODY.length}\n`,
      stderr: '',
    });
    await waitFor(() => linesFor(noCurl.stderr(), 'tunnel closed', dest).length === 1, 'the python tunnel');
    assert.equal(linesFor(noCurl.stderr(), 'tunnel denied', dest).length, 1);
  });
});
