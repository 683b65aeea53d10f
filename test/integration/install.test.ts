/**
 * `switchyard install` and `uninstall` as real processes in a temporary HOME: the manifests at
 * the exact paths each browser reads (docs/browser-testing.md), with the exact contents; the
 * launcher, run the way Chromium and Firefox run it; uninstall taking away exactly what install
 * wrote; `--user-data-dir` for a custom Chromium profile; and, since Windows cannot run here,
 * the registry commands it would run, as strings.
 *
 * The commands run from source through tsx (so they are tested before the bundle has them);
 * the launcher they write runs the built host, dist/host/switchyard.js.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEV_EXTENSION_ID, GECKO_EXTENSION_ID, NATIVE_HOST_NAME } from '../../shared/messages/native-host.ts';
import {
  BROWSER_IDS,
  type BrowserId,
  type CommandRunner,
  RegExeRegistry,
  manifestTarget,
  parseRegQueryDefault,
  platformContext,
} from '../../native-host/src/install/browsers.ts';
import {
  install,
  planInstall,
  readRecord,
  registryCommands,
  registryRemoveCommands,
  uninstall,
} from '../../native-host/src/install/install.ts';
import { launcherText, parseLauncher, shellQuote } from '../../native-host/src/install/launcher.ts';
import { extensionIds } from '../../native-host/src/install/manifest.ts';
import { type RunResult, runProgram } from '../helpers/configs.ts';
import { HOST_SCRIPT, REPO_ROOT, ensureHostBuilt } from '../helpers/switchyard-process.ts';

const TIMEOUT = 60_000;
const CHROME_ORIGIN = `chrome-extension://${DEV_EXTENSION_ID}/`;
const FILE = `${NATIVE_HOST_NAME}.json`;

// ---- sandboxes and the CLI --------------------------------------------------------------------

const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

interface Sandbox {
  readonly root: string;
  readonly home: string;
  readonly env: Record<string, string>;
}

/** A HOME of its own, and nothing inherited that could point a browser path elsewhere. */
function sandbox(name = 'home', extra: Record<string, string> = {}): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-install-'));
  temps.push(root);
  const home = join(root, name);
  const run = join(root, 'run');
  mkdirSync(home, { recursive: true });
  mkdirSync(run, { mode: 0o700 });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_RUNTIME_DIR: run,
    LANG: 'C.UTF-8',
    ...extra,
  };
  return { root, home, env };
}

type Run = RunResult;

const CLI_SCRIPT = `
import { Command, Option } from 'commander';
import { defaultConfigPath } from './native-host/src/config/paths.ts';
import { registerInstallCommands } from './native-host/src/cli/install-commands.ts';
import { UsageError } from './native-host/src/cli/errors.ts';
const program = new Command('switchyard').exitOverride();
registerInstallCommands(program, () => new Option('-c, --config <file>', 'config file').default(defaultConfigPath()));
try {
  await program.parseAsync(process.argv.slice(1), { from: 'user' });
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write('switchyard: ' + error.message + '\\n');
    process.exit(2);
  }
  if (error && typeof error === 'object' && 'exitCode' in error) process.exit(error.exitCode);
  throw error;
}
`;

/** `switchyard ARGS` with the install commands, from source, in the sandbox's environment. */
function switchyard(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return runFile(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', CLI_SCRIPT, '--', ...args],
    env,
    {
      cwd: REPO_ROOT,
    },
  );
}

