/**
 * The datagram half of SOCKS5 UDP ASSOCIATE: one socket facing the client, one egress socket
 * per address family facing the destinations, and the checks that keep the relay from being a
 * free UDP reflector. It knows nothing of the TCP control connection; the command decides when
 * the association ends and calls `close`.
 */
import { type RemoteInfo, type Socket as UdpSocket, createSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { LogFields, Logger } from '../log/logger.ts';
import type { Endpoint } from '../outbound/outbound.ts';
import { type ResolvedAddress, resolveHost } from '../outbound/resolve.ts';
import { bytesToIpv6, ipv6ToBytes } from '../protocol/address.ts';
import { parseUdpDatagram, serializeUdpHeader } from '../protocol/socks5.ts';

export interface UdpRelayOptions {
  /** Where the client-facing socket binds: the address the client reached us on. */
  readonly listenHost: string;
  /** The client's IP (the control connection's peer); no other source is accepted. */
  readonly clientHost: string;
  /** The port the client said it sends from; 0 = lock onto the first good datagram's port. */
  readonly clientPort: number;
  /** No relayed datagram either way for this long ends the association (0 = never). */
  readonly idleTimeoutMs: number;
  /** Distinct destinations (IP:port, and host names) the association may send to. */
  readonly maxDestinations: number;
  readonly logger: Logger;
  /** Identifies the association in the relay's own log lines. */
  readonly logFields?: LogFields;
  /** Name resolution; the system resolver by default. */
  readonly resolve?: (host: string) => Promise<ResolvedAddress[]>;
}

export interface UdpRelayStats {
  /** Datagrams and payload bytes from the client to destinations. */
  readonly datagramsUp: number;
  readonly bytesUp: number;
  /** Datagrams and payload bytes from destinations to the client. */
  readonly datagramsDown: number;
  readonly bytesDown: number;
  /** Datagrams refused: wrong source, bad header, fragments, unknown names, over the limit. */
  readonly dropped: number;
  /** Socket errors (failed sends and the like) that the association survived. */
  readonly errors: number;
  readonly destinations: number;
  readonly reason: 'closed' | 'idle';
}

type Family = 4 | 6;

interface NameEntry {
  readonly result: Promise<ResolvedAddress | undefined>;
  /** A failed lookup is retried after this time, so one transient failure is not final. */
  expires: number;
}

const NEGATIVE_CACHE_MS = 1000;

/**
 * One text per IP so that addresses from the codec, the resolver and the kernel compare equal:
 * IPv4-mapped IPv6 becomes IPv4, IPv6 is RFC 5952, a zone index is dropped.
 */
export function canonicalIp(ip: string): string {
  const zone = ip.indexOf('%');
  const bare = (zone >= 0 ? ip.slice(0, zone) : ip).toLowerCase();
  if (!bare.includes(':')) return bare;
  if (bare.startsWith('::ffff:') && isIPv4(bare.slice(7))) return bare.slice(7);
  if (!isIPv6(bare)) return bare;
  try {
    return bytesToIpv6(ipv6ToBytes(bare), 0);
  } catch {
    return bare;
  }
}

function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

function errorText(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return error instanceof Error ? error.message : String(error);
}

function bindUdp(family: Family, host: string): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    // ipv6Only: IPv4 has its own egress socket, and a dual-stack one would report mapped peers.
    const socket = createSocket(family === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    const onError = (error: Error): void => {
      try {
        socket.close();
      } catch {
        // never bound, nothing to close
      }
      reject(error);
    };
    socket.once('error', onError);
    socket.bind({ address: host, port: 0, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

export class UdpRelay {
  /** The client-facing socket's address: BND.ADDR/BND.PORT of the reply. */
  readonly bound: Endpoint;
  /** Resolves once, when the association has ended and both sockets are closed. */
  readonly done: Promise<UdpRelayStats>;

  private readonly options: UdpRelayOptions;
  private readonly client: UdpSocket;
  private readonly clientHost: string;
  /** Where replies go: the canonical IP, unless a zone index is needed to reach it. */
  private readonly clientTarget: string;
  private clientPort: number;
  private readonly resolveName: (host: string) => Promise<ResolvedAddress[]>;
  private readonly egress = new Map<Family, Promise<UdpSocket>>();
  private readonly ready = new Map<Family, UdpSocket>();
  /** Destinations sent to (canonical IP|port), each with its ready-made reply header. */
  private readonly destinations = new Map<string, Buffer>();
  private readonly names = new Map<string, NameEntry>();
  private limitWarned = false;
  private lastActive = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private finish: (stats: UdpRelayStats) => void = () => undefined;
  // Without a callback Node drops send errors (EMSGSIZE, ENETUNREACH) silently; one shared
  // callback per side reports them without a closure per datagram.
  private readonly egressSent = (error: Error | null): void => {
    if (error) this.socketError('egress', error);
  };
  private readonly clientSent = (error: Error | null): void => {
    if (error) this.socketError('client', error);
  };

  private datagramsUp = 0;
  private bytesUp = 0;
  private datagramsDown = 0;
  private bytesDown = 0;
  private dropped = 0;
  private errors = 0;

  /** Binds the client-facing socket; rejects with the bind error (the command maps it to a REP). */
  static async open(options: UdpRelayOptions): Promise<UdpRelay> {
    const listenHost = canonicalIp(options.listenHost);
    const client = await bindUdp(familyOf(listenHost), options.listenHost);
    return new UdpRelay(options, client);
  }

  private constructor(options: UdpRelayOptions, client: UdpSocket) {
    this.options = options;
    this.client = client;
    this.clientHost = canonicalIp(options.clientHost);
    this.clientTarget = options.clientHost.includes('%') ? options.clientHost : this.clientHost;
    this.clientPort = options.clientPort;
    this.resolveName = options.resolve ?? ((host) => resolveHost(host));
    const address = client.address();
    this.bound = { host: canonicalIp(address.address), port: address.port };
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
    client.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
    client.on('error', (error) => this.socketError('client', error));
    if (options.idleTimeoutMs > 0) this.armIdle(options.idleTimeoutMs);
  }

  /** Ends the association (idempotent). */
  close(reason: UdpRelayStats['reason'] = 'closed'): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idleTimer);
    closeQuietly(this.client);
    for (const socket of this.ready.values()) closeQuietly(socket);
    // Egress sockets still binding are closed as they come up.
    for (const [family, pending] of this.egress) {
      if (!this.ready.has(family)) pending.then(closeQuietly, () => undefined);
    }
    this.finish({
      datagramsUp: this.datagramsUp,
      bytesUp: this.bytesUp,
      datagramsDown: this.datagramsDown,
      bytesDown: this.bytesDown,
      dropped: this.dropped,
      errors: this.errors,
      destinations: this.destinations.size,
      reason,
    });
  }

  // ---- client -> destination --------------------------------------------------------------

  private fromClient(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.finished) return;
    if (rinfo.address !== this.clientHost && canonicalIp(rinfo.address) !== this.clientHost) {
      this.drop('source is not the client', rinfo);
      return;
    }
    if (this.clientPort !== 0 && rinfo.port !== this.clientPort) {
      this.drop('source port is not the client', rinfo);
      return;
    }
    let header: ReturnType<typeof parseUdpDatagram>;
    try {
      header = parseUdpDatagram(msg);
    } catch {
      this.drop('malformed header', rinfo);
      return;
    }
    // Locking on a well-formed datagram only: a stray probe must not claim the association.
    if (this.clientPort === 0) this.clientPort = rinfo.port;
    if (header.frag !== 0) {
      this.drop('fragment (unsupported)', rinfo);
      return;
    }
    const { address } = header;
    if (address.port === 0) {
      this.drop('destination port 0', rinfo);
      return;
    }
    const payload = msg.subarray(header.dataOffset);
    if (address.type === 'domain') {
      // Nothing in there is expected to throw; an unhandled rejection would end the process.
      this.sendToName(address.host, address.port, payload, rinfo).catch((error: unknown) =>
        this.socketError('egress', error),
      );
    } else {
      this.sendTo(address.host, address.port, payload, rinfo);
    }
  }

  private async sendToName(host: string, port: number, payload: Buffer, rinfo: RemoteInfo): Promise<void> {
    const key = host.toLowerCase().replace(/\.$/, '');
    let entry = this.names.get(key);
    if (!entry || entry.expires <= Date.now()) {
      if (!entry && this.names.size >= this.options.maxDestinations) {
        this.overLimit(rinfo);
        return;
      }
      const fresh: NameEntry = { result: this.lookup(host), expires: Number.POSITIVE_INFINITY };
      fresh.result.then((found) => {
        if (!found) fresh.expires = Date.now() + NEGATIVE_CACHE_MS;
      });
      this.names.set(key, fresh);
      entry = fresh;
    }
    const found = await entry.result;
    if (this.finished) return;
    if (!found) {
      this.drop('destination name did not resolve', rinfo);
      return;
    }
    this.sendTo(found.address, port, payload, rinfo);
  }

  private async lookup(host: string): Promise<ResolvedAddress | undefined> {
    try {
      const found = await this.resolveName(host);
      return found[0];
    } catch (error) {
      this.debug('udp destination lookup failed', { host, error: errorText(error) });
      return undefined;
    }
  }

  private sendTo(host: string, port: number, payload: Buffer, rinfo: RemoteInfo): void {
    const ip = canonicalIp(host);
    const family = familyOf(ip);
    const key = `${ip}|${port}`;
    if (!this.destinations.has(key)) {
      if (this.destinations.size >= this.options.maxDestinations) {
        this.overLimit(rinfo);
        return;
      }
      let header: Buffer;
      try {
        header = serializeUdpHeader({ type: family === 6 ? 'ipv6' : 'ipv4', host: ip, port });
      } catch {
        this.drop('destination is not an IP address', rinfo);
        return;
      }
      this.destinations.set(key, header);
    }
    // The zone (if any) is needed to send on a link-local address, so the original text goes out.
    const target = family === 4 ? ip : host;
    const socket = this.ready.get(family);
    if (socket) {
      this.send(socket, payload, port, target);
      return;
    }
    this.egressFor(family).then(
      (s) => {
        if (!this.finished) this.send(s, payload, port, target);
      },
      () => this.drop(`no IPv${family} egress`, rinfo),
    );
  }

  private send(socket: UdpSocket, payload: Buffer, port: number, host: string): void {
    this.datagramsUp++;
    this.bytesUp += payload.length;
    this.touch();
    try {
      socket.send(payload, port, host, this.egressSent);
    } catch (error) {
      this.socketError('egress', error);
    }
  }

  private egressFor(family: Family): Promise<UdpSocket> {
    let pending = this.egress.get(family);
    if (!pending) {
      pending = bindUdp(family, family === 6 ? '::' : '0.0.0.0');
      this.egress.set(family, pending);
      pending.then(
        (socket) => {
          if (this.finished) {
            closeQuietly(socket);
            return;
          }
          this.ready.set(family, socket);
          socket.on('message', (msg, rinfo) => this.fromDestination(msg, rinfo));
          socket.on('error', (error) => this.socketError('egress', error));
        },
        // Kept as failed: a host without IPv6 would otherwise retry the bind for every datagram.
        (error: unknown) => this.debug('udp egress socket failed', { family, error: errorText(error) }),
      );
    }
    return pending;
  }

  // ---- destination -> client --------------------------------------------------------------

  private fromDestination(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.finished) return;
    const header =
      this.destinations.get(`${rinfo.address}|${rinfo.port}`) ??
      this.destinations.get(`${canonicalIp(rinfo.address)}|${rinfo.port}`);
    if (!header) {
      this.drop('reply from a destination never sent to', rinfo);
      return;
    }
    this.datagramsDown++;
    this.bytesDown += msg.length;
    this.touch();
    try {
      // Header and payload go out as one datagram without being copied together.
      this.client.send([header, msg], this.clientPort, this.clientTarget, this.clientSent);
    } catch (error) {
      this.socketError('client', error);
    }
  }

  // ---- bookkeeping --------------------------------------------------------------------------

  private touch(): void {
    this.lastActive = Date.now();
  }

  /** One timer for the association, re-armed only when it fires: no timer work per datagram. */
  private armIdle(delay: number): void {
    this.idleTimer = setTimeout(() => {
      const quiet = Date.now() - this.lastActive;
      if (quiet >= this.options.idleTimeoutMs) this.close('idle');
      else this.armIdle(this.options.idleTimeoutMs - quiet);
    }, delay);
  }

  private overLimit(rinfo: RemoteInfo): void {
    if (!this.limitWarned) {
      this.limitWarned = true;
      this.options.logger.warn('udp association reached its destination limit; dropping new destinations', {
        ...this.options.logFields,
        limit: this.options.maxDestinations,
      });
    }
    this.drop('destination limit reached', rinfo);
  }

  private drop(reason: string, rinfo: RemoteInfo): void {
    this.dropped++;
    this.debug('udp datagram dropped', {
      reason,
      from: rinfo.family === 'IPv6' ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`,
    });
  }

  private socketError(side: 'client' | 'egress', error: unknown): void {
    this.errors++;
    this.debug('udp socket error; association goes on', { side, error: errorText(error) });
  }

  private debug(message: string, fields: LogFields): void {
    // Checked first: a flood of bad datagrams must not cost a log object each at info level.
    if (this.options.logger.enabled('debug')) {
      this.options.logger.debug(message, { ...this.options.logFields, ...fields });
    }
  }
}

function closeQuietly(socket: UdpSocket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
