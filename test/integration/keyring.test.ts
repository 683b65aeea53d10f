/**
 * The credential store against a real Secret Service (Debian's gnome-keyring on a private
 * D-Bus session bus) and its fallbacks, driven through the real CLI in child processes.
 *
 * The headless incantation, as root with no desktop, no X display and no systemd user session:
 *
 *   env -u DBUS_SESSION_BUS_ADDRESS HOME=$T XDG_DATA_HOME=$T/data XDG_RUNTIME_DIR=$T/run \
 *     dbus-run-session -- bash -c '
 *       printf %s "$UNLOCK" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
 *       ...commands that use the keyring...'
 *
 * - dbus-run-session (package dbus-daemon, pulled in by dbus) starts a private session bus,
 *   exports its address to the command and stops the bus when the command ends; the keyring
 *   daemon leaves with the bus, so nothing outlives the session.
 * - The unlock password must be non-empty: with an empty one gnome-keyring creates no login
 *   keyring and asks gcr-prompter instead, which fails without a display, so writes end in
 *   "Object does not exist at path /org/freedesktop/secrets/collection/login".
 * - `--unlock` creates the login keyring (under $XDG_DATA_HOME/keyrings) and makes it the
 *   default collection; `--components=secrets` keeps it from also starting ssh/pkcs11 agents.
 *   It forks, prints GNOME_KEYRING_CONTROL=... (not needed for the secrets component) and
 *   returns once it owns org.freedesktop.secrets.
 * - HOME, XDG_DATA_HOME and XDG_RUNTIME_DIR point into a temp dir so the test never touches a
 *   real keyring, and dbus-daemon finds a runtime dir for its transient services. The warning
 *   "Failed to set fd limit to 65536: Operation not permitted" in a container is harmless.
 * - keyring-rs stores the account as the Secret Service attribute `username`, hence
 *   `secret-tool lookup service switchyard username upstream:<id>` (package libsecret-tools).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunResult, runProgram } from '../helpers/configs.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'test/helpers/credential-cli.ts');
const PROBE = join(ROOT, 'test/helpers/credential-store-probe.ts');
const TOOLS = {
  '/usr/bin/dbus-run-session': 'dbus-daemon (or dbus)',
  '/usr/bin/gnome-keyring-daemon': 'gnome-keyring',
  '/usr/bin/secret-tool': 'libsecret-tools',
};

/** The password every test saves and then searches every output and file for. */
const PASSWORD = 'sw1tchyard-Known-Test-Pa55word!';
const PASSWORD_SHA256 = createHash('sha256').update(PASSWORD).digest('hex');
const UNLOCK = 'unlock-the-test-login-keyring';

const CONFIG = {
  version: 1,
  upstreams: [
    { id: 'corp', type: 'socks5', host: '127.0.0.1', port: 1081, username: 'alice' },
    { id: 'legacy', type: 'socks4', host: '127.0.0.1', port: 1082, username: 'bob' },
    { id: 'open', type: 'http', host: '127.0.0.1', port: 1083 },
  ],
};

const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

interface Sandbox {
  readonly root: string;
  readonly configDir: string;
  readonly configFile: string;
  readonly env: NodeJS.ProcessEnv;
}

function sandbox(): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-keyring-'));
  temps.push(root);
  const configDir = join(root, 'config', 'switchyard');
  for (const dir of [configDir, join(root, 'data'), join(root, 'run')]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const configFile = join(configDir, 'config.json');
  writeFileSync(configFile, `${JSON.stringify(CONFIG, null, 2)}\n`, { mode: 0o600 });
  // Only what the children need: no inherited session bus, no inherited store preference.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: root,
    XDG_CONFIG_HOME: join(root, 'config'),
    XDG_DATA_HOME: join(root, 'data'),
    XDG_RUNTIME_DIR: join(root, 'run'),
    LANG: 'C.UTF-8',
    TEST_PASSWORD: PASSWORD,
    UNLOCK,
    CLI,
    PROBE,
    CONFIG_DIR: configDir,
    CONFIG_FILE: configFile,
  };
  return { root, configDir, configFile, env };
}

