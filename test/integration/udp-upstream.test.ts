/**
 * UDP ASSOCIATE through one SOCKS5 upstream, on real loopback sockets: our own server (with an
 * inbound user) and danted as the upstream, round trips to a local UDP echo for an IPv4 and a
 * domain destination (the name reaches the upstream unresolved), a scripted upstream to see
 * the bytes on the wire and to hang up the upstream's control connection, the refusals for
 * routes UDP cannot take, and failover to the direct relay.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import type { CredentialSource } from '../../native-host/src/credentials/credentials.ts';
import {
  DANTE_USER,
  type Dante,
  type Scripted,
  freePort,
  startDante,
  startScripted,
} from '../helpers/reference-servers.ts';
import {
  type PolicyServer,
  type TestServer,
  startPolicyServer,
  waitForLog,
} from '../helpers/socks-server.ts';
import {
  ATYP_DOMAIN,
  ATYP_IPV4,
  type Association,
  associate,
  datagram,
  domainBytes,
  LOOPBACK4,
  portBytes,
  QUIET_MS,
  sleep,
  type UdpPeer,
  udpPeer,
  udpPortFree,
} from '../helpers/udp.ts';

/** A name only the upstream's resolver knows: if this machine looked it up, it would fail. */
const ONLY_UPSTREAM = 'only-upstream.test';
/** What the resolver of a server that knows names knows. */
const KNOWN_NAMES = { [ONLY_UPSTREAM]: '127.0.0.1', localhost: '127.0.0.1' };
const ALICE = { username: 'alice', password: 'correct horse' };

// ---- servers ----------------------------------------------------------------------------------

/** A downstream whose every request takes route `one` through the upstreams given. */
function routeConfig(
  upstreams: Record<string, unknown>[],
  hops: string[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    upstreams,
    routes: [{ id: 'one', name: 'corp', hops, ...extra }],
    defaultTarget: { kind: 'route', routeId: 'one' },
  };
}

const credentials: CredentialSource = async (upstream) => {
  if (upstream.id === 'ours') return ALICE;
  if (upstream.id === 'dante') return DANTE_USER;
  return undefined;
};

// ---- tests ----------------------------------------------------------------------------------

