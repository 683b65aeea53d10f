/**
 * The background as one object: it owns the state machine (state.ts), the native port
 * (host-connection.ts) and every effect of a state change: the proxy setting, the toolbar
 * badge and icon, storage, and the pushes to open pages. Each fact becomes an Action; after
 * each one, `settle` brings the browser in line with the new state.
 */
import browser, { type Runtime } from 'webextension-polyfill';
import { NATIVE_HOST_NAME } from '../../shared/messages/native-host.ts';
import { readConfigInParts } from '../../shared/messages/config-parts.ts';
import type { ConfigResult, HostEvent, RequestType, ResultMap } from '../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import type { RuleTarget } from '../../shared/rules/types.ts';
import type { BrowserSettings, HostRequest, SiteInfo, UiPush, UiState } from '../shared/ui-protocol.ts';
import { applyBadge, badgeLook } from './badge.ts';
import {
  type ConnectionEvent,
  HostConnection,
  HostRequestError,
  type NativePort,
  isUnreachable,
} from './host-connection.ts';
import { type ProxyInfo, type RequestDetails, RequestRouting } from './firefox-routing.ts';
import { applyIcon } from './icon.ts';
import {
  type ApplyOutcome,
  type ProxyErrorDetails,
  ProxySetting,
  type SettingApi,
  levelOf,
  proxyPlan,
} from './proxy-control.ts';
import { hostOf, withSiteRule } from './site-rule.ts';
import { type Action, type BackgroundState, initialState, rememberedOf, reduce, uiStateOf } from './state.ts';
import { RememberedStore, type StorageArea, loadRemembered, parseSettings } from './storage.ts';
import { type PolicySetting, applyWebrtc, hasWebrtcPermission } from './webrtc.ts';

export const TOGGLE_COMMAND = 'toggle-proxy';
export const OPEN_POPUP_MENU_ID = 'switchyard-open-popup';
const LOG_KEEP = 1000;
const SITE_ERRORS_KEEP = 20;
/** How long a request that woke the background waits for the host's rules (Firefox). */
const RULES_WAIT_MS = 3000;

/** A failure a page should see with its code (UiError). */
export class UiRequestError extends Error {
  override readonly name = 'UiRequestError';
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Requests a page may not send through: the background's own log subscription rides on them. */
const RESERVED_REQUESTS: ReadonlySet<RequestType> = new Set(['log.subscribe', 'log.unsubscribe']);

function popupPath(): string {
  const manifest = browser.runtime.getManifest();
  return manifest.action?.default_popup ?? '';
}

export class Background {
  private state: BackgroundState = initialState();
  private ui: UiState = uiStateOf(this.state);
  private badgeText = '';
  private iconKey = '';
  private restored = false;
  private readonly host: HostConnection;
  /** Chrome: the proxy setting, a PAC script. */
  private readonly proxy: ProxySetting | undefined;
  /** Firefox: the answers to proxy.onRequest. */
  private readonly routing: RequestRouting | undefined;
  private readonly store: RememberedStore;
  private readonly uiPorts = new Set<Runtime.Port>();
  private log: TunnelEvent[] = [];
  private planInputs: readonly unknown[] = [];
  private readonly started: Promise<void>;
  private startResolve: () => void = () => undefined;
  private readonly waiters = new Set<() => void>();

  /**
   * `routeRequests`: Firefox, where proxy.onRequest routes each request and the proxy setting
   * (which there needs private-window access to change) is never touched.
   */
  constructor(options: { readonly routeRequests: boolean }) {
    this.proxy = options.routeRequests
      ? undefined
      : new ProxySetting(browser.proxy.settings as unknown as SettingApi);
    this.routing = options.routeRequests ? new RequestRouting() : undefined;
    this.store = new RememberedStore(browser.storage.local as unknown as StorageArea);
    this.host = new HostConnection({
      connect: () => browser.runtime.connectNative(NATIVE_HOST_NAME) as unknown as NativePort,
      lastError: () => browser.runtime.lastError?.message,
      hello: {
        client: options.routeRequests ? 'firefox' : 'chrome',
        extensionVersion: browser.runtime.getManifest().version,
      },
      onChange: (event) => this.onConnection(event),
    });
    this.started = new Promise((resolve) => {
      this.startResolve = resolve;
    });
  }

  /** Storage first (the toggle and settings it remembers), then the port. */
  async start(): Promise<void> {
    const remembered = await loadRemembered(browser.storage.local as unknown as StorageArea);
    this.restored = true;
    this.dispatch({ type: 'restored', remembered });
    if (this.proxy) this.dispatch({ type: 'proxy.control', level: await this.proxy.level(), at: Date.now() });
    this.host.start();
    this.startResolve();
    await Promise.allSettled([this.applyToolbar(), this.applyWebrtcSetting(false)]);
  }