type Run = RunResult;

/** Runs a command in its own process group, so a hung session can be killed whole, by its id. */
async function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
): Promise<Run> {
  const r = await runProgram(command, args, {
    env,
    inheritEnv: false,
    cwd: ROOT,
    processGroup: true,
    timeoutMs,
  });
  if (r.signal === 'SIGKILL')
    throw new Error(`${command} timed out after ${timeoutMs} ms\n${r.stdout}\n${r.stderr}`);
  return r;
}

function session(box: Sandbox, script: string, busConfig?: string): Promise<Run> {
  const args = [...(busConfig ? [`--config-file=${busConfig}`] : []), '--', 'bash', '-c', script];
  return run('dbus-run-session', args, box.env);
}

/** Output between `== name` markers, so one session can run several steps. */
function sections(stdout: string): Map<string, string> {
  const map = new Map<string, string>();
  let name = '';
  for (const line of stdout.split('\n')) {
    const marker = /^== (.+)$/.exec(line);
    if (marker?.[1]) {
      name = marker[1];
      map.set(name, '');
    } else if (name) {
      map.set(name, `${map.get(name)}${line}\n`);
    }
  }
  return map;
}

function section(map: Map<string, string>, name: string): string {
  const text = map.get(name);
  assert.ok(text !== undefined, `no output section '${name}'`);
  return text.trim();
}

function probeReport(text: string): {
  kind: string;
  description: string;
  sha256?: string | null;
  has?: boolean;
} {
  return JSON.parse(text.split('\n').at(-1) ?? '');
}

/** Every file under `dir` (but `except`), for the search for the password. */
function filesUnder(dir: string, except: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (except.includes(path)) continue;
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, except));
    else out.push(path);
  }
  return out;
}

function assertPasswordNowhere(outputs: readonly string[], files: readonly string[]): void {
  for (const [i, text] of outputs.entries()) {
    assert.ok(!text.includes(PASSWORD), `the password appears in output #${i}:\n${text}`);
  }
  for (const file of files) {
    assert.ok(!readFileSync(file).includes(PASSWORD), `the password appears in ${file}`);
  }
}

const node = 'node --import tsx';

