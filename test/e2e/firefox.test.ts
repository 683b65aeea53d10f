/**
 * The extension end to end in Debian's Firefox ESR, headless, through puppeteer-core (WebDriver
 * BiDi): the Firefox build as a temporary add-on, the real bridge and service registered by
 * `switchyard install --browser firefox` under a temporary HOME, a real upstream that wants a
 * password, and sites on proxied.test and direct.test.
 *
 * Firefox resolves direct.test to loopback by itself (network.dns.localDomains) and proxied.test
 * not at all: a page on proxied.test can only load when the name goes unresolved to the host
 * (proxyDNS) and the exit resolves it.
 *
 * One browser for the whole file, tests in order, each leaving the extension on for the next.
 * Everything runs in a temp dir with its own HOME, XDG dirs and credential file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'puppeteer-core';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import { GECKO_EXTENSION_ID, NATIVE_HOST_NAME } from '../../shared/messages/native-host.ts';
import type { Rule } from '../../shared/rules/types.ts';
import type { UiRequest, UiResponse, UiResultMap, UiState } from '../../extension/shared/ui-protocol.ts';
import { callerFrom } from '../../native-host/src/native-messaging/bridge.ts';
import { freePort } from '../helpers/reference-servers.ts';
import type { SwitchyardProcess } from '../helpers/switchyard-process.ts';
import { buildExtension, ensureHostFresh } from './helpers/build.ts';
import { waitFor } from './helpers/chromium.ts';
import { EXTENSION_ORIGIN, FIREFOX, type LaunchedFirefox, launchFirefox, pageAt } from './helpers/firefox.ts';
import {
  browserEnv,
  DIRECT_RULE,
  hostConfig,
  makeTestDirs,
  startExit,
  stateWaiter,
  stopBridgeServices,
  TEST_SITES_RULE,
  uiResult,
  writeHostConfig,
} from './helpers/host-session.ts';
import { type Site, startSite } from './helpers/sites.ts';

const PASSWORD = 'e2e-Firefox-Upstream-Secret-3c9d2e';
const UPSTREAM_USER = 'e2e-ff-user';

// What the test reads inside the browser. Types only: the functions passed to evaluate() run in
// the extension's page, where Firefox's `browser` exists, and reach the background page's test
// hooks through runtime.getBackgroundPage().
interface TestHooks {
  handleCommand(command: string): Promise<UiState | undefined>;
  getState(): UiState;
}
interface FirefoxApi {
  readonly runtime: {
    sendMessage(message: unknown): Promise<unknown>;
    openOptionsPage(): Promise<void>;
    getBackgroundPage(): Promise<{ readonly switchyardTest: TestHooks }>;
  };
  readonly contextualIdentities: {
    create(details: { name: string; color: string; icon: string }): Promise<{ cookieStoreId: string }>;
  };
  readonly tabs: { create(details: { url: string; cookieStoreId?: string }): Promise<{ id?: number }> };
}
interface ExtensionPageGlobal {
  readonly browser: FirefoxApi;
}
interface WebPageGlobal {
  readonly document: { readonly body: { readonly textContent: string | null } };
}

let tmp: string;
let home: string;
let configFile: string;
let env: NodeJS.ProcessEnv;
let hostScript: string;
let upstream: SwitchyardProcess;
let proxied: Site;
let direct: Site;
/** Routed like proxied.test, but Firefox can resolve it: it loads when it goes direct too. */
let fallback: Site;
let hostPort: number;
let firefox: LaunchedFirefox | undefined;
/** The extension's popup page, opened by the extension itself: the test's way in. */
let ext: Page;
/** The Work container's cookieStoreId, once the container test made it. */
let workContainer = '';
/** Every service PID the test saw, to stop whatever of them still runs at the end. */
const servicePids = new Set<number>();

function state(): Promise<UiState> {
  return ext.evaluate(async () => {
    const bg = await (globalThis as unknown as ExtensionPageGlobal).browser.runtime.getBackgroundPage();
    // Structured clone through BiDi: a plain copy of the state.
    return JSON.parse(JSON.stringify(bg.switchyardTest.getState())) as UiState;
  });
}

const waitState = stateWaiter(state, servicePids);

/** A UiRequest from the extension page, the way the popup and options pages send them. */
async function ask<R extends UiRequest>(request: R): Promise<UiResultMap[R['type']]> {
  const response = (await ext.evaluate(
    (r) => (globalThis as unknown as ExtensionPageGlobal).browser.runtime.sendMessage(r),
    request,
  )) as UiResponse<R['type']>;
  return uiResult(request, response);
}

