import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import { ByteReader, connectTo, type EchoServer, startEchoServer } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { startSocksServer, type TestServer } from '../helpers/socks-server.ts';

function socks4(cd: number, port: number, ip: number[], user = '', host?: string): Buffer {
  const parts = [0x04, cd, port >> 8, port & 0xff, ...ip, ...Buffer.from(user), 0];
  if (host !== undefined) parts.push(...Buffer.from(host), 0);
  return Buffer.from(parts);
}

describe('SOCKS4 and SOCKS4a', () => {
  let socks: TestServer;
  let echo: EchoServer;
  before(async () => {
    socks = await startSocksServer();
    echo = await startEchoServer();
  });
  after(async () => {
    await socks.close();
    await echo.close();
  });

  test('SOCKS4 CONNECT is granted with reply VN 0, CD 90, and relays', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(socks4(1, echo.port, [127, 0, 0, 1], 'bob'));
    const reply = await r.read(8);
    assert.deepEqual([...reply.subarray(0, 2)], [0x00, 90]);
    assert.deepEqual([...reply.subarray(4, 8)], [127, 0, 0, 1]);
    c.write('four');
    assert.equal((await r.read(4)).toString(), 'four');
    c.destroy();
  });

  test('SOCKS4a sends the host name after the user id (DSTIP 0.0.0.x, x != 0)', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(socks4(1, echo.port, [0, 0, 0, 7], 'bob', 'localhost'));
    assert.deepEqual([...(await r.read(8)).subarray(0, 2)], [0x00, 90]);
    c.write('4a');
    assert.equal((await r.read(2)).toString(), '4a');
    c.destroy();
    await waitFor(
      () => socks.logs.some((l) => l.includes('proto=socks4a') && l.includes(`dest=localhost:${echo.port}`)),
      'the tunnel log line',
    );
  });

  test('a refused connection answers CD 91 and closes', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(socks4(1, 1, [127, 0, 0, 1]));
    assert.deepEqual([...(await r.read(8))], [0x00, 91, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('an unknown command answers CD 91', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(socks4(3, echo.port, [127, 0, 0, 1]));
    assert.deepEqual([...(await r.read(8))], [0x00, 91, 0, 0, 0, 0, 0, 0]);
  });

  test('a user id longer than 255 bytes is rejected (91) without waiting for its end', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.concat([Buffer.from([0x04, 1, 0, 80, 127, 0, 0, 1]), Buffer.alloc(300, 0x61)]));
    assert.deepEqual([...(await r.read(8))], [0x00, 91, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('SOCKS4 is refused (91) when inbound users are required, unless the source is allowed', async () => {
    const users = [{ name: 'alice', passwordHash: await hashPassword('pw') }];
    const strict = await startSocksServer({ users });
    const c = await connectTo(strict.port);
    const r = new ByteReader(c);
    c.write(socks4(1, echo.port, [127, 0, 0, 1]));
    assert.deepEqual([...(await r.read(8))], [0x00, 91, 0, 0, 0, 0, 0, 0]);
    assert.ok(strict.logs.some((l) => l.includes('SOCKS4 refused')));
    await strict.close();

    const allowed = await startSocksServer({ users, socks4AllowFrom: ['127.0.0.0/8'] });
    const c2 = await connectTo(allowed.port);
    const r2 = new ByteReader(c2);
    c2.write(socks4(1, echo.port, [127, 0, 0, 1]));
    assert.deepEqual([...(await r2.read(8)).subarray(0, 2)], [0x00, 90]);
    c2.destroy();
    await allowed.close();
  });

  test('a disabled protocol is closed without a reply', async () => {
    const only5 = await startSocksServer({ socks4: false });
    const c = await connectTo(only5.port);
    const r = new ByteReader(c);
    c.write(socks4(1, echo.port, [127, 0, 0, 1]));
    assert.deepEqual([...(await r.readToEnd())], []);
    await only5.close();
  });
});
