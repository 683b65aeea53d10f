/**
 * The extension end to end in Debian's Chromium, headless: the unpacked build, the real bridge
 * and service registered in the test profile's NativeMessagingHosts, a real upstream that wants
 * a password, and sites on proxied.test and direct.test (mapped to loopback by the browser).
 *
 * One browser for the whole file, tests in order: each one leaves the extension on, with the
 * host running, for the next. Everything runs in a temp dir with its own XDG_CONFIG_HOME,
 * XDG_RUNTIME_DIR and HOME, so the host's config, service socket and credential file are the
 * test's own.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page, Worker } from 'playwright-core';
import type { UiRequest, UiResponse, UiResultMap, UiState } from '../../extension/shared/ui-protocol.ts';
import { freePort } from '../helpers/reference-servers.ts';
import { REPO_ROOT, type SwitchyardProcess } from '../helpers/switchyard-process.ts';
import { buildExtension, ensureHostFresh } from './helpers/build.ts';
import {
  extensionIdOf,
  launchChromium,
  otherServiceWorker,
  serviceWorkerOf,
  waitFor,
} from './helpers/chromium.ts';
import { filesContaining } from './helpers/files.ts';
import {
  browserEnv,
  hostConfig,
  makeTestDirs,
  startExit,
  stateWaiter,
  stopBridgeServices,
  uiResult,
  writeHostConfig,
} from './helpers/host-session.ts';
import { type InstalledHost, installNativeHost } from './helpers/native-host.ts';
import { type Site, startSite } from './helpers/sites.ts';

const PASSWORD = 'e2e-Upstream-Secret-5b7f1c';
const UPSTREAM_USER = 'e2e-user';
const FIXTURE_EXT = join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'other-proxy-ext');
const SCREENSHOTS = join(REPO_ROOT, 'docs', 'screenshots');

// What the test reads inside the browser. Types only: the functions passed to evaluate() run
// there, where `chrome` and the worker's test hooks exist.
interface ProxySettingValue {
  readonly mode?: string;
  readonly pacScript?: { readonly data?: string; readonly mandatory?: boolean };
}
interface ProxySettingDetails {
  readonly levelOfControl: string;
  readonly value: ProxySettingValue;
}
interface StorageAreaLike {
  get(keys: null): Promise<Record<string, unknown>>;
}
interface ChromeLike {
  readonly proxy: { readonly settings: { get(details: object): Promise<ProxySettingDetails> } };
  readonly action: {
    getBadgeText(details: object): Promise<string>;
    getTitle(details: object): Promise<string>;
    getPopup(details: object): Promise<string>;
  };
  readonly storage: {
    readonly local: StorageAreaLike;
    readonly sync: StorageAreaLike;
    readonly session: StorageAreaLike;
  };
  readonly runtime: { sendMessage(message: unknown): Promise<unknown> };
}
interface WorkerGlobal {
  readonly chrome: ChromeLike;
  readonly switchyardTest: {
    handleCommand(command: string): Promise<UiState | undefined>;
    getState(): UiState;
  };
}
interface FixtureGlobal {
  takeProxy(): Promise<void>;
  releaseProxy(): Promise<void>;
}

let tmp: string;
let userDataDir: string;
let configFile: string;
let extensionId: string;
let popupPath: string;
let optionsPath: string;
let install: () => InstalledHost;
let upstream: SwitchyardProcess;
let proxied: Site;
let direct: Site;
let hostPort: number;
let context: BrowserContext | undefined;
let sw: Worker;
let page: Page;
/** Every service PID the test saw, to stop whatever of them still runs at the end. */
const servicePids = new Set<number>();

function state(): Promise<UiState> {
  return sw.evaluate(() => (globalThis as unknown as WorkerGlobal).switchyardTest.getState());
}

const waitState = stateWaiter(state, servicePids);

function proxySetting(): Promise<ProxySettingDetails> {
  return sw.evaluate(() =>
    (globalThis as unknown as WorkerGlobal).chrome.proxy.settings.get({ incognito: false }),
  );
}