async function hostLog(): Promise<readonly TunnelEvent[]> {
  return ask({ type: 'log.recent', limit: 1000 });
}

/** The arguments after `native-host` of the running bridge started for this manifest. */
function bridgeArgs(manifestPath: string): string[] | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').slice(0, -1);
    } catch {
      continue;
    }
    const at = argv.indexOf('native-host');
    if (at !== -1 && argv[at + 1] === manifestPath) return argv.slice(at + 1);
  }
  return undefined;
}

function bodyText(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as unknown as WebPageGlobal).document.body.textContent ?? '');
}

/** A tab of its own per visit: a failed navigation's error page would interrupt the next one. */
async function visit(url: string): Promise<{ status: number | undefined; body: string }> {
  const page = await firefox!.browser.newPage();
  try {
    const response = await page.goto(url, { timeout: 15_000 });
    const body = await bodyText(page);
    return { status: response?.status(), body };
  } finally {
    await page.close().catch(() => undefined);
  }
}

before(async () => {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: apt-get install firefox-esr`);
  const dirs = makeTestDirs('switchyard-e2e-ff-');
  tmp = dirs.tmp;
  home = dirs.home;

  hostScript = ensureHostFresh();
  const extensionDir = buildExtension(join(tmp, 'extension-firefox'), 'extension/vite.firefox.config.ts');

  [upstream, proxied, direct, fallback, hostPort] = await Promise.all([
    startExit(UPSTREAM_USER, PASSWORD, ['proxied.test', 'direct.test', 'fallback.test']),
    startSite('proxied.test'),
    startSite('direct.test'),
    startSite('fallback.test'),
    freePort(),
  ]);

  configFile = writeHostConfig(dirs, hostConfig(hostPort, { port: upstream.port, username: UPSTREAM_USER }));
  env = browserEnv(dirs);
  const installed = spawnSync(process.execPath, [hostScript, 'install', '--browser', 'firefox'], {
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
  const manifestPath = join(home, '.mozilla', 'native-messaging-hosts', `${NATIVE_HOST_NAME}.json`);
  if (installed.status !== 0 || !existsSync(manifestPath)) {
    throw new Error(`switchyard install --browser firefox failed: ${installed.stdout}${installed.stderr}`);
  }

  firefox = await launchFirefox({ env, localDomains: ['direct.test', 'fallback.test'] });
  await firefox.browser.installExtension(extensionDir);
  ext = await pageAt(firefox.browser, EXTENSION_ORIGIN).catch((error: Error) => {
    throw new Error(`${error.message}\nFirefox's stderr:\n${firefox?.stderr().slice(-2000)}`);
  });
});

