/**
 * The background, in memory, for component tests: it answers the ui-protocol contract from a
 * config it keeps, records every request the pages send, and pushes state like the real one.
 */
import { type Config, defaultConfig, type Route, type Upstream } from '../../../shared/config/schema.ts';
import type {
  CheckResult,
  ConfigPatch,
  HelloResult,
  ParamsOf,
  RequestType,
  ResultMap,
  RouteResult,
  StatusResult,
} from '../../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import type { Rule } from '../../../shared/rules/types.ts';
import { type BackgroundClient, BackgroundError } from '../../../extension/ui/background-client.ts';
import {
  DEFAULT_BROWSER_SETTINGS,
  type HostRequest,
  type SiteInfo,
  type UiPush,
  type UiRequest,
  type UiResultMap,
  type UiState,
} from '../../../extension/shared/ui-protocol.ts';

export const HELLO: HelloResult = {
  protocol: 1,
  hostVersion: '0.1.0',
  capabilities: [],
  credentialStore: { kind: 'keyring', description: 'Secret Service (GNOME Keyring)' },
  platform: 'linux',
};

export const STATUS: StatusResult = {
  listening: '127.0.0.1:1080',
  enabled: true,
  activeTunnels: 3,
  bytesUp: 2048,
  bytesDown: 5 * 1024 * 1024,
  uptimeMs: 60_000,
  startedBy: 'bridge',
  pid: 4242,
  configPath: '/home/me/.config/switchyard/config.json',
  controlClients: 1,
};

export const UPSTREAMS: Upstream[] = [
  { id: 'gw', name: 'Office gateway', type: 'socks5', host: 'gw.corp.example', port: 1080, username: 'me' },
  { id: 'abroad', name: 'Abroad', type: 'http', host: 'proxy.abroad.example', port: 3128 },
];

export const ROUTES: Route[] = [
  { id: 'corp', name: 'Corp', hops: ['gw'], onFirstHopDown: 'fail' },
  { id: 'chain', name: 'Chain', hops: ['gw', 'abroad'], onFirstHopDown: 'direct' },
];

export function makeRules(count: number): Rule[] {
  const rules: Rule[] = [];
  for (let i = 0; i < count; i++) {
    rules.push({
      id: `r${i}`,
      enabled: i % 7 !== 0,
      name: `Rule ${i}`,
      match: { hosts: [{ type: 'domain', value: `*.site${i}.example` }] },
      target:
        i % 3 === 0
          ? { kind: 'route', routeId: 'corp' }
          : i % 3 === 1
            ? { kind: 'direct' }
            : { kind: 'block' },
    });
  }
  return rules;
}

export function makeConfig(overrides: Partial<Config> = {}): Config {
  return { ...defaultConfig(), upstreams: UPSTREAMS, routes: ROUTES, rules: makeRules(3), ...overrides };
}

export function makeState(overrides: Partial<UiState> = {}): UiState {
  return {
    host: { state: 'connected', hello: HELLO, status: STATUS },
    enabled: true,
    proxyControl: 'controlled_by_this_extension',
    config: makeConfig(),
    passwordSaved: { gw: true },
    revision: 1,
    settings: DEFAULT_BROWSER_SETTINGS,
    problems: [],
    badge: { text: '', color: '#000', title: 'Switchyard' },
    installCommand: 'npx switchyard install',
    ...overrides,
  };
}

type HostHandler = (request: HostRequest) => unknown;

export class FakeBackground implements BackgroundClient {
  state: UiState;
  /** Every request, in order, as the pages sent them. */
  readonly sent: UiRequest[] = [];
  readonly listeners = new Set<(push: UiPush) => void>();
  siteInfo: (url: string) => SiteInfo = (url) => ({ url, host: new URL(url).hostname, errors: [] });
  routeResult: RouteResult | null = null;
  checkResult: (name: string) => CheckResult = (name) => ({
    label: name,
    destination: 'example.com:443',
    ok: true,
    hops: [],
  });
  log: TunnelEvent[] = [];
  /** Requests that should fail, by type (or host request type). */
  readonly failures = new Map<string, BackgroundError>();
  /** Overrides for host request types. */
  readonly hostHandlers = new Map<RequestType, HostHandler>();

