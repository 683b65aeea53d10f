/**
 * curl, a SOCKS client nobody here wrote, through the built host running as a child process:
 * every SOCKS flavour curl speaks, a small body compared byte for byte, a 40 MB body compared
 * by sha256, and inbound authentication (RFC 1929) as curl does it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CurlResult, curl as runCurl } from '../helpers/configs.ts';
import {
  SMALL_BODY,
  type SwitchyardProcess,
  type TestHttpServer,
  startHttpServer,
  startSwitchyard,
} from '../helpers/switchyard-process.ts';

const USER = 'alice';
const PASSWORD = 'secret';
const WRONG_PASSWORD = 'not-the-password-7f3a';
const TEST_TIMEOUT = 20_000;

/** curl with time for the 40 MB body, keeping the first 1 MiB of it (the small body fits). */
const curl = (args: readonly string[]): Promise<CurlResult> =>
  runCurl(args, { maxTimeS: 15, keepBytes: 1024 * 1024 });

function proxyArg(host: SwitchyardProcess): string {
  return `127.0.0.1:${host.port}`;
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The host's one line per tunnel, which proves the request went through it and how. */
function tunnelLine(proto: string, dest: string, extra = ''): RegExp {
  return new RegExp(
    `tunnel closed id=\\d+ client=127\\.0\\.0\\.1:\\d+ ${extra}proto=${proto} cmd=connect dest=${escapeRe(dest)} rule=default via=direct remote=127\\.0\\.0\\.1:\\d+ result=done`,
  );
}

describe('curl through the host without inbound users', () => {
  let http: TestHttpServer;
  let host: SwitchyardProcess;

  before(async () => {
    http = await startHttpServer();
    host = await startSwitchyard({ args: ['--log-level', 'debug'] });
  });

  after(async () => {
    await host?.stop();
    await http?.close();
  });

  const cases = [
    { flag: '--socks4', proto: 'socks4', destHost: '127.0.0.1' },
    { flag: '--socks4a', proto: 'socks4a', destHost: 'localhost' },
    { flag: '--socks5', proto: 'socks5', destHost: '127.0.0.1' },
    { flag: '--socks5-hostname', proto: 'socks5', destHost: 'localhost' },
  ] as const;

  for (const c of cases) {
    test(`${c.flag} to ${c.destHost}: the small body arrives byte for byte`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const r = await curl([c.flag, proxyArg(host), `http://${c.destHost}:${http.port}${http.smallPath}`]);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.deepEqual(r.body, SMALL_BODY);
      // The name reaches the host unresolved for 4a and 5-hostname; curl resolves for the others.
      await host.waitForLog(tunnelLine(c.proto, `${c.destHost}:${http.port}`));
    });

    test(`${c.flag} to ${c.destHost}: the 40 MB body arrives with its sha256`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const r = await curl([c.flag, proxyArg(host), `http://${c.destHost}:${http.port}${http.largePath}`]);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.equal(r.bytes, http.largeSize);
      assert.equal(r.sha256, http.largeSha256);
    });
  }

  test('--socks5 to [::1] (an IPv6 destination, ATYP 4): the small body byte for byte', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const http6 = await startHttpServer('::1');
    try {
      const r = await curl(['--socks5', proxyArg(host), `http://[::1]:${http6.port}${http6.smallPath}`]);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.deepEqual(r.body, SMALL_BODY);
      assert.deepEqual(http6.requests, ['/small']);
    } finally {
      await http6.close();
    }
  });

  test('-x socks5h://127.0.0.1:PORT (the URL form) fetches the small body', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl([
      '-x',
      `socks5h://${proxyArg(host)}`,
      `http://localhost:${http.port}${http.smallPath}`,
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
  });
});

