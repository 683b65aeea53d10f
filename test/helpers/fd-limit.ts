/**
 * Child processes with a chosen file-descriptor limit, and what /proc says about them.
 *
 * Node raises its own soft RLIMIT_NOFILE to the hard limit at startup and can go no further,
 * so the limit a node process runs with is its hard limit. A child that needs a different one
 * is started through `bash -c 'ulimit -n N && exec node ...'` (which sets soft and hard): after
 * the exec the bash PID is the node PID, so the PID we hold is the one to read /proc from and
 * to signal. Lowering always works; raising the hard limit needs CAP_SYS_RESOURCE, so without
 * it N can be at most `hardFdLimit()`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST_SCRIPT, ensureHostBuilt } from './switchyard-process.ts';
import { killedAtExit } from './processes.ts';

const PEER_SCRIPT = fileURLToPath(new URL('./tcp-peer.ts', import.meta.url));

/** The hard RLIMIT_NOFILE a child of this process gets: the most `ulimit -n` can ask for. */
export function hardFdLimit(): number {
  const text = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return text === 'unlimited' ? 1_048_576 : Number(text);
}

/** This process's soft RLIMIT_NOFILE, from /proc/self/limits. */
export function ownFdLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? 1_048_576 : Number(soft);
}

/** Spawns `node ...args` with its fd limit (soft and hard) set to `limit`. */
export function spawnNodeWithFdLimit(limit: number, args: readonly string[]): ChildProcess {
  return spawn(
    'bash',
    ['-c', `ulimit -n ${Math.floor(limit)} && exec "$0" "$@"`, process.execPath, ...args],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
}

/** Resident set size of `pid` in KiB (VmRSS in /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Descriptors `pid` holds open right now. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What each of `pid`'s descriptors is (`socket:[123]`, `pipe:[45]`, a path), by number. */
export function fdTargets(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // Closed between the listing and the read.
    }
  }
  return out;
}

/** How `pid`'s descriptors differ from `rest` (opened since, closed since), for messages. */
export function extraFds(pid: number, rest: ReadonlyMap<string, string>): string {
  const now = fdTargets(pid);
  const opened = [...now].filter(([fd, target]) => rest.get(fd) !== target);
  const closed = [...rest].filter(([fd, target]) => now.get(fd) !== target);
  const list = (fds: [string, string][]): string =>
    fds.map(([fd, t]) => `${fd} -> ${t}`).join(', ') || 'none';
  return `opened since: ${list(opened)}; closed since: ${list(closed)}`;
}

/**
 * Descriptor numbers `pid` could still open: its limit minus the ones in use below it (a
 * descriptor inherited above the limit takes no slot).
 */
export function freeFdSlots(pid: number): number {
  const limit = fdLimitOf(pid);
  const used = readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) < limit).length;
  return limit - used;
}

/** The soft "Max open files" of a running process. */
export function fdLimitOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s{2,}/)[1]);
}

/** CPU time (user + system) `pid` has used so far, in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

// ---- processes started here -------------------------------------------------------------------

/** PIDs still running; if the test process exits without stopping one, it dies with us. */
const running = killedAtExit();

