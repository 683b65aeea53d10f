/**
 * A known upstream password goes in through the browser's way (a `credential.set` frame to the
 * real bridge, which starts the real service), is really used (tunnels and a check through a
 * route whose upstream wants it, and a wrong one saved for a while so the log has auth errors),
 * and is then looked for, byte for byte, in everything the host produced: every frame written to
 * the browser, the bridge's stderr, the service's log, the config file and its .bak, and every
 * other file under the test's HOME, XDG_CONFIG_HOME and XDG_RUNTIME_DIR. The only place it may
 * be is the credential file, which holds it by design (mode 0600).
 *
 * It is looked for as UTF-8, UTF-16LE, hex (both cases) and base64 (standard and URL-safe, at
 * each of the three alignments it can have inside a longer encoded string), so a log line with
 * an encoded `Authorization` header or a dumped buffer would be caught too.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import type { ConfigInput } from '../../shared/config/schema.ts';
import { DEV_EXTENSION_ID } from '../../shared/messages/native-host.ts';
import type {
  CheckResult,
  ConfigChangeResult,
  ConfigResult,
  CredentialSetResult,
  HelloResult,
  HostMessage,
  LogPageResult,
  LogSubscribeResult,
  Response,
  RouteResult,
  StatusResult,
} from '../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import { CREDENTIALS_FILE } from '../../native-host/src/credentials/file-store.ts';
import {
  FrameDecoder,
  MAX_INCOMING_FRAME_BYTES,
  encodeFrame,
} from '../../native-host/src/native-messaging/framing.ts';
import { type EchoServer, startEchoServer } from '../helpers/net.ts';
import { echoes, openTunnel, ReplyError } from '../helpers/socks-client.ts';
import { type TestServer, startSocksServer } from '../helpers/socks-server.ts';
import { HOST_SCRIPT, ensureHostFresh } from '../helpers/switchyard-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { alive, killedAtExit } from '../helpers/processes.ts';

const PASSWORD = 'leak-canary-7f3a9c';
/** Saved for a while instead of PASSWORD: the upstream refuses it, and the log says so. */
const WRONG_PASSWORD = 'wrong-canary-2d8e41';
const UPSTREAM_USER = 'canary-user';
const UPSTREAM_ID = 'canary';
const ROUTE_ID = 'via-canary';
const RULE_ID = 'echo-via-canary';
const ORIGIN = `chrome-extension://${DEV_EXTENSION_ID}/`;

// ---- the build ------------------------------------------------------------------------------

ensureHostFresh();

// ---- looking for the secret -----------------------------------------------------------------

interface Needle {
  readonly form: string;
  readonly bytes: Buffer;
}

/**
 * Every byte string that must show up wherever `secret` was written in some encoding. For
 * base64 the secret may start at any of three offsets within a 3-byte group of the encoded
 * string, so for each alignment the part that does not depend on the bytes around it is used.
 */
function needles(secret: string): Needle[] {
  const utf8 = Buffer.from(secret, 'utf8');
  const out: Needle[] = [
    { form: 'utf8', bytes: utf8 },
    { form: 'utf16le', bytes: Buffer.from(secret, 'utf16le') },
    { form: 'hex', bytes: Buffer.from(utf8.toString('hex'), 'latin1') },
    { form: 'HEX', bytes: Buffer.from(utf8.toString('hex').toUpperCase(), 'latin1') },
  ];
  for (let skip = 0; skip < 3; skip++) {
    const whole = Math.floor((utf8.length - skip) / 3) * 3;
    const aligned = utf8.subarray(skip, skip + whole);
    out.push(
      { form: `base64 (its bytes ${skip}..)`, bytes: Buffer.from(aligned.toString('base64'), 'latin1') },
      {
        form: `base64url (its bytes ${skip}..)`,
        bytes: Buffer.from(aligned.toString('base64url'), 'latin1'),
      },
    );
  }
  return out;
}

const SECRETS = [
  { name: 'the password', needles: needles(PASSWORD) },
  { name: 'the wrong password', needles: needles(WRONG_PASSWORD) },
];

