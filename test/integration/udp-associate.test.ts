import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Outbound } from '../../native-host/src/outbound/outbound.ts';
import { resolveHost } from '../../native-host/src/outbound/resolve.ts';
import { closed } from '../helpers/net.ts';
import {
  type TestServer,
  type TestServerOptions,
  startSocksServer,
  waitForLog,
} from '../helpers/socks-server.ts';
import {
  ATYP_DOMAIN,
  ATYP_IPV4,
  ATYP_IPV6,
  type Association,
  associate,
  datagram,
  domainBytes,
  LOOPBACK4,
  QUIET_MS,
  sleep,
  type UdpPeer,
  udpPeer,
  udpPortFree,
} from '../helpers/udp.ts';

const LOOPBACK6 = [...new Array<number>(15).fill(0), 1];

function send(from: UdpPeer, to: { host: string; port: number }, data: Buffer): void {
  from.socket.send(data, to.port, to.host);
}

/** Sends `payload` to the echo server through the association and checks the exact reply. */
async function roundTrip(
  client: UdpPeer,
  assoc: Association,
  dest: { atyp: number; addr: number[]; port: number },
  reply: { atyp: number; addr: number[] },
  payload: string,
): Promise<void> {
  send(client, assoc, datagram(dest.atyp, dest.addr, dest.port, payload));
  const got = await client.next();
  assert.deepEqual(got.msg, datagram(reply.atyp, reply.addr, dest.port, payload));
  assert.equal(got.rinfo.port, assoc.port, 'replies come from the BND port');
}