  /** Listeners registered at the top level may fire before start() has read storage. */
  ready(): Promise<void> {
    return this.started;
  }

  uiState(): UiState {
    return this.ui;
  }

  dispatch(action: Action): void {
    const next = reduce(this.state, action);
    // The reducer returns the same object when nothing changed (most log events).
    if (next === this.state) return;
    this.state = next;
    this.settle();
  }

  // ---- effects ----------------------------------------------------------------------------

  private settle(): void {
    const ui = uiStateOf(this.state);
    this.ui = ui;
    this.push({ type: 'state', state: ui });
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    const badge = JSON.stringify(ui.badge);
    if (badge !== this.badgeText) {
      this.badgeText = badge;
      void applyBadge(browser.action, ui.badge).catch(() => undefined);
    }
    const look = badgeLook({ enabled: ui.enabled, problems: ui.problems });
    const iconKey = `${look}/${ui.enabled}`;
    if (iconKey !== this.iconKey) {
      this.iconKey = iconKey;
      void applyIcon(browser.action, look, ui.enabled).catch(() => undefined);
    }
    this.settleProxy();
    if (this.restored) void this.store.save(rememberedOf(this.state)).catch(() => undefined);
  }

  private settleProxy(): void {
    const s = this.state;
    // A new PAC for 10,000 rules is a few hundred kB: only make one when an input changed.
    const inputs = [
      s.enabled,
      s.config,
      s.endpoint?.host,
      s.endpoint?.port,
      s.settings.failMode,
      s.pendingToggle,
    ];
    if (inputs.length === this.planInputs.length && inputs.every((v, i) => v === this.planInputs[i])) return;
    this.planInputs = inputs;
    void this.applyProxy();
  }

  private async applyProxy(force = false): Promise<void> {
    // Firefox's plan is in force before anything awaits: the next request already uses it.
    const outcome: ApplyOutcome = this.routing
      ? this.routing.apply(this.state)
      : await (this.proxy?.apply(proxyPlan(this.state), force) ?? { kind: 'unchanged' });
    if (outcome.kind === 'failed')
      this.dispatch({ type: 'pac.failed', message: outcome.message, at: Date.now() });
    else if (outcome.kind === 'applied') {
      this.dispatch({ type: 'pac.applied' });
      this.dispatch({ type: 'proxy.control', level: outcome.level, at: Date.now() });
    }
  }

  private push(message: UiPush): void {
    for (const port of this.uiPorts) {
      try {
        port.postMessage(message);
      } catch {
        this.uiPorts.delete(port);
      }
    }
  }

