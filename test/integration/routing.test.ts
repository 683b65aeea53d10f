/**
 * Routing through real processes: a `serve` process with a config file whose rules send `*.test`
 * through a route whose one hop is a SECOND `serve` process (with an inbound user; the first
 * process reads the password from the credential store, saved with `credential set`), block
 * `blocked.test` and send the rest direct. Then `switchyard route` and `switchyard check`
 * against that config, a `--via` chain (that second process, then an HTTP CONNECT proxy), a
 * dead first hop that falls back to direct, and where the upstream password must never appear.
 *
 * No DNS: names under .test exist only in the `hosts` maps of the configs, and only the
 * upstream's map knows `only-upstream.test`, so reaching it proves the name was resolved there.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { type HttpConnectProxy, startHttpConnectProxy } from '../helpers/http-connect-proxy.ts';
import {
  FILE_CREDENTIAL_STORE,
  type ServeProcess,
  type TempDir,
  curl,
  linesFor,
  pick,
  runSwitchyard,
  saveUpstreamPassword,
  socks4Connect,
  socks5Connect,
  startServe,
  tempDir,
  writeConfig,
} from '../helpers/configs.ts';
import { freePort } from '../helpers/reference-servers.ts';
import { SMALL_BODY, type TestHttpServer, startHttpServer } from '../helpers/switchyard-process.ts';
import { waitFor } from '../helpers/wait.ts';

const TEST_TIMEOUT = 20_000;
const RELAY_USER = 'relay';
const RELAY_PASSWORD = 'relay-secret-5b9e1c';
const TUNNEL_FIELDS = ['user', 'proto', 'cmd', 'dest', 'rule', 'via', 'remote', 'result'] as const;

let dir: TempDir;
let http: TestHttpServer;
let webProxy: HttpConnectProxy;
/** The upstream: a switchyard with an inbound user and its own hosts map. */
let upstream: ServeProcess;
/** The one under test, configured with rules and routes. */
let front: ServeProcess;
let frontConfig: string;
let deadPort: number;

before(async () => {
  [dir, http, webProxy, deadPort] = await Promise.all([
    tempDir('switchyard-routing-'),
    startHttpServer(),
    startHttpConnectProxy(),
    freePort(),
  ]);
  const upstreamConfig = dir.path('upstream.json');
  await writeConfig(upstreamConfig, { hosts: { 'only-upstream.test': ['127.0.0.1'] } });
  const added = await runSwitchyard(
    ['user', 'add', RELAY_USER, '--config', upstreamConfig, '--password-stdin'],
    { input: RELAY_PASSWORD },
  );
  assert.equal(added.code, 0, added.stderr);
  upstream = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', upstreamConfig] });

  frontConfig = dir.path('front.json');
  await writeConfig(frontConfig, {
    upstreams: [
      {
        id: 'up',
        name: 'upstream-yard',
        type: 'socks5',
        host: '127.0.0.1',
        port: upstream.port,
        username: RELAY_USER,
      },
      { id: 'web', name: 'web-proxy', type: 'http', host: '127.0.0.1', port: webProxy.port },
      { id: 'dead', type: 'socks5', host: '127.0.0.1', port: deadPort },
    ],
    routes: [
      { id: 'via-up', hops: ['up'] },
      { id: 'chain', name: 'two-hops', hops: ['up', 'web'] },
      { id: 'via-dead', hops: ['dead'], onFirstHopDown: 'direct' },
    ],
    rules: [
      {
        id: 'block-it',
        enabled: true,
        match: { hosts: [{ type: 'exact', value: 'blocked.test' }] },
        target: { kind: 'block' },
      },
      {
        id: 'here',
        enabled: true,
        match: { hosts: [{ type: 'exact', value: 'direct-only.test' }] },
        target: { kind: 'direct' },
      },
      {
        id: 'fallback',
        enabled: true,
        match: { hosts: [{ type: 'exact', value: 'fallback.test' }] },
        target: { kind: 'route', routeId: 'via-dead' },
      },
      {
        id: 'tests',
        enabled: true,
        match: { hosts: [{ type: 'domain', value: '*.test' }] },
        target: { kind: 'route', routeId: 'via-up' },
      },
    ],
    defaultTarget: { kind: 'direct' },
    hosts: { 'direct-only.test': ['127.0.0.1'], 'fallback.test': ['127.0.0.1'] },
  });
  await saveUpstreamPassword(frontConfig, 'up', RELAY_PASSWORD);
  front = await startServe({
    args: ['--listen', '127.0.0.1:0', '--config', frontConfig],
    env: FILE_CREDENTIAL_STORE,
  });
});

