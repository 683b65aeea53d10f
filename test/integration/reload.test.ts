/**
 * SIGHUP reloads the config file of a running `serve` process: new connections follow the new
 * rules at once, a tunnel that is open keeps running across reloads (a 40 MB download read in
 * pauses, so that it is still going while the config changes under it, and checked by sha256),
 * and an invalid file is rejected with an error line while the config in force stays in force.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { type Socket, connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ConfigInput } from '../../shared/config/schema.ts';
import type { Rule } from '../../shared/rules/types.ts';
import { serializeRequest } from '../../native-host/src/protocol/socks5.ts';
import { addressOf } from '../../native-host/src/protocol/address.ts';
import { type HttpConnectProxy, startHttpConnectProxy } from '../helpers/http-connect-proxy.ts';
import {
  type ServeProcess,
  type TempDir,
  curl,
  linesFor,
  parseTextLog,
  pick,
  socks5Connect,
  startServe,
  tempDir,
  writeConfig,
} from '../helpers/configs.ts';
import { SMALL_BODY, type TestHttpServer, startHttpServer } from '../helpers/switchyard-process.ts';
import { waitFor } from '../helpers/wait.ts';

const TEST_TIMEOUT = 30_000;
const RELOADED = 'config reloaded; new connections use it, open tunnels keep running';
const REJECTED = 'config reload rejected; the previous config stays active';

let dir: TempDir;
let http: TestHttpServer;
let webProxy: HttpConnectProxy;
let host: ServeProcess;
let configFile: string;

const blockRule = (id: string, name: string): Rule => ({
  id,
  enabled: true,
  match: { hosts: [{ type: 'exact', value: name }] },
  target: { kind: 'block' },
});

/** The config at start: localhost through an HTTP proxy route, .test names direct by the hosts map. */
function baseConfig(extraRules: Rule[] = []): Omit<ConfigInput, 'version'> {
  return {
    upstreams: [{ id: 'web', name: 'web-proxy', type: 'http', host: '127.0.0.1', port: webProxy.port }],
    routes: [{ id: 'via-proxy', hops: ['web'] }],
    rules: [
      ...extraRules,
      {
        id: 'proxied',
        enabled: true,
        match: { hosts: [{ type: 'exact', value: 'localhost' }] },
        target: { kind: 'route', routeId: 'via-proxy' },
      },
    ],
    hosts: {
      'files.test': ['127.0.0.1'],
      'soon-blocked.test': ['127.0.0.1'],
      'later-blocked.test': ['127.0.0.1'],
    },
  };
}

before(async () => {
  [dir, http, webProxy] = await Promise.all([
    tempDir('switchyard-reload-'),
    startHttpServer(),
    startHttpConnectProxy(),
  ]);
  configFile = dir.path('config.json');
  await writeConfig(configFile, baseConfig());
  host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', configFile] });
});

after(async () => {
  await Promise.all([host?.stop(), http?.close(), webProxy?.close()]);
  await dir?.remove();
});

function messages(msg: string) {
  return parseTextLog(host.stderr()).filter((l) => l.msg === msg);
}

/** Rewrites the config file, sends SIGHUP and waits for the `reloaded` or `rejected` line. */
async function reload(config: Omit<ConfigInput, 'version'> | string, expect: string): Promise<void> {
  const before = messages(expect).length;
  if (typeof config === 'string') {
    await writeFile(configFile, config);
  } else {
    await writeConfig(configFile, config);
  }
  host.signal('SIGHUP');
  await waitFor(() => messages(expect).length > before, `the '${expect}' line`, 5_000);
}

/** The REP a SOCKS5 CONNECT to `name` gets (the connection is closed then). */
async function repFor(name: string): Promise<number> {
  const { rep, socket } = await socks5Connect(host.port, name, http.port);
  socket.destroy();
  return rep;
}

