/**
 * The control protocol against a real service: the Service with its SOCKS listener and its
 * control endpoint on a real Unix socket in a temporary runtime directory, driven by the real
 * client and by a raw socket for what no well-behaved client would send.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ConfigInput } from '../../shared/config/schema.ts';
import {
  type HostEvent,
  type LogEvent,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  type Response,
} from '../../shared/messages/protocol.ts';
import {
  type ControlClient,
  RequestFailedError,
  ServiceNotRunningError,
  connectControl,
} from '../../native-host/src/control/client.ts';
import { createControlServer } from '../../native-host/src/control/handlers.ts';
import type { ControlPaths } from '../../native-host/src/control/paths.ts';
import type { ControlServer } from '../../native-host/src/control/server.ts';
import { createLogger } from '../../native-host/src/log/logger.ts';
import { Service } from '../../native-host/src/service/service.ts';
import { claimEndpoint } from '../../native-host/src/service/single-instance.ts';
import { MemoryCredentialStore } from '../helpers/memory-credentials.ts';
import { type EchoServer, startEchoServer } from '../helpers/net.ts';
import { echoes, openTunnel } from '../helpers/socks-client.ts';
import { type TestServer, startSocksServer } from '../helpers/socks-server.ts';
import { waitFor } from '../helpers/wait.ts';

/** A control connection at the byte level: what it sends need not be valid. */
class RawClient {
  readonly socket: Socket;
  private buffered = '';
  private readonly lines: string[] = [];
  private wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffered += text;
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        this.lines.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
      this.wake?.();
    });
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** The next line that is a response (events are skipped), raw and parsed. */
  async response(timeoutMs = 5000): Promise<{ text: string; message: Response }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        const message = JSON.parse(line) as Response | HostEvent;
        if ('event' in message) continue;
        return { text: line, message };
      }
      if (Date.now() > deadline) throw new Error('no response in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  async ask(message: unknown): Promise<Response> {
    this.send(typeof message === 'string' ? message : JSON.stringify(message));
    return (await this.response()).message;
  }

  close(): void {
    this.socket.destroy();
  }
}