// The Secret Service and its fallback are Linux facts; the suite runs on Linux (CI: Debian).
describe('credential store', () => {
  test('the Debian tools the keyring tests run are installed', () => {
    const missing = Object.entries(TOOLS).filter(([path]) => !existsSync(path));
    assert.deepEqual(
      missing,
      [],
      `install them with: apt-get install -y ${missing.map(([, pkg]) => pkg.split(' ')[0]).join(' ')}`,
    );
  });

  test('a real Secret Service: passwords go into gnome-keyring and nowhere else', async () => {
    const box = sandbox();
    const result = await session(
      box,
      `
      printf %s "$UNLOCK" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
      echo "== open"; ${node} "$PROBE" "$CONFIG_DIR" open
      echo "== set"; printf '%s\\n' "$TEST_PASSWORD" | ${node} "$CLI" credential set corp -c "$CONFIG_FILE" --password-stdin; echo "exit=$?"
      echo "== lookup"; secret-tool lookup service switchyard username upstream:corp | sha256sum
      echo "== items"; secret-tool search --all service switchyard 2>&1 | grep -c '^secret = ' || true
      echo "== get"; ${node} "$PROBE" "$CONFIG_DIR" get corp
      echo "== respawn"; ${node} "$PROBE" "$CONFIG_DIR" respawn corp
      echo "== list"; ${node} "$CLI" credential list -c "$CONFIG_FILE"
      echo "== where"; ${node} "$CLI" credential where -c "$CONFIG_FILE"
      echo "== delete"; ${node} "$CLI" credential delete corp -c "$CONFIG_FILE"; echo "exit=$?"
      echo "== delete-again"; ${node} "$CLI" credential delete corp -c "$CONFIG_FILE" 2>&1; echo "exit=$?"
      echo "== lookup-after"; secret-tool lookup service switchyard username upstream:corp; echo "exit=$?"
      echo "== items-after"; secret-tool search --all service switchyard 2>&1 | grep -c '^secret = ' || true
      `,
    );
    const out = sections(result.stdout);
    assert.equal(result.code, 0, result.stderr);

    const opened = probeReport(section(out, 'open'));
    assert.equal(opened.kind, 'keyring', opened.description);
    assert.match(opened.description, /^keyring: Secret Service \(D-Bus session bus\), service 'switchyard'/);
    assert.match(section(out, 'set'), /^saved the password of upstream corp in keyring: Secret Service/);
    assert.match(section(out, 'set'), /exit=0$/);
    // Read back by libsecret's own tool, not by the code under test: it really is in the keyring.
    assert.equal(section(out, 'lookup'), `${PASSWORD_SHA256}  -`);
    // Exactly the one entry: the store's probe entries were deleted after use.
    assert.equal(section(out, 'items'), '1');
    assert.equal(probeReport(section(out, 'get')).sha256, PASSWORD_SHA256);
    assert.deepEqual(JSON.parse(section(out, 'respawn')), {
      first: PASSWORD_SHA256,
      second: PASSWORD_SHA256,
    });
    assert.equal(
      section(out, 'list'),
      'corp\tsaved\nlegacy\tnot needed (socks4)\nopen\tnot needed (no username)',
    );
    assert.equal(section(out, 'where'), opened.description);
    assert.match(section(out, 'delete'), /^deleted the password of upstream corp\nexit=0$/);
    assert.match(section(out, 'delete-again'), /no password is saved for upstream 'corp'.*\nexit=2$/s);
    assert.match(section(out, 'lookup-after'), /exit=1$/);
    assert.equal(section(out, 'items-after'), '0');

    // No fallback file, and neither the config dir nor any output holds the password.
    assert.ok(!existsSync(join(box.configDir, 'credentials.json')));
    assertPasswordNowhere([result.stdout, result.stderr], filesUnder(box.configDir));
  });

  test('no session bus: the 0600 file, and the description says why', async () => {
    const box = sandbox();
    const env = { ...box.env };
    const opened = await run('node', ['--import', 'tsx', PROBE, box.configDir, 'open'], env);
    assert.equal(opened.code, 0, opened.stderr);
    const report = probeReport(opened.stdout.trim());
    assert.equal(report.kind, 'file');
    const file = join(box.configDir, 'credentials.json');
    assert.equal(
      report.description,
      `file ${file} (mode 0600, not encrypted): no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus)`,
    );

    const set = await run(
      'bash',
      [
        '-c',
        `printf %s "$TEST_PASSWORD" | ${node} "$CLI" credential set corp -c "$CONFIG_FILE" --password-stdin`,
      ],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, `saved the password of upstream corp in ${report.description}\n`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // The fallback is plain JSON on purpose: no key beside the data pretending to protect it.
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).passwords.corp, PASSWORD);

    const get = await run('node', ['--import', 'tsx', PROBE, box.configDir, 'get', 'corp'], env);
    assert.equal(probeReport(get.stdout.trim()).sha256, PASSWORD_SHA256);
    const list = await run('node', ['--import', 'tsx', CLI, 'credential', 'list', '-c', box.configFile], env);
    assert.equal(list.stdout, 'corp\tsaved\nlegacy\tnot needed (socks4)\nopen\tnot needed (no username)\n');
    const where = await run(
      'node',
      ['--import', 'tsx', CLI, 'credential', 'where', '-c', box.configFile],
      env,
    );
    assert.equal(where.stdout, `${report.description}\n`);

    // The file is the one place the password may be; the config and every output must not have it.
    assertPasswordNowhere(
      [opened, set, get, list, where].flatMap((r) => [r.stdout, r.stderr]),
      filesUnder(box.configDir, [file]),
    );
  });

  test('a session bus without any Secret Service: the file, naming the missing service', async () => {
    const box = sandbox();
    // A session bus with no service directories, so nothing can be activated for org.freedesktop.secrets.
    const busConfig = join(box.root, 'bare-session.conf');
    writeFileSync(
      busConfig,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=${box.root}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
`,
    );
    const result = await session(box, `${node} "$PROBE" "$CONFIG_DIR" open`, busConfig);
    assert.equal(result.code, 0, result.stderr);
    const report = probeReport(result.stdout.trim());
    assert.equal(report.kind, 'file');
    assert.match(
      report.description,
      /\(mode 0600, not encrypted\): no Secret Service on the session bus \(org\.freedesktop\.secrets not provided/,
    );
  });

  test('a session bus that never answers: the probe gives up in time and the process exits', async () => {
    const box = sandbox();
    // This policy lets messages out but no replies back in, so the binding's first call, the
    // bus Hello made synchronously while constructing an entry, waits for libdbus's 25 s
    // timeout. In-process, that would freeze the event loop and no timer could end it.
    const busConfig = join(box.root, 'deaf-session.conf');
    writeFileSync(
      busConfig,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=${box.root}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*"/><allow own="*"/></policy>
</busconfig>
`,
    );
    const started = Date.now();
    const result = await session(
      { ...box, env: { ...box.env, KEYRING_TIMEOUT_MS: '1500' } },
      `${node} "$PROBE" "$CONFIG_DIR" open`,
      busConfig,
    );
    const elapsed = Date.now() - started;
    assert.equal(result.code, 0, result.stderr);
    const report = probeReport(result.stdout.trim());
    assert.equal(report.kind, 'file');
    assert.match(report.description, /did not answer within 1500 ms/);
    // Well under the 25 s the hung call takes: the helper was killed, not waited for.
    assert.ok(elapsed < 12_000, `took ${elapsed} ms`);
  });

  test('gnome-keyring activated without a login keyring: the file, saying there is no default keyring', async () => {
    const box = sandbox();
    // The standard session bus activates gnome-keyring on demand, but headless nobody unlocks
    // (so nobody creates) a login keyring: there is no collection to write to.
    const result = await session(box, `${node} "$PROBE" "$CONFIG_DIR" open`);
    assert.equal(result.code, 0, result.stderr);
    const report = probeReport(result.stdout.trim());
    assert.equal(report.kind, 'file');
    assert.match(report.description, /the Secret Service has no default keyring/);
  });

  test('a locked login keyring nobody can unlock: the file, saying it is locked', async () => {
    const box = sandbox();
    const create = await session(
      box,
      'printf %s "$UNLOCK" | gnome-keyring-daemon --unlock --components=secrets >/dev/null && secret-tool search --all x y; true',
    );
    assert.equal(create.code, 0, create.stderr);
    // Started without --unlock the login keyring stays locked; unlocking needs a prompt, and
    // gcr-prompter has no display to show it on.
    const result = await session(
      box,
      `gnome-keyring-daemon --start --components=secrets >/dev/null; ${node} "$PROBE" "$CONFIG_DIR" open`,
    );
    assert.equal(result.code, 0, result.stderr);
    const report = probeReport(result.stdout.trim());
    assert.equal(report.kind, 'file');
    assert.match(report.description, /the keyring is locked/);
  });

  test('a file fallback left from earlier is pointed out once the keyring works', async () => {
    const box = sandbox();
    const file = join(box.configDir, 'credentials.json');
    writeFileSync(file, '{"version":1,"comment":"","passwords":{}}\n', { mode: 0o600 });
    const result = await session(
      box,
      `printf %s "$UNLOCK" | gnome-keyring-daemon --unlock --components=secrets >/dev/null; ${node} "$PROBE" "$CONFIG_DIR" open`,
    );
    const report = probeReport(result.stdout.trim());
    assert.equal(report.kind, 'keyring', report.description);
    assert.ok(report.description.includes(`${file} also exists`), report.description);
  });
});
