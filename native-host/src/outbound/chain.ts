/**
 * A route through upstream proxies: a TCP connection to hop 1, then each hop's connector asks
 * that hop for the next one, and the last hop for the destination. Every name after hop 1 is
 * passed on unresolved, so the next hop's address and the destination are looked up where the
 * proxy that dials them is, never on this machine.
 */
import { type Socket, isIP } from 'node:net';
import type { Route, Upstream } from '../../../shared/config/schema.ts';
import { type CredentialSource, MissingCredentialError } from '../credentials/credentials.ts';
import { type Address, addressOf } from '../protocol/address.ts';
import { Rep } from '../protocol/socks5.ts';
import { connectorFor, isBindResult } from './connectors/index.ts';
import { socks5UdpAssociate } from './connectors/socks5.ts';
import type { BindResult, ConnectorResult, HopCredentials } from './connectors/types.ts';
import { DirectOutbound, type DirectOptions, errnoOf, outboundErrorFrom } from './direct.ts';
import {
  type Connected,
  type Endpoint,
  type Outbound,
  OutboundError,
  type OutboundOptions,
  type PendingBind,
  type UpstreamUdpAssociation,
  udpNotSupported,
} from './outbound.ts';
import { type DownEntry, type UpstreamHealth, isFirstHopDown } from './upstream-health.ts';

export interface ChainTimeouts {
  /** TCP connect to hop 1, unless the upstream sets connectTimeoutMs. */
  readonly connectMs: number;
  /**
   * One hop's whole handshake, unless the upstream sets handshakeTimeoutMs. It includes the
   * hop's own connection onward, since its reply comes only once that is made.
   */
  readonly hopHandshakeMs: number;
  /** How long the last hop's BIND may wait for the peer. */
  readonly bindMs: number;
}

export interface ChainOptions {
  readonly route: Route;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly credentials: CredentialSource;
  readonly timeouts: ChainTimeouts;
  /** Shared with the other routes: a first hop that failed is not waited for again for a while. */
  readonly health?: UpstreamHealth;
  /** How hop 1's host name is resolved, as for the direct exit (the config's hosts map). */
  readonly resolve?: Pick<DirectOptions, 'hosts' | 'lookup'>;
}

/** One line of `switchyard check`: how far the chain got, and how long each hop took. */
export interface HopReport {
  readonly hop: number;
  readonly name: string;
  readonly ok: boolean;
  /** Hop 1: TCP connect plus handshake; later hops: their handshake. */
  readonly ms: number;
  readonly error?: string;
}

interface Hop {
  /** 1-based. */
  readonly index: number;
  readonly upstream: Upstream;
  readonly name: string;
  /** `hop 2 (corp-gw)`, the way every connector error starts. */
  readonly label: string;
}

interface Walk {
  /** Try hop 1 even if it is known to be down (check does, to find out). */
  readonly ignoreHealth?: boolean;
  readonly onReport?: (report: HopReport) => void;
}

interface Opened {
  readonly stream: Socket;
  readonly result: ConnectorResult | BindResult;
}

export class ChainOutbound implements Outbound {
  readonly label: string;
  readonly routeId: string;
  private readonly hops: readonly Hop[];
  private readonly options: ChainOptions;
  private readonly firstHopDialer: DirectOutbound;

  constructor(options: ChainOptions) {
    const { route, upstreams, timeouts } = options;
    if (route.hops.length === 0) throw new Error(`route '${route.id}' has no hops`);
    this.options = options;
    this.routeId = route.id;
    this.hops = route.hops.map((id, i) => {
      const upstream = upstreams.get(id);
      if (upstream === undefined) throw new Error(`route '${route.id}': no upstream has the id '${id}'`);
      const name = upstream.name ?? upstream.id;
      return { index: i + 1, upstream, name, label: `hop ${i + 1} (${name})` };
    });
    this.label = `route ${route.name ?? route.id} (${this.hops.map((h) => h.name).join(' > ')})`;
    const first = this.hops[0]!.upstream;
    // The direct dialer already resolves a name and tries every address within one deadline.
    this.firstHopDialer = new DirectOutbound({
      connectTimeoutMs: first.connectTimeoutMs ?? timeouts.connectMs,
      bindTimeoutMs: timeouts.bindMs,
      ...options.resolve,
    });
  }

