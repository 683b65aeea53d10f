/**
 * The listener: accepts clients, enforces the connection limit and the handshake timeout,
 * runs one session per client, and shuts down in order (stop accepting, let tunnels finish
 * for a grace period, then cut them).
 */
import { BlockList, type Server, type Socket, createServer, isIPv6 } from 'node:net';
import { UserStore } from '../auth/users.ts';
import { type Logger, silentLogger } from '../log/logger.ts';
import { DirectOutbound } from '../outbound/direct.ts';
import type { Endpoint } from '../outbound/outbound.ts';
import { formatAddress } from '../protocol/address.ts';
import { runSession } from './session.ts';
import type { TunnelEventSink } from './tunnel-log.ts';
import type { Dispatcher, ServerSettings } from './types.ts';

export interface SocksServerOptions {
  readonly settings: ServerSettings;
  /** Decides where each request goes; by default everything goes direct. */
  readonly dispatch?: Dispatcher;
  readonly logger?: Logger;
  /** Receives the live log's events. */
  readonly events?: TunnelEventSink;
}

/**
 * What the server keeps per client, on the socket itself. The timer and the abort controller
 * belong to the handshake and are let go when it ends, so that an open tunnel holds neither.
 */
interface SessionSlot {
  readonly live: Set<Socket>;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
}

const kSession = Symbol('switchyard.session');

interface SessionSocket extends Socket {
  [kSession]?: SessionSlot;
}

// Shared by every client (no closures per connection; see relay.ts).
function onSessionClose(this: SessionSocket): void {
  const slot = this[kSession];
  if (slot === undefined) return;
  clearTimeout(slot.timer);
  slot.abort?.abort();
  slot.live.delete(this);
}

/**
 * A socket error with no listener would crash the process; errors are handled per stage, this
 * one only keeps a late error (after the tunnel is torn down) harmless.
 */
function ignoreError(): void {}

export function socks4SourceList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [ip, bits] = entry.split('/');
    const type = isIPv6(ip ?? '') ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip!, type);
    else list.addSubnet(ip!, Number(bits), type);
  }
  return list;
}

export class SocksServer {
  private readonly server: Server;
  private readonly sessions = new Set<Socket>();
  private settings: ServerSettings;
  private dispatch: Dispatcher;
  private users: UserStore;
  private socks4Sources: BlockList;
  private readonly logger: Logger;
  private readonly events: TunnelEventSink | undefined;
  private nextId = 1;
  private acceptedCount = 0;
  private closing: Promise<void> | undefined;

  constructor(options: SocksServerOptions) {
    this.settings = options.settings;
    this.logger = options.logger ?? silentLogger;
    this.events = options.events;
    this.users = new UserStore(options.settings.users);
    this.socks4Sources = socks4SourceList(options.settings.socks4AllowFrom);
    this.dispatch = options.dispatch ?? directDispatcher(options.settings);
    // allowHalfOpen: a client that finishes sending must still get the whole response.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    // A failed listen() is reported to its caller (serve says which address is taken); log
    // only what goes wrong with a listener that is up.
    this.server.on('error', (error) => {
      if (this.server.listening) this.logger.error('listener error', { error: error.message });
    });
  }

  /** Applies new settings to connections accepted from now on; running tunnels keep theirs. */
  reconfigure(settings: ServerSettings, dispatch?: Dispatcher): void {
    this.settings = settings;
    this.users = new UserStore(settings.users);
    this.socks4Sources = socks4SourceList(settings.socks4AllowFrom);
    this.dispatch = dispatch ?? directDispatcher(settings);
  }

  listen(): Promise<Endpoint> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.settings.listen.host, port: this.settings.listen.port }, () => {
        this.server.off('error', onError);
        resolve(this.address());
      });
    });
  }

  address(): Endpoint {
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('server is not listening');
    return { host: a.address, port: a.port };
  }

  get activeConnections(): number {
    return this.sessions.size;
  }

  /** Clients accepted since this server started (refused ones included). */
  get accepted(): number {
    return this.acceptedCount;
  }

  /** Of those, the ones already gone: with `accepted`, a count that moves on every arrival and departure. */
  get departed(): number {
    return this.acceptedCount - this.sessions.size;
  }

  private accept(socket: SessionSocket): void {
    this.acceptedCount++;
    socket.on('error', ignoreError);
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.sessions.size >= this.settings.limits.maxConnections) {
      this.logger.warn('connection limit reached; refusing a client', {
        client: formatAddress({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 }),
        limit: this.settings.limits.maxConnections,
      });
      socket.destroy();
      return;
    }
    const id = this.nextId++;
    const abort = new AbortController();
    const slot: SessionSlot = { live: this.sessions, timer: undefined, abort };
    const { logger, settings } = this;
    slot.timer = setTimeout(() => {
      logger.info('handshake timed out; closing', {
        id,
        client: formatAddress({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 }),
        timeout_ms: settings.timeouts.handshakeMs,
      });
      abort.abort();
      socket.destroy();
    }, settings.timeouts.handshakeMs);
    socket[kSession] = slot;
    this.sessions.add(socket);
    socket.on('close', onSessionClose);

    runSession({
      id,
      socket,
      settings,
      users: this.users,
      socks4Sources: this.socks4Sources,
      dispatch: this.dispatch,
      logger,
      events: this.events,
      signal: abort.signal,
      handshakeDone: () => {
        // From here on the command (relay, BIND wait, UDP association) has its own bounds, and
        // a client leaving ends it through the socket rather than through the signal.
        clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.abort = undefined;
      },
    }).catch((error: unknown) => {
      // runSession handles its own errors; this is the last line of defence for the process.
      logger.error('unexpected session error', { id, error: String(error) });
      socket.destroy();
    });
  }

  /**
   * Stops accepting, waits up to the grace period for tunnels to end by themselves, then cuts
   * the rest. Idempotent.
   */
  close(graceMs = this.settings.timeouts.shutdownGraceMs): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      if (this.sessions.size > 0 && graceMs > 0) {
        this.logger.info('waiting for open tunnels to finish', {
          tunnels: this.sessions.size,
          grace_ms: graceMs,
        });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          const poll = setInterval(() => {
            if (this.sessions.size === 0) {
              clearTimeout(timer);
              clearInterval(poll);
              resolve();
            }
          }, 50);
          timer.unref?.();
          setTimeout(() => clearInterval(poll), graceMs).unref();
        });
      }
      // Destroying a socket aborts its handshake too (onSessionClose).
      for (const socket of this.sessions) socket.destroy();
      await stopped;
    })();
    return this.closing;
  }
}

export function directDispatcher(settings: ServerSettings): Dispatcher {
  const direct = new DirectOutbound({
    connectTimeoutMs: settings.timeouts.connectMs,
    bindTimeoutMs: settings.timeouts.bindMs,
  });
  return () => ({ kind: 'allow', outbound: direct });
}
