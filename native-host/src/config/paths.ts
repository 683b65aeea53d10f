import { homedir } from 'node:os';
import { join } from 'node:path';

/** The platform's per-user config directory: XDG on Linux, Application Support, AppData. */
export function configDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'Switchyard');
  if (platform === 'darwin')
    return join(env.HOME ?? homedir(), 'Library', 'Application Support', 'Switchyard');
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg?.startsWith('/') ? xdg : join(env.HOME ?? homedir(), '.config'), 'switchyard');
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  return join(configDir(env, platform), 'config.json');
}