  /** Resolves at the next change of the UI state, or after `ms`. */
  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.add(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- the host -----------------------------------------------------------------------------

  private onConnection(event: ConnectionEvent): void {
    const at = Date.now();
    switch (event.type) {
      case 'connecting':
        this.dispatch({ type: 'port.connecting', at });
        return;
      case 'ready':
        this.dispatch({ type: 'port.ready', hello: event.hello, at });
        void this.sync();
        return;
      case 'closed':
        this.dispatch({ type: 'port.closed', error: event.error, at });
        return;
      case 'service-down':
        this.dispatch({ type: 'service.down', error: event.error, at });
        return;
      case 'event':
        this.onHostEvent(event.event);
        return;
    }
  }

  private onHostEvent(event: HostEvent): void {
    switch (event.event) {
      case 'config':
        this.dispatch({ type: 'config.changed', revision: event.data.revision, enabled: event.data.enabled });
        if (event.data.revision !== this.state.revision) void this.refreshConfig();
        return;
      case 'status':
        this.dispatch({ type: 'status', status: event.data });
        return;
      case 'log': {
        const events = event.data.events;
        this.log = [...this.log, ...events].slice(-LOG_KEEP);
        this.dispatch({ type: 'log', events });
        this.push({ type: 'log', events });
        return;
      }
      case 'service':
        // host-connection.ts turns this one into 'service-down'.
        return;
    }
  }

  /** After hello: everything the state needs, then the log, then a toggle made meanwhile. */
  private async sync(): Promise<void> {
    try {
      const status = await this.host.request('status', {});
      this.dispatch({ type: 'status', status });
      await this.refreshConfig();
      const pending = this.state.pendingToggle;
      if (pending !== undefined) {
        const result = await this.host.request('toggle.set', { enabled: pending });
        this.dispatch({ type: 'toggled', enabled: result.enabled, pending: false });
      }
      await this.host.request('log.subscribe', {});
      const page = await this.host.request('log.page', { limit: 200 });
      this.log = page.events.slice(-LOG_KEEP);
    } catch (error) {
      // Unreachable: the connection reports it and retries. Anything else is worth a line.
      if (!isUnreachable(error)) console.warn('Switchyard: syncing with the host failed:', error);
    }
  }

  /** The host's config, in parts when it is too large for one native message. */
  private async fetchConfig(): Promise<ConfigResult> {
    try {
      return await this.host.request('config.get', {});
    } catch (error) {
      if (!(error instanceof HostRequestError && error.code === 'TOO_LARGE')) throw error;
    }
    return readConfigInParts(
      (offset, revision) =>
        this.host.request('config.part', revision === undefined ? { offset } : { offset, revision }),
      (error) => error instanceof HostRequestError && error.code === 'CHANGED',
    );
  }

  private async refreshConfig(): Promise<void> {
    const result = await this.fetchConfig();
    this.dispatch({
      type: 'config',
      config: result.config,
      passwordSaved: result.passwordSaved,
      revision: result.revision,
    });
  }

  // ---- what pages, the shortcut and the toolbar ask for ---------------------------------------

  async handleCommand(command: string): Promise<UiState | undefined> {
    if (command !== TOGGLE_COMMAND) return undefined;
    return this.toggle();
  }

  /** Through the host when it answers; locally (and told to it later) when it does not. */
  async toggle(enabled?: boolean): Promise<UiState> {
    await this.ready();
    const target = enabled ?? !this.state.enabled;
    if (this.host.isReady) {
      try {
        const result = await this.host.request('toggle.set', { enabled: target });
        this.dispatch({ type: 'toggled', enabled: result.enabled, pending: false });
        return this.ui;
      } catch (error) {
        if (!isUnreachable(error)) throw error;
      }
    }
    // Turning off must work with the host gone: a fail-closed proxy would otherwise lock the
    // user out of every proxied site with no way back.
    this.dispatch({ type: 'toggled', enabled: target, pending: true });
    return this.ui;
  }

  async reconnect(): Promise<UiState> {
    await this.ready();
    this.host.reconnectNow();
    // Answer with the outcome if it comes quickly, else with 'connecting'.
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      await this.changed(deadline - Date.now());
      if (this.ui.host.state !== 'connecting') break;
    }
    return this.ui;
  }

  async hostRequest(request: HostRequest): Promise<ResultMap[RequestType]> {
    await this.ready();
    if (RESERVED_REQUESTS.has(request.type)) {
      throw new UiRequestError(
        'NOT_ALLOWED',
        `'${request.type}' is the background's own; pages get the log over the UI port`,
      );
    }
    const result = await this.host.request(request.type, request.params);
    // These change what the state shows without a config event (passwordSaved), or the page
    // will read the state right after: have it current before answering.
    if (
      request.type === 'credential.set' ||
      request.type === 'credential.delete' ||
      request.type === 'config.patch' ||
      request.type === 'config.replace'
    ) {
      await this.refreshConfig().catch(() => undefined);
    }
    return result;
  }

  async siteInfo(url: string): Promise<SiteInfo> {
    await this.ready();
    let host = '';
    try {
      host = hostOf(url);
    } catch {
      // Not a URL with a host (chrome://, about:blank): no route, no errors.
    }
    let route: ResultMap['route'] | undefined;
    if (host !== '' && this.host.isReady) {
      route = await this.host.request('route', { target: url }).catch(() => undefined);
    }
    const errors = host
      ? this.log
          .filter((e) => e.host === host && (e.kind === 'failed' || e.kind === 'denied'))
          .slice(-SITE_ERRORS_KEEP)
      : [];
    return { url, host, ...(route ? { route } : {}), errors };
  }

  async addSiteRule(site: string, target: RuleTarget): Promise<{ ruleId: string }> {
    await this.ready();
    // The host's current rules, not our copy: another client may have changed them.
    const current = await this.fetchConfig();
    const { rules, ruleId } = withSiteRule(current.config.rules, site, target);
    await this.host.request('config.patch', { patch: { rules } });
    await this.refreshConfig();
    return { ruleId };
  }

  async setSettings(partial: Partial<BrowserSettings>): Promise<UiState> {
    await this.ready();
    const next = parseSettings(partial, this.state.settings);
    if (next.webrtcProtection && !(await hasWebrtcPermission(browser.permissions))) {
      throw new UiRequestError(
        'PERMISSION_REQUIRED',
        "WebRTC protection needs the optional 'privacy' permission: request it from the page " +
          "(permissions.request({ permissions: ['privacy'] }) in the click handler), then save again",
      );
    }
    const before = this.state.settings;
    this.dispatch({ type: 'settings', settings: next });
    if (before.toolbarClick !== next.toolbarClick) await this.applyToolbar();
    if (before.webrtcProtection !== next.webrtcProtection) await this.applyWebrtcSetting(true);
    return this.ui;
  }