  /** The upstream every request dials first (whose health decides failover). */
  get firstHop(): Upstream {
    return this.hops[0]!.upstream;
  }

  async connect(destination: Address, options: OutboundOptions): Promise<Connected> {
    const { stream, result } = await this.walk(destination, 'connect', options.signal);
    return {
      socket: stream,
      bound: this.boundOf(result.bound),
      remote: { host: destination.host, port: destination.port },
      via: this.label,
    };
  }

  async bind(destination: Address, _listenOn: Endpoint, options: OutboundOptions): Promise<PendingBind> {
    // The last hop listens, on its own address: where the client reached us is of no use here.
    const { stream, result } = await this.walk(destination, 'bind', options.signal);
    if (!isBindResult(result)) {
      stream.destroy();
      throw new OutboundError(
        `${this.lastHop.label} did not start a BIND`,
        Rep.COMMAND_NOT_SUPPORTED,
        'protocol',
        this.lastHop.index,
      );
    }
    const accepted = result.peer.then(
      (peer) => ({ socket: stream, peer }),
      (error: unknown) => {
        stream.destroy();
        throw error;
      },
    );
    // The client may leave before anyone awaits this; never an unhandled rejection.
    accepted.catch(() => undefined);
    return { bound: this.boundOf(result.bound), accepted, cancel: () => stream.destroy() };
  }

  /**
   * Opens a UDP association at the route's one hop. Datagrams cannot be tunnelled through a
   * TCP connection to a further hop (no proxy protocol forwards an association), and a hop
   * that is not SOCKS5 has no UDP at all, so any other route is refused before anything is
   * dialled. Failures are reported and counted against the hop's health as for connect.
   */
  async udpAssociate(options: OutboundOptions): Promise<UpstreamUdpAssociation> {
    const first = this.hops[0]!;
    if (this.hops.length !== 1) throw udpNotSupported(`${this.label} has ${this.hops.length} hops`);
    const type = first.upstream.type;
    if (type !== 'socks5') {
      throw udpNotSupported(`${this.label}: ${first.label} speaks ${type}, not socks5`);
    }
    const { signal } = options;
    this.refuseIfDown(first);
    const stream = await this.dialFirst(first, signal);
    // The control connection carries nothing after the reply; a reset on it is seen as its
    // 'close', which is all the owner of the association watches.
    stream.on('error', () => undefined);
    try {
      const bound = await socks5UdpAssociate(stream, {
        // Our egress port is not bound yet: the hop takes the first datagram from our address.
        target: { type: 'ipv4', host: '0.0.0.0', port: 0 },
        credentials: await this.credentialsFor(first),
        signal,
        timeoutMs: first.upstream.handshakeTimeoutMs ?? this.options.timeouts.hopHandshakeMs,
        hop: 1,
        hopName: first.name,
      });
      this.options.health?.markUp(first.upstream.id);
      const relay = await this.udpRelayOf(first, bound, stream);
      return { kind: 'upstream', relay, control: stream, via: this.label };
    } catch (error) {
      stream.destroy();
      const failure = this.attribute(error, first, signal);
      this.markIfDown(first, failure);
      throw failure;
    }
  }

  /**
   * Builds the chain to `destination` hop by hop, timing each hop, and stops at the first
   * failure; the connection is closed either way. A known-down first hop is tried anyway.
   */
  async check(destination: Address, signal: AbortSignal): Promise<HopReport[]> {
    const reports: HopReport[] = [];
    try {
      const { stream } = await this.walk(destination, 'connect', signal, {
        ignoreHealth: true,
        onReport: (report) => reports.push(report),
      });
      stream.destroy();
    } catch {
      // The failing hop and its error are in the reports already.
    }
    return reports;
  }

  private get lastHop(): Hop {
    return this.hops[this.hops.length - 1]!;
  }

  /** 0.0.0.0 from a hop means "my own address", which only the config knows from here. */
  private boundOf(bound: Endpoint): Endpoint {
    return bound.host === '0.0.0.0' || bound.host === '::'
      ? { host: this.lastHop.upstream.host, port: bound.port }
      : bound;
  }