describe('UDP ASSOCIATE through one SOCKS5 upstream', () => {
  let echo: UdpPeer;
  let upstream: PolicyServer;
  let viaOurs: PolicyServer;
  let dante: Dante;
  let viaDante: PolicyServer;
  const peers: UdpPeer[] = [];
  const controls: Socket[] = [];
  const servers: TestServer[] = [];
  const peer = async (host?: string, isEcho?: boolean): Promise<UdpPeer> => {
    const p = await udpPeer(host, isEcho);
    peers.push(p);
    return p;
  };
  const open = async (port: number): Promise<Association> => {
    const a = await associate(port);
    controls.push(a.control);
    return a;
  };
  const server = async (...args: Parameters<typeof startPolicyServer>): Promise<PolicyServer> => {
    const s = await startPolicyServer(...args);
    servers.push(s);
    return s;
  };

  before(async () => {
    echo = await udpPeer('127.0.0.1', true);
    const users = [{ name: ALICE.username, passwordHash: await hashPassword(ALICE.password) }];
    [upstream, dante] = await Promise.all([
      server({}, { names: KNOWN_NAMES, server: { users } }),
      startDante({ socksmethod: 'username' }),
    ]);
    viaOurs = await server(
      routeConfig(
        [{ id: 'ours', type: 'socks5', host: '127.0.0.1', port: upstream.port, username: ALICE.username }],
        ['ours'],
      ),
      { credentials },
    );
    viaDante = await server(
      routeConfig(
        [{ id: 'dante', type: 'socks5', host: '127.0.0.1', port: dante.port, username: DANTE_USER.username }],
        ['dante'],
      ),
      { credentials },
    );
  });

  after(async () => {
    for (const c of controls) c.destroy();
    for (const p of peers) p.close();
    echo?.close();
    await Promise.all(servers.map((s) => s.close()));
    await dante?.stop();
  });

  test('our own server as the upstream, with a password: IPv4 round trip', async () => {
    const a = await open(viaOurs.port);
    assert.equal(a.rep, 0x00);
    assert.equal(a.host, '127.0.0.1');
    const client = await peer();
    client.socket.send(datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'via-ours'), a.port, a.host);
    const got = await client.next();
    assert.deepEqual(got.msg, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'via-ours'));
    assert.equal(got.rinfo.port, a.port, 'replies come from the BND port');
    assert.equal(echo.received.at(-1)?.msg.toString(), 'via-ours');
    // The upstream holds an association for its user: the datagram went through it.
    await waitForLog(upstream, 'tunnel opened', 'cmd=udp-associate', 'user=alice');
    a.control.destroy();
    const line = await waitForLog(viaOurs, 'udp association closed', `relay=127.0.0.1:${a.port} `);
    assert.match(line, / via="route corp \(ours\)" /);
    assert.match(line, / dgrams_up=1 up=8 dgrams_down=1 down=8 dropped=0 /);
    // Our control connection ending ends the upstream's association too.
    await waitForLog(upstream, 'udp association closed', 'result=closed');
  });

  test('our own server as the upstream: a name goes to it unresolved', async () => {
    const a = await open(viaOurs.port);
    const client = await peer();
    const dest = [ATYP_DOMAIN, domainBytes(ONLY_UPSTREAM), echo.port] as const;
    client.socket.send(datagram(dest[0], dest[1], dest[2], 'by-name'), a.port, a.host);
    const got = await client.next();
    // The upstream resolved it and answers from the address.
    assert.deepEqual(got.msg, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'by-name'));
    assert.ok(upstream.lookups.includes(ONLY_UPSTREAM), 'the upstream resolved the name');
    assert.ok(!viaOurs.lookups.includes(ONLY_UPSTREAM), 'this machine did not');
    assert.deepEqual(viaOurs.lookups, []);
  });

  test('danted as the upstream, with a system-user password: IPv4 and localhost round trips', async () => {
    const a = await open(viaDante.port);
    assert.equal(a.rep, 0x00);
    const client = await peer();
    client.socket.send(datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'dante-ip'), a.port, a.host);
    const ip = await client.next(3000);
    assert.deepEqual(ip.msg, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'dante-ip'));
    client.socket.send(
      datagram(ATYP_DOMAIN, domainBytes('localhost'), echo.port, 'dante-name'),
      a.port,
      a.host,
    );
    const named = await client.next(3000);
    assert.deepEqual(named.msg, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'dante-name'));
    assert.deepEqual(viaDante.lookups, [], 'danted resolved localhost, not us');
    a.control.destroy();
    await waitForLog(viaDante, 'udp association closed', `relay=127.0.0.1:${a.port} `, 'dgrams_down=2');
  });

  test('a route of two hops is refused with REP 07 and says why, without dialling', async () => {
    const [one, two] = [await startScripted(() => undefined), await startScripted(() => undefined)];
    try {
      const s = await server(
        routeConfig(
          [
            { id: 'a', type: 'socks5', host: '127.0.0.1', port: one.port },
            { id: 'b', type: 'socks5', host: '127.0.0.1', port: two.port },
          ],
          ['a', 'b'],
        ),
      );
      const a = await open(s.port);
      assert.equal(a.rep, 0x07);
      assert.deepEqual([...(await a.reader.readToEnd())], []);
      await waitForLog(
        s,
        'info  udp associate refused: route corp (a > b) has 2 hops; UDP can only go through a single SOCKS5 upstream',
      );
      await waitForLog(s, 'tunnel failed', 'result="rep 7 (command not supported)"');
      assert.equal(one.accepted() + two.accepted(), 0);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('a route through an HTTP proxy is refused with REP 07', async () => {
    const http = await startScripted(() => undefined);
    try {
      const s = await server(
        routeConfig([{ id: 'web', type: 'http', host: '127.0.0.1', port: http.port }], ['web']),
      );
      const a = await open(s.port);
      assert.equal(a.rep, 0x07);
      await waitForLog(
        s,
        'udp associate refused: route corp (web): hop 1 (web) speaks http, not socks5; UDP can only go through a single SOCKS5 upstream',
      );
      assert.equal(http.accepted(), 0);
    } finally {
      await http.close();
    }
  });

  test('a failover route whose upstream is down falls back to the direct relay', async () => {
    const dead = await freePort();
    const s = await server(
      routeConfig([{ id: 'gone', type: 'socks5', host: '127.0.0.1', port: dead }], ['gone'], {
        onFirstHopDown: 'direct',
      }),
    );
    const a = await open(s.port);
    assert.equal(a.rep, 0x00);
    const client = await peer();
    client.socket.send(datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'fell-back'), a.port, a.host);
    assert.deepEqual((await client.next()).msg, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'fell-back'));
    a.control.destroy();
    const line = await waitForLog(s, 'udp association closed', `relay=127.0.0.1:${a.port} `);
    assert.match(line, / via=direct /);
  });

  test('without failover, an upstream that is down gets REP 05', async () => {
    const dead = await freePort();
    const s = await server(
      routeConfig([{ id: 'gone', type: 'socks5', host: '127.0.0.1', port: dead }], ['gone']),
    );
    const a = await open(s.port);
    assert.equal(a.rep, 0x05);
  });
});

