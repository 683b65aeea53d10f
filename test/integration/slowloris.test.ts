/**
 * Slowloris against the built host as a child process: clients that dribble a handshake a byte
 * at a time and never finish it. Each is cut at the handshake timeout however steadily it
 * sends, and a thousand of them at once neither stop a normal client from being served nor
 * outlive the timeout. The host gets a raised fd limit, since the thousand clients take one
 * descriptor each in it.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type LimitedHost, hardFdLimit, openFds, startLimitedHost } from '../helpers/fd-limit.ts';
import { type EchoServer, closed, connectTo, startEchoServer } from '../helpers/net.ts';
import { echoes, openTunnel } from '../helpers/socks-client.ts';
import { waitFor } from '../helpers/wait.ts';

const SLOW_CLIENTS = 1_000;
/** The handshake timeout of the host for the single slow client. */
const SHORT_HANDSHAKE_MS = 1_000;
/** For the thousand: long enough that all of them are connected before the first is cut. */
const CROWD_HANDSHAKE_MS = 3_000;
const FD_LIMIT = Math.min(hardFdLimit(), 8_192);

/**
 * Handshakes that are valid so far and never end: a SOCKS5 greeting offering 255 methods, and
 * a SOCKS4 request whose user id never gets its terminating NUL.
 */
function endlessHandshake(kind: 'socks5' | 'socks4', i: number): number {
  if (kind === 'socks5') return i === 0 ? 0x05 : i === 1 ? 0xff : 0x80 + (i % 0x7f);
  const head = [0x04, 0x01, 0x00, 0x50, 127, 0, 0, 1];
  return i < head.length ? head[i]! : 0x61 + (i % 26);
}

describe('slowloris', () => {
  let echo: EchoServer;
  let short: LimitedHost;
  let crowd: LimitedHost;
  before(async () => {
    [echo, short, crowd] = await Promise.all([
      startEchoServer(),
      startLimitedHost({
        fdLimit: FD_LIMIT,
        args: ['--handshake-timeout', String(SHORT_HANDSHAKE_MS), '--log-level', 'info'],
      }),
      startLimitedHost({
        fdLimit: FD_LIMIT,
        args: ['--handshake-timeout', String(CROWD_HANDSHAKE_MS), '--log-level', 'info'],
      }),
    ]);
  });
  after(async () => {
    await Promise.all([echo?.close(), short?.stop(), crowd?.stop()]);
  });

  test(`a client sending its greeting one byte every 200 ms is cut at the ${SHORT_HANDSHAKE_MS} ms handshake timeout`, async () => {
    const c = await connectTo(short.port);
    c.on('error', () => undefined);
    const connected = Date.now();
    let sent = 0;
    const dribble = setInterval(() => {
      if (!c.destroyed) c.write(Buffer.from([endlessHandshake('socks5', sent++)]));
    }, 200);
    c.write(Buffer.from([endlessHandshake('socks5', sent++)]));
    try {
      await closed(c, SHORT_HANDSHAKE_MS + 3_000);
    } finally {
      clearInterval(dribble);
    }
    const after = Date.now() - connected;
    assert.ok(
      after >= SHORT_HANDSHAKE_MS - 50 && after < SHORT_HANDSHAKE_MS + 500,
      `cut ${after} ms after connecting`,
    );
    assert.ok(sent >= 5, `it kept sending (${sent} bytes) and was cut all the same`);
    await short.waitFor(
      () => (short.count(/handshake timed out; closing .*timeout_ms=1000/) === 1 ? true : undefined),
      'the "handshake timed out" line',
      2_000,
    );
  });

  test(`${SLOW_CLIENTS} slowloris clients do not stop a normal client from being served, and all are cut at the timeout`, async () => {
    const restFds = openFds(crowd.pid);
    const timedOutBefore = crowd.count(/handshake timed out/);
    const slow: { socket: Socket; kind: 'socks5' | 'socks4'; sent: number; at: number; cutAfter?: number }[] =
      [];
    // Connect them all (200 at a time), each sending its first byte at once.
    let next = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (next < SLOW_CLIENTS) {
          const kind = next++ % 2 === 0 ? 'socks5' : 'socks4';
          // From before the connect: the host's timer starts at accept, which is no earlier.
          const at = Date.now();
          const socket = await connectTo(crowd.port);
          socket.on('error', () => undefined);
          const client: (typeof slow)[number] = { socket, kind, sent: 1, at };
          socket.once('close', () => {
            client.cutAfter = Date.now() - client.at;
          });
          socket.write(Buffer.from([endlessHandshake(kind, 0)]));
          slow.push(client);
        }
      }),
    );
    const rampMs = Date.now() - Math.min(...slow.map((c) => c.at));
    // Then a byte now and then: each client every ~250 ms, 40 clients per 10 ms tick.
    let turn = 0;
    const dribble = setInterval(() => {
      for (let k = 0; k < 40; k++) {
        const c = slow[turn++ % slow.length]!;
        if (!c.socket.destroyed) c.socket.write(Buffer.from([endlessHandshake(c.kind, c.sent++)]));
      }
    }, 10);
    try {
      await waitFor(() => openFds(crowd.pid) >= restFds + SLOW_CLIENTS, 'the host to hold every slow client');
      assert.equal(
        slow.filter((c) => c.cutAfter !== undefined).length,
        0,
        `all ${SLOW_CLIENTS} are open (connected in ${rampMs} ms)`,
      );

      // A normal client among them: CONNECT and an echo, promptly.
      const started = Date.now();
      const normal = await openTunnel(crowd.port, { host: '127.0.0.1', port: echo.port }, 2_000);
      assert.equal(await echoes(normal, 'served', 2_000), 'served');
      const servedMs = Date.now() - started;
      normal.destroy();
      assert.ok(servedMs < 2_000, `served in ${servedMs} ms`);
      assert.equal(
        slow.filter((c) => c.cutAfter !== undefined).length,
        0,
        'the slow clients were all still held while it was served',
      );

      // Every slow client is cut by the host at its handshake timeout, however it dribbles.
      await waitFor(
        () => slow.every((c) => c.cutAfter !== undefined),
        'every slow client to be cut',
        CROWD_HANDSHAKE_MS + rampMs + 3_000,
      );
      const cuts = slow.map((c) => c.cutAfter!);
      const earliest = Math.min(...cuts);
      const latest = Math.max(...cuts);
      assert.ok(earliest >= CROWD_HANDSHAKE_MS - 50, `one was cut after ${earliest} ms`);
      assert.ok(latest < CROWD_HANDSHAKE_MS + 1_000, `one was cut only after ${latest} ms`);
      await waitFor(
        () => crowd.count(/handshake timed out/) === timedOutBefore + SLOW_CLIENTS,
        'one "handshake timed out" line per slow client',
        3_000,
      );
      await waitFor(() => openFds(crowd.pid) === restFds, 'the host to free every descriptor', 3_000);
      const bytes = slow.reduce((sum, c) => sum + c.sent, 0);
      console.log(
        `# ${SLOW_CLIENTS} slowloris clients (connected in ${rampMs} ms, ${bytes} bytes dribbled): ` +
          `normal client served in ${servedMs} ms; all cut ${earliest}-${latest} ms after connecting`,
      );
    } finally {
      clearInterval(dribble);
      for (const c of slow) c.socket.destroy();
    }
  });
});