/** Standard input is closed at once: the browser's disconnect is EOF on the host's stdin. */
function runFile(
  file: string,
  args: readonly string[],
  env: Record<string, string>,
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return runProgram(file, args, {
    env,
    inheritEnv: false,
    cwd: options.cwd ?? REPO_ROOT,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
}

/** Every path under `dir` with its mode and, for files, its contents: to compare trees exactly. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string): void => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const info = statSync(full);
      const mode = (info.mode & 0o777).toString(8);
      if (info.isDirectory()) {
        out.set(full, `dir ${mode}`);
        walk(full);
      } else {
        out.set(full, `file ${mode} ${readFileSync(full, 'utf8')}`);
      }
    }
  };
  walk(dir);
  return out;
}

function expectedManifest(launcher: string, family: 'chromium' | 'firefox', ids?: readonly string[]): string {
  const base = {
    name: NATIVE_HOST_NAME,
    description: 'Switchyard: local SOCKS proxy host',
    path: launcher,
    type: 'stdio',
  };
  const manifest =
    family === 'chromium'
      ? { ...base, allowed_origins: (ids ?? [DEV_EXTENSION_ID]).map((id) => `chrome-extension://${id}/`) }
      : { ...base, allowed_extensions: ids ?? [GECKO_EXTENSION_ID] };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Where each browser reads manifests on Linux with only HOME set (docs/browser-testing.md). */
function linuxManifestPaths(home: string): Record<BrowserId, string> {
  return {
    chrome: join(home, '.config/google-chrome/NativeMessagingHosts', FILE),
    chromium: join(home, '.config/chromium/NativeMessagingHosts', FILE),
    brave: join(home, '.config/BraveSoftware/Brave-Browser/NativeMessagingHosts', FILE),
    edge: join(home, '.config/microsoft-edge/NativeMessagingHosts', FILE),
    firefox: join(home, '.mozilla/native-messaging-hosts', FILE),
  };
}

function launcherOf(home: string): string {
  return join(home, '.local/share/switchyard/switchyard-native-host');
}

function expectedLauncher(): string {
  return [
    '#!/bin/sh',
    '# Written by `switchyard install`: the browser starts this for native messaging.',
    `exec '${process.execPath}' '${HOST_SCRIPT}' native-host "$@"`,
    '',
  ].join('\n');
}

ensureHostBuilt();

// ---- install and uninstall on Linux, through the CLI ------------------------------------------

describe('install for every browser', () => {
  test('writes each manifest at the exact path with the exact contents, and an executable launcher', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const r = await switchyard(['install', '--browser', BROWSER_IDS.join(',')], box.env);
    assert.equal(r.code, 0, r.stderr);
    const launcher = launcherOf(box.home);
    const paths = linuxManifestPaths(box.home);
    for (const id of BROWSER_IDS) {
      const family = id === 'firefox' ? 'firefox' : 'chromium';
      assert.equal(readFileSync(paths[id], 'utf8'), expectedManifest(launcher, family), id);
      assert.equal(statSync(paths[id]).mode & 0o777, 0o644, id);
      assert.match(r.stdout, new RegExp(`: created ${paths[id].replaceAll('.', '\\.')}\n`));
    }
    // Exactly `chrome-extension://<id>/`, the trailing slash included.
    assert.deepEqual(JSON.parse(readFileSync(paths.chrome, 'utf8')).allowed_origins, [CHROME_ORIGIN]);
    assert.equal(readFileSync(launcher, 'utf8'), expectedLauncher());
    assert.equal(statSync(launcher).mode & 0o777, 0o755);
    assert.match(r.stdout, /^launcher: created .*switchyard-native-host$/m);
    assert.match(r.stdout, /installed for Google Chrome, Chromium, Brave, Microsoft Edge, Firefox/);

    const record = await readRecord(platformContext(box.env, 'linux'));
    assert.equal(record?.launcher, launcher);
    assert.deepEqual(
      record?.manifests.map((m) => [m.browser, m.path]),
      BROWSER_IDS.map((id) => [id, paths[id]]),
    );
  });

  test('the launcher runs the host: it exits promptly on EOF, for Chromium and for Firefox arguments', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    assert.equal((await switchyard(['install', '--browser', 'chromium,firefox'], box.env)).code, 0);
    const launcher = launcherOf(box.home);
    for (const args of [[CHROME_ORIGIN], [linuxManifestPaths(box.home).firefox, GECKO_EXTENSION_ID]]) {
      const started = Date.now();
      // From another directory with a bare environment, the way a browser starts it.
      const r = await runFile(
        launcher,
        args,
        { PATH: '/usr/bin:/bin', HOME: box.home, XDG_RUNTIME_DIR: box.env.XDG_RUNTIME_DIR ?? '' },
        {
          cwd: '/',
          timeoutMs: 10_000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '', 'nothing but frames may reach stdout');
      assert.match(r.stderr, /native host started/);
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    }
  });

  test('--browser all installs only for the browsers found here', { timeout: TIMEOUT }, async () => {
    const box = sandbox();
    mkdirSync(join(box.home, '.config/chromium'), { recursive: true });
    mkdirSync(join(box.home, '.mozilla'));
    const r = await switchyard(['install', '--browser', 'all'], box.env);
    assert.equal(r.code, 0, r.stderr);
    const paths = linuxManifestPaths(box.home);
    assert.equal(readFileSync(paths.chromium, 'utf8'), expectedManifest(launcherOf(box.home), 'chromium'));
    assert.equal(readFileSync(paths.firefox, 'utf8'), expectedManifest(launcherOf(box.home), 'firefox'));
    for (const id of ['chrome', 'brave', 'edge'] as const) {
      assert.throws(() => statSync(paths[id]), /ENOENT/, id);
    }
    assert.match(r.stdout, /installed for Chromium, Firefox/);
    assert.match(r.stdout, /not found here, skipped: Google Chrome, Brave, Microsoft Edge/);
  });

  test('--browser all with no browser found writes nothing and says how to name one', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const before = tree(box.root);
    const r = await switchyard(['install'], box.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /found no browser here/);
    assert.match(r.stdout, /--browser chrome\|chromium\|brave\|edge\|firefox/);
    assert.deepEqual(tree(box.root), before);
  });

  test('Chromium-family paths follow XDG_CONFIG_HOME; Firefox stays in ~/.mozilla; the launcher follows XDG_DATA_HOME', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const config = join(box.root, 'xdg-config');
    const data = join(box.root, 'xdg-data');
    const env = { ...box.env, XDG_CONFIG_HOME: config, XDG_DATA_HOME: data };
    const r = await switchyard(['install', '--browser', 'chrome,firefox'], env);
    assert.equal(r.code, 0, r.stderr);
    const launcher = join(data, 'switchyard/switchyard-native-host');
    assert.equal(
      readFileSync(join(config, 'google-chrome/NativeMessagingHosts', FILE), 'utf8'),
      expectedManifest(launcher, 'chromium'),
    );
    assert.equal(
      readFileSync(join(box.home, '.mozilla/native-messaging-hosts', FILE), 'utf8'),
      expectedManifest(launcher, 'firefox'),
    );
  });

  test('--extension-id replaces the development id; a malformed id is refused', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const id = 'abcdefghijklmnopabcdefghijklmnop';
    const r = await switchyard(['install', '--browser', 'chrome,firefox', '--extension-id', id], box.env);
    assert.equal(r.code, 0, r.stderr);
    const paths = linuxManifestPaths(box.home);
    assert.equal(
      readFileSync(paths.chrome, 'utf8'),
      expectedManifest(launcherOf(box.home), 'chromium', [id]),
    );
    // A Chromium id says nothing about Firefox, which keeps the development build's Gecko id.
    assert.equal(readFileSync(paths.firefox, 'utf8'), expectedManifest(launcherOf(box.home), 'firefox'));

    const origin = await switchyard(
      ['install', '--browser', 'chrome', '--extension-id', `chrome-extension://${id}/`],
      box.env,
    );
    assert.equal(origin.code, 2);
    assert.match(origin.stderr, /is an origin; give the id alone/);
    const bad = await switchyard(['install', '--browser', 'chrome', '--extension-id', 'nope'], box.env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /is not an extension id/);
    const browser = await switchyard(['install', '--browser', 'opera'], box.env);
    assert.equal(browser.code, 2);
    assert.match(browser.stderr, /unknown browser 'opera'/);
  });
});

