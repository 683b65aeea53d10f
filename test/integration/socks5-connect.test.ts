import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DirectOutbound } from '../../native-host/src/outbound/direct.ts';
import { ByteReader, closed, connectTo, type EchoServer, startEchoServer } from '../helpers/net.ts';
import { startSocksServer, type TestServer } from '../helpers/socks-server.ts';

const GREETING_NO_AUTH = [0x05, 0x01, 0x00];

function connectRequest(atyp: number, addr: number[], port: number): number[] {
  return [0x05, 0x01, 0x00, atyp, ...addr, port >> 8, port & 0xff];
}

function domain(name: string): number[] {
  return [name.length, ...Buffer.from(name)];
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('SOCKS5 CONNECT', () => {
  let socks: TestServer;
  let echo: EchoServer;
  let echo6: EchoServer;
  before(async () => {
    socks = await startSocksServer();
    echo = await startEchoServer();
    echo6 = await startEchoServer('::1');
  });
  after(async () => {
    await socks.close();
    await echo.close();
    await echo6.close();
  });

  test('selects "no auth" when offered among other methods and no users exist', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([0x05, 0x03, 0x02, 0x01, 0x00]));
    assert.deepEqual([...(await r.read(2))], [0x05, 0x00]);
    c.destroy();
  });

  test('answers 05 FF and closes when no offered method is acceptable', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    // GSSAPI alone: username/password alone is accepted without users, for route hints.
    c.write(Buffer.from([0x05, 0x01, 0x01]));
    assert.deepEqual([...(await r.read(2))], [0x05, 0xff]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  for (const [name, atyp, addr, server] of [
    ['IPv4', 0x01, [127, 0, 0, 1], () => echo],
    ['IPv6', 0x04, [...new Array(15).fill(0), 1], () => echo6],
    ['domain', 0x03, domain('localhost'), () => echo],
  ] as const) {
    test(`relays both ways to an ${name} destination and replies with the real bound address`, async () => {
      const c = await connectTo(socks.port);
      const r = new ByteReader(c);
      c.write(Buffer.from([...GREETING_NO_AUTH, ...connectRequest(atyp, [...addr], server().port)]));
      assert.deepEqual([...(await r.read(2))], [0x05, 0x00]);
      const head = await r.read(4);
      assert.deepEqual([...head.subarray(0, 3)], [0x05, 0x00, 0x00]);
      const bound = head[3] === 0x01 ? await r.read(6) : await r.read(18);
      const boundPort = bound.readUInt16BE(bound.length - 2);
      assert.ok(boundPort > 0, 'BND.PORT is the outbound socket local port');
      // The destination saw a connection from exactly the bound port.
      const accepted = server().sockets.at(-1);
      assert.equal(accepted?.remotePort, boundPort);
      c.write('ping');
      assert.equal((await r.read(4)).toString(), 'ping');
      c.end();
      await closed(c);
    });
  }

  test('the domain is resolved at the server (remote DNS): localhost reaches the echo server', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([...GREETING_NO_AUTH, ...connectRequest(0x03, domain('localhost'), echo.port)]));
    await r.read(2 + 10);
    c.write('x');
    assert.equal((await r.read(1)).toString(), 'x');
    c.destroy();
    assert.ok(socks.logs.some((l) => l.includes(`dest=localhost:${echo.port}`)));
  });

  test('connection refused answers REP 05 with a full-length reply, then closes', async () => {
    const port = await closedPort();
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([...GREETING_NO_AUTH, ...connectRequest(0x01, [127, 0, 0, 1], port)]));
    assert.deepEqual([...(await r.read(2 + 10))], [0x05, 0x00, 0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('an unknown command answers REP 07', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([...GREETING_NO_AUTH, 0x05, 0x09, 0x00, 0x01, 127, 0, 0, 1, 0, 80]));
    assert.deepEqual([...(await r.read(12))], [0x05, 0x00, 0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('an unknown address type answers REP 08', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([...GREETING_NO_AUTH, 0x05, 0x01, 0x00, 0x07, 1, 2, 3, 4, 0, 80]));
    assert.deepEqual([...(await r.read(12))], [0x05, 0x00, 0x05, 0x08, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('a name that does not resolve answers REP 04 (host unreachable)', async () => {
    const notFound = async (): Promise<never> => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    };
    const direct = new DirectOutbound({ connectTimeoutMs: 2000, bindTimeoutMs: 2000, lookup: notFound });
    const s = await startSocksServer({ dispatch: () => ({ kind: 'allow', outbound: direct }) });
    const c = await connectTo(s.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([...GREETING_NO_AUTH, ...connectRequest(0x03, domain('nowhere.test'), 80)]));
    assert.deepEqual([...(await r.read(12))], [0x05, 0x00, 0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    await s.close();
  });
});
