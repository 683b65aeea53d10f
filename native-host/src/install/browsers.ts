/**
 * Where each browser looks for native-messaging host manifests, per platform, and the Windows
 * registry through `reg.exe`.
 *
 * Chromium-family browsers on Linux and macOS read `<user data dir>/NativeMessagingHosts`, so a
 * custom `--user-data-dir` moves the directory with it (docs/browser-testing.md: the e2e tests
 * rely on that, and on `$HOME` not mattering then). Firefox reads
 * `~/.mozilla/native-messaging-hosts` on Linux and nothing under XDG. On Windows every browser
 * reads a registry key whose default value names the manifest file, which can live anywhere.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { posix, win32 } from 'node:path';
import { NATIVE_HOST_NAME } from '../../../shared/messages/native-host.ts';

export const BROWSER_IDS = ['chrome', 'chromium', 'brave', 'edge', 'firefox'] as const;
export type BrowserId = (typeof BROWSER_IDS)[number];

/** Which manifest dialect a browser reads: `allowed_origins` or `allowed_extensions`. */
export type ManifestFamily = 'chromium' | 'firefox';

export interface Browser {
  readonly id: BrowserId;
  readonly label: string;
  readonly family: ManifestFamily;
}

export const BROWSERS: Readonly<Record<BrowserId, Browser>> = {
  chrome: { id: 'chrome', label: 'Google Chrome', family: 'chromium' },
  chromium: { id: 'chromium', label: 'Chromium', family: 'chromium' },
  brave: { id: 'brave', label: 'Brave', family: 'chromium' },
  edge: { id: 'edge', label: 'Microsoft Edge', family: 'chromium' },
  firefox: { id: 'firefox', label: 'Firefox', family: 'firefox' },
};

export function isBrowserId(value: string): value is BrowserId {
  return (BROWSER_IDS as readonly string[]).includes(value);
}

/** The machine as the installer sees it; tests pass a temporary HOME and another platform. */
export interface PlatformContext {
  readonly platform: NodeJS.Platform;
  readonly env: NodeJS.ProcessEnv;
  readonly home: string;
}

export function platformContext(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): PlatformContext {
  const home = (platform === 'win32' ? env.USERPROFILE : env.HOME) ?? homedir();
  return { platform, env, home };
}

/** Path functions of the target platform, so Windows paths come out right when computed here. */
export function pathsFor(ctx: PlatformContext): typeof posix {
  return ctx.platform === 'win32' ? win32 : posix;
}

export const MANIFEST_FILE = `${NATIVE_HOST_NAME}.json`;

/** Where one browser's manifest goes. */
export interface ManifestTarget {
  readonly browser: Browser;
  /** The manifest file: `<name>.json`, since any other file name is "not found". */
  readonly manifestPath: string;
  /** Windows: the key (under HKCU) whose default value is `manifestPath`. */
  readonly registryKey: string | undefined;
  /** The browser's own per-user directory; it exists once the browser has run here. */
  readonly browserDir: string;
  /** Set when the manifest is for a profile started with `--user-data-dir`. */
  readonly userDataDir: string | undefined;
}

export class UnsupportedTargetError extends Error {
  override readonly name = 'UnsupportedTargetError';
}

/** Absolute XDG base directory, else the default under HOME (relative values are ignored, per the spec). */
function xdg(ctx: PlatformContext, variable: string, fallback: string): string {
  const value = ctx.env[variable];
  return value?.startsWith('/') ? value : posix.join(ctx.home, fallback);
}

/**
 * Chromium's default user data dir on Linux: $CHROME_CONFIG_HOME, else $XDG_CONFIG_HOME (else
 * ~/.config), then the browser's own directory name.
 */
function linuxChromiumConfigHome(ctx: PlatformContext): string {
  const chromeHome = ctx.env.CHROME_CONFIG_HOME;
  if (chromeHome?.startsWith('/')) return chromeHome;
  return xdg(ctx, 'XDG_CONFIG_HOME', '.config');
}