describe('curl through the host with inbound users', () => {
  let http: TestHttpServer;
  let host: SwitchyardProcess;

  before(async () => {
    http = await startHttpServer();
    host = await startSwitchyard({
      users: [{ name: USER, password: PASSWORD }],
      args: ['--log-level', 'debug'],
    });
  });

  after(async () => {
    await host?.stop();
    await http?.close();
  });

  test('--socks5-hostname with --proxy-user alice:secret: small body byte for byte', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl([
      '--socks5-hostname',
      proxyArg(host),
      '--proxy-user',
      `${USER}:${PASSWORD}`,
      `http://localhost:${http.port}${http.smallPath}`,
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    await host.waitForLog(tunnelLine('socks5', `localhost:${http.port}`, `user=${USER} `));
  });

  test('--socks5 with --proxy-user alice:secret: the 40 MB body with its sha256', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl([
      '--socks5',
      proxyArg(host),
      '--proxy-user',
      `${USER}:${PASSWORD}`,
      `http://127.0.0.1:${http.port}${http.largePath}`,
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.bytes, http.largeSize);
    assert.equal(r.sha256, http.largeSha256);
  });

  test('-x socks5h://alice:secret@127.0.0.1:PORT fetches the small body', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl([
      '-x',
      `socks5h://${USER}:${PASSWORD}@${proxyArg(host)}`,
      `http://localhost:${http.port}${http.smallPath}`,
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
  });

  test('a wrong password is rejected: curl exit 97, RFC 1929 status 1, nothing fetched', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const before = http.requests.length;
    const r = await curl([
      '--socks5-hostname',
      proxyArg(host),
      '--proxy-user',
      `${USER}:${WRONG_PASSWORD}`,
      `http://localhost:${http.port}${http.smallPath}`,
    ]);
    assert.equal(r.code, 97);
    assert.equal(r.stderr, 'curl: (97) User was rejected by the SOCKS5 server (1 1).\n');
    assert.equal(r.bytes, 0);
    assert.equal(http.requests.length, before);
    await host.waitForLog(/warn {2}authentication failed id=\d+ client=127\.0\.0\.1:\d+ user=alice\n/);
  });

  test('no credentials are rejected: curl exit 97, no acceptable method', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const before = http.requests.length;
    const r = await curl([
      '--socks5-hostname',
      proxyArg(host),
      `http://localhost:${http.port}${http.smallPath}`,
    ]);
    assert.equal(r.code, 97);
    assert.equal(r.stderr, 'curl: (97) No authentication method was acceptable.\n');
    assert.equal(r.bytes, 0);
    assert.equal(http.requests.length, before);
    await host.waitForLog(/no acceptable authentication method id=\d+ client=127\.0\.0\.1:\d+ offered=0,1 /);
  });

  for (const flag of ['--socks4', '--socks4a'] as const) {
    test(`${flag} is refused while users exist: curl exit 97, SOCKS4 status 91`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const before = http.requests.length;
      const destHost = flag === '--socks4' ? '127.0.0.1' : 'localhost';
      const r = await curl([flag, proxyArg(host), `http://${destHost}:${http.port}${http.smallPath}`]);
      assert.equal(r.code, 97);
      assert.equal(
        r.stderr,
        "curl: (97) Can't complete SOCKS4 connection to 0.0.0.0:0. (91), request rejected or failed.\n",
      );
      assert.equal(r.bytes, 0);
      assert.equal(http.requests.length, before);
    });
  }

  test('the passwords appear nowhere in the host log (checked after it stopped)', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const status = await host.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    const log = host.stderr();
    // The log did record these sessions, so the check below looks at a real log.
    assert.match(log, /authentication failed/);
    assert.match(log, /SOCKS4 refused/);
    assert.match(log, /\binfo {2}stopped\n$/);
    assert.equal(log.includes(PASSWORD), false, 'the right password is in the log');
    assert.equal(log.includes(WRONG_PASSWORD), false, 'the wrong password is in the log');
    assert.equal(host.stdout().includes(PASSWORD), false, 'the password is on stdout');
  });
});
