/**
 * The control protocol between the extension (through the native-messaging bridge), the CLI and
 * the host's service. The same JSON messages travel as native-messaging frames on the browser
 * side and as newline-delimited lines on the local control socket.
 *
 * Three shapes: requests `{ v, id, type, ...params }` from a client; responses
 * `{ v, id, ok, result | error }` from the host, one per request, matched by `id`; and events
 * `{ v, event, data }` pushed by the host. Nothing secret ever travels host to client.
 */
import type { Config, ConfigInput } from '../config/schema.ts';
import type { RuleTarget } from '../rules/types.ts';
import type { TunnelEvent } from './tunnel-event.ts';

export const PROTOCOL_VERSION = 1;

/**
 * Host-to-browser messages must stay under 1 MB (Chromium's limit for one native message):
 * anything that could grow past it (the log) is paged, and anything else that would exceed it
 * is answered with a TOO_LARGE error instead of being sent.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024 - 1;

/** Upper bound for `log.page`'s `limit`; the byte budget may cut a page shorter still. */
export const MAX_LOG_PAGE_LIMIT = 1000;
export const DEFAULT_LOG_PAGE_LIMIT = 200;

export type ClientKind = 'chrome' | 'firefox' | 'cli';

/** Top-level config fields a `config.patch` may replace (each one as a whole). */
export type ConfigPatchKey = Exclude<keyof ConfigInput, 'version'>;
export type ConfigPatch = { [K in ConfigPatchKey]?: ConfigInput[K] };

interface Envelope<T extends string> {
  v: typeof PROTOCOL_VERSION;
  /** Chosen by the client, echoed in the response; unique among its pending requests. */
  id: number;
  type: T;
}

export interface HelloRequest extends Envelope<'hello'> {
  client: ClientKind;
  extensionVersion?: string;
}
/** The config; one too large for a message is answered with TOO_LARGE: read it with config.part. */
export type ConfigGetRequest = Envelope<'config.get'>;
/**
 * A part of config.get's answer as JSON text, for a config too large for one message. The first
 * part (offset 0) names the revision; pass it with the next offsets, and a config changed in
 * between is answered with CHANGED (start again from 0). `readConfigInParts` does all this.
 */
export interface ConfigPartRequest extends Envelope<'config.part'> {
  /** In characters of the whole text. */
  offset: number;
  revision?: number;
}
export interface ConfigReplaceRequest extends Envelope<'config.replace'> {
  config: ConfigInput;
}
export interface ConfigPatchRequest extends Envelope<'config.patch'> {
  patch: ConfigPatch;
}
export interface CredentialSetRequest extends Envelope<'credential.set'> {
  upstreamId: string;
  password: string;
}
export interface CredentialDeleteRequest extends Envelope<'credential.delete'> {
  upstreamId: string;
}
export interface ToggleSetRequest extends Envelope<'toggle.set'> {
  enabled: boolean;
}
export interface RouteRequest extends Envelope<'route'> {
  /** A URL, a host, host:port or [v6]:port. */
  target: string;
}
export interface CheckRequest extends Envelope<'check'> {
  /** An upstream or route, by id or name. */
  name: string;
  /** Where the last hop connects to: host:port or a URL. */
  target: string;
}
export type StatusRequest = Envelope<'status'>;
export interface LogPageRequest extends Envelope<'log.page'> {
  /** Only events with a smaller seq (older); the newest events when absent. */
  before?: number;
  /** At most this many events (1..MAX_LOG_PAGE_LIMIT); the size limit may return fewer. */
  limit?: number;
}
export type LogSubscribeRequest = Envelope<'log.subscribe'>;
export type LogUnsubscribeRequest = Envelope<'log.unsubscribe'>;
export type ServiceReloadRequest = Envelope<'service.reload'>;
export type ServiceStopRequest = Envelope<'service.stop'>;

export type Request =
  | HelloRequest
  | ConfigGetRequest
  | ConfigPartRequest
  | ConfigReplaceRequest
  | ConfigPatchRequest
  | CredentialSetRequest
  | CredentialDeleteRequest
  | ToggleSetRequest
  | RouteRequest
  | CheckRequest
  | StatusRequest
  | LogPageRequest
  | LogSubscribeRequest
  | LogUnsubscribeRequest
  | ServiceReloadRequest
  | ServiceStopRequest;

