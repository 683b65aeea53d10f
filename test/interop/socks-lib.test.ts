/**
 * The npm `socks` client library (v2), written by others, through the built host running as a
 * child process: CONNECT over SOCKS4, SOCKS4a and SOCKS5, BIND over SOCKS4 and SOCKS5 (both
 * replies, then bytes both ways and half-closes), and SOCKS5 UDP ASSOCIATE with the library's
 * own datagram framing.
 */
import assert from 'node:assert/strict';
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import { once } from 'node:events';
import { type Socket, connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SocksClient, type SocksClientOptions, type SocksProxy, type SocksRemoteHost } from 'socks';
import { ByteReader, type EchoServer, closed, startEchoServer } from '../helpers/net.ts';
import { type SwitchyardProcess, startSwitchyard } from '../helpers/switchyard-process.ts';

const TEST_TIMEOUT = 20_000;
const USER = 'alice';
const PASSWORD = 'secret';

/** What the library hands over on 'bound' and 'established'. */
interface SocksEvent {
  readonly socket: Socket;
  readonly remoteHost?: SocksRemoteHost;
}

/** 64 KiB of every byte value: enough to span several TCP segments. */
const PAYLOAD = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7 + 3) % 256));

/** `host`, not `ipaddress`: the library then cannot paper over a 0.0.0.0 reply with our address. */
function proxyOf(
  host: SwitchyardProcess,
  type: 4 | 5,
  credentials?: { userId: string; password: string },
): SocksProxy {
  return { host: '127.0.0.1', port: host.port, type, ...credentials };
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Sends the payload, half-closes, and returns what the echo server sent back before its FIN. */
async function echoRoundTrip(socket: Socket): Promise<Buffer> {
  const reader = new ByteReader(socket);
  socket.end(PAYLOAD);
  return reader.readToEnd(5_000);
}

/** The BIND peer: a plain TCP client that keeps its write side open after the other side's FIN. */
function connectPeer(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Starts a BIND request; resolves with the library's 'bound' event, the client and its events. */
async function startBind(options: SocksClientOptions): Promise<{ bound: SocksEvent; client: SocksClient }> {
  const client = new SocksClient(options);
  const bound = once(client, 'bound', { signal: AbortSignal.timeout(5_000) });
  client.connect();
  const [event] = (await bound) as [SocksEvent];
  return { bound: event, client };
}

async function nextEvent(client: SocksClient, name: 'established'): Promise<SocksEvent> {
  const [event] = (await once(client, name, { signal: AbortSignal.timeout(5_000) })) as [SocksEvent];
  return event;
}

/** Resolves with the library's 'error' (a rejected BIND peer, a refused request). */
async function nextError(client: SocksClient): Promise<Error> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no error event within 5 s')), 5_000);
    client.once('error', (error) => {
      clearTimeout(timer);
      resolve(error);
    });
    client.once('established', () => {
      clearTimeout(timer);
      reject(new Error('established, but the peer should have been rejected'));
    });
  });
}