  /**
   * Where the hop's datagrams go, as an IP: 0.0.0.0 means the address we reached the hop on
   * (not its configured name, which would be looked up again for every datagram sent).
   */
  private async udpRelayOf(hop: Hop, bound: Endpoint, stream: Socket): Promise<Endpoint> {
    if (bound.port === 0) {
      throw new OutboundError(`${hop.label} named no UDP relay port`, Rep.GENERAL_FAILURE, 'protocol', 1);
    }
    if (bound.host === '0.0.0.0' || bound.host === '::') {
      const host = stream.remoteAddress;
      if (host === undefined) {
        throw new OutboundError(`${hop.label} closed the connection`, Rep.GENERAL_FAILURE, 'protocol', 1);
      }
      return { host, port: bound.port };
    }
    if (isIP(bound.host) !== 0) return bound;
    // A relay named by host name (ATYP 3): resolved once, here, as hop 1's own name is.
    const [first] = await this.firstHopDialer.resolve(addressOf(bound.host, bound.port));
    return { host: first!.address, port: bound.port };
  }

  private async walk(
    destination: Address,
    command: 'connect' | 'bind',
    signal: AbortSignal,
    walk: Walk = {},
  ): Promise<Opened> {
    const first = this.hops[0]!;
    const health = this.options.health;
    if (!walk.ignoreHealth) this.refuseIfDown(first);

    let started = Date.now();
    const report = (at: Hop, error?: OutboundError): void => {
      walk.onReport?.({
        hop: at.index,
        name: at.name,
        ok: error === undefined,
        ms: Date.now() - started,
        ...(error ? { error: error.message } : {}),
      });
    };

    let stream: Socket;
    try {
      stream = await this.dialFirst(first, signal);
    } catch (error) {
      report(first, error as OutboundError);
      throw error;
    }

    // Between one handshake and the next nobody listens for errors; a reset there must not
    // become an uncaught exception. The next read sees the closed stream and says so.
    const ignore = (): void => undefined;
    stream.on('error', ignore);
    let hop = first;
    let result: ConnectorResult | BindResult | undefined;
    try {
      for (hop of this.hops) {
        const next = this.hops[hop.index];
        const credentials = await this.credentialsFor(hop);
        result = await connectorFor(hop.upstream.type).handshake(stream, {
          command: next ? 'connect' : command,
          target: next ? addressOf(next.upstream.host, next.upstream.port) : destination,
          credentials,
          signal,
          timeoutMs: hop.upstream.handshakeTimeoutMs ?? this.options.timeouts.hopHandshakeMs,
          bindTimeoutMs: this.options.timeouts.bindMs,
          hop: hop.index,
          hopName: hop.name,
        });
        if (hop.index === 1) health?.markUp(first.upstream.id);
        report(hop);
        started = Date.now();
      }
      return { stream, result: result! };
    } catch (error) {
      stream.destroy();
      const failure = slowOnward(this.attribute(error, hop, signal), first, stream.bytesRead, this.hops[1]);
      if (failure.hop !== undefined && failure.hop > hop.index) {
        // Hop N answered, but could not reach hop N+1.
        report(hop);
        started = Date.now();
        report(this.hops[failure.hop - 1]!, failure);
      } else {
        report(hop, failure);
      }
      this.markIfDown(first, failure);
      throw failure;
    } finally {
      stream.off('error', ignore);
    }
  }

  /** Fails at once when hop 1 is known to be down (it failed a moment ago). */
  private refuseIfDown(first: Hop): void {
    const health = this.options.health;
    const down = health?.downSince(first.upstream.id);
    if (health && down) throw downError(first, down, health.clock());
  }

  /** Counts a failure against hop 1's health when it says the hop is down. */
  private markIfDown(first: Hop, failure: OutboundError): void {
    const health = this.options.health;
    if (health && isFirstHopDown(failure)) health.markDown(first.upstream.id, failure);
  }

  /** The TCP connection to hop 1; a failure that says the hop is down marks it down. */
  private async dialFirst(first: Hop, signal: AbortSignal): Promise<Socket> {
    const { host, port } = first.upstream;
    try {
      const connected = await this.firstHopDialer.connect(addressOf(host, port), { signal });
      return connected.socket;
    } catch (error) {
      const failure = dialFailure(first, error, signal);
      this.markIfDown(first, failure);
      throw failure;
    }
  }

