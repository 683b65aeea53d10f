/**
 * `switchyard doctor` as a real process in a temporary HOME: a setup broken in every way the
 * browser's misleading messages hide (docs/browser-testing.md), each finding with the command
 * that fixes it; and a healthy setup, with the service running and a real Secret Service
 * (gnome-keyring on a private D-Bus session, as in keyring.test.ts), reporting all ok.
 * Exit code 0 when nothing is a problem (warnings allowed), 1 otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEV_EXTENSION_ID, GECKO_EXTENSION_ID, NATIVE_HOST_NAME } from '../../shared/messages/native-host.ts';
import type { Check } from '../../native-host/src/install/doctor.ts';
import { SERVICE_NODE_FLAGS } from '../../native-host/src/service/node-flags.ts';
import { checkManifest, extensionIds } from '../../native-host/src/install/manifest.ts';
import { type RunResult, runProgram } from '../helpers/configs.ts';
import { HOST_SCRIPT, REPO_ROOT, ensureHostBuilt } from '../helpers/switchyard-process.ts';

const TIMEOUT = 90_000;
const FILE = `${NATIVE_HOST_NAME}.json`;
const ORIGIN = `chrome-extension://${DEV_EXTENSION_ID}/`;
const OTHER_ID = 'abcdefghijklmnopabcdefghijklmnop';
const CLI = 'node dist/host/switchyard.js';
const NOT_FOUND = '"Specified native messaging host not found."';
const FORBIDDEN = '"Access to the specified native messaging host is forbidden."';
const EXITED = '"Native host has exited."';

ensureHostBuilt();

// ---- sandboxes, processes ---------------------------------------------------------------------

const temps: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

interface Sandbox {
  readonly root: string;
  readonly home: string;
  readonly configFile: string;
  readonly runDir: string;
  readonly env: Record<string, string>;
}

function sandbox(config: Record<string, unknown> | undefined): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-doctor-'));
  temps.push(root);
  const home = join(root, 'home');
  const runDir = join(root, 'run');
  const configDir = join(root, 'config', 'switchyard');
  for (const dir of [home, runDir, configDir, join(root, 'data')])
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  const configFile = join(configDir, 'config.json');
  if (config !== undefined)
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(root, 'config'),
    XDG_DATA_HOME: join(root, 'data'),
    XDG_RUNTIME_DIR: runDir,
    LANG: 'C.UTF-8',
  };
  return { root, home, configFile, runDir, env };
}

const CLI_SCRIPT = `
import { Command, Option } from 'commander';
import { defaultConfigPath } from './native-host/src/config/paths.ts';
import { registerInstallCommands } from './native-host/src/cli/install-commands.ts';
const program = new Command('switchyard');
registerInstallCommands(program, () => new Option('-c, --config <file>', 'config file').default(defaultConfigPath()));
await program.parseAsync(process.argv.slice(1), { from: 'user' });
`;

type Run = RunResult;

/** Runs in a process group of its own, so a hung run is killed whole, by its id. */
function run(
  file: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<Run> {
  return runProgram(file, args, { env, inheritEnv: false, cwd: REPO_ROOT, processGroup: true, timeoutMs });
}

function switchyard(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return run(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', CLI_SCRIPT, '--', ...args],
    env,
  );
}

interface DoctorRun {
  readonly code: number | null;
  readonly checks: readonly Check[];
  readonly stderr: string;
}

async function doctor(box: Sandbox, args: readonly string[] = []): Promise<DoctorRun> {
  const r = await switchyard(['doctor', '--json', ...args], box.env);
  let parsed: { checks: Check[] };
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, checks: parsed.checks, stderr: r.stderr };
}

function find(checks: readonly Check[], name: string): Check {
  const c = checks.find((x) => x.name === name);
  assert.ok(c, `no check named '${name}' in ${checks.map((x) => x.name).join(', ')}`);
  return c;
}

function describeChecks(checks: readonly Check[]): string {
  return checks
    .map((c) => `${c.status} ${c.name}: ${c.summary} ${c.details.join(' ')} fix: ${c.fix}`)
    .join('\n');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as AddressInfo).port };
}