describe('idempotent reinstall', () => {
  test('a second install leaves every file as it was and says so; a changed id updates the manifests', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const args = ['install', '--browser', BROWSER_IDS.join(',')];
    assert.equal((await switchyard(args, box.env)).code, 0);
    const first = tree(box.root);
    const mtimes = [...first.keys()].map((p) => statSync(p).mtimeMs);
    const again = await switchyard(args, box.env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(tree(box.root), first);
    assert.deepEqual(
      [...first.keys()].map((p) => statSync(p).mtimeMs),
      mtimes,
    );
    assert.doesNotMatch(again.stdout, /: (created|updated) /);
    assert.equal(again.stdout.match(/: unchanged /g)?.length, 7, again.stdout);

    // A launcher made non-executable is repaired by reinstalling.
    chmodSync(launcherOf(box.home), 0o644);
    const repaired = await switchyard(args, box.env);
    assert.match(repaired.stdout, /^launcher: updated /m);
    assert.equal(statSync(launcherOf(box.home)).mode & 0o777, 0o755);

    const id = 'ponmlkjihgfedcbaponmlkjihgfedcba';
    const changed = await switchyard([...args, '--extension-id', id], box.env);
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /Google Chrome: updated /);
    assert.match(changed.stdout, /Firefox: unchanged /);
    assert.deepEqual(JSON.parse(readFileSync(linuxManifestPaths(box.home).chrome, 'utf8')).allowed_origins, [
      `chrome-extension://${id}/`,
    ]);
  });
});