const LINUX_DIRS: Readonly<Record<Exclude<BrowserId, 'firefox'>, string>> = {
  chrome: 'google-chrome',
  chromium: 'chromium',
  brave: 'BraveSoftware/Brave-Browser',
  edge: 'microsoft-edge',
};

const MAC_DIRS: Readonly<Record<Exclude<BrowserId, 'firefox'>, string>> = {
  chrome: 'Google/Chrome',
  chromium: 'Chromium',
  brave: 'BraveSoftware/Brave-Browser',
  edge: 'Microsoft Edge',
};

/** HKCU\Software\<this>\NativeMessagingHosts\<name>. */
const WINDOWS_KEYS: Readonly<Record<BrowserId, string>> = {
  chrome: 'Google\\Chrome',
  chromium: 'Chromium',
  brave: 'BraveSoftware\\Brave-Browser',
  edge: 'Microsoft\\Edge',
  firefox: 'Mozilla',
};

/** Where each browser keeps its profiles on Windows, under %LOCALAPPDATA% (Firefox: %APPDATA%). */
const WINDOWS_PROFILE_DIRS: Readonly<Record<Exclude<BrowserId, 'firefox'>, string>> = {
  chrome: 'Google\\Chrome\\User Data',
  chromium: 'Chromium\\User Data',
  brave: 'BraveSoftware\\Brave-Browser\\User Data',
  edge: 'Microsoft\\Edge\\User Data',
};

export function windowsLocalAppData(ctx: PlatformContext): string {
  return ctx.env.LOCALAPPDATA ?? win32.join(ctx.home, 'AppData', 'Local');
}

function windowsAppData(ctx: PlatformContext): string {
  return ctx.env.APPDATA ?? win32.join(ctx.home, 'AppData', 'Roaming');
}

export function registryKey(id: BrowserId): string {
  return `HKCU\\Software\\${WINDOWS_KEYS[id]}\\NativeMessagingHosts\\${NATIVE_HOST_NAME}`;
}

export function manifestTarget(id: BrowserId, ctx: PlatformContext, userDataDir?: string): ManifestTarget {
  const browser = BROWSERS[id];
  const p = pathsFor(ctx);
  if (userDataDir !== undefined) {
    if (id === 'firefox') {
      throw new UnsupportedTargetError('--user-data-dir is a Chromium-family option; Firefox has profiles');
    }
    if (ctx.platform === 'win32') {
      throw new UnsupportedTargetError(
        '--user-data-dir does not move native hosts on Windows, where browsers find them through the registry',
      );
    }
    const dir = p.resolve(userDataDir);
    return fileTarget(browser, p.join(dir, 'NativeMessagingHosts'), dir, dir);
  }
  if (ctx.platform === 'win32') {
    const browserDir =
      id === 'firefox'
        ? win32.join(windowsAppData(ctx), 'Mozilla', 'Firefox')
        : win32.join(windowsLocalAppData(ctx), WINDOWS_PROFILE_DIRS[id]);
    return {
      browser,
      // One file per browser: the Chromium family and Firefox need different manifests, and
      // separate files let uninstall remove one browser's without touching another's.
      manifestPath: win32.join(
        windowsLocalAppData(ctx),
        'Switchyard',
        'NativeMessagingHosts',
        id,
        MANIFEST_FILE,
      ),
      registryKey: registryKey(id),
      browserDir,
      userDataDir: undefined,
    };
  }
  if (ctx.platform === 'darwin') {
    const support = posix.join(ctx.home, 'Library', 'Application Support');
    if (id === 'firefox') {
      return fileTarget(
        browser,
        posix.join(support, 'Mozilla', 'NativeMessagingHosts'),
        posix.join(support, 'Firefox'),
      );
    }
    const browserDir = posix.join(support, MAC_DIRS[id]);
    return fileTarget(browser, posix.join(browserDir, 'NativeMessagingHosts'), browserDir);
  }
  if (id === 'firefox') {
    const browserDir = posix.join(ctx.home, '.mozilla');
    return fileTarget(browser, posix.join(browserDir, 'native-messaging-hosts'), browserDir);
  }
  const browserDir = posix.join(linuxChromiumConfigHome(ctx), LINUX_DIRS[id]);
  return fileTarget(browser, posix.join(browserDir, 'NativeMessagingHosts'), browserDir);
}

