import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import { ByteReader, closed, connectTo, type EchoServer, startEchoServer } from '../helpers/net.ts';
import { startSocksServer, type TestServer } from '../helpers/socks-server.ts';

const PASSWORD = 'pw-framing';

describe('incremental parsing and half-close', () => {
  let socks: TestServer;
  let echo: EchoServer;
  let handshake: Buffer;
  before(async () => {
    socks = await startSocksServer({ users: [{ name: 'u', passwordHash: await hashPassword(PASSWORD) }] });
    echo = await startEchoServer();
    handshake = Buffer.from([
      ...[0x05, 0x01, 0x02],
      ...[0x01, 1, 0x75, PASSWORD.length, ...Buffer.from(PASSWORD)],
      ...[0x05, 0x01, 0x00, 0x03, 9, ...Buffer.from('localhost'), echo.port >> 8, echo.port & 0xff],
    ]);
  });
  after(async () => {
    await socks.close();
    await echo.close();
  });

  const EXPECTED_PREFIX = [0x05, 0x02, 0x01, 0x00, 0x05, 0x00, 0x00];

  test('a handshake split at every byte boundary works (one byte per write, with pauses)', async () => {
    const c = await connectTo(socks.port);
    c.setNoDelay(true);
    const r = new ByteReader(c);
    for (const byte of handshake) {
      c.write(Buffer.from([byte]));
      await new Promise((res) => setTimeout(res, 2));
    }
    assert.deepEqual([...(await r.read(7))], EXPECTED_PREFIX);
    await r.read(7);
    c.write('after');
    assert.equal((await r.read(5)).toString(), 'after');
    c.destroy();
  });

  test('every two-piece split of greeting+auth+request+payload works', async () => {
    const whole = Buffer.concat([handshake, Buffer.from('payload')]);
    for (let cut = 1; cut < whole.length; cut++) {
      const c = await connectTo(socks.port);
      c.setNoDelay(true);
      const r = new ByteReader(c);
      c.write(whole.subarray(0, cut));
      await new Promise((res) => setTimeout(res, 1));
      c.write(whole.subarray(cut));
      assert.deepEqual([...(await r.read(7))], EXPECTED_PREFIX, `cut at ${cut}`);
      await r.read(7);
      assert.equal((await r.read(7)).toString(), 'payload', `cut at ${cut}`);
      c.destroy();
    }
  });

  test('greeting, auth, request and the first payload bytes in one packet: payload is relayed, not lost', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.concat([handshake, Buffer.from('GET / HTTP/1.0\r\n\r\n')]));
    await r.read(14);
    assert.equal((await r.read(18)).toString(), 'GET / HTTP/1.0\r\n\r\n');
    c.destroy();
  });

  test('a client that half-closes right after its request and data still gets the whole response', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.end(Buffer.concat([handshake, Buffer.from('last words')]));
    await r.read(14);
    // The echo server ends its side after echoing, so the stream ends after the echo.
    assert.equal((await r.readToEnd()).toString(), 'last words');
    await closed(c);
  });

  test('half-close is preserved in both directions end to end', async () => {
    // A destination that reads until the client's FIN, then answers, then ends.
    const seen: string[] = [];
    const target = createServer({ allowHalfOpen: true }, (s: Socket) => {
      const chunks: Buffer[] = [];
      s.on('data', (d) => chunks.push(d));
      s.on('end', () => {
        seen.push(Buffer.concat(chunks).toString());
        s.write('reply after your FIN');
        s.end();
      });
    });
    await new Promise<void>((res) => target.listen(0, '127.0.0.1', res));
    const port = (target.address() as AddressInfo).port;
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    const req = Buffer.from(handshake);
    req.writeUInt16BE(port, req.length - 2);
    c.write(req);
    await r.read(14);
    c.write('question');
    c.end();
    assert.equal((await r.readToEnd()).toString(), 'reply after your FIN');
    assert.deepEqual(seen, ['question']);
    await closed(c);
    target.close();
  });
});