/** "<where>: <which secret> as <form>" for each secret found in `bytes`. */
function leaksIn(where: string, bytes: Buffer): string[] {
  const found: string[] = [];
  for (const secret of SECRETS) {
    for (const n of secret.needles) {
      if (bytes.includes(n.bytes)) found.push(`${where}: ${secret.name} as ${n.form}`);
    }
  }
  return found;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

// ---- processes ------------------------------------------------------------------------------

/** PIDs to SIGKILL should the test end without stopping them (the service is detached). */
const started = killedAtExit();

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

/** The browser's end of the native port, keeping every byte the bridge wrote. */
class BrowserPort {
  readonly child: ChildProcess;
  /** stdout exactly as written: frames, and nothing else. */
  readonly stdout: Buffer[] = [];
  readonly stderr: Buffer[] = [];
  readonly messages: HostMessage[] = [];
  readonly garbage: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly decoder = new FrameDecoder();
  private nextId = 1;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [HOST_SCRIPT, 'native-host', ORIGIN], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (this.child.pid !== undefined) started.add(this.child.pid);
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout.push(chunk);
      for (const r of this.decoder.push(chunk)) {
        if (r.kind === 'error') this.garbage.push(r.error.message);
        else this.messages.push(r.message as HostMessage);
      }
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr.push(chunk);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => resolve(code));
    });
  }

  stderrText(): string {
    return Buffer.concat(this.stderr).toString('utf8');
  }

  async request(type: string, params: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<Response> {
    const id = this.nextId++;
    this.child.stdin?.write(
      encodeFrame({ v: 1, id, type, ...params }, { maxBytes: MAX_INCOMING_FRAME_BYTES }),
    );
    let found: Response | undefined;
    await waitFor(
      () => {
        found = this.messages.find((m): m is Response => 'ok' in m && m.id === id);
        return found !== undefined;
      },
      `the response to ${type} (${id}); stderr: ${this.stderrText()}`,
      timeoutMs,
    );
    return found!;
  }

  async result<T>(type: string, params: Record<string, unknown> = {}): Promise<T> {
    const response = await this.request(type, params);
    assert.ok(response.ok, `${type}: ${JSON.stringify(response)}`);
    return response.result as T;
  }

  /** Tunnel events that came as `log` events (after log.subscribe). */
  logEvents(): TunnelEvent[] {
    return this.messages.flatMap((m) => ('event' in m && m.event === 'log' ? m.data.events : []));
  }
}

// ---- the test -------------------------------------------------------------------------------

async function tunnelEchoes(socksPort: number, echo: EchoServer, text: string): Promise<void> {
  const socket: Socket = await openTunnel(socksPort, { host: '127.0.0.1', port: echo.port });
  try {
    assert.equal(await echoes(socket, text), text);
  } finally {
    socket.end();
  }
}

