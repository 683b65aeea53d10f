/**
 * One service per control endpoint (per user, for the default config): the control socket is
 * the lock. A second `serve` finds the first by asking it for its status; a socket file nobody
 * answers on is what a crashed service left behind, and is replaced.
 */
import { mkdir, rmdir, stat, unlink } from 'node:fs/promises';
import type { StatusResult } from '../../../shared/messages/protocol.ts';
import { ServiceNotRunningError, connectControl } from '../control/client.ts';
import { type ControlPaths, ensurePrivateDir } from '../control/paths.ts';
import type { ControlServer } from '../control/server.ts';

export type Claim =
  | { readonly kind: 'claimed' }
  /** Another service answers on the endpoint; `status` is absent if it did not say in time. */
  | { readonly kind: 'running'; readonly status: StatusResult | undefined };

/** Holding the lock takes milliseconds; one this old was left by a process that died holding it. */
const STALE_LOCK_MS = 10_000;
const LOCK_WAIT_MS = 5_000;

export type Probe =
  | { readonly kind: 'running'; readonly status: StatusResult | undefined }
  | { readonly kind: 'absent' };

/** Asks whoever listens on `endpoint` for its status. */
export async function probeService(endpoint: string, timeoutMs = 2000): Promise<Probe> {
  let client: Awaited<ReturnType<typeof connectControl>>;
  try {
    client = await connectControl(endpoint, { timeoutMs });
  } catch (error) {
    if (error instanceof ServiceNotRunningError) return { kind: 'absent' };
    // Something accepts connections there but misbehaves: not ours to remove.
    return { kind: 'running', status: undefined };
  }
  try {
    return { kind: 'running', status: await client.request('status', {}, { timeoutMs }) };
  } catch {
    return { kind: 'running', status: undefined };
  } finally {
    client.close();
  }
}

/**
 * Between "nobody answers" and "listen again", another starting service could do the same and
 * one would unlink the other's fresh socket; a lock directory (mkdir is atomic) prevents that.
 */
async function withLock<T>(path: string, task: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(path, { mode: 0o700 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(path).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS) await rmdir(path).catch(() => undefined);
      else if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${path}`);
      else await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  try {
    return await task();
  } finally {
    await rmdir(path).catch(() => undefined);
  }
}

function inUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
}

/** Makes `server` the endpoint's listener, unless a live service already is. */
export async function claimEndpoint(server: ControlServer, paths: ControlPaths): Promise<Claim> {
  await ensurePrivateDir(paths.dir);
  const attempt = async (): Promise<Claim> => {
    try {
      await server.listen();
      return { kind: 'claimed' };
    } catch (error) {
      if (!inUse(error)) throw error;
    }
    const probe = await probeService(paths.endpoint);
    if (probe.kind === 'running') return probe;
    // A named pipe disappears with its process; only a socket file can be stale.
    if (paths.dir === undefined) throw new Error(`${paths.endpoint} is in use`);
    await unlink(paths.endpoint).catch(() => undefined);
    await server.listen();
    return { kind: 'claimed' };
  };
  if (paths.dir === undefined) return attempt();
  return withLock(`${paths.endpoint}.lock`, attempt);
}

/** What a second `serve` says, naming the one that runs. */
export function alreadyRunningMessage(status: StatusResult | undefined, stopCommand: string): string {
  const which = status
    ? `pid ${status.pid}, listening on ${status.listening}`
    : 'it answers on its control socket but did not report its pid and address';
  return `switchyard is already running (${which}); stop it with \`${stopCommand}\``;
}