function errorOf(response: Response): { code: string; message: string; issues?: { path: string }[] } {
  assert.equal(response.ok, false, JSON.stringify(response));
  if (response.ok) throw new Error('unreachable');
  return response.error;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<RequestFailedError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RequestFailedError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected a ${code} error`);
}

describe('control endpoint', () => {
  let dir: string;
  let configPath: string;
  let paths: ControlPaths;
  let service: Service;
  let control: ControlServer;
  let client: ControlClient;
  let upstream: TestServer;
  let echo: EchoServer;
  const store = new MemoryCredentialStore();
  const logs: string[] = [];

  const baseConfig = (): ConfigInput => ({
    version: 1,
    listen: { host: '127.0.0.1', port: 0 },
    timeouts: { shutdownGraceMs: 0 },
    upstreams: [
      { id: 'gw', name: 'Gateway', type: 'socks5', host: '127.0.0.1', port: upstream.port },
      { id: 'auth', type: 'socks5', host: '127.0.0.1', port: upstream.port, username: 'alice' },
    ],
    routes: [{ id: 'via-gw', name: 'Through the gateway', hops: ['gw'], onFirstHopDown: 'direct' }],
    rules: [
      {
        id: 'local',
        name: 'loopback',
        enabled: true,
        match: { ips: ['127.0.0.1'] },
        target: { kind: 'route', routeId: 'via-gw' },
      },
      {
        id: 'blocked',
        enabled: true,
        match: { hosts: [{ type: 'domain', value: '*.blocked.test' }] },
        target: { kind: 'block' },
      },
    ],
  });

  before(async () => {
    upstream = await startSocksServer();
    echo = await startEchoServer();
    dir = await mkdtemp(join(tmpdir(), 'switchyard-control-'));
    configPath = join(dir, 'config.json');
    await writeFile(configPath, JSON.stringify(baseConfig(), null, 2));
    const logger = createLogger({ level: 'debug', sink: { write: (line: string) => logs.push(line) } });
    service = await Service.load({
      configPath,
      logger,
      version: '9.9.9-test',
      startedBy: 'user',
      credentials: store,
    });
    await service.listen();
    const runDir = join(dir, 'run', 'switchyard');
    paths = { dir: runDir, endpoint: join(runDir, 'control.sock'), serviceLog: join(runDir, 'service.log') };
    control = createControlServer(service, { endpoint: paths.endpoint, logger });
    assert.deepEqual(await claimEndpoint(control, paths), { kind: 'claimed' });
    client = await connectControl(paths.endpoint);
  });

  after(async () => {
    client?.close();
    await control?.close();
    await service?.close(0);
    await upstream?.close();
    await echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('hello: protocol, host version, capabilities, where secrets are kept, platform', async () => {
    const hello = await client.request('hello', { client: 'chrome', extensionVersion: '1.2.3' });
    assert.equal(hello.protocol, PROTOCOL_VERSION);
    assert.equal(hello.hostVersion, '9.9.9-test');
    assert.deepEqual(hello.credentialStore, { kind: 'file', description: 'in memory (test)' });
    assert.equal(hello.platform, process.platform);
    for (const c of ['config.replace', 'log.page', 'check', 'event:log', 'event:config']) {
      assert.ok(hello.capabilities.includes(c), c);
    }
  });

  test('status: listening address, tunnels, bytes, uptime, who started it', async () => {
    const status = await client.request('status', {});
    assert.equal(status.listening, `127.0.0.1:${service.address().port}`);
    assert.equal(status.enabled, true);
    assert.equal(status.startedBy, 'user');
    assert.equal(status.pid, process.pid);
    assert.equal(status.configPath, configPath);
    assert.ok(status.uptimeMs >= 0);
    assert.ok(status.controlClients >= 1);
    assert.equal(typeof status.bytesUp, 'number');
  });

  test('config.get: the file config and which upstreams have a saved password, no secrets', async () => {
    store.passwords.set('auth', 'hunter2');
    const got = await client.request('config.get', {});
    assert.deepEqual(
      got.config.upstreams.map((u) => u.id),
      ['gw', 'auth'],
    );
    assert.deepEqual(got.passwordSaved, { gw: false, auth: true });
    assert.ok(!JSON.stringify(got).includes('hunter2'));
    store.passwords.clear();
  });

  test('credential.set and credential.delete go to the store; an unknown upstream is NOT_FOUND', async () => {
    const set = await client.request('credential.set', { upstreamId: 'auth', password: 's3cret' });
    assert.deepEqual(set, { upstreamId: 'auth', saved: true });
    assert.equal(store.passwords.get('auth'), 's3cret');
    assert.deepEqual((await client.request('config.get', {})).passwordSaved, { gw: false, auth: true });
    assert.ok(!logs.join('').includes('s3cret'), 'the password must not be logged');
    await rejectsWith(
      client.request('credential.set', { upstreamId: 'nope', password: 'x' }),
      'NOT_FOUND',
      /no upstream has the id 'nope' \(known: gw, auth\)/,
    );
    assert.deepEqual(await client.request('credential.delete', { upstreamId: 'auth' }), {
      upstreamId: 'auth',
      deleted: true,
    });
    assert.deepEqual(await client.request('credential.delete', { upstreamId: 'auth' }), {
      upstreamId: 'auth',
      deleted: false,
    });
  });

  test('route: which rule, which route, which hops, for a URL, a host and host:port', async () => {
    const url = await client.request('route', { target: 'http://127.0.0.1:8080/path' });
    assert.equal(url.destination, '127.0.0.1:8080');
    assert.equal(url.rule, 'loopback');
    assert.equal(url.ruleId, 'local');
    assert.deepEqual(url.target, { kind: 'route', routeId: 'via-gw' });
    assert.deepEqual(url.route, {
      id: 'via-gw',
      name: 'Through the gateway',
      label: 'route Through the gateway (Gateway)',
    });
    assert.deepEqual(url.hops, [
      { id: 'gw', name: 'Gateway', type: 'socks5', host: '127.0.0.1', port: upstream.port },
    ]);
    assert.equal(url.onFirstHopDown, 'direct');
    assert.equal(url.description, 'rule loopback -> route Through the gateway (Gateway)');

    const blocked = await client.request('route', { target: 'www.blocked.test:443' });
    assert.equal(blocked.rule, 'blocked');
    assert.deepEqual(blocked.target, { kind: 'block' });
    assert.deepEqual(blocked.hops, []);

    const plain = await client.request('route', { target: 'example.com' });
    assert.equal(plain.destination, 'example.com:443');
    assert.equal(plain.rule, 'default');
    assert.equal(plain.ruleId, undefined);
    assert.deepEqual(plain.target, { kind: 'direct' });

    await rejectsWith(client.request('route', { target: 'example.com:99999' }), 'BAD_MESSAGE', /^target: /);
  });

  test('check: hop-by-hop result and timing, through an upstream and a route; unknown names', async () => {
    const viaUpstream = await client.request('check', { name: 'gw', target: `127.0.0.1:${echo.port}` });
    assert.equal(viaUpstream.ok, true);
    assert.equal(viaUpstream.destination, `127.0.0.1:${echo.port}`);
    assert.equal(viaUpstream.hops.length, 1);
    const hop = viaUpstream.hops[0]!;
    assert.equal(hop.ok, true);
    assert.equal(hop.hop, 1);
    assert.equal(hop.upstream?.id, 'gw');
    assert.ok(hop.ms >= 0);

    const viaRoute = await client.request('check', {
      name: 'Through the gateway',
      target: `127.0.0.1:${echo.port}`,
    });
    assert.equal(viaRoute.label, 'route Through the gateway (Gateway)');
    assert.equal(viaRoute.ok, true);

    const closed = await freePort();
    const failed = await client.request('check', { name: 'gw', target: `127.0.0.1:${closed}` });
    assert.equal(failed.ok, false);
    assert.equal(failed.hops[0]?.ok, false);
    assert.ok(failed.hops[0]?.error);

    await rejectsWith(
      client.request('check', { name: 'nowhere', target: 'example.com:80' }),
      'NOT_FOUND',
      /no route or upstream named 'nowhere' \(known: route via-gw, upstream gw, upstream auth\)/,
    );
  });

  test('toggle.set saves the toggle and pushes a config event to every client', async () => {
    const other = await connectControl(paths.endpoint);
    const events: HostEvent[] = [];
    other.onEvent((e) => events.push(e));
    const before = (await client.request('config.get', {})).revision;
    assert.deepEqual(await client.request('toggle.set', { enabled: false }), { enabled: false });
    await waitFor(() => events.some((e) => e.event === 'config'), 'the config event');
    assert.deepEqual(
      events.find((e) => e.event === 'config'),
      { v: 1, event: 'config', data: { revision: before + 1, enabled: false } },
    );
    const onDisk = JSON.parse(await readFile(configPath, 'utf8')) as { enabled: boolean };
    assert.equal(onDisk.enabled, false);
    assert.equal((await client.request('status', {})).enabled, false);
    await client.request('toggle.set', { enabled: true });
    other.close();
  });

  test('config.patch replaces whole top-level fields and saves; an invalid one names the field', async () => {
    const changed = await client.request('config.patch', {
      patch: { hosts: { 'intranet.test': ['127.0.0.1'] } },
    });
    const patched = await client.request('config.get', {});
    assert.equal(patched.revision, changed.revision);
    assert.deepEqual(patched.config.hosts, { 'intranet.test': ['127.0.0.1'] });
    assert.equal(patched.config.upstreams.length, 2, 'other fields stay');
    const onDisk = JSON.parse(await readFile(configPath, 'utf8')) as { hosts: unknown };
    assert.deepEqual(onDisk.hosts, { 'intranet.test': ['127.0.0.1'] });

    const bad = await rejectsWith(
      client.request('config.patch', { patch: { timeouts: { connectMs: -5 } } }),
      'INVALID_CONFIG',
    );
    assert.deepEqual(
      bad.issues?.map((i) => i.path),
      ['timeouts.connectMs'],
    );
    const raw = await RawClient.open(paths.endpoint);
    const unknown = errorOf(await raw.ask({ v: 1, id: 1, type: 'config.patch', patch: { colour: 'red' } }));
    assert.equal(unknown.code, 'BAD_MESSAGE');
    assert.match(unknown.message, /patch: unexpected unrecognized key: "colour"/);
    const empty = errorOf(await raw.ask({ v: 1, id: 2, type: 'config.patch', patch: {} }));
    assert.match(empty.message, /patch: must name at least one config field/);
    raw.close();
  });

  test('config.replace with an invalid config: INVALID_CONFIG with field paths, and the old config stays', async () => {
    const before = await client.request('config.get', {});
    const fileBefore = await readFile(configPath, 'utf8');
    const broken = {
      ...baseConfig(),
      listen: { port: 70000 },
      routes: [{ id: 'r', hops: ['missing'] }],
    };
    const error = await rejectsWith(client.request('config.replace', { config: broken }), 'INVALID_CONFIG');
    const issuePaths = error.issues?.map((i) => i.path) ?? [];
    assert.ok(issuePaths.includes('listen.port'), issuePaths.join());
    assert.ok(issuePaths.includes('routes[0].hops[0]'), issuePaths.join());
    assert.match(error.message, /listen\.port/);
    assert.deepEqual((await client.request('config.get', {})).config, before.config);
    assert.equal(await readFile(configPath, 'utf8'), fileBefore);
    assert.equal((await client.request('config.get', {})).revision, before.revision);
  });

  test('config.replace with a valid config saves it atomically and applies it to new connections', async () => {
    const next = { ...baseConfig(), rules: [] };
    const changed = await client.request('config.replace', { config: next });
    assert.deepEqual(changed.passwordSaved, { gw: false, auth: false });
    const replaced = await client.request('config.get', {});
    assert.equal(replaced.revision, changed.revision);
    assert.deepEqual(replaced.config.rules, []);
    const onDisk = JSON.parse(await readFile(configPath, 'utf8')) as { rules: unknown[] };
    assert.deepEqual(onDisk.rules, []);
    assert.equal((await client.request('route', { target: '127.0.0.1:80' })).rule, 'default');
    await client.request('config.replace', { config: baseConfig() });
    assert.equal((await client.request('route', { target: '127.0.0.1:80' })).rule, 'loopback');
  });

  test('a listen change moves the listener; a port in use is refused and changes nothing', async () => {
    const port = await freePort();
    await client.request('config.patch', { patch: { listen: { host: '127.0.0.1', port } } });
    assert.equal((await client.request('status', {})).listening, `127.0.0.1:${port}`);
    const tunnel = await openTunnel(port, { host: '127.0.0.1', port: echo.port });
    assert.equal(await echoes(tunnel, 'moved'), 'moved');
    tunnel.destroy();

    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const takenPort = (taken.address() as AddressInfo).port;
    await rejectsWith(
      client.request('config.patch', { patch: { listen: { host: '127.0.0.1', port: takenPort } } }),
      'FAILED',
      /already in use.*Nothing was changed/,
    );
    await new Promise<void>((r) => taken.close(() => r()));
    assert.equal((await client.request('status', {})).listening, `127.0.0.1:${port}`);
    const onDisk = JSON.parse(await readFile(configPath, 'utf8')) as { listen: { port: number } };
    assert.equal(onDisk.listen.port, port);
  });

  test('service.reload re-reads the file; an invalid file is refused with its field paths', async () => {
    const current = JSON.parse(await readFile(configPath, 'utf8')) as ConfigInput;
    await writeFile(configPath, JSON.stringify({ ...current, rules: [] }));
    const before = (await client.request('config.get', {})).revision;
    assert.deepEqual(await client.request('service.reload', {}), { revision: before + 1 });
    assert.equal((await client.request('route', { target: '127.0.0.1:80' })).rule, 'default');

    await writeFile(configPath, JSON.stringify({ ...current, log: { level: 'loud' } }));
    const error = await rejectsWith(client.request('service.reload', {}), 'INVALID_CONFIG');
    assert.deepEqual(
      error.issues?.map((i) => i.path),
      ['log.level'],
    );
    await writeFile(configPath, '{ not json');
    await rejectsWith(client.request('service.reload', {}), 'INVALID_CONFIG', /not valid JSON/);
    assert.equal((await client.request('config.get', {})).revision, before + 1);
    await client.request('config.replace', { config: current });
  });

  test('bad messages get error replies naming the problem, and the service stays up', async () => {
    const raw = await RawClient.open(paths.endpoint);
    const cases: [unknown, string, RegExp][] = [
      ['{ this is not json', 'BAD_MESSAGE', /not JSON/],
      ['[1,2,3]', 'BAD_MESSAGE', /must be a JSON object, not an array/],
      ['"hello"', 'BAD_MESSAGE', /must be a JSON object/],
      [{ v: 1, type: 'status' }, 'BAD_MESSAGE', /^id: is missing/],
      [{ v: 1, id: 'seven', type: 'status' }, 'BAD_MESSAGE', /^id: must be a whole number/],
      [{ v: 1, id: 1.5, type: 'status' }, 'BAD_MESSAGE', /^id: must be a whole number/],
      [{ v: 2, id: 3, type: 'status' }, 'UNSUPPORTED_VERSION', /speaks protocol 1, not 2/],
      [{ id: 3, type: 'status' }, 'UNSUPPORTED_VERSION', /^v: is missing/],
      [
        { v: 1, id: 4, type: 'teleport' },
        'BAD_MESSAGE',
        /^type: unknown message type 'teleport' \(known: hello/,
      ],
      [{ v: 1, id: 5 }, 'BAD_MESSAGE', /^type: is missing/],
      [
        { v: 1, id: 6, type: 'route' },
        'BAD_MESSAGE',
        /^target: Invalid input: expected string, received undefined/,
      ],
      [{ v: 1, id: 7, type: 'toggle.set', enabled: 'yes' }, 'BAD_MESSAGE', /^enabled: .*expected boolean/],
      [{ v: 1, id: 8, type: 'hello', client: 'safari' }, 'BAD_MESSAGE', /^client: /],
      [{ v: 1, id: 9, type: 'credential.set', upstreamId: 'gw' }, 'BAD_MESSAGE', /^password: /],
      [
        { v: 1, id: 10, type: 'credential.set', upstreamId: 'gw', password: '' },
        'BAD_MESSAGE',
        /^password: must not be empty/,
      ],
      [{ v: 1, id: 11, type: 'log.page', limit: 100000 }, 'BAD_MESSAGE', /^limit: /],
      [{ v: 1, id: 12, type: 'log.page', before: -1 }, 'BAD_MESSAGE', /^before: /],
      [
        { v: 1, id: 13, type: 'config.replace', config: 'everything' },
        'BAD_MESSAGE',
        /^config: must be a JSON object/,
      ],
      [{ v: 1, id: 14, type: 'status', extra: true }, 'BAD_MESSAGE', /unexpected unrecognized key: "extra"/],
      [{ v: 1, id: 15, type: 'check', name: 'gw' }, 'BAD_MESSAGE', /^target: /],
    ];
    for (const [message, code, pattern] of cases) {
      const response = await raw.ask(message);
      const error = errorOf(response);
      assert.equal(error.code, code, `${JSON.stringify(message)} -> ${error.message}`);
      assert.match(error.message, pattern, JSON.stringify(message));
      const readable =
        typeof message === 'object' && message !== null && Number.isInteger((message as { id?: unknown }).id);
      assert.equal(response.id, readable ? (message as { id: number }).id : null);
    }
    const alive = await raw.ask({ v: 1, id: 99, type: 'status' });
    assert.equal(alive.ok, true);
    raw.close();
  });

  test('a message over the size limit is refused and skipped; the connection goes on', async () => {
    const raw = await RawClient.open(paths.endpoint);
    const huge = JSON.stringify({ v: 1, id: 1, type: 'route', target: 'x'.repeat(5 * 1024 * 1024) });
    raw.send(huge);
    const error = errorOf((await raw.response(10_000)).message);
    assert.equal(error.code, 'TOO_LARGE');
    const alive = await raw.ask({ v: 1, id: 2, type: 'status' });
    assert.equal(alive.ok, true);
    assert.equal(alive.id, 2);
    raw.close();
  });

  test('log.page with 10,000 events: every reply stays under the limit, and paging sees each event once', async () => {
    const first = service.log.latestSeq + 1;
    for (let i = 0; i < 10_000; i++) {
      service.log.append({
        time: Date.now(),
        kind: 'failed',
        id: i,
        client: '127.0.0.1:5000',
        proto: 'socks5',
        cmd: 'connect',
        dest: `host-${i}.example.com:443`,
        host: `${'h'.repeat(200)}-${i}.example.com`,
        rule: 'a rule with a rather long name',
        via: 'route Through the gateway (Gateway)',
        result: 'rep 5 (connection refused)',
        error: `hop 1 (Gateway): ${'e'.repeat(600)}`,
        ms: i,
      });
    }
    const last = service.log.latestSeq;
    const raw = await RawClient.open(paths.endpoint);
    const seen: number[] = [];
    let before: number | undefined;
    let pages = 0;
    for (;;) {
      raw.send(
        JSON.stringify({ v: 1, id: pages, type: 'log.page', limit: 1000, ...(before ? { before } : {}) }),
      );
      const { text, message } = await raw.response();
      assert.ok(
        Buffer.byteLength(text) <= MAX_MESSAGE_BYTES,
        `page ${pages} is ${Buffer.byteLength(text)} bytes`,
      );
      assert.ok(message.ok);
      const page = message.result as { events: { seq: number }[]; more: boolean; latestSeq: number };
      assert.equal(page.latestSeq, last);
      const seqs = page.events.map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'oldest first',
      );
      seen.unshift(...seqs);
      pages += 1;
      if (!page.more || seqs.length === 0) break;
      before = seqs[0];
    }
    raw.close();
    assert.ok(pages > 10, `the byte budget, not the limit, cut the pages (${pages} pages)`);
    const ours = seen.filter((s) => s >= first);
    assert.equal(ours.length, 10_000);
    assert.deepEqual(
      ours,
      Array.from({ length: 10_000 }, (_, i) => first + i),
    );
    assert.equal(new Set(seen).size, seen.length, 'no event twice');
  });

  test('log.subscribe: a real tunnel produces opened and closed events with rule and route; unsubscribe stops them', async () => {
    const sub = await connectControl(paths.endpoint);
    const events: LogEvent['data']['events'] = [];
    const statuses: HostEvent[] = [];
    sub.onEvent((e) => {
      if (e.event === 'log') events.push(...e.data.events);
      if (e.event === 'status') statuses.push(e);
    });
    const { latestSeq } = await sub.request('log.subscribe', {});
    assert.equal(latestSeq, service.log.latestSeq);
    const port = service.address().port;
    const tunnel = await openTunnel(port, { host: '127.0.0.1', port: echo.port });
    assert.equal(await echoes(tunnel, 'ping through the service'), 'ping through the service');
    tunnel.end();
    await waitFor(() => events.some((e) => e.kind === 'closed'), 'the closed event', 5000);
    const opened = events.find((e) => e.kind === 'opened');
    const closed = events.find((e) => e.kind === 'closed');
    assert.ok(opened && closed);
    assert.ok(opened.seq > latestSeq);
    assert.equal(opened.rule, 'loopback');
    assert.match(opened.via ?? '', /^route Through the gateway \(Gateway\)/);
    assert.equal(closed.dest, `127.0.0.1:${echo.port}`);
    assert.equal(closed.up, 'ping through the service'.length);
    await waitFor(() => statuses.length > 0, 'a status event', 3000);
    const status = await sub.request('status', {});
    assert.ok(status.bytesUp >= 'ping through the service'.length);

    assert.deepEqual(await sub.request('log.unsubscribe', {}), {});
    const count = events.length;
    const again = await openTunnel(port, { host: '127.0.0.1', port: echo.port });
    again.destroy();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(events.length, count);
    sub.close();
  });

  test('a blocked tunnel is logged with the rule that blocked it', async () => {
    const sub = await connectControl(paths.endpoint);
    const events: LogEvent['data']['events'] = [];
    sub.onEvent((e) => {
      if (e.event === 'log') events.push(...e.data.events);
    });
    await sub.request('log.subscribe', {});
    await client.request('config.patch', {
      patch: {
        rules: [
          {
            id: 'deny',
            enabled: true,
            match: { hosts: [{ type: 'exact', value: 'nope.test' }] },
            target: { kind: 'block' },
          },
        ],
      },
    });
    await assert.rejects(openTunnel(service.address().port, { host: 'nope.test', port: 80 }));
    await waitFor(() => events.some((e) => e.host === 'nope.test'), 'the denied event');
    const denied = events.find((e) => e.host === 'nope.test');
    assert.equal(denied?.rule, 'deny');
    sub.close();
  });

  test('single instance: a second claim on the endpoint finds the running service', async () => {
    const second = createControlServer(service, {
      endpoint: paths.endpoint,
      logger: createLogger({ level: 'silent' }),
    });
    const claim = await claimEndpoint(second, paths);
    assert.equal(claim.kind, 'running');
    assert.equal(claim.kind === 'running' ? claim.status?.pid : 0, process.pid);
  });

  test('service.stop answers, then asks the owner to stop', async () => {
    const raw = await RawClient.open(paths.endpoint);
    const response = await raw.ask({ v: 1, id: 42, type: 'service.stop' });
    assert.deepEqual(response, { v: 1, id: 42, ok: true, result: { pid: process.pid, stopping: true } });
    const reason = await service.stopRequested;
    assert.match(reason, /stop requested/);
    raw.close();
    await control.close();
    await assert.rejects(connectControl(paths.endpoint), ServiceNotRunningError);
  });
});