after(async () => {
  await firefox?.close().catch(() => undefined);
  stopBridgeServices(servicePids);
  await Promise.allSettled([upstream?.stop(), proxied?.close(), direct?.close(), fallback?.close()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the bridge starts with Firefox arguments and the background gets the host config', async () => {
  const s = await waitState(
    'the host connected with its config',
    (x) => x.host.state === 'connected' && !!x.config,
    15_000,
  );
  assert.equal(s.host.status?.configPath, configFile);
  assert.equal(s.enabled, false);
  assert.equal(s.proxyControl, 'controllable_by_this_extension');
  // Firefox passes the manifest path and the extension id: the bridge runs with them, and
  // makes of them a Firefox caller.
  const manifestPath = join(home, '.mozilla', 'native-messaging-hosts', `${NATIVE_HOST_NAME}.json`);
  const args = await waitFor('the bridge process', async () => bridgeArgs(manifestPath));
  assert.deepEqual(args, [manifestPath, GECKO_EXTENSION_ID]);
  assert.deepEqual(callerFrom(args), {
    browser: 'firefox',
    origin: GECKO_EXTENSION_ID,
    manifest: manifestPath,
  });
});

test('the upstream password is saved through the extension into the host credential store', async () => {
  const saved = await ask({
    type: 'host.request',
    request: { type: 'credential.set', params: { upstreamId: 'exit', password: PASSWORD } },
  });
  assert.deepEqual(saved, { upstreamId: 'exit', saved: true });
  await waitState('passwordSaved for exit', (x) => x.passwordSaved.exit === true);
});

test('turning on from the popup page routes through proxy.onRequest', async () => {
  const toggle = await ext.waitForSelector('#toggle');
  assert.equal(await toggle?.evaluate((el) => el.getAttribute('aria-checked')), 'false');
  await toggle?.click();
  const s = await waitState('on', (x) => x.enabled && x.badge.text === 'ON');
  assert.equal(s.proxyControl, 'controlled_by_this_extension');
  assert.deepEqual(s.problems, []);
});

test('proxied.test goes through the host and the password-protected upstream, unresolved; direct.test direct', async () => {
  const p = await visit(proxied.url('/via-proxy'));
  assert.equal(p.status, 200);
  assert.match(p.body, /Hello from proxied\.test/);
  const d = await visit(direct.url('/direct'));
  assert.equal(d.status, 200);
  assert.ok(proxied.requests.some((r) => r.url === '/via-proxy'));
  assert.ok(direct.requests.some((r) => r.url === '/direct'));

  // The host got the name, not an address: Firefox never resolved it (it could not: only
  // direct.test is in its localDomains), the exit did.
  const events = await waitFor('the host to log proxied.test', async () => {
    const log = await hostLog();
    return log.some((e) => e.host === 'proxied.test' && e.kind === 'opened') ? log : undefined;
  });
  const tunnel = events.find((e) => e.host === 'proxied.test' && e.kind === 'opened')!;
  assert.equal(tunnel.dest, `proxied.test:${proxied.port}`);
  assert.equal(tunnel.rule, '*.test via abroad');
  assert.match(tunnel.via ?? '', /abroad/);
  assert.equal(events.filter((e) => e.host === 'direct.test').length, 0, 'direct.test skipped the host');
  assert.equal(
    events.some((e) => /^127\.|^\[?::1/.test(e.dest)),
    false,
    'no destination arrived resolved',
  );
  // The upstream authenticated our host as its user and was asked for the name too.
  await upstream.waitForLog(/tunnel opened.*proxied\.test/);
  assert.match(
    upstream.stderr(),
    new RegExp(`user=${UPSTREAM_USER}.*proxied\\.test|proxied\\.test.*user=${UPSTREAM_USER}`),
  );
  assert.doesNotMatch(upstream.stderr(), /direct\.test/);
});

test('a container rule sends the Work container through the route; the same site outside goes direct', async () => {
  const cookieStoreId = await ext.evaluate(
    async () =>
      (
        await (globalThis as unknown as ExtensionPageGlobal).browser.contextualIdentities.create({
          name: 'Work',
          color: 'blue',
          icon: 'briefcase',
        })
      ).cookieStoreId,
  );
  assert.match(cookieStoreId, /^firefox-container-\d+$/);
  workContainer = cookieStoreId;
  // What the rule editor saves: the container rule first, through the host.
  const workRule: Rule = {
    id: 'work',
    name: 'Work container via abroad',
    enabled: true,
    match: { contexts: [cookieStoreId] },
    target: { kind: 'route', routeId: 'abroad' },
  };
  await ask({
    type: 'host.request',
    request: { type: 'config.patch', params: { patch: { rules: [workRule, DIRECT_RULE, TEST_SITES_RULE] } } },
  });
  await waitState('the container rule', (x) => x.config?.rules[0]?.id === 'work');
  // The host alone would send direct.test direct: it skips rules it cannot see.
  const route = await ask({
    type: 'host.request',
    request: { type: 'route', params: { target: direct.url('/') } },
  });
  assert.ok('ruleId' in route && route.ruleId === 'direct-test', JSON.stringify(route));

  await ext.evaluate(
    (url, id) =>
      (globalThis as unknown as ExtensionPageGlobal).browser.tabs.create({ url, cookieStoreId: id }),
    direct.url('/in-work'),
    cookieStoreId,
  );
  await waitFor('the Work tab to load direct.test', async () =>
    direct.requests.some((r) => r.url === '/in-work') ? true : undefined,
  );
  const inWork = await waitFor('the host to log direct.test via the container rule', async () =>
    (await hostLog()).find((e) => e.host === 'direct.test' && e.kind === 'opened'),
  );
  assert.equal(inWork.rule, 'Work container via abroad (in the browser)');
  assert.match(inWork.via ?? '', /abroad/);
  await upstream.waitForLog(/tunnel opened.*direct\.test/);

  // Outside the container the same site still goes direct: no new tunnel for it.
  const before = (await hostLog()).filter((e) => e.host === 'direct.test').length;
  assert.equal((await visit(direct.url('/outside'))).status, 200);
  assert.ok(direct.requests.some((r) => r.url === '/outside'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await hostLog()).filter((e) => e.host === 'direct.test').length, before);
});

test('the options page lists the container rule, and its editor shows the container picker', async () => {
  await ext.evaluate(() => (globalThis as unknown as ExtensionPageGlobal).browser.runtime.openOptionsPage());
  const options = await pageAt(firefox!.browser, `${EXTENSION_ORIGIN}extension/options/index.html`);
  await (await options.waitForSelector('#tab-rules'))?.click();
  await waitFor('the rules on the options page', async () => {
    const text = await bodyText(options);
    return text.includes('Work container via abroad') && text.includes('*.test via abroad')
      ? true
      : undefined;
  });
  // The editor of that rule: Firefox's containers listed, the Work one ticked.
  await (await options.waitForSelector('button[aria-label="Edit Work container via abroad"]'))?.click();
  const work = await options.waitForSelector(`#rule-context-${workContainer}`);
  assert.equal(await work?.evaluate((el) => (el as unknown as { checked: boolean }).checked), true);
  assert.ok(await options.$('#rule-context-private'), 'private windows are offered');
  await options.close();
});

test('the host stopped: proxied sites fail closed, and go direct in fallback mode', async () => {
  assert.equal((await visit(fallback.url('/up'))).status, 200);
  await waitFor('fallback.test through the host', async () =>
    (await hostLog()).some((e) => e.host === 'fallback.test' && e.kind === 'opened') ? true : undefined,
  );
  const running = await waitState('a status with the service PID', (x) => x.host.status !== undefined);
  // A config the service cannot load keeps the bridge from bringing it back at once.
  const saved = readFileSync(configFile, 'utf8');
  writeFileSync(configFile, 'this is not JSON\n', { mode: 0o600 });
  process.kill(running.host.status!.pid, 'SIGKILL');
  servicePids.delete(running.host.status!.pid);
  const down = await waitState(
    'the service-down problem',
    (x) => x.problems[0]?.kind === 'host-down',
    20_000,
  );
  assert.equal(down.enabled, true, 'stays on: fail-closed is the point');

  await assert.rejects(visit(proxied.url('/while-down')), /NS_ERROR_PROXY_CONNECTION_REFUSED/);
  await assert.rejects(visit(fallback.url('/while-down')), /NS_ERROR_PROXY_CONNECTION_REFUSED/);
  assert.equal(
    fallback.requests.some((r) => r.url === '/while-down'),
    false,
    'no silent DIRECT',
  );
  assert.equal((await visit(direct.url('/while-down'))).status, 200, 'direct rules need no host');

  // Fallback: Firefox fails over from the dead proxy to DIRECT, as the PAC's '; DIRECT' on Chrome.
  await ask({ type: 'settings.set', settings: { failMode: 'fallback-direct' } });
  assert.equal((await visit(fallback.url('/fallback'))).status, 200);
  assert.ok(fallback.requests.some((r) => r.url === '/fallback'));
  await ask({ type: 'settings.set', settings: { failMode: 'fail-closed' } });

  writeFileSync(configFile, saved, { mode: 0o600 });
  await ask({ type: 'host.reconnect' });
  await waitState('connected again', (x) => x.host.state === 'connected' && x.problems.length === 0, 15_000);
  assert.equal((await visit(proxied.url('/back'))).status, 200);
});

test('the keyboard command turns it off: Firefox then cannot even resolve proxied.test', async () => {
  const off = await ext.evaluate(async () => {
    const bg = await (globalThis as unknown as ExtensionPageGlobal).browser.runtime.getBackgroundPage();
    const s = await bg.switchyardTest.handleCommand('toggle-proxy');
    return s?.enabled;
  });
  assert.equal(off, false);
  const s = await waitState('off', (x) => !x.enabled && x.badge.text === 'OFF');
  assert.equal(s.proxyControl, 'controllable_by_this_extension');
  const seen = (await hostLog()).length;
  await assert.rejects(visit(proxied.url('/while-off')), /NS_ERROR_UNKNOWN_HOST/);
  assert.equal(
    proxied.requests.some((r) => r.url === '/while-off'),
    false,
  );
  assert.equal((await visit(direct.url('/while-off'))).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await hostLog()).length, seen, 'nothing went through the host while off');
});