describe('the upstream association on the wire (scripted upstream)', () => {
  let relay: UdpPeer;
  let upstream: Scripted;
  let downstream: PolicyServer;
  /** The UDP ASSOCIATE requests the upstream received, and its side of each control connection. */
  const requests: Buffer[] = [];
  const upstreamControls: Socket[] = [];
  const peers: UdpPeer[] = [];

  before(async () => {
    // The upstream's relay sends every datagram back as it came: header and all.
    relay = await udpPeer('127.0.0.1', true);
    upstream = await startScripted(async (socket, reader) => {
      assert.deepEqual([...(await reader.read(3))], [0x05, 0x01, 0x00]);
      socket.write(Buffer.from([0x05, 0x00]));
      requests.push(await reader.read(10));
      upstreamControls.push(socket);
      // BND 0.0.0.0: "my own address", which the host must take from the connection.
      socket.write(Buffer.from([0x05, 0x00, 0x00, ATYP_IPV4, 0, 0, 0, 0, ...portBytes(relay.port)]));
    });
    downstream = await startPolicyServer(
      routeConfig([{ id: 'fake', type: 'socks5', host: '127.0.0.1', port: upstream.port }], ['fake']),
    );
  });

  after(async () => {
    for (const p of peers) p.close();
    relay?.close();
    await downstream?.close();
    await upstream?.close();
  });

  test('asks for 0.0.0.0:0, forwards datagrams as they are both ways, and drops strangers', async () => {
    const a = await associate(downstream.port);
    assert.equal(a.rep, 0x00);
    assert.deepEqual([...requests.at(-1)!], [0x05, 0x03, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
    const client = await udpPeer();
    peers.push(client);
    const sent = datagram(ATYP_DOMAIN, domainBytes(ONLY_UPSTREAM), 5353, 'as-is');
    client.socket.send(sent, a.port, a.host);
    const back = await client.next();
    assert.deepEqual(relay.received.at(-1)?.msg, sent, 'the upstream got the header unchanged');
    assert.deepEqual(back.msg, sent, 'the client got the relay datagram unchanged');
    assert.deepEqual(downstream.lookups, [], 'nothing was resolved here');

    // Someone else writing to our egress socket does not reach the client.
    const egressPort = relay.received.at(-1)!.rinfo.port;
    const stranger = await udpPeer();
    peers.push(stranger);
    stranger.socket.send(datagram(ATYP_IPV4, LOOPBACK4, 9, 'spoof'), egressPort, '127.0.0.1');
    await sleep(QUIET_MS);
    assert.equal(client.received.length, 1);
    await waitForLog(downstream, 'udp datagram dropped', 'datagram from other than the upstream relay');

    // Our client leaving ends the association at the upstream as well.
    const upstreamSide = upstreamControls.at(-1)!;
    const ended = new Promise<void>((resolve) => upstreamSide.once('end', () => resolve()));
    a.control.destroy();
    await ended;
    const line = await waitForLog(downstream, 'udp association closed', `relay=127.0.0.1:${a.port} `);
    assert.match(line, / result=closed .* dropped=1 /);
  });

  test("the upstream's control connection closing ends our association", async () => {
    const a = await associate(downstream.port);
    assert.equal(a.rep, 0x00);
    const client = await udpPeer();
    peers.push(client);
    client.socket.send(datagram(ATYP_IPV4, LOOPBACK4, 7, 'before'), a.port, a.host);
    await client.next();
    assert.equal(await udpPortFree(a.port), false);
    upstreamControls.at(-1)!.destroy();
    await waitForLog(
      downstream,
      'udp association closed',
      `relay=127.0.0.1:${a.port} `,
      'result=upstream-closed',
    );
    assert.deepEqual([...(await a.reader.readToEnd())], [], 'the client control connection is closed');
    assert.equal(await udpPortFree(a.port), true, 'the BND port is free again');
    client.socket.send(datagram(ATYP_IPV4, LOOPBACK4, 7, 'after'), a.port, a.host);
    await sleep(QUIET_MS);
    assert.equal(client.received.length, 1);
    a.control.destroy();
  });
});
