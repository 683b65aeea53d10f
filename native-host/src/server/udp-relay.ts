/**
 * The datagram half of SOCKS5 UDP ASSOCIATE: one socket facing the client, the checks that keep
 * the relay from being a free UDP reflector, and an egress that carries accepted datagrams on.
 * The direct egress (here) sends from this machine; the upstream egress (udp-upstream.ts) hands
 * them to an upstream SOCKS5 server's relay. Each destination is judged once per association
 * by a `judge` the policy layer supplies; the relay only carries the verdicts out. It knows
 * nothing of the TCP control connection; the command decides when the association ends and
 * calls `close`.
 */
import { type RemoteInfo, type Socket as UdpSocket, createSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { LogFields, Logger } from '../log/logger.ts';
import type { Endpoint } from '../outbound/outbound.ts';
import { type ResolvedAddress, resolveHost } from '../outbound/resolve.ts';
import { type Address, bytesToIpv6, formatAddress, ipv6ToBytes } from '../protocol/address.ts';
import { type UdpDatagram, parseUdpDatagram, serializeUdpHeader } from '../protocol/socks5.ts';
import type { DatagramVerdict } from './types.ts';

export interface UdpRelayOptions {
  /** Where the client-facing socket binds: the address the client reached us on. */
  readonly listenHost: string;
  /** The client's IP (the control connection's peer); no other source is accepted. */
  readonly clientHost: string;
  /** The port the client said it sends from; 0 = lock onto the first good datagram's port. */
  readonly clientPort: number;
  /** No relayed datagram either way for this long ends the association (0 = never). */
  readonly idleTimeoutMs: number;
  /** Distinct destinations (as the client names them: IP:port or name:port) it may use. */
  readonly maxDestinations: number;
  readonly logger: Logger;
  /** Identifies the association in the relay's own log lines. */
  readonly logFields?: LogFields;
  /**
   * Decides each destination, once per association. For the direct egress an allowed name
   * must come with the address to send to. Without it every destination is allowed and the
   * direct egress resolves names with `resolve`.
   */
  readonly judge?: (destination: Address) => Promise<DatagramVerdict>;
  /** Name resolution when there is no judge; the system resolver by default. */
  readonly resolve?: (host: string) => Promise<ResolvedAddress[]>;
  /** Where accepted datagrams go; the direct egress by default. */
  readonly egress?: EgressFactory;
}

export interface UdpRelayStats {
  /** Datagrams and payload bytes from the client to destinations. */
  readonly datagramsUp: number;
  readonly bytesUp: number;
  /** Datagrams and payload bytes from destinations to the client. */
  readonly datagramsDown: number;
  readonly bytesDown: number;
  /**
   * Datagrams refused: wrong source, bad header, fragments, unknown names, over the limit,
   * denied destinations.
   */
  readonly dropped: number;
  /** Of the dropped, those to a destination the access rules deny. */
  readonly denied: number;
  /** Socket errors (failed sends and the like) that the association survived. */
  readonly errors: number;
  /** Distinct destinations datagrams were allowed to. */
  readonly destinations: number;
  readonly reason: 'closed' | 'idle' | 'upstream-closed';
}

/** The association as an egress sees it: the way back to the client, and the books. */
export interface EgressHost {
  /** Whether the association has ended (a late callback must then do nothing). */
  finished(): boolean;
  /** Counts one datagram sent onward (payload bytes) and keeps the association awake. */
  sentUp(payloadBytes: number): void;
  /** Sends one datagram (given in parts) to the client, counting `payloadBytes` down. */
  toClient(data: Buffer | readonly Buffer[], payloadBytes: number): void;
  drop(reason: string, rinfo: RemoteInfo): void;
  socketError(side: 'client' | 'egress', error: unknown): void;
  debug(message: string, fields: LogFields): void;
}

export interface UdpEgress {
  /** Sends an IP address only, so an allowed name must come with its (checked) address. */
  readonly resolvesHere: boolean;
  /**
   * Carries one accepted datagram on: `msg` whole, its parsed header, and for a name the
   * address the judge allowed (for an IP destination, that IP or nothing).
   */
  forward(msg: Buffer, datagram: UdpDatagram, address: string | undefined, rinfo: RemoteInfo): void;
  /** Closes its sockets (idempotent); the association has ended. */
  close(): void;
}

export type EgressFactory = (host: EgressHost) => Promise<UdpEgress>;

type Family = 4 | 6;

interface Judged {
  readonly verdict: Promise<DatagramVerdict>;
  /** Set once the verdict is in, so that later datagrams need no promise turn. */
  settled: DatagramVerdict | undefined;
  /** A name that did not resolve is asked about again after this time. */
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

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

export function errorText(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return error instanceof Error ? error.message : String(error);
}

export function bindUdp(family: Family, host: string): Promise<UdpSocket> {
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

export function closeQuietly(socket: UdpSocket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}

function destinationKey(address: Address): string {
  return address.type === 'domain'
    ? `${address.host.toLowerCase().replace(/\.$/, '')}|${address.port}`
    : `${canonicalIp(address.host)}|${address.port}`;
}

export class UdpRelay {
  /** The client-facing socket's address: BND.ADDR/BND.PORT of the reply. */
  readonly bound: Endpoint;
  /** Resolves once, when the association has ended and its sockets are closed. */
  readonly done: Promise<UdpRelayStats>;

  private readonly options: UdpRelayOptions;
  private readonly client: UdpSocket;
  private readonly clientHost: string;
  /** Where replies go: the canonical IP, unless a zone index is needed to reach it. */
  private readonly clientTarget: string;
  private clientPort: number;
  /** Set by open() before any datagram is accepted. */
  private egress: UdpEgress | undefined;
  private readonly judged = new Map<string, Judged>();
  private limitWarned = false;
  private lastActive = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private finish: (stats: UdpRelayStats) => void = () => undefined;
  // Without a callback Node drops send errors (EMSGSIZE, ENETUNREACH) silently; one shared
  // callback reports them without a closure per datagram.
  private readonly clientSent = (error: Error | null): void => {
    if (error) this.socketError('client', error);
  };
  /** What the egress may touch, without making it part of the relay's public face. */
  private readonly host: EgressHost;

  private datagramsUp = 0;
  private bytesUp = 0;
  private datagramsDown = 0;
  private bytesDown = 0;
  private dropped = 0;
  private denied = 0;
  private errors = 0;
  private allowed = 0;

  /**
   * Binds the client-facing socket and opens the egress; rejects with the bind error (the
   * command maps it to a REP).
   */
  static async open(options: UdpRelayOptions): Promise<UdpRelay> {
    const listenHost = canonicalIp(options.listenHost);
    const client = await bindUdp(familyOf(listenHost), options.listenHost);
    const relay = new UdpRelay(options, client);
    try {
      relay.egress = await (options.egress ?? directEgress)(relay.host);
    } catch (error) {
      closeQuietly(client);
      throw error;
    }
    relay.start();
    return relay;
  }

  private constructor(options: UdpRelayOptions, client: UdpSocket) {
    this.options = options;
    this.client = client;
    this.clientHost = canonicalIp(options.clientHost);
    this.clientTarget = options.clientHost.includes('%') ? options.clientHost : this.clientHost;
    this.clientPort = options.clientPort;
    const address = client.address();
    this.bound = { host: canonicalIp(address.address), port: address.port };
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
    this.host = {
      finished: () => this.finished,
      sentUp: (bytes) => {
        this.datagramsUp++;
        this.bytesUp += bytes;
        this.touch();
      },
      toClient: (data, bytes) => this.toClient(data, bytes),
      drop: (reason, rinfo) => this.drop(reason, rinfo),
      socketError: (side, error) => this.socketError(side, error),
      debug: (message, fields) => this.debug(message, fields),
    };
  }

  private start(): void {
    this.client.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
    this.client.on('error', (error) => this.socketError('client', error));
    if (this.options.idleTimeoutMs > 0) this.armIdle(this.options.idleTimeoutMs);
  }

  /** Ends the association (idempotent). */
  close(reason: UdpRelayStats['reason'] = 'closed'): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idleTimer);
    closeQuietly(this.client);
    this.egress?.close();
    this.finish({
      datagramsUp: this.datagramsUp,
      bytesUp: this.bytesUp,
      datagramsDown: this.datagramsDown,
      bytesDown: this.bytesDown,
      dropped: this.dropped,
      denied: this.denied,
      errors: this.errors,
      destinations: this.allowed,
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
    let header: UdpDatagram;
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
    const key = destinationKey(address);
    let entry = this.judged.get(key);
    if (!entry || entry.expires <= Date.now()) {
      if (!entry && this.judged.size >= this.options.maxDestinations) {
        this.overLimit(rinfo);
        return;
      }
      entry = this.judge(key, address);
    }
    if (entry.settled) {
      this.carryOut(entry.settled, msg, header, rinfo);
      return;
    }
    const pending = entry;
    // In arrival order: these continuations run in the order they were added.
    pending.verdict.then((verdict) => {
      if (!this.finished) this.carryOut(verdict, msg, header, rinfo);
    });
  }

  /** Starts judging a destination; the verdict never rejects. */
  private judge(key: string, address: Address): Judged {
    const egress = this.egress!;
    const ask =
      this.options.judge ?? ((destination: Address) => this.permissive(destination, egress.resolvesHere));
    const entry: Judged = {
      // A throwing policy is a failed check, not a crash: an unhandled rejection would end the process.
      verdict: Promise.resolve()
        .then(() => ask(address))
        .catch((error: unknown): DatagramVerdict => ({ kind: 'unresolved', reason: errorText(error) })),
      settled: undefined,
      expires: Number.POSITIVE_INFINITY,
    };
    entry.verdict.then((verdict) => {
      entry.settled = verdict;
      if (verdict.kind === 'unresolved') {
        entry.expires = Date.now() + NEGATIVE_CACHE_MS;
        this.debug('udp destination not resolved', { dest: formatAddress(address), error: verdict.reason });
      } else if (verdict.kind === 'deny') {
        // Once per destination: a client sending on regardless must not flood the log.
        this.debug('udp destination denied', {
          dest: formatAddress(address),
          rule: verdict.rule,
          reason: verdict.reason,
        });
      } else {
        this.allowed++;
      }
    });
    this.judged.set(key, entry);
    return entry;
  }

  /** With no policy: every destination goes, names resolved here when the egress needs an IP. */
  private async permissive(destination: Address, resolvesHere: boolean): Promise<DatagramVerdict> {
    if (destination.type !== 'domain' || !resolvesHere) return { kind: 'allow' };
    try {
      const resolve = this.options.resolve ?? ((host: string) => resolveHost(host));
      const [first] = await resolve(destination.host);
      if (first) return { kind: 'allow', address: first.address };
      return { kind: 'unresolved', reason: 'no addresses' };
    } catch (error) {
      return { kind: 'unresolved', reason: errorText(error) };
    }
  }

  private carryOut(verdict: DatagramVerdict, msg: Buffer, header: UdpDatagram, rinfo: RemoteInfo): void {
    switch (verdict.kind) {
      case 'allow':
        this.egress!.forward(msg, header, verdict.address, rinfo);
        return;
      case 'deny':
        // Logged once when judged; counted for every datagram.
        this.denied++;
        this.dropped++;
        return;
      case 'unresolved':
        this.drop('destination name did not resolve', rinfo);
        return;
    }
  }

  // ---- destination -> client --------------------------------------------------------------

  private toClient(data: Buffer | readonly Buffer[], payloadBytes: number): void {
    if (this.finished) return;
    this.datagramsDown++;
    this.bytesDown += payloadBytes;
    this.touch();
    try {
      this.client.send(data, this.clientPort, this.clientTarget, this.clientSent);
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

// ---- the direct egress ----------------------------------------------------------------------

/**
 * Sends from this machine: one socket per address family, bound when first needed, and replies
 * accepted only from an IP:port that was sent to, each with its ready-made SOCKS header.
 */
const directEgress: EgressFactory = async (host) => new DirectEgress(host);

class DirectEgress implements UdpEgress {
  readonly resolvesHere = true;
  private readonly host: EgressHost;
  private readonly sockets = new Map<Family, Promise<UdpSocket>>();
  private readonly ready = new Map<Family, UdpSocket>();
  /** Destinations sent to (canonical IP|port), each with its reply header. */
  private readonly destinations = new Map<string, Buffer>();
  private closed = false;
  private readonly sent = (error: Error | null): void => {
    if (error) this.host.socketError('egress', error);
  };

  constructor(host: EgressHost) {
    this.host = host;
  }

  forward(msg: Buffer, datagram: UdpDatagram, address: string | undefined, rinfo: RemoteInfo): void {
    const named = datagram.address;
    const to = address ?? (named.type === 'domain' ? undefined : named.host);
    if (to === undefined) {
      // A judge that allowed a name without the address it checked: sending anywhere would
      // mean resolving again, past the check.
      this.host.drop('no checked address for the destination name', rinfo);
      return;
    }
    const ip = canonicalIp(to);
    const family = familyOf(ip);
    const port = named.port;
    const key = `${ip}|${port}`;
    if (!this.destinations.has(key)) {
      let header: Buffer;
      try {
        header = serializeUdpHeader({ type: family === 6 ? 'ipv6' : 'ipv4', host: ip, port });
      } catch {
        this.host.drop('destination is not an IP address', rinfo);
        return;
      }
      this.destinations.set(key, header);
    }
    const payload = msg.subarray(datagram.dataOffset);
    // The zone (if any) is needed to send on a link-local address, so the original text goes out.
    const target = family === 4 ? ip : to;
    const socket = this.ready.get(family);
    if (socket) {
      this.send(socket, payload, port, target);
      return;
    }
    this.socketFor(family).then(
      (s) => {
        if (!this.host.finished()) this.send(s, payload, port, target);
      },
      () => this.host.drop(`no IPv${family} egress`, rinfo),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.ready.values()) closeQuietly(socket);
    // Sockets still binding are closed as they come up.
    for (const [family, pending] of this.sockets) {
      if (!this.ready.has(family)) pending.then(closeQuietly, () => undefined);
    }
  }

  private send(socket: UdpSocket, payload: Buffer, port: number, host: string): void {
    this.host.sentUp(payload.length);
    try {
      socket.send(payload, port, host, this.sent);
    } catch (error) {
      this.host.socketError('egress', error);
    }
  }

  private socketFor(family: Family): Promise<UdpSocket> {
    let pending = this.sockets.get(family);
    if (!pending) {
      pending = bindUdp(family, family === 6 ? '::' : '0.0.0.0');
      this.sockets.set(family, pending);
      pending.then(
        (socket) => {
          if (this.closed) {
            closeQuietly(socket);
            return;
          }
          this.ready.set(family, socket);
          socket.on('message', (msg, rinfo) => this.fromDestination(msg, rinfo));
          socket.on('error', (error) => this.host.socketError('egress', error));
        },
        // Kept as failed: a host without IPv6 would otherwise retry the bind for every datagram.
        (error: unknown) => this.host.debug('udp egress socket failed', { family, error: errorText(error) }),
      );
    }
    return pending;
  }

  private fromDestination(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.host.finished()) return;
    const header =
      this.destinations.get(`${rinfo.address}|${rinfo.port}`) ??
      this.destinations.get(`${canonicalIp(rinfo.address)}|${rinfo.port}`);
    if (!header) {
      this.host.drop('reply from a destination never sent to', rinfo);
      return;
    }
    // Header and payload go out as one datagram without being copied together.
    this.host.toClient([header, msg], msg.length);
  }
}