async function get(name: string) {
  return curl([
    '--socks5-hostname',
    `127.0.0.1:${host.port}`,
    `http://${name}:${http.port}${http.smallPath}`,
  ]);
}

/**
 * GET through the proxy (SOCKS5, no auth) that reads only when told to: `until(n)` lets body
 * bytes flow until at least n have arrived and then stops reading, so the server's side backs
 * up and the tunnel stays open for as long as the test wants.
 */
interface SlowGet {
  readonly socket: Socket;
  bodyBytes(): number;
  ended(): boolean;
  until(bytes: number, timeoutMs?: number): Promise<void>;
  rest(timeoutMs?: number): Promise<{ bytes: number; sha256: string; status: string }>;
}

async function slowGet(proxyPort: number, name: string, port: number, path: string): Promise<SlowGet> {
  const socket = connect({ host: '127.0.0.1', port: proxyPort });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const hash = createHash('sha256');
  let handshake = Buffer.alloc(0);
  let stage: 'socks' | 'head' | 'body' = 'socks';
  let head = Buffer.alloc(0);
  let status = '';
  let body = 0;
  let ended = false;
  let wake: (() => void) | undefined;
  let target = 0;
  let failure: Error | undefined;

  socket.on('data', (chunk: Buffer) => {
    let data = chunk;
    if (stage === 'socks') {
      handshake = Buffer.concat([handshake, data]);
      // Method choice (2 bytes), then the reply: 4 + IPv4 (4) + port (2) from a loopback server.
      if (handshake.length < 12) return;
      if (handshake[1] !== 0 || handshake[3] !== 0 || handshake[5] !== 1) {
        failure = new Error(`SOCKS5 handshake failed: ${handshake.subarray(0, 12).toString('hex')}`);
        socket.destroy();
        return;
      }
      data = handshake.subarray(12);
      stage = 'head';
    }
    if (stage === 'head') {
      head = Buffer.concat([head, data]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      data = head.subarray(end + 4);
      stage = 'body';
    }
    hash.update(data);
    body += data.length;
    if (body >= target) socket.pause();
    wake?.();
  });
  socket.on('close', () => {
    ended = true;
    wake?.();
  });
  // Greeting and request at once; the server reads them in order.
  socket.write(
    Buffer.concat([
      Buffer.from([5, 1, 0]),
      serializeRequest('connect', addressOf(name, port)),
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${name}:${port}\r\nConnection: close\r\n\r\n`, 'latin1'),
    ]),
  );

  const waitUntil = async (done: () => boolean, what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (failure) throw failure;
      if (ended) throw new Error(`the download ended after ${body} body bytes, waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${body} body bytes waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  };

  return {
    socket,
    bodyBytes: () => body,
    ended: () => ended,
    until: async (bytes, timeoutMs = 10_000) => {
      target = bytes;
      socket.resume();
      await waitUntil(() => body >= bytes, `${bytes} body bytes`, timeoutMs);
    },
    rest: async (timeoutMs = 15_000) => {
      target = Number.POSITIVE_INFINITY;
      socket.resume();
      await waitUntil(() => ended, 'the end', timeoutMs).catch((error: unknown) => {
        if (!ended) throw error;
      });
      if (failure) throw failure;
      return { bytes: body, sha256: hash.digest('hex'), status };
    },
  };
}

describe('SIGHUP reload', () => {
  test('a rule added after start takes effect for new connections', { timeout: TEST_TIMEOUT }, async () => {
    const before = await get('soon-blocked.test');
    assert.equal(before.code, 0);
    assert.deepEqual(before.body, SMALL_BODY);

    await reload(baseConfig([blockRule('block-soon', 'soon-blocked.test')]), RELOADED);
    const line = messages(RELOADED).at(-1)!;
    assert.deepEqual(pick(line.fields, ['config', 'source', 'revision']), {
      config: configFile,
      source: 'reload',
      revision: '2',
    });
    assert.equal(line.level, 'info');

    assert.equal(await repFor('soon-blocked.test'), 0x02);
    const dest = `soon-blocked.test:${http.port}`;
    await waitFor(() => linesFor(host.stderr(), 'tunnel denied', dest).length === 1, 'the denied line');
    assert.deepEqual(pick(linesFor(host.stderr(), 'tunnel denied', dest)[0]!.fields, ['rule', 'reason']), {
      rule: 'block-soon',
      reason: 'blocked by rule block-soon',
    });
    // Everything else is as it was: the route, and the hosts map at the direct exit.
    assert.equal((await get('localhost')).code, 0);
    assert.equal((await get('files.test')).code, 0);
  });

  test('an open 40 MB download keeps flowing across two reloads and completes with the right sha256', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const download = await slowGet(host.port, 'files.test', http.port, http.largePath);
    await download.until(1024 * 1024);
    const reloads = messages(RELOADED).length;

    // Reload 1, while the download is held: it is still open afterwards and still flows.
    await reload(
      baseConfig([
        blockRule('block-soon', 'soon-blocked.test'),
        blockRule('block-later', 'later-blocked.test'),
      ]),
      RELOADED,
    );
    assert.equal(download.ended(), false);
    const mid = download.bodyBytes();
    await download.until(mid + 8 * 1024 * 1024);
    assert.equal(await repFor('later-blocked.test'), 0x02);

    // Reload 2: back to the first rule only; later-blocked.test is allowed again.
    await reload(baseConfig([blockRule('block-soon', 'soon-blocked.test')]), RELOADED);
    assert.equal(messages(RELOADED).length, reloads + 2);
    assert.equal(download.ended(), false);
    assert.ok(download.bodyBytes() < http.largeSize, 'the download finished before the reloads');
    assert.equal((await get('later-blocked.test')).code, 0);

    const result = await download.rest();
    assert.equal(result.status, 'HTTP/1.1 200 OK');
    assert.equal(result.bytes, http.largeSize);
    assert.equal(result.sha256, http.largeSha256);
    const dest = `files.test:${http.port}`;
    const large = () =>
      linesFor(host.stderr(), 'tunnel closed', dest).filter((l) => Number(l.fields.down) > http.largeSize);
    await waitFor(() => large().length > 0, 'the tunnel line of the download');
    const closed = large();
    assert.equal(closed.length, 1);
    assert.deepEqual(pick(closed[0]!.fields, ['rule', 'via', 'remote', 'result']), {
      rule: 'default',
      via: 'direct',
      remote: `127.0.0.1:${http.port}`,
      result: 'done',
    });
  });

  test('an invalid config is rejected with an error line; the config in force stays in force', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const reloads = messages(RELOADED).length;
    await reload(
      JSON.stringify({ ...baseConfig(), version: 1, routes: [{ id: 'via-proxy', hops: ['nope'] }] }),
      REJECTED,
    );
    const line = messages(REJECTED).at(-1)!;
    assert.equal(line.level, 'error');
    assert.deepEqual(line.fields, {
      error: "the config is not valid: routes[0].hops[0]: no upstream has the id 'nope'",
    });
    await reload('{ "version": 1, ', REJECTED);
    assert.match(
      messages(REJECTED).at(-1)!.fields.error ?? '',
      /^the config is not valid: \(file\): is not valid JSON: /,
    );
    assert.equal(messages(RELOADED).length, reloads);

    // The route that worked still works, through the proxy it names.
    const before = webProxy.requests.length;
    const r = await get('localhost');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    assert.deepEqual(
      webProxy.requests.slice(before).map((q) => [q.method, q.target, q.status]),
      [['CONNECT', `localhost:${http.port}`, 200]],
    );
    // And so does the rule added by the last good reload.
    assert.equal(await repFor('soon-blocked.test'), 0x02);
    assert.equal(host.stdout(), `switchyard listening on 127.0.0.1:${host.port}\n`);
  });
});
