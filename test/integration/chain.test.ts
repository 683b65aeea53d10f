/**
 * Upstream chains on real loopback sockets: our own server (with and without users),
 * microsocks with a password, danted with system-user auth and the HTTP CONNECT test proxy,
 * mixed in chains of one to three hops; every way a chain fails, with the message and the REP
 * the client would get; BIND at the last hop; failover when the first hop is down; and the
 * per-hop report of `switchyard check`.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Route, Upstream, UpstreamType } from '../../shared/config/schema.ts';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import type { CredentialSource } from '../../native-host/src/credentials/credentials.ts';
import { ChainOutbound, type ChainTimeouts } from '../../native-host/src/outbound/chain.ts';
import { DirectOutbound } from '../../native-host/src/outbound/direct.ts';
import { FailoverOutbound, buildRouteOutbounds } from '../../native-host/src/outbound/failover.ts';
import { OutboundError, type OutboundFailure } from '../../native-host/src/outbound/outbound.ts';
import type { ResolvedAddress } from '../../native-host/src/outbound/resolve.ts';
import { UpstreamHealth, isFirstHopDown } from '../../native-host/src/outbound/upstream-health.ts';
import type { Address } from '../../native-host/src/protocol/address.ts';
import { Rep } from '../../native-host/src/protocol/socks5.ts';
import { type HttpConnectProxy, startHttpConnectProxy } from '../helpers/http-connect-proxy.ts';
import { savedCredentials } from '../helpers/memory-credentials.ts';
import { ByteReader, type EchoServer, connectTo, echoAsserter, startEchoServer } from '../helpers/net.ts';
import {
  DANTE_USER,
  type Daemon,
  type Dante,
  type Scripted,
  freePort,
  startDante,
  startMicrosocks,
  startScripted,
} from '../helpers/reference-servers.ts';
import { type TestServer, startSocksServer } from '../helpers/socks-server.ts';
import { waitFor } from '../helpers/wait.ts';

/** A name only our upstream servers can resolve: if this machine looked it up, it would fail. */
const ONLY_UPSTREAM = 'only-upstream.test';

const ALICE = { username: 'alice', password: 'correct horse' };
const HTTP_USER = { username: 'bob', password: 'p@ss:word' };
const MICRO_USER = { username: 'micro', password: 'micro-secret' };

/** The passwords as `switchyard credential set` saves them, by upstream id. */
const SAVED: Readonly<Record<string, string>> = {
  guarded: ALICE.password,
  corp: HTTP_USER.password,
  micro: MICRO_USER.password,
  dante: DANTE_USER.password,
};
const WRONG_PASSWORD = 'not-the-password';

/** Passwords that differ from SAVED for one chain: a wrong one, or `undefined` for none saved. */
type PasswordChanges = Readonly<Record<string, string | undefined>>;

const TIMEOUTS: ChainTimeouts = { connectMs: 2000, hopHandshakeMs: 3000, bindMs: 3000 };

// ---- fixtures -------------------------------------------------------------------------------

/** Which upstreams the chain asked a password for, in order. */
const asked: string[] = [];

/** The real store-backed credential source, over an in-memory store holding SAVED and `changes`. */
function credentialsWith(changes: PasswordChanges = {}): CredentialSource {
  const passwords: Record<string, string> = {};
  for (const [id, password] of Object.entries({ ...SAVED, ...changes })) {
    if (password !== undefined) passwords[id] = password;
  }
  const source = savedCredentials(passwords);
  return (upstream) => {
    asked.push(upstream.id);
    return source(upstream);
  };
}
const credentials = credentialsWith();

/** Names this machine was asked to resolve for hop 1 (anything else would be a DNS leak). */
const localLookups: string[] = [];
const localResolver = {
  lookup: async (host: string): Promise<ResolvedAddress[]> => {
    localLookups.push(host);
    // ::1 first, where nothing listens: hop 1 is reached on the next address all the same.
    if (host === 'localhost')
      return [
        { address: '::1', family: 6 },
        { address: '127.0.0.1', family: 4 },
      ];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  },
};

interface OurServer extends TestServer {
  /** Every destination a client asked for, as it arrived on the wire. */
  readonly destinations: Address[];
  /** Names this upstream resolved. */
  readonly lookups: string[];
}

