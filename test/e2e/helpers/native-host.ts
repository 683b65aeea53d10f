/**
 * Registers the real native-messaging host with a Chromium profile started with
 * --user-data-dir, where Chromium looks for it: <user-data-dir>/NativeMessagingHosts.
 * `switchyard install --browser chromium --user-data-dir DIR` does it when the built host has
 * that command; until then the test writes the same manifest and launcher itself. Either way
 * the host runs with the browser's environment, which the test isolates (XDG dirs, HOME).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATIVE_HOST_NAME } from '../../../shared/messages/native-host.ts';

export interface InstalledHost {
  readonly manifestPath: string;
  /** What the manifest's "path" runs. */
  readonly launcher: string;
  readonly how: 'switchyard install' | 'written by the test';
}

export interface InstallOptions {
  readonly hostScript: string;
  readonly userDataDir: string;
  readonly extensionId: string;
  /** For the installer (it writes its launcher under $XDG_DATA_HOME). */
  readonly env: NodeJS.ProcessEnv;
  /** Where the test's own launcher goes when the installer is not there. */
  readonly scratchDir: string;
}

function hasInstallCommand(hostScript: string, env: NodeJS.ProcessEnv): boolean {
  const r = spawnSync(process.execPath, [hostScript, 'install', '--help'], {
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return r.status === 0 && r.stdout.includes('--user-data-dir');
}

export function installNativeHost(options: InstallOptions): InstalledHost {
  const manifestPath = join(options.userDataDir, 'NativeMessagingHosts', `${NATIVE_HOST_NAME}.json`);
  if (hasInstallCommand(options.hostScript, options.env)) {
    const r = spawnSync(
      process.execPath,
      [
        options.hostScript,
        'install',
        '--browser',
        'chromium',
        '--user-data-dir',
        options.userDataDir,
        '--extension-id',
        options.extensionId,
      ],
      { env: options.env, encoding: 'utf8', timeout: 20_000 },
    );
    if (r.status !== 0 || !existsSync(manifestPath)) {
      throw new Error(`switchyard install failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}`);
    }
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { path: string };
    return { manifestPath, launcher: manifest.path, how: 'switchyard install' };
  }
  // The manifest as docs/browser-testing.md found Chromium wants it: absolute path, the exact
  // origin with its trailing slash, file name = name + '.json', an executable launcher.
  mkdirSync(options.scratchDir, { recursive: true });
  const launcher = join(options.scratchDir, 'switchyard-native-host');
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  writeFileSync(
    launcher,
    `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(options.hostScript)} native-host "$@"\n`,
    { mode: 0o755 },
  );
  chmodSync(launcher, 0o755);
  mkdirSync(join(options.userDataDir, 'NativeMessagingHosts'), { recursive: true });
  writeFileSync(
    manifestPath,
    `${JSON.stringify(
      {
        name: NATIVE_HOST_NAME,
        description: 'Switchyard native-messaging host (end-to-end test)',
        path: launcher,
        type: 'stdio',
        allowed_origins: [`chrome-extension://${options.extensionId}/`],
      },
      null,
      2,
    )}\n`,
  );
  return { manifestPath, launcher, how: 'written by the test' };
}
