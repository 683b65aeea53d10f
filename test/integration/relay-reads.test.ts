/**
 * The destination side of a direct tunnel reads into the relay's own buffers (a shared small
 * one while quiet, a private large one during a burst, reused once written out; relay.ts).
 * These tests check that no byte is lost, reordered or overwritten across those switches, and
 * that the service really runs with the V8 options that make bulk relaying cheap.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectOutbound } from '../../native-host/src/outbound/direct.ts';
import type { Outbound } from '../../native-host/src/outbound/outbound.ts';
import { SERVICE_NODE_FLAGS } from '../../native-host/src/service/node-flags.ts';
import { startServe, tempDir, writeConfig } from '../helpers/configs.ts';
import { echoes, openTunnel } from '../helpers/socks-client.ts';
import { type Scripted, startScripted } from '../helpers/reference-servers.ts';
import { type TestServer, startSocksServer, waitForLog } from '../helpers/socks-server.ts';
import { HOST_SCRIPT } from '../helpers/switchyard-process.ts';

/** Bytes that differ everywhere, so a chunk written twice or overwritten changes the digest. */
function pattern(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Everything the tunnel delivers until the destination ends, read `slowly` when asked. */
function readAll(
  socket: Socket,
  options: { slowEveryBytes?: number; pauseMs?: number } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let sinceLastPause = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      sinceLastPause += chunk.length;
      if (options.slowEveryBytes !== undefined && sinceLastPause >= options.slowEveryBytes) {
        sinceLastPause = 0;
        socket.pause();
        setTimeout(() => socket.resume(), options.pauseMs ?? 10);
      }
    });
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
    socket.resume();
  });
}