async function startOurServer(withUsers: boolean): Promise<OurServer> {
  const destinations: Address[] = [];
  const lookups: string[] = [];
  // The upstream's own resolver knows ONLY_UPSTREAM (and localhost) and never asks DNS.
  const direct = new DirectOutbound({
    connectTimeoutMs: 2000,
    bindTimeoutMs: 5000,
    lookup: async (host) => {
      lookups.push(host);
      if (host === ONLY_UPSTREAM || host === 'localhost') return [{ address: '127.0.0.1', family: 4 }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    },
  });
  const users = withUsers ? [{ name: ALICE.username, passwordHash: await hashPassword(ALICE.password) }] : [];
  const server = await startSocksServer({
    users,
    dispatch: (request) => {
      destinations.push(request.destination);
      return { kind: 'allow', outbound: direct };
    },
  });
  return Object.assign(server, { destinations, lookups });
}

let echo: EchoServer;
let open: OurServer;
let guarded: OurServer;
let micro: Daemon;
let dante: Dante;
let httpAuth: HttpConnectProxy;
let silent: Scripted;
let garbage: Scripted;
let closedPort: number;

before(async () => {
  [echo, open, guarded, micro, dante, httpAuth, silent, garbage, closedPort] = await Promise.all([
    startEchoServer(),
    startOurServer(false),
    startOurServer(true),
    startMicrosocks(MICRO_USER),
    startDante({ socksmethod: 'username' }),
    startHttpConnectProxy({ user: HTTP_USER }),
    startScripted(() => undefined),
    startScripted((socket) => {
      socket.write('garbage!');
    }),
    freePort(),
  ]);
});

after(async () => {
  await Promise.all([
    echo?.close(),
    open?.close(),
    guarded?.close(),
    micro?.stop(),
    dante?.stop(),
    httpAuth?.close(),
    silent?.close(),
    garbage?.close(),
  ]);
});

// ---- chain helpers --------------------------------------------------------------------------

/** Aborted at the end, so that nothing a test left waiting outlives the file. */
const signalSource = new AbortController();
after(() => signalSource.abort());
const options = () => ({ signal: signalSource.signal });

function upstream(id: string, type: UpstreamType, port: number, extra: Partial<Upstream> = {}): Upstream {
  return { id, type, host: '127.0.0.1', port, ...extra };
}

// One constructor per fixture, so each test says what its hops are in one word.
const hops = {
  open: (type: UpstreamType = 'socks5', id = 'open') => upstream(id, type, open.port),
  guarded: () => upstream('guarded', 'socks5', guarded.port, { username: ALICE.username }),
  micro: () => upstream('micro', 'socks5', micro.port, { username: MICRO_USER.username }),
  dante: () => upstream('dante', 'socks5', dante.port, { username: DANTE_USER.username }),
  http: () => upstream('corp', 'http', httpAuth.port, { username: HTTP_USER.username }),
  dead: (id = 'dead') => upstream(id, 'socks5', closedPort),
  mute: (extra: Partial<Upstream> = {}) => upstream('mute', 'socks5', silent.port, extra),
  junk: () => upstream('junk', 'socks5', garbage.port),
};

function route(id: string, hopIds: string[], extra: Partial<Route> = {}): Route {
  return { id, hops: hopIds, onFirstHopDown: 'fail', ...extra };
}

interface ChainSetup {
  readonly timeouts?: Partial<ChainTimeouts>;
  readonly health?: UpstreamHealth;
  readonly name?: string;
  readonly passwords?: PasswordChanges;
}

function chain(upstreams: Upstream[], setup: ChainSetup = {}): ChainOutbound {
  return new ChainOutbound({
    route: route(
      'r',
      upstreams.map((u) => u.id),
      setup.name ? { name: setup.name } : {},
    ),
    upstreams: new Map(upstreams.map((u) => [u.id, u])),
    credentials: setup.passwords ? credentialsWith(setup.passwords) : credentials,
    timeouts: { ...TIMEOUTS, ...setup.timeouts },
    resolve: localResolver,
    ...(setup.health ? { health: setup.health } : {}),
  });
}

const local = (port: number): Address => ({ type: 'ipv4', host: '127.0.0.1', port });
const named = (port: number, host = ONLY_UPSTREAM): Address => ({ type: 'domain', host, port });

/** Bytes both ways through an echo, then an orderly close in both directions. */
const assertEcho = echoAsserter('hello through the chain', 13);

interface Expected {
  readonly message: RegExp;
  readonly rep: number;
  readonly failure: OutboundFailure;
  readonly hop: number | undefined;
}

async function rejects(promise: Promise<unknown>, expected: Expected): Promise<OutboundError> {
  const error = await promise.then(
    (value) => {
      if (value && typeof value === 'object' && 'socket' in value) (value.socket as Socket).destroy();
      return assert.fail('should have failed');
    },
    (e: unknown) => e,
  );
  assert.ok(error instanceof OutboundError, `expected an OutboundError, got ${String(error)}`);
  assert.match(error.message, expected.message);
  assert.equal(error.rep, expected.rep, error.message);
  assert.equal(error.failure, expected.failure, error.message);
  assert.equal(error.hop, expected.hop, error.message);
  return error;
}

function since<T>(list: T[]): () => T[] {
  const start = list.length;
  return () => list.slice(start);
}

// ---- chains ---------------------------------------------------------------------------------

describe('chains of one, two and three hops', () => {
  it('labels a route by its name and its hops', () => {
    const c = new ChainOutbound({
      route: route('corp', ['gw', 'abroad'], { name: 'corp' }),
      upstreams: new Map([
        ['gw', upstream('gw', 'http', 1, { name: 'corp-gw' })],
        ['abroad', upstream('abroad', 'socks5', 2)],
      ]),
      credentials,
      timeouts: TIMEOUTS,
    });
    assert.equal(c.label, 'route corp (corp-gw > abroad)');
    assert.equal(chain([hops.open()]).label, 'route r (open)');
    assert.throws(() => chain([]), /has no hops/);
  });

  it('1 hop, our server with users: the destination name is resolved only at the exit', async () => {
    const destinations = since(guarded.destinations);
    const lookups = since(guarded.lookups);
    const questions = since(asked);
    const c = chain([hops.guarded()]);
    const connected = await c.connect(named(echo.port), options());
    assert.deepEqual(connected.remote, { host: ONLY_UPSTREAM, port: echo.port });
    assert.equal(connected.bound.host, '127.0.0.1');
    assert.ok(connected.bound.port > 0);
    assert.equal(connected.via, c.label);
    // The name went over the wire as a name (ATYP 3), and the upstream resolved it, not us.
    assert.deepEqual(destinations(), [named(echo.port)]);
    assert.deepEqual(lookups(), [ONLY_UPSTREAM]);
    assert.ok(!localLookups.includes(ONLY_UPSTREAM), 'this machine never looked the destination up');
    assert.deepEqual(questions(), ['guarded']);
    await assertEcho(connected.socket);
  });

  it('2 hops, microsocks (password) > danted (system user)', async () => {
    const questions = since(asked);
    const connected = await chain([hops.micro(), hops.dante()]).connect(local(echo.port), options());
    assert.deepEqual(questions(), ['micro', 'dante']);
    // microsocks logs where it connected: to danted, the next hop.
    await waitFor(() => micro.output().includes(`connected to 127.0.0.1:${dante.port}`), 'microsocks log');
    await assertEcho(connected.socket);
  });

  it('3 hops, http (Basic) > danted (system user) > our server (users), to a name only the exit knows', async () => {
    const requests = since(httpAuth.requests);
    const destinations = since(guarded.destinations);
    const connected = await chain([hops.http(), hops.dante(), hops.guarded()]).connect(
      named(echo.port),
      options(),
    );
    assert.deepEqual(
      requests().map((r) => r.target),
      [`127.0.0.1:${dante.port}`],
    );
    assert.deepEqual(destinations(), [named(echo.port)]);
    assert.ok(!localLookups.includes(ONLY_UPSTREAM));
    await assertEcho(connected.socket);
  });

  it('3 hops, our server (SOCKS4) > microsocks (password) > our server (SOCKS4a)', async () => {
    const destinations = since(open.destinations);
    const connected = await chain([hops.open('socks4', 'old'), hops.micro(), hops.open('socks4a')]).connect(
      named(echo.port),
      options(),
    );
    assert.deepEqual(destinations(), [local(micro.port), named(echo.port)]);
    await assertEcho(connected.socket);
  });

  it('a hop given by name is passed on unresolved; an HTTP last hop is bound at its configured host', async () => {
    const destinations = since(open.destinations);
    const lookups = since(localLookups);
    const corp = { ...hops.http(), host: 'localhost' };
    const connected = await chain([hops.open(), corp]).connect(local(echo.port), options());
    // HTTP says nothing about its address (0.0.0.0:0); the config's name for the hop stands in.
    assert.deepEqual(connected.bound, { host: 'localhost', port: 0 });
    assert.deepEqual(destinations(), [named(httpAuth.port, 'localhost')]);
    assert.deepEqual(lookups(), [], 'only hop 1 may be resolved here');
    await assertEcho(connected.socket, 1000);
  });

  it('hop 1 given by name is resolved here, every address tried in turn', async () => {
    const lookups = since(localLookups);
    const connected = await chain([{ ...hops.open(), host: 'localhost' }]).connect(
      local(echo.port),
      options(),
    );
    assert.deepEqual(lookups(), ['localhost']);
    await assertEcho(connected.socket, 1000);
  });
});

// ---- failures -------------------------------------------------------------------------------

describe('failures name the hop and carry the REP', () => {
  it('hop 1 refused: REP 5, and no password is asked for', async () => {
    const questions = since(asked);
    const c = chain([{ ...hops.dead(), name: 'corp-gw' }, hops.dante()]);
    await rejects(c.connect(local(echo.port), options()), {
      message: new RegExp(
        `^hop 1 \\(corp-gw\\) unreachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${closedPort}$`,
      ),
      rep: Rep.CONNECTION_REFUSED,
      failure: 'refused',
      hop: 1,
    });
    assert.deepEqual(questions(), []);
  });

  it('hop 1 that does not resolve here: not-found, REP 4', async () => {
    await rejects(chain([{ ...hops.open(), host: 'nowhere.test' }]).connect(local(echo.port), options()), {
      message: /^hop 1 \(open\) unreachable: getaddrinfo ENOTFOUND nowhere\.test$/,
      rep: Rep.HOST_UNREACHABLE,
      failure: 'not-found',
      hop: 1,
    });
  });

  it('hop 2 refuses the password: danted, and our own server', async () => {
    const wrongDante = { passwords: { dante: WRONG_PASSWORD } };
    await rejects(chain([hops.open(), hops.dante()], wrongDante).connect(local(echo.port), options()), {
      message: /^hop 2 \(dante\) rejected the username\/password for user 'switchyard-test'$/,
      rep: Rep.GENERAL_FAILURE,
      failure: 'auth-failed',
      hop: 2,
    });
    const wrongAlice = { passwords: { guarded: WRONG_PASSWORD } };
    await rejects(chain([hops.micro(), hops.guarded()], wrongAlice).connect(local(echo.port), options()), {
      message: /^hop 2 \(guarded\) rejected the username\/password for user 'alice'$/,
      rep: Rep.GENERAL_FAILURE,
      failure: 'auth-failed',
      hop: 2,
    });
  });

  it('a password that is not saved names the hop and the command that saves it', async () => {
    const notSaved = { passwords: { guarded: undefined } };
    await rejects(chain([hops.open(), hops.guarded()], notSaved).connect(local(echo.port), options()), {
      message:
        /^hop 2 \(guarded\) cannot authenticate: no password is saved for upstream 'guarded' \(user 'alice'\) in the credentials file; save it with: switchyard credential set guarded --password-stdin$/,
      rep: Rep.GENERAL_FAILURE,
      failure: 'auth-failed',
      hop: 2,
    });
  });

  it('hop 1 accepts and never answers: timeout at its configured 300 ms, and the socket is closed', async () => {
    const started = Date.now();
    await rejects(chain([hops.mute({ handshakeTimeoutMs: 300 })]).connect(local(echo.port), options()), {
      message: /^hop 1 \(mute\) did not answer within 300 ms \(waiting for the method choice\)$/,
      rep: Rep.TTL_EXPIRED,
      failure: 'timeout',
      hop: 1,
    });
    const took = Date.now() - started;
    assert.ok(took >= 280 && took < 1500, `took ${took} ms`);
    await waitFor(() => silent.open() === 0, 'the silent hop to see the connection closed');
  });

  it('hop 2 never answers: timeout at the default hopHandshakeMs (300 ms)', async () => {
    const started = Date.now();
    await rejects(
      chain([hops.open(), hops.mute()], { timeouts: { hopHandshakeMs: 300 } }).connect(
        local(echo.port),
        options(),
      ),
      {
        message: /^hop 2 \(mute\) did not answer within 300 ms \(waiting for the method choice\)$/,
        rep: Rep.TTL_EXPIRED,
        failure: 'timeout',
        hop: 2,
      },
    );
    const took = Date.now() - started;
    assert.ok(took >= 280 && took < 1500, `took ${took} ms`);
    await waitFor(() => silent.open() === 0, 'the silent hop to see the connection closed');
  });

  it('hop 2 answers garbage: a protocol error, and the socket is closed', async () => {
    await rejects(chain([hops.open(), hops.junk()]).connect(local(echo.port), options()), {
      message: /^hop 2 \(junk\) sent a malformed reply: expected SOCKS version 5, got 103$/,
      rep: Rep.GENERAL_FAILURE,
      failure: 'protocol',
      hop: 2,
    });
    await waitFor(() => garbage.open() === 0, 'the garbage hop to see the connection closed');
  });

  it("the last hop's REP is passed on: destination port closed -> REP 5", async () => {
    await rejects(chain([hops.micro(), hops.dante()]).connect(local(closedPort), options()), {
      message: /^hop 2 \(dante\) upstream replied REP 5 \(connection refused\)$/,
      rep: Rep.CONNECTION_REFUSED,
      failure: 'rejected',
      hop: 2,
    });
    await rejects(chain([hops.dante(), hops.open()]).connect(named(closedPort), options()), {
      message: /^hop 2 \(open\) upstream replied REP 5 \(connection refused\)$/,
      rep: Rep.CONNECTION_REFUSED,
      failure: 'rejected',
      hop: 2,
    });
  });

  it('a hop that cannot reach the next one: that next hop is named, with the REP its predecessor sent', async () => {
    await rejects(
      chain([hops.open(), { ...hops.dead('gone') }, hops.dante()]).connect(local(echo.port), options()),
      {
        message:
          /^hop 2 \(gone\) unreachable through hop 1 \(open\): upstream replied REP 5 \(connection refused\)$/,
        rep: Rep.CONNECTION_REFUSED,
        failure: 'rejected',
        hop: 2,
      },
    );
  });

  it('an abort ends the wait at once', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    await rejects(chain([hops.mute()]).connect(local(echo.port), { signal: controller.signal }), {
      message: /^hop 1 \(mute\) cancelled$/,
      rep: Rep.GENERAL_FAILURE,
      failure: 'aborted',
      hop: 1,
    });
    assert.ok(Date.now() - started < 1000);
  });
});