describe('socks (npm) CONNECT through the host', () => {
  let host: SwitchyardProcess;
  let echo: EchoServer;
  const peerPorts: (number | undefined)[] = [];

  before(async () => {
    echo = await startEchoServer();
    echo.server.on('connection', (socket: Socket) => peerPorts.push(socket.remotePort));
    host = await startSwitchyard({ args: ['--log-level', 'debug'] });
  });

  after(async () => {
    await host?.stop();
    await echo?.close();
  });

  test('SOCKS4 CONNECT to 127.0.0.1: 64 KiB echoed exactly', { timeout: TEST_TIMEOUT }, async () => {
    const { socket } = await SocksClient.createConnection({
      proxy: proxyOf(host, 4),
      command: 'connect',
      destination: { host: '127.0.0.1', port: echo.port },
      timeout: 5_000,
    });
    assert.deepEqual(await echoRoundTrip(socket), PAYLOAD);
    await host.waitForLog(
      new RegExp(
        `proto=socks4 cmd=connect dest=127\\.0\\.0\\.1:${echo.port} rule=default via=direct .*up=65536 down=65536`,
      ),
    );
  });

  test('SOCKS4a CONNECT (type 4, host name localhost): 64 KiB echoed exactly', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const { socket } = await SocksClient.createConnection({
      proxy: proxyOf(host, 4),
      command: 'connect',
      destination: { host: 'localhost', port: echo.port },
      timeout: 5_000,
    });
    assert.deepEqual(await echoRoundTrip(socket), PAYLOAD);
    await host.waitForLog(
      new RegExp(`proto=socks4a cmd=connect dest=localhost:${echo.port} rule=default via=direct `),
    );
  });

  for (const destHost of ['127.0.0.1', 'localhost'] as const) {
    test(`SOCKS5 CONNECT to ${destHost}: 64 KiB echoed; BND is the outbound source`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const { socket, remoteHost } = await SocksClient.createConnection({
        proxy: proxyOf(host, 5),
        command: 'connect',
        destination: { host: destHost, port: echo.port },
        timeout: 5_000,
      });
      assert.deepEqual(await echoRoundTrip(socket), PAYLOAD);
      // Checked after the round trip: by then the echo server has surely seen the connection.
      assert.equal(remoteHost?.host, '127.0.0.1');
      assert.ok(peerPorts.includes(remoteHost?.port), `BND.PORT ${remoteHost?.port} is not an echo peer`);
      await host.waitForLog(
        new RegExp(
          `proto=socks5 cmd=connect dest=${escapeRe(destHost)}:${echo.port} rule=default via=direct `,
        ),
      );
    });
  }

  test('SOCKS5 CONNECT to ::1 (IPv6, ATYP 4): 64 KiB echoed exactly', { timeout: TEST_TIMEOUT }, async () => {
    const echo6 = await startEchoServer('::1');
    try {
      const { socket, remoteHost } = await SocksClient.createConnection({
        proxy: proxyOf(host, 5),
        command: 'connect',
        destination: { host: '::1', port: echo6.port },
        timeout: 5_000,
      });
      assert.deepEqual(await echoRoundTrip(socket), PAYLOAD);
      // BND.ADDR is the outbound socket's IPv6 source; the library spells it out in full.
      assert.equal(remoteHost?.host, '0000:0000:0000:0000:0000:0000:0000:0001');
      await host.waitForLog(
        new RegExp(`proto=socks5 cmd=connect dest=\\[::1\\]:${echo6.port} rule=default via=direct `),
      );
    } finally {
      await echo6.close();
    }
  });
});

describe('socks (npm) SOCKS5 CONNECT with username/password', () => {
  let host: SwitchyardProcess;
  let echo: EchoServer;

  before(async () => {
    echo = await startEchoServer();
    host = await startSwitchyard({ users: [{ name: USER, password: PASSWORD }] });
  });

  after(async () => {
    await host?.stop();
    await echo?.close();
  });

  test('the right password: 64 KiB echoed exactly', { timeout: TEST_TIMEOUT }, async () => {
    const { socket } = await SocksClient.createConnection({
      proxy: proxyOf(host, 5, { userId: USER, password: PASSWORD }),
      command: 'connect',
      destination: { host: 'localhost', port: echo.port },
      timeout: 5_000,
    });
    assert.deepEqual(await echoRoundTrip(socket), PAYLOAD);
  });

  test('a wrong password: the library reports the authentication failure', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    await assert.rejects(
      SocksClient.createConnection({
        proxy: proxyOf(host, 5, { userId: USER, password: 'wrong' }),
        command: 'connect',
        destination: { host: 'localhost', port: echo.port },
        timeout: 5_000,
      }),
      { message: 'Socks5 Authentication failed' },
    );
  });
});

