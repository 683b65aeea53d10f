import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ByteReader, closed, connectTo, type EchoServer, startEchoServer } from '../helpers/net.ts';
import { startSocksServer } from '../helpers/socks-server.ts';
import { waitFor } from '../helpers/wait.ts';

function connectNoAuth(port: number): Buffer {
  return Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, port >> 8, port & 0xff]);
}

async function roundTrip(socksPort: number, echoPort: number): Promise<string> {
  const c = await connectTo(socksPort);
  const r = new ByteReader(c);
  c.write(connectNoAuth(echoPort));
  await r.read(12);
  c.write('ok?');
  const out = (await r.read(3)).toString();
  c.destroy();
  return out;
}

describe('limits and hostile clients', () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEchoServer();
  });
  after(async () => {
    await echo.close();
  });

  test('a client silent after connecting is closed at the handshake timeout', async () => {
    const socks = await startSocksServer({ timeouts: { handshakeMs: 200 } });
    const c = await connectTo(socks.port);
    const started = Date.now();
    await closed(c, 3000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150, `closed after ${elapsed} ms, not before the timeout`);
    assert.ok(socks.logs.some((l) => l.includes('handshake timed out')));
    await socks.close();
  });

  test('a client that stalls in the middle of a request is closed at the handshake timeout', async () => {
    const socks = await startSocksServer({ timeouts: { handshakeMs: 200 } });
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 50, 0x61]));
    assert.deepEqual([...(await r.read(2))], [0x05, 0x00]);
    await closed(c, 3000);
    await socks.close();
  });

  test('the handshake timeout does not cut an established tunnel', async () => {
    const socks = await startSocksServer({ timeouts: { handshakeMs: 150 } });
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(connectNoAuth(echo.port));
    await r.read(12);
    await new Promise((res) => setTimeout(res, 400));
    c.write('still here');
    assert.equal((await r.read(10)).toString(), 'still here');
    c.destroy();
    await socks.close();
  });

  test('an idle tunnel is closed after the idle timeout', async () => {
    const socks = await startSocksServer({ timeouts: { idleMs: 200 } });
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(connectNoAuth(echo.port));
    await r.read(12);
    await closed(c, 3000);
    await waitFor(
      () => socks.logs.some((l) => l.includes('tunnel closed') && l.includes('result=idle')),
      'idle log',
    );
    await socks.close();
  });

  test('clients beyond the connection limit are refused while the others keep working', async () => {
    const socks = await startSocksServer({ limits: { maxConnections: 2 } });
    const a = await connectTo(socks.port);
    const b = await connectTo(socks.port);
    const ra = new ByteReader(a);
    a.write(connectNoAuth(echo.port));
    await ra.read(12);
    const c = await connectTo(socks.port);
    await closed(c);
    assert.ok(socks.logs.some((l) => l.includes('connection limit reached')));
    a.write('A');
    assert.equal((await ra.read(1)).toString(), 'A');
    a.destroy();
    b.destroy();
    await waitFor(() => socks.server.activeConnections === 0, 'slots to free up');
    assert.equal(await roundTrip(socks.port, echo.port), 'ok?');
    await socks.close();
  });

  test('random garbage from many clients never affects a well-behaved client or the process', async () => {
    const socks = await startSocksServer();
    const hostile = [];
    for (let i = 0; i < 200; i++) {
      const c = await connectTo(socks.port);
      c.on('error', () => undefined);
      // First byte 4 or 5 half of the time so the garbage reaches the protocol parsers.
      const junk = randomBytes(1 + (i % 300));
      if (i % 2 === 0) junk[0] = 4 + (i % 4 === 0 ? 1 : 0);
      c.write(junk);
      if (i % 3 === 0) c.end();
      hostile.push(c);
    }
    assert.equal(await roundTrip(socks.port, echo.port), 'ok?');
    for (const c of hostile) c.destroy();
    await socks.close();
  });

  test('a domain length byte larger than what follows waits, and the timeout ends it', async () => {
    const socks = await startSocksServer({ timeouts: { handshakeMs: 200 } });
    const c = await connectTo(socks.port);
    c.write(Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 255, 0x61, 0x62]));
    await closed(c, 3000);
    await socks.close();
  });

  test('shutdown lets a tunnel finish within the grace period, then cuts what is left', async () => {
    const socks = await startSocksServer();
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(connectNoAuth(echo.port));
    await r.read(12);
    const started = Date.now();
    const closing = socks.server.close(300);
    // New clients are refused while closing.
    await assert.rejects(connectTo(socks.port));
    // The open tunnel still works during the grace period.
    c.write('grace');
    assert.equal((await r.read(5)).toString(), 'grace');
    await closing;
    await closed(c);
    assert.ok(Date.now() - started >= 250);
  });
});