export type RequestType = Request['type'];

export const REQUEST_TYPES = [
  'hello',
  'config.get',
  'config.part',
  'config.replace',
  'config.patch',
  'credential.set',
  'credential.delete',
  'toggle.set',
  'route',
  'check',
  'status',
  'log.page',
  'log.subscribe',
  'log.unsubscribe',
  'service.reload',
  'service.stop',
] as const satisfies readonly RequestType[];

export type RequestOf<T extends RequestType> = Extract<Request, { type: T }>;
/** What a caller passes besides the envelope. */
export type ParamsOf<T extends RequestType> = Omit<RequestOf<T>, 'v' | 'id' | 'type'>;

export interface CredentialStoreInfo {
  kind: 'keyring' | 'file';
  /** For people: e.g. "Secret Service (GNOME Keyring)" or the file's path. */
  description: string;
}

export interface HelloResult {
  protocol: typeof PROTOCOL_VERSION;
  hostVersion: string;
  /** Request types and event kinds this host supports. */
  capabilities: string[];
  credentialStore: CredentialStoreInfo;
  /** Node's process.platform of the host: 'linux', 'darwin', 'win32'. */
  platform: string;
}

export interface ConfigResult {
  /** The config as saved in the file (command-line overrides of `serve` are not in it). */
  config: Config;
  /** Whether the credential store holds a password for each upstream, by upstream id. */
  passwordSaved: Record<string, boolean>;
  /** Increases with every change the service applies; see the `config` event. */
  revision: number;
}

/** Characters per config.part: at most 3 bytes each once escaped into the reply, so under 1 MB. */
export const CONFIG_PART_CHARS = 200_000;

export interface ConfigPartResult {
  /** The revision these parts belong to. */
  revision: number;
  offset: number;
  /** Characters in the whole text; the last part ends there. */
  total: number;
  /** Characters offset .. offset + text.length of config.get's answer as JSON. */
  text: string;
}

/**
 * After config.replace / config.patch: the change is saved and applied. The config itself is
 * not echoed back (a large one would not fit a reply that must report success); read it with
 * config.get.
 */
export interface ConfigChangeResult {
  revision: number;
  passwordSaved: Record<string, boolean>;
}

export interface CredentialSetResult {
  upstreamId: string;
  saved: true;
}
export interface CredentialDeleteResult {
  upstreamId: string;
  /** False when there was nothing to delete. */
  deleted: boolean;
}
export interface ToggleResult {
  enabled: boolean;
}

export interface HopInfo {
  id: string;
  name: string;
  type: 'socks5' | 'socks4' | 'socks4a' | 'http';
  host: string;
  port: number;
  username?: string;
}

export interface RouteResult {
  /** host:port the target came down to. */
  destination: string;
  /** The matching rule's name or id, or 'default' for the default target. */
  rule: string;
  ruleId?: string;
  target: RuleTarget;
  route?: { id: string; name: string; label: string };
  hops: HopInfo[];
  /** What happens when hop 1 is down, when the route says anything but 'fail'. */
  onFirstHopDown?: 'direct' | { route: string };
  /** The same one line `switchyard route` prints. */
  description: string;
}

export interface HopReport {
  /** 1-based. */
  hop: number;
  name: string;
  ok: boolean;
  /** Hop 1: TCP connect plus handshake; later hops: their handshake. */
  ms: number;
  error?: string;
  upstream?: HopInfo;
}

export interface CheckResult {
  /** e.g. `route corp (gw > abroad)`. */
  label: string;
  destination: string;
  hops: HopReport[];
  ok: boolean;
}

export interface StatusResult {
  /** host:port the SOCKS server listens on. */
  listening: string;
  enabled: boolean;
  /** Client connections open now (including ones still in their handshake). */
  activeTunnels: number;
  /** Totals of the tunnels that have closed since the service started. */
  bytesUp: number;
  bytesDown: number;
  uptimeMs: number;
  startedBy: 'user' | 'bridge';
  pid: number;
  /** The config file the service owns. */
  configPath: string;
  /** Connected control clients (bridges and CLI), this one included. */
  controlClients: number;
}

export interface LogPageResult {
  /** Oldest first. */
  events: TunnelEvent[];
  /** True when older events than the first one returned are still in the buffer. */
  more: boolean;
  /** The newest seq in the buffer (0 when it is empty): page back from latestSeq + 1. */
  latestSeq: number;
}

