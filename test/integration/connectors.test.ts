/**
 * The outbound connectors on real loopback sockets: against our own SOCKS server, a small HTTP
 * CONNECT proxy, scripted fake upstreams (silent, garbage, server-speaks-first), and the
 * Debian servers microsocks and danted when they are installed. Ends with chains built by
 * hand, connector after connector over one socket.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import { connectorFor, isBindResult } from '../../native-host/src/outbound/connectors/index.ts';
import type {
  ConnectorProtocol,
  ConnectorRequest,
  ConnectorResult,
} from '../../native-host/src/outbound/connectors/types.ts';
import { OutboundError, type OutboundFailure } from '../../native-host/src/outbound/outbound.ts';
import { type Address, addressOf } from '../../native-host/src/protocol/address.ts';
import { ProtocolError } from '../../native-host/src/protocol/errors.ts';
import {
  MAX_RESPONSE_HEAD,
  parseConnectResponse,
  serializeConnectRequest,
} from '../../native-host/src/protocol/http-connect.ts';
import { Rep } from '../../native-host/src/protocol/socks5.ts';
import { directDispatcher } from '../../native-host/src/server/socks-server.ts';
import { type HttpConnectProxy, startHttpConnectProxy } from '../helpers/http-connect-proxy.ts';
import { ByteReader, type EchoServer, connectTo, echoAsserter, startEchoServer } from '../helpers/net.ts';
import {
  type Daemon,
  type Dante,
  freePort,
  startDante,
  startMicrosocks,
  startScripted,
} from '../helpers/reference-servers.ts';
import { type TestServer, startSocksServer, testSettings } from '../helpers/socks-server.ts';

const USER = { username: 'alice', password: 'correct horse' };
const WRONG = { username: 'alice', password: 'wrong' };
const HTTP_USER = { username: 'bob', password: 'p@ss:word' };

// ---- fixtures -------------------------------------------------------------------------------

interface RecordingServer extends TestServer {
  /** Every destination a client asked this server for, as it arrived on the wire. */
  readonly destinations: Address[];
}

async function startRecordingServer(withUsers: boolean): Promise<RecordingServer> {
  const destinations: Address[] = [];
  const users = withUsers ? [{ name: USER.username, passwordHash: await hashPassword(USER.password) }] : [];
  const direct = directDispatcher(testSettings());
  const server = await startSocksServer({
    users,
    dispatch: (request) => {
      destinations.push(request.destination);
      return direct(request);
    },
  });
  return Object.assign(server, { destinations });
}

async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- connector helpers ----------------------------------------------------------------------

/** Aborted at the end, so that nothing a test left waiting outlives the file. */
const signalSource = new AbortController();

function request(target: Address, extra: Partial<ConnectorRequest> = {}): ConnectorRequest {
  return {
    command: 'connect',
    target,
    signal: signalSource.signal,
    timeoutMs: 3000,
    hop: 1,
    hopName: 'test',
    ...extra,
  };
}

const local = (port: number): Address => ({ type: 'ipv4', host: '127.0.0.1', port });
const named = (port: number, host = 'localhost'): Address => ({ type: 'domain', host, port });

