/**
 * The contract between the extension's pages (popup, options) and its background. Pages never
 * talk to the host: they ask the background, which owns the one native port. Requests go by
 * runtime.sendMessage; the background pushes state and log events over a runtime port named
 * UI_PORT_NAME that each open page keeps.
 */
import type { Config } from '../../shared/config/schema.ts';
import type {
  HelloResult,
  ParamsOf,
  ProtocolIssue,
  RequestType,
  ResultMap,
  RouteResult,
  StatusResult,
} from '../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import type { RuleTarget } from '../../shared/rules/types.ts';

export const UI_PORT_NAME = 'switchyard-ui';

export type HostState = 'connecting' | 'connected' | 'host-missing' | 'host-error';

export type ProxyControl =
  | 'controlled_by_this_extension'
  | 'controllable_by_this_extension'
  | 'controlled_by_other_extensions'
  | 'not_controllable'
  | 'unknown';

export type ProblemKind =
  | 'host-missing'
  | 'host-down'
  | 'proxy-controlled-elsewhere'
  | 'proxy-error'
  | 'upstream-failing'
  | 'pac-failed';

export interface Problem {
  readonly kind: ProblemKind;
  /** What is wrong, in a sentence. */
  readonly message: string;
  /** What to do about it (a command, a setting). */
  readonly advice?: string;
  /** For per-site errors: the host they concern. */
  readonly host?: string;
  readonly at: number;
}

/** Browser-side settings (storage.local); everything else lives in the host's config. */
export interface BrowserSettings {
  /** When the host is down: 'fail-closed' blocks proxied sites, 'fallback-direct' lets them go direct. */
  readonly failMode: 'fail-closed' | 'fallback-direct';
  /** What a click on the toolbar button does; the popup stays reachable from its context menu. */
  readonly toolbarClick: 'popup' | 'toggle';
  /** privacy.network.webRTCIPHandlingPolicy, asked for as an optional permission. */
  readonly webrtcProtection: boolean;
}

export const DEFAULT_BROWSER_SETTINGS: BrowserSettings = {
  failMode: 'fail-closed',
  toolbarClick: 'popup',
  webrtcProtection: false,
};

export interface Badge {
  readonly text: string;
  readonly color: string;
  /** The toolbar tooltip: says the state and, for a problem, which. */
  readonly title: string;
}

export interface UiState {
  readonly host: {
    readonly state: HostState;
    readonly error?: string;
    readonly hello?: HelloResult;
    readonly status?: StatusResult;
  };
  /** The toggle, as the host's config says. */
  readonly enabled: boolean;
  readonly proxyControl: ProxyControl;
  readonly config?: Config;
  /** upstream id -> a password is saved (never the password). */
  readonly passwordSaved: Readonly<Record<string, boolean>>;
  readonly revision?: number;
  readonly settings: BrowserSettings;
  readonly problems: readonly Problem[];
  readonly badge: Badge;
  /** The command that installs the native host, for the "host missing" instructions. */
  readonly installCommand: string;
}

export interface SiteInfo {
  readonly url: string;
  readonly host: string;
  readonly route?: RouteResult;
  /** Recent failed or denied tunnels for this host, newest last. */
  readonly errors: readonly TunnelEvent[];
}

export type HostRequest = { [T in RequestType]: { type: T; params: ParamsOf<T> } }[RequestType];

export type UiRequest =
  | { readonly type: 'state.get' }
  | { readonly type: 'toggle'; readonly enabled?: boolean }
  | { readonly type: 'host.reconnect' }
  /** Any host protocol request, passed through the background's port. */
  | { readonly type: 'host.request'; readonly request: HostRequest }
  | { readonly type: 'site.info'; readonly url: string }
  /** The popup's one-click actions: a rule for the site's domain, put first. */
  | { readonly type: 'site.addRule'; readonly host: string; readonly target: RuleTarget }
  | { readonly type: 'settings.set'; readonly settings: Partial<BrowserSettings> }
  | { readonly type: 'log.recent'; readonly host?: string; readonly limit?: number };

export interface UiResultMap {
  'state.get': UiState;
  toggle: UiState;
  'host.reconnect': UiState;
  'host.request': ResultMap[RequestType];
  'site.info': SiteInfo;
  'site.addRule': { readonly ruleId: string };
  'settings.set': UiState;
  'log.recent': readonly TunnelEvent[];
}

export interface UiError {
  readonly code: string;
  readonly message: string;
  readonly issues?: readonly ProtocolIssue[];
}

export type UiResponse<T extends UiRequest['type']> =
  | { readonly ok: true; readonly result: UiResultMap[T] }
  | { readonly ok: false; readonly error: UiError };

/** Pushed over the UI port. */
export type UiPush =
  | { readonly type: 'state'; readonly state: UiState }
  | { readonly type: 'log'; readonly events: readonly TunnelEvent[] };
