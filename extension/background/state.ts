/**
 * The background's one state machine: every fact the worker learns (from the native port, the
 * browser's proxy setting, storage, the host's log) arrives as an Action, `reduce` folds it into
 * a BackgroundState, and `uiStateOf` derives what pages and the toolbar show. Pure: no browser
 * calls, no clocks (actions carry their own time), so it runs under node:test as it is.
 */
import type { Config } from '../../shared/config/schema.ts';
import type { HelloResult, StatusResult } from '../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import type {
  BrowserSettings,
  HostState,
  Problem,
  ProblemKind,
  ProxyControl,
  UiState,
} from '../shared/ui-protocol.ts';
import { DEFAULT_BROWSER_SETTINGS } from '../shared/ui-protocol.ts';
import { badgeFor } from './badge.ts';

/** What Chromium says when no host manifest matches; anything else is a host that failed. */
export const HOST_NOT_FOUND = 'Specified native messaging host not found.';

export const INSTALL_COMMAND = 'switchyard install';

export interface ProxyEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface ProxyErrorInfo {
  readonly error: string;
  readonly details: string;
  readonly fatal: boolean;
  readonly at: number;
}

export interface BackgroundState {
  /** The native port: open and greeted, being opened, or gone (with the browser's reason). */
  readonly port: 'connecting' | 'open' | 'missing' | 'failed';
  readonly portError?: string;
  /** When the port, the service or the proxy control last changed, for Problem.at. */
  readonly portSince: number;
  /** The service behind the bridge: the bridge can be up while the service is not. */
  readonly service: 'unknown' | 'up' | 'down';
  readonly serviceError?: string;
  readonly serviceSince: number;
  readonly hello?: HelloResult;
  readonly status?: StatusResult;
  readonly config?: Config;
  readonly passwordSaved: Readonly<Record<string, boolean>>;
  readonly revision?: number;
  /** The toggle: the host's config says, or the last known value while it cannot. */
  readonly enabled: boolean;
  /** A toggle made while the host was unreachable, sent to it once it is back. */
  readonly pendingToggle?: boolean;
  /** Where the host's SOCKS server listens, as last learned (survives restarts via storage). */
  readonly endpoint?: ProxyEndpoint;
  readonly proxyControl: ProxyControl;
  readonly proxyControlSince: number;
  readonly settings: BrowserSettings;
  /** The last proxy error the browser reported, until something shows the proxy works again. */
  readonly proxyError?: ProxyErrorInfo;
  /** The PAC script could not be built or set. */
  readonly pacError?: { readonly message: string; readonly at: number };
  /** Failing routes from the host's log, by the route's label ('via'). */
  readonly upstreamFailures: Readonly<Record<string, Problem>>;
}

/** What storage.ts keeps across service-worker restarts. Never a password: there is no field for one. */
export interface Remembered {
  readonly settings: BrowserSettings;
  readonly enabled: boolean;
  readonly endpoint?: ProxyEndpoint;
  readonly pendingToggle?: boolean;
}

export type Action =
  | { readonly type: 'restored'; readonly remembered: Remembered }
  | { readonly type: 'port.connecting'; readonly at: number }
  /** The port answered hello: the bridge reached the service. */
  | { readonly type: 'port.ready'; readonly hello: HelloResult; readonly at: number }
  | { readonly type: 'port.closed'; readonly error: string; readonly at: number }
  /** The bridge is up but cannot reach or start the service (UNAVAILABLE, or its 'service' event). */
  | { readonly type: 'service.down'; readonly error: string; readonly at: number }
  | {
      readonly type: 'config';
      readonly config: Config;
      readonly passwordSaved: Readonly<Record<string, boolean>>;
      readonly revision: number;
    }
  | { readonly type: 'config.changed'; readonly revision: number; readonly enabled: boolean }
  | { readonly type: 'status'; readonly status: StatusResult }
  /** The toggle as applied: `pending` when the host could not be told yet. */
  | { readonly type: 'toggled'; readonly enabled: boolean; readonly pending: boolean }
  | { readonly type: 'proxy.control'; readonly level: ProxyControl; readonly at: number }
  | { readonly type: 'proxy.error'; readonly error: ProxyErrorInfo }
  | { readonly type: 'pac.applied' }
  | { readonly type: 'pac.failed'; readonly message: string; readonly at: number }
  | { readonly type: 'log'; readonly events: readonly TunnelEvent[] }
  | { readonly type: 'settings'; readonly settings: BrowserSettings };

