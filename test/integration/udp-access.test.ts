/**
 * Access rules applied to each datagram of a UDP association, through the real policy layer
 * on loopback: at the direct exit on the resolved address (and sent to exactly that address),
 * through a SOCKS5 upstream on the destination as named. Denied datagrams are dropped and
 * counted, with one debug line per destination, while the others pass.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type TestServer, startPolicyServer, waitForLog } from '../helpers/socks-server.ts';
import {
  ATYP_DOMAIN,
  ATYP_IPV4,
  type Association,
  associate,
  datagram,
  domainBytes,
  LOOPBACK4,
  QUIET_MS,
  sleep,
  type UdpPeer,
  udpPeer,
} from '../helpers/udp.ts';

/** On Linux all of 127.0.0.0/8 is on the loopback interface, so this address is always there. */
const OTHER4 = [127, 0, 0, 2];

// ---- tests ----------------------------------------------------------------------------------

describe('per-datagram access control', () => {
  /** Allowed; denied by port; on 127.0.0.2, denied by address. */
  let open: UdpPeer;
  let closedPort: UdpPeer;
  let other: UdpPeer;
  const peers: UdpPeer[] = [];
  const controls: Socket[] = [];
  const servers: TestServer[] = [];
  const client = async (): Promise<UdpPeer> => {
    const p = await udpPeer();
    peers.push(p);
    return p;
  };
  const associateWith = async (port: number): Promise<Association> => {
    const a = await associate(port);
    controls.push(a.control);
    assert.equal(a.atyp, ATYP_IPV4);
    assert.equal(a.rep, 0x00, 'the association itself is allowed');
    return a;
  };
  /** Sends to `dest` through the association and expects the echo back with `from` in the header. */
  const roundTrip = async (
    c: UdpPeer,
    a: Association,
    dest: [number, number[]],
    port: number,
    from: number[],
    payload: string,
  ): Promise<void> => {
    c.socket.send(datagram(dest[0], dest[1], port, payload), a.port, a.host);
    assert.deepEqual((await c.next()).msg, datagram(ATYP_IPV4, from, port, payload));
  };

  before(async () => {
    [open, closedPort, other] = await Promise.all([
      udpPeer('127.0.0.1', true),
      udpPeer('127.0.0.1', true),
      udpPeer('127.0.0.2', true),
    ]);
  });

  after(async () => {
    for (const c of controls) c.destroy();
    for (const p of [...peers, open, closedPort, other]) p?.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  const rules = () => [
    { id: 'no-port', action: 'deny', ports: [closedPort.port] },
    { id: 'no-name', action: 'deny', hosts: [{ type: 'exact', value: 'banned.test' }] },
    { id: 'no-dest', action: 'deny', destinations: ['127.0.0.2/32'] },
  ];

  test('direct exit: denied ports, addresses and names are dropped; the rest pass', async () => {
    const names = { 'far.test': '127.0.0.2', 'near.test': '127.0.0.1', 'banned.test': '127.0.0.1' };
    const s = await startPolicyServer({ access: rules() }, { names });
    servers.push(s);
    const a = await associateWith(s.port);
    const c = await client();
    await roundTrip(c, a, [ATYP_IPV4, LOOPBACK4], open.port, LOOPBACK4, 'allowed');
    for (const payload of ['port-1', 'port-2', 'port-3']) {
      c.socket.send(datagram(ATYP_IPV4, LOOPBACK4, closedPort.port, payload), a.port, a.host);
    }
    c.socket.send(datagram(ATYP_IPV4, OTHER4, other.port, 'literal'), a.port, a.host);
    // Judged on the address it resolves to: far.test is 127.0.0.2.
    c.socket.send(datagram(ATYP_DOMAIN, domainBytes('far.test'), other.port, 'resolved'), a.port, a.host);
    c.socket.send(datagram(ATYP_DOMAIN, domainBytes('banned.test'), open.port, 'by-name'), a.port, a.host);
    await sleep(QUIET_MS);
    assert.equal(closedPort.received.length, 0);
    assert.equal(other.received.length, 0);
    assert.deepEqual(
      open.received.map((r) => r.msg.toString()),
      ['allowed'],
    );
    // A name that resolves to an allowed address passes, sent to that address.
    await roundTrip(c, a, [ATYP_DOMAIN, domainBytes('near.test')], open.port, LOOPBACK4, 'near');
    assert.equal(c.received.length, 2);
    assert.ok(!s.lookups.includes('banned.test'), 'a name denied by its pattern is not even resolved');

    const denied = s.logs.filter((l) => l.includes('udp destination denied'));
    assert.equal(denied.length, 4, 'one debug line per denied destination');
    assert.ok(
      denied.some(
        (l) => l.includes(`dest=127.0.0.1:${closedPort.port} `) && l.includes('rule="access no-port"'),
      ),
    );
    assert.ok(denied.some((l) => l.includes('dest=far.test:') && l.includes('far.test (127.0.0.2)')));
    a.control.destroy();
    const line = await waitForLog(s, 'udp association closed', `relay=127.0.0.1:${a.port} `);
    assert.match(line, / dgrams_up=2 up=11 dgrams_down=2 down=11 dropped=6 denied=6 errors=0 dests=2 /);
  });

  test('direct exit: a name with a denied and an allowed address goes to the allowed one only', async () => {
    const s = await startPolicyServer({
      access: [{ id: 'no-dest', action: 'deny', destinations: ['127.0.0.2/32'] }],
      hosts: { 'mixed.test': ['127.0.0.2', '127.0.0.1'] },
    });
    servers.push(s);
    const a = await associateWith(s.port);
    const c = await client();
    const before = open.received.length;
    await roundTrip(c, a, [ATYP_DOMAIN, domainBytes('mixed.test')], open.port, LOOPBACK4, 'checked');
    assert.equal(open.received.length, before + 1);
    assert.deepEqual(s.lookups, [], 'the hosts map answered; nothing else was asked');
  });

  test('through a SOCKS5 upstream: judged as named, denied datagrams never leave', async () => {
    const upstream = await startPolicyServer(
      {},
      { names: { 'far.test': '127.0.0.2', 'banned.test': '127.0.0.1' } },
    );
    servers.push(upstream);
    const s = await startPolicyServer({
      access: rules(),
      upstreams: [{ id: 'up', type: 'socks5', host: '127.0.0.1', port: upstream.port }],
      routes: [{ id: 'one', hops: ['up'] }],
      defaultTarget: { kind: 'route', routeId: 'one' },
    });
    servers.push(s);
    const a = await associateWith(s.port);
    const c = await client();
    const openBefore = open.received.length;
    await roundTrip(c, a, [ATYP_IPV4, LOOPBACK4], open.port, LOOPBACK4, 'up-allowed');
    c.socket.send(datagram(ATYP_IPV4, LOOPBACK4, closedPort.port, 'up-port'), a.port, a.host);
    c.socket.send(datagram(ATYP_IPV4, OTHER4, other.port, 'up-literal'), a.port, a.host);
    c.socket.send(datagram(ATYP_DOMAIN, domainBytes('banned.test'), open.port, 'up-name'), a.port, a.host);
    await sleep(QUIET_MS);
    assert.equal(closedPort.received.length, 0);
    assert.equal(other.received.length, 0);
    assert.equal(open.received.length, openBefore + 1);
    assert.ok(!upstream.lookups.includes('banned.test'), 'the denied name never reached the upstream');
    // The exit resolves names where we cannot see them: an address rule cannot judge a name here.
    await roundTrip(c, a, [ATYP_DOMAIN, domainBytes('far.test')], other.port, OTHER4, 'up-far');
    assert.deepEqual(s.lookups, [], 'nothing was resolved on this machine');
    assert.ok(upstream.lookups.includes('far.test'));
    a.control.destroy();
    const line = await waitForLog(s, 'udp association closed', `relay=127.0.0.1:${a.port} `);
    assert.match(line, / dgrams_up=2 .* dropped=3 /);
  });
});
