/**
 * Upstreams for outbound tests, on loopback only: the Debian servers microsocks and danted as
 * child processes (each stopped by the PID, or for danted the process group, that we started),
 * and scripted fakes for what no real server does on purpose (silence, garbage).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteReader, connectTo } from './net.ts';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** A port nothing listens on (it was free a moment ago; good enough on loopback). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await connectTo(port);
      s.destroy();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// ---- scripted fakes -------------------------------------------------------------------------

export interface Scripted {
  readonly port: number;
  /** Bytes received per connection, in order. */
  readonly received: Buffer[];
  /** Connections accepted so far. */
  readonly accepted: () => number;
  /** Connections whose client has neither closed nor half-closed (a client that gave up must). */
  readonly open: () => number;
  close(): Promise<void>;
}

/** A fake upstream that runs `script` on each connection (the socket is never closed by it). */
export function startScripted(
  script: (socket: Socket, reader: ByteReader) => Promise<void> | void,
): Promise<Scripted> {
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const live = new Set<Socket>();
  let accepted = 0;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted++;
    sockets.add(socket);
    live.add(socket);
    socket.once('end', () => live.delete(socket));
    socket.once('close', () => {
      sockets.delete(socket);
      live.delete(socket);
    });
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk]);
    });
    socket.on('error', () => undefined);
    Promise.resolve(script(socket, new ByteReader(socket))).catch(() => socket.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        received,
        accepted: () => accepted,
        open: () => live.size,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}

// ---- real servers ---------------------------------------------------------------------------

export interface Daemon {
  readonly port: number;
  readonly output: () => string;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess, pid: number | undefined): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    process.kill(pid, 'SIGTERM');
  });
}

/** Starts microsocks on loopback; stopped by its own PID. */
export async function startMicrosocks(auth?: Credentials): Promise<Daemon> {
  const port = await freePort();
  const args = ['-i', '127.0.0.1', '-p', String(port)];
  if (auth) args.push('-u', auth.username, '-P', auth.password);
  const child = spawn('/usr/bin/microsocks', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const stop = (): Promise<void> => stopChild(child, child.pid);
  try {
    await waitForPort(port);
  } catch (error) {
    await stop();
    throw new Error(`microsocks did not start: ${output}`, { cause: error });
  }
  return { port, output: () => output, stop };
}

/** The system account danted checks `socksmethod: username` against. */
export const DANTE_USER: Credentials = { username: 'switchyard-test', password: 'switchyard-test-7c1e' };

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates DANTE_USER when missing (no home, no login shell) and sets its password. Needs root,
 * as the tests have here and in CI. Test files run in parallel and useradd/chpasswd lock the
 * password files, so a lost race is retried rather than failed.
 */
export async function ensureDanteUser(): Promise<Credentials> {
  const { username, password } = DANTE_USER;
  let lastError: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      if (!userExists(username)) {
        execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', username], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
      }
      execFileSync('chpasswd', [], { input: `${username}:${password}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
      return DANTE_USER;
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 100)));
    }
  }
  throw new Error(`cannot set up the system user ${username} for danted`, { cause: lastError });
}

export interface DanteOptions {
  /** 'username' checks RFC 1929 credentials against the system password database (DANTE_USER). */
  readonly socksmethod?: 'none' | 'username';
}

export interface Dante extends Daemon {
  readonly log: () => string;
}

/** Starts danted in its own process group; stopped by that group. */
export async function startDante(options: DanteOptions = {}): Promise<Dante> {
  const method = options.socksmethod ?? 'none';
  if (method === 'username') await ensureDanteUser();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-dante-'));
  const logFile = join(dir, 'dante.log');
  const conf = join(dir, 'danted.conf');
  writeFileSync(
    conf,
    [
      `logoutput: ${logFile}`,
      `internal: 127.0.0.1 port = ${port}`,
      'external: 127.0.0.1',
      'clientmethod: none',
      `socksmethod: ${method}`,
      'user.privileged: root',
      'user.unprivileged: nobody',
      'timeout.negotiate: 30',
      'client pass { from: 127.0.0.0/8 to: 0/0 }',
      // danted wants each keyword of a block on its own line.
      [
        'socks pass {',
        '  from: 127.0.0.0/8 to: 0/0',
        '  command: connect bind udpassociate',
        `  socksmethod: ${method}`,
        '  log: connect error',
        '}',
      ].join('\n'),
      'socks pass { from: 0/0 to: 0/0  command: bindreply udpreply }',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/sbin/danted', ['-f', conf, '-p', join(dir, 'danted.pid'), '-N', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const pgid = child.pid;
  const stop = async (): Promise<void> => {
    if (pgid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // danted forks helpers into the group we created for it: stop that group only.
      process.kill(-pgid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port);
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    await stop();
    throw new Error(`danted did not start: ${output}${log}`, { cause: error });
  }
  return {
    port,
    output: () => output,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop,
  };
}