describe('uninstall', () => {
  test('removes exactly what install wrote, directories it created included, and nothing else', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    // A browser that has run already, with a profile file and another program's native host.
    const chromium = join(box.home, '.config/chromium');
    mkdirSync(join(chromium, 'NativeMessagingHosts'), { recursive: true });
    writeFileSync(join(chromium, 'Local State'), '{}');
    writeFileSync(
      join(chromium, 'NativeMessagingHosts/com.example.other.json'),
      '{"name":"com.example.other"}',
    );
    const before = tree(box.root);

    assert.equal((await switchyard(['install', '--browser', BROWSER_IDS.join(',')], box.env)).code, 0);
    // Something someone else puts into a directory install created must survive uninstall.
    const firefoxDir = join(box.home, '.mozilla/native-messaging-hosts');
    writeFileSync(join(firefoxDir, 'org.example.keep.json'), '{}');

    const r = await switchyard(['uninstall'], box.env);
    assert.equal(r.code, 0, r.stderr);
    const paths = linuxManifestPaths(box.home);
    for (const id of BROWSER_IDS)
      assert.match(r.stdout, new RegExp(`removed ${paths[id].replaceAll('.', '\\.')}\n`));
    assert.match(r.stdout, /^launcher: removed /m);

    const expected = new Map(before);
    expected.set(join(box.home, '.mozilla'), 'dir 755');
    expected.set(firefoxDir, 'dir 755');
    expected.set(join(firefoxDir, 'org.example.keep.json'), 'file 644 {}');
    assert.deepEqual(tree(box.root), expected);

    const twice = await switchyard(['uninstall'], box.env);
    assert.equal(twice.code, 0);
    assert.match(twice.stdout, /nothing installed to remove/);
  });

  test('--browser removes only that browser; the launcher stays while another manifest uses it', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const before = tree(box.root);
    assert.equal((await switchyard(['install', '--browser', 'chrome,firefox'], box.env)).code, 0);
    const paths = linuxManifestPaths(box.home);
    const r = await switchyard(['uninstall', '--browser', 'chrome'], box.env);
    assert.equal(r.code, 0, r.stderr);
    assert.throws(() => statSync(paths.chrome), /ENOENT/);
    assert.throws(
      () => statSync(join(box.home, '.config')),
      /ENOENT/,
      'the directories install created go too',
    );
    assert.ok(statSync(paths.firefox).isFile());
    assert.ok(statSync(launcherOf(box.home)).isFile());
    assert.deepEqual(
      (await readRecord(platformContext(box.env, 'linux')))?.manifests.map((m) => m.browser),
      ['firefox'],
    );
    assert.equal((await switchyard(['uninstall'], box.env)).code, 0);
    assert.deepEqual(tree(box.root), before);
  });

  test('without the install record it removes only manifests that point at our launcher', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    assert.equal((await switchyard(['install', '--browser', 'chrome,chromium'], box.env)).code, 0);
    const paths = linuxManifestPaths(box.home);
    rmSync(join(box.home, '.local/share/switchyard/install.json'));
    // Someone else's manifest under our name, pointing elsewhere: not ours to delete.
    const foreign = `${JSON.stringify({ name: NATIVE_HOST_NAME, path: '/opt/other/host' })}\n`;
    writeFileSync(paths.chromium, foreign);
    const r = await switchyard(['uninstall'], box.env);
    assert.equal(r.code, 0, r.stderr);
    assert.throws(() => statSync(paths.chrome), /ENOENT/);
    assert.throws(() => statSync(launcherOf(box.home)), /ENOENT/);
    assert.equal(readFileSync(paths.chromium, 'utf8'), foreign);
  });
});

