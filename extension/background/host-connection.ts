/**
 * The one native-messaging port to the host. It says hello, matches replies to requests by id
 * (each with a timeout), hands events on, and comes back by itself: a lost port is reopened
 * and a service the bridge could not reach is asked again, after 0.5 s, 1 s, 2 s ... 30 s.
 *
 * Two ways to be down, told apart because the user must do different things: the port itself
 * failed (host not installed, or the bridge process died), or the bridge is up but cannot reach
 * the service (it answers UNAVAILABLE, or sends a 'service' event when the service went away).
 */
import type {
  ErrorCode,
  HelloResult,
  HostEvent,
  ParamsOf,
  ProtocolIssue,
  RequestType,
  ResultMap,
} from '../../shared/messages/protocol.ts';
import { PROTOCOL_VERSION } from '../../shared/messages/protocol.ts';
import { CodedError, PendingRequests, type Timers } from '../../shared/messages/requests.ts';

export type { Timers };

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/** `check` connects through every hop of a route, each with its own timeouts. */
const TIMEOUTS: Partial<Record<RequestType, number>> = { check: 90_000 };

export type HostErrorCode = ErrorCode | 'TIMEOUT' | 'DISCONNECTED';

export class HostRequestError extends CodedError<HostErrorCode> {
  override readonly name = 'HostRequestError';
}

/** The host cannot be reached right now: anything else is an answer about the request itself. */
export function isUnreachable(error: unknown): boolean {
  return (
    error instanceof HostRequestError &&
    (error.code === 'UNAVAILABLE' || error.code === 'DISCONNECTED' || error.code === 'TIMEOUT')
  );
}

/** The slice of runtime.Port used here; the polyfill's and Chrome's ports both fit. */
export interface NativePort {
  postMessage(message: unknown): void;
  disconnect(): void;
  readonly onMessage: { addListener(listener: (message: unknown) => void): void };
  readonly onDisconnect: { addListener(listener: (port: NativePort) => void): void };
  /** Firefox puts the reason here; Chrome in runtime.lastError. */
  readonly error?: { readonly message?: string } | null;
}

export type ConnectionEvent =
  | { readonly type: 'connecting' }
  | { readonly type: 'ready'; readonly hello: HelloResult }
  | { readonly type: 'closed'; readonly error: string }
  | { readonly type: 'service-down'; readonly error: string }
  | { readonly type: 'event'; readonly event: HostEvent };

export interface HostConnectionOptions {
  readonly connect: () => NativePort;
  /** runtime.lastError's message, read inside onDisconnect (Chrome's way of saying why). */
  readonly lastError: () => string | undefined;
  readonly hello: ParamsOf<'hello'>;
  readonly onChange: (event: ConnectionEvent) => void;
  readonly timers?: Timers;
  readonly requestTimeoutMs?: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const defaultTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

export class HostConnection {
  private readonly options: HostConnectionOptions;
  private readonly timers: Timers;
  private port: NativePort | undefined;
  private ready = false;
  private readonly pending: PendingRequests<unknown>;
  private backoffMs = BACKOFF_MIN_MS;
  private retryTimer: unknown;
  private greeting = false;

  constructor(options: HostConnectionOptions) {
    this.options = options;
    this.timers = options.timers ?? defaultTimers;
    this.pending = new PendingRequests(this.timers);
  }

  /** True once hello has been answered on the current port and the service is reachable. */
  get isReady(): boolean {
    return this.ready;
  }

  start(): void {
    if (this.port === undefined && this.retryTimer === undefined) this.open();
  }

  /** Now, not after the backoff: the user asked, or something suggests the host is back. */
  reconnectNow(): void {
    this.cancelRetry();
    this.backoffMs = BACKOFF_MIN_MS;
    if (this.port === undefined) this.open();
    else if (!this.ready) void this.greet();
  }

