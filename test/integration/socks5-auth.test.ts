import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import { ByteReader, connectTo, type EchoServer, startEchoServer } from '../helpers/net.ts';
import { startSocksServer, type TestServer } from '../helpers/socks-server.ts';

const PASSWORD = 'correct horse battery staple';

function userPass(user: string, pass: string): number[] {
  return [0x01, user.length, ...Buffer.from(user), pass.length, ...Buffer.from(pass)];
}

describe('SOCKS5 username/password (RFC 1929)', () => {
  let socks: TestServer;
  let echo: EchoServer;
  before(async () => {
    socks = await startSocksServer({
      users: [{ name: 'alice', passwordHash: await hashPassword(PASSWORD) }],
    });
    echo = await startEchoServer();
  });
  after(async () => {
    await socks.close();
    await echo.close();
  });

  function request(port: number): number[] {
    return [0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, port >> 8, port & 0xff];
  }

  test('a client that offers only "no auth" is refused with 05 FF when users exist', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([0x05, 0x01, 0x00]));
    assert.deepEqual([...(await r.read(2))], [0x05, 0xff]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('correct credentials get status 01 00 and the tunnel works', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([0x05, 0x02, 0x00, 0x02]));
    assert.deepEqual([...(await r.read(2))], [0x05, 0x02]);
    c.write(Buffer.from(userPass('alice', PASSWORD)));
    assert.deepEqual([...(await r.read(2))], [0x01, 0x00]);
    c.write(Buffer.from(request(echo.port)));
    assert.deepEqual([...(await r.read(4))], [0x05, 0x00, 0x00, 0x01]);
    await r.read(6);
    c.write('hi');
    assert.equal((await r.read(2)).toString(), 'hi');
    c.destroy();
  });

  for (const [what, user, pass] of [
    ['a wrong password', 'alice', 'wrong'],
    ['an unknown user', 'mallory', PASSWORD],
  ] as const) {
    test(`${what} gets a non-zero status and the connection is closed`, async () => {
      const c = await connectTo(socks.port);
      const r = new ByteReader(c);
      c.write(Buffer.from([0x05, 0x01, 0x02, ...userPass(user, pass), ...request(echo.port)]));
      assert.deepEqual([...(await r.read(2))], [0x05, 0x02]);
      assert.deepEqual([...(await r.read(2))], [0x01, 0x01]);
      assert.deepEqual(
        [...(await r.readToEnd())],
        [],
        'nothing after the failure status; the request is ignored',
      );
    });
  }

  test('a sub-negotiation with version 0x05 instead of 0x01 is rejected and closed', async () => {
    const c = await connectTo(socks.port);
    const r = new ByteReader(c);
    c.write(Buffer.from([0x05, 0x01, 0x02, 0x05, 5, ...Buffer.from('alice'), 1, 0x61]));
    assert.deepEqual([...(await r.read(2))], [0x05, 0x02]);
    assert.deepEqual([...(await r.readToEnd())], []);
  });

  test('the password appears in no log line, and failures name the user', () => {
    const all = socks.logs.join('');
    assert.equal(all.includes(PASSWORD), false);
    assert.ok(socks.logs.some((l) => l.includes('authentication failed') && l.includes('user=mallory')));
  });
});