describe('relay reads into reused buffers', () => {
  let socks: TestServer;
  const destinations: Scripted[] = [];
  /** A destination that runs `script` on each connection, closed after the tests. */
  const destination = async (script: (socket: Socket) => Promise<void> | void): Promise<Scripted> => {
    const started = await startScripted(script);
    destinations.push(started);
    return started;
  };
  before(async () => {
    socks = await startSocksServer({ timeouts: { idleMs: 0 } });
  });
  after(async () => {
    await socks.close();
    await Promise.all(destinations.map((d) => d.close()));
  });

  test('a 24 MiB download to a client that keeps pausing arrives byte for byte', async () => {
    const body = pattern(24 * 1024 * 1024, 7);
    const dest = await destination((socket) => {
      socket.end(body);
    });
    const tunnel = await openTunnel(socks.port, { host: '127.0.0.1', port: dest.port });
    const got = await readAll(tunnel, { slowEveryBytes: 1024 * 1024, pauseMs: 15 });
    assert.equal(got.length, body.length);
    assert.equal(sha(got), sha(body));
  });

  test('small replies between bursts arrive intact and in order (shared, own, shared buffers)', async () => {
    const parts: Buffer[] = [
      pattern(3 * 1024 * 1024, 11),
      ...Array.from({ length: 12 }, (_, i) => Buffer.from(`small reply ${i}\n`)),
      pattern(2 * 1024 * 1024 + 17, 13),
      Buffer.from('x'),
      pattern(40_000, 17),
    ];
    const expected = Buffer.concat(parts);
    const dest = await destination(async (socket) => {
      for (const part of parts) {
        // A pause before each small part lets the relay see small reads on their own.
        if (part.length < 100) await sleep(5);
        socket.write(part);
      }
      socket.end();
    });
    const tunnel = await openTunnel(socks.port, { host: '127.0.0.1', port: dest.port });
    const got = await readAll(tunnel);
    assert.equal(got.length, expected.length);
    assert.equal(sha(got), sha(expected));
  });

  test('mid-sized chunks queued for a client that stopped reading are not overwritten by the next read', async () => {
    // 8 KiB reads stay in the socket's own buffer, and with the client's socket full each one
    // waits in the queue under the high-water mark: the next read must go to another buffer.
    const parts = [
      pattern(64 * 1024, 31),
      ...Array.from({ length: 600 }, (_, i) => pattern(8 * 1024, 1000 + i)),
    ];
    const expected = Buffer.concat(parts);
    const dest = await destination(async (socket) => {
      for (const part of parts) {
        if (!socket.write(part)) await new Promise((resolve) => socket.once('drain', resolve));
        await new Promise((resolve) => setImmediate(resolve));
      }
      socket.end();
    });
    const tunnel = await openTunnel(socks.port, { host: '127.0.0.1', port: dest.port });
    tunnel.pause();
    await sleep(400);
    const got = await readAll(tunnel);
    assert.equal(got.length, expected.length);
    assert.equal(sha(got), sha(expected));
  });

  test('what the destination sends before the tunnel starts reaches the client first, then its end', async () => {
    // An outbound that hands the socket over late, the way a failover route can: the banner
    // (and the destination's end) arrive while no relay is listening yet.
    const direct = new DirectOutbound({ connectTimeoutMs: 3_000, bindTimeoutMs: 3_000 });
    const late: Outbound = {
      label: 'late',
      connect: async (destinationAddress, options) => {
        const connected = await direct.connect(destinationAddress, options);
        await sleep(150);
        return connected;
      },
      bind: (d, l, o) => direct.bind(d, l, o),
    };
    const lateSocks = await startSocksServer({ dispatch: () => ({ kind: 'allow', outbound: late }) });
    try {
      const banner = Buffer.concat([Buffer.from('SSH-2.0-banner\r\n'), pattern(20_000, 23)]);
      const dest = await destination((socket) => {
        socket.end(banner);
      });
      const tunnel = await openTunnel(lateSocks.port, { host: '127.0.0.1', port: dest.port });
      const got = await readAll(tunnel);
      assert.equal(sha(got), sha(banner));
    } finally {
      await lateSocks.close();
    }
  });

  test('a destination that resets mid-burst ends only its tunnel, and the next one is served', async () => {
    // It waits for the client's first byte, so the reset comes after the tunnel is up.
    const dest = await destination((socket) => {
      socket.once('data', () => socket.write(pattern(1024 * 1024, 41), () => socket.resetAndDestroy()));
    });
    const tunnel = await openTunnel(socks.port, { host: '127.0.0.1', port: dest.port });
    let received = 0;
    tunnel.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    tunnel.resume();
    tunnel.write('go');
    const ended = await new Promise<string>((resolve) => {
      tunnel.once('error', (error) => resolve(`error ${(error as NodeJS.ErrnoException).code}`));
      tunnel.once('close', () => resolve('close'));
    });
    assert.ok(ended === 'close' || ended.startsWith('error'), ended);
    assert.ok(received <= 1024 * 1024, `${received} bytes, never more than were sent`);
    // The host may see the reset as a read error or as the end of the stream (here it reads as
    // the end, with Node's own reads as with the relay's buffers): either way the tunnel is over
    // and logged once.
    const line = await waitForLog(socks, 'tunnel closed', `127.0.0.1:${dest.port}`);
    assert.match(line, /result=(error|done)/);
    const echo = await destination((socket) => {
      socket.pipe(socket);
    });
    const next = await openTunnel(socks.port, { host: '127.0.0.1', port: echo.port });
    assert.equal(await echoes(next, 'still serving'), 'still serving');
    next.destroy();
  });

  test('an echo of every size from 1 byte to 100 KB comes back unchanged', async () => {
    const dest = await destination((socket) => {
      socket.pipe(socket);
    });
    const tunnel = await openTunnel(socks.port, { host: '127.0.0.1', port: dest.port });
    const sizes = [1, 2, 100, 4096, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 65_536, 100_000, 3];
    const sent = Buffer.concat(sizes.map((size, i) => pattern(size, 100 + i)));
    const received = readAll(tunnel);
    for (let i = 0; i < sizes.length; i++) {
      tunnel.write(pattern(sizes[i]!, 100 + i));
      await sleep(3);
    }
    tunnel.end();
    const got = await received;
    assert.equal(sha(got), sha(sent));
  });
});

describe('the service executable', () => {
  test('starts node with the service V8 options from its #! line', async () => {
    const firstLine = (await readFile(HOST_SCRIPT, 'utf8')).split('\n', 1)[0];
    assert.equal(firstLine, `#!/usr/bin/env -S node ${SERVICE_NODE_FLAGS.join(' ')}`);
    const dir = await tempDir();
    try {
      const config = dir.path('config.json');
      await writeConfig(config, {});
      const serve = await startServe({
        args: ['--listen', '127.0.0.1:0', '--config', config, '--quiet'],
        asExecutable: true,
      });
      try {
        const argv = (await readFile(`/proc/${serve.pid}/cmdline`, 'utf8')).split('\0');
        for (const flag of SERVICE_NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
      } finally {
        await serve.stop();
      }
    } finally {
      await dir.remove();
    }
  });
});
