/**
 * The `switchyard` command as a real process (the built host): what `serve` prints and how it
 * stops, what it refuses to start with and how it says so, the `user` commands and the config
 * file they write, the log options, and the help text.
 */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type AddressInfo, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type EchoServer, closed, startEchoServer } from '../helpers/net.ts';
import {
  type LogLine,
  curl,
  parseJsonLog,
  parseTextLog,
  runSwitchyard,
  socks5Connect,
  startServe,
  tempDir,
  writeConfig,
} from '../helpers/configs.ts';
import { SMALL_BODY, type TestHttpServer, startHttpServer } from '../helpers/switchyard-process.ts';

const TEST_TIMEOUT = 20_000;

let http: TestHttpServer;
let echo: EchoServer;

before(async () => {
  [http, echo] = await Promise.all([startHttpServer(), startEchoServer()]);
});

after(async () => {
  await Promise.all([http?.close(), echo?.close()]);
});

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanups.map((c) => c()));
});

/** A fresh config file path in its own directory (so that .bak and temp files are its own). */
async function freshConfig(config?: Parameters<typeof writeConfig>[1]): Promise<string> {
  const sub = await tempDir('switchyard-cli-');
  cleanups.push(() => sub.remove());
  const file = sub.path('config.json');
  if (config) await writeConfig(file, config);
  return file;
}

function smallUrl(): string {
  return `http://localhost:${http.port}${http.smallPath}`;
}