async function withServer<T>(options: TestServerOptions, body: (s: TestServer) => Promise<T>): Promise<T> {
  const server = await startSocksServer(options);
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

describe('SOCKS5 UDP ASSOCIATE', () => {
  let socks: TestServer;
  let echo: UdpPeer;
  let echo6: UdpPeer;
  const peers: UdpPeer[] = [];
  const controls: Socket[] = [];
  const peer = async (host = '127.0.0.1', isEcho = false): Promise<UdpPeer> => {
    const p = await udpPeer(host, isEcho);
    peers.push(p);
    return p;
  };
  const open = async (...args: Parameters<typeof associate>): Promise<Association> => {
    const a = await associate(...args);
    controls.push(a.control);
    assert.equal(a.version, 0x05);
    return a;
  };
  const toEcho = () => ({ atyp: ATYP_IPV4, addr: LOOPBACK4, port: echo.port });
  const fromEcho = { atyp: ATYP_IPV4, addr: LOOPBACK4 };

  before(async () => {
    socks = await startSocksServer();
    echo = await udpPeer('127.0.0.1', true);
    echo6 = await udpPeer('::1', true);
  });
  after(async () => {
    for (const c of controls) c.destroy();
    for (const p of peers) p.close();
    echo.close();
    echo6.close();
    await socks.close();
  });

  test('replies success with BND.ADDR 127.0.0.1 and a UDP port bound there', async () => {
    const a = await open(socks.port);
    assert.equal(a.rep, 0x00);
    assert.equal(a.atyp, ATYP_IPV4);
    assert.equal(a.host, '127.0.0.1');
    assert.ok(a.port > 0);
    assert.equal(await udpPortFree(a.port), false, 'the relay holds the BND port');
  });

  test('on a server listening on 0.0.0.0, BND.ADDR is the address the client connected to', async () => {
    await withServer({ host: '0.0.0.0' }, async (wild) => {
      assert.equal(wild.host, '0.0.0.0');
      const a = await open(wild.port, { connectHost: '127.0.0.1' });
      assert.equal(a.rep, 0x00);
      assert.equal(a.host, '127.0.0.1');
      assert.notEqual(a.host, '0.0.0.0');
      const client = await peer();
      await roundTrip(client, a, toEcho(), fromEcho, 'wild');
    });
  });

  test('a client on ::1 gets BND.ADDR ::1 and its datagrams relayed over udp6', async () => {
    await withServer({ host: '::1' }, async (six) => {
      const a = await open(six.port, { connectHost: '::1' });
      assert.equal(a.rep, 0x00);
      assert.equal(a.atyp, ATYP_IPV6);
      assert.equal(a.host, '::1');
      const client = await peer('::1');
      await roundTrip(client, a, toEcho(), fromEcho, 'v6-client');
      const dest = { atyp: ATYP_IPV6, addr: LOOPBACK6, port: echo6.port };
      await roundTrip(client, a, dest, { atyp: ATYP_IPV6, addr: LOOPBACK6 }, 'v6-both');
    });
  });

  test('relays a round trip to an IPv4 destination through a separate egress socket', async () => {
    const a = await open(socks.port);
    const client = await peer();
    const before = echo.received.length;
    await roundTrip(client, a, toEcho(), fromEcho, 'ping4');
    const seen = echo.received[before]!;
    assert.equal(seen.msg.toString(), 'ping4', 'the destination gets the payload without the header');
    assert.notEqual(seen.rinfo.port, a.port, 'egress is not the client-facing socket');
  });

  test('relays a round trip to an IPv6 (::1) destination', async () => {
    const a = await open(socks.port);
    const client = await peer();
    const dest = { atyp: ATYP_IPV6, addr: LOOPBACK6, port: echo6.port };
    await roundTrip(client, a, dest, { atyp: ATYP_IPV6, addr: LOOPBACK6 }, 'ping6');
    assert.equal(echo6.received.at(-1)?.msg.toString(), 'ping6');
  });

  test('relays a round trip to the domain destination localhost, answering from its IP', async () => {
    const [first] = await resolveHost('localhost');
    assert.ok(first, 'localhost resolves');
    const target = await peer(first.address, true);
    const a = await open(socks.port);
    const client = await peer();
    const from =
      first.family === 4 ? { atyp: ATYP_IPV4, addr: LOOPBACK4 } : { atyp: ATYP_IPV6, addr: LOOPBACK6 };
    const dest = { atyp: ATYP_DOMAIN, addr: domainBytes('localhost'), port: target.port };
    await roundTrip(client, a, dest, from, 'name1');
    // The second datagram is served from the association's name cache.
    await roundTrip(client, a, dest, from, 'name2');
    assert.deepEqual(
      target.received.map((r) => r.msg.toString()),
      ['name1', 'name2'],
    );
  });

  test('once locked to the first source port, drops datagrams from another port of the client IP', async () => {
    const a = await open(socks.port);
    const client = await peer();
    const other = await peer();
    await roundTrip(client, a, toEcho(), fromEcho, 'first');
    const before = echo.received.length;
    send(other, a, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'intruder'));
    await sleep(QUIET_MS);
    assert.equal(echo.received.length, before, 'nothing from the other port was relayed');
    assert.equal(other.received.length, 0);
    await roundTrip(client, a, toEcho(), fromEcho, 'still');
  });

  test('with DST.PORT announced, drops datagrams from any other port even before the first one', async () => {
    const client = await peer();
    const other = await peer();
    const a = await open(socks.port, { addr: LOOPBACK4, port: client.port });
    assert.equal(a.rep, 0x00);
    const before = echo.received.length;
    send(other, a, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'early-intruder'));
    await sleep(QUIET_MS);
    assert.equal(echo.received.length, before);
    await roundTrip(client, a, toEcho(), fromEcho, 'announced');
  });

  test('drops datagrams from another IP (127.0.0.2) before the port is locked', async () => {
    // All of 127.0.0.0/8 is on the loopback interface on Linux, so this address is always there.
    const stranger = await peer('127.0.0.2');
    const a = await open(socks.port);
    const before = echo.received.length;
    send(stranger, a, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'stranger'));
    await sleep(QUIET_MS);
    assert.equal(echo.received.length, before);
    // The stranger did not lock the association: the client's first datagram still does.
    const client = await peer();
    await roundTrip(client, a, toEcho(), fromEcho, 'owner');
  });

  test('refuses with REP 02 when DST.ADDR announces an IP other than the client', async () => {
    const a = await open(socks.port, { addr: [10, 9, 8, 7], port: 4000 });
    assert.equal(a.rep, 0x02);
    assert.deepEqual([...(await a.reader.readToEnd())], []);
  });

  test('drops a datagram with FRAG != 0 and relays the following good one', async () => {
    const a = await open(socks.port);
    const client = await peer();
    const before = echo.received.length;
    send(client, a, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'fragment', 1));
    await sleep(QUIET_MS);
    assert.equal(echo.received.length, before);
    assert.equal(client.received.length, 0);
    await roundTrip(client, a, toEcho(), fromEcho, 'whole');
    assert.equal(echo.received.length, before + 1);
  });

  test('drops malformed headers (short, unknown ATYP, truncated address) and goes on', async () => {
    const a = await open(socks.port);
    const client = await peer();
    const before = echo.received.length;
    send(client, a, Buffer.from([0, 0, 0]));
    send(client, a, Buffer.from([0, 0, 0, 0x05, 1, 2, 3, 4, 0, 80]));
    send(client, a, Buffer.from([0, 0, 0, ATYP_IPV4, 127, 0]));
    send(client, a, Buffer.from([0, 0, 0, ATYP_DOMAIN, 9, 0x6c]));
    await sleep(QUIET_MS);
    assert.equal(echo.received.length, before);
    await roundTrip(client, a, toEcho(), fromEcho, 'after-garbage');
  });

  test('drops datagrams reaching the egress socket from a source never sent to', async () => {
    const a = await open(socks.port);
    const client = await peer();
    const before = echo.received.length;
    await roundTrip(client, a, toEcho(), fromEcho, 'learn-egress');
    const egressPort = echo.received[before]!.rinfo.port;
    const stranger = await peer();
    stranger.socket.send(Buffer.from('unsolicited'), egressPort, '127.0.0.1');
    await sleep(QUIET_MS);
    assert.equal(client.received.length, 1, 'only the echo reply reached the client');
    await roundTrip(client, a, toEcho(), fromEcho, 'after-stranger');
  });

  test('send errors (broadcast EACCES, port 0) neither crash nor end the association', async () => {
    const a = await open(socks.port);
    const client = await peer();
    send(client, a, datagram(ATYP_IPV4, [255, 255, 255, 255], 9, 'broadcast'));
    send(client, a, datagram(ATYP_IPV4, LOOPBACK4, 0, 'port-zero'));
    await sleep(QUIET_MS);
    await roundTrip(client, a, toEcho(), fromEcho, 'survived');
    await waitForLog(socks, 'udp socket error', 'EACCES');
    await waitForLog(socks, 'udp datagram dropped', 'destination port 0');
  });

  test('with maxUdpDestinations 1, drops datagrams to a second destination and warns once', async () => {
    await withServer({ limits: { maxUdpDestinations: 1 } }, async (limited) => {
      const second = await peer('127.0.0.1', true);
      const a = await open(limited.port);
      const client = await peer();
      await roundTrip(client, a, toEcho(), fromEcho, 'one');
      send(client, a, datagram(ATYP_IPV4, LOOPBACK4, second.port, 'two'));
      send(client, a, datagram(ATYP_IPV4, LOOPBACK4, second.port, 'two-again'));
      await sleep(QUIET_MS);
      assert.equal(second.received.length, 0);
      await roundTrip(client, a, toEcho(), fromEcho, 'one-again');
      const warnings = limited.logs.filter((l) => l.includes('reached its destination limit'));
      assert.equal(warnings.length, 1);
      a.control.destroy();
      const line = await waitForLog(limited, 'udp association closed');
      assert.match(line, / dropped=2 /);
      assert.match(line, / dests=1 /);
    });
  });

  for (const how of ['end', 'destroy'] as const) {
    test(`closing the TCP control connection (${how}) closes the UDP socket`, async () => {
      const a = await open(socks.port);
      const client = await peer();
      await roundTrip(client, a, toEcho(), fromEcho, 'before-close');
      assert.equal(await udpPortFree(a.port), false);
      a.control[how]();
      await waitForLog(socks, 'udp association closed', `relay=127.0.0.1:${a.port} `, 'result=closed');
      assert.equal(await udpPortFree(a.port), true, 'the BND port is free again');
      send(client, a, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'after-close'));
      await sleep(QUIET_MS);
      assert.equal(client.received.length, 1, 'no reply after the association ended');
      await closed(a.control);
    });
  }

  test('logs one line at the end with datagrams and bytes each way, drops and duration', async () => {
    const a = await open(socks.port);
    const client = await peer();
    await roundTrip(client, a, toEcho(), fromEcho, 'abcd');
    await roundTrip(client, a, toEcho(), fromEcho, 'efghij');
    send(client, a, datagram(ATYP_IPV4, LOOPBACK4, echo.port, 'frag', 2));
    await sleep(QUIET_MS);
    a.control.destroy();
    const line = await waitForLog(socks, 'udp association closed', `relay=127.0.0.1:${a.port} `);
    assert.match(line, / cmd=udp-associate /);
    assert.match(line, / dgrams_up=2 up=10 dgrams_down=2 down=10 dropped=1 denied=0 errors=0 dests=1 ms=\d+/);
    assert.equal(socks.logs.filter((l) => l.includes(`relay=127.0.0.1:${a.port} `)).length, 1);
  });

  test('ends after udpIdleMs without datagrams, closing the UDP socket and the control connection', async () => {
    await withServer({ timeouts: { udpIdleMs: 300 } }, async (idle) => {
      const a = await open(idle.port);
      const client = await peer();
      // Traffic spaced under the timeout keeps the association open past it.
      const started = Date.now();
      for (let i = 0; i < 3; i++) {
        await roundTrip(client, a, toEcho(), fromEcho, `keep${i}`);
        await sleep(150);
      }
      assert.ok(Date.now() - started > 400);
      await roundTrip(client, a, toEcho(), fromEcho, 'last');
      const quietFrom = Date.now();
      assert.deepEqual([...(await a.reader.readToEnd(3000))], [], 'the server closes the control connection');
      const waited = Date.now() - quietFrom;
      assert.ok(waited >= 250 && waited < 1500, `ended after ${waited} ms`);
      await waitForLog(idle, 'udp association closed', 'result=idle');
      assert.equal(await udpPortFree(a.port), true);
    });
  });

  test('outlives the handshake timeout once the reply is sent', async () => {
    await withServer({ timeouts: { handshakeMs: 200 } }, async (quick) => {
      const a = await open(quick.port);
      await sleep(400);
      assert.equal(a.reader.isEnded, false);
      const client = await peer();
      await roundTrip(client, a, toEcho(), fromEcho, 'late');
    });
  });

  test('reads and discards bytes sent on the control connection after the request', async () => {
    const a = await open(socks.port);
    const bulk = Buffer.alloc(16 * 1024 * 1024, 0x41);
    // Only a server that keeps reading lets 16 MiB through the socket buffers.
    await new Promise<void>((resolve, reject) => a.control.write(bulk, (e) => (e ? reject(e) : resolve())));
    const client = await peer();
    await roundTrip(client, a, toEcho(), fromEcho, 'after-bulk');
    assert.equal(a.reader.isEnded, false);
  });

  test('refuses with REP 07 when the request is routed through an upstream chain', async () => {
    const chain: Outbound = {
      label: 'chain a>b',
      connect: () => Promise.reject(new Error('unused')),
      bind: () => Promise.reject(new Error('unused')),
    };
    await withServer({ dispatch: () => ({ kind: 'allow', outbound: chain }) }, async (chained) => {
      const a = await open(chained.port);
      assert.equal(a.rep, 0x07);
      assert.deepEqual([...(await a.reader.readToEnd())], []);
    });
  });
});