function toolbar(): Promise<{ text: string; title: string }> {
  return sw.evaluate(async () => {
    const { action } = (globalThis as unknown as WorkerGlobal).chrome;
    return { text: await action.getBadgeText({}), title: await action.getTitle({}) };
  });
}

/** A UiRequest from an extension page, the way the popup and options pages send them. */
async function ask<R extends UiRequest>(from: Page, request: R): Promise<UiResultMap[R['type']]> {
  const response = (await from.evaluate(
    (r) => (globalThis as unknown as WorkerGlobal).chrome.runtime.sendMessage(r),
    request,
  )) as UiResponse<R['type']>;
  return uiResult(request, response);
}

function extensionUrl(path: string): string {
  return `chrome-extension://${extensionId}/${path}`;
}

/** The popup as a tab, describing `siteUrl` (a tab-sized popup's own tab would be itself). */
async function openPopup(siteUrl: string): Promise<void> {
  await page.setViewportSize({ width: 400, height: 640 });
  await page.goto(`${extensionUrl(popupPath)}?url=${encodeURIComponent(siteUrl)}`);
  await page.locator('#toggle').waitFor();
}

before(async () => {
  const dirs = makeTestDirs('switchyard-e2e-');
  tmp = dirs.tmp;
  userDataDir = join(tmp, 'profile');
  mkdirSync(userDataDir, { recursive: true, mode: 0o700 });

  const hostScript = ensureHostFresh();
  const extensionDir = buildExtension(join(tmp, 'extension'));
  extensionId = extensionIdOf(extensionDir);
  const built = JSON.parse(readFileSync(join(extensionDir, 'manifest.json'), 'utf8')) as {
    action: { default_popup: string };
    options_page: string;
  };
  popupPath = built.action.default_popup;
  optionsPath = built.options_page;

  [upstream, proxied, direct, hostPort] = await Promise.all([
    startExit(UPSTREAM_USER, PASSWORD, ['proxied.test', 'direct.test']),
    startSite('proxied.test'),
    startSite('direct.test'),
    freePort(),
  ]);

  configFile = writeHostConfig(dirs, hostConfig(hostPort, { port: upstream.port, username: UPSTREAM_USER }));
  const env = browserEnv(dirs);
  // Registered by the second test: the first one sees the browser without it.
  install = () =>
    installNativeHost({ hostScript, userDataDir, extensionId, env, scratchDir: join(tmp, 'bin') });
  // The fixture goes last: the extension installed last wins a setting both of them set.
  context = await launchChromium({ userDataDir, extensions: [extensionDir, FIXTURE_EXT], env });
  sw = await serviceWorkerOf(context, extensionId);
  page = await context.newPage();
});

