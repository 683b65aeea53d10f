/**
 * PySocks (Debian python3-socks), a SOCKS client nobody here wrote, through the built host
 * running as a child process: SOCKS4, SOCKS4a, SOCKS5 with remote DNS and RFC 1929
 * username/password, and UDP through SOCKS5 UDP ASSOCIATE. The Python code is inline; it
 * prints one JSON line that the tests compare exactly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { PYTHON, type RunResult, runProgram } from '../helpers/configs.ts';
import { type EchoServer, startEchoServer } from '../helpers/net.ts';
import { type SwitchyardProcess, startSwitchyard } from '../helpers/switchyard-process.ts';

const USER = 'alice';
const PASSWORD = 'secret';
const TEST_TIMEOUT = 20_000;

/** What the Python TCP client sends: every byte value, 200 KiB, then FIN. */
const TCP_PAYLOAD = Buffer.concat(
  Array.from({ length: 800 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
);
const TCP_PAYLOAD_SHA256 = createHash('sha256').update(TCP_PAYLOAD).digest('hex');

/**
 * argv: proxy_type (socks4|socks5) proxy_port dest_host dest_port rdns(0|1) user password.
 * Sends the payload, half-closes, reads the echo to EOF, prints what came back.
 */
const TCP_CLIENT = `
import hashlib, json, socket, sys
import socks
ptype, pport, dhost, dport, rdns, user, pw = sys.argv[1:8]
s = socks.socksocket(socket.AF_INET, socket.SOCK_STREAM)
s.set_proxy({'socks4': socks.SOCKS4, 'socks5': socks.SOCKS5}[ptype], '127.0.0.1', int(pport),
            rdns=(rdns == '1'), username=(user or None), password=(pw or None))
s.settimeout(5)
try:
    s.connect((dhost, int(dport)))
except socks.ProxyError as e:
    print(json.dumps({'error': type(e).__name__, 'message': str(e)}))
    sys.exit(0)
payload = bytes(range(256)) * 800
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
chunks = []
while True:
    b = s.recv(65536)
    if not b:
        break
    chunks.append(b)
data = b''.join(chunks)
bnd = s.get_proxy_sockname()
s.close()
print(json.dumps({'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
                  'bound': [bnd[0], bnd[1]]}))
`;

/**
 * argv: proxy_port dest_port rdns(0|1) user password. Three datagrams through the UDP
 * association, each answered by the echo server; prints each answer and its source.
 */
const UDP_CLIENT = `
import json, socket, sys
import socks
pport, dport, rdns, user, pw = sys.argv[1:6]
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, '127.0.0.1', int(pport), rdns=(rdns == '1'),
            username=(user or None), password=(pw or None))
s.settimeout(5)
out = []
try:
    for i in range(3):
        msg = b'pysocks-udp-%d:' % i + bytes([0, 1, 10, 13, 127, 128, 254, 255])
        s.sendto(msg, ('127.0.0.1', int(dport)))
        data, addr = s.recvfrom(4096)
        out.append({'data': data.hex(), 'from': [addr[0], addr[1]]})
except (socks.ProxyError, OSError) as e:
    out.append({'error': type(e).__name__, 'message': str(e)})
s.close()
print(json.dumps(out))
`;

/**
 * PYTHON is /usr/bin/python3 explicitly: a python3 on PATH (pyenv, venv) may not have PySocks.
 * It runs with an environment of its own, nothing of ours.
 */
function python(code: string, args: readonly (string | number)[]): Promise<RunResult> {
  return runProgram(PYTHON, ['-c', code, ...args.map(String)], {
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1' },
    inheritEnv: false,
    timeoutMs: 15_000,
  });
}

/** Runs a client script and parses its one JSON line; fails with Python's stderr if it crashed. */
async function pythonJson(code: string, args: readonly (string | number)[]): Promise<unknown> {
  const r = await python(code, args);
  assert.equal(r.stderr, '', 'python wrote to stderr');
  assert.equal(r.code, 0);
  return JSON.parse(r.stdout) as unknown;
}

interface UdpEcho {
  readonly port: number;
  close(): Promise<void>;
}

function startUdpEcho(): Promise<UdpEcho> {
  const socket: UdpSocket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  return new Promise((resolve) => {
    socket.bind(0, '127.0.0.1', () => {
      resolve({
        port: socket.address().port,
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}

function expectedUdp(port: number): unknown {
  return [0, 1, 2].map((i) => ({
    data: Buffer.concat([
      Buffer.from(`pysocks-udp-${i}:`),
      Buffer.from([0, 1, 10, 13, 127, 128, 254, 255]),
    ]).toString('hex'),
    from: ['127.0.0.1', port],
  }));
}

interface TcpOk {
  readonly bytes: number;
  readonly sha256: string;
  readonly bound: [string, number];
}

/** Starts the TCP echo server and records the source port of every connection it accepts. */
async function startRecordingEcho(): Promise<{ echo: EchoServer; peerPorts: (number | undefined)[] }> {
  const echo = await startEchoServer();
  const peerPorts: (number | undefined)[] = [];
  echo.server.on('connection', (socket: Socket) => peerPorts.push(socket.remotePort));
  return { echo, peerPorts };
}

/** The port PySocks got as BND.PORT is the one the destination saw the connection come from. */
function assertBoundIsOutbound(result: unknown, ports: readonly (number | undefined)[]): void {
  const r = result as Partial<TcpOk>;
  // An error result has no `bound`; the deepEqual below then shows the error instead.
  const port = r.bound?.[1] ?? -1;
  assert.deepEqual(r, { bytes: TCP_PAYLOAD.length, sha256: TCP_PAYLOAD_SHA256, bound: ['127.0.0.1', port] });
  assert.ok(ports.includes(port), `BND.PORT ${port} is not among the echo server's peers ${ports.join(',')}`);
}

describe('PySocks through the host without inbound users', () => {
  let host: SwitchyardProcess;
  let echo: EchoServer;
  let peerPorts: (number | undefined)[];
  let udp: UdpEcho;

  before(async () => {
    ({ echo, peerPorts } = await startRecordingEcho());
    udp = await startUdpEcho();
    host = await startSwitchyard({ args: ['--log-level', 'debug'] });
  });

  after(async () => {
    await host?.stop();
    await echo?.close();
    await udp?.close();
  });

  test('SOCKS4 CONNECT to 127.0.0.1: 200 KiB echoed exactly after a half-close', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await pythonJson(TCP_CLIENT, ['socks4', host.port, '127.0.0.1', echo.port, '0', '', '']);
    assertBoundIsOutbound(r, peerPorts);
    await host.waitForLog(
      new RegExp(
        `proto=socks4 cmd=connect dest=127\\.0\\.0\\.1:${echo.port} rule=default via=direct .* result=done .*up=204800 down=204800`,
      ),
    );
  });

  test('SOCKS4a (rdns=True) CONNECT to localhost: 200 KiB echoed exactly', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await pythonJson(TCP_CLIENT, ['socks4', host.port, 'localhost', echo.port, '1', '', '']);
    assertBoundIsOutbound(r, peerPorts);
    await host.waitForLog(
      new RegExp(`proto=socks4a cmd=connect dest=localhost:${echo.port} rule=default via=direct `),
    );
  });

  test('SOCKS5 (rdns=True) CONNECT to localhost: 200 KiB echoed exactly', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await pythonJson(TCP_CLIENT, ['socks5', host.port, 'localhost', echo.port, '1', '', '']);
    assertBoundIsOutbound(r, peerPorts);
    await host.waitForLog(
      new RegExp(`proto=socks5 cmd=connect dest=localhost:${echo.port} rule=default via=direct `),
    );
  });

  test('SOCKS5 UDP ASSOCIATE (rdns=False): three datagrams echoed from 127.0.0.1:ECHO', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await pythonJson(UDP_CLIENT, [host.port, udp.port, '0', '', '']);
    assert.deepEqual(r, expectedUdp(udp.port));
  });
});

describe('PySocks through the host with inbound users', () => {
  let host: SwitchyardProcess;
  let echo: EchoServer;
  let peerPorts: (number | undefined)[];
  let udp: UdpEcho;

  before(async () => {
    ({ echo, peerPorts } = await startRecordingEcho());
    udp = await startUdpEcho();
    host = await startSwitchyard({
      users: [{ name: USER, password: PASSWORD }],
      args: ['--log-level', 'debug'],
    });
  });

  after(async () => {
    await host?.stop();
    await echo?.close();
    await udp?.close();
  });

  test('SOCKS5 rdns=True with username/password to localhost: 200 KiB echoed exactly', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await pythonJson(TCP_CLIENT, [
      'socks5',
      host.port,
      'localhost',
      echo.port,
      '1',
      USER,
      PASSWORD,
    ]);
    assertBoundIsOutbound(r, peerPorts);
    await host.waitForLog(
      new RegExp(`user=alice proto=socks5 cmd=connect dest=localhost:${echo.port} rule=default via=direct `),
    );
  });

  // PySocks wraps negotiation errors in GeneralProxyError('Socket error: ' + the inner error).
  test('SOCKS5 with a wrong password: authentication failed', { timeout: TEST_TIMEOUT }, async () => {
    const r = await pythonJson(TCP_CLIENT, ['socks5', host.port, 'localhost', echo.port, '1', USER, 'wrong']);
    assert.deepEqual(r, {
      error: 'GeneralProxyError',
      message: 'Socket error: SOCKS5 authentication failed',
    });
  });

  test('SOCKS5 without credentials: no acceptable method (0xFF)', { timeout: TEST_TIMEOUT }, async () => {
    const r = await pythonJson(TCP_CLIENT, ['socks5', host.port, 'localhost', echo.port, '1', '', '']);
    assert.deepEqual(r, {
      error: 'GeneralProxyError',
      message: 'Socket error: All offered SOCKS5 authentication methods were rejected',
    });
  });

  test('SOCKS4 is refused while users exist: status 0x5B (91)', { timeout: TEST_TIMEOUT }, async () => {
    const r = await pythonJson(TCP_CLIENT, ['socks4', host.port, '127.0.0.1', echo.port, '0', '', '']);
    assert.deepEqual(r, {
      error: 'GeneralProxyError',
      message: 'Socket error: 0x5b: Request rejected or failed',
    });
  });

  test('SOCKS5 UDP ASSOCIATE with username/password (rdns=True): three datagrams echoed', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await pythonJson(UDP_CLIENT, [host.port, udp.port, '1', USER, PASSWORD]);
    assert.deepEqual(r, expectedUdp(udp.port));
  });
});
