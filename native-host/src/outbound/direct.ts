/**
 * The direct exit: resolves the destination here (remote DNS for the client), then tries each
 * address in turn within one connect deadline. BIND listens on the address the client reached
 * us on, which is the one address we know the client can route to.
 */
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import type { Address } from '../protocol/address.ts';
import { repForErrno } from '../protocol/reply-codes.ts';
import { Rep } from '../protocol/socks5.ts';
import {
  type Connected,
  type Endpoint,
  type Outbound,
  OutboundError,
  type OutboundFailure,
  type OutboundOptions,
  type PendingBind,
  type SocketReads,
} from './outbound.ts';
import { type HostsMap, type ResolvedAddress, resolveHost, toLiteral } from './resolve.ts';

export interface DirectOptions {
  readonly connectTimeoutMs: number;
  readonly bindTimeoutMs: number;
  readonly hosts?: HostsMap;
  /** Replaces the system resolver (tests; never queries DNS then). */
  readonly lookup?: (host: string) => Promise<ResolvedAddress[]>;
}

function failureForErrno(code: string | undefined): OutboundFailure {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
    case 'ENODATA':
      return 'not-found';
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'ENETDOWN':
    case 'EHOSTDOWN':
      return 'unreachable';
    default:
      return 'other';
  }
}

export function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

export function outboundErrorFrom(error: unknown, what: string, hop?: number): OutboundError {
  if (error instanceof OutboundError) return error;
  const code = errnoOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new OutboundError(`${what}: ${detail}`, repForErrno(code), failureForErrno(code), hop, {
    cause: error,
  });
}

