/**
 * The servers under test, each on 127.0.0.1 and stopped by the PID (danted: the process group)
 * it was started with: no proxy at all, the built Switchyard host, a 2-hop chain of two
 * Switchyard hosts, and Debian's microsocks and danted.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from '../test/helpers/reference-servers.ts';
import { groupPids } from './proc.ts';

export type ContenderId =
  | 'direct'
  | 'switchyard'
  | 'switchyard-any'
  | 'baseline'
  | 'chain'
  | 'microsocks'
  | 'dante';

export interface Contender {
  readonly id: ContenderId;
  readonly label: string;
  /** 0: the client goes straight to the target. */
  readonly port: number;
  /** The processes whose memory and CPU time are this contender's. */
  pids(): number[];
  stop(): Promise<void>;
}

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const HOST_SCRIPT = join(REPO_ROOT, 'dist', 'host', 'switchyard.js');
const MICROSOCKS = '/usr/bin/microsocks';
const DANTED = '/usr/sbin/danted';

/** Targets for a last-resort SIGKILL should the bench die without stopping what it started. */
const live = new Set<number>();
process.once('exit', () => {
  for (const target of live) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** SIGTERM to `target` (a PID, or a negative process group), SIGKILL if it is still there in 5 s. */
function stopChild(child: ChildProcess, target: number): Promise<void> {
  live.delete(target);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(target, 'SIGTERM');
    } catch {
      // Exited meanwhile; 'exit' follows.
    }
  });
}

export function direct(): Contender {
  return { id: 'direct', label: 'direct (no proxy)', port: 0, pids: () => [], stop: async () => undefined };
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * The bench measures the bundle, so a bundle older than the sources would measure yesterday's
 * relay: build it when it is missing or stale.
 */
export async function ensureFreshBuild(log: (line: string) => void): Promise<void> {
  const built = existsSync(HOST_SCRIPT) ? statSync(HOST_SCRIPT).mtimeMs : 0;
  const sources = Math.max(
    await newestMtime(join(REPO_ROOT, 'native-host', 'src')),
    await newestMtime(join(REPO_ROOT, 'shared')),
  );
  if (built >= sources) return;
  log(built === 0 ? 'building the host (dist/host/switchyard.js)' : 'rebuilding the host: sources changed');
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-host.mjs')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 120_000,
  });
}

