/**
 * Route hints: Firefox decides container rules itself and names the route in the SOCKS5
 * username ('route:<id>', the rule id as the password). The real server with the real policy:
 * a hinted request takes that route although the host's own rules send the destination
 * direct; an unknown route, a block hint and an access rule are refused with REP 02; other
 * credentials are refused while no users exist; with inbound users a hint is just a wrong login.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ConfigInput, validateConfig } from '../../shared/config/schema.ts';
import { BLOCK_HINT, hintCredentials, parseRouteHint } from '../../shared/messages/route-hint.ts';
import { hashPassword } from '../../native-host/src/auth/password-hash.ts';
import type { InboundUser } from '../../native-host/src/auth/users.ts';
import { createLogger } from '../../native-host/src/log/logger.ts';
import { buildPolicy } from '../../native-host/src/policy/dispatcher.ts';
import { ByteReader, type EchoServer, connectTo, startEchoServer } from '../helpers/net.ts';
import { type TestServer, startSocksServer } from '../helpers/socks-server.ts';

const WORK = 'firefox-container-1';

let echo: EchoServer;
let upstream: TestServer;
const started: TestServer[] = [];

interface Front {
  readonly server: TestServer;
  /** The policy's log lines (the route hint refusals). */
  readonly policyLogs: string[];
}

async function startFront(extra: Partial<ConfigInput> = {}, users?: InboundUser[]): Promise<Front> {
  const result = validateConfig({
    version: 1,
    upstreams: [{ id: 'up', name: 'up', type: 'socks5', host: '127.0.0.1', port: upstream.port }],
    routes: [{ id: 'corp', name: 'corp', hops: ['up'] }],
    rules: [
      {
        id: 'work',
        name: 'Work container via corp',
        enabled: true,
        match: { contexts: [WORK] },
        target: { kind: 'route', routeId: 'corp' },
      },
    ],
    defaultTarget: { kind: 'direct' },
    ...extra,
  });
  if (!result.ok) throw new Error(`bad test config: ${JSON.stringify(result.issues)}`);
  const policyLogs: string[] = [];
  const policy = buildPolicy({
    config: result.config,
    credentials: async () => undefined,
    logger: createLogger({ level: 'debug', sink: { write: (line: string) => policyLogs.push(line) } }),
    ownerUid: process.getuid?.(),
    listenIsLoopback: true,
  });
  const server = await startSocksServer({ dispatch: policy.dispatch, ...(users ? { users } : {}) });
  started.push(server);
  return { server, policyLogs };
}

function connectRequest(host: string, port: number): Buffer {
  const name = Buffer.from(host);
  return Buffer.from([0x05, 0x01, 0x00, 0x03, name.length, ...name, port >> 8, port & 0xff]);
}

function userPass(user: string, pass: string): Buffer {
  const u = Buffer.from(user);
  const p = Buffer.from(pass);
  return Buffer.from([0x01, u.length, ...u, p.length, ...p]);
}

/** Firefox's handshake with a username: method 02 alone, then RFC 1929; the status. */
async function hinted(
  port: number,
  username: string,
  password: string,
): Promise<{ reader: ByteReader; status: number; close(): void }> {
  const socket = await connectTo(port);
  const reader = new ByteReader(socket);
  socket.write(Buffer.from([0x05, 0x01, 0x02]));
  assert.deepEqual([...(await reader.read(2))], [0x05, 0x02]);
  socket.write(userPass(username, password));
  const [version, status] = [...(await reader.read(2))];
  assert.equal(version, 0x01);
  return {
    reader,
    status: status!,
    close: () => socket.destroy(),
  };
}

/** Firefox's handshake, then CONNECT to localhost:<echo>; the reply code (and a ping when 00). */
async function hintedConnect(port: number, username: string, password: string): Promise<number> {
  const socket = await connectTo(port);
  const reader = new ByteReader(socket);
  socket.write(Buffer.from([0x05, 0x01, 0x02]));
  assert.deepEqual([...(await reader.read(2))], [0x05, 0x02]);
  socket.write(userPass(username, password));
  assert.deepEqual([...(await reader.read(2))], [0x01, 0x00], 'the hint is accepted');
  socket.write(connectRequest('localhost', echo.port));
  const head = [...(await reader.read(4))];
  assert.equal(head[0], 0x05);
  if (head[1] === 0x00) {
    await reader.read(head[3] === 0x04 ? 18 : 6);
    socket.write('ping');
    assert.equal((await reader.read(4)).toString(), 'ping');
  }
  socket.destroy();
  return head[1]!;
}