/** Connects to one resolved address, honouring the deadline and the abort signal. */
export function connectTcp(
  host: string,
  port: number,
  deadline: number,
  signal: AbortSignal,
  reads?: SocketReads,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new OutboundError('cancelled', Rep.GENERAL_FAILURE, 'aborted'));
      return;
    }
    const socket = createConnection({
      host,
      port,
      allowHalfOpen: true,
      noDelay: true,
      ...(reads ? { onread: reads.onread } : {}),
    });
    reads?.adopt(socket);
    const timer = setTimeout(
      () => {
        const err = Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' });
        socket.destroy(err);
      },
      Math.max(0, deadline - Date.now()),
    );
    const onAbort = (): void => {
      socket.destroy(Object.assign(new Error('cancelled'), { code: 'ECANCELED' }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onConnect = (): void => {
      done();
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/** A lookup's answer, or EAI_AGAIN once `deadline` passes, or 'cancelled' when `signal` aborts. */
function withinDeadline<T>(
  lookup: Promise<T>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const wait = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => {
      finish();
      const error = new Error(`no answer from the resolver within ${wait} ms`);
      reject(Object.assign(error, { code: 'EAI_AGAIN' }));
    }, wait);
    const onAbort = (): void => {
      finish();
      reject(new OutboundError('cancelled', Rep.GENERAL_FAILURE, 'aborted'));
    };
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    lookup.then(
      (value) => {
        finish();
        resolve(value);
      },
      (error: unknown) => {
        finish();
        reject(error);
      },
    );
  });
}

export class DirectOutbound implements Outbound {
  readonly label = 'direct';
  private readonly options: DirectOptions;

  constructor(options: DirectOptions) {
    this.options = options;
  }

  /**
   * A resolver that never answers must not hold the request past its deadline (by default the
   * connect timeout from now): then it fails as a temporary resolver failure (EAI_AGAIN).
   */
  async resolve(
    destination: Address,
    bounds: { readonly deadline?: number; readonly signal?: AbortSignal } = {},
  ): Promise<ResolvedAddress[]> {
    // An address needs no resolver, and so no deadline timer either (most requests are these).
    const literal = destination.type === 'domain' ? undefined : toLiteral(destination.host);
    if (literal !== undefined) return [literal];
    try {
      const addresses = await withinDeadline(
        resolveHost(destination.host, this.options.hosts, this.options.lookup),
        bounds.deadline ?? Date.now() + this.options.connectTimeoutMs,
        bounds.signal,
      );
      if (addresses.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
      return addresses;
    } catch (error) {
      throw outboundErrorFrom(error, `cannot resolve ${destination.host}`);
    }
  }

  async connect(destination: Address, options: OutboundOptions): Promise<Connected> {
    const deadline = Date.now() + this.options.connectTimeoutMs;
    let addresses = await this.resolve(destination, { deadline, signal: options.signal });
    if (options.vetAddresses) {
      const allowed = new Set(options.vetAddresses(addresses.map((a) => a.address)));
      addresses = addresses.filter((a) => allowed.has(a.address));
    }
    let lastError: unknown;
    // Every address is tried (IPv6 and IPv4 as the resolver ordered them) within one deadline,
    // so a dead first address does not cost the client the whole request.
    for (const candidate of addresses) {
      if (Date.now() >= deadline) break;
      try {
        const socket = await connectTcp(
          candidate.address,
          destination.port,
          deadline,
          options.signal,
          options.reads?.(),
        );
        return {
          socket,
          bound: { host: socket.localAddress ?? '0.0.0.0', port: socket.localPort ?? 0 },
          remote: { host: candidate.address, port: destination.port },
        };
      } catch (error) {
        if (options.signal.aborted) throw outboundErrorFrom(error, 'cancelled');
        lastError = error;
      }
    }
    lastError ??= Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' });
    throw outboundErrorFrom(lastError, `cannot connect to ${destination.host}:${destination.port}`);
  }

  async bind(destination: Address, listenOn: Endpoint, options: OutboundOptions): Promise<PendingBind> {
    // The peer we expect is the destination the client named; only its address may connect.
    const expected =
      destination.type === 'domain' ? await this.resolve(destination) : [{ address: destination.host }];
    const allowed = new Set(expected.map((a) => normalizeIp(a.address)));
    // An unspecified address (SOCKS4 clients often send 0.0.0.0) means "any peer".
    const anyPeer = allowed.has('0.0.0.0') || allowed.has('::');
    const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(outboundErrorFrom(err, `cannot listen for BIND on ${listenOn.host}`)),
      );
      server.listen({ host: listenOn.host, port: 0, exclusive: true }, resolve);
    });
    const address = server.address();
    const bound: Endpoint =
      address && typeof address === 'object' ? { host: address.address, port: address.port } : listenOn;

    let cancel: () => void = () => undefined;
    const accepted = new Promise<{ socket: Socket; peer: Endpoint }>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', onAbort);
        server.close();
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new OutboundError('no peer connected to the BIND address in time', Rep.TTL_EXPIRED, 'timeout'),
        );
      }, this.options.bindTimeoutMs);
      const onAbort = (): void => {
        finish();
        reject(new OutboundError('cancelled', Rep.GENERAL_FAILURE, 'aborted'));
      };
      cancel = onAbort;
      options.signal.addEventListener('abort', onAbort, { once: true });
      server.on('connection', (socket: Socket) => {
        const peerHost = socket.remoteAddress ?? '';
        const peer = { host: peerHost, port: socket.remotePort ?? 0 };
        finish();
        if (!anyPeer && !allowed.has(normalizeIp(peerHost))) {
          socket.destroy();
          reject(
            new OutboundError(
              `BIND peer ${peerHost} is not the expected ${destination.host}`,
              Rep.NOT_ALLOWED,
              'rejected',
            ),
          );
          return;
        }
        socket.setNoDelay(true);
        resolve({ socket, peer });
      });
    });
    // The promise may be rejected before anyone awaits it (client gone); never unhandled.
    accepted.catch(() => undefined);
    return { bound, accepted, cancel: () => cancel() };
  }
}

/** `::ffff:1.2.3.4` and `1.2.3.4` are one peer. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}