function launcherOf(box: Sandbox): string {
  return join(box.root, 'data', 'switchyard', 'switchyard-native-host');
}

function manifestOf(box: Sandbox, dir: string): string {
  return join(box.root, 'config', dir, 'NativeMessagingHosts', FILE);
}

function firefoxManifest(box: Sandbox): string {
  return join(box.home, '.mozilla', 'native-messaging-hosts', FILE);
}

function editJson(file: string, edit: (m: Record<string, unknown>) => void): void {
  const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(m);
  writeFileSync(file, `${JSON.stringify(m, null, 2)}\n`);
}

/** `switchyard serve` for the sandbox's default config, stopped by its PID when the file ends. */
async function startService(box: Sandbox): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HOST_SCRIPT, 'serve'], {
    env: box.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}\n${err}`)), 10_000);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (/listening on/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`serve exited:\n${out}\n${err}`));
    });
  });
  cleanups.push(async () => {
    if (child.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
  });
  return child;
}

// ---- broken setups ----------------------------------------------------------------------------

describe('doctor on a broken setup', () => {
  test('every broken link is a problem with its fixing command, in the words of the browser', {
    timeout: TIMEOUT,
  }, async () => {
    const held = await holdPort();
    const box = sandbox({ version: 1, listen: { port: held.port } });
    const installed = await switchyard(
      ['install', '--browser', 'chrome,chromium,brave,edge,firefox'],
      box.env,
    );
    assert.equal(installed.code, 0, installed.stderr);
    const launcher = launcherOf(box);
    chmodSync(launcher, 0o644);
    editJson(manifestOf(box, 'google-chrome'), (m) => {
      m.allowed_origins = [`chrome-extension://${DEV_EXTENSION_ID}`];
    });
    editJson(manifestOf(box, 'chromium'), (m) => {
      m.allowed_origins = [`chrome-extension://${OTHER_ID}/`];
    });
    editJson(manifestOf(box, 'BraveSoftware/Brave-Browser'), (m) => {
      m.path = 'switchyard-native-host';
    });
    writeFileSync(manifestOf(box, 'microsoft-edge'), '{ "name": "dev.switchyard.host", ');
    editJson(firefoxManifest(box), (m) => {
      m.allowed_extensions = ['other@example.org'];
    });

    const { code, checks } = await doctor(box);
    const all = describeChecks(checks);
    assert.equal(code, 1, all);
    assert.equal(find(checks, 'node').status, 'ok');
    assert.equal(find(checks, 'host').status, 'ok');

    const l = find(checks, 'launcher');
    assert.equal(l.status, 'problem', all);
    assert.match(l.summary, /is not executable \(mode 644\)/);
    assert.ok(l.summary.includes(EXITED), l.summary);
    assert.equal(l.fix, `chmod 755 ${launcher}`);

    const chrome = find(checks, 'Google Chrome');
    assert.equal(chrome.status, 'problem', all);
    assert.ok(
      chrome.details.some((d) => d.includes('without the trailing "/"') && d.includes(NOT_FOUND)),
      chrome.details.join('\n'),
    );
    assert.equal(chrome.fix, `${CLI} install --browser chrome`);

    const chromium = find(checks, 'Chromium');
    assert.equal(chromium.status, 'problem');
    assert.ok(
      chromium.details.some((d) => d.includes(`not the extension ${ORIGIN}`) && d.includes(FORBIDDEN)),
      chromium.details.join('\n'),
    );
    assert.equal(chromium.fix, `${CLI} install --browser chromium`);

    const brave = find(checks, 'Brave');
    assert.equal(brave.status, 'problem');
    assert.ok(
      brave.details.some((d) => /"path" switchyard-native-host is relative/.test(d) && d.includes(NOT_FOUND)),
    );
    assert.equal(brave.fix, `${CLI} install --browser brave`);

    const edge = find(checks, 'Microsoft Edge');
    assert.equal(edge.status, 'problem');
    assert.ok(edge.details.some((d) => d.includes('is not valid JSON') && d.includes(NOT_FOUND)));
    assert.equal(edge.fix, `${CLI} install --browser edge`);

    const firefox = find(checks, 'Firefox');
    assert.equal(firefox.status, 'problem');
    assert.ok(
      firefox.details.some((d) =>
        d.includes(`only "other@example.org", not the extension ${GECKO_EXTENSION_ID}`),
      ),
    );
    assert.equal(firefox.fix, `${CLI} install --browser firefox`);

    const service = find(checks, 'service');
    assert.equal(service.status, 'warn');
    assert.match(service.summary, /not running/);
    assert.equal(service.fix, `${CLI} serve`);

    const port = find(checks, 'port');
    assert.equal(port.status, 'problem');
    assert.match(
      port.summary,
      new RegExp(`127\\.0\\.0\\.1:${held.port} is in use by pid ${process.pid} \\(`),
    );
    assert.match(
      port.fix ?? '',
      new RegExp(
        `^kill ${process.pid}; or use another port: ${CLI} serve --listen 127\\.0\\.0\\.1:${held.port + 1}`,
      ),
    );

    assert.equal(find(checks, 'config').status, 'ok');
    const credentials = find(checks, 'credentials');
    assert.equal(credentials.status, 'warn');
    assert.match(credentials.summary, /credentials\.json \(mode 0600, not encrypted\): no D-Bus session bus/);
    assert.match(credentials.fix ?? '', /Secret Service/);
  });

  test('the text report: one line per check, a fix under each problem, a closing count', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    assert.equal((await switchyard(['install', '--browser', 'chromium'], box.env)).code, 0);
    rmSync(launcherOf(box));
    const r = await switchyard(['doctor'], box.env);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      /^problem {2}launcher: .*switchyard-native-host is missing: the browser has nothing to start$/m,
    );
    assert.match(r.stdout, /^ {9}fix: node dist\/host\/switchyard\.js install$/m);
    assert.match(r.stdout, /^ok {7}Chromium: /m);
    assert.match(r.stdout, /^1 problem, 2 warnings\. Run the fix commands above, then doctor again\.$/m);
  });

  test('a launcher whose node is gone, or that install did not write', { timeout: TIMEOUT }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    assert.equal((await switchyard(['install', '--browser', 'chromium'], box.env)).code, 0);
    const launcher = launcherOf(box);
    const text = readFileSync(launcher, 'utf8');
    writeFileSync(launcher, text.replace(`'${process.execPath}'`, `'/opt/gone/node'`));
    let r = await doctor(box);
    assert.equal(r.code, 1);
    let l = find(r.checks, 'launcher');
    assert.match(l.summary, /runs \/opt\/gone\/node, which no longer exists/);
    assert.equal(l.fix, `${CLI} install`);

    writeFileSync(launcher, '#!/bin/sh\nexec something-else\n');
    r = await doctor(box);
    l = find(r.checks, 'launcher');
    assert.equal(l.status, 'problem');
    assert.match(l.summary, /was not written by switchyard install/);

    // A launcher that exits with an error is what the browser reports as "Native host has exited."
    writeFileSync(launcher, text.replace('native-host "$@"', 'no-such-command "$@"'));
    r = await doctor(box);
    l = find(r.checks, 'launcher');
    assert.equal(l.status, 'problem', describeChecks(r.checks));
  });

  test('a wildcard origin and a manifest that is not an object', { timeout: TIMEOUT }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    assert.equal((await switchyard(['install', '--browser', 'chrome,chromium'], box.env)).code, 0);
    editJson(manifestOf(box, 'google-chrome'), (m) => {
      m.allowed_origins = ['chrome-extension://*/'];
    });
    writeFileSync(manifestOf(box, 'chromium'), '[]\n');
    const { code, checks } = await doctor(box);
    assert.equal(code, 1);
    const chrome = find(checks, 'Google Chrome');
    assert.ok(
      chrome.details.some((d) => d.includes('wildcard') && d.includes(NOT_FOUND)),
      chrome.details.join('\n'),
    );
    const chromium = find(checks, 'Chromium');
    assert.ok(chromium.details.some((d) => d.includes('is not a JSON object')));
  });

  test('a missing manifest for a browser that is here', { timeout: TIMEOUT }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    assert.equal((await switchyard(['install', '--browser', 'chromium'], box.env)).code, 0);
    mkdirSync(join(box.root, 'config', 'google-chrome'));
    const { code, checks } = await doctor(box);
    assert.equal(code, 1);
    const chrome = find(checks, 'Google Chrome');
    assert.equal(chrome.status, 'problem');
    assert.match(
      chrome.summary,
      /^no manifest at .*google-chrome\/NativeMessagingHosts\/dev\.switchyard\.host\.json/,
    );
    assert.equal(chrome.fix, `${CLI} install --browser chrome`);
  });

  test('--extension-id and --user-data-dir are checked, and repeated in the fix', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    const udd = join(box.root, 'profile');
    assert.equal((await switchyard(['install', '--user-data-dir', udd], box.env)).code, 0);
    const ok = await doctor(box, ['--user-data-dir', udd]);
    assert.equal(
      find(ok.checks, `Chromium (--user-data-dir ${udd})`).status,
      'ok',
      describeChecks(ok.checks),
    );
    const other = await doctor(box, ['--user-data-dir', udd, '--extension-id', OTHER_ID]);
    assert.equal(other.code, 1);
    const c = find(other.checks, `Chromium (--user-data-dir ${udd})`);
    assert.ok(c.details.some((d) => d.includes(`not the extension chrome-extension://${OTHER_ID}/`)));
    assert.equal(
      c.fix,
      `${CLI} install --browser chromium --user-data-dir ${udd} --extension-id ${OTHER_ID}`,
    );
    // Without options, doctor still finds the profile through the install record.
    const plain = await doctor(box);
    assert.equal(find(plain.checks, `Chromium (--user-data-dir ${udd})`).status, 'ok');
  });

  test('an invalid config: each field error, and the command that fixes it', {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox({ version: 1, listen: { port: 70000, host: '' }, bogus: true });
    assert.equal((await switchyard(['install', '--browser', 'chromium'], box.env)).code, 0);
    let r = await doctor(box);
    assert.equal(r.code, 1);
    let config = find(r.checks, 'config');
    assert.equal(config.status, 'problem');
    assert.ok(
      config.details.some((d) => d.startsWith('listen.port: ')),
      config.details.join('\n'),
    );
    assert.ok(
      config.details.some((d) => d.startsWith('listen.host: ')),
      config.details.join('\n'),
    );
    assert.equal(config.fix, `"\${EDITOR:-vi}" ${box.configFile}   (correct the fields listed)`);
    assert.equal(find(r.checks, 'port').status, 'warn');

    // With a valid previous version kept as config.json.bak, restoring it is the fix.
    writeFileSync(`${box.configFile}.bak`, '{ "version": 1 }\n');
    r = await doctor(box);
    config = find(r.checks, 'config');
    assert.equal(
      config.fix,
      `cp ${box.configFile}.bak ${box.configFile}   (the previous version, which is valid)`,
    );
  });

  test('a control directory other users can enter', { timeout: TIMEOUT }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    const dir = join(box.runDir, 'switchyard');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const { code, checks } = await doctor(box);
    assert.equal(code, 1);
    const service = find(checks, 'service');
    assert.equal(service.status, 'problem');
    assert.match(service.summary, /is open to other users \(mode 755\)/);
    assert.equal(service.fix, `chmod 700 ${dir}`);
  });

  test("a built host whose #! line this system's env cannot run: a warning with the node command", {
    timeout: TIMEOUT,
  }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    // A copy of the bundle whose first line names a program no env can find, as an env without
    // -S would fail on the real one; the doctor it runs checks itself.
    const dir = join(box.root, 'copy');
    mkdirSync(dir);
    const copy = join(dir, 'switchyard.js');
    const text = readFileSync(HOST_SCRIPT, 'utf8').replace(/^#!.*$/m, '#!/usr/bin/env -S no-such-node-here');
    writeFileSync(copy, text, { mode: 0o755 });
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const r = await run(process.execPath, [copy, 'doctor', '--json'], box.env);
    const host = find((JSON.parse(r.stdout) as { checks: Check[] }).checks, 'host');
    assert.equal(host.status, 'warn', JSON.stringify(host));
    assert.match(host.summary, /does not start as a program here: its first line needs an env that knows -S/);
    assert.equal(host.fix, `node ${SERVICE_NODE_FLAGS.join(' ')} ${copy} serve`);
    // The real bundle starts as a program here.
    const real = await doctor(box);
    assert.equal(find(real.checks, 'host').status, 'ok');
  });

  test('no browser and nothing installed: a warning, not a problem', { timeout: TIMEOUT }, async () => {
    const box = sandbox({ version: 1, listen: { port: await freePort() } });
    const { checks } = await doctor(box);
    const browsers = find(checks, 'browsers');
    assert.equal(browsers.status, 'warn');
    assert.match(browsers.fix ?? '', /install --browser chrome\|chromium\|brave\|edge\|firefox/);
    assert.equal(find(checks, 'launcher').status, 'problem');
  });
});