export function initialState(): BackgroundState {
  return {
    port: 'connecting',
    portSince: 0,
    service: 'unknown',
    serviceSince: 0,
    passwordSaved: {},
    enabled: false,
    proxyControl: 'unknown',
    proxyControlSince: 0,
    settings: DEFAULT_BROWSER_SETTINGS,
    upstreamFailures: {},
  };
}

export function isHostMissing(error: string): boolean {
  return error.includes(HOST_NOT_FOUND);
}

/** 'host:port' or '[v6]:port' from status.listening; a wildcard listener is reached on loopback. */
export function parseEndpoint(listening: string): ProxyEndpoint | undefined {
  const colon = listening.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(listening.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  let host = listening.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return { host, port };
}

function endpointFromConfig(config: Config): ProxyEndpoint | undefined {
  if (config.listen.port === 0) return undefined;
  return parseEndpoint(
    `${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`,
  );
}

/**
 * A failed tunnel blames an upstream when a hop is named and the failure is not the last hop
 * relaying the destination's own refusal ("upstream replied REP 5" is the site, not the proxy);
 * "X unreachable through Y" is a hop in the middle of a chain, so it does count.
 */
export function isUpstreamFailure(event: TunnelEvent): boolean {
  if (event.kind !== 'failed' || event.hop === undefined || event.via === undefined) return false;
  const error = event.error ?? '';
  return !/upstream replied REP/.test(error) || /unreachable through/.test(error);
}

function upstreamProblems(
  failures: Readonly<Record<string, Problem>>,
  events: readonly TunnelEvent[],
): Readonly<Record<string, Problem>> {
  let next: Record<string, Problem> | undefined;
  const edit = () => {
    next ??= { ...failures };
    return next;
  };
  for (const event of events) {
    const via = event.via;
    if (via === undefined) continue;
    if (isUpstreamFailure(event)) {
      edit()[via] = {
        kind: 'upstream-failing',
        message: `${via} is failing: ${event.error ?? event.result ?? 'no reason given'}`,
        advice: `Check that upstream, or test it with: switchyard check ${routeIdOf(via)} --target ${event.dest}`,
        host: event.host,
        at: event.time,
      };
    } else if (event.kind === 'opened' && (next ?? failures)[via] !== undefined) {
      // A tunnel through the same route went through: it works again.
      delete edit()[via];
    }
  }
  return next ?? failures;
}

/** 'route abroad (exit > far)' -> 'abroad', for the advice's command line. */
function routeIdOf(via: string): string {
  const m = /^route (\S+)/.exec(via);
  return m?.[1] ?? via;
}

export function reduce(state: BackgroundState, action: Action): BackgroundState {
  switch (action.type) {
    case 'restored': {
      const r = action.remembered;
      return {
        ...state,
        settings: r.settings,
        // The host's word wins once it arrives; until then the last known one shows.
        enabled: state.config ? state.enabled : (r.pendingToggle ?? r.enabled),
        ...(r.pendingToggle !== undefined && state.pendingToggle === undefined
          ? { pendingToggle: r.pendingToggle }
          : {}),
        ...(state.endpoint === undefined && r.endpoint !== undefined ? { endpoint: r.endpoint } : {}),
      };
    }
    case 'port.connecting':
      // A retry after a failure shows the failure until it has an outcome: the badge must not
      // blink between '!' and on/off with every attempt.
      if (state.port === 'missing' || state.port === 'failed') return state;
      return { ...state, port: 'connecting', portError: undefined, portSince: action.at };
    case 'port.ready':
      return {
        ...state,
        port: 'open',
        portError: undefined,
        portSince: action.at,
        service: 'up',
        serviceError: undefined,
        serviceSince: action.at,
        hello: action.hello,
        // A fresh start: errors seen while it was away say nothing about it now.
        proxyError: undefined,
      };
    case 'port.closed':
      return {
        ...state,
        port: isHostMissing(action.error) ? 'missing' : 'failed',
        portError: action.error,
        // Repeated failures of a retry loop keep the time it first went away.
        portSince: state.port === 'open' || state.port === 'connecting' ? action.at : state.portSince,
        service: 'unknown',
        serviceError: undefined,
        status: undefined,
      };
    case 'service.down':
      return {
        ...state,
        service: 'down',
        serviceError: action.error,
        serviceSince: state.service === 'down' ? state.serviceSince : action.at,
        status: undefined,
      };
    case 'config': {
      const endpoint = state.status
        ? (parseEndpoint(state.status.listening) ?? state.endpoint)
        : (endpointFromConfig(action.config) ?? state.endpoint);
      return {
        ...state,
        config: action.config,
        passwordSaved: action.passwordSaved,
        revision: action.revision,
        enabled: state.pendingToggle ?? action.config.enabled,
        ...(endpoint ? { endpoint } : {}),
        pacError: undefined,
      };
    }
    case 'config.changed':
      return { ...state, enabled: state.pendingToggle ?? action.enabled };
    case 'status': {
      const endpoint = parseEndpoint(action.status.listening) ?? state.endpoint;
      return {
        ...state,
        status: action.status,
        service: 'up',
        serviceError: undefined,
        ...(endpoint ? { endpoint } : {}),
      };
    }
    case 'toggled':
      return {
        ...state,
        enabled: action.enabled,
        pendingToggle: action.pending ? action.enabled : undefined,
        proxyError: undefined,
        upstreamFailures: {},
      };
    case 'proxy.control':
      if (state.proxyControl === action.level) return state;
      return { ...state, proxyControl: action.level, proxyControlSince: action.at };
    case 'proxy.error':
      return { ...state, proxyError: action.error };
    case 'pac.applied':
      return state.pacError === undefined ? state : { ...state, pacError: undefined };
    case 'pac.failed':
      return { ...state, pacError: { message: action.message, at: action.at } };
    case 'log': {
      const upstreamFailures = upstreamProblems(state.upstreamFailures, action.events);
      // A tunnel opened through the host: the browser reaches the proxy again.
      const reached = state.proxyError !== undefined && action.events.some((e) => e.kind === 'opened');
      if (upstreamFailures === state.upstreamFailures && !reached) return state;
      return { ...state, upstreamFailures, ...(reached ? { proxyError: undefined } : {}) };
    }
    case 'settings':
      return { ...state, settings: action.settings };
  }
}

export function hostStateOf(state: BackgroundState): HostState {
  if (state.port === 'missing') return 'host-missing';
  if (state.port === 'failed' || state.service === 'down') return 'host-error';
  if (state.port === 'open') return 'connected';
  return 'connecting';
}

function hostError(state: BackgroundState): string | undefined {
  if (state.port === 'missing' || state.port === 'failed') return state.portError;
  if (state.service === 'down') return state.serviceError;
  return undefined;
}

const PAC_ERRORS = new Set(['net::ERR_PAC_SCRIPT_FAILED', 'net::ERR_MANDATORY_PROXY_CONFIGURATION_FAILED']);

/** Problems, the most serious first; the badge's tooltip names the first. */
export function problemsOf(state: BackgroundState): Problem[] {
  const problems: Problem[] = [];
  const add = (kind: ProblemKind, at: number, message: string, advice?: string) =>
    problems.push({ kind, message, ...(advice !== undefined ? { advice } : {}), at });
  const blocked =
    state.settings.failMode === 'fail-closed'
      ? 'Sites that go through the proxy are blocked until it is back (fail-closed).'
      : 'Sites that go through the proxy go direct until it is back (fallback).';

  if (state.port === 'missing') {
    add(
      'host-missing',
      state.portSince,
      'The Switchyard host is not installed: the browser found no native-messaging host for it.',
      `Install it with: ${INSTALL_COMMAND}`,
    );
  } else if (state.port === 'failed') {
    add(
      'host-down',
      state.portSince,
      `The Switchyard host is not running: ${state.portError ?? 'the connection was lost'}.`,
      `${state.enabled ? `${blocked} ` : ''}Reconnecting by itself; if it keeps failing, run: switchyard doctor`,
    );
  } else if (state.service === 'down') {
    add(
      'host-down',
      state.serviceSince,
      // The bridge's reason can run to several lines (it quotes the service's log); it is in
      // host.error for whoever shows details, the problem and the tooltip stay one sentence.
      'The Switchyard service is not running.',
      `${state.enabled ? `${blocked} ` : ''}Retrying by itself; if it keeps failing, run: switchyard doctor`,
    );
  }
  const hostDown = problems.length > 0;
  if (!state.enabled) return problems;

  if (state.proxyControl === 'controlled_by_other_extensions') {
    add(
      'proxy-controlled-elsewhere',
      state.proxyControlSince,
      "Another extension controls the browser's proxy setting, so Switchyard's rules are not in effect.",
      'Disable the other proxy extension (chrome://extensions), or turn Switchyard off.',
    );
  } else if (state.proxyControl === 'not_controllable') {
    add(
      'proxy-controlled-elsewhere',
      state.proxyControlSince,
      "The browser's proxy setting is locked (by a policy), so Switchyard cannot apply its rules.",
      'Ask whoever manages this browser, or turn Switchyard off.',
    );
  }
  if (state.pacError) {
    add('pac-failed', state.pacError.at, `The proxy script could not be applied: ${state.pacError.message}`);
  }
  const proxyError = state.proxyError;
  if (proxyError && PAC_ERRORS.has(proxyError.error)) {
    add(
      'pac-failed',
      proxyError.at,
      `The proxy script failed in the browser: ${proxyError.error}${proxyError.details ? ` (${proxyError.details})` : ''}`,
      'Check the routing rules in the options page.',
    );
  } else if (proxyError && !hostDown) {
    // With the host down, connection errors are its symptom, already reported above.
    add(
      'proxy-error',
      proxyError.at,
      `The browser could not use the proxy: ${proxyError.error}${proxyError.details ? ` (${proxyError.details})` : ''}`,
      blocked,
    );
  }
  for (const problem of Object.values(state.upstreamFailures)) problems.push(problem);
  return problems;
}

export function endpointText(endpoint: ProxyEndpoint | undefined): string | undefined {
  if (!endpoint) return undefined;
  return `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}

export function uiStateOf(state: BackgroundState): UiState {
  const problems = problemsOf(state);
  const error = hostError(state);
  return {
    host: {
      state: hostStateOf(state),
      ...(error !== undefined ? { error } : {}),
      ...(state.hello ? { hello: state.hello } : {}),
      ...(state.status ? { status: state.status } : {}),
    },
    enabled: state.enabled,
    proxyControl: state.proxyControl,
    ...(state.config ? { config: state.config } : {}),
    passwordSaved: state.passwordSaved,
    ...(state.revision !== undefined ? { revision: state.revision } : {}),
    settings: state.settings,
    problems,
    badge: badgeFor({ enabled: state.enabled, problems, endpoint: endpointText(state.endpoint) }),
    installCommand: INSTALL_COMMAND,
  };
}

export function rememberedOf(state: BackgroundState): Remembered {
  return {
    settings: state.settings,
    enabled: state.enabled,
    ...(state.endpoint ? { endpoint: state.endpoint } : {}),
    ...(state.pendingToggle !== undefined ? { pendingToggle: state.pendingToggle } : {}),
  };
}
