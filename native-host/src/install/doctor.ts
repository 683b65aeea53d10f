/**
 * `switchyard doctor`: every link between the browser and the proxy, checked in the order the
 * browser walks them, each ok, warn or problem, and each problem with the command that fixes it.
 *
 * The browser's own messages are little help ("Specified native messaging host not found." for
 * half a dozen different mistakes, docs/browser-testing.md), so each finding says which mistake
 * it is and which message the browser shows for it.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, constants, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { validateConfig } from '../../../shared/config/schema.ts';
import type { CredentialStoreInfo, StatusResult } from '../../../shared/messages/protocol.ts';
import { defaultConfigPath } from '../config/paths.ts';
import { ConfigError, loadConfig } from '../config/store.ts';
import { ServiceNotRunningError, connectControl } from '../control/client.ts';
import { ControlPathError, checkPrivateDir, controlPaths } from '../control/paths.ts';
import { OWNER_LOOKUP_ENV, ownerLookupStatus, sockDiag } from '../policy/sockdiag.ts';
import {
  CREDENTIAL_STORE_ENV,
  credentialStorePreference,
  openCredentialStore,
} from '../credentials/store.ts';
import {
  BROWSER_IDS,
  type ManifestTarget,
  type PlatformContext,
  type Registry,
  browserPresent,
  manifestTarget,
} from './browsers.ts';
import { type BrowserChoice, type InstallRecord, chosenTargets, readRecord, targetLabel } from './install.ts';
import { defaultHostScript, launcherPath, parseLauncher, shellQuote } from './launcher.ts';
import { EXITED, type ExtensionIds, checkManifest } from './manifest.ts';
import { SERVICE_NODE_FLAGS } from '../service/node-flags.ts';

export type CheckStatus = 'ok' | 'warn' | 'problem';

export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly summary: string;
  readonly details: readonly string[];
  /** The command (or, where no command can do it, the step) that fixes a warn or problem. */
  readonly fix: string | undefined;
}

export const MIN_NODE = [20, 19] as const;

export interface DoctorRequest {
  readonly ctx: PlatformContext;
  readonly config: string;
  readonly browsers: BrowserChoice;
  readonly ids: ExtensionIds;
  /** The --extension-id values as given, repeated in the install commands doctor suggests. */
  readonly idArgs?: readonly string[];
  readonly userDataDir?: string;
  /** The built host this switchyard is. */
  readonly hostScript?: string;
  /** How a person runs switchyard here, for the fix commands: `switchyard` or `node .../switchyard.js`. */
  readonly cli?: string;
  readonly nodeVersion?: string;
  readonly registry?: Registry;
  /** Bounds the keyring probe when no service runs to ask. */
  readonly keyringTimeoutMs?: number;
}

function check(
  name: string,
  status: CheckStatus,
  summary: string,
  fix?: string,
  details: readonly string[] = [],
): Check {
  return { name, status, summary, details, fix };
}

/** One shell word, quoted only when it needs it. */
function word(value: string, platform: NodeJS.Platform): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value;
  return platform === 'win32' ? `"${value}"` : shellQuote(value);
}

/** `switchyard` when run through the npm bin link, else node and the host file. */
export function defaultCli(hostScript: string, cwd: string = process.cwd()): string {
  const invoked = process.argv[1];
  if (invoked !== undefined && /^switchyard(?:\.cmd)?$/.test(basename(invoked))) return 'switchyard';
  const rel = relative(cwd, hostScript);
  const shown = rel !== '' && !rel.startsWith('..') && !rel.startsWith('/') ? rel : hostScript;
  return `node ${word(shown, process.platform)}`;
}

