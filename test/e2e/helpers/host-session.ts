/**
 * What the Chromium and the Firefox end-to-end tests share around the browser: the temp dir with
 * its own HOME and XDG dirs, the environment the browser (and so the bridge and the service)
 * runs in, the exit upstream and the host config that routes *.test through it, reading the
 * extension's state and UiResponses, and stopping the bridge-started services at the end.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../../shared/config/schema.ts';
import type { Rule } from '../../../shared/rules/types.ts';
import type { UiRequest, UiResponse, UiResultMap, UiState } from '../../../extension/shared/ui-protocol.ts';
import { childEnv } from '../../helpers/configs.ts';
import { type SwitchyardProcess, startSwitchyard } from '../../helpers/switchyard-process.ts';
import { waitFor } from './chromium.ts';

export interface TestDirs {
  /** The temp dir everything is under; removed at the end. */
  readonly tmp: string;
  readonly home: string;
  readonly xdgConfig: string;
  readonly xdgRuntime: string;
}

/** A fresh temp dir with HOME and the XDG config and runtime dirs in it (mode 0700). */
export function makeTestDirs(prefix: string): TestDirs {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const dirs = { tmp, home: join(tmp, 'home'), xdgConfig: join(tmp, 'config'), xdgRuntime: join(tmp, 'run') };
  for (const dir of [dirs.home, dirs.xdgConfig, dirs.xdgRuntime])
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dirs;
}

/** The browser's environment, which is the host's: it starts the bridge, which starts the service. */
export function browserEnv(dirs: TestDirs): NodeJS.ProcessEnv {
  return childEnv({
    HOME: dirs.home,
    XDG_CONFIG_HOME: dirs.xdgConfig,
    XDG_RUNTIME_DIR: dirs.xdgRuntime,
    XDG_DATA_HOME: join(dirs.tmp, 'data'),
    SWITCHYARD_CREDENTIAL_STORE: 'file',
  });
}

/** Writes the host's config where the service under `dirs` looks for it; returns its path. */
export function writeHostConfig(dirs: TestDirs, config: ConfigInput): string {
  const configFile = join(dirs.xdgConfig, 'switchyard', 'config.json');
  mkdirSync(join(dirs.xdgConfig, 'switchyard'), { recursive: true, mode: 0o700 });
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return configFile;
}

/**
 * The exit upstream: our own host wanting `user`'s password, resolving the test names itself
 * (its `hosts`, all loopback), like a real exit would.
 */
export function startExit(
  user: string,
  password: string,
  names: readonly string[],
): Promise<SwitchyardProcess> {
  return startSwitchyard({
    users: [{ name: user, password }],
    config: { hosts: Object.fromEntries(names.map((name) => [name, ['127.0.0.1']])) },
    args: ['--log-level', 'debug'],
  });
}

export const DIRECT_RULE: Rule = {
  id: 'direct-test',
  name: 'direct.test goes direct',
  enabled: true,
  match: { hosts: [{ type: 'exact', value: 'direct.test' }] },
  target: { kind: 'direct' },
};
export const TEST_SITES_RULE: Rule = {
  id: 'test-sites',
  name: '*.test via abroad',
  enabled: true,
  match: { hosts: [{ type: 'domain', value: '*.test' }] },
  target: { kind: 'route', routeId: 'abroad' },
};

/** Off at first; direct.test direct, the rest of *.test through route abroad (the exit). */
export function hostConfig(hostPort: number, exit: { port: number; username: string }): ConfigInput {
  return {
    version: 1,
    enabled: false,
    listen: { host: '127.0.0.1', port: hostPort },
    upstreams: [
      {
        id: 'exit',
        name: 'exit',
        type: 'socks5',
        host: '127.0.0.1',
        port: exit.port,
        username: exit.username,
      },
    ],
    routes: [{ id: 'abroad', name: 'abroad', hops: ['exit'] }],
    rules: [DIRECT_RULE, TEST_SITES_RULE],
    defaultTarget: { kind: 'direct' },
  };
}

/**
 * `waitState(what, ok)`: polls `state` until `ok` holds, noting every service PID it sees in
 * `servicePids`; a timeout says what the last state was.
 */
export function stateWaiter(
  state: () => Promise<UiState>,
  servicePids: Set<number>,
): (what: string, ok: (s: UiState) => boolean, timeoutMs?: number) => Promise<UiState> {
  return async (what, ok, timeoutMs = 10_000) => {
    let last: UiState | undefined;
    try {
      return await waitFor(
        what,
        async () => {
          last = await state();
          if (last.host.status) servicePids.add(last.host.status.pid);
          return ok(last) ? last : undefined;
        },
        timeoutMs,
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nlast state: ${JSON.stringify({ ...last, config: undefined })}`,
      );
    }
  };
}

/** The result of a UiRequest's response, or an error that names the request and the code. */
export function uiResult<R extends UiRequest>(
  request: R,
  response: UiResponse<R['type']>,
): UiResultMap[R['type']] {
  if (!response.ok)
    throw new Error(`${request.type} failed: ${response.error.code} ${response.error.message}`);
  return response.result;
}

/**
 * The bridge-started service outlives the browser for its idle period: stop it, by PID, and
 * only if that PID is still our service (not a process that got the number since).
 */
export function stopBridgeServices(servicePids: Iterable<number>): void {
  for (const pid of servicePids) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes('switchyard.js') && cmdline.includes('--started-by-bridge'))
      process.kill(pid, 'SIGTERM');
  }
}
