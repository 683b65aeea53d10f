/**
 * The pages' one way to the background: requests by runtime.sendMessage, pushes over a runtime
 * port. Nothing else in the UI touches runtime messaging, so the pages can be tested against an
 * in-memory client and the contract in ui-protocol.ts is enforced in one place.
 */
import type { ParamsOf, ProtocolIssue, RequestType, ResultMap } from '../../shared/messages/protocol.ts';
import {
  type HostRequest,
  UI_PORT_NAME,
  type UiPush,
  type UiRequest,
  type UiResponse,
  type UiResultMap,
} from '../shared/ui-protocol.ts';

export interface BackgroundClient {
  send<R extends UiRequest>(request: R): Promise<UiResultMap[R['type']]>;
  /** A host protocol request, relayed by the background's native port. */
  host<T extends RequestType>(type: T, params: ParamsOf<T>): Promise<ResultMap[T]>;
  /** Pushes from the background (state, log events); returns the unsubscribe function. */
  subscribe(listener: (push: UiPush) => void): () => void;
}

/** A failed request, with the background's (or the host's) code and per-field issues. */
export class BackgroundError extends Error {
  override readonly name = 'BackgroundError';
  readonly code: string;
  readonly issues: readonly ProtocolIssue[];

  constructor(code: string, message: string, issues: readonly ProtocolIssue[] = []) {
    super(message);
    this.code = code;
    this.issues = issues;
  }
}

/** The parts of runtime.Port this client uses; webextension-polyfill's Port fits it. */
export interface PortLike {
  postMessage(message: unknown): void;
  disconnect(): void;
  readonly onMessage: { addListener(callback: (message: unknown) => void): void };
  readonly onDisconnect: { addListener(callback: () => void): void };
}

/** The parts of browser.runtime this client uses, injected so tests and other hosts can swap it. */
export interface RuntimeLike {
  sendMessage(message: unknown): Promise<unknown>;
  connect(connectInfo: { name: string }): PortLike;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isPush(message: unknown): message is UiPush {
  return isObject(message) && (message.type === 'state' || message.type === 'log');
}

function isResponse(message: unknown): message is UiResponse<UiRequest['type']> {
  return isObject(message) && typeof message.ok === 'boolean';
}

/** After the worker restarts (MV3 stops idle workers), the port drops: reconnect after this. */
const RECONNECT_MS = 500;

export function createBackgroundClient(runtime: RuntimeLike): BackgroundClient {
  const listeners = new Set<(push: UiPush) => void>();
  let port: PortLike | null = null;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  const emit = (push: UiPush) => {
    for (const listener of [...listeners]) listener(push);
  };

  const send = async <R extends UiRequest>(request: R): Promise<UiResultMap[R['type']]> => {
    let reply: unknown;
    try {
      reply = await runtime.sendMessage(request);
    } catch (error) {
      throw new BackgroundError(
        'UNAVAILABLE',
        `The extension's background did not answer: ${errorMessage(error)}`,
      );
    }
    if (!isResponse(reply)) {
      throw new BackgroundError(
        'UNAVAILABLE',
        `The extension's background gave no answer to ${request.type}`,
      );
    }
    if (!reply.ok) throw new BackgroundError(reply.error.code, reply.error.message, reply.error.issues);
    return reply.result as UiResultMap[R['type']];
  };

  const connect = (isReconnect: boolean) => {
    const p = runtime.connect({ name: UI_PORT_NAME });
    port = p;
    p.onMessage.addListener((message) => {
      if (isPush(message)) emit(message);
    });
    p.onDisconnect.addListener(() => {
      if (port !== p) return;
      port = null;
      if (listeners.size === 0) return;
      reconnectTimer = setTimeout(() => {
        reconnectTimer = undefined;
        connect(true);
      }, RECONNECT_MS);
    });
    // A restarted worker may not push state by itself; what changed while the port was down
    // would otherwise stay invisible until the next change.
    if (isReconnect) {
      send({ type: 'state.get' }).then(
        (state) => emit({ type: 'state', state }),
        () => {},
      );
    }
  };

  return {
    send,
    host: async <T extends RequestType>(type: T, params: ParamsOf<T>): Promise<ResultMap[T]> => {
      // The union of all {type, params} pairs cannot be narrowed from a generic T.
      const request = { type, params } as unknown as HostRequest;
      const result = await send({ type: 'host.request', request });
      return result as ResultMap[T];
    },
    subscribe(listener) {
      listeners.add(listener);
      if (port === null && reconnectTimer === undefined) connect(false);
      return () => {
        listeners.delete(listener);
        if (listeners.size > 0) return;
        clearTimeout(reconnectTimer);
        reconnectTimer = undefined;
        const p = port;
        port = null;
        p?.disconnect();
      };
    },
  };
}
