/**
 * The C load generator (bench/loadgen.c): compiled once per run into a temporary directory,
 * then started as the target server and as the client of every measurement. Each client run
 * prints one JSON line; each is bounded by its own arguments, by alarm() inside, and by a
 * kill of its PID from here if it still overstays.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./loadgen.c', import.meta.url));

export interface Loadgen {
  readonly binary: string;
  readonly compiler: string;
  dispose(): void;
}

export function compileLoadgen(): Loadgen {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const binary = join(dir, 'loadgen');
  execFileSync('cc', ['-O2', '-Wall', '-o', binary, SOURCE], { stdio: ['ignore', 'ignore', 'inherit'] });
  const compiler = execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? 'cc';
  return { binary, compiler, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

function killPid(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function firstLine(child: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      cleanup();
      killPid(child);
      reject(new Error(`${what}: no output within ${timeoutMs} ms ${err}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      cleanup();
      resolve(out.slice(0, nl));
    };
    const onErr = (chunk: Buffer): void => {
      err += chunk.toString('utf8');
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what} exited (${code ?? signal}) without output ${err}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

export interface TargetServer {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** The target every tunnel leads to; it exits on its own when our stdin pipe closes. */
export async function startTarget(lg: Loadgen, maxSeconds: number): Promise<TargetServer> {
  const child = spawn(lg.binary, ['serve', String(maxSeconds)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const line = await firstLine(child, 5000, 'loadgen serve');
  const port = Number(line.match(/^port (\d+)$/)?.[1]);
  if (!port || child.pid === undefined) {
    killPid(child);
    throw new Error(`loadgen serve said: ${line}`);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    port,
    pid: child.pid,
    stop: async () => {
      child.stdin?.end();
      const timer = setTimeout(() => killPid(child), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One client run: returns its JSON report; rejects when it fails or overstays. */
export async function runClient<T>(
  lg: Loadgen,
  args: readonly (string | number)[],
  timeoutMs: number,
): Promise<T> {
  const child = spawn(lg.binary, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let line: string;
  try {
    line = await firstLine(child, timeoutMs, `loadgen ${args[0]}`);
  } finally {
    const timer = setTimeout(() => killPid(child), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
  const report = JSON.parse(line) as T & { error?: string };
  if (report.error !== undefined) throw new Error(`loadgen ${args.join(' ')}: ${report.error}`);
  return report;
}

export interface BulkReport {
  readonly bytesPerSec: number;
  readonly totalBytes: number;
  readonly errors: number;
}

export interface RateReport {
  readonly perSec: number;
  readonly errors: number;
}

export interface PingReport {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly count: number;
}

export interface HoldReport {
  readonly held: number;
  readonly ms: number;
  readonly error?: string;
}

export interface HeldTunnels {
  readonly report: HoldReport;
  release(): Promise<void>;
}

/** Opens `count` tunnels and keeps them open until release() (or its own deadline). */
export async function holdTunnels(
  lg: Loadgen,
  target: number,
  proxy: number,
  count: number,
  maxHoldMs: number,
  concurrency = 32,
): Promise<HeldTunnels> {
  const child = spawn(lg.binary, ['hold', target, proxy, count, concurrency, maxHoldMs].map(String), {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let line: string;
  try {
    line = await firstLine(child, 60_000, 'loadgen hold');
  } catch (error) {
    killPid(child);
    throw error;
  }
  return {
    report: JSON.parse(line) as HoldReport,
    release: async () => {
      child.stdin?.end('\n');
      const timer = setTimeout(() => killPid(child), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