/** Opens a socket to `port` and runs one connector over it. */
async function through(
  protocol: ConnectorProtocol,
  port: number,
  req: ConnectorRequest,
): Promise<{ socket: Socket; result: ConnectorResult }> {
  const socket = await connectTo(port);
  socket.on('error', () => undefined);
  try {
    return { socket, result: await connectorFor(protocol).handshake(socket, req) };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

interface Expected {
  failure: OutboundFailure;
  rep: number;
  message: RegExp;
  hop?: number;
}

/** Runs a handshake that must fail; checks the error and that the socket was left alone. */
async function failsWith(
  protocol: ConnectorProtocol,
  port: number,
  req: ConnectorRequest,
  expected: Expected,
): Promise<{ socket: Socket; error: OutboundError }> {
  const socket = await connectTo(port);
  socket.on('error', () => undefined);
  const events = ['readable', 'data', 'end', 'close', 'error'] as const;
  const listenersBefore = events.map((e) => socket.listenerCount(e));
  try {
    const error = await connectorFor(protocol)
      .handshake(socket, req)
      .then(
        () => assert.fail('handshake should have failed'),
        (e: unknown) => e,
      );
    assertOutboundError(error, expected);
    // The caller owns the socket: the connector neither destroys it nor leaves listeners.
    assert.equal(socket.destroyed, false, 'connector must not destroy the socket');
    assert.deepEqual(
      events.map((e) => socket.listenerCount(e)),
      listenersBefore,
      'connector must leave no listeners behind',
    );
    return { socket, error: error as OutboundError };
  } finally {
    socket.destroy();
  }
}

function assertOutboundError(error: unknown, expected: Expected): asserts error is OutboundError {
  assert.ok(error instanceof OutboundError, `expected an OutboundError, got ${String(error)}`);
  assert.match(error.message, expected.message);
  assert.equal(error.failure, expected.failure, error.message);
  assert.equal(error.rep, expected.rep, error.message);
  assert.equal(error.hop, expected.hop ?? 1);
}

/** Bytes both ways through an echo, then an orderly close in both directions. */
const assertEcho = echoAsserter('hello through the tunnel', 7);

// ---- shared servers -------------------------------------------------------------------------

let echo: EchoServer;
let open: RecordingServer;
let guarded: RecordingServer;
let http: HttpConnectProxy;
let httpAuth: HttpConnectProxy;
let closedPort: number;

before(async () => {
  echo = await startEchoServer();
  open = await startRecordingServer(false);
  guarded = await startRecordingServer(true);
  http = await startHttpConnectProxy();
  httpAuth = await startHttpConnectProxy({ user: HTTP_USER });
  closedPort = await freePort();
});

after(async () => {
  signalSource.abort();
  await Promise.all([echo.close(), open.close(), guarded.close(), http.close(), httpAuth.close()]);
});

// ---- pure codec -----------------------------------------------------------------------------

describe('http-connect codec', () => {
  it('writes CONNECT with Host, brackets IPv6, and Basic credentials', () => {
    assert.equal(
      serializeConnectRequest(named(443, 'example.org')).toString('latin1'),
      'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n',
    );
    assert.equal(
      serializeConnectRequest(addressOf('::1', 22), HTTP_USER).toString('latin1'),
      `CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\nProxy-Authorization: Basic ${Buffer.from('bob:p@ss:word').toString('base64')}\r\n\r\n`,
    );
  });

  it('refuses what could inject headers or is not a host', () => {
    assert.throws(() => serializeConnectRequest(named(80, 'a\r\nX-Evil: 1')), ProtocolError);
    assert.throws(() => serializeConnectRequest(named(80, 'a b')), ProtocolError);
    assert.throws(() => serializeConnectRequest(named(80, 'user@host')), ProtocolError);
    assert.throws(() => serializeConnectRequest(named(0)), ProtocolError);
    assert.throws(
      () => serializeConnectRequest(named(80), { username: 'a:b', password: 'c' }),
      ProtocolError,
    );
  });

  it('waits for the blank line, byte by byte, and never consumes what follows', () => {
    const head = 'HTTP/1.1 200 Connection established\r\nVia: test\r\nVia: again\r\n\r\n';
    const bytes = Buffer.from(`${head}SSH-2.0-banner\r\n`, 'latin1');
    for (let n = 0; n < head.length; n++)
      assert.equal(parseConnectResponse(bytes.subarray(0, n)).done, false);
    const result = parseConnectResponse(bytes);
    assert.ok(result.done);
    assert.equal(result.size, head.length);
    assert.equal(result.value.status, 200);
    assert.equal(result.value.reason, 'Connection established');
    assert.equal(result.value.headers.get('via'), 'test, again');
  });

  it('accepts bare LF line ends and an empty reason', () => {
    const result = parseConnectResponse(Buffer.from('HTTP/1.0 200\n\nrest'));
    assert.ok(result.done);
    assert.equal(result.size, 14);
    assert.equal(result.value.reason, '');
  });

  it('rejects a non-HTTP answer at its first byte, and an endless head', () => {
    assert.throws(() => parseConnectResponse(Buffer.from([5, 0])), { code: 'BAD_VERSION' });
    assert.throws(() => parseConnectResponse(Buffer.from('SSH-2.0-x\r\n')), { code: 'BAD_VERSION' });
    assert.throws(() => parseConnectResponse(Buffer.from('HTTP/2.0 200 OK\r\n\r\n')), {
      code: 'BAD_VERSION',
    });
    assert.throws(() => parseConnectResponse(Buffer.from('HTTP/1.1 2000 OK\r\n\r\n')), {
      code: 'BAD_STATUS',
    });
    assert.throws(() => parseConnectResponse(Buffer.from('HTTP/1.1 200 OK\r\nno colon\r\n\r\n')), {
      code: 'BAD_HEADER',
    });
    const endless = Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_RESPONSE_HEAD)}`);
    assert.throws(() => parseConnectResponse(endless), { code: 'TOO_LONG' });
    assert.equal(parseConnectResponse(endless.subarray(0, MAX_RESPONSE_HEAD - 1)).done, false);
  });
});

// ---- one hop --------------------------------------------------------------------------------

describe('connect through one hop to an echo server', () => {
  it('socks5 (our server, no auth), host name sent unresolved', async () => {
    const before = open.destinations.length;
    const { socket, result } = await through('socks5', open.port, request(named(echo.port)));
    assert.equal(result.bound.host, '127.0.0.1');
    assert.ok(result.bound.port > 0);
    assert.deepEqual(open.destinations.slice(before), [named(echo.port)]);
    await assertEcho(socket);
  });

  it('socks5 with credentials the server accepts', async () => {
    const { socket } = await through(
      'socks5',
      guarded.port,
      request(local(echo.port), { credentials: USER }),
    );
    await assertEcho(socket);
  });

  it('socks4 to an IPv4 target (user id = username)', async () => {
    const { socket, result } = await through('socks4', open.port, request(local(echo.port)));
    assert.equal(result.bound.host, '127.0.0.1');
    await assertEcho(socket);
  });

  it('socks4a, host name sent unresolved', async () => {
    const before = open.destinations.length;
    const { socket } = await through('socks4a', open.port, request(named(echo.port)));
    assert.deepEqual(open.destinations.slice(before), [named(echo.port)]);
    await assertEcho(socket);
  });

  it('http CONNECT, host name sent unresolved', async () => {
    const before = http.requests.length;
    const { socket, result } = await through('http', http.port, request(named(echo.port)));
    assert.deepEqual(result.bound, { host: '0.0.0.0', port: 0 });
    const recorded = http.requests.slice(before);
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.target, `localhost:${echo.port}`);
    assert.equal(recorded[0]!.headers.get('host'), `localhost:${echo.port}`);
    assert.equal(recorded[0]!.headers.has('proxy-authorization'), false);
    await assertEcho(socket);
  });

  it('http CONNECT with Basic credentials the proxy accepts', async () => {
    const { socket } = await through(
      'http',
      httpAuth.port,
      request(local(echo.port), { credentials: HTTP_USER }),
    );
    await assertEcho(socket);
  });

  it('http CONNECT to an IPv6 target is bracketed', async () => {
    const echo6 = await startEchoServer('::1');
    try {
      const before = http.requests.length;
      const { socket } = await through('http', http.port, request(addressOf('::1', echo6.port)));
      assert.equal(http.requests[before]!.target, `[::1]:${echo6.port}`);
      await assertEcho(socket, 1000);
    } finally {
      await echo6.close();
    }
  });
});

describe('credentials', () => {
  it('socks5: wrong password is auth-failed and names the user', async () => {
    await failsWith(
      'socks5',
      guarded.port,
      request(local(echo.port), { credentials: WRONG, hopName: 'guarded' }),
      {
        failure: 'auth-failed',
        rep: Rep.GENERAL_FAILURE,
        message: /^hop 1 \(guarded\) rejected the username\/password for user 'alice'$/,
      },
    );
  });

  it('socks5: no credentials for a server that wants them is auth-failed (0xFF)', async () => {
    await failsWith('socks5', guarded.port, request(local(echo.port), { hopName: 'guarded' }), {
      failure: 'auth-failed',
      rep: Rep.GENERAL_FAILURE,
      message:
        /^hop 1 \(guarded\) found no acceptable authentication method \(the upstream wants credentials\)$/,
    });
  });

  it('socks5: credentials are offered but never sent unless the server picks username/password', async () => {
    const fake = await startScripted(async (socket, reader) => {
      await reader.read(4); // 05 02 00 02
      socket.write(Buffer.from([5, 0]));
      await reader.read(10);
      socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34]));
    });
    try {
      const { socket, result } = await through(
        'socks5',
        fake.port,
        request(local(80), { credentials: USER }),
      );
      socket.destroy();
      assert.deepEqual(result.bound, { host: '127.0.0.1', port: 0x1234 });
      assert.deepEqual([...fake.received[0]!.subarray(0, 4)], [5, 2, 0, 2]);
      assert.deepEqual([...fake.received[0]!.subarray(4)], [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
      assert.equal(fake.received[0]!.includes(Buffer.from(USER.password)), false);
    } finally {
      await fake.close();
    }
  });

  it('socks5: without credentials only no-auth is offered', async () => {
    const fake = await startScripted(async (socket, reader) => {
      await reader.read(3);
      socket.write(Buffer.from([5, 0xff]));
    });
    try {
      await failsWith('socks5', fake.port, request(local(80)), {
        failure: 'auth-failed',
        rep: Rep.GENERAL_FAILURE,
        message: /no acceptable authentication method/,
      });
      assert.deepEqual([...fake.received[0]!], [5, 1, 0]);
    } finally {
      await fake.close();
    }
  });

  it('socks5: a server choosing a method that was not offered is a protocol error', async () => {
    const fake = await startScripted(async (socket, reader) => {
      await reader.read(3);
      socket.write(Buffer.from([5, 2]));
    });
    try {
      await failsWith('socks5', fake.port, request(local(80)), {
        failure: 'protocol',
        rep: Rep.GENERAL_FAILURE,
        message: /chose authentication method 2, which was not offered/,
      });
    } finally {
      await fake.close();
    }
  });

  it('http: missing credentials -> auth-failed (407)', async () => {
    await failsWith('http', httpAuth.port, request(local(echo.port), { hopName: 'corp' }), {
      failure: 'auth-failed',
      rep: Rep.GENERAL_FAILURE,
      message: /^hop 1 \(corp\) wants proxy credentials \(HTTP 407 Proxy Authentication Required\)$/,
    });
  });

  it('http: wrong credentials -> auth-failed naming the user', async () => {
    await failsWith(
      'http',
      httpAuth.port,
      request(local(echo.port), { hopName: 'corp', credentials: { username: 'bob', password: 'nope' } }),
      {
        failure: 'auth-failed',
        rep: Rep.GENERAL_FAILURE,
        message: /^hop 1 \(corp\) rejected the credentials for user 'bob' \(HTTP 407/,
      },
    );
  });

  it('http: a proxy that wants another scheme is named in the message', async () => {
    const ntlm = await startHttpConnectProxy({ user: HTTP_USER, challenge: 'NTLM' });
    try {
      await failsWith('http', ntlm.port, request(local(echo.port)), {
        failure: 'auth-failed',
        rep: Rep.GENERAL_FAILURE,
        message: /it asks for NTLM, only Basic is supported/,
      });
    } finally {
      await ntlm.close();
    }
  });
});

describe('refusals are passed on', () => {
  it('socks5: REP 5 from the upstream reaches the caller unchanged', async () => {
    await failsWith('socks5', open.port, request(local(closedPort), { hop: 2, hopName: 'exit' }), {
      failure: 'rejected',
      rep: Rep.CONNECTION_REFUSED,
      hop: 2,
      message: /^hop 2 \(exit\) upstream replied REP 5 \(connection refused\)$/,
    });
  });

  it('socks5: an unknown REP becomes a general failure, its number kept in the message', async () => {
    const fake = await startScripted(async (socket, reader) => {
      await reader.read(3);
      socket.write(Buffer.from([5, 0]));
      await reader.read(10);
      socket.write(Buffer.from([5, 0x42, 0, 1, 0, 0, 0, 0, 0, 0]));
    });
    try {
      await failsWith('socks5', fake.port, request(local(80)), {
        failure: 'rejected',
        rep: Rep.GENERAL_FAILURE,
        message: /upstream replied REP 66 \(unknown reply code 66\)/,
      });
    } finally {
      await fake.close();
    }
  });

  it('socks4: status 91 is rejected', async () => {
    await failsWith('socks4', open.port, request(local(closedPort)), {
      failure: 'rejected',
      rep: Rep.GENERAL_FAILURE,
      message: /^hop 1 \(test\) rejected the request \(SOCKS4 status 91: request rejected or failed\)$/,
    });
  });

  it('socks4: statuses 92 and 93 mention identd', async () => {
    for (const status of [92, 93]) {
      const fake = await startScripted(async (socket, reader) => {
        await reader.read(9);
        socket.write(Buffer.from([0, status, 0, 0, 0, 0, 0, 0]));
      });
      try {
        await failsWith('socks4', fake.port, request(local(80)), {
          failure: 'rejected',
          rep: Rep.GENERAL_FAILURE,
          message: new RegExp(`SOCKS4 status ${status}: .*identd`),
        });
      } finally {
        await fake.close();
      }
    }
  });

  it('http: 502 -> host unreachable, 403 -> not allowed, 504 -> TTL expired, 500 -> general', async () => {
    await failsWith('http', http.port, request(local(closedPort)), {
      failure: 'rejected',
      rep: Rep.HOST_UNREACHABLE,
      message: /^hop 1 \(test\) upstream answered HTTP 502 Bad Gateway$/,
    });
    const cases: Array<[string, number]> = [
      ['403 Forbidden', Rep.NOT_ALLOWED],
      ['504 Gateway Timeout', Rep.TTL_EXPIRED],
      ['500 Internal Server Error', Rep.GENERAL_FAILURE],
    ];
    for (const [line, rep] of cases) {
      const proxy = await startHttpConnectProxy({ refuseWith: line });
      try {
        await failsWith('http', proxy.port, request(local(echo.port)), {
          failure: 'rejected',
          rep,
          message: new RegExp(`upstream answered HTTP ${line}$`),
        });
      } finally {
        await proxy.close();
      }
    }
  });
});

describe('what a protocol cannot carry is refused before sending', () => {
  it('socks4 refuses host names (and IPv6), pointing at socks4a/socks5', async () => {
    const { socket } = await failsWith('socks4', open.port, request(named(echo.port), { hopName: 'old' }), {
      failure: 'protocol',
      rep: Rep.ADDRESS_TYPE_NOT_SUPPORTED,
      message: /^hop 1 \(old\) is SOCKS4, which cannot carry host names \(localhost\); use socks4a or socks5/,
    });
    assert.equal(socket.bytesWritten, 0);
    await failsWith('socks4a', open.port, request(addressOf('::1', 80)), {
      failure: 'protocol',
      rep: Rep.ADDRESS_TYPE_NOT_SUPPORTED,
      message: /SOCKS4a, which cannot carry IPv6 addresses/,
    });
    await failsWith('socks4', open.port, request(addressOf('0.0.0.7', 80)), {
      failure: 'protocol',
      rep: Rep.ADDRESS_TYPE_NOT_SUPPORTED,
      message: /SOCKS4a host name marker/,
    });
  });

  it('http cannot BIND', async () => {
    const { socket } = await failsWith('http', http.port, request(local(0), { command: 'bind' }), {
      failure: 'protocol',
      rep: Rep.COMMAND_NOT_SUPPORTED,
      message: /^hop 1 \(test\) is an HTTP proxy, which cannot BIND$/,
    });
    assert.equal(socket.bytesWritten, 0);
  });

  it('socks5 refuses a host name longer than 255 bytes', async () => {
    await failsWith('socks5', open.port, request(named(80, `${'a'.repeat(300)}.example`)), {
      failure: 'protocol',
      rep: Rep.GENERAL_FAILURE,
      message: /cannot send the request: host name must be 1 to 255 bytes/,
    });
  });
});

describe('silent, broken and cancelled upstreams', () => {
  const protocols: ConnectorProtocol[] = ['socks5', 'socks4', 'socks4a', 'http'];

  it('a silent upstream times out within the configured 300 ms, for every protocol', async () => {
    const silent = await startScripted(() => undefined);
    try {
      for (const protocol of protocols) {
        const started = Date.now();
        await failsWith(
          protocol,
          silent.port,
          request(local(80), { timeoutMs: 300, hop: 3, hopName: 'mute' }),
          {
            failure: 'timeout',
            rep: Rep.TTL_EXPIRED,
            hop: 3,
            message:
              /^hop 3 \(mute\) did not answer within 300 ms \(waiting for the (method choice|reply|CONNECT response)\)$/,
          },
        );
        const took = Date.now() - started;
        assert.ok(took >= 280 && took < 1500, `${protocol} took ${took} ms`);
      }
    } finally {
      await silent.close();
    }
  });

  it('the deadline covers the whole handshake, not each message', async () => {
    // Answers each step just before a per-message timer would fire.
    const slow = await startScripted(async (socket, reader) => {
      await reader.read(4);
      await new Promise((r) => setTimeout(r, 200));
      socket.write(Buffer.from([5, 2]));
      await reader.read(3 + USER.username.length + USER.password.length);
      await new Promise((r) => setTimeout(r, 200));
      socket.write(Buffer.from([1, 0]));
    });
    try {
      await failsWith('socks5', slow.port, request(local(80), { timeoutMs: 300, credentials: USER }), {
        failure: 'timeout',
        rep: Rep.TTL_EXPIRED,
        message: /did not answer within 300 ms \(waiting for the authentication status\)/,
      });
    } finally {
      await slow.close();
    }
  });

  it('garbage is a protocol error carrying the codec message, for every protocol', async () => {
    const garbage = await startScripted((socket) => {
      socket.write('garbage!');
    });
    try {
      for (const protocol of protocols) {
        await failsWith(protocol, garbage.port, request(local(80)), {
          failure: 'protocol',
          rep: Rep.GENERAL_FAILURE,
          message:
            /^hop 1 \(test\) sent a malformed reply: expected (SOCKS version 5, got 103|SOCKS4 reply version 0, got 103|an HTTP response, got "garbage!")$/,
        });
      }
    } finally {
      await garbage.close();
    }
  });

  it('an upstream that hangs up mid-reply is a protocol error', async () => {
    const hangup = await startScripted((socket) => {
      socket.end(Buffer.from([5]));
    });
    try {
      await failsWith('socks5', hangup.port, request(local(80)), {
        failure: 'protocol',
        rep: Rep.GENERAL_FAILURE,
        message: /closed the connection before sending the method choice \(1 bytes of it arrived\)/,
      });
    } finally {
      await hangup.close();
    }
  });

  it('an abort ends the wait at once as aborted', async () => {
    const silent = await startScripted(() => undefined);
    const controller = new AbortController();
    try {
      setTimeout(() => controller.abort(), 50);
      const started = Date.now();
      await failsWith('socks5', silent.port, request(local(80), { signal: controller.signal }), {
        failure: 'aborted',
        rep: Rep.GENERAL_FAILURE,
        message: /^hop 1 \(test\) cancelled$/,
      });
      assert.ok(Date.now() - started < 1000);
    } finally {
      await silent.close();
    }
  });
});

describe('server speaks first: bytes in the same packet as the reply are kept', () => {
  const banner = Buffer.from('SSH-2.0-OpenSSH_9.2 fake\r\n');

  for (const endAfter of [false, true]) {
    it(`socks5 reply + banner in one write${endAfter ? ', then FIN' : ''}`, async () => {
      const fake = await startScripted(async (socket, reader) => {
        await reader.read(3);
        socket.write(Buffer.from([5, 0]));
        await reader.read(10);
        const reply = Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 22]);
        if (endAfter) socket.end(Buffer.concat([reply, banner]));
        else socket.write(Buffer.concat([reply, banner]));
      });
      try {
        const { socket } = await through('socks5', fake.port, request(local(22)));
        const reader = new ByteReader(socket);
        assert.deepEqual(await reader.read(banner.length), banner);
        if (endAfter) assert.equal((await reader.readToEnd()).length, 0);
        socket.destroy();
      } finally {
        await fake.close();
      }
    });
  }

  it('socks4 reply + banner in one write, read with pipe()', async () => {
    const fake = await startScripted(async (socket, reader) => {
      await reader.read(9);
      socket.end(Buffer.concat([Buffer.from([0, 90, 0, 22, 127, 0, 0, 1]), banner]));
    });
    try {
      const { socket } = await through('socks4', fake.port, request(local(22)));
      const chunks: Buffer[] = [];
      const { PassThrough } = await import('node:stream');
      const sink = new PassThrough();
      sink.on('data', (c: Buffer) => chunks.push(c));
      socket.pipe(sink);
      await new Promise((r) => sink.once('end', r));
      assert.deepEqual(Buffer.concat(chunks), banner);
    } finally {
      await fake.close();
    }
  });

  it('http 200 + banner in one write', async () => {
    const fake = await startScripted(async (socket, reader) => {
      await reader.read(1);
      await new Promise((r) => setTimeout(r, 20));
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), banner]));
    });
    try {
      const { socket } = await through('http', fake.port, request(local(22)));
      assert.deepEqual(await new ByteReader(socket).read(banner.length), banner);
      socket.destroy();
    } finally {
      await fake.close();
    }
  });
});

describe('BIND', () => {
  for (const protocol of ['socks5', 'socks4'] as const) {
    it(`${protocol} through our server: two replies, then bytes both ways`, async () => {
      const { socket, result } = await through(protocol, open.port, request(local(0), { command: 'bind' }));
      assert.ok(isBindResult(result));
      assert.equal(result.bound.host, '127.0.0.1');
      assert.ok(result.bound.port > 0);
      const peerSocket = await connectTo(result.bound.port);
      const peer = await result.peer;
      assert.deepEqual(peer, { host: '127.0.0.1', port: peerSocket.localPort });

      const ours = new ByteReader(socket);
      const theirs = new ByteReader(peerSocket);
      peerSocket.write('from the peer');
      assert.equal((await ours.read(13)).toString(), 'from the peer');
      socket.write('to the peer');
      assert.equal((await theirs.read(11)).toString(), 'to the peer');
      socket.end();
      assert.equal((await theirs.readToEnd()).length, 0);
      peerSocket.end();
      assert.equal((await ours.readToEnd()).length, 0);
    });
  }

  it('a peer that never comes times out after bindTimeoutMs', async () => {
    const { socket, result } = await through(
      'socks5',
      open.port,
      request(local(0), { command: 'bind', bindTimeoutMs: 300 }),
    );
    try {
      assert.ok(isBindResult(result));
      const error = await result.peer.then(
        () => assert.fail('no peer connected'),
        (e: unknown) => e,
      );
      assertOutboundError(error, {
        failure: 'timeout',
        rep: Rep.TTL_EXPIRED,
        message: /did not answer within 300 ms \(waiting for the second BIND reply/,
      });
    } finally {
      socket.destroy();
    }
  });
});

// ---- real servers ---------------------------------------------------------------------------

describe('microsocks', () => {
  let plain: Daemon;
  let authed: Daemon;
  before(async () => {
    plain = await startMicrosocks();
    authed = await startMicrosocks(USER);
  });
  after(async () => {
    await Promise.all([plain?.stop(), authed?.stop()]);
  });

  it('socks5 CONNECT by host name (resolved at microsocks)', async () => {
    const { socket } = await through('socks5', plain.port, request(named(echo.port)));
    await assertEcho(socket);
    // microsocks logs the name it was asked for: proof that it arrived unresolved.
    await eventually(() => plain.output().includes(`connected to localhost:${echo.port}`));
  });

  it('socks5 with credentials: accepted, refused, missing', async () => {
    const { socket } = await through('socks5', authed.port, request(local(echo.port), { credentials: USER }));
    await assertEcho(socket);
    await failsWith('socks5', authed.port, request(local(echo.port), { credentials: WRONG }), {
      failure: 'auth-failed',
      rep: Rep.GENERAL_FAILURE,
      message: /rejected the username\/password for user 'alice'/,
    });
    await failsWith('socks5', authed.port, request(local(echo.port)), {
      failure: 'auth-failed',
      rep: Rep.GENERAL_FAILURE,
      message: /no acceptable authentication method/,
    });
  });

  it('a refused destination comes back as microsocks says it', async () => {
    const { error } = await failsWith('socks5', plain.port, request(local(closedPort)), {
      failure: 'rejected',
      rep: Rep.CONNECTION_REFUSED,
      message: /upstream replied REP 5 \(connection refused\)/,
    });
    assert.equal(error.hop, 1);
  });
});

describe('dante-server', () => {
  let dante: Dante;
  before(async () => {
    dante = await startDante();
  });
  after(async () => {
    await dante?.stop();
  });

  it('socks5 CONNECT by host name, and socks4 CONNECT by IPv4', async () => {
    const one = await through('socks5', dante.port, request(named(echo.port)));
    await assertEcho(one.socket);
    const two = await through('socks4', dante.port, request(local(echo.port)));
    await assertEcho(two.socket);
  });

  it('socks5 BIND: two replies, then bytes both ways', async () => {
    const { socket, result } = await through('socks5', dante.port, request(local(0), { command: 'bind' }));
    try {
      assert.ok(isBindResult(result));
      assert.ok(result.bound.port > 0);
      const host = result.bound.host === '0.0.0.0' ? '127.0.0.1' : result.bound.host;
      const peerSocket = await connectTo(result.bound.port, host);
      await result.peer;
      const ours = new ByteReader(socket);
      const theirs = new ByteReader(peerSocket);
      peerSocket.write('ping');
      assert.equal((await ours.read(4)).toString(), 'ping');
      socket.write('pong');
      assert.equal((await theirs.read(4)).toString(), 'pong');
      peerSocket.destroy();
    } finally {
      socket.destroy();
    }
  });
});

// ---- chains ---------------------------------------------------------------------------------

describe('chains built by hand: one socket, connectors in turn', () => {
  it('socks5+auth -> http+auth -> socks4a -> echo (localhost, resolved only at the exit)', async () => {
    const socket = await connectTo(guarded.port);
    socket.on('error', () => undefined);
    const httpBefore = httpAuth.requests.length;
    const openBefore = open.destinations.length;
    try {
      await connectorFor('socks5').handshake(
        socket,
        request(local(httpAuth.port), { credentials: USER, hop: 1, hopName: 'guarded' }),
      );
      await connectorFor('http').handshake(
        socket,
        request(local(open.port), { credentials: HTTP_USER, hop: 2, hopName: 'corp' }),
      );
      await connectorFor('socks4a').handshake(socket, request(named(echo.port), { hop: 3, hopName: 'exit' }));
    } catch (error) {
      socket.destroy();
      throw error;
    }
    assert.equal(httpAuth.requests[httpBefore]!.target, `127.0.0.1:${open.port}`);
    assert.deepEqual(open.destinations.slice(openBefore), [named(echo.port)]);
    await assertEcho(socket);
  });

  it('http -> socks5 -> socks4: a refusal at hop 3 (SOCKS4 to a server that requires users) names hop 3', async () => {
    const socket = await connectTo(http.port);
    socket.on('error', () => undefined);
    try {
      await connectorFor('http').handshake(socket, request(local(open.port), { hop: 1, timeoutMs: 1000 }));
      await connectorFor('socks5').handshake(
        socket,
        request(local(guarded.port), { hop: 2, timeoutMs: 2000 }),
      );
      await connectorFor('socks4').handshake(socket, request(local(echo.port), { hop: 3, timeoutMs: 3000 }));
      assert.fail('hop 3 (our guarded server) refuses SOCKS4 without socks4AllowFrom');
    } catch (error) {
      assertOutboundError(error, {
        failure: 'rejected',
        rep: Rep.GENERAL_FAILURE,
        hop: 3,
        message: /^hop 3 \(test\) rejected the request \(SOCKS4 status 91/,
      });
    } finally {
      socket.destroy();
    }
  });

  it('a refusal in the middle names that hop and passes its REP on', async () => {
    const socket = await connectTo(open.port);
    socket.on('error', () => undefined);
    try {
      await connectorFor('socks5').handshake(socket, request(local(open.port), { hop: 1, hopName: 'first' }));
      const error = await connectorFor('socks5')
        .handshake(socket, request(local(closedPort), { hop: 2, hopName: 'second' }))
        .then(
          () => assert.fail('hop 2 should refuse'),
          (e: unknown) => e,
        );
      assertOutboundError(error, {
        failure: 'rejected',
        rep: Rep.CONNECTION_REFUSED,
        hop: 2,
        message: /^hop 2 \(second\) upstream replied REP 5 \(connection refused\)$/,
      });
    } finally {
      socket.destroy();
    }
  });

  it('with microsocks in the middle: socks5 -> microsocks (socks5+auth) -> http -> echo', async () => {
    const micro = await startMicrosocks(USER);
    const socket = await connectTo(open.port);
    socket.on('error', () => undefined);
    try {
      await connectorFor('socks5').handshake(socket, request(local(micro.port), { hop: 1 }));
      await connectorFor('socks5').handshake(
        socket,
        request(local(http.port), { hop: 2, hopName: 'micro', credentials: USER }),
      );
      await connectorFor('http').handshake(socket, request(named(echo.port), { hop: 3 }));
      await assertEcho(socket);
    } finally {
      socket.destroy();
      await micro.stop();
    }
  });
});