after(async () => {
  await Promise.all([front?.stop(), upstream?.stop(), http?.close(), webProxy?.close()]);
  await dir?.remove();
});

const url = (host: string): string => `http://${host}:${http.port}${http.smallPath}`;

/** The one `tunnel closed` line of `process` for `dest`, once it is there. */
async function tunnelLine(process: ServeProcess, dest: string): Promise<Record<string, string | undefined>> {
  await waitFor(() => linesFor(process.stderr(), 'tunnel closed', dest).length > 0, `tunnel closed ${dest}`);
  const lines = linesFor(process.stderr(), 'tunnel closed', dest);
  assert.equal(lines.length, 1, `one tunnel to ${dest}`);
  return pick(lines[0]!.fields, TUNNEL_FIELDS);
}

describe('serve with rules, routes and an upstream switchyard', () => {
  test('*.test goes through the route; the name is resolved by the upstream only (remote DNS)', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${front.port}`, url('only-upstream.test')]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    const dest = `only-upstream.test:${http.port}`;
    assert.deepEqual(await tunnelLine(front, dest), {
      user: undefined,
      proto: 'socks5',
      cmd: 'connect',
      dest,
      rule: 'tests',
      via: 'route via-up (upstream-yard)',
      // The front never resolved it: it handed the name on.
      remote: dest,
      result: 'done',
    });
    assert.deepEqual(await tunnelLine(upstream, dest), {
      user: RELAY_USER,
      proto: 'socks5',
      cmd: 'connect',
      dest,
      rule: 'default',
      via: 'direct',
      remote: `127.0.0.1:${http.port}`,
      result: 'done',
    });
  });

  test('blocked.test is refused: SOCKS5 REP 02, SOCKS4a CD 91, "tunnel denied ... rule=block-it"', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const five = await socks5Connect(front.port, 'blocked.test', http.port);
    assert.equal(five.rep, 0x02);
    assert.deepEqual([...(await five.reader.readToEnd())], []);
    const four = await socks4Connect(front.port, 'blocked.test', http.port);
    assert.equal(four.cd, 91);
    const viaCurl = await curl(['--socks5-hostname', `127.0.0.1:${front.port}`, url('blocked.test')]);
    assert.equal(viaCurl.code, 97);

    const dest = `blocked.test:${http.port}`;
    await waitFor(() => linesFor(front.stderr(), 'tunnel denied', dest).length === 3, 'three denied lines');
    const denied = linesFor(front.stderr(), 'tunnel denied', dest).map((l) =>
      pick(l.fields, ['proto', 'cmd', 'dest', 'rule', 'reason']),
    );
    const line = (proto: string) => ({
      proto,
      cmd: 'connect',
      dest,
      rule: 'block-it',
      reason: 'blocked by rule block-it',
    });
    assert.deepEqual(denied, [line('socks5'), line('socks4a'), line('socks5')]);
    assert.match(
      front.stderr(),
      new RegExp(`tunnel denied .*dest=blocked\\.test:${http.port} rule=block-it `),
    );
    // It went nowhere: the upstream never heard of it.
    assert.ok(!upstream.stderr().includes('blocked.test'));
  });

  test('anything else goes direct by the default target', { timeout: TEST_TIMEOUT }, async () => {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${front.port}`, url('localhost')]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    const dest = `localhost:${http.port}`;
    const line = await tunnelLine(front, dest);
    assert.deepEqual(pick(line as Record<string, string>, ['rule', 'via', 'result']), {
      rule: 'default',
      via: 'direct',
      result: 'done',
    });
    assert.match(line.remote ?? '', new RegExp(`^(127\\.0\\.0\\.1|\\[::1\\]):${http.port}$`));
  });

  test('the hosts map works at the direct exit', { timeout: TEST_TIMEOUT }, async () => {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${front.port}`, url('direct-only.test')]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    const dest = `direct-only.test:${http.port}`;
    assert.deepEqual(await tunnelLine(front, dest), {
      user: undefined,
      proto: 'socks5',
      cmd: 'connect',
      dest,
      rule: 'here',
      via: 'direct',
      remote: `127.0.0.1:${http.port}`,
      result: 'done',
    });
  });

  test('a dead first hop with onFirstHopDown "direct" still reaches the site, and the log says direct', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${front.port}`, url('fallback.test')]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    const dest = `fallback.test:${http.port}`;
    assert.deepEqual(await tunnelLine(front, dest), {
      user: undefined,
      proto: 'socks5',
      cmd: 'connect',
      dest,
      rule: 'fallback',
      via: 'direct',
      remote: `127.0.0.1:${http.port}`,
      result: 'done',
    });
  });
});