async function plainConnect(port: number): Promise<number> {
  const socket = await connectTo(port);
  const reader = new ByteReader(socket);
  socket.write(Buffer.from([0x05, 0x01, 0x00]));
  assert.deepEqual([...(await reader.read(2))], [0x05, 0x00]);
  socket.write(connectRequest('localhost', echo.port));
  const head = [...(await reader.read(4))];
  if (head[1] === 0x00) await reader.read(head[3] === 0x04 ? 18 : 6);
  socket.destroy();
  return head[1]!;
}

function upstreamTunnels(): number {
  return upstream.logs.filter((l) => l.includes('tunnel opened')).length;
}

before(async () => {
  echo = await startEchoServer();
  upstream = await startSocksServer();
});

after(async () => {
  await Promise.allSettled([...started.map((s) => s.close()), upstream?.close(), echo?.close()]);
});

describe('route hints in the SOCKS5 username', () => {
  test('the hint format round-trips, and anything else is not a hint', () => {
    const creds = hintCredentials({ kind: 'route', routeId: 'corp', ruleId: 'work' });
    assert.deepEqual(creds, { username: 'route:corp', password: 'work' });
    assert.deepEqual(parseRouteHint('route:corp', 'work'), {
      kind: 'route',
      routeId: 'corp',
      ruleId: 'work',
    });
    assert.deepEqual(parseRouteHint(BLOCK_HINT, '-'), { kind: 'block' });
    assert.equal(parseRouteHint('alice', 'secret'), undefined);
    assert.equal(parseRouteHint('route:', 'x'), undefined);
    assert.equal(hintCredentials({ kind: 'route', routeId: 'x'.repeat(300) }), undefined);
    assert.equal(hintCredentials({ kind: 'route', routeId: 'corp', ruleId: 'r'.repeat(300) })?.password, '-');
  });

  test('a hinted request takes the named route although the host rules say direct', async () => {
    const front = await startFront();
    const before = upstreamTunnels();
    assert.equal(await plainConnect(front.server.port), 0x00);
    assert.equal(upstreamTunnels(), before, 'without a hint: direct, the container rule is skipped');

    assert.equal(await hintedConnect(front.server.port, 'route:corp', 'work'), 0x00);
    assert.equal(upstreamTunnels(), before + 1, 'with the hint: through the upstream');
    const opened = front.server.logs.filter((l) => l.includes('tunnel opened')).at(-1) ?? '';
    assert.match(opened, /Work container via corp \(in the browser\)/);
    assert.match(opened, /route corp \(up\)/);
  });

  test('a hint naming a route the config does not have is refused with REP 02 and a log line', async () => {
    const front = await startFront();
    const before = upstreamTunnels();
    assert.equal(await hintedConnect(front.server.port, 'route:gone', 'work'), 0x02);
    assert.equal(upstreamTunnels(), before);
    assert.ok(
      front.policyLogs.some((l) => /route hint refused/.test(l) && /route=gone/.test(l)),
      front.policyLogs.join('\n'),
    );
    assert.ok(front.server.logs.some((l) => /tunnel denied/.test(l) && /route gone/.test(l)));
  });

  test('a block hint is refused with REP 02', async () => {
    const front = await startFront();
    assert.equal(await hintedConnect(front.server.port, BLOCK_HINT, 'work'), 0x02);
  });

  test('access control still applies to a hinted request', async () => {
    const front = await startFront({
      access: [{ id: 'no-echo', action: 'deny', ports: [echo.port] }],
    });
    const before = upstreamTunnels();
    assert.equal(await hintedConnect(front.server.port, 'route:corp', 'work'), 0x02);
    assert.equal(upstreamTunnels(), before);
    assert.ok(front.server.logs.some((l) => /tunnel denied/.test(l) && /access no-echo/.test(l)));
  });

  test('other credentials are refused while no inbound users exist', async () => {
    const front = await startFront();
    const c = await hinted(front.server.port, 'alice', 'secret');
    assert.equal(c.status, 0x01);
    c.close();
    assert.ok(front.server.logs.some((l) => /not a route hint/.test(l)));
  });

  test('with inbound users a hint is only a login, and a wrong one', async () => {
    const users = [{ name: 'alice', passwordHash: await hashPassword('pw-alice') }];
    const front = await startFront({}, users);
    const c = await hinted(front.server.port, 'route:corp', 'work');
    assert.notEqual(c.status, 0x00);
    c.close();
  });
});