  request<T extends RequestType>(type: T, params: ParamsOf<T>, timeoutMs?: number): Promise<ResultMap[T]> {
    const port = this.port;
    if (port === undefined) {
      return Promise.reject(new HostRequestError('DISCONNECTED', 'not connected to the Switchyard host'));
    }
    const ms = timeoutMs ?? TIMEOUTS[type] ?? this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const { id, reply } = this.pending.open(
      ms,
      () => new HostRequestError('TIMEOUT', `the host did not answer '${type}' within ${ms / 1000} s`),
    );
    try {
      port.postMessage({ ...params, v: PROTOCOL_VERSION, id, type });
    } catch (error) {
      this.pending
        .take(id)
        ?.reject(
          new HostRequestError('DISCONNECTED', error instanceof Error ? error.message : String(error)),
        );
    }
    // The host answers a request of type T with ResultMap[T]; the protocol guarantees it.
    return reply as Promise<ResultMap[T]>;
  }

  private open(): void {
    this.retryTimer = undefined;
    this.options.onChange({ type: 'connecting' });
    let port: NativePort;
    try {
      port = this.options.connect();
    } catch (error) {
      // Chrome throws synchronously for a malformed name or a missing permission.
      this.closed(error instanceof Error ? error.message : String(error));
      return;
    }
    this.port = port;
    port.onMessage.addListener((message) => {
      if (this.port === port) this.receive(message);
    });
    port.onDisconnect.addListener((p) => {
      if (this.port !== port) return;
      const reason = p.error?.message ?? this.options.lastError() ?? 'the host closed the connection';
      this.port = undefined;
      this.closed(reason);
    });
    void this.greet();
  }

  private async greet(): Promise<void> {
    if (this.greeting || this.port === undefined) return;
    this.greeting = true;
    try {
      const hello = await this.request('hello', this.options.hello);
      this.ready = true;
      this.backoffMs = BACKOFF_MIN_MS;
      this.options.onChange({ type: 'ready', hello });
    } catch (error) {
      if (!(error instanceof HostRequestError) || error.code === 'DISCONNECTED') return;
      if (error.code === 'TIMEOUT') {
        // A port that does not answer hello is of no use: drop it and open a new one.
        const port = this.port;
        this.port = undefined;
        port?.disconnect();
        this.closed(error.message);
        return;
      }
      this.serviceDown(error.message);
    } finally {
      this.greeting = false;
    }
  }

  private receive(message: unknown): void {
    if (!isRecord(message) || message.v !== PROTOCOL_VERSION) return;
    if (typeof message.event === 'string') {
      const event = message as unknown as HostEvent;
      if (event.event === 'service') {
        this.serviceDown('the service stopped');
        return;
      }
      this.options.onChange({ type: 'event', event });
      return;
    }
    if (typeof message.id !== 'number') return;
    const pending = this.pending.take(message.id);
    if (pending === undefined) return;
    if (message.ok === true) {
      pending.resolve(message.result);
      return;
    }
    const error = isRecord(message.error) ? message.error : {};
    const code = typeof error.code === 'string' ? (error.code as ErrorCode) : 'FAILED';
    const text = typeof error.message === 'string' ? error.message : 'the host refused the request';
    const issues = Array.isArray(error.issues) ? (error.issues as ProtocolIssue[]) : undefined;
    const failure = new HostRequestError(code, text, issues);
    // Any reply can be the first sign that the service went away behind the bridge.
    if (code === 'UNAVAILABLE' && this.ready) this.serviceDown(text);
    pending.reject(failure);
  }

  private serviceDown(error: string): void {
    this.ready = false;
    this.options.onChange({ type: 'service-down', error });
    // The bridge starts the service again on the next request: ask after the backoff.
    this.scheduleRetry(() => void this.greet());
  }

  private closed(error: string): void {
    this.ready = false;
    this.pending.rejectAll(
      () => new HostRequestError('DISCONNECTED', `the connection to the host was lost: ${error}`),
    );
    this.options.onChange({ type: 'closed', error });
    this.scheduleRetry(() => this.open());
  }

  private scheduleRetry(action: () => void): void {
    this.cancelRetry();
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = undefined;
      action();
    }, delay);
  }

  private cancelRetry(): void {
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
