/**
 * The built host (dist/host/switchyard.js) as a real child process, for tests that drive it
 * with clients nobody here wrote; plus a loopback HTTP server with a small body and a large
 * deterministic one whose sha256 is known.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { killedAtExit } from './processes.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const HOST_SCRIPT = join(REPO_ROOT, 'dist', 'host', 'switchyard.js');

const BUILD_LOCK = join(REPO_ROOT, 'dist', '.switchyard-build.lock');

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The newest modification time of a .ts or .tsx file under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.tsx?$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/host/switchyard.js when `stale()` says so. Test files run in parallel processes,
 * so one builds under a lock directory (mkdir is atomic) while the others wait for it; `stale`
 * is asked again once the lock is held.
 */
function buildHostIf(stale: () => boolean): void {
  if (!stale()) return;
  mkdirSync(join(REPO_ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      mkdirSync(BUILD_LOCK);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${BUILD_LOCK}`);
      sleepSync(100);
    }
  }
  try {
    if (stale()) {
      execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-host.mjs')], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'inherit'],
        timeout: 60_000,
      });
    }
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

/** Builds dist/host/switchyard.js when it is missing. */
export function ensureHostBuilt(): void {
  buildHostIf(() => !existsSync(HOST_SCRIPT));
}

/** dist/host/switchyard.js, rebuilt when a source under native-host/ or shared/ is newer; its path. */
export function ensureHostFresh(): string {
  const sources = Math.max(
    newestSource(join(REPO_ROOT, 'native-host')),
    newestSource(join(REPO_ROOT, 'shared')),
  );
  buildHostIf(() => !existsSync(HOST_SCRIPT) || statSync(HOST_SCRIPT).mtimeMs < sources);
  return HOST_SCRIPT;
}

export interface InboundTestUser {
  readonly name: string;
  readonly password: string;
}

export interface StartSwitchyardOptions {
  /** Added with `switchyard user add NAME --password-stdin`, the way a person would. */
  readonly users?: readonly InboundTestUser[];
  /** Extra fields for the config file (merged over `{ version: 1 }`). */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Extra arguments after `serve --listen 127.0.0.1:0 --config FILE`. */
  readonly args?: readonly string[];
  /** How long to wait for the "listening" line. */
  readonly startTimeoutMs?: number;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SwitchyardProcess {
  readonly port: number;
  readonly pid: number;
  readonly configFile: string;
  /** Everything the host wrote to stderr (its log) so far. */
  stderr(): string;
  /** Everything it wrote to stdout so far. */
  stdout(): string;
  /** Resolves once the log matches `pattern`; rejects with the log when it does not in time. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM to the child's PID, then waits for it to exit (SIGKILL to that PID after 5 s). */
  stop(): Promise<ExitStatus>;
}

/** Hosts still running; if the test process exits without stopping one, it dies with us. */
const running = killedAtExit();

function runCli(args: readonly string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOST_SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`switchyard ${args.join(' ')} failed (${code ?? signal}): ${output}`));
    });
    child.stdin.end(input);
  });
}

function waitForExit(child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

export async function startSwitchyard(options: StartSwitchyardOptions = {}): Promise<SwitchyardProcess> {
  ensureHostBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-interop-'));
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, `${JSON.stringify({ version: 1, ...options.config }, null, 2)}\n`, {
    mode: 0o600,
  });
  try {
    for (const user of options.users ?? []) {
      await runCli(['user', 'add', user.name, '--config', configFile, '--password-stdin'], user.password);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const child = spawn(
    process.execPath,
    [HOST_SCRIPT, 'serve', '--listen', '127.0.0.1:0', '--config', configFile, ...(options.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid;
  if (pid === undefined) {
    await rm(dir, { recursive: true, force: true });
    throw new Error('could not start the host process');
  }
  let stdoutText = '';
  let stderrText = '';
  const logWaiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdoutText += chunk.toString('utf8');
    for (const w of logWaiters) w();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString('utf8');
    for (const w of logWaiters) w();
  });
  running.add(pid);
  const exited = waitForExit(child);
  void exited.then(() => running.delete(pid));

  let stopping: Promise<ExitStatus> | undefined;
  const stop = (): Promise<ExitStatus> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        const killer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
        }, 5_000);
        const status = await exited;
        clearTimeout(killer);
        await rm(dir, { recursive: true, force: true });
        return status;
      }
      await rm(dir, { recursive: true, force: true });
      return exited;
    })();
    return stopping;
  };

  const waitFor = (test: () => RegExpMatchArray | null, what: string, timeoutMs: number) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = (): boolean => {
        const m = test();
        if (m) {
          finish();
          resolve(m);
          return true;
        }
        return false;
      };
      const onExit = (): void => {
        if (check()) return;
        finish();
        reject(new Error(`host exited while waiting for ${what}; stderr:\n${stderrText}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${what}; stdout:\n${stdoutText}\nstderr:\n${stderrText}`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const finish = (): void => {
        clearTimeout(timer);
        logWaiters.delete(waiter);
        child.off('exit', onExit);
      };
      if (check()) return;
      logWaiters.add(waiter);
      child.once('exit', onExit);
    });

  let port: number;
  try {
    const m = await waitFor(
      () => stdoutText.match(/^switchyard listening on 127\.0\.0\.1:(\d+)$/m),
      'the "switchyard listening on" line',
      options.startTimeoutMs ?? 10_000,
    );
    port = Number(m[1]);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    port,
    pid,
    configFile,
    stderr: () => stderrText,
    stdout: () => stdoutText,
    waitForLog: async (pattern, timeoutMs = 3_000) =>
      (await waitFor(() => stderrText.match(pattern), `a log line matching ${pattern}`, timeoutMs))[0],
    stop,
  };
}

/** Bytes 0..255 twice and a text line: a body that shows any byte a relay would mangle. */
export const SMALL_BODY: Buffer = Buffer.concat([
  Buffer.from('switchyard interop: small body\r\n', 'utf8'),
  Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256)),
  Buffer.from('\r\nend\n', 'utf8'),
]);

export const LARGE_BODY_SIZE = 40 * 1024 * 1024;
const LARGE_CHUNK = 64 * 1024;
const LARGE_KEY = createHash('sha256').update('switchyard interop large body key').digest().subarray(0, 16);
const LARGE_IV = Buffer.alloc(16, 0);

/**
 * The large body as a stream: the AES-128-CTR keystream under a fixed key, i.e. deterministic
 * pseudo-random bytes, generated chunk by chunk so the 40 MB are never held in memory.
 */
export function largeBodyStream(size = LARGE_BODY_SIZE): Readable {
  const cipher = createCipheriv('aes-128-ctr', LARGE_KEY, LARGE_IV);
  const zeros = Buffer.alloc(LARGE_CHUNK);
  let left = size;
  return new Readable({
    highWaterMark: LARGE_CHUNK,
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, LARGE_CHUNK);
      left -= n;
      this.push(cipher.update(n === LARGE_CHUNK ? zeros : zeros.subarray(0, n)));
    },
  });
}

let largeSha256: Promise<string> | undefined;

/** sha256 (hex) of the large body, computed once per process. */
export function largeBodySha256(): Promise<string> {
  largeSha256 ??= (async () => {
    const hash = createHash('sha256');
    for await (const chunk of largeBodyStream()) hash.update(chunk as Buffer);
    return hash.digest('hex');
  })();
  return largeSha256;
}

export interface TestHttpServer {
  readonly port: number;
  /** GET /small: SMALL_BODY. */
  readonly smallPath: string;
  /** GET /large: LARGE_BODY_SIZE deterministic bytes, streamed. */
  readonly largePath: string;
  readonly largeSize: number;
  readonly largeSha256: string;
  /** Paths requested so far, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** An HTTP/1.1 server on `host` (127.0.0.1 unless told), a free port, with GET /small and GET /large. */
export async function startHttpServer(host = '127.0.0.1'): Promise<TestHttpServer> {
  const sha = await largeBodySha256();
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '');
    if (req.method === 'GET' && req.url === '/small') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SMALL_BODY.length });
      res.end(SMALL_BODY);
      return;
    }
    if (req.method === 'GET' && req.url === '/large') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE_BODY_SIZE });
      const body = largeBodyStream();
      body.pipe(res);
      res.once('close', () => body.destroy());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    smallPath: '/small',
    largePath: '/large',
    largeSize: LARGE_BODY_SIZE,
    largeSha256: sha,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