/** A target the browser finds by the file's place alone, without a registry key (not Windows). */
function fileTarget(
  browser: Browser,
  manifestDir: string,
  browserDir: string,
  userDataDir?: string,
): ManifestTarget {
  return {
    browser,
    manifestPath: posix.join(manifestDir, MANIFEST_FILE),
    registryKey: undefined,
    browserDir,
    userDataDir,
  };
}

/** Whether the browser has run for this user here (its per-user directory exists). */
export function browserPresent(target: ManifestTarget): boolean {
  return existsSync(target.browserDir);
}

// ---- the Windows registry ---------------------------------------------------------------------

/** The registry, as far as native messaging needs it: one key's default value. */
export interface Registry {
  setDefault(key: string, value: string): Promise<void>;
  getDefault(key: string): Promise<string | undefined>;
  /** False when the key did not exist. */
  deleteKey(key: string): Promise<boolean>;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type CommandRunner = (file: string, args: readonly string[]) => Promise<CommandResult>;

/** reg.exe's argument vectors; `/ve` is the key's default (unnamed) value. */
export const regExeArgs = {
  add: (key: string, value: string): string[] => ['add', key, '/ve', '/t', 'REG_SZ', '/d', value, '/f'],
  query: (key: string): string[] => ['query', key, '/ve'],
  delete: (key: string): string[] => ['delete', key, '/f'],
};

export const execFileRunner: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, [...args], { windowsHide: true, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (error?.message ?? '')) });
    });
  });

export function regExePath(ctx: PlatformContext): string {
  return win32.join(ctx.env.SystemRoot ?? 'C:\\Windows', 'System32', 'reg.exe');
}

/**
 * `reg.exe` rather than a native module: it ships with every Windows, and its command lines are
 * plain strings that a test on another OS can check.
 */
export class RegExeRegistry implements Registry {
  readonly #file: string;
  readonly #run: CommandRunner;

  constructor(file: string, run: CommandRunner = execFileRunner) {
    this.#file = file;
    this.#run = run;
  }

  async setDefault(key: string, value: string): Promise<void> {
    const r = await this.#run(this.#file, regExeArgs.add(key, value));
    if (r.code !== 0) throw new Error(`reg add ${key} failed: ${(r.stderr || r.stdout).trim()}`);
  }

  async getDefault(key: string): Promise<string | undefined> {
    const r = await this.#run(this.#file, regExeArgs.query(key));
    if (r.code !== 0) return undefined;
    return parseRegQueryDefault(r.stdout);
  }

  async deleteKey(key: string): Promise<boolean> {
    const r = await this.#run(this.#file, regExeArgs.delete(key));
    if (r.code === 0) return true;
    // reg.exe's messages are localized; whether the key is still there is not.
    if ((await this.getDefault(key)) === undefined) return false;
    throw new Error(`reg delete ${key} failed: ${(r.stderr || r.stdout).trim()}`);
  }
}

/**
 * The value from `reg query KEY /ve`. The value's name, "(Default)", is localized, but reg.exe
 * always separates the columns by four spaces.
 */
export function parseRegQueryDefault(stdout: string): string | undefined {
  const m = /^ {4}.*? {4}REG_(?:EXPAND_)?SZ {4}(.*?)\r?$/m.exec(stdout);
  return m?.[1];
}
