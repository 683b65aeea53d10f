/**
 * Shared pieces for the tests that drive the built `switchyard` command as real processes:
 * config files written through the schema's input type, one-shot CLI runs, `serve` processes
 * that can be signalled and waited for, log-line parsing (text and JSON), raw SOCKS4/5 clients
 * that read the exact reply code, and curl (optionally as another OS user). Every process
 * started here is stopped by its own PID.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../shared/config/schema.ts';
import { type Address, addressOf } from '../../native-host/src/protocol/address.ts';
import { serializeSocks4Request } from '../../native-host/src/protocol/socks4.ts';
import { serializeRequest } from '../../native-host/src/protocol/socks5.ts';
import { ByteReader } from './net.ts';
import { HOST_SCRIPT, ensureHostBuilt } from './switchyard-process.ts';
import { killedAtExit } from './processes.ts';

export const CURL = '/usr/bin/curl';
export const PYTHON = '/usr/bin/python3';
export const SETPRIV = '/usr/bin/setpriv';

// ---- files ----------------------------------------------------------------------------------

export interface TempDir {
  readonly dir: string;
  /** A path inside the directory. */
  path(name: string): string;
  remove(): Promise<void>;
}

export async function tempDir(prefix = 'switchyard-test-'): Promise<TempDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return {
    dir,
    path: (name) => join(dir, name),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Writes a config file (type-checked against the schema's input), mode 0600 like the host does. */
export async function writeConfig(file: string, config: Omit<ConfigInput, 'version'>): Promise<void> {
  await writeFile(file, `${JSON.stringify({ version: 1, ...config }, null, 2)}\n`, { mode: 0o600 });
}

/** The environment of a child: ours without any *_proxy variable, plus `extra`. */
export function childEnv(extra: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/_proxy$/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

// ---- upstream passwords ---------------------------------------------------------------------

/**
 * Keeps upstream passwords in the file next to the config instead of the OS keyring (whatever
 * this machine has). `credential set` and the `serve` or `check` that reads the password must
 * both have it, or they may not use the same store.
 */
export const FILE_CREDENTIAL_STORE: Readonly<Record<string, string>> = {
  SWITCHYARD_CREDENTIAL_STORE: 'file',
};

/**
 * Saves an upstream's password the way a person does, `switchyard credential set ID --config
 * FILE --password-stdin`, into the file store (FILE_CREDENTIAL_STORE); throws unless it worked.
 */
export async function saveUpstreamPassword(
  configFile: string,
  upstreamId: string,
  password: string,
): Promise<void> {
  const r = await runSwitchyard(
    ['credential', 'set', upstreamId, '--config', configFile, '--password-stdin'],
    {
      input: password,
      env: FILE_CREDENTIAL_STORE,
    },
  );
  if (r.code !== 0) {
    throw new Error(`switchyard credential set ${upstreamId} failed (${r.code ?? r.signal}): ${r.stderr}`);
  }
}

// ---- processes ------------------------------------------------------------------------------

/** Processes still running; if the test process exits without stopping one, it dies with us. */
const running = killedAtExit();

function track(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  running.add(pid);
  child.once('exit', () => running.delete(pid));
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to standard input, which is then closed. */
  readonly input?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** false: the child's environment is `env` alone, nothing of ours (default true: ours plus `env`). */
  readonly inheritEnv?: boolean;
  readonly cwd?: string;
  /**
   * Runs in a process group of its own, so a hung run is killed whole (its helpers too), by the
   * group's id.
   */
  readonly processGroup?: boolean;
  /** SIGKILL (to this PID, or its group) after this long; the result then has signal SIGKILL. */
  readonly timeoutMs?: number;
}

/** Runs `switchyard ARGS...` (the built host) to completion. */
export function runSwitchyard(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  ensureHostBuilt();
  return runProgram(process.execPath, [HOST_SCRIPT, ...args], options);
}

/** Runs any program to completion, without blocking the event loop (servers live in this process). */
export function runProgram(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = options.inheritEnv === false ? { ...options.env } : childEnv(options.env);
    const child = spawn(file, args, {
      env,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      detached: options.processGroup === true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => {
      if (child.pid === undefined) return;
      if (options.processGroup) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the whole group is gone already
        }
      } else if (child.exitCode === null) {
        process.kill(child.pid, 'SIGKILL');
      }
    }, options.timeoutMs ?? 20_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

export interface ServeProcess {
  readonly pid: number;
  /** The address from the `switchyard listening on HOST:PORT` line. */
  readonly host: string;
  readonly port: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match once the log (stderr) matches; rejects with the log otherwise. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` to this process's PID. */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the PID unless it has exited, then waits (SIGKILL after 8 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServeOptions {
  /** Everything after `serve`, e.g. ['--listen', '127.0.0.1:0', '--config', file]. */
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
  /** Another copy of the built host to run (default: dist/host/switchyard.js). */
  readonly script?: string;
  /** Run the script as an executable (its `#!` line picks node and its options), not via node. */
  readonly asExecutable?: boolean;
}

/** Starts `switchyard serve ARGS...` and waits for its `listening` line on stdout. */
export async function startServe(options: ServeOptions): Promise<ServeProcess> {
  ensureHostBuilt();
  const script = options.script ?? HOST_SCRIPT;
  const [command, args] = options.asExecutable
    ? [script, ['serve', ...options.args]]
    : [process.execPath, [script, 'serve', ...options.args]];
  const child = spawn(command, args, { env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start switchyard serve');
  track(child);
  let stdoutText = '';
  let stderrText = '';
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdoutText += chunk.toString('utf8');
    wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString('utf8');
    wake();
  });
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  let gone = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close', not 'exit': by then the last output has arrived.
    child.once('close', (code, signal) => {
      gone = true;
      resolve({ code, signal });
      wake();
    });
  });

  const waitFor = (test: () => RegExpMatchArray | null, what: string, timeoutMs: number) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const check = (): void => {
        const m = test();
        if (m) {
          finish();
          resolve(m);
        } else if (gone) {
          finish();
          reject(
            new Error(
              `switchyard exited while waiting for ${what}; stdout:\n${stdoutText}\nstderr:\n${stderrText}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${what}; stdout:\n${stdoutText}\nstderr:\n${stderrText}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const handle: Omit<ServeProcess, 'host' | 'port'> = {
    pid,
    stdout: () => stdoutText,
    stderr: () => stderrText,
    waitForLog: (pattern, timeoutMs = 5_000) =>
      waitFor(() => stderrText.match(pattern), `a log line matching ${pattern}`, timeoutMs),
    signal: (signal) => {
      if (alive()) process.kill(pid, signal);
    },
    exited: () => exit,
    stop: () => {
      stopping ??= (async () => {
        if (alive()) process.kill(pid, 'SIGTERM');
        const killer = setTimeout(() => {
          if (alive()) process.kill(pid, 'SIGKILL');
        }, 8_000);
        const status = await exit;
        clearTimeout(killer);
        return status;
      })();
      return stopping;
    },
  };
  let m: RegExpMatchArray;
  try {
    m = await waitFor(
      () => stdoutText.match(/^switchyard listening on (\S+):(\d+)$/m),
      'the "switchyard listening on" line',
      options.startTimeoutMs ?? 10_000,
    );
  } catch (error) {
    await handle.stop();
    throw error;
  }
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  return { ...handle, host, port: Number(m[2]) };
}

// ---- logs -----------------------------------------------------------------------------------

export interface LogLine {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  /** Every field as its text form (JSON numbers and booleans as String() of them). */
  readonly fields: Readonly<Record<string, string>>;
}

const FIELD = / ([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)/y;

/** Parses the text log format: `TIME LEVEL MESSAGE key=value key="quoted value"...`. */
export function parseTextLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    const head = /^(\S+) (debug|info|warn|error) +(.*)$/.exec(line);
    if (!head) continue;
    const rest = head[3]!;
    // The message ends where the first ` key=` whose fields run to the end of the line starts.
    let start = rest.length;
    let fields: Record<string, string> = {};
    for (let at = rest.indexOf('='); at !== -1; at = rest.indexOf('=', at + 1)) {
      const space = rest.lastIndexOf(' ', at);
      if (space === -1) continue;
      const parsed = parseFields(rest, space);
      if (parsed) {
        start = space;
        fields = parsed;
        break;
      }
    }
    out.push({ time: head[1]!, level: head[2]!, msg: rest.slice(0, start), fields });
  }
  return out;
}

function parseFields(text: string, from: number): Record<string, string> | undefined {
  const fields: Record<string, string> = {};
  FIELD.lastIndex = from;
  let at = from;
  while (at < text.length) {
    FIELD.lastIndex = at;
    const m = FIELD.exec(text);
    if (!m) return undefined;
    const raw = m[2]!;
    fields[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    at = FIELD.lastIndex;
  }
  return fields;
}

/** Parses the JSON log format into the same shape; throws on a line that is not one JSON object. */
export function parseJsonLog(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const { time, level, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(rest)) fields[k] = String(v);
      return { time: String(time), level: String(level), msg: String(msg), fields };
    });
}

/** The fields named in `keys` (missing ones as undefined), for exact comparisons. */
export function pick(
  fields: Readonly<Record<string, string>>,
  keys: readonly string[],
): Record<string, string | undefined> {
  return Object.fromEntries(keys.map((k) => [k, fields[k]]));
}

/** Log lines with this message whose `dest` is `dest`. */
export function linesFor(text: string, msg: string, dest?: string): LogLine[] {
  return parseTextLog(text).filter((l) => l.msg === msg && (dest === undefined || l.fields.dest === dest));
}

// ---- raw SOCKS clients ----------------------------------------------------------------------

export interface Opened {
  readonly socket: Socket;
  readonly reader: ByteReader;
}

function open(port: number, localAddress?: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve({ socket, reader: new ByteReader(socket) });
    });
    socket.once('error', reject);
  });
}

export interface Socks5Options {
  readonly user?: { readonly name: string; readonly password: string };
  /** Connect from this local address (a 127.0.0.0/8 address other than 127.0.0.1, say). */
  readonly localAddress?: string;
}

export interface Socks5Result extends Opened {
  /** The REP byte of the reply. */
  readonly rep: number;
}

/** A SOCKS5 CONNECT; `host` is sent as a name unless it is an IP literal (IPv6 with or without brackets). */
export async function socks5Connect(
  proxyPort: number,
  host: string,
  port: number,
  options: Socks5Options = {},
): Promise<Socks5Result> {
  const opened = await open(proxyPort, options.localAddress);
  const { socket, reader } = opened;
  socket.write(Buffer.from(options.user ? [5, 1, 2] : [5, 1, 0]));
  const choice = await reader.read(2);
  if (choice[1] !== (options.user ? 2 : 0)) throw new Error(`method ${choice[1]} chosen`);
  if (options.user) {
    const u = Buffer.from(options.user.name);
    const p = Buffer.from(options.user.password);
    socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    const status = await reader.read(2);
    if (status[1] !== 0) throw new Error('authentication failed');
  }
  socket.write(serializeRequest('connect', addressOf(host, port)));
  const head = await reader.read(4);
  const atyp = head[3];
  const rest = atyp === 1 ? 6 : atyp === 4 ? 18 : (await reader.read(1))[0]! + 2;
  await reader.read(rest);
  return { ...opened, rep: head[1]! };
}

export interface Socks4Result extends Opened {
  /** The CD byte of the reply (90 granted, 91 rejected). */
  readonly cd: number;
}

/** A SOCKS4 CONNECT for an IPv4 literal, SOCKS4a for a name. */
export async function socks4Connect(
  proxyPort: number,
  host: string,
  port: number,
  options: { readonly localAddress?: string } = {},
): Promise<Socks4Result> {
  const opened = await open(proxyPort, options.localAddress);
  const address: Address = addressOf(host, port);
  opened.socket.write(serializeSocks4Request('connect', address, 'tester'));
  const reply = await opened.reader.read(8);
  return { ...opened, cd: reply[1]! };
}

// ---- curl -----------------------------------------------------------------------------------

export interface CurlResult {
  readonly code: number | null;
  /** Stdout, or its first `keepBytes` bytes and a little more. */
  readonly body: Buffer;
  /** How many bytes stdout had in all. */
  readonly bytes: number;
  /** Of all of stdout. */
  readonly sha256: string;
  readonly stderr: string;
}

export interface CurlOptions {
  /** Run as this OS user (through setpriv); this process must be root. */
  readonly as?: { readonly uid: number; readonly gid: number };
  readonly maxTimeS?: number;
  /** Keep only this much of stdout in `body` (it is hashed and counted as it streams). */
  readonly keepBytes?: number;
}

/**
 * `curl -q -sS --noproxy '' --max-time N ARGS...` without blocking the event loop (servers live
 * in this process), hashing stdout as it streams. `-q` skips any .curlrc; `--noproxy ''` makes
 * sure localhost is proxied, and no *_proxy variable reaches curl: only our flags pick the proxy.
 */
export function curl(args: readonly string[], options: CurlOptions = {}): Promise<CurlResult> {
  const curlArgs = ['-q', '-sS', '--noproxy', '', '--max-time', String(options.maxTimeS ?? 10), ...args];
  const [file, argv] = options.as
    ? [
        SETPRIV,
        [`--reuid=${options.as.uid}`, `--regid=${options.as.gid}`, '--clear-groups', CURL, ...curlArgs],
      ]
    : [CURL, curlArgs];
  const keepBytes = options.keepBytes ?? Number.POSITIVE_INFINITY;
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (keptBytes < keepBytes) {
        kept.push(chunk);
        keptBytes += chunk.length;
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({ code, body: Buffer.concat(kept), bytes, sha256: hash.digest('hex'), stderr });
    });
  });
}

// ---- OS users -------------------------------------------------------------------------------

export const OTHER_USER = 'switchyard-other';

/**
 * The uid and gid of OTHER_USER, created (system user, no home, no login shell) when missing.
 * Other test files create it too, in parallel: a lost race is retried.
 */
export async function ensureOtherUser(): Promise<{ uid: number; gid: number }> {
  const quiet = { stdio: ['ignore', 'pipe', 'ignore'] as ('ignore' | 'pipe')[] };
  const ids = (): { uid: number; gid: number } => ({
    uid: Number(execFileSync('id', ['-u', OTHER_USER], quiet).toString().trim()),
    gid: Number(execFileSync('id', ['-g', OTHER_USER], quiet).toString().trim()),
  });
  let lastError: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return ids();
    } catch (error) {
      lastError = error;
    }
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OTHER_USER], {
        stdio: 'ignore',
      });
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 100)));
    }
  }
  throw new Error(`cannot set up the system user ${OTHER_USER}`, { cause: lastError });
}
