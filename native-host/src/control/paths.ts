/**
 * Where the service's control endpoint lives. The endpoint carries config and credential
 * writes, so it must be reachable by its owner only: on Unix a socket inside a directory of
 * mode 0700 that we own (another user cannot even reach the socket inode); on Windows a named
 * pipe carrying the user's name.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfigPath } from '../config/paths.ts';

export class ControlPathError extends Error {
  override readonly name = 'ControlPathError';
}

export interface ControlPaths {
  /** The private per-user directory (absent on Windows). */
  readonly dir: string | undefined;
  /** The socket (or pipe) to listen on and connect to. */
  readonly endpoint: string;
  /** Where a service started by the bridge writes its output. */
  readonly serviceLog: string;
}

/** $XDG_RUNTIME_DIR/switchyard, else /tmp/switchyard-<uid> (tmpfs and per-user either way). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg?.startsWith('/')) return join(xdg, 'switchyard');
  return join('/tmp', `switchyard-${process.getuid?.() ?? userInfo().username}`);
}

/**
 * The per-user service owns the default config and answers on `control.sock`; a `serve` with
 * another config file is a separate service with an endpoint of its own, so running one for a
 * test or a second profile neither blocks nor hijacks the per-user one.
 */
function endpointName(configPath: string, env: NodeJS.ProcessEnv): string {
  const own = resolve(configPath);
  if (own === resolve(defaultConfigPath(env))) return 'control';
  return `control-${createHash('sha256').update(own).digest('hex').slice(0, 12)}`;
}

export function controlPaths(
  configPath: string = defaultConfigPath(),
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): ControlPaths {
  const name = endpointName(configPath, env);
  if (platform === 'win32') {
    const user = userInfo().username.replace(/[^A-Za-z0-9_.-]/g, '_');
    const logDir = join(env.LOCALAPPDATA ?? env.TEMP ?? '.', 'Switchyard');
    return {
      dir: undefined,
      endpoint: `\\\\.\\pipe\\switchyard-${user}-${name}`,
      serviceLog: join(logDir, 'service.log'),
    };
  }
  const dir = runtimeDir(env);
  return { dir, endpoint: join(dir, `${name}.sock`), serviceLog: join(dir, 'service.log') };
}

/**
 * Creates the directory (0700) if needed and refuses one that is not ours alone: anyone else
 * who can reach the socket could rewrite the config and read which upstream has a password.
 */
export async function ensurePrivateDir(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    throw new ControlPathError(`cannot create the control directory ${dir}: ${error.message}`);
  });
  await checkPrivateDir(dir);
}

export async function checkPrivateDir(dir: string): Promise<void> {
  const info = await lstat(dir).catch((error: NodeJS.ErrnoException) => {
    throw new ControlPathError(`cannot inspect the control directory ${dir}: ${error.message}`);
  });
  if (!info.isDirectory()) {
    throw new ControlPathError(
      `${dir} is not a directory${info.isSymbolicLink() ? ' (it is a symbolic link)' : ''}; ` +
        'refusing to put the control socket there. Remove it and try again.',
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new ControlPathError(
      `${dir} belongs to another user (uid ${info.uid}, we are ${uid}); refusing to put the control ` +
        'socket there, since its owner could take over the service. Remove it, or set XDG_RUNTIME_DIR ' +
        'to a private directory.',
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new ControlPathError(
      `${dir} is open to other users (mode ${(info.mode & 0o777).toString(8).padStart(3, '0')}); ` +
        `refusing to put the control socket there. Fix it with: chmod 700 ${dir}`,
    );
  }
}