  constructor(state: UiState = makeState()) {
    this.state = state;
  }

  send = async <R extends UiRequest>(request: R): Promise<UiResultMap[R['type']]> => {
    this.sent.push(structuredClone(request));
    const key = request.type === 'host.request' ? request.request.type : request.type;
    const failure = this.failures.get(key);
    if (failure) throw failure;
    return this.handle(request) as UiResultMap[R['type']];
  };

  host = async <T extends RequestType>(type: T, params: ParamsOf<T>): Promise<ResultMap[T]> => {
    const result = await this.send({
      type: 'host.request',
      request: { type, params } as unknown as HostRequest,
    });
    return result as ResultMap[T];
  };

  subscribe(listener: (push: UiPush) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  push(push: UiPush): void {
    for (const listener of this.listeners) listener(push);
  }

  setState(change: Partial<UiState>): void {
    this.state = { ...this.state, ...change };
    this.push({ type: 'state', state: this.state });
  }

  /** The requests of one kind, in order. */
  requests<T extends UiRequest['type']>(type: T): Extract<UiRequest, { type: T }>[] {
    return this.sent.filter((r): r is Extract<UiRequest, { type: T }> => r.type === type);
  }

  /** The params of the host requests of one type, in order. */
  hostRequests<T extends RequestType>(type: T): ParamsOf<T>[] {
    return this.requests('host.request')
      .map((r) => r.request)
      .filter((r) => r.type === type)
      .map((r) => r.params as ParamsOf<T>);
  }

  private handle(request: UiRequest): unknown {
    switch (request.type) {
      case 'state.get':
      case 'host.reconnect':
        return this.state;
      case 'toggle':
        this.state = { ...this.state, enabled: request.enabled ?? !this.state.enabled };
        return this.state;
      case 'settings.set':
        this.state = { ...this.state, settings: { ...this.state.settings, ...request.settings } };
        return this.state;
      case 'site.info':
        return this.siteInfo(request.url);
      case 'site.addRule':
        return { ruleId: 'added-1' };
      case 'log.recent':
        return request.host ? this.log.filter((e) => e.host === request.host) : this.log;
      case 'host.request':
        return this.handleHost(request.request);
    }
  }

  private handleHost(request: HostRequest): unknown {
    const custom = this.hostHandlers.get(request.type);
    if (custom) return custom(request);
    switch (request.type) {
      case 'config.patch':
        return this.changeConfig(request.params.patch);
      case 'config.replace':
        return this.changeConfig(request.params.config as ConfigPatch);
      case 'credential.set':
        this.setState({ passwordSaved: { ...this.state.passwordSaved, [request.params.upstreamId]: true } });
        return { upstreamId: request.params.upstreamId, saved: true };
      case 'credential.delete':
        this.setState({ passwordSaved: { ...this.state.passwordSaved, [request.params.upstreamId]: false } });
        return { upstreamId: request.params.upstreamId, deleted: true };
      case 'route':
        if (!this.routeResult) throw new BackgroundError('FAILED', 'no route result set in the test');
        return this.routeResult;
      case 'check':
        return this.checkResult(request.params.name);
      default:
        throw new BackgroundError('FAILED', `the fake does not answer ${request.type}`);
    }
  }

  private changeConfig(patch: ConfigPatch): unknown {
    const config = { ...this.state.config, ...patch } as Config;
    const revision = (this.state.revision ?? 0) + 1;
    // As the real background does: the change, then a state push with the new config.
    queueMicrotask(() => this.setState({ config, revision }));
    return { revision, passwordSaved: this.state.passwordSaved };
  }
}
