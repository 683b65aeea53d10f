/**
 * The native-messaging bridge and the per-user service as real processes, the way a browser
 * runs them: the built host started as `switchyard native-host chrome-extension://abc/` with
 * piped stdio, speaking frames. Every test has its own XDG_RUNTIME_DIR and XDG_CONFIG_HOME, so
 * nothing touches the real user's files or service.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type ConfigInput, validateConfig } from '../../shared/config/schema.ts';
import { type ReadConfigPart, readConfigInParts } from '../../shared/messages/config-parts.ts';
import {
  type ConfigPartResult,
  type HostMessage,
  MAX_MESSAGE_BYTES,
  type Response,
} from '../../shared/messages/protocol.ts';
import {
  FrameDecoder,
  MAX_INCOMING_FRAME_BYTES,
  encodeFrame,
} from '../../native-host/src/native-messaging/framing.ts';
import { OTHER_USER, SETPRIV, childEnv, ensureOtherUser } from '../helpers/configs.ts';
import { HOST_SCRIPT, REPO_ROOT, ensureHostFresh } from '../helpers/switchyard-process.ts';
import { startEchoServer } from '../helpers/net.ts';
import { echoes, openTunnel } from '../helpers/socks-client.ts';
import { waitFor } from '../helpers/wait.ts';
import { alive, killedAtExit } from '../helpers/processes.ts';

ensureHostFresh();

/** Processes to SIGKILL if a test leaves them behind (services started by bridges are detached). */
const started = killedAtExit();

interface Home {
  readonly root: string;
  readonly runtime: string;
  readonly configFile: string;
  readonly controlDir: string;
  readonly socket: string;
  readonly env: NodeJS.ProcessEnv;
}

const homes: string[] = [];
after(async () => {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const root of homes) await rm(root, { recursive: true, force: true });
});

async function newHome(
  extraEnv: Record<string, string> = {},
  config: Omit<ConfigInput, 'version'> = {},
): Promise<Home> {
  const root = await mkdtemp(join(tmpdir(), 'switchyard-bridge-'));
  homes.push(root);
  const runtime = join(root, 'run');
  const configDir = join(root, 'config', 'switchyard');
  await mkdir(runtime, { mode: 0o700 });
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  const configFile = join(configDir, 'config.json');
  const full = { version: 1, listen: { port: 0 }, timeouts: { shutdownGraceMs: 0 }, ...config };
  await writeFile(configFile, `${JSON.stringify(full, null, 2)}\n`, { mode: 0o600 });
  return {
    root,
    runtime,
    configFile,
    controlDir: join(runtime, 'switchyard'),
    socket: join(runtime, 'switchyard', 'control.sock'),
    env: childEnv({
      XDG_RUNTIME_DIR: runtime,
      XDG_CONFIG_HOME: join(root, 'config'),
      SWITCHYARD_CREDENTIAL_STORE: 'file',
      ...extraEnv,
    }),
  };
}

/** A browser's side of a native port: frames in, frames out, and nothing else on stdout. */
class BrowserPort {
  readonly child: ChildProcess;
  readonly messages: HostMessage[] = [];
  /** What came on stdout that was not a frame: must stay empty. */
  readonly garbage: string[] = [];
  readonly exited: Promise<{ code: number | null; at: number }>;
  stderr = '';
  private readonly decoder = new FrameDecoder();
  private nextId = 1;