describe('socks (npm) BIND through the host', () => {
  let host: SwitchyardProcess;

  before(async () => {
    host = await startSwitchyard({ args: ['--log-level', 'debug'] });
  });

  after(async () => {
    await host?.stop();
  });

  const bindCases = [
    { type: 4, proto: 'socks4', dest: '127.0.0.1' },
    { type: 4, proto: 'socks4a', dest: 'localhost' },
    { type: 5, proto: 'socks5', dest: '127.0.0.1' },
    { type: 5, proto: 'socks5', dest: 'localhost' },
  ] as const;
  for (const { type, proto, dest } of bindCases) {
    test(`${proto} BIND naming ${dest}: 'bound' names 127.0.0.1:PORT, the peer from 127.0.0.1 is 'established', bytes flow both ways`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const { bound, client } = await startBind({
        proxy: proxyOf(host, type),
        command: 'bind',
        destination: { host: dest, port: 0 },
        timeout: 5_000,
      });
      assert.equal(bound.remoteHost?.host, '127.0.0.1');
      const boundPort = bound.remoteHost?.port ?? 0;
      assert.ok(boundPort > 0, `bound port ${boundPort}`);

      const established = nextEvent(client, 'established');
      const peer = await connectPeer(boundPort);
      const peerPort = peer.localPort;
      const { socket, remoteHost } = await established;
      assert.deepEqual(remoteHost, { host: '127.0.0.1', port: peerPort });

      const fromClient = new ByteReader(socket);
      const fromPeer = new ByteReader(peer);
      socket.write(PAYLOAD);
      assert.deepEqual(await fromPeer.read(PAYLOAD.length), PAYLOAD);
      const reply = Buffer.from(`peer says hello over ${proto} BIND\n`);
      peer.write(reply);
      assert.deepEqual(await fromClient.read(reply.length), reply);

      // Half-close from the client first; the peer can still answer before it ends too.
      socket.end();
      assert.deepEqual(await fromPeer.readToEnd(), Buffer.alloc(0));
      peer.end(Buffer.from('last words'));
      assert.deepEqual(await fromClient.readToEnd(), Buffer.from('last words'));
      await closed(peer);
      await host.waitForLog(
        new RegExp(
          `proto=${proto} cmd=bind dest=${escapeRe(dest)}:0 rule=default via=direct remote=127\\.0\\.0\\.1:${peerPort} result=done up=${PAYLOAD.length} down=${reply.length + 10} `,
        ),
      );
    });
  }

  for (const type of [4, 5] as const) {
    test(`SOCKS${type} BIND: a peer from another address than the request named is rejected`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const { bound, client } = await startBind({
        proxy: proxyOf(host, type),
        command: 'bind',
        destination: { host: '127.0.0.2', port: 0 },
        timeout: 5_000,
      });
      const failed = nextError(client);
      const peer = await connectPeer(bound.remoteHost?.port ?? 0);
      const peerReader = new ByteReader(peer);
      const error = await failed;
      assert.equal(
        error.message,
        type === 4
          ? 'Socks4 Proxy rejected incoming bound connection - (Failed)'
          : 'Socks5 Proxy rejected incoming bound connection - NotAllowed',
      );
      // The peer is dropped without a byte of the client's stream.
      assert.deepEqual(await peerReader.readToEnd(), Buffer.alloc(0));
      await host.waitForLog(
        new RegExp(
          `tunnel failed id=\\d+ client=127\\.0\\.0\\.1:\\d+ proto=socks${type} cmd=bind dest=127\\.0\\.0\\.2:0 rule=default via=direct result="rep 2 \\(not allowed by ruleset\\)" error="BIND peer 127\\.0\\.0\\.1 is not the expected 127\\.0\\.0\\.2"`,
        ),
      );
    });
  }
});

describe('socks (npm) SOCKS5 UDP ASSOCIATE through the host', () => {
  let host: SwitchyardProcess;
  let echo: UdpSocket;
  let echoPort: number;

  before(async () => {
    echo = createSocket('udp4');
    echo.on('message', (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
    echoPort = echo.address().port;
    host = await startSwitchyard({ args: ['--log-level', 'debug'] });
  });

  after(async () => {
    await host?.stop();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
  });

  for (const announce of ['the client address', '0.0.0.0:0'] as const) {
    test(`associate announcing ${announce}: framed datagrams to 127.0.0.1 and localhost come back framed from 127.0.0.1:ECHO`, {
      timeout: TEST_TIMEOUT,
    }, async () => {
      const client = createSocket('udp4');
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      let control: Socket | undefined;
      try {
        const destination =
          announce === '0.0.0.0:0'
            ? { host: '0.0.0.0', port: 0 }
            : { host: '127.0.0.1', port: client.address().port };
        // createConnection() is CONNECT-only; UDP ASSOCIATE goes through the event API.
        const associate = new SocksClient({
          proxy: proxyOf(host, 5),
          command: 'associate',
          destination,
          timeout: 5_000,
        });
        const established = nextEvent(associate, 'established');
        associate.connect();
        const info = await established;
        control = info.socket;
        const relay = info.remoteHost;
        assert.equal(relay?.host, '127.0.0.1', 'the relay address must be one the client can reach');
        const relayPort = relay?.port ?? 0;
        assert.ok(relayPort > 0);

        for (const [i, target] of ['127.0.0.1', 'localhost'].entries()) {
          const data = Buffer.concat([
            Buffer.from(`socks-lib datagram ${i} to ${target}:`),
            PAYLOAD.subarray(0, 1000),
          ]);
          const answer = once(client, 'message', { signal: AbortSignal.timeout(3_000) });
          client.send(
            SocksClient.createUDPFrame({ remoteHost: { host: target, port: echoPort }, data }),
            relayPort,
            '127.0.0.1',
          );
          const [msg, rinfo] = (await answer) as [Buffer, { address: string; port: number }];
          assert.deepEqual(
            { address: rinfo.address, port: rinfo.port },
            { address: '127.0.0.1', port: relayPort },
          );
          assert.deepEqual(SocksClient.parseUDPFrame(msg), {
            frameNumber: 0,
            remoteHost: { host: '127.0.0.1', port: echoPort },
            data,
          });
        }
      } finally {
        control?.destroy();
        await new Promise<void>((resolve) => client.close(() => resolve()));
      }
    });
  }
});