test('the upstream password is nowhere but the credential file: not in frames, logs, config or runtime files', {
  timeout: 90_000,
}, async (t) => {
  // ---- a private HOME, config and runtime directory; the file credential store --------------
  const root = await mkdtemp(join(tmpdir(), 'switchyard-leak-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const home = join(root, 'home');
  const configHome = join(root, 'config');
  const runtime = join(root, 'run');
  const configDir = join(configHome, 'switchyard');
  const configFile = join(configDir, 'config.json');
  const credentialsFile = join(configDir, CREDENTIALS_FILE);
  const serviceLog = join(runtime, 'switchyard', 'service.log');
  await mkdir(home, { mode: 0o700 });
  await mkdir(runtime, { mode: 0o700 });
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await writeFile(
    configFile,
    `${JSON.stringify({ version: 1, listen: { port: 0 }, timeouts: { shutdownGraceMs: 0 } }, null, 2)}\n`,
    { mode: 0o600 },
  );
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/_proxy$/i.test(k)) env[k] = v;
  Object.assign(env, {
    HOME: home,
    XDG_CONFIG_HOME: configHome,
    XDG_RUNTIME_DIR: runtime,
    SWITCHYARD_CREDENTIAL_STORE: 'file',
  });

  // ---- an upstream that wants the password, and a destination behind it ---------------------
  const upstream: TestServer = await startSocksServer({
    users: [{ name: UPSTREAM_USER, passwordHash: await hashPassword(PASSWORD) }],
  });
  cleanups.push(() => upstream.close());
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  const destination = `127.0.0.1:${echo.port}`;

  // ---- the browser's side: the real bridge, which starts the real service -------------------
  const port = new BrowserPort(env);
  const hello = await port.result<HelloResult>('hello', { client: 'chrome', extensionVersion: '0.1.0' });
  assert.equal(hello.credentialStore.kind, 'file');

  const config: ConfigInput = {
    version: 1,
    listen: { port: 0 },
    // Debug: every line the service can write about a connection and its hops is written.
    log: { level: 'debug' },
    timeouts: { shutdownGraceMs: 0, upstreamRetryMs: 0, hopHandshakeMs: 5_000 },
    upstreams: [
      {
        id: UPSTREAM_ID,
        name: 'Canary upstream',
        type: 'socks5',
        host: '127.0.0.1',
        port: upstream.port,
        username: UPSTREAM_USER,
      },
    ],
    routes: [{ id: ROUTE_ID, name: 'Via canary', hops: [UPSTREAM_ID] }],
    rules: [
      {
        id: RULE_ID,
        enabled: true,
        name: 'echo through the canary',
        match: { ips: ['127.0.0.1/32'], ports: [echo.port] },
        target: { kind: 'route', routeId: ROUTE_ID },
      },
    ],
  };
  const replaced = await port.result<ConfigChangeResult>('config.replace', { config });
  assert.deepEqual(replaced.passwordSaved, { [UPSTREAM_ID]: false });
  const subscribed = await port.result<LogSubscribeResult>('log.subscribe');
  const saved = await port.result<CredentialSetResult>('credential.set', {
    upstreamId: UPSTREAM_ID,
    password: PASSWORD,
  });
  assert.deepEqual(saved, { upstreamId: UPSTREAM_ID, saved: true });

  const status = await port.result<StatusResult>('status');
  started.add(status.pid);
  assert.equal(status.startedBy, 'bridge');
  assert.notEqual(status.pid, port.child.pid);
  const socksPort = Number(/:(\d+)$/.exec(status.listening)?.[1]);
  assert.ok(socksPort > 0, status.listening);

  // ---- the password in use: tunnels, route, check ---------------------------------------------
  for (let i = 0; i < 3; i++) await tunnelEchoes(socksPort, echo, `through the canary #${i}`);

  const route = await port.result<RouteResult>('route', { target: destination });
  assert.equal(route.route?.id, ROUTE_ID);
  assert.equal(route.ruleId, RULE_ID);
  assert.equal(route.hops.length, 1);
  assert.equal(route.hops[0]?.username, UPSTREAM_USER);

  const check = await port.result<CheckResult>('check', { name: ROUTE_ID, target: destination });
  assert.equal(check.ok, true, JSON.stringify(check));
  assert.equal(check.hops[0]?.ok, true);

  // ---- a wrong password saved: the upstream refuses, the log and the check say so ------------
  await port.result<CredentialSetResult>('credential.set', {
    upstreamId: UPSTREAM_ID,
    password: WRONG_PASSWORD,
  });
  await assert.rejects(
    openTunnel(socksPort, { host: '127.0.0.1', port: echo.port }),
    (error: unknown) => error instanceof ReplyError && error.rep !== undefined && error.rep !== 0,
  );
  const refused = await port.result<CheckResult>('check', { name: ROUTE_ID, target: destination });
  assert.equal(refused.ok, false, JSON.stringify(refused));
  assert.equal(refused.hops[0]?.ok, false);
  assert.match(refused.hops[0]?.error ?? '', /rejected the username\/password/, JSON.stringify(refused));

  // ---- the right one again: it works again ---------------------------------------------------
  await port.result<CredentialSetResult>('credential.set', { upstreamId: UPSTREAM_ID, password: PASSWORD });
  await tunnelEchoes(socksPort, echo, 'after the wrong password');

  const got = await port.result<ConfigResult>('config.get');
  assert.deepEqual(got.passwordSaved, { [UPSTREAM_ID]: true });
  assert.equal(got.config.upstreams[0]?.username, UPSTREAM_USER);

  // Every tunnel has ended, in the log (page and live events alike).
  const viaCanary = (e: TunnelEvent) => e.kind === 'closed' && e.rule !== undefined && e.dest === destination;
  const failedHop = (e: TunnelEvent) => e.kind === 'failed' && e.dest === destination && e.hop === 1;
  await waitFor(
    () => port.logEvents().filter(viaCanary).length >= 4 && port.logEvents().some(failedHop),
    `the log events of 4 tunnels through the canary and 1 refused at hop 1; got ${JSON.stringify(port.logEvents())}`,
    10_000,
  );
  const page = await port.result<LogPageResult>('log.page', { limit: 1000 });
  const closed = page.events.filter(viaCanary);
  assert.equal(closed.length, 4, JSON.stringify(page.events));
  for (const e of closed) {
    assert.equal(e.result, 'done', JSON.stringify(e));
    assert.equal(e.via, route.route?.label, JSON.stringify(e));
  }
  const failures = page.events.filter(failedHop);
  assert.equal(failures.length, 1, JSON.stringify(page.events));
  assert.match(
    failures[0]?.error ?? '',
    /hop 1 .*rejected the username\/password/,
    JSON.stringify(failures[0]),
  );
  assert.ok(page.latestSeq > subscribed.latestSeq);

  const final = await port.result<StatusResult>('status');
  assert.equal(final.pid, status.pid);
  assert.ok(final.bytesUp > 0 && final.bytesDown > 0, JSON.stringify(final));

  // ---- stop everything: the bridge (EOF), the service (its PID), the upstream ----------------
  port.child.stdin?.end();
  assert.equal(await port.exited, 0, port.stderrText());
  assert.deepEqual(port.garbage, [], 'the bridge wrote something that is not a frame');
  process.kill(status.pid, 'SIGTERM');
  await waitFor(() => !alive(status.pid), `the service (pid ${status.pid}) to stop`, 10_000);
  started.delete(status.pid);
  await upstream.close();
  await echo.close();

  // ---- what there is to search ----------------------------------------------------------------
  const stdout = Buffer.concat(port.stdout);
  const stderr = Buffer.concat(port.stderr);
  assert.ok(stdout.length > 0 && stderr.length > 0);
  // Each response and log event above went out as these bytes.
  assert.ok(stdout.includes(Buffer.from(`"ruleId":"${RULE_ID}"`)), 'the route reply is in the frames');
  assert.ok(stdout.includes(Buffer.from('"event":"log"')), 'log events are in the frames');
  const logText = readFileSync(serviceLog, 'utf8');
  assert.match(logText, /switchyard listening on/);
  assert.ok(logText.includes(destination), 'the tunnels are in the service log');
  assert.match(
    logText,
    /tunnel failed .*rejected the username\/password/,
    'the auth error is in the service log',
  );
  assert.equal(logText.match(/credential saved upstream=canary/g)?.length, 3, logText);
  assert.ok(existsSync(`${configFile}.bak`), 'config.replace kept the previous config as .bak');

  // The credential file holds the password by design, only there, and only its owner can read it.
  const credentialBytes = readFileSync(credentialsFile);
  assert.equal(statSync(credentialsFile).mode & 0o777, 0o600);
  assert.ok(
    leaksIn('credentials', credentialBytes).some((l) => l.endsWith('the password as utf8')),
    'the credential file holds the password (and the search finds it there)',
  );
  assert.deepEqual(
    leaksIn('credentials', credentialBytes).filter((l) => l.includes('wrong')),
    [],
  );

  const searched: string[] = ['bridge stdout (every frame)', 'bridge stderr'];
  const leaks = [...leaksIn('bridge stdout (every frame)', stdout), ...leaksIn('bridge stderr', stderr)];
  for (const file of filesUnder(root)) {
    if (file === credentialsFile) continue;
    const name = relative(root, file);
    searched.push(name);
    leaks.push(...leaksIn(name, readFileSync(file)));
  }
  for (const must of [configFile, `${configFile}.bak`, serviceLog]) {
    assert.ok(searched.includes(relative(root, must)), `${must} was searched`);
  }
  assert.deepEqual(leaks, [], `searched: ${searched.join(', ')}`);
  t.diagnostic(
    `searched ${searched.length} places (${stdout.length} bytes of frames, ${stderr.length} of stderr): ${searched.join(', ')}`,
  );
});