  constructor(home: Home, args: readonly string[] = ['chrome-extension://abc/']) {
    this.child = spawn(process.execPath, [HOST_SCRIPT, 'native-host', ...args], {
      env: home.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (this.child.pid !== undefined) started.add(this.child.pid);
    this.child.stdout?.on('data', (chunk: Buffer) => {
      for (const r of this.decoder.push(chunk)) {
        // Anything on stdout that is not a well-formed frame would break the browser's port.
        if (r.kind === 'error') this.garbage.push(r.error.message);
        else this.messages.push(r.message as HostMessage);
      }
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => resolve({ code, at: Date.now() }));
    });
  }

  write(data: Buffer): void {
    this.child.stdin?.write(data);
  }

  /** Sends a request and resolves with its response. */
  async request(type: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<Response> {
    const id = this.nextId++;
    // Browser to host: the 4 MiB limit applies, not the 1 MB one of host-to-browser replies.
    this.write(encodeFrame({ v: 1, id, type, ...params }, { maxBytes: MAX_INCOMING_FRAME_BYTES }));
    return this.responseTo(id, timeoutMs);
  }

  async responseTo(id: number | null, timeoutMs = 10_000): Promise<Response> {
    let found: Response | undefined;
    await waitFor(
      () => {
        found = this.messages.find((m): m is Response => 'ok' in m && m.id === id);
        return found !== undefined;
      },
      `the response to ${id}; stderr: ${this.stderr}`,
      timeoutMs,
    );
    this.messages.splice(this.messages.indexOf(found!), 1);
    return found!;
  }

  async result<T>(type: string, params: Record<string, unknown> = {}): Promise<T> {
    const response = await this.request(type, params);
    assert.ok(response.ok, JSON.stringify(response));
    return response.result as T;
  }

  async close(): Promise<{ code: number | null; at: number }> {
    this.child.stdin?.end();
    const exit = await this.exited;
    assert.deepEqual(this.garbage, [], 'the bridge wrote something that is not a frame');
    return exit;
  }
}

interface StatusLike {
  pid: number;
  startedBy: string;
  listening: string;
}

interface ServeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

async function startServe(home: Home, args: readonly string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [HOST_SCRIPT, 'serve', ...args], {
    env: home.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  started.add(pid);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(
    () => /switchyard listening on/.test(out) || child.exitCode !== null,
    'serve to listen',
    10_000,
  );
  const m = /switchyard listening on 127\.0\.0\.1:(\d+)/.exec(out);
  if (!m) throw new Error(`serve did not start: ${err}`);
  return { child, pid, port: Number(m[1]), exited, stderr: () => err };
}

function run(
  home: Home,
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HOST_SCRIPT, ...args], {
      env: home.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function header(length: number): Buffer {
  const b = Buffer.alloc(4);
  if (endianness() === 'LE') b.writeUInt32LE(length);
  else b.writeUInt32BE(length);
  return b;
}

describe('native-messaging bridge', () => {
  test('starts the service when none runs, exits within 500 ms of stdin EOF, and the service idles out', async () => {
    const home = await newHome({ SWITCHYARD_IDLE_EXIT_MS: '800' });
    const port = new BrowserPort(home);
    const hello = await port.result<{ protocol: number; credentialStore: { kind: string } }>('hello', {
      client: 'chrome',
      extensionVersion: '0.1.0',
    });
    assert.equal(hello.protocol, 1);
    assert.equal(hello.credentialStore.kind, 'file');
    const status = await port.result<StatusLike>('status');
    assert.equal(status.startedBy, 'bridge');
    assert.notEqual(status.pid, port.child.pid);
    started.add(status.pid);
    assert.ok(alive(status.pid));
    assert.match(await readFile(join(home.controlDir, 'service.log'), 'utf8'), /switchyard listening on/);

    // Connected for longer than the idle period: the service must stay.
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(alive(status.pid), 'the service must not idle out while a bridge is connected');

    const eofAt = Date.now();
    const { code, at } = await port.close();
    assert.equal(code, 0);
    assert.ok(at - eofAt < 500, `the bridge took ${at - eofAt} ms to exit after EOF`);

    await new Promise((r) => setTimeout(r, 300));
    assert.ok(alive(status.pid), 'the service waits for the idle period first');
    await waitFor(() => !alive(status.pid), 'the bridge-started service to exit by itself', 5000);
    assert.equal(existsSync(home.socket), false, 'it removes its socket on the way out');
  });

  test('finds a running `serve`, which does not idle out; a lost service is reported as an event', async () => {
    const home = await newHome({ SWITCHYARD_IDLE_EXIT_MS: '300' });
    const serve = await startServe(home);
    const port = new BrowserPort(home);
    const status = await port.result<StatusLike>('status');
    assert.equal(status.pid, serve.pid);
    assert.equal(status.startedBy, 'user');
    assert.equal(status.listening, `127.0.0.1:${serve.port}`);
    await port.close();
    await new Promise((r) => setTimeout(r, 1200));
    assert.ok(alive(serve.pid), 'a serve-started service keeps running');

    const second = new BrowserPort(home);
    await second.result('status');
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, 0);
    await waitFor(
      () => second.messages.some((m) => 'event' in m && m.event === 'service'),
      'the service event',
    );
    assert.deepEqual(
      second.messages.find((m) => 'event' in m && m.event === 'service'),
      { v: 1, event: 'service', data: { state: 'disconnected' } },
    );
    // The next request starts a service again, this time by the bridge.
    const restarted = await second.result<StatusLike>('status');
    started.add(restarted.pid);
    assert.equal(restarted.startedBy, 'bridge');
    await second.result('service.stop');
    await second.close();
    await waitFor(() => !alive(restarted.pid), 'the restarted service to stop');
  });

  test('frames split across writes, several frames in one write, and Firefox arguments', async () => {
    const home = await newHome();
    const port = new BrowserPort(home, [join(home.root, 'manifest.json'), 'switchyard@example.org']);
    const one = encodeFrame({ v: 1, id: 1, type: 'hello', client: 'firefox' });
    for (let i = 0; i < one.length; i += 3) {
      port.write(one.subarray(i, i + 3));
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok((await port.responseTo(1)).ok);
    port.write(
      Buffer.concat([
        encodeFrame({ v: 1, id: 2, type: 'status' }),
        encodeFrame({ v: 1, id: 3, type: 'route', target: 'https://example.com/' }),
        encodeFrame({ v: 1, id: 4, type: 'config.get' }).subarray(0, 2),
      ]),
    );
    port.write(encodeFrame({ v: 1, id: 4, type: 'config.get' }).subarray(2));
    for (const id of [2, 3, 4]) assert.ok((await port.responseTo(id)).ok, `response ${id}`);
    assert.match(port.stderr, /browser=firefox/);
    const status = await port.result<StatusLike>('status');
    started.add(status.pid);
    await port.result('service.stop');
    await port.close();
  });

  test('bad frames and bad messages get error frames; an oversized length is refused without a crash', async () => {
    const home = await newHome();
    const port = new BrowserPort(home);
    // Not JSON.
    port.write(Buffer.concat([header(5), Buffer.from('{oops')]));
    const notJson = await port.responseTo(null);
    assert.equal(notJson.ok ? '' : notJson.error.code, 'BAD_MESSAGE');
    // Valid JSON, invalid request: the id is read back.
    const unknown = await port.request('teleport');
    assert.equal(unknown.ok ? '' : unknown.error.code, 'BAD_MESSAGE');
    assert.match(unknown.ok ? '' : unknown.error.message, /unknown message type 'teleport'/);
    const missing = await port.request('credential.set', { upstreamId: 'x' });
    assert.match(missing.ok ? '' : missing.error.message, /^password: /);

    // A declared length over the 4 MiB limit: an error frame, the frame is skipped, and the
    // bridge stays in step for the next one.
    const declared = 5 * 1024 * 1024;
    port.write(header(declared));
    const tooLarge = await port.responseTo(null);
    assert.equal(tooLarge.ok ? '' : tooLarge.error.code, 'TOO_LARGE');
    assert.match(tooLarge.ok ? '' : tooLarge.error.message, /5242880 bytes/);
    port.write(Buffer.alloc(declared, 0x20));
    const after = await port.result<StatusLike>('status');
    started.add(after.pid);

    // A length no browser would send: still an error frame and a live bridge.
    port.write(header(0xfffffff0));
    const absurd = await port.responseTo(null);
    assert.equal(absurd.ok ? '' : absurd.error.code, 'TOO_LARGE');
    assert.equal(port.child.exitCode, null);
    const { code } = await port.close();
    assert.equal(code, 0);
    await run(home, ['stop']);
  });

  test('a reply that would exceed 1 MB becomes an error reply with the same id', async () => {
    const home = await newHome();
    const port = new BrowserPort(home);
    // A config of about 1.5 MB fits the 4 MiB browser-to-host limit but not a 1 MB reply.
    const hosts: Record<string, string[]> = {};
    for (let i = 0; i < 30_000; i++) hosts[`host-${i}.intranet.example`] = ['10.0.0.1'];
    const changed = await port.request('config.patch', { patch: { hosts } });
    assert.ok(changed.ok, JSON.stringify(changed).slice(0, 300));
    const get = await port.request('config.get');
    assert.equal(get.ok ? '' : get.error.code, 'TOO_LARGE');
    const status = await port.result<StatusLike>('status');
    started.add(status.pid);
    await port.result('service.stop');
    await port.close();
  });
  test('a config over 1 MB is read through config.part: every reply under 1 MB, the whole equal to config.get', async () => {
    const home = await newHome();
    const port = new BrowserPort(home);
    const hosts: Record<string, string[]> = {};
    for (let i = 0; i < 30_000; i++) hosts[`host-${i}.intranet.example`] = ['10.0.0.1'];
    // A name that is not ASCII, so that parts cut through multi-byte text too.
    hosts['\u00fcber-\u6f22\u5b57.example'] = ['10.0.0.2'];
    assert.ok((await port.request('config.patch', { patch: { hosts } })).ok);
    const get = await port.request('config.get');
    assert.equal(get.ok ? '' : get.error.code, 'TOO_LARGE');
    assert.match(get.ok ? '' : get.error.message, /read it with config\.part$/);

    const replyBytes: number[] = [];
    const readPart: ReadConfigPart = async (offset, revision) => {
      const response = await port.request(
        'config.part',
        revision === undefined ? { offset } : { offset, revision },
      );
      replyBytes.push(Buffer.byteLength(JSON.stringify(response)));
      assert.ok(response.ok, JSON.stringify(response).slice(0, 300));
      return response.result as ConfigPartResult;
    };
    const whole = await readConfigInParts(readPart, () => false);
    assert.ok(replyBytes.length >= 2, `${replyBytes.length} parts`);
    assert.ok(
      replyBytes.every((b) => b <= MAX_MESSAGE_BYTES),
      `reply sizes ${replyBytes.join(', ')}`,
    );
    assert.deepEqual(whole.config.hosts, hosts);
    const onDisk = validateConfig(JSON.parse(await readFile(home.configFile, 'utf8')));
    assert.ok(onDisk.ok);
    assert.deepEqual(whole.config, onDisk.config);

    // A change between two parts: the next part says so, and reading again gives the new one.
    const first = await readPart(0, undefined);
    assert.ok(
      (await port.request('config.patch', { patch: { hosts: { ...hosts, 'late.example': ['10.0.0.3'] } } }))
        .ok,
    );
    const stale = await port.request('config.part', { offset: first.text.length, revision: first.revision });
    assert.equal(stale.ok ? '' : stale.error.code, 'CHANGED');
    const again = await readConfigInParts(readPart, () => false);
    assert.deepEqual(again.config.hosts['late.example'], ['10.0.0.3']);
    assert.ok(again.revision > first.revision);

    const status = await port.result<StatusLike>('status');
    started.add(status.pid);
    await port.result('service.stop');
    await port.close();
  });
});

describe('service', () => {
  test('a second serve refuses, naming the running one; a stale socket is replaced', async () => {
    const home = await newHome();
    const first = await startServe(home);
    const second = await run(home, ['serve']);
    assert.equal(second.code, 1);
    assert.equal(second.stdout, '');
    assert.equal(
      second.stderr.trim(),
      `switchyard: switchyard is already running (pid ${first.pid}, listening on 127.0.0.1:${first.port}); stop it with \`switchyard stop\``,
    );

    // A crash leaves the socket file behind; the next serve must not be fooled by it.
    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(existsSync(home.socket), 'the socket file outlives a killed service');
    const third = await startServe(home);
    const status = await run(home, ['status', '--json']);
    assert.equal((JSON.parse(status.stdout) as StatusLike).pid, third.pid);
    assert.equal((await run(home, ['stop'])).code, 0);
    assert.equal(await third.exited, 0);
    const none = await run(home, ['status']);
    assert.equal(none.code, 1);
    assert.equal(
      none.stderr,
      'switchyard: no switchyard service is running; start one with `switchyard serve`\n',
    );
  });

  test('status, log, reload and stop from the CLI', async () => {
    const home = await newHome();
    const serve = await startServe(home);
    const status = await run(home, ['status']);
    assert.equal(status.code, 0);
    assert.match(status.stdout, new RegExp(`pid ${serve.pid}, started by switchyard serve`));
    assert.match(status.stdout, new RegExp(`listening: +127\\.0\\.0\\.1:${serve.port}`));
    // log --follow: a real tunnel shows up live, with its rule; the earlier one through paging.
    const echo = await startEchoServer();
    const early = await openTunnel(serve.port, { host: '127.0.0.1', port: echo.port });
    assert.equal(await echoes(early, 'early'), 'early');
    early.end();
    await waitFor(() => echo.sockets.every((s) => s.destroyed), 'the first tunnel to close');
    const follow = spawn(process.execPath, [HOST_SCRIPT, 'log', '--follow', '--json'], {
      env: home.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.add(follow.pid!);
    let followed = '';
    follow.stdout?.on('data', (c: Buffer) => {
      followed += c.toString('utf8');
    });
    const followExit = new Promise((resolve) => follow.once('exit', resolve));
    await waitFor(() => followed.includes('"kind":"closed"'), 'the paged events');
    const late = await openTunnel(serve.port, { host: '127.0.0.1', port: echo.port });
    assert.equal(await echoes(late, 'late'), 'late');
    late.end();
    await waitFor(
      () => followed.split('\n').filter((l) => l.includes('"kind":"closed"')).length === 2,
      'the live event',
    );
    const events = followed
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; kind: string; rule?: string });
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      'each event once, in order',
    );
    assert.ok(events.every((e) => e.rule === 'default'));
    const text = await run(home, ['log', '--limit', '1']);
    assert.equal(text.code, 0);
    assert.match(
      text.stdout,
      /^\S+ closed #2 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ rule=default .*up=4 down=4 ms=\d+\n$/,
    );
    follow.kill('SIGINT');
    await followExit;
    await echo.close();
    await writeFile(
      home.configFile,
      JSON.stringify({ version: 1, listen: { port: 0 }, log: { level: 'nope' } }),
    );
    const rejected = await run(home, ['reload']);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stderr, /the config is not valid; nothing changed:\n {2}- log\.level: /);
    await writeFile(home.configFile, JSON.stringify({ version: 1, listen: { port: 0 }, enabled: false }));
    const reloaded = await run(home, ['reload']);
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.match((await run(home, ['status'])).stdout, /enabled: +no/);
    const stopped = await run(home, ['stop']);
    assert.equal(stopped.stdout, `switchyard stopped (pid ${serve.pid})\n`);
    assert.equal(await serve.exited, 0);
  });

  test('the control directory is 0700 and ours; another OS user cannot connect', async () => {
    const home = await newHome();
    const serve = await startServe(home);
    const dir = await stat(home.controlDir);
    assert.equal(dir.mode & 0o777, 0o700);
    assert.equal(dir.uid, process.getuid?.());
    assert.equal((await stat(home.socket)).mode & 0o777, 0o600);

    // Let the other user reach the runtime directory itself, so only ours stands in the way.
    await chmod(home.root, 0o755);
    await chmod(home.runtime, 0o755);
    const { uid, gid } = await ensureOtherUser();
    const probe = `require('net').connect(${JSON.stringify(home.socket)})
      .on('connect', () => { console.log('CONNECTED'); process.exit(0); })
      .on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const out = execFileSync(
      SETPRIV,
      [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '-e', probe],
      { encoding: 'utf8', timeout: 10_000 },
    ).trim();
    assert.equal(out, 'EACCES', `${OTHER_USER} got: ${out}`);
    serve.child.kill('SIGTERM');
    await serve.exited;
  });

  test('a control directory open to others, or owned by another user, is refused', async () => {
    const home = await newHome();
    mkdirSync(home.controlDir, { mode: 0o700 });
    chmodSync(home.controlDir, 0o755);
    const open = await run(home, ['serve']);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /is open to other users \(mode 755\); refusing .*chmod 700/);

    chmodSync(home.controlDir, 0o700);
    const { uid, gid } = await ensureOtherUser();
    await chown(home.controlDir, uid, gid);
    const foreign = await run(home, ['serve']);
    assert.equal(foreign.code, 2);
    assert.match(foreign.stderr, /belongs to another user/);
  });

  test('config writes are atomic under kill -9: the file is always the old or the new config', async () => {
    const home = await newHome();
    const file = join(home.root, 'atomic.json');
    const small = validateConfig({ version: 1, enabled: true });
    const hosts: Record<string, string[]> = {};
    for (let i = 0; i < 5000; i++) hosts[`name-${i}.example`] = ['10.1.2.3'];
    const large = validateConfig({ version: 1, enabled: false, hosts });
    assert.ok(small.ok && large.ok);
    const variants = [JSON.stringify(small.config), JSON.stringify(large.config)];
    const variantFiles = [join(home.root, 'a.json'), join(home.root, 'b.json')];
    await writeFile(variantFiles[0]!, variants[0]!);
    await writeFile(variantFiles[1]!, variants[1]!);
    const saver = join(home.root, 'saver.mjs');
    await writeFile(
      saver,
      `import { saveConfig } from ${JSON.stringify(join(REPO_ROOT, 'native-host/src/config/store.ts'))};
       import { readFileSync } from 'node:fs';
       const [file, a, b] = process.argv.slice(2);
       const configs = [a, b].map((f) => JSON.parse(readFileSync(f, 'utf8')));
       await saveConfig(file, configs[0]);
       process.stdout.write('ready\\n');
       for (let i = 1; ; i++) await saveConfig(file, configs[i % 2]);`,
    );
    for (let round = 0; round < 12; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', saver, file, ...variantFiles], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      started.add(child.pid!);
      let ready = false;
      child.stdout?.on('data', () => {
        ready = true;
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await waitFor(() => ready, 'the saver to start', 10_000);
      await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 60)));
      child.kill('SIGKILL');
      await exited;
      const text = await readFile(file, 'utf8');
      let parsed: unknown;
      assert.doesNotThrow(() => {
        parsed = JSON.parse(text);
      }, `round ${round}: the file is not JSON after kill -9`);
      const result = validateConfig(parsed);
      assert.ok(result.ok, `round ${round}: the file is not a valid config`);
      assert.ok(variants.includes(JSON.stringify(result.config)), `round ${round}: neither old nor new`);
    }
  });
});