describe('--user-data-dir', () => {
  test('writes <dir>/NativeMessagingHosts/<name>.json and nothing under HOME but the launcher', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox();
    const udd = join(box.root, 'profile');
    const r = await switchyard(['install', '--user-data-dir', udd], box.env);
    assert.equal(r.code, 0, r.stderr);
    const manifest = join(udd, 'NativeMessagingHosts', FILE);
    assert.equal(readFileSync(manifest, 'utf8'), expectedManifest(launcherOf(box.home), 'chromium'));
    assert.match(r.stdout, /Chromium \(--user-data-dir .*profile\): created /);
    assert.deepEqual(readdirSync(box.home), ['.local']);

    // Alongside a normal install, uninstalling one profile leaves the rest.
    assert.equal((await switchyard(['install', '--browser', 'chrome'], box.env)).code, 0);
    const u = await switchyard(['uninstall', '--user-data-dir', udd], box.env);
    assert.equal(u.code, 0, u.stderr);
    assert.throws(() => statSync(manifest), /ENOENT/);
    assert.throws(() => statSync(udd), /ENOENT/, 'install created the profile directory, so it goes too');
    assert.ok(statSync(linuxManifestPaths(box.home).chrome).isFile());
    assert.ok(statSync(launcherOf(box.home)).isFile());
  });

  test('is for the Chromium family only', { timeout: TIMEOUT }, async () => {
    const box = sandbox();
    const r = await switchyard(
      ['install', '--browser', 'firefox', '--user-data-dir', join(box.root, 'p')],
      box.env,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--user-data-dir is a Chromium-family option/);
  });
});

