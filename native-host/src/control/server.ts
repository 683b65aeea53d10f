/**
 * The control endpoint: a Unix socket (a named pipe on Windows) speaking newline-delimited JSON,
 * one protocol message per line. Every line is validated before the handler sees it, and every
 * problem gets an error reply: a client can send anything without taking the service down.
 * Replies and events are held to the native-messaging size limit here, since the bridge relays
 * them to the browser as they are.
 */
import { chmod, unlink } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import {
  type ClientKind,
  type HostEvent,
  type HostMessage,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  type Response,
  errorResponse,
  isEvent,
} from '../../../shared/messages/protocol.ts';
import { type IncomingRequest, parseRequest } from '../../../shared/messages/schema.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import type { Logger } from '../log/logger.ts';
import { MAX_INCOMING_FRAME_BYTES } from '../native-messaging/framing.ts';
import { LineSplitter } from './lines.ts';

/** Log events for a subscriber are gathered this long, so a burst goes out as one message. */
const LOG_BATCH_MS = 50;
/** A subscriber this far behind loses log events (counted in `dropped`) instead of our memory. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;
const MAX_PENDING_EVENTS = 10_000;

export interface LogSource {
  subscribe(listener: (event: TunnelEvent) => void): () => void;
}

export interface ControlConnection {
  readonly id: number;
  /** From the client's hello, if it sent one. */
  client: ClientKind | undefined;
  readonly subscribed: boolean;
  subscribe(): void;
  unsubscribe(): void;
  send(message: HostMessage): void;
}

export type RequestHandler = (request: IncomingRequest, connection: ControlConnection) => Promise<Response>;

export interface ControlServerOptions {
  readonly endpoint: string;
  readonly handler: RequestHandler;
  readonly logSource: LogSource;
  readonly logger: Logger;
  /** Client to service; the same limit as the browser's frames (the bridge forwards those). */
  readonly maxRequestBytes?: number;
  readonly onConnectionsChanged?: (count: number) => void;
}