describe('serve', () => {
  test('prints exactly "switchyard listening on 127.0.0.1:PORT" on stdout, and the port serves SOCKS', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig({});
    const host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', config] });
    try {
      assert.match(host.stdout(), /^switchyard listening on 127\.0\.0\.1:\d+\n$/);
      assert.equal(host.stdout(), `switchyard listening on 127.0.0.1:${host.port}\n`);
      assert.notEqual(host.port, 0);
      const r = await curl(['--socks5-hostname', `127.0.0.1:${host.port}`, smallUrl()]);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.deepEqual(r.body, SMALL_BODY);
    } finally {
      await host.stop();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} stops it with exit code 0 and a "stopped" log line`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const config = await freshConfig({});
      const host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', config] });
      host.signal(signal);
      const status = await host.exited();
      assert.deepEqual(status, { code: 0, signal: null });
      const lines = parseTextLog(host.stderr());
      const shutdown = lines.find((l) => l.msg === 'shutting down');
      assert.equal(shutdown?.fields.signal, signal);
      assert.equal(lines.at(-1)?.msg, 'stopped');
      assert.equal(lines.at(-1)?.level, 'info');
    });
  }

  test('an open tunnel gets timeouts.shutdownGraceMs after SIGTERM, then is cut', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const graceMs = 1200;
    const config = await freshConfig({ timeouts: { shutdownGraceMs: graceMs } });
    const host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', config] });
    const { socket, reader, rep } = await socks5Connect(host.port, '127.0.0.1', echo.port);
    assert.equal(rep, 0);
    const sent = Date.now();
    host.signal('SIGTERM');
    await host.waitForLog(/waiting for open tunnels to finish tunnels=1 grace_ms=1200/);
    // Still flowing during the grace period.
    socket.write('during grace');
    assert.equal((await reader.read(12)).toString(), 'during grace');
    // No new clients meanwhile: the listener is closed.
    await assert.rejects(socks5Connect(host.port, '127.0.0.1', echo.port), /ECONNREFUSED/);
    await closed(socket, 5_000);
    const cutAfter = Date.now() - sent;
    assert.ok(cutAfter >= graceMs - 100, `cut after ${cutAfter} ms, before the ${graceMs} ms grace`);
    assert.ok(cutAfter < graceMs + 2_000, `cut only after ${cutAfter} ms`);
    assert.deepEqual(await host.exited(), { code: 0, signal: null });
    const messages = parseTextLog(host.stderr()).map((l) => l.msg);
    assert.ok(messages.includes('stopped'), host.stderr());
    assert.ok(messages.indexOf('stopped') > messages.indexOf('waiting for open tunnels to finish'));
  });

  test('listening on 0.0.0.0 without users is refused (exit 2, open proxy, --allow-open-proxy)', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig({});
    const r = await runSwitchyard(['serve', '--listen', '0.0.0.0:0', '--config', config], {
      timeoutMs: 8_000,
    });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'switchyard: refusing to listen on 0.0.0.0 without inbound users: anyone who can reach this ' +
        'address could use the proxy (an open proxy), and through it reach your local network.\n' +
        'Add a user (switchyard user add NAME --password-stdin), listen on 127.0.0.1, ' +
        'or pass --allow-open-proxy if this is really what you want.\n',
    );
  });

  test('--allow-open-proxy makes it start on 0.0.0.0', { timeout: TEST_TIMEOUT }, async () => {
    const config = await freshConfig({});
    const host = await startServe({
      args: ['--listen', '0.0.0.0:0', '--config', config, '--allow-open-proxy'],
    });
    try {
      assert.equal(host.stdout(), `switchyard listening on 0.0.0.0:${host.port}\n`);
      const { rep, socket } = await socks5Connect(host.port, '127.0.0.1', echo.port);
      socket.destroy();
      // Beyond loopback, private destinations are refused by default ('auto').
      assert.equal(rep, 2);
    } finally {
      assert.deepEqual(await host.stop(), { code: 0, signal: null });
    }
  });

  test('a port already in use: exit 2 and a message naming the address', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const config = await freshConfig({});
      const r = await runSwitchyard(['serve', '--listen', `127.0.0.1:${port}`, '--config', config], {
        timeoutMs: 8_000,
      });
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        `switchyard: 127.0.0.1:${port} is already in use. Stop the program using it, or pick another port ` +
          `with --listen 127.0.0.1:PORT (0 picks a free one).\n`,
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('a config file with errors: exit 2, every error on its own line naming the field path', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig();
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        listen: { port: 70000 },
        upstreams: [{ id: 'a', type: 'socks5', host: '127.0.0.1', port: 1080 }],
        routes: [{ id: 'r', hops: ['a', 'b'] }],
        users: [{ name: 'alice', passwordHash: 'hunter2' }],
      }),
    );
    const r = await runSwitchyard(['serve', '--config', config], { timeoutMs: 8_000 });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      [
        `switchyard: ${config} is not a valid Switchyard config:`,
        '  - listen.port: Too big: expected number to be <=65535',
        '  - users[0].passwordHash: must be a scrypt hash made by `switchyard user add`, never a plain password',
        "  - routes[0].hops[1]: no upstream has the id 'b'",
        '',
      ].join('\n'),
    );
  });

  test('a config that still names a password variable (passwordEnv): exit 2, and how to save it instead', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig();
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        upstreams: [
          {
            id: 'corp',
            type: 'socks5',
            host: '127.0.0.1',
            port: 1080,
            username: 'alice',
            passwordEnv: 'CORP_PW',
          },
        ],
      }),
    );
    const r = await runSwitchyard(['serve', '--config', config], {
      timeoutMs: 8_000,
      env: { CORP_PW: 'corp-secret' },
    });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      [
        `switchyard: ${config} is not a valid Switchyard config:`,
        '  - upstreams[0].passwordEnv: passwords are no longer read from environment variables; ' +
          'save it with: switchyard credential set <id> --password-stdin',
        '',
      ].join('\n'),
    );
  });

  test('invalid JSON: exit 2 with the JSON error', { timeout: TEST_TIMEOUT }, async () => {
    const config = await freshConfig();
    const text = '{ "version": 1, ';
    await writeFile(config, text);
    let jsonError = '';
    try {
      JSON.parse(text);
    } catch (error) {
      jsonError = (error as Error).message;
    }
    assert.notEqual(jsonError, '');
    const r = await runSwitchyard(['serve', '--config', config], { timeoutMs: 8_000 });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `switchyard: ${config} is not a valid Switchyard config:\n  - (file): is not valid JSON: ${jsonError}\n`,
    );
  });

  test('--quiet suppresses info lines (stderr stays empty through a tunnel and a stop)', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig({});
    const host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', config, '--quiet'] });
    const r = await curl(['--socks5-hostname', `127.0.0.1:${host.port}`, smallUrl()]);
    assert.equal(r.code, 0);
    assert.deepEqual(await host.stop(), { code: 0, signal: null });
    assert.equal(host.stdout(), `switchyard listening on 127.0.0.1:${host.port}\n`);
    assert.equal(host.stderr(), '');
  });

  test('--log-format json writes JSON lines with the same fields as the text format', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const run = async (format: 'text' | 'json'): Promise<LogLine[]> => {
      const config = await freshConfig({});
      const host = await startServe({
        args: ['--listen', '127.0.0.1:0', '--config', config, '--log-format', format],
      });
      const r = await curl(['--socks5-hostname', `127.0.0.1:${host.port}`, smallUrl()]);
      assert.equal(r.code, 0);
      await host.waitForLog(/tunnel closed/);
      assert.deepEqual(await host.stop(), { code: 0, signal: null });
      return format === 'json' ? parseJsonLog(host.stderr()) : parseTextLog(host.stderr());
    };
    const [text, json] = await Promise.all([run('text'), run('json')]);
    assert.deepEqual(
      json.map((l) => l.msg),
      ['listening', 'tunnel closed', 'shutting down', 'stopped'],
    );
    assert.deepEqual(
      json.map((l) => l.msg),
      text.map((l) => l.msg),
    );
    for (const [i, j] of json.entries()) {
      const t = text[i]!;
      assert.equal(j.level, t.level);
      assert.match(j.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual(Object.keys(j.fields), Object.keys(t.fields), `fields of '${j.msg}'`);
    }
    const closedJson = json[1]!.fields;
    const closedText = text[1]!.fields;
    for (const key of ['proto', 'cmd', 'dest', 'rule', 'via', 'result', 'up', 'down']) {
      assert.equal(closedJson[key], closedText[key], key);
    }
    assert.equal(closedJson.dest, `localhost:${http.port}`);
    assert.equal(closedJson.rule, 'default');
    assert.equal(closedJson.via, 'direct');
    assert.equal(closedJson.result, 'done');
  });
});

describe('user', () => {
  test('add --password-stdin, list, update (with .bak), remove; the file holds a scrypt hash only', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig({});
    const original = await readFile(config, 'utf8');
    const password = 'correct horse 7d1f';

    const added = await runSwitchyard(['user', 'add', 'alice', '--config', config, '--password-stdin'], {
      input: `${password}\n`,
    });
    assert.deepEqual(added, { code: 0, signal: null, stdout: `added user alice in ${config}\n`, stderr: '' });
    const afterAdd = await readFile(config, 'utf8');
    assert.match(afterAdd, /"passwordHash": "scrypt\$/);
    assert.ok(!afterAdd.includes(password), 'the password is in the config file');
    assert.ok(!afterAdd.includes('correct horse'), 'part of the password is in the config file');
    // Atomic writes keep the previous file as config.json.bak, and leave no temp file behind.
    assert.equal(await readFile(`${config}.bak`, 'utf8'), original);
    assert.deepEqual((await readdir(dirname(config))).sort(), ['config.json', 'config.json.bak']);

    const listed = await runSwitchyard(['user', 'list', '--config', config]);
    assert.deepEqual(listed, { code: 0, signal: null, stdout: 'alice\n', stderr: '' });

    // The stored hash is the password's: the server accepts it (and nothing else).
    const host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', config] });
    try {
      const ok = await curl([
        '--proxy',
        `socks5h://alice:${encodeURIComponent(password)}@127.0.0.1:${host.port}`,
        smallUrl(),
      ]);
      assert.equal(ok.code, 0);
      assert.deepEqual(ok.body, SMALL_BODY);
      const wrong = await curl(['--proxy', `socks5h://alice:wrong@127.0.0.1:${host.port}`, smallUrl()]);
      assert.equal(wrong.code, 97);
    } finally {
      await host.stop();
    }
    assert.ok(!host.stderr().includes(password), 'the password is in the log');

    const updated = await runSwitchyard(['user', 'add', 'alice', '--config', config, '--password-stdin'], {
      input: 'another password',
    });
    assert.deepEqual(updated, {
      code: 0,
      signal: null,
      stdout: `updated user alice in ${config}\n`,
      stderr: '',
    });
    const afterUpdate = await readFile(config, 'utf8');
    assert.notEqual(afterUpdate, afterAdd);
    assert.equal(await readFile(`${config}.bak`, 'utf8'), afterAdd);
    const users = (JSON.parse(afterUpdate) as { users: { name: string }[] }).users;
    assert.deepEqual(
      users.map((u) => u.name),
      ['alice'],
    );
    assert.deepEqual((await readdir(dirname(config))).sort(), ['config.json', 'config.json.bak']);

    const removed = await runSwitchyard(['user', 'remove', 'alice', '--config', config]);
    assert.deepEqual(removed, {
      code: 0,
      signal: null,
      stdout: `removed user alice from ${config}\n`,
      stderr: '',
    });
    assert.deepEqual((await runSwitchyard(['user', 'list', '--config', config])).stdout, '');
    assert.equal(await readFile(`${config}.bak`, 'utf8'), afterUpdate);
  });

  test('removing a missing user: exit 2 and a clear message', { timeout: TEST_TIMEOUT }, async () => {
    const config = await freshConfig({});
    const before = await readFile(config, 'utf8');
    const r = await runSwitchyard(['user', 'remove', 'nobody', '--config', config]);
    assert.deepEqual(r, {
      code: 2,
      signal: null,
      stdout: '',
      stderr: `switchyard: no user named nobody in ${config} (see: switchyard user list)\n`,
    });
    assert.equal(await readFile(config, 'utf8'), before);
  });

  test('add without --password-stdin: exit 2 with guidance, nothing written', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const config = await freshConfig({});
    const before = await readFile(config, 'utf8');
    const r = await runSwitchyard(['user', 'add', 'alice', '--config', config], { input: 'pw' });
    assert.deepEqual(r, {
      code: 2,
      signal: null,
      stdout: '',
      stderr:
        'switchyard: give the password on standard input with --password-stdin (e.g. `printf %s "$PW" | ' +
        'switchyard user add NAME --password-stdin`); passwords on the command line are visible to other users\n',
    });
    assert.equal(await readFile(config, 'utf8'), before);
  });
});

test('--help lists serve, user, route and check', { timeout: TEST_TIMEOUT }, async () => {
  const r = await runSwitchyard(['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^Usage: switchyard \[options\] \[command\]$/m);
  const commands = r.stdout.slice(r.stdout.indexOf('Commands:'));
  for (const name of ['serve', 'user', 'route', 'check']) {
    assert.match(commands, new RegExp(`^  ${name}\\b`, 'm'), `${name} in --help`);
  }
});