  /** Asks for a hop's password only when that hop is reached and has a user to log in as. */
  private async credentialsFor(hop: Hop): Promise<HopCredentials | undefined> {
    if (hop.upstream.username === undefined) return undefined;
    try {
      return await this.options.credentials(hop.upstream);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      const [what, failure] =
        error instanceof MissingCredentialError
          ? (['cannot authenticate', 'auth-failed'] as const)
          : (['cannot get its credentials', 'other'] as const);
      throw new OutboundError(`${hop.label} ${what}: ${detail}`, Rep.GENERAL_FAILURE, failure, hop.index, {
        cause: error,
      });
    }
  }

  /**
   * A refusal from a hop that is not the last one is about the next hop: that one is what
   * could not be reached. Its REP stays the one the hop in front of it reported.
   */
  private attribute(error: unknown, hop: Hop, signal: AbortSignal): OutboundError {
    if (!(error instanceof OutboundError)) {
      if (signal.aborted) {
        return new OutboundError(`${hop.label} cancelled`, Rep.GENERAL_FAILURE, 'aborted', hop.index, {
          cause: error,
        });
      }
      return outboundErrorFrom(error, hop.label, hop.index);
    }
    const next = this.hops[hop.index];
    if (error.failure !== 'rejected' || error.hop !== hop.index || next === undefined) return error;
    const detail = error.message.startsWith(`${hop.label} `)
      ? error.message.slice(hop.label.length + 1)
      : error.message;
    return new OutboundError(
      `${next.label} unreachable through ${hop.label}: ${detail}`,
      error.rep,
      error.failure,
      next.index,
      { cause: error },
    );
  }
}

/**
 * A first hop that timed out after it had already answered (the method choice, say) is up: what
 * it was slow at is its own connection onward, to hop 2 or to the destination. Counting that as
 * "hop 1 down" would fail every route through it for upstreamRetryMs, or send them around it
 * (onFirstHopDown), because one site was slow. The failure moves to what was slow: hop 2, or
 * no hop at all (the destination). An HTTP or SOCKS4 hop says nothing before its one reply, so
 * for those the two cannot be told apart and a timeout still counts against the hop.
 */
function slowOnward(
  failure: OutboundError,
  first: Hop,
  bytesFromHop1: number,
  second: Hop | undefined,
): OutboundError {
  if (failure.hop !== 1 || failure.failure !== 'timeout' || bytesFromHop1 === 0) return failure;
  const waited = / within (\d+ ms \(waiting for [^)]*\))$/.exec(failure.message)?.[1];
  const what = second ? `${second.label} through it` : 'the destination';
  return new OutboundError(
    `${first.label} is up but did not reach ${what} ${waited ? `within ${waited}` : 'in time'}`,
    failure.rep,
    'timeout',
    second?.index,
    { cause: failure },
  );
}

/** Why the TCP connection to hop 1 failed, in the hop's name. */
function dialFailure(first: Hop, error: unknown, signal: AbortSignal): OutboundError {
  if (signal.aborted) {
    return new OutboundError(`${first.label} cancelled`, Rep.GENERAL_FAILURE, 'aborted', 1, { cause: error });
  }
  const failure = outboundErrorFrom(error, first.label, 1);
  // The direct dialer says "cannot connect to HOST:PORT: connect ECONNREFUSED ..."; the
  // socket error alone reads better after the hop's name.
  const cause: unknown = failure.cause ?? failure;
  const detail = cause instanceof Error ? cause.message : failure.message;
  return new OutboundError(`${first.label} unreachable: ${detail}`, failure.rep, failure.failure, 1, {
    cause,
  });
}

/** The fast failure for a first hop that failed a moment ago, saying when it is tried again. */
function downError(first: Hop, down: DownEntry, now: number): OutboundError {
  const why = errnoOf(down.error.cause) ?? down.error.failure;
  return new OutboundError(
    `${first.label} is down (${why} ${duration(now - down.since)} ago); retrying after ${duration(down.until - now)}`,
    down.error.rep,
    down.error.failure,
    1,
    { cause: down.error },
  );
}

function duration(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${Math.round(ms / 1000)} s`;
}