function parseVersion(text: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function newEnough(version: string): boolean {
  const v = parseVersion(version);
  if (v === undefined) return false;
  return v[0] > MIN_NODE[0] || (v[0] === MIN_NODE[0] && v[1] >= MIN_NODE[1]);
}

const NEED_NODE = `${MIN_NODE[0]}.${MIN_NODE[1]} or newer`;

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

function mode(bits: number): string {
  return (bits & 0o777).toString(8).padStart(3, '0');
}

async function isExecutable(path: string, platform: NodeJS.Platform): Promise<boolean> {
  if (platform === 'win32') return true;
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(
  file: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolveRun) => {
    execFile(file, [...args], { timeout: timeoutMs }, (error, stdout) => {
      resolveRun({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
        stdout: String(stdout),
      });
    });
  });
}

/**
 * Starts the launcher the way Chromium does, stdin closed at once: the host must start and
 * exit by itself on EOF, or the browser would see "Native host has exited." or kill it.
 */
function tryLauncher(
  path: string,
  origin: string,
  timeoutMs = 10_000,
): Promise<{ ok: boolean; why: string }> {
  return new Promise((resolveTry) => {
    const child = spawn(path, [origin], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolveTry({ ok: false, why: error.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const tail = stderr.trim().split('\n').slice(-2).join(' | ');
      if (signal !== null) {
        resolveTry({ ok: false, why: `it did not exit within ${timeoutMs / 1000} s of stdin closing` });
      } else if (code !== 0) {
        resolveTry({ ok: false, why: `it exited with code ${code}${tail ? `: ${tail}` : ''}` });
      } else if (stdout > 0) {
        resolveTry({
          ok: false,
          why: `it wrote ${stdout} bytes to stdout unasked, which would corrupt the frames`,
        });
      } else {
        resolveTry({ ok: true, why: '' });
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end();
  });
}

// ---- the checks -------------------------------------------------------------------------------

class Doctor {
  readonly #r: DoctorRequest;
  readonly #cli: string;
  readonly #hostScript: string;
  readonly #platform: NodeJS.Platform;
  #record: InstallRecord | undefined;
  #status: StatusResult | undefined;
  #serviceStore: CredentialStoreInfo | undefined;

  constructor(request: DoctorRequest) {
    this.#r = request;
    this.#hostScript = request.hostScript ?? defaultHostScript();
    this.#cli = request.cli ?? defaultCli(this.#hostScript);
    this.#platform = request.ctx.platform;
  }

  #q(value: string): string {
    return word(value, this.#platform);
  }

  /** The install command for these browsers, with the options doctor was given. */
  #installCommand(browser?: string, userDataDir?: string): string {
    const parts = [this.#cli, 'install'];
    if (browser !== undefined) parts.push('--browser', browser);
    const udd = userDataDir ?? this.#r.userDataDir;
    if (udd !== undefined) parts.push('--user-data-dir', this.#q(udd));
    for (const id of this.#r.idArgs ?? []) parts.push('--extension-id', this.#q(id));
    return parts.join(' ');
  }

  #serveCommand(): string {
    const isDefault = resolve(this.#r.config) === resolve(defaultConfigPath(this.#r.ctx.env, this.#platform));
    return `${this.#cli} serve${isDefault ? '' : ` --config ${this.#q(this.#r.config)}`}`;
  }

  async run(): Promise<Check[]> {
    this.#record = await readRecord(this.#r.ctx);
    const checks: Check[] = [this.#node(), await this.#host(), await this.#launcher()];
    checks.push(...(await this.#browsers()));
    const config = await this.#config();
    checks.push(config.check);
    checks.push(await this.#service());
    checks.push(await this.#port(config.listen));
    checks.push(await this.#credentials());
    if (this.#platform === 'linux' && process.platform === 'linux') checks.push(this.#ownerCheck());
    return checks;
  }

  #node(): Check {
    const version = this.#r.nodeVersion ?? process.versions.node;
    if (newEnough(version)) return check('node', 'ok', `v${version} (${NEED_NODE} is needed)`);
    return check(
      'node',
      'problem',
      `v${version} is too old: switchyard needs Node.js ${NEED_NODE}`,
      `install Node.js ${NEED_NODE} (https://nodejs.org/), then run: ${this.#installCommand()}`,
    );
  }

  async #host(): Promise<Check> {
    if (!existsSync(this.#hostScript)) {
      return check(
        'host',
        'problem',
        `${this.#hostScript} is not built`,
        this.#buildCommand(this.#hostScript),
      );
    }
    const built = `built: ${this.#hostScript}`;
    if (this.#platform === 'win32' || process.platform === 'win32') return check('host', 'ok', built);
    // Its `#!/usr/bin/env -S node ...` line needs an env that splits words (GNU coreutils 8.30+,
    // BSD, macOS); the browser's launcher and the bridge name node themselves and do not care.
    const direct = await run(this.#hostScript, ['--version'], 15_000);
    if (direct.code === 0) return check('host', 'ok', built);
    return check(
      'host',
      'warn',
      `${built}, but it does not start as a program here: its first line needs an env that knows -S (GNU coreutils 8.30 or newer, BSD or macOS); the browser is not affected`,
      `node ${SERVICE_NODE_FLAGS.join(' ')} ${this.#q(this.#hostScript)} serve`,
    );
  }

  #buildCommand(hostScript: string): string {
    const root = resolve(dirname(hostScript), '..', '..');
    if (existsSync(join(root, 'scripts', 'build-host.mjs')))
      return `cd ${this.#q(root)} && npm run build:host`;
    return this.#installCommand();
  }

  /** The launcher install writes, or the one it recorded. */
  #launcherPath(): string {
    const recorded = this.#record?.launcher;
    return recorded !== undefined && recorded !== '' ? recorded : launcherPath(this.#r.ctx);
  }

  async #launcher(): Promise<Check> {
    const path = this.#launcherPath();
    const reinstall = this.#installCommand();
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch (error) {
      const why = errno(error) === 'ENOENT' ? 'is missing' : `cannot be read (${(error as Error).message})`;
      return check('launcher', 'problem', `${path} ${why}: the browser has nothing to start`, reinstall);
    }
    if (!info.isFile()) return check('launcher', 'problem', `${path} is not a file`, reinstall);
    if (!(await isExecutable(path, this.#platform))) {
      return check(
        'launcher',
        'problem',
        `${path} is not executable (mode ${mode(info.mode)}): the browser says ${EXITED}`,
        `chmod 755 ${this.#q(path)}`,
      );
    }
    const target = parseLauncher(await readFile(path, 'utf8'));
    if (target === undefined) {
      return check('launcher', 'problem', `${path} was not written by switchyard install`, reinstall);
    }
    if (!(await isExecutable(target.node, this.#platform)) || !existsSync(target.node)) {
      return check(
        'launcher',
        'problem',
        `${path} runs ${target.node}, which no longer exists (a Node.js upgrade or version manager moves it)`,
        reinstall,
      );
    }
    const version = await run(target.node, ['--version'], 10_000);
    if (version.code !== 0 || !newEnough(version.stdout)) {
      const v = version.stdout.trim() || 'an unknown version';
      return check(
        'launcher',
        'problem',
        `${path} runs ${target.node}, which is ${v}; switchyard needs Node.js ${NEED_NODE}`,
        `${reinstall} (run with Node.js ${NEED_NODE})`,
      );
    }
    if (!existsSync(target.hostScript)) {
      return check(
        'launcher',
        'problem',
        `${path} runs ${target.hostScript}, which does not exist`,
        target.hostScript === this.#hostScript ? this.#buildCommand(target.hostScript) : reinstall,
      );
    }
    const origin = `chrome-extension://${this.#r.ids.chromium[0] ?? ''}/`;
    if (this.#platform !== 'win32') {
      const tried = await tryLauncher(path, origin);
      if (!tried.ok) {
        return check(
          'launcher',
          'problem',
          `${path} does not run as a native host: ${tried.why}; the browser says ${EXITED}`,
          reinstall,
        );
      }
    }
    const summary = `${path} runs ${target.hostScript} with ${target.node} (${version.stdout.trim()})`;
    if (resolve(target.hostScript) !== resolve(this.#hostScript)) {
      return check('launcher', 'warn', `${summary}, not this switchyard (${this.#hostScript})`, reinstall);
    }
    return check('launcher', 'ok', summary);
  }

  /** Which browsers to look at: the chosen ones; for 'all' those found here or installed for. */
  #targets(): { targets: ManifestTarget[]; absent: ManifestTarget[] } {
    const { ctx, browsers, userDataDir } = this.#r;
    const recorded = new Set(this.#record?.manifests.map((m) => m.path) ?? []);
    if (browsers !== 'all' || userDataDir !== undefined) {
      return { targets: chosenTargets(ctx, browsers, userDataDir), absent: [] };
    }
    const targets: ManifestTarget[] = [];
    const absent: ManifestTarget[] = [];
    for (const id of BROWSER_IDS) {
      const t = manifestTarget(id, ctx);
      const relevant =
        browserPresent(t) ||
        recorded.has(t.manifestPath) ||
        (t.registryKey === undefined && existsSync(t.manifestPath));
      (relevant ? targets : absent).push(t);
    }
    // Profiles installed for with --user-data-dir are checked too, while they exist.
    for (const m of this.#record?.manifests ?? []) {
      if (m.userDataDir !== undefined && existsSync(m.userDataDir)) {
        targets.push(manifestTarget(m.browser, ctx, m.userDataDir));
      }
    }
    return { targets, absent };
  }

  async #browsers(): Promise<Check[]> {
    const { targets, absent } = this.#targets();
    const checks: Check[] = [];
    for (const target of targets) checks.push(await this.#browser(target));
    if (targets.length === 0) {
      checks.push(
        check(
          'browsers',
          'warn',
          'no browser found here (none has a per-user directory yet) and nothing installed',
          `${this.#cli} install --browser chrome|chromium|brave|edge|firefox`,
        ),
      );
    } else if (absent.length > 0) {
      checks.push(
        check(
          'other browsers',
          'ok',
          `not found here, nothing to check: ${absent.map((t) => `${t.browser.label} (${t.browserDir})`).join(', ')}`,
        ),
      );
    }
    return checks;
  }

  async #browser(target: ManifestTarget): Promise<Check> {
    const name = targetLabel(target);
    const fix = this.#installCommand(target.browser.id, target.userDataDir);
    let file = target.manifestPath;
    if (target.registryKey !== undefined) {
      const value = await this.#r.registry?.getDefault(target.registryKey);
      if (value === undefined) {
        return check(
          name,
          'problem',
          `no registry key ${target.registryKey}: the browser says "not found"`,
          fix,
        );
      }
      file = value;
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      const why = errno(error) === 'ENOENT' ? 'no manifest at' : `cannot read (${(error as Error).message})`;
      return check(
        name,
        'problem',
        `${why} ${file}: the browser says "Specified native messaging host not found."`,
        fix,
      );
    }
    const family = target.browser.family;
    const expectedPath = this.#launcherPath();
    const report = checkManifest({
      file,
      text,
      family,
      ids: this.#r.ids,
      expectedPath,
      platform: this.#platform,
    });
    const details = report.problems.map(
      (p) => `${p.severity === 'problem' ? 'problem' : 'warn'}: ${p.message}`,
    );
    const path = report.manifest?.path;
    if (typeof path === 'string' && path !== expectedPath && path.startsWith('/')) {
      // Another launcher: the browser still needs it to exist and be executable.
      if (!existsSync(path)) {
        details.push(
          `problem: "path" ${path} does not exist: the browser says "Failed to start native messaging host."`,
        );
      } else if (!(await isExecutable(path, this.#platform))) {
        details.push(`problem: "path" ${path} is not executable: the browser says ${EXITED}`);
      }
    }
    const status: CheckStatus = details.some((d) => d.startsWith('problem'))
      ? 'problem'
      : details.length > 0
        ? 'warn'
        : 'ok';
    if (status === 'ok') {
      const allowed =
        family === 'chromium'
          ? this.#r.ids.chromium.map((id) => `chrome-extension://${id}/`)
          : [...this.#r.ids.gecko];
      return check(name, 'ok', `${file} lets in ${allowed.join(', ')}`);
    }
    const n = details.filter((d) => d.startsWith('problem')).length;
    const summary =
      status === 'problem' ? `${file} is wrong (${n} problem${n === 1 ? '' : 's'})` : `${file} works, but:`;
    return check(name, status, summary, fix, details);
  }

  async #config(): Promise<{ check: Check; listen: { host: string; port: number } | undefined }> {
    const file = this.#r.config;
    try {
      const loaded = await loadConfig(file);
      const { host, port } = loaded.config.listen;
      const summary = loaded.exists
        ? `${file} is valid (listen ${host}:${port})`
        : `no config file at ${file}; the defaults are used (listen ${host}:${port})`;
      return { check: check('config', 'ok', summary), listen: { host, port } };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const details = error.issues.map((i) => `${i.path}: ${i.message}`);
      return {
        check: check(
          'config',
          'problem',
          `${file} is not a valid config`,
          await this.#configFix(file),
          details,
        ),
        listen: undefined,
      };
    }
  }

  async #configFix(file: string): Promise<string> {
    const backup = `${file}.bak`;
    try {
      if (validateConfig(JSON.parse(await readFile(backup, 'utf8'))).ok) {
        return `cp ${this.#q(backup)} ${this.#q(file)}   (the previous version, which is valid)`;
      }
    } catch {
      // no usable backup
    }
    return this.#platform === 'win32'
      ? `notepad ${this.#q(file)}   (correct the fields listed)`
      : `"\${EDITOR:-vi}" ${this.#q(file)}   (correct the fields listed)`;
  }

  async #service(): Promise<Check> {
    const paths = controlPaths(this.#r.config, this.#r.ctx.env, this.#platform);
    if (paths.dir !== undefined && existsSync(paths.dir)) {
      try {
        await checkPrivateDir(paths.dir);
      } catch (error) {
        if (!(error instanceof ControlPathError)) throw error;
        const fix = /open to other users/.test(error.message)
          ? `chmod 700 ${this.#q(paths.dir)}`
          : `set XDG_RUNTIME_DIR to a directory of your own (or remove ${paths.dir})`;
        return check('service', 'problem', error.message, fix);
      }
    }
    let client: Awaited<ReturnType<typeof connectControl>>;
    try {
      client = await connectControl(paths.endpoint, { timeoutMs: 3_000 });
    } catch (error) {
      if (error instanceof ServiceNotRunningError) {
        return check(
          'service',
          'warn',
          `not running (nothing answers on ${paths.endpoint}); the browser starts it when the extension connects`,
          this.#serveCommand(),
        );
      }
      return check(
        'service',
        'problem',
        `${paths.endpoint}: ${(error as Error).message}`,
        this.#serveCommand(),
      );
    }
    try {
      const hello = await client.request('hello', { client: 'cli' }, { timeoutMs: 20_000 });
      this.#serviceStore = hello.credentialStore;
      const status = await client.request('status', {}, { timeoutMs: 10_000 });
      this.#status = status;
      const by = status.startedBy === 'bridge' ? 'the browser' : 'switchyard serve';
      return check(
        'service',
        'ok',
        `running (pid ${status.pid}, started by ${by}, listening on ${status.listening}, version ${hello.hostVersion})`,
      );
    } catch (error) {
      return check(
        'service',
        'problem',
        `something listens on ${paths.endpoint} but does not answer: ${(error as Error).message}`,
        `${this.#cli} stop, then ${this.#serveCommand()}`,
      );
    } finally {
      client.close();
    }
  }

  async #port(listen: { host: string; port: number } | undefined): Promise<Check> {
    if (listen === undefined)
      return check('port', 'warn', 'not checked: the config is not valid (see above)');
    const { host, port } = listen;
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    if (port === 0) return check('port', 'ok', 'port 0: a free port is picked at each start');
    const serving = this.#status?.listening;
    if (serving !== undefined && sameAddress(serving, host, port)) {
      return check('port', 'ok', `${address} is held by our service (pid ${this.#status?.pid})`);
    }
    const result = await tryListen(host, port);
    const otherPort = `${this.#cli} serve --listen ${host.includes(':') ? `[${host}]` : host}:${port + 1}`;
    if (result === 'free') {
      const note = serving !== undefined ? ` (the running service listens on ${serving} instead)` : '';
      return check('port', 'ok', `${address} is free${note}`);
    }
    if (result === 'EADDRINUSE') {
      const holder = this.#platform === 'linux' ? await portHolder(port) : undefined;
      const who = holder !== undefined ? `pid ${holder.pid} (${holder.command})` : 'another program';
      const find =
        this.#platform === 'linux'
          ? `ss -ltnp 'sport = :${port}'`
          : this.#platform === 'darwin'
            ? `lsof -nP -iTCP:${port} -sTCP:LISTEN`
            : `netstat -ano | findstr :${port}`;
      const stop = holder !== undefined ? `kill ${holder.pid}` : `find it with: ${find}, and stop it`;
      return check(
        'port',
        'problem',
        `${address} is in use by ${who}, not by switchyard: serve would fail with "address already in use"`,
        `${stop}; or use another port: ${otherPort} (listen.port in the config keeps it)`,
      );
    }
    if (result === 'EACCES') {
      return check(
        'port',
        'problem',
        `${address}: ports below 1024 need privileges this user does not have`,
        `use a port above 1023: ${this.#cli} serve --listen ${host}:1080 (listen.port in the config keeps it)`,
      );
    }
    if (result === 'EADDRNOTAVAIL') {
      return check(
        'port',
        'problem',
        `${address}: ${host} is not an address of this machine`,
        `${this.#cli} serve --listen 127.0.0.1:${port} (listen.host in the config keeps it)`,
      );
    }
    return check('port', 'problem', `${address} cannot be listened on (${result})`, otherPort);
  }

  async #credentials(): Promise<Check> {
    let store: CredentialStoreInfo;
    let whose: string;
    if (this.#serviceStore !== undefined) {
      store = this.#serviceStore;
      whose = 'the running service keeps upstream passwords in';
    } else {
      try {
        const prefer = credentialStorePreference(this.#r.ctx.env);
        const opened = await openCredentialStore({
          configDir: dirname(resolve(this.#r.config)),
          ...(prefer !== undefined ? { prefer } : {}),
          keyringTimeoutMs: this.#r.keyringTimeoutMs ?? 5_000,
          platform: this.#platform,
        });
        store = { kind: opened.kind, description: opened.description };
      } catch (error) {
        return check('credentials', 'problem', (error as Error).message, `unset ${CREDENTIAL_STORE_ENV}`);
      }
      whose = 'upstream passwords are kept in';
    }
    if (store.kind === 'keyring') return check('credentials', 'ok', `${whose} ${store.description}`);
    const chosen = store.description.includes(`${CREDENTIAL_STORE_ENV}=file`);
    const fix = chosen
      ? `unset ${CREDENTIAL_STORE_ENV}, then ${this.#cli} stop (the next start uses the OS keyring)`
      : this.#platform === 'linux'
        ? `run a Secret Service in your desktop session (gnome-keyring or KeePassXC), then ${this.#cli} stop (the next start uses it)`
        : `make the OS keyring available to this user, then ${this.#cli} stop (the next start uses it)`;
    return check(
      'credentials',
      'warn',
      `${whose} the ${store.description}. Anyone who can read your files can read these passwords.`,
      fix,
    );
  }

  /**
   * How the owner check (localClients: "owner") finds a client's socket: the exact netlink
   * lookup, or the /proc/net/tcp scan, which works but reads every TCP socket on the machine
   * per batch of lookups (slow with tens of thousands of them, TIME_WAIT included).
   */
  #ownerCheck(): Check {
    const status = ownerLookupStatus();
    if (status.error !== undefined) {
      return check(
        'owner check',
        'problem',
        `${status.error}: serve refuses to start`,
        `unset ${OWNER_LOOKUP_ENV}`,
      );
    }
    if (status.method === 'netlink') return check('owner check', 'ok', status.description);
    const root = resolve(dirname(this.#hostScript), '..', '..');
    const build =
      'install a C compiler and headers (Debian, as root: apt-get install gcc libc6-dev linux-libc-dev), then: ' +
      `cd ${this.#q(root)} && rm -f dist/host/sockdiag.node && node scripts/build-native.mjs`;
    const restart = `${this.#cli} stop (the next start uses netlink sock_diag)`;
    const unset = `unset ${OWNER_LOOKUP_ENV}`;
    // Built and loaded, yet the kernel would not answer: a sandbox refusing netlink sockets.
    const allow = `let switchyard open NETLINK_SOCK_DIAG sockets (a container or seccomp policy refuses them); then ${restart}`;
    const fix = !status.fallback
      ? status.unavailable === undefined
        ? `${unset}, then ${restart}`
        : `${build}; ${unset}; then ${restart}`
      : sockDiag() !== undefined
        ? allow
        : `${build}; then ${restart}`;
    return check(
      'owner check',
      'warn',
      `${status.description}: it works, but reads every TCP socket on the machine, slow when many are open`,
      fix,
    );
  }
}

function sameAddress(listening: string, host: string, port: number): boolean {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(listening);
  return m !== null && m[1] === host && Number(m[2]) === port;
}

function tryListen(host: string, port: number): Promise<'free' | string> {
  return new Promise((resolveListen) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolveListen(error.code ?? error.message));
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolveListen('free'));
    });
  });
}

/**
 * Who listens on a TCP port, from /proc: the socket's inode in /proc/net/tcp{,6}, then the
 * process holding an fd to it. Only processes we may look into are found.
 */
async function portHolder(port: number): Promise<{ pid: number; command: string } | undefined> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
      if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && f[9] !== undefined) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode !== undefined && inodes.has(inode)) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        const command = cmdline.split('\0').filter(Boolean).join(' ').slice(0, 120) || '?';
        return { pid: Number(pid), command };
      }
    }
  }
  return undefined;
}

export function runDoctor(request: DoctorRequest): Promise<Check[]> {
  return new Doctor(request).run();
}

export function doctorExitCode(checks: readonly Check[]): 0 | 1 {
  return checks.some((c) => c.status === 'problem') ? 1 : 0;
}

export function formatChecks(checks: readonly Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.status.padEnd(8)} ${c.name}: ${c.summary}`);
    for (const d of c.details) lines.push(`         - ${d}`);
    if (c.fix !== undefined && c.status !== 'ok') lines.push(`         fix: ${c.fix}`);
  }
  const problems = checks.filter((c) => c.status === 'problem').length;
  const warnings = checks.filter((c) => c.status === 'warn').length;
  lines.push('');
  if (problems === 0 && warnings === 0) lines.push('Everything checks out.');
  else {
    const parts = [
      problems > 0 ? `${problems} problem${problems === 1 ? '' : 's'}` : '',
      warnings > 0 ? `${warnings} warning${warnings === 1 ? '' : 's'}` : '',
    ].filter(Boolean);
    lines.push(`${parts.join(', ')}. Run the fix commands above, then doctor again.`);
  }
  return `${lines.join('\n')}\n`;
}