  recentLog(host?: string, limit = 100): readonly TunnelEvent[] {
    const events = host ? this.log.filter((e) => e.host === host) : this.log;
    return events.slice(-Math.max(1, Math.min(limit, LOG_KEEP)));
  }

  addUiPort(port: Runtime.Port): void {
    this.uiPorts.add(port);
    port.onDisconnect.addListener(() => this.uiPorts.delete(port));
    port.postMessage({ type: 'state', state: this.ui } satisfies UiPush);
  }

  // ---- browser events -----------------------------------------------------------------------

  onProxyError(details: ProxyErrorDetails): void {
    this.dispatch({
      type: 'proxy.error',
      error: {
        error: details.error ?? details.message ?? 'unknown proxy error',
        details: details.details ?? '',
        fatal: details.fatal ?? true,
        at: Date.now(),
      },
    });
  }

  onProxySettingChange(levelOfControl: unknown): void {
    this.dispatch({ type: 'proxy.control', level: levelOf(levelOfControl), at: Date.now() });
    // Another extension let go of the setting: ours may need setting again.
    if (levelOf(levelOfControl) === 'controllable_by_this_extension' && this.state.enabled) {
      void this.applyProxy(true);
    }
  }

  /**
   * Firefox's proxy.onRequest. A request can be what wakes the event page: it waits for
   * storage, and while the host is being reached, a little for its rules (a container rule
   * the host cannot apply must not be missed); then the plan in force answers.
   */
  async proxyForRequest(details: RequestDetails): Promise<readonly ProxyInfo[] | undefined> {
    await this.ready();
    const deadline = Date.now() + RULES_WAIT_MS;
    while (
      this.state.enabled &&
      this.state.config === undefined &&
      this.state.port === 'connecting' &&
      Date.now() < deadline
    ) {
      await this.changed(deadline - Date.now());
    }
    return this.routing?.proxyFor(details);
  }

  async onToolbarClicked(): Promise<void> {
    // Fires only while the button has no popup, i.e. toolbarClick is 'toggle'.
    await this.toggle();
  }

  /** `tabUrl`: the menu's click grants activeTab, so the tab it was opened over shows its URL. */
  async onMenuClicked(menuItemId: string | number, tabUrl: string | undefined): Promise<void> {
    if (menuItemId === OPEN_POPUP_MENU_ID) await this.openPopup(tabUrl);
  }

  onPermissionRemoved(permissions: readonly string[]): void {
    if (permissions.includes('privacy') && this.state.settings.webrtcProtection) {
      this.dispatch({ type: 'settings', settings: { ...this.state.settings, webrtcProtection: false } });
    }
  }

  /** The popup from the button's context menu, for when a click on the button toggles. */
  private async openPopup(tabUrl: string | undefined): Promise<void> {
    const popup = popupPath();
    try {
      await browser.action.setPopup({ popup });
      await browser.action.openPopup();
    } catch {
      // A window of its own instead: its active tab is itself, so it is told which page to
      // describe (the popup reads ?url=).
      const query = tabUrl ? `?url=${encodeURIComponent(tabUrl)}` : '';
      await browser.windows.create({
        url: `${browser.runtime.getURL(popup)}${query}`,
        type: 'popup',
        width: 380,
        height: 600,
      });
    } finally {
      if (this.state.settings.toolbarClick === 'toggle') await browser.action.setPopup({ popup: '' });
    }
  }

  private async applyToolbar(): Promise<void> {
    const toggle = this.state.settings.toolbarClick === 'toggle';
    await browser.action.setPopup({ popup: toggle ? '' : popupPath() });
    await browser.contextMenus.removeAll();
    if (toggle) {
      browser.contextMenus.create({ id: OPEN_POPUP_MENU_ID, title: 'Open Switchyard', contexts: ['action'] });
    }
  }

  private async applyWebrtcSetting(report: boolean): Promise<void> {
    try {
      await applyWebrtc(
        this.state.settings.webrtcProtection,
        browser.permissions,
        () => browser.privacy?.network?.webRTCIPHandlingPolicy as unknown as PolicySetting | undefined,
      );
    } catch (error) {
      if (report) throw new UiRequestError('FAILED', `cannot change the WebRTC policy: ${String(error)}`);
    }
  }
}

export function uiErrorOf(error: unknown): {
  code: string;
  message: string;
  issues?: HostRequestError['issues'];
} {
  if (error instanceof HostRequestError) {
    return { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) };
  }
  if (error instanceof UiRequestError) return { code: error.code, message: error.message };
  if (error instanceof Error)
    return { code: error.name === 'SiteRuleError' ? 'BAD_REQUEST' : 'FAILED', message: error.message };
  return { code: 'FAILED', message: String(error) };
}
