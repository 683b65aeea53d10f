/**
 * A client of the control endpoint, for the CLI and the native-messaging bridge. Ids are the
 * client's own on the wire; `forward` maps a browser's ids to them and back, so requests from
 * different sources can never be confused.
 */
import { type Socket, connect } from 'node:net';
import {
  type ErrorCode,
  type HostEvent,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  type ParamsOf,
  type RequestType,
  type Response,
  type ResultMap,
} from '../../../shared/messages/protocol.ts';
import { CodedError, PendingRequests, type Timers } from '../../../shared/messages/requests.ts';
import { type IncomingRequest, isHostMessage } from '../../../shared/messages/schema.ts';
import { LineSplitter } from './lines.ts';

/** Nothing listens on the endpoint: no service runs (or a crashed one left its socket). */
export class ServiceNotRunningError extends Error {
  override readonly name = 'ServiceNotRunningError';
  readonly endpoint: string;

  constructor(endpoint: string, cause: string) {
    super(`no switchyard service is running (${endpoint}: ${cause})`);
    this.endpoint = endpoint;
  }
}

/** The service answered with an error. */
export class RequestFailedError extends CodedError<ErrorCode> {
  override readonly name = 'RequestFailedError';
}

/** The connection closed (or timed out) before the answer came. */
export class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError';
}

export interface RequestOptions {
  /** 0 waits for as long as the connection lasts. */
  readonly timeoutMs?: number;
}

const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

const nodeTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export function connectControl(
  endpoint: string,
  options: { timeoutMs?: number } = {},
): Promise<ControlClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: endpoint });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectionLostError(`${endpoint} did not accept the connection in time`));
    }, options.timeoutMs ?? 3000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(new ControlClient(socket));
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      if (error.code !== undefined && NOT_RUNNING.has(error.code)) {
        reject(new ServiceNotRunningError(endpoint, error.code));
      } else {
        reject(error);
      }
    };
    socket.once('error', onError);
  });
}

export class ControlClient {
  private readonly socket: Socket;
  private readonly pending = new PendingRequests<Response>(nodeTimers);
  private readonly eventListeners = new Set<(event: HostEvent) => void>();
  private readonly closeListeners = new Set<() => void>();
  private ended = false;

  constructor(socket: Socket) {
    this.socket = socket;
    // The service never sends more than the message limit; a little slack for the newline.
    const lines = new LineSplitter(MAX_MESSAGE_BYTES + 16);
    socket.on('data', (chunk: Buffer) => {
      for (const line of lines.push(chunk)) if (line.kind === 'line') this.receive(line.text);
    });
    socket.on('error', () => undefined);
    socket.once('close', () => this.onClosed());
    socket.once('end', () => socket.destroy());
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Resolves with the result, or rejects with RequestFailedError for an error reply. */
  async request<T extends RequestType>(
    type: T,
    params: ParamsOf<T>,
    options: RequestOptions = {},
  ): Promise<ResultMap[T]> {
    const response = await this.exchange({ ...params, type }, options);
    if (!response.ok) {
      const { code, message, issues } = response.error;
      throw new RequestFailedError(code, message, issues);
    }
    // The service answers a request of type T with ResultMap[T]; the protocol guarantees it.
    return response.result as ResultMap[T];
  }

  /** Sends a request as the browser sent it and returns the response with the browser's id. */
  async forward(request: IncomingRequest, options: RequestOptions = {}): Promise<Response> {
    const { v: _v, id, ...body } = request;
    const response = await this.exchange(body, options);
    return { ...response, id };
  }

  onEvent(listener: (event: HostEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Lets what was written reach the service (bounded by `timeoutMs`), then closes. */
  shutdown(timeoutMs = 100): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.socket.destroy();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.socket.end(done);
    });
  }

  private exchange(body: { type: string }, options: RequestOptions): Promise<Response> {
    if (this.ended) return Promise.reject(new ConnectionLostError('the connection to the service is closed'));
    const timeoutMs = options.timeoutMs ?? 0;
    const { id, reply } = this.pending.open(
      timeoutMs,
      () => new ConnectionLostError(`the service did not answer ${body.type} within ${timeoutMs} ms`),
    );
    this.socket.write(`${JSON.stringify({ v: PROTOCOL_VERSION, id, ...body })}\n`);
    return reply;
  }

  private receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isHostMessage(message)) return;
    const host = message as Response | HostEvent;
    if ('event' in host) {
      for (const listener of this.eventListeners) listener(host);
      return;
    }
    if (host.id === null) return;
    this.pending.take(host.id)?.resolve(host);
  }

  private onClosed(): void {
    this.ended = true;
    this.pending.rejectAll(() => new ConnectionLostError('the service closed the connection'));
    for (const listener of this.closeListeners) listener();
  }
}