interface Tracked {
  readonly pid: number;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves once `test` returns a value (checked on every output chunk), or rejects in time. */
  waitFor<T>(test: () => T | undefined, what: string, timeoutMs: number): Promise<T>;
  readonly alive: () => boolean;
  /** SIGTERM to the PID, SIGKILL to it after `killAfterMs`; resolves with the exit status. */
  stop(killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function track(child: ChildProcess, name: string): Tracked {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name}`);
  running.add(pid);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(pid);
      resolve({ code, signal });
      wake();
    });
  });
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  return {
    pid,
    stdout: () => out,
    stderr: () => err,
    alive,
    waitFor: <T>(test: () => T | undefined, what: string, timeoutMs: number) =>
      new Promise<T>((resolve, reject) => {
        const check = (): void => {
          const value = test();
          if (value !== undefined) {
            finish();
            resolve(value);
          } else if (!alive()) {
            finish();
            reject(new Error(`${name} exited while waiting for ${what}; stderr:\n${err.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out waiting for ${what} from ${name}; stderr:\n${err.slice(-4000)}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    stop: (killAfterMs = 5_000) => {
      stopping ??= (async () => {
        if (alive()) {
          process.kill(pid, 'SIGTERM');
          const killer = setTimeout(() => {
            if (alive()) process.kill(pid, 'SIGKILL');
          }, killAfterMs);
          const status = await exited;
          clearTimeout(killer);
          return status;
        }
        return exited;
      })();
      return stopping;
    },
  };
}

export interface LimitedHost extends Tracked {
  readonly port: number;
  /** Lines of the host's log (stderr) that match `pattern` (not global), counted so far. */
  count(pattern: RegExp): number;
}

export interface LimitedHostOptions {
  /** Soft RLIMIT_NOFILE for the host. */
  readonly fdLimit: number;
  /** Fields for the config file, merged over `{ version: 1 }`. */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Extra arguments after `serve --listen 127.0.0.1:0 --config FILE`. */
  readonly args?: readonly string[];
  /** Options for node itself, before the script (e.g. --max-old-space-size=128). */
  readonly nodeOptions?: readonly string[];
}

/** The built host (dist/host/switchyard.js) as a child process with the given fd limit. */
export async function startLimitedHost(options: LimitedHostOptions): Promise<LimitedHost> {
  ensureHostBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-limited-'));
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, `${JSON.stringify({ version: 1, ...options.config })}\n`, { mode: 0o600 });
  const child = spawnNodeWithFdLimit(options.fdLimit, [
    ...(options.nodeOptions ?? []),
    HOST_SCRIPT,
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--config',
    configFile,
    ...(options.args ?? []),
  ]);
  const tracked = track(child, 'the host');
  const stop = tracked.stop;
  const cleanup = async (killAfterMs?: number) => {
    const status = await stop(killAfterMs);
    await rm(dir, { recursive: true, force: true });
    return status;
  };
  let port: number;
  try {
    port = await tracked.waitFor(
      () => {
        const m = /^switchyard listening on 127\.0\.0\.1:(\d+)$/m.exec(tracked.stdout());
        return m ? Number(m[1]) : undefined;
      },
      'the "listening" line',
      15_000,
    );
  } catch (error) {
    await cleanup();
    throw error;
  }
  // Counted line by line as the log grows, so that polling a count stays cheap on a long log.
  const counts = new Map<string, { scanned: number; n: number }>();
  return {
    ...tracked,
    port,
    stop: cleanup,
    count: (pattern) => {
      const key = `${pattern.source}/${pattern.flags}`;
      const state = counts.get(key) ?? { scanned: 0, n: 0 };
      counts.set(key, state);
      const log = tracked.stderr();
      const end = log.lastIndexOf('\n') + 1;
      if (end > state.scanned) {
        for (const line of log.slice(state.scanned, end).split('\n')) if (pattern.test(line)) state.n++;
        state.scanned = end;
      }
      return state.n;
    },
  };
}

export interface Peer extends Tracked {
  readonly port: number;
  /** Asks the peer how many connections it holds open, answered on its stdout. */
  openConnections(): Promise<number>;
}

/**
 * The TCP peer of test/helpers/tcp-peer.ts in its own process (an echo server), so that its
 * descriptors count against its own limit rather than the test runner's.
 */
export async function startPeer(fdLimit: number): Promise<Peer> {
  const child = spawnNodeWithFdLimit(fdLimit, ['--import', 'tsx', PEER_SCRIPT]);
  const tracked = track(child, 'the echo peer');
  let port: number;
  try {
    port = await tracked.waitFor(
      () => {
        const m = /^port (\d+)$/m.exec(tracked.stdout());
        return m ? Number(m[1]) : undefined;
      },
      'the peer to listen',
      15_000,
    );
  } catch (error) {
    await tracked.stop();
    throw error;
  }
  let asked = 0;
  return {
    ...tracked,
    port,
    openConnections: async () => {
      const nth = ++asked;
      child.stdin?.write('open?\n');
      return tracked.waitFor(
        () => {
          const answers = [...tracked.stdout().matchAll(/^open (\d+)$/gm)];
          return answers.length >= nth ? Number(answers[nth - 1]![1]) : undefined;
        },
        'the open count',
        5_000,
      );
    },
  };
}