// ---- BIND -----------------------------------------------------------------------------------

describe('BIND at the last hop', () => {
  const cases = [
    { title: 'microsocks > our server', hops: () => [hops.micro(), hops.open()] },
    { title: 'our server > danted', hops: () => [hops.open(), hops.dante()] },
  ];
  for (const c of cases) {
    it(`${c.title}: both replies reach the caller, then bytes both ways`, async () => {
      const pending = await chain(c.hops()).bind(local(0), { host: '127.0.0.1', port: 0 }, options());
      assert.equal(pending.bound.host, '127.0.0.1');
      assert.ok(pending.bound.port > 0);
      const peerSocket = await connectTo(pending.bound.port, pending.bound.host);
      const { socket, peer } = await pending.accepted;
      assert.deepEqual(peer, { host: '127.0.0.1', port: peerSocket.localPort });
      const ours = new ByteReader(socket);
      const theirs = new ByteReader(peerSocket);
      peerSocket.write('from the peer');
      assert.equal((await ours.read(13)).toString(), 'from the peer');
      socket.write('to the peer');
      assert.equal((await theirs.read(11)).toString(), 'to the peer');
      socket.destroy();
      peerSocket.destroy();
    });
  }

  it('the wait for the peer is bounded by bindMs', async () => {
    const pending = await chain([hops.open(), hops.open()], { timeouts: { bindMs: 300 } }).bind(
      local(0),
      { host: '127.0.0.1', port: 0 },
      options(),
    );
    await rejects(pending.accepted, {
      message: /^hop 2 \(open\) did not answer within 300 ms \(waiting for the second BIND reply/,
      rep: Rep.TTL_EXPIRED,
      failure: 'timeout',
      hop: 2,
    });
  });

  it('cancel() closes the chain', async () => {
    const pending = await chain([hops.open(), hops.open()]).bind(
      local(0),
      { host: '127.0.0.1', port: 0 },
      options(),
    );
    pending.cancel();
    const error = await pending.accepted.then(
      () => assert.fail('cancelled'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof OutboundError);
    assert.match(error.message, /^hop 2 \(open\) closed the connection before sending the second BIND reply/);
  });

  it('an HTTP last hop cannot BIND', async () => {
    await rejects(
      chain([hops.open(), hops.http()]).bind(local(0), { host: '127.0.0.1', port: 0 }, options()),
      {
        message: /^hop 2 \(corp\) is an HTTP proxy, which cannot BIND$/,
        rep: Rep.COMMAND_NOT_SUPPORTED,
        failure: 'protocol',
        hop: 2,
      },
    );
  });
});

// ---- failover -------------------------------------------------------------------------------

describe('failover when the first hop is down', () => {
  const direct = new DirectOutbound({ connectTimeoutMs: 2000, bindTimeoutMs: 2000 });

  function build(
    routes: Route[],
    upstreams: Upstream[],
    health = new UpstreamHealth({ retryMs: 10_000 }),
    passwords?: PasswordChanges,
  ) {
    return buildRouteOutbounds({
      routes,
      upstreams,
      credentials: passwords ? credentialsWith(passwords) : credentials,
      timeouts: TIMEOUTS,
      health,
      direct,
      resolve: localResolver,
    });
  }

  it("'direct' reaches the destination directly", async () => {
    const outbounds = build([route('corp', ['dead'], { onFirstHopDown: 'direct' })], [hops.dead()]);
    const corp = outbounds.get('corp')!;
    assert.equal(corp.label, 'route corp (dead), else direct');
    const connected = await corp.connect(local(echo.port), options());
    assert.equal(connected.via, 'direct');
    await assertEcho(connected.socket, 1000);
  });

  it('{route: other} uses the other route', async () => {
    const destinations = since(open.destinations);
    const outbounds = build(
      [route('corp', ['dead'], { onFirstHopDown: { route: 'backup' } }), route('backup', ['open'])],
      [hops.dead(), hops.open()],
    );
    const connected = await outbounds.get('corp')!.connect(local(echo.port), options());
    assert.equal(connected.via, 'route backup (open)');
    assert.deepEqual(destinations(), [local(echo.port)]);
    await assertEcho(connected.socket, 1000);
  });

  it("'fail' fails, then fails fast while the hop counts as down, then tries it again", async () => {
    let now = 1000;
    const health = new UpstreamHealth({ retryMs: 22_000, now: () => now });
    const corp = build([route('corp', ['dead'])], [hops.dead()], health).get('corp')!;
    assert.ok(corp instanceof ChainOutbound, 'a route that may not fail over is just its chain');
    const refused = {
      rep: Rep.CONNECTION_REFUSED,
      failure: 'refused',
      hop: 1,
    } as const;
    await rejects(corp.connect(local(echo.port), options()), {
      message: /^hop 1 \(dead\) unreachable: connect ECONNREFUSED/,
      ...refused,
    });
    now = 13_000;
    await rejects(corp.connect(local(echo.port), options()), {
      message: /^hop 1 \(dead\) is down \(ECONNREFUSED 12 s ago\); retrying after 10 s$/,
      ...refused,
    });
    now = 23_000;
    await rejects(corp.connect(local(echo.port), options()), {
      message: /^hop 1 \(dead\) unreachable: connect ECONNREFUSED/,
      ...refused,
    });
  });

  it('the second request within upstreamRetryMs does not wait for the dead hop again', async () => {
    const accepted = silent.accepted();
    const corp = build(
      [route('corp', ['mute'], { onFirstHopDown: 'direct' })],
      [hops.mute({ handshakeTimeoutMs: 500 })],
    ).get('corp')!;

    let started = Date.now();
    const first = await corp.connect(local(echo.port), options());
    const firstMs = Date.now() - started;
    assert.ok(firstMs >= 480, `the first request waited for the hop (${firstMs} ms)`);
    assert.equal(first.via, 'direct');
    first.socket.destroy();

    started = Date.now();
    const second = await corp.connect(local(echo.port), options());
    const secondMs = Date.now() - started;
    assert.ok(secondMs < 200, `the second request went straight to the fallback (${secondMs} ms)`);
    assert.equal(second.via, 'direct');
    assert.equal(silent.accepted(), accepted + 1, 'the dead hop was dialled once');
    await assertEcho(second.socket, 1000);
  });

  it('a failure at hop 2 does not fail over, nor marks hop 1 down', async () => {
    const health = new UpstreamHealth({ retryMs: 10_000 });
    const corp = build(
      [route('corp', ['open', 'dead'], { onFirstHopDown: 'direct' })],
      [hops.open(), hops.dead()],
      health,
    ).get('corp')!;
    await rejects(corp.connect(local(echo.port), options()), {
      message: /^hop 2 \(dead\) unreachable through hop 1 \(open\): upstream replied REP 5/,
      rep: Rep.CONNECTION_REFUSED,
      failure: 'rejected',
      hop: 2,
    });
    assert.equal(health.downSince('open'), undefined);
  });

  it('a first hop that answers but is slow to connect onward is up: no failover, not marked down', async () => {
    // Answers the greeting (no auth), then never the CONNECT: a destination that takes its time.
    const slow = await startScripted((socket) => {
      socket.once('data', () => socket.write(Buffer.from([0x05, 0x00])));
    });
    try {
      const health = new UpstreamHealth({ retryMs: 10_000 });
      const corp = build(
        [route('corp', ['slow'], { onFirstHopDown: 'direct' })],
        [upstream('slow', 'socks5', slow.port, { handshakeTimeoutMs: 300 })],
        health,
      ).get('corp')!;
      for (let attempt = 1; attempt <= 2; attempt++) {
        await rejects(corp.connect(local(echo.port), options()), {
          message:
            /^hop 1 \(slow\) is up but did not reach the destination within 300 ms \(waiting for the reply\)$/,
          rep: Rep.TTL_EXPIRED,
          failure: 'timeout',
          hop: undefined,
        });
      }
      assert.equal(health.downSince('slow'), undefined);
      assert.equal(slow.accepted(), 2, 'the second request went to the hop again, not around it');

      // Through it to a second hop, the slow part is named as that hop.
      const twoHops = build(
        [route('two', ['slow', 'open'], { onFirstHopDown: 'direct' })],
        [upstream('slow', 'socks5', slow.port, { handshakeTimeoutMs: 300 }), hops.open()],
        health,
      ).get('two')!;
      await rejects(twoHops.connect(local(echo.port), options()), {
        message:
          /^hop 1 \(slow\) is up but did not reach hop 2 \(open\) through it within 300 ms \(waiting for the reply\)$/,
        rep: Rep.TTL_EXPIRED,
        failure: 'timeout',
        hop: 2,
      });
      assert.equal(health.downSince('slow'), undefined);
    } finally {
      await slow.close();
    }
  });

  it('an auth failure at hop 1 does not fail over', async () => {
    const corp = build(
      [route('corp', ['guarded'], { onFirstHopDown: 'direct' })],
      [hops.guarded()],
      undefined,
      { guarded: WRONG_PASSWORD },
    ).get('corp')!;
    await rejects(corp.connect(local(echo.port), options()), {
      message: /^hop 1 \(guarded\) rejected the username\/password/,
      rep: Rep.GENERAL_FAILURE,
      failure: 'auth-failed',
      hop: 1,
    });
  });

  it('fallbacks are followed through routes, and a cycle ends before it comes back', async () => {
    const outbounds = build(
      [
        route('a', ['dead-a'], { onFirstHopDown: { route: 'b' } }),
        route('b', ['dead-b'], { onFirstHopDown: { route: 'a' } }),
        route('c', ['dead-c'], { onFirstHopDown: { route: 'd' } }),
        route('d', ['dead-d'], { onFirstHopDown: 'direct' }),
      ],
      [hops.dead('dead-a'), hops.dead('dead-b'), hops.dead('dead-c'), hops.dead('dead-d')],
    );
    const a = outbounds.get('a')!;
    assert.equal(a.label, 'route a (dead-a), else route b (dead-b)');
    assert.equal(outbounds.get('b')!.label, 'route b (dead-b), else route a (dead-a)');
    const error = await rejects(a.connect(local(echo.port), options()), {
      message:
        /^hop 1 \(dead-a\) unreachable: connect ECONNREFUSED \S+; then route b \(dead-b\) failed too: hop 1 \(dead-b\) unreachable: connect ECONNREFUSED \S+$/,
      rep: Rep.CONNECTION_REFUSED,
      failure: 'refused',
      hop: 1,
    });
    assert.ok(isFirstHopDown(error));

    const c = outbounds.get('c')!;
    assert.equal(c.label, 'route c (dead-c), else route d (dead-d), else direct');
    const connected = await c.connect(local(echo.port), options());
    assert.equal(connected.via, 'direct');
    connected.socket.destroy();
  });

  it('BIND fails over too', async () => {
    const corp = new FailoverOutbound({
      primary: chain([hops.dead()], { health: new UpstreamHealth({ retryMs: 10_000 }) }),
      fallback: chain([hops.open()]),
    });
    const pending = await corp.bind(local(0), { host: '127.0.0.1', port: 0 }, options());
    const peerSocket = await connectTo(pending.bound.port, pending.bound.host);
    const { socket } = await pending.accepted;
    socket.destroy();
    peerSocket.destroy();
  });
});

describe('UpstreamHealth', () => {
  const refused = new OutboundError('hop 1 (x) unreachable', Rep.CONNECTION_REFUSED, 'refused', 1);

  it('remembers a down upstream for retryMs, and forgets it when marked up', () => {
    let now = 0;
    const health = new UpstreamHealth({ retryMs: 1000, now: () => now });
    health.markDown('x', refused);
    assert.deepEqual(health.downSince('x'), { error: refused, since: 0, until: 1000 });
    now = 999;
    assert.ok(health.downSince('x'));
    now = 1000;
    assert.equal(health.downSince('x'), undefined);
    health.markDown('x', refused);
    health.markUp('x');
    assert.equal(health.downSince('x'), undefined);
  });

  it('retryMs 0 remembers nothing', () => {
    const health = new UpstreamHealth({ retryMs: 0 });
    health.markDown('x', refused);
    assert.equal(health.downSince('x'), undefined);
  });

  it('only reachability failures at hop 1 count as down', () => {
    const at = (failure: OutboundFailure, hop: number | undefined) =>
      isFirstHopDown(new OutboundError('e', Rep.GENERAL_FAILURE, failure, hop));
    for (const failure of ['refused', 'timeout', 'unreachable', 'not-found'] as const) {
      assert.equal(at(failure, 1), true, failure);
      assert.equal(at(failure, 2), false, failure);
      assert.equal(at(failure, undefined), false, failure);
    }
    for (const failure of ['auth-failed', 'rejected', 'protocol', 'aborted', 'other'] as const) {
      assert.equal(at(failure, 1), false, failure);
    }
    assert.equal(isFirstHopDown(new Error('x')), false);
  });
});

// ---- check ----------------------------------------------------------------------------------

describe('check: per-hop timings', () => {
  it('reports every hop of a working chain and closes the connection', async () => {
    const destination = await startScripted(() => undefined);
    try {
      const reports = await chain([hops.http(), hops.dante(), hops.guarded()]).check(
        local(destination.port),
        signalSource.signal,
      );
      assert.deepEqual(
        reports.map(({ ms: _ms, ...rest }) => rest),
        [
          { hop: 1, name: 'corp', ok: true },
          { hop: 2, name: 'dante', ok: true },
          { hop: 3, name: 'guarded', ok: true },
        ],
      );
      for (const r of reports) assert.ok(Number.isInteger(r.ms) && r.ms >= 0 && r.ms < 3000, `${r.ms}`);
      await waitFor(() => destination.accepted() === 1 && destination.open() === 0, 'the check to hang up');
    } finally {
      await destination.close();
    }
  });

  it('stops at the failing hop', async () => {
    const auth = await chain([hops.open(), hops.dante(), hops.guarded()], {
      passwords: { dante: WRONG_PASSWORD },
    }).check(local(echo.port), signalSource.signal);
    assert.deepEqual(
      auth.map((r) => [r.hop, r.name, r.ok, r.error]),
      [
        [1, 'open', true, undefined],
        [2, 'dante', false, "hop 2 (dante) rejected the username/password for user 'switchyard-test'"],
      ],
    );

    const first = await chain([hops.dead(), hops.open()]).check(local(echo.port), signalSource.signal);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.ok, false);
    assert.match(first[0]!.error!, /^hop 1 \(dead\) unreachable: connect ECONNREFUSED/);

    const middle = await chain([hops.open(), hops.dead('gone'), hops.open()]).check(
      local(echo.port),
      signalSource.signal,
    );
    assert.deepEqual(
      middle.map((r) => [r.hop, r.ok]),
      [
        [1, true],
        [2, false],
      ],
    );
    assert.match(middle[1]!.error!, /^hop 2 \(gone\) unreachable through hop 1 \(open\)/);
  });

  it('tries a first hop even while it counts as down', async () => {
    const health = new UpstreamHealth({ retryMs: 10_000 });
    const c = chain([hops.open()], { health });
    health.markDown('open', new OutboundError('x', Rep.CONNECTION_REFUSED, 'refused', 1));
    const reports = await c.check(local(echo.port), signalSource.signal);
    assert.equal(reports[0]!.ok, true);
    assert.equal(health.downSince('open'), undefined, 'a working hop is marked up again');
  });
});