after(async () => {
  await context?.close().catch(() => undefined);
  stopBridgeServices(servicePids);
  await Promise.allSettled([upstream?.stop(), proxied?.close(), direct?.close()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('without the host registered, the badge and the popup say it is not installed', async () => {
  const s = await waitState('host-missing', (x) => x.host.state === 'host-missing');
  assert.equal(s.host.error, 'Specified native messaging host not found.');
  assert.deepEqual(
    s.problems.map((p) => p.kind),
    ['host-missing'],
  );
  const bar = await toolbar();
  assert.equal(bar.text, '!');
  assert.match(bar.title, /Switchyard is off, but there is a problem: The Switchyard host is not installed/);
  await openPopup(proxied.url());
  await page.getByText(s.installCommand, { exact: false }).first().waitFor();
});

test('once registered, the background connects to the host (Reconnect, no waiting)', async (t) => {
  const installed = install();
  t.diagnostic(`native host manifest ${installed.how}: ${installed.manifestPath}`);
  // Chromium reads the manifest at every connectNative: no restart needed.
  await ask(page, { type: 'host.reconnect' });
  const s = await waitState(
    'the host connected with its config',
    (x) => x.host.state === 'connected' && !!x.config,
  );
  assert.equal(s.host.hello?.protocol, 1);
  // The service is the test's: its config file is the one written above.
  assert.equal(s.host.status?.configPath, configFile);
  assert.equal(s.enabled, false);
  assert.deepEqual(await toolbar(), { text: 'OFF', title: s.badge.title });
  assert.match(s.badge.title, /off/i);
});

test('the upstream password is saved through the extension into the host credential store', async () => {
  await openPopup(proxied.url());
  const saved = await ask(page, {
    type: 'host.request',
    request: { type: 'credential.set', params: { upstreamId: 'exit', password: PASSWORD } },
  });
  assert.deepEqual(saved, { upstreamId: 'exit', saved: true });
  const s = await waitState('passwordSaved for exit', (x) => x.passwordSaved.exit === true);
  assert.equal(JSON.stringify(s).includes(PASSWORD), false);
});

test('turning on from the popup applies a fail-closed PAC made from the host rules', async () => {
  await openPopup(proxied.url());
  const toggle = page.locator('#toggle');
  assert.equal(await toggle.getAttribute('aria-checked'), 'false');
  await toggle.click();
  await waitFor('the switch to show on', async () =>
    (await toggle.getAttribute('aria-checked')) === 'true' ? true : undefined,
  );
  const setting = await waitFor('the PAC in force', async () => {
    const s = await proxySetting();
    return s.levelOfControl === 'controlled_by_this_extension' ? s : undefined;
  });
  assert.equal(setting.value.mode, 'pac_script');
  assert.equal(setting.value.pacScript?.mandatory, true);
  const pac = setting.value.pacScript?.data ?? '';
  assert.match(pac, new RegExp(`SOCKS5 127\\.0\\.0\\.1:${hostPort}`));
  assert.doesNotMatch(pac, /; DIRECT/, 'fail-closed: no DIRECT fallback after the proxy');
  const s = await waitState('on', (x) => x.enabled && x.badge.text === 'ON');
  assert.deepEqual(await toolbar(), { text: 'ON', title: s.badge.title });
});

test('proxied.test goes through the host and the upstream with a password; direct.test goes direct', async () => {
  const site = await context!.newPage();
  const r1 = await site.goto(proxied.url('/via-proxy'));
  assert.equal(r1?.status(), 200);
  assert.match(await site.content(), /Hello from proxied\.test/);
  const r2 = await site.goto(direct.url('/direct'));
  assert.equal(r2?.status(), 200);
  await site.close();

  assert.ok(proxied.requests.some((r) => r.url === '/via-proxy'));
  assert.ok(direct.requests.some((r) => r.url === '/direct'));
  // The upstream authenticated our host as its user and connected to proxied.test only.
  await upstream.waitForLog(/tunnel opened.*proxied\.test/);
  const upstreamLog = upstream.stderr();
  assert.match(
    upstreamLog,
    new RegExp(`user=${UPSTREAM_USER}.*proxied\\.test|proxied\\.test.*user=${UPSTREAM_USER}`),
  );
  assert.doesNotMatch(upstreamLog, /direct\.test/);
  // The host's own log (through the background): proxied.test by the *.test rule via the
  // route; never direct.test, which the browser sent straight to the site.
  const events = await waitFor('the host to log proxied.test', async () => {
    const log = await ask(page, { type: 'log.recent', limit: 1000 });
    return log.some((e) => e.host === 'proxied.test') ? log : undefined;
  });
  const tunnel = events.find((e) => e.host === 'proxied.test' && e.kind === 'opened');
  assert.ok(tunnel, JSON.stringify(events));
  assert.equal(tunnel.rule, '*.test via abroad');
  assert.match(tunnel.via ?? '', /abroad/);
  assert.equal(events.filter((e) => e.host === 'direct.test').length, 0);
});

test('"Always direct" in the popup puts a rule first, and the host routes by it', async () => {
  await openPopup('https://www.oneclick.test/some/page');
  await page.getByRole('button', { name: 'Always direct' }).click();
  await page.getByText(/Added a rule/).waitFor();
  const s = await waitState('the new rule', (x) => x.config?.rules[0]?.id === 'site-oneclick.test');
  assert.deepEqual(s.config?.rules[0]?.match, { hosts: [{ type: 'domain', value: '*.oneclick.test' }] });
  assert.deepEqual(s.config?.rules[0]?.target, { kind: 'direct' });
  assert.equal(s.config?.rules.length, 3);
  const route = await ask(page, {
    type: 'host.request',
    request: { type: 'route', params: { target: 'http://news.oneclick.test/' } },
  });
  assert.ok('ruleId' in route && route.ruleId === 'site-oneclick.test', JSON.stringify(route));
  assert.ok('target' in route && route.target.kind === 'direct');
  // The browser's PAC follows the host's rules.
  await waitFor('the PAC to know oneclick.test', async () =>
    (await proxySetting()).value.pacScript?.data?.includes('oneclick.test') ? true : undefined,
  );
});

test('a config over 1 MB reaches the extension, read from the host in parts', async () => {
  // 30,000 hosts entries: about 1.4 MB of config, over the 1 MB a native message may carry.
  const hosts: Record<string, string[]> = {};
  for (let i = 0; i < 30_000; i++) hosts[`host-${i}.intranet.test`] = ['10.0.0.1'];
  await openPopup('https://www.oneclick.test/');
  await ask(page, { type: 'host.request', request: { type: 'config.patch', params: { patch: { hosts } } } });
  const s = await waitState(
    'the large config',
    (x) => Object.keys(x.config?.hosts ?? {}).length === 30_000,
    30_000,
  );
  assert.deepEqual(s.config?.hosts['host-29999.intranet.test'], ['10.0.0.1']);
  assert.equal(s.config?.rules[0]?.id, 'site-oneclick.test', 'the rest of the config came along');
  // Back to a small config for the tests after this one.
  await ask(page, {
    type: 'host.request',
    request: { type: 'config.patch', params: { patch: { hosts: {} } } },
  });
  await waitState('the small config again', (x) => Object.keys(x.config?.hosts ?? {}).length === 0);
});

test('the keyboard command turns it off (the browser setting is cleared) and on again', async () => {
  const off = await sw.evaluate(() =>
    (globalThis as unknown as WorkerGlobal).switchyardTest.handleCommand('toggle-proxy'),
  );
  assert.equal(off?.enabled, false);
  const cleared = await waitFor('the setting to be cleared', async () => {
    const s = await proxySetting();
    return s.levelOfControl === 'controllable_by_this_extension' ? s : undefined;
  });
  assert.equal(cleared.value.mode, 'system');
  assert.equal((await toolbar()).text, 'OFF');

  // Off: proxied.test goes straight to the site (the browser maps the name to loopback), and
  // the host sees no new tunnel for it.
  const seen = (await ask(page, { type: 'log.recent', limit: 1000 })).filter(
    (e) => e.host === 'proxied.test',
  ).length;
  const site = await context!.newPage();
  assert.equal((await site.goto(proxied.url('/while-off')))?.status(), 200);
  await site.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const now = (await ask(page, { type: 'log.recent', limit: 1000 })).filter(
    (e) => e.host === 'proxied.test',
  ).length;
  assert.equal(now, seen);

  const on = await sw.evaluate(() =>
    (globalThis as unknown as WorkerGlobal).switchyardTest.handleCommand('toggle-proxy'),
  );
  assert.equal(on?.enabled, true);
  await waitFor('the PAC back', async () =>
    (await proxySetting()).levelOfControl === 'controlled_by_this_extension' ? true : undefined,
  );
  assert.equal((await toolbar()).text, 'ON');
});

test('turning off from the popup clears the browser setting', async () => {
  await openPopup(proxied.url());
  const toggle = page.locator('#toggle');
  await waitFor('the switch to show on', async () =>
    (await toggle.getAttribute('aria-checked')) === 'true' ? true : undefined,
  );
  await toggle.click();
  const cleared = await waitFor('the setting to be cleared', async () => {
    const s = await proxySetting();
    return s.levelOfControl === 'controllable_by_this_extension' ? s : undefined;
  });
  assert.equal(cleared.value.mode, 'system');
  await waitState('off', (x) => !x.enabled && x.badge.text === 'OFF');
  // And on again for what follows.
  await toggle.click();
  await waitState('on', (x) => x.enabled && x.badge.text === 'ON');
});

test('screenshots of the popup and the options page', async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await openPopup(proxied.url('/'));
  await page
    .locator('.decision')
    .waitFor({ timeout: 5_000 })
    .catch(() => undefined);
  await page.locator('main').screenshot({ path: join(SCREENSHOTS, 'popup.png') });
  const options = await context!.newPage();
  await options.setViewportSize({ width: 1100, height: 600 });
  await options.goto(extensionUrl(optionsPath));
  await options.waitForLoadState('networkidle').catch(() => undefined);
  await options.screenshot({ path: join(SCREENSHOTS, 'options.png'), fullPage: true });
  await options.close();
});

test('the password is nowhere in extension storage or the profile', async () => {
  const dump = await sw.evaluate(async () => {
    const { storage } = (globalThis as unknown as WorkerGlobal).chrome;
    return JSON.stringify({
      local: await storage.local.get(null),
      sync: await storage.sync.get(null),
      session: await storage.session.get(null),
    });
  });
  assert.equal(dump.includes(PASSWORD), false, dump);
  // What the background keeps is known fields only.
  assert.match(dump, /switchyard\.background/);
  // Close the pages so Chromium flushes its stores, then look at every byte of the profile:
  // "Local Extension Settings" (storage.local) included.
  assert.deepEqual(filesContaining(join(userDataDir, 'Default', 'Local Extension Settings'), PASSWORD), []);
  assert.deepEqual(filesContaining(userDataDir, PASSWORD), []);
});

test('the host stopped: the badge and the popup say so, and proxied sites fail closed', async () => {
  const running = await waitState('a status with the service PID', (x) => x.host.status !== undefined);
  const pid = running.host.status!.pid;
  // A config the service cannot load keeps the bridge from bringing it back at once.
  const saved = readFileSync(configFile, 'utf8');
  writeFileSync(configFile, 'this is not JSON\n', { mode: 0o600 });
  process.kill(pid, 'SIGKILL');
  servicePids.delete(pid);

  const down = await waitState(
    'the service-down problem',
    (x) => x.problems[0]?.kind === 'host-down' && /could not start/.test(x.host.error ?? ''),
    20_000,
  );
  assert.equal(down.host.state, 'host-error');
  assert.equal(down.enabled, true, 'stays on: fail-closed is the point');
  const bar = await toolbar();
  assert.equal(bar.text, '!');
  assert.match(bar.title, /Switchyard is on, but there is a problem: The Switchyard service is not running/);

  await openPopup(proxied.url('/'));
  await page
    .getByText(/The Switchyard service is not running/)
    .first()
    .waitFor();
  await page.locator('main').screenshot({ path: join(SCREENSHOTS, 'popup-host-down.png') });

  // A page each: a failed navigation's error page would interrupt the next one.
  const visit = async (url: string) => {
    const site = await context!.newPage();
    try {
      return (await site.goto(url))?.status();
    } finally {
      await site.close();
    }
  };
  await assert.rejects(visit(proxied.url('/while-down')), /ERR_PROXY_CONNECTION_FAILED/);
  assert.equal(
    proxied.requests.some((r) => r.url === '/while-down'),
    false,
    'no silent DIRECT',
  );
  assert.equal(await visit(direct.url('/while-down')), 200, 'direct rules need no host');

  // The option to fall back: proxied sites then go direct while the host is down.
  await ask(page, { type: 'settings.set', settings: { failMode: 'fallback-direct' } });
  await waitFor('the PAC with a DIRECT fallback', async () =>
    /; DIRECT/.test((await proxySetting()).value.pacScript?.data ?? '') ? true : undefined,
  );
  assert.equal(await visit(proxied.url('/fallback')), 200);
  assert.ok(proxied.requests.some((r) => r.url === '/fallback'));
  await ask(page, { type: 'settings.set', settings: { failMode: 'fail-closed' } });

  // Back: a good config, and "Reconnect" (what the popup's button sends).
  writeFileSync(configFile, saved, { mode: 0o600 });
  await ask(page, { type: 'host.reconnect' });
  const back = await waitState(
    'connected again',
    (x) => x.host.state === 'connected' && x.badge.text === 'ON',
    15_000,
  );
  assert.equal(back.problems.length, 0);
  let last: ProxySettingDetails | undefined;
  await waitFor('the fail-closed PAC back', async () => {
    last = await proxySetting();
    const data = last.value.pacScript?.data ?? '';
    return last.levelOfControl === 'controlled_by_this_extension' && !/; DIRECT/.test(data)
      ? true
      : undefined;
  }).catch((error: Error) => {
    throw new Error(
      `${error.message}: ${JSON.stringify(last).slice(0, 300)} ${JSON.stringify({ ...back, config: undefined })}`,
    );
  });
});

test('another extension taking the proxy setting is detected', async () => {
  const other = await otherServiceWorker(context!, [extensionId]);
  await other.evaluate(() => (globalThis as unknown as FixtureGlobal).takeProxy());
  const taken = await waitState('proxy-controlled-elsewhere', (x) =>
    x.problems.some((p) => p.kind === 'proxy-controlled-elsewhere'),
  );
  assert.equal(taken.proxyControl, 'controlled_by_other_extensions');
  const bar = await toolbar();
  assert.equal(bar.text, '!');
  assert.match(bar.title, /Another extension controls/);

  // Once it lets go, Switchyard's setting is in force again.
  await other.evaluate(() => (globalThis as unknown as FixtureGlobal).releaseProxy());
  await waitState(
    'back in control',
    (x) => x.proxyControl === 'controlled_by_this_extension' && x.badge.text === 'ON',
  );
  assert.equal((await proxySetting()).levelOfControl, 'controlled_by_this_extension');
});

test('settings: the toolbar button can toggle, and WebRTC protection needs its permission first', async () => {
  await openPopup(proxied.url());
  const popupOf = () => sw.evaluate(() => (globalThis as unknown as WorkerGlobal).chrome.action.getPopup({}));
  assert.equal(await popupOf(), extensionUrl(popupPath));
  const toggling = await ask(page, { type: 'settings.set', settings: { toolbarClick: 'toggle' } });
  assert.equal(toggling.settings.toolbarClick, 'toggle');
  // No popup on the button: a click reaches action.onClicked, which toggles.
  assert.equal(await popupOf(), '');
  await ask(page, { type: 'settings.set', settings: { toolbarClick: 'popup' } });
  assert.equal(await popupOf(), extensionUrl(popupPath));

  // The page asks for 'privacy' in its click handler; without it the background refuses.
  await assert.rejects(
    ask(page, { type: 'settings.set', settings: { webrtcProtection: true } }),
    /PERMISSION_REQUIRED/,
  );
  assert.equal((await state()).settings.webrtcProtection, false);
});

test('an upstream that fails shows up from the host log, for the site it failed', async () => {
  await upstream.stop();
  const site = await context!.newPage();
  await assert.rejects(site.goto(proxied.url('/upstream-down')));
  await site.close();
  const s = await waitState('upstream-failing', (x) => x.problems.some((p) => p.kind === 'upstream-failing'));
  const problem = s.problems.find((p) => p.kind === 'upstream-failing')!;
  assert.equal(problem.host, 'proxied.test');
  assert.match(problem.message, /^route abroad \(exit\) is failing: hop 1 \(exit\)/);
  const bar = await toolbar();
  assert.equal(bar.text, '!');
  assert.match(bar.title, /is failing/);
  await openPopup(proxied.url('/'));
  await page
    .getByText(/route abroad \(exit\) is failing/)
    .first()
    .waitFor();
});