describe('launcher quoting', () => {
  test('paths with spaces, quotes and $ survive the shell: the launcher still starts the host', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox(`it's a "home" $HOME`);
    const odd = join(box.root, `bin dir's $(x) "q"`);
    mkdirSync(odd);
    const node = join(odd, 'node');
    const host = join(odd, `switchyard's.js`);
    symlinkSync(process.execPath, node);
    symlinkSync(HOST_SCRIPT, host);
    const ctx = platformContext(box.env, 'linux');
    const lines: string[] = [];
    await install(
      { ctx, browsers: ['chromium'], launcher: { node, hostScript: host } },
      { log: (line) => lines.push(line) },
    );
    const launcher = launcherOf(box.home);
    assert.deepEqual(parseLauncher(readFileSync(launcher, 'utf8')), { node, hostScript: host });
    const r = await runFile(
      launcher,
      [CHROME_ORIGIN],
      { PATH: '/usr/bin:/bin', HOME: box.home, XDG_RUNTIME_DIR: box.env.XDG_RUNTIME_DIR ?? '' },
      {
        cwd: '/',
        timeoutMs: 10_000,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(shellQuote(`a'b`), `'a'\\''b'`);
    await uninstall({ ctx }, { log: (line) => lines.push(line) });
    assert.deepEqual(readdirSync(box.home), []);
  });
});

// ---- other platforms, as paths and command lines ----------------------------------------------

describe('Windows (command lines only)', () => {
  const env = {
    USERPROFILE: 'C:\\Users\\Ann Lee',
    LOCALAPPDATA: 'C:\\Users\\Ann Lee\\AppData\\Local',
    APPDATA: 'C:\\Users\\Ann Lee\\AppData\\Roaming',
    SystemRoot: 'C:\\Windows',
  };
  const ctx = platformContext(env, 'win32');
  const nmh = 'C:\\Users\\Ann Lee\\AppData\\Local\\Switchyard\\NativeMessagingHosts';
  const launcher = {
    node: 'C:\\Program Files\\nodejs\\node.exe',
    hostScript: 'C:\\src\\100%\\dist\\host\\switchyard.js',
  };

  test('install writes one manifest per browser and points an HKCU key at it with reg.exe', () => {
    const plan = planInstall({ ctx, browsers: 'all', launcher, present: () => true });
    assert.equal(
      plan.launcherPath,
      'C:\\Users\\Ann Lee\\AppData\\Local\\Switchyard\\switchyard-native-host.cmd',
    );
    assert.equal(
      plan.launcherText,
      '@echo off\r\n' +
        'rem Written by `switchyard install`: the browser starts this for native messaging.\r\n' +
        '"C:\\Program Files\\nodejs\\node.exe" "C:\\src\\100%%\\dist\\host\\switchyard.js" native-host %*\r\n',
    );
    assert.deepEqual(parseLauncher(plan.launcherText), launcher);
    assert.deepEqual(registryCommands(ctx, plan), [
      `C:\\Windows\\System32\\reg.exe add HKCU\\Software\\Google\\Chrome\\NativeMessagingHosts\\dev.switchyard.host /ve /t REG_SZ /d "${nmh}\\chrome\\dev.switchyard.host.json" /f`,
      `C:\\Windows\\System32\\reg.exe add HKCU\\Software\\Chromium\\NativeMessagingHosts\\dev.switchyard.host /ve /t REG_SZ /d "${nmh}\\chromium\\dev.switchyard.host.json" /f`,
      `C:\\Windows\\System32\\reg.exe add HKCU\\Software\\BraveSoftware\\Brave-Browser\\NativeMessagingHosts\\dev.switchyard.host /ve /t REG_SZ /d "${nmh}\\brave\\dev.switchyard.host.json" /f`,
      `C:\\Windows\\System32\\reg.exe add HKCU\\Software\\Microsoft\\Edge\\NativeMessagingHosts\\dev.switchyard.host /ve /t REG_SZ /d "${nmh}\\edge\\dev.switchyard.host.json" /f`,
      `C:\\Windows\\System32\\reg.exe add HKCU\\Software\\Mozilla\\NativeMessagingHosts\\dev.switchyard.host /ve /t REG_SZ /d "${nmh}\\firefox\\dev.switchyard.host.json" /f`,
    ]);
    assert.deepEqual(
      registryRemoveCommands(
        ctx,
        plan.manifests.slice(0, 1).map((m) => m.target),
      ),
      [
        'C:\\Windows\\System32\\reg.exe delete HKCU\\Software\\Google\\Chrome\\NativeMessagingHosts\\dev.switchyard.host /f',
      ],
    );
    const chrome = plan.manifests[0];
    assert.deepEqual(JSON.parse(chrome?.text ?? ''), {
      name: NATIVE_HOST_NAME,
      description: 'Switchyard: local SOCKS proxy host',
      path: plan.launcherPath,
      type: 'stdio',
      allowed_origins: [CHROME_ORIGIN],
    });
    assert.deepEqual(JSON.parse(plan.manifests[4]?.text ?? '').allowed_extensions, [GECKO_EXTENSION_ID]);
  });

  test('the registry goes through reg.exe argument vectors; the default value is read back from reg query', async () => {
    const calls: string[][] = [];
    const values = new Map<string, string>();
    const runner: CommandRunner = async (file, args) => {
      calls.push([file, ...args]);
      const [verb, key] = args;
      if (key === undefined) return { code: 1, stdout: '', stderr: 'bad' };
      if (verb === 'add') {
        values.set(key, args[6] ?? '');
        return { code: 0, stdout: 'The operation completed successfully.\r\n', stderr: '' };
      }
      if (verb === 'query') {
        const value = values.get(key);
        return value === undefined
          ? {
              code: 1,
              stdout: '',
              stderr: 'ERROR: The system was unable to find the specified registry key or value.',
            }
          : { code: 0, stdout: `\r\n${key}\r\n    (Default)    REG_SZ    ${value}\r\n\r\n`, stderr: '' };
      }
      const existed = values.delete(key);
      return existed
        ? { code: 0, stdout: '', stderr: '' }
        : { code: 1, stdout: '', stderr: 'ERROR: not found' };
    };
    const registry = new RegExeRegistry('C:\\Windows\\System32\\reg.exe', runner);
    const target = manifestTarget('edge', ctx);
    const key = 'HKCU\\Software\\Microsoft\\Edge\\NativeMessagingHosts\\dev.switchyard.host';
    assert.equal(target.registryKey, key);
    await registry.setDefault(key, target.manifestPath);
    assert.equal(await registry.getDefault(key), `${nmh}\\edge\\dev.switchyard.host.json`);
    assert.equal(await registry.deleteKey(key), true);
    assert.equal(await registry.deleteKey(key), false);
    assert.deepEqual(calls, [
      ['C:\\Windows\\System32\\reg.exe', 'add', key, '/ve', '/t', 'REG_SZ', '/d', target.manifestPath, '/f'],
      ['C:\\Windows\\System32\\reg.exe', 'query', key, '/ve'],
      ['C:\\Windows\\System32\\reg.exe', 'delete', key, '/f'],
      ['C:\\Windows\\System32\\reg.exe', 'delete', key, '/f'],
      ['C:\\Windows\\System32\\reg.exe', 'query', key, '/ve'],
    ]);
    // A localized value name ("Standard" on a German Windows) reads the same.
    assert.equal(
      parseRegQueryDefault('\r\nHKEY\\x\r\n    (Standard)    REG_SZ    C:\\a b\\c.json\r\n'),
      'C:\\a b\\c.json',
    );
  });

  test('--user-data-dir is refused: Windows finds hosts through the registry only', () => {
    assert.throws(() => manifestTarget('chromium', ctx, 'C:\\profile'), /registry/);
  });
});

describe('macOS (paths only)', () => {
  test('each browser reads its own Application Support folder; Firefox reads Mozilla', () => {
    const ctx = platformContext({ HOME: '/Users/ann' }, 'darwin');
    const support = '/Users/ann/Library/Application Support';
    const expected: Record<BrowserId, string> = {
      chrome: `${support}/Google/Chrome/NativeMessagingHosts/${FILE}`,
      chromium: `${support}/Chromium/NativeMessagingHosts/${FILE}`,
      brave: `${support}/BraveSoftware/Brave-Browser/NativeMessagingHosts/${FILE}`,
      edge: `${support}/Microsoft Edge/NativeMessagingHosts/${FILE}`,
      firefox: `${support}/Mozilla/NativeMessagingHosts/${FILE}`,
    };
    for (const id of BROWSER_IDS) assert.equal(manifestTarget(id, ctx).manifestPath, expected[id], id);
    const plan = planInstall({
      ctx,
      browsers: ['chrome'],
      launcher: { node: '/usr/local/bin/node', hostScript: '/opt/sy/switchyard.js' },
    });
    assert.equal(plan.launcherPath, `${support}/Switchyard/switchyard-native-host`);
    assert.equal(
      launcherText({ node: '/usr/local/bin/node', hostScript: '/opt/sy/switchyard.js' }, 'darwin'),
      plan.launcherText,
    );
  });

  test('--extension-id sorts Chromium and Gecko ids by their shape', () => {
    assert.deepEqual(extensionIds(['abcdefghijklmnopabcdefghijklmnop', 'me@example.org']), {
      chromium: ['abcdefghijklmnopabcdefghijklmnop'],
      gecko: ['me@example.org'],
    });
    assert.deepEqual(extensionIds([]), { chromium: [DEV_EXTENSION_ID], gecko: [GECKO_EXTENSION_ID] });
  });
});