function utf8Size(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

class Connection implements ControlConnection {
  readonly id: number;
  client: ClientKind | undefined;
  private readonly socket: Socket;
  private readonly logger: Logger;
  private readonly logSource: LogSource;
  private unsubscribeLog: (() => void) | undefined;
  private pending: TunnelEvent[] = [];
  private dropped = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(id: number, socket: Socket, logSource: LogSource, logger: Logger) {
    this.id = id;
    this.socket = socket;
    this.logSource = logSource;
    this.logger = logger;
  }

  get subscribed(): boolean {
    return this.unsubscribeLog !== undefined;
  }

  subscribe(): void {
    this.unsubscribeLog ??= this.logSource.subscribe((event) => this.queue(event));
  }

  unsubscribe(): void {
    this.unsubscribeLog?.();
    this.unsubscribeLog = undefined;
    this.pending = [];
    this.dropped = 0;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  send(message: HostMessage): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    let json = JSON.stringify(message);
    if (utf8Size(json) > MAX_MESSAGE_BYTES) {
      if (isEvent(message)) {
        this.logger.warn('an event was too large to send; dropped', { event: message.event });
        return;
      }
      json = JSON.stringify(
        errorResponse(message.id, {
          code: 'TOO_LARGE',
          message: `the reply would be ${utf8Size(json)} bytes, over the ${MAX_MESSAGE_BYTES}-byte message limit`,
        }),
      );
    }
    this.socket.write(`${json}\n`);
  }

  private queue(event: TunnelEvent): void {
    if (this.socket.writableLength > MAX_BACKLOG_BYTES || this.pending.length >= MAX_PENDING_EVENTS) {
      this.dropped += 1;
    } else {
      this.pending.push(event);
    }
    this.flushTimer ??= setTimeout(() => this.flush(), LOG_BATCH_MS);
  }

  /** As few `log` events as the size limit allows, each under it. */
  private flush(): void {
    this.flushTimer = undefined;
    const events = this.pending;
    this.pending = [];
    const budget = MAX_MESSAGE_BYTES - 256;
    let batch: TunnelEvent[] = [];
    let bytes = 0;
    const emit = (): void => {
      const data: { events: TunnelEvent[]; dropped?: number } = { events: batch };
      if (this.dropped > 0) data.dropped = this.dropped;
      this.dropped = 0;
      this.send({ v: PROTOCOL_VERSION, event: 'log', data });
      batch = [];
      bytes = 0;
    };
    for (const event of events) {
      const size = utf8Size(JSON.stringify(event)) + 1;
      if (batch.length > 0 && bytes + size > budget) emit();
      batch.push(event);
      bytes += size;
    }
    if (batch.length > 0 || this.dropped > 0) emit();
  }
}

export class ControlServer {
  private readonly options: ControlServerOptions;
  private readonly server: Server;
  private readonly connections = new Map<Socket, Connection>();
  private nextId = 1;
  private listening = false;

  constructor(options: ControlServerOptions) {
    this.options = options;
    this.server = createServer((socket) => this.accept(socket));
    // A failed listen() goes to its caller (the single-instance check expects EADDRINUSE).
    this.server.on('error', (error) => {
      if (this.listening) options.logger.error('control endpoint error', { error: error.message });
    });
  }

  get endpoint(): string {
    return this.options.endpoint;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Rejects with the listen error (EADDRINUSE when a socket file is in the way). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(this.options.endpoint, () => {
        this.server.off('error', onError);
        this.listening = true;
        // The private directory is the real protection; this covers a directory made by hand.
        const tighten =
          process.platform === 'win32' ? Promise.resolve() : chmod(this.options.endpoint, 0o600);
        tighten.then(resolve, resolve);
      });
    });
  }

  broadcast(event: HostEvent, to: (connection: ControlConnection) => boolean = () => true): void {
    for (const connection of this.connections.values()) if (to(connection)) connection.send(event);
  }

  async close(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const [socket, connection] of this.connections) {
      connection.unsubscribe();
      // end, not destroy: a last reply (to service.stop) may still be in the socket's buffer.
      socket.end();
      setTimeout(() => socket.destroy(), 500).unref();
    }
    await closed;
    if (process.platform !== 'win32') await unlink(this.options.endpoint).catch(() => undefined);
  }

  private accept(socket: Socket): void {
    const { logger, handler } = this.options;
    const connection = new Connection(this.nextId++, socket, this.options.logSource, logger);
    this.connections.set(socket, connection);
    this.options.onConnectionsChanged?.(this.connections.size);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      connection.unsubscribe();
      this.connections.delete(socket);
      this.options.onConnectionsChanged?.(this.connections.size);
    });
    const maxBytes = this.options.maxRequestBytes ?? MAX_INCOMING_FRAME_BYTES;
    const lines = new LineSplitter(maxBytes);
    socket.on('data', (chunk: Buffer) => {
      for (const line of lines.push(chunk)) {
        if (line.kind === 'too-long') {
          connection.send(
            errorResponse(null, {
              code: 'TOO_LARGE',
              message: `a message was over the ${maxBytes}-byte limit; it was skipped`,
            }),
          );
          continue;
        }
        void this.handleLine(line.text, connection, handler);
      }
    });
  }

  private async handleLine(text: string, connection: Connection, handler: RequestHandler): Promise<void> {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      connection.send(
        errorResponse(null, {
          code: 'BAD_MESSAGE',
          message: `(message): not JSON: ${(error as Error).message}`,
          issues: [{ path: '(message)', message: `not JSON: ${(error as Error).message}` }],
        }),
      );
      return;
    }
    const parsed = parseRequest(json);
    if (!parsed.ok) {
      connection.send(errorResponse(parsed.id, parsed.error));
      return;
    }
    try {
      connection.send(await handler(parsed.request, connection));
    } catch (error) {
      // The handler maps every failure it knows; this keeps an unknown one a reply, not a crash.
      this.options.logger.error('control request failed unexpectedly', {
        type: parsed.request.type,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      connection.send(
        errorResponse(parsed.request.id, {
          code: 'FAILED',
          message: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
}