interface Host {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * A built host as a user starts it: `serve --listen 127.0.0.1:0 --config FILE --quiet`, with
 * a config of its own in a temporary directory (one host per config file).
 */
async function startHost(
  script: string,
  config: Readonly<Record<string, unknown>>,
  nodeArgs: readonly string[] = [],
): Promise<Host> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-host-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, `${JSON.stringify({ version: 1, ...config })}\n`, { mode: 0o600 });
  const args = ['serve', '--listen', '127.0.0.1:0', '--config', configFile, '--quiet'];
  // Without Node options of its own, the bundle is run as the executable it is, so that its `#!`
  // line chooses node's options exactly as for a user; a baseline with options goes through node.
  const child =
    nodeArgs.length === 0
      ? spawn(script, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${script}`);
  live.add(pid);
  // Kept short and drained for the whole run, so a chatty host can never block on a full pipe.
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stderr.on('data', keep);
  const stop = async (): Promise<void> => {
    await stopChild(child, pid);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => reject(new Error(`no "listening" line in 15 s: ${output}`)), 15_000);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`the host exited: ${output}`));
      };
      child.once('exit', onExit);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout = (stdout + chunk.toString('utf8')).slice(-4000);
        const m = stdout.match(/^switchyard listening on 127\.0\.0\.1:(\d+)$/m);
        if (m) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(Number(m[1]));
        }
      });
    });
    return { port, pid, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function hostContender(
  id: ContenderId,
  label: string,
  config: Readonly<Record<string, unknown>>,
  script = HOST_SCRIPT,
  nodeArgs: readonly string[] = [],
): Promise<Contender & { readonly pid: number }> {
  const host = await startHost(script, config, nodeArgs);
  return { id, label, port: host.port, pid: host.pid, pids: () => [host.pid], stop: host.stop };
}

/** The built host with its default config, as a user runs it. */
export function switchyard(): Promise<Contender> {
  return hostContender('switchyard', 'Switchyard', {});
}

/**
 * The same host without the owner check on loopback clients (localClients: "any"), which
 * reads /proc/net/tcp for connections: shows what that check costs.
 */
export function switchyardAny(): Promise<Contender> {
  return hostContender('switchyard-any', 'Switchyard, localClients "any"', { localClients: 'any' });
}

/**
 * Another build of the host (--baseline FILE) with localClients "any": before/after in one run, or
 * the same build under other Node options (--baseline-node-args) to try runtime settings. It
 * runs from a copy laid out like dist/host: next to a package.json that says "module" (else
 * Node first tries the bundle as CommonJS, which costs it 14 MiB of memory for good) and with
 * the repository's node_modules for its native dependencies.
 */
export async function baseline(script: string, nodeArgs: readonly string[] = []): Promise<Contender> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-baseline-'));
  const copy = join(dir, 'switchyard.js');
  copyFileSync(script, copy);
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  try {
    const label = `Switchyard baseline${nodeArgs.length > 0 ? ` (node ${nodeArgs.join(' ')})` : ''}, localClients "any"`;
    // Without the owner check: its /proc scan, not the build, would decide the connection rate.
    const c = await hostContender('baseline', label, { localClients: 'any' }, copy, nodeArgs);
    return {
      ...c,
      stop: async () => {
        await c.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Two hosts: the client's one routes everything through the second one. */
export async function chain(): Promise<Contender> {
  const second = await hostContender('chain', 'hop 2', {});
  try {
    const first = await hostContender('chain', 'hop 1', {
      upstreams: [{ id: 'hop2', type: 'socks5', host: '127.0.0.1', port: second.port }],
      routes: [{ id: 'chain', hops: ['hop2'] }],
      defaultTarget: { kind: 'route', routeId: 'chain' },
    });
    return {
      id: 'chain',
      label: 'Switchyard 2-hop chain',
      port: first.port,
      pids: () => [first.pid, second.pid],
      stop: async () => {
        await first.stop();
        await second.stop();
      },
    };
  } catch (error) {
    await second.stop();
    throw error;
  }
}

/** Installs Debian's packages when missing and we may (root with apt-get); says which are there. */
export function ensureInstalled(log: (line: string) => void): { microsocks: boolean; dante: boolean } {
  const missing = [
    ...(existsSync(MICROSOCKS) ? [] : ['microsocks']),
    ...(existsSync(DANTED) ? [] : ['dante-server']),
  ];
  if (missing.length > 0 && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    log(`installing ${missing.join(' ')}`);
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        timeout: 120_000,
      });
    } catch {
      log(`could not install ${missing.join(' ')}; those contenders are skipped`);
    }
  }
  return { microsocks: existsSync(MICROSOCKS), dante: existsSync(DANTED) };
}

export async function microsocks(): Promise<Contender> {
  const port = await freePort();
  // Its one log line per client goes nowhere: no contender pays for logging here.
  const child = spawn(MICROSOCKS, ['-i', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start microsocks');
  live.add(pid);
  const stop = (): Promise<void> => stopChild(child, pid);
  try {
    await waitForPort(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return { id: 'microsocks', label: 'microsocks', port, pids: () => [pid], stop };
}

/** danted in a process group of its own (it forks), CONNECT only, no per-connection log. */
export async function dante(): Promise<Contender> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-dante-'));
  const conf = join(dir, 'danted.conf');
  writeFileSync(
    conf,
    [
      `logoutput: ${join(dir, 'dante.log')}`,
      `internal: 127.0.0.1 port = ${port}`,
      'external: 127.0.0.1',
      'clientmethod: none',
      'socksmethod: none',
      'user.privileged: root',
      'user.unprivileged: nobody',
      'client pass { from: 127.0.0.0/8 to: 0/0 }',
      'socks pass {\n  from: 127.0.0.0/8 to: 127.0.0.0/8\n  command: connect\n}',
      '',
    ].join('\n'),
  );
  const child = spawn(DANTED, ['-f', conf, '-p', join(dir, 'danted.pid'), '-N', '1'], {
    stdio: 'ignore',
    detached: true,
  });
  const pgid = child.pid;
  if (pgid === undefined) throw new Error('could not start danted');
  live.add(-pgid);
  const stop = async (): Promise<void> => {
    // Its helpers live in the group we created for it: that group, and nothing else.
    await stopChild(child, -pgid);
    if (groupPids(pgid).length > 0) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return { id: 'dante', label: 'dante-server', port, pids: () => groupPids(pgid), stop };
}