describe('switchyard route and check', () => {
  test('route prints the rule and the hops exactly', { timeout: TEST_TIMEOUT }, async () => {
    const cases: [string, string][] = [
      [
        'only-upstream.test:8080',
        'only-upstream.test:8080: rule tests -> route via-up (upstream-yard)\n' +
          `  hop 1: upstream-yard socks5://127.0.0.1:${upstream.port} as relay\n`,
      ],
      ['blocked.test', 'blocked.test:443: rule block-it -> block\n'],
      ['http://direct-only.test/x', 'direct-only.test:80: rule here -> direct\n'],
      ['localhost:80', 'localhost:80: default target -> direct\n'],
      [
        'fallback.test:80',
        'fallback.test:80: rule fallback -> route via-dead (dead)\n' +
          `  hop 1: dead socks5://127.0.0.1:${deadPort}\n` +
          '  if hop 1 is down: go direct\n',
      ],
    ];
    const results = await Promise.all(
      cases.map(([target]) => runSwitchyard(['route', target, '--config', frontConfig])),
    );
    results.forEach((r, i) => {
      assert.deepEqual(r, { code: 0, signal: null, stdout: cases[i]![1], stderr: '' }, cases[i]![0]);
    });
  });

  test('check ROUTE prints each hop with "ok" and exits 0', { timeout: TEST_TIMEOUT }, async () => {
    const target = `localhost:${http.port}`;
    const r = await runSwitchyard(['check', 'chain', '--target', target, '--config', frontConfig], {
      env: FILE_CREDENTIAL_STORE,
    });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0, r.stdout);
    const lines = r.stdout.split('\n');
    assert.equal(lines.length, 5, r.stdout);
    assert.equal(lines[0], `checking route two-hops (upstream-yard > web-proxy) to ${target}`);
    assert.match(
      lines[1]!,
      new RegExp(`^  hop 1 upstream-yard socks5://127\\.0\\.0\\.1:${upstream.port}: ok \\d+ ms$`),
    );
    assert.match(
      lines[2]!,
      new RegExp(`^  hop 2 web-proxy http://127\\.0\\.0\\.1:${webProxy.port}: ok \\d+ ms$`),
    );
    assert.equal(lines[3], `result: ok, reached ${target}`);
    assert.equal(lines[4], '');
    assert.ok(!r.stdout.includes(RELAY_PASSWORD), 'the upstream password is in the check output');
    // The web proxy was asked for the target by name: hop 1 carried the CONNECT through.
    assert.ok(
      webProxy.requests.some((q) => q.method === 'CONNECT' && q.target === target && q.status === 200),
    );
  });

  test("check with a wrong password prints FAILED and the hop's auth error, and exits 1", {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const target = `localhost:${http.port}`;
    const wrong = 'not-the-relay-password';
    // The same config in a directory of its own, so that its store holds the wrong password.
    await mkdir(dir.path('wrong-password'), { mode: 0o700 });
    const wrongConfig = dir.path('wrong-password/front.json');
    await copyFile(frontConfig, wrongConfig);
    await saveUpstreamPassword(wrongConfig, 'up', wrong);
    const r = await runSwitchyard(['check', 'chain', '--target', target, '--config', wrongConfig], {
      env: FILE_CREDENTIAL_STORE,
    });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 1, r.stdout);
    const lines = r.stdout.split('\n');
    assert.equal(lines.length, 4, r.stdout);
    assert.equal(lines[0], `checking route two-hops (upstream-yard > web-proxy) to ${target}`);
    assert.match(
      lines[1]!,
      new RegExp(
        `^  hop 1 upstream-yard socks5://127\\.0\\.0\\.1:${upstream.port}: FAILED \\d+ ms - ` +
          "hop 1 \\(upstream-yard\\) rejected the username/password for user 'relay'$",
      ),
    );
    assert.equal(lines[2], 'result: failed');
    assert.ok(!r.stdout.includes(wrong));
    await upstream.waitForLog(/warn {2}authentication failed .*user=relay/);
  });
});