export interface LogSubscribeResult {
  /** Events after this seq will come as `log` events; page back for older ones. */
  latestSeq: number;
}

export type EmptyResult = Record<string, never>;

export interface ReloadResult {
  revision: number;
}

export interface StopResult {
  pid: number;
  stopping: true;
}

export interface ResultMap {
  hello: HelloResult;
  'config.get': ConfigResult;
  'config.part': ConfigPartResult;
  'config.replace': ConfigChangeResult;
  'config.patch': ConfigChangeResult;
  'credential.set': CredentialSetResult;
  'credential.delete': CredentialDeleteResult;
  'toggle.set': ToggleResult;
  route: RouteResult;
  check: CheckResult;
  status: StatusResult;
  'log.page': LogPageResult;
  'log.subscribe': LogSubscribeResult;
  'log.unsubscribe': EmptyResult;
  'service.reload': ReloadResult;
  'service.stop': StopResult;
}

/**
 * - BAD_MESSAGE: not JSON, not an object, unknown type, missing or mistyped fields.
 * - UNSUPPORTED_VERSION: `v` is not PROTOCOL_VERSION.
 * - INVALID_CONFIG: the resulting config fails the schema; `issues` name each field.
 * - NOT_FOUND: no upstream or route with that id or name.
 * - TOO_LARGE: the message (either way) exceeds the size limit (for config.get: use config.part).
 * - CHANGED: config.part: the config changed since the part before; read it again from 0.
 * - UNAVAILABLE: the bridge cannot reach or start the service.
 * - FAILED: anything else; the message says what.
 */
export type ErrorCode =
  | 'BAD_MESSAGE'
  | 'UNSUPPORTED_VERSION'
  | 'INVALID_CONFIG'
  | 'NOT_FOUND'
  | 'TOO_LARGE'
  | 'CHANGED'
  | 'UNAVAILABLE'
  | 'FAILED';

export interface ProtocolIssue {
  /** e.g. `listen.port` or `rules[3].match.hosts[0]`. */
  path: string;
  message: string;
}

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  issues?: ProtocolIssue[];
}

export interface OkResponse<T extends RequestType = RequestType> {
  v: typeof PROTOCOL_VERSION;
  id: number;
  ok: true;
  result: ResultMap[T];
}

export interface ErrorResponse {
  v: typeof PROTOCOL_VERSION;
  /** null only when the request was too broken to read its id. */
  id: number | null;
  ok: false;
  error: ProtocolError;
}

export type Response = OkResponse | ErrorResponse;

export interface StatusEvent {
  v: typeof PROTOCOL_VERSION;
  event: 'status';
  data: StatusResult;
}

export interface LogEvent {
  v: typeof PROTOCOL_VERSION;
  event: 'log';
  /** New events, oldest first; `dropped` counts ones skipped because this client fell behind. */
  data: { events: TunnelEvent[]; dropped?: number };
}

export interface ConfigEvent {
  v: typeof PROTOCOL_VERSION;
  event: 'config';
  /** The config changed (by any client or a reload): fetch it with config.get. */
  data: { revision: number; enabled: boolean };
}

/**
 * From the bridge, not the service: the connection to the service was lost (it stopped or
 * crashed). The next request starts or finds a service again; subscriptions must be renewed.
 */
export interface ServiceEvent {
  v: typeof PROTOCOL_VERSION;
  event: 'service';
  data: { state: 'disconnected' };
}

export type HostEvent = StatusEvent | LogEvent | ConfigEvent | ServiceEvent;
export type EventKind = HostEvent['event'];
export const EVENT_KINDS = ['status', 'log', 'config', 'service'] as const satisfies readonly EventKind[];

/** Anything the host sends. */
export type HostMessage = Response | HostEvent;

export function isEvent(message: HostMessage): message is HostEvent {
  return 'event' in message;
}

export function okResponse<T extends RequestType>(id: number, _type: T, result: ResultMap[T]): OkResponse<T> {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

export function errorResponse(id: number | null, error: ProtocolError): ErrorResponse {
  return { v: PROTOCOL_VERSION, id, ok: false, error };
}

/** The UTF-8 size of a message as JSON, without TextEncoder gymnastics at every call site. */
export function jsonByteLength(message: unknown): number {
  return utf8Length(JSON.stringify(message));
}

export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