// ---- healthy setups ---------------------------------------------------------------------------

const KEYRING_TOOLS = ['/usr/bin/dbus-run-session', '/usr/bin/gnome-keyring-daemon'];
const missingTools = KEYRING_TOOLS.filter((t) => !existsSync(t));

describe('doctor on a healthy setup', () => {
  test('service running, port held by it, OS keyring: all ok, exit 0', { timeout: TIMEOUT }, async () => {
    // The test command installs these (scripts/system-deps.mjs); missing, this is a failure.
    assert.deepEqual(missingTools, [], `needs ${missingTools.join(', ')}`);
    const port = await freePort();
    const box = sandbox({ version: 1, listen: { port } });
    assert.equal((await switchyard(['install', '--browser', 'chromium,firefox'], box.env)).code, 0);
    // The service and doctor both inside one private session bus with an unlocked keyring; the
    // service is stopped by its PID before the session ends.
    const script = [
      'printf %s "$UNLOCK" | gnome-keyring-daemon --unlock --components=secrets >/dev/null',
      'node "$HOST" serve >"$ROOT/serve.out" 2>"$ROOT/serve.err" &',
      'SERVE=$!',
      'for i in $(seq 1 100); do grep -q "listening on" "$ROOT/serve.out" 2>/dev/null && break; sleep 0.1; done',
      'node --import tsx --input-type=module -e "$CLI_SCRIPT" -- doctor --json',
      'code=$?',
      'kill $SERVE; wait $SERVE',
      'node --import tsx --input-type=module -e "$CLI_SCRIPT" -- doctor >"$ROOT/doctor.txt"',
      'exit $code',
    ].join('\n');
    const env = {
      ...box.env,
      UNLOCK: 'unlock-the-doctor-test-keyring',
      HOST: HOST_SCRIPT,
      ROOT: box.root,
      CLI_SCRIPT,
    };
    const r = await run('dbus-run-session', ['--', 'sh', '-c', script], env);
    let checks: Check[];
    try {
      checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
    } catch {
      throw new Error(`no JSON from doctor (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
    const all = describeChecks(checks);
    assert.deepEqual(
      checks.filter((c) => c.status !== 'ok').map((c) => c.name),
      [],
      all,
    );
    assert.equal(r.code, 0, all);
    assert.match(
      find(checks, 'service').summary,
      /^running \(pid \d+, started by switchyard serve, listening on 127\.0\.0\.1:\d+/,
    );
    assert.match(
      find(checks, 'port').summary,
      new RegExp(`^127\\.0\\.0\\.1:${port} is held by our service \\(pid \\d+\\)$`),
    );
    assert.match(
      find(checks, 'credentials').summary,
      /^the running service keeps upstream passwords in .*Secret Service/,
    );
    assert.equal(find(checks, 'Chromium').summary, `${manifestOf(box, 'chromium')} lets in ${ORIGIN}`);
    assert.equal(find(checks, 'Firefox').summary, `${firefoxManifest(box)} lets in ${GECKO_EXTENSION_ID}`);
    assert.match(find(checks, 'launcher').summary, /runs .*dist\/host\/switchyard\.js with .*node \(v\d+\./);
    // The addon the build compiles beside the host: the owner check asks the kernel exactly.
    assert.equal(find(checks, 'owner check').summary, 'netlink sock_diag');
    // The second run, as text, after the service stopped: its warning is the only one left.
    const text = readFileSync(join(box.root, 'doctor.txt'), 'utf8');
    assert.match(text, /^warn {5}service: not running/m);
  });

  test('without a keyring: the file fallback is a warning in honest words, and exit 0', {
    timeout: TIMEOUT,
  }, async () => {
    const port = await freePort();
    const box = sandbox({ version: 1, listen: { port } });
    assert.equal((await switchyard(['install', '--browser', 'chromium'], box.env)).code, 0);
    await startService(box);
    const { code, checks } = await doctor(box);
    const all = describeChecks(checks);
    assert.equal(code, 0, all);
    assert.deepEqual(
      checks.filter((c) => c.status !== 'ok').map((c) => c.name),
      ['credentials'],
      all,
    );
    const credentials = find(checks, 'credentials');
    assert.match(
      credentials.summary,
      /^the running service keeps upstream passwords in the file .*credentials\.json \(mode 0600, not encrypted\): .*Anyone who can read your files can read these passwords\.$/,
    );
    assert.match(find(checks, 'port').summary, /is held by our service/);
  });
});

// ---- the manifest rules, as strings -----------------------------------------------------------

describe('manifest checks', () => {
  const ids = extensionIds();
  const good = {
    name: NATIVE_HOST_NAME,
    description: 'x',
    path: '/opt/switchyard-native-host',
    type: 'stdio',
    allowed_origins: [ORIGIN],
  };
  const problems = (text: string, file = `/x/${FILE}`, family: 'chromium' | 'firefox' = 'chromium') =>
    checkManifest({ file, text, family, ids, platform: 'linux' }).problems.map(
      (p) => `${p.severity}: ${p.message}`,
    );

  test('what install writes has no problems', () => {
    assert.deepEqual(problems(JSON.stringify(good)), []);
  });

  test('each mistake from the table, with the message the browser shows', () => {
    assert.deepEqual(problems(JSON.stringify(good), '/x/switchyard.json'), [
      `problem: the file is named switchyard.json, not "name" + .json (${FILE}): the browser says ${NOT_FOUND}`,
    ]);
    assert.deepEqual(problems(JSON.stringify({ ...good, allowed_origins: [ORIGIN.slice(0, -1)] })), [
      `problem: "allowed_origins" has "${ORIGIN.slice(0, -1)}" without the trailing "/": the browser says ${NOT_FOUND}`,
    ]);
    assert.deepEqual(problems(JSON.stringify({ ...good, path: 'host.sh' })), [
      `problem: "path" host.sh is relative; it must be absolute: the browser says ${NOT_FOUND}`,
    ]);
    assert.deepEqual(
      problems(JSON.stringify({ ...good, allowed_origins: [`chrome-extension://${OTHER_ID}/`] })),
      [
        `problem: "allowed_origins" lets in only "chrome-extension://${OTHER_ID}/", not the extension ${ORIGIN}: the browser says ${FORBIDDEN}`,
      ],
    );
    assert.match(
      problems(JSON.stringify({ ...good, allowed_origins: [ORIGIN, '*'] })).join('\n'),
      /wildcard "\*"/,
    );
    assert.match(
      problems(JSON.stringify({ ...good, name: 'dev.other' })).join('\n'),
      /"name" is "dev\.other"/,
    );
    assert.match(problems(JSON.stringify({ ...good, type: 'pipe' })).join('\n'), /"type" must be "stdio"/);
    const { allowed_origins: _, ...firefoxish } = good;
    assert.match(
      problems(JSON.stringify({ ...firefoxish, allowed_extensions: [GECKO_EXTENSION_ID] })).join('\n'),
      /has "allowed_extensions" \(Firefox's key\) but no "allowed_origins"/,
    );
    assert.match(
      problems(JSON.stringify(good), `/x/${FILE}`, 'firefox').join('\n'),
      /has "allowed_origins" \(Chromium's key\) but no "allowed_extensions"/,
    );
  });

  test('a relative path is allowed on Windows (relative to the manifest) but not what install writes', () => {
    const report = checkManifest({
      file: `C:\\x\\${FILE}`,
      text: JSON.stringify({ ...good, path: 'host.cmd' }),
      family: 'chromium',
      ids,
      platform: 'win32',
    });
    assert.deepEqual(
      report.problems.map((p) => p.severity),
      ['warn'],
    );
  });
});