describe('serve --via', () => {
  test('sends all traffic through the chain and warns about the password on the command line', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const via1 = `socks5://${RELAY_USER}:${RELAY_PASSWORD}@127.0.0.1:${upstream.port}`;
    const via2 = `http://127.0.0.1:${webProxy.port}`;
    const host = await startServe({
      args: ['--listen', '127.0.0.1:0', '--config', dir.path('none.json'), '--via', via1, '--via', via2],
    });
    try {
      const before = webProxy.requests.length;
      const r = await curl(['--socks5-hostname', `127.0.0.1:${host.port}`, url('localhost')]);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.deepEqual(r.body, SMALL_BODY);
      const dest = `localhost:${http.port}`;
      assert.deepEqual(await tunnelLine(host, dest), {
        user: undefined,
        proto: 'socks5',
        cmd: 'connect',
        dest,
        rule: 'default',
        via: `route --via (socks5://127.0.0.1:${upstream.port} > http://127.0.0.1:${webProxy.port})`,
        remote: dest,
        result: 'done',
      });
      // Hop 1 (the upstream switchyard, as relay) was asked for hop 2; hop 2 for the site, by name.
      const hop2 = `127.0.0.1:${webProxy.port}`;
      await waitFor(() => linesFor(upstream.stderr(), 'tunnel closed', hop2).length > 0, 'hop 1 log');
      assert.equal(linesFor(upstream.stderr(), 'tunnel closed', hop2)[0]?.fields.user, RELAY_USER);
      assert.deepEqual(
        webProxy.requests.slice(before).map((q) => [q.method, q.target, q.status]),
        [['CONNECT', dest, 200]],
      );
      const warnings = host
        .stderr()
        .split('\n')
        .filter((l) => / warn /.test(l));
      assert.equal(warnings.length, 1, host.stderr());
      assert.match(
        warnings[0]!,
        /^\S+ warn {2}a password was given on the command line with --via: other local users can read it in the process list$/,
      );
    } finally {
      await host.stop();
    }
    assert.ok(!host.stderr().includes(RELAY_PASSWORD), 'the --via password is in the log');
    assert.ok(!host.stdout().includes(RELAY_PASSWORD), 'the --via password is on stdout');
  });
});

test('upstream passwords appear in no log output and not in the config file', {
  timeout: TEST_TIMEOUT,
}, async () => {
  // Every process above has run by now (this file's tests run in order).
  for (const [name, text] of [
    ['front stderr', front.stderr()],
    ['front stdout', front.stdout()],
    ['upstream stderr', upstream.stderr()],
    ['upstream stdout', upstream.stdout()],
    ['front config', await readFile(frontConfig, 'utf8')],
    ['upstream config', await readFile(dir.path('upstream.json'), 'utf8')],
  ] as const) {
    assert.ok(!text.includes(RELAY_PASSWORD), `the upstream password is in the ${name}`);
  }
  const config = JSON.parse(await readFile(frontConfig, 'utf8')) as { upstreams: Record<string, unknown>[] };
  assert.deepEqual(config.upstreams[0], {
    id: 'up',
    name: 'upstream-yard',
    type: 'socks5',
    host: '127.0.0.1',
    port: upstream.port,
    username: RELAY_USER,
  });
  // The upstream's own file holds the user as a scrypt hash.
  assert.match(await readFile(dir.path('upstream.json'), 'utf8'), /"passwordHash": "scrypt\$/);
});
