/**
 * The owner check's exact lookup through netlink sock_diag (native-host/native/sockdiag.c,
 * compiled into dist/host/sockdiag.node by the build the test command runs first) against the
 * /proc/net/tcp scan it replaces, on real loopback connections: both must name the same socket
 * (uid and inode), which must be the client's own (the inode behind its descriptor). A socket
 * that is gone, in TIME_WAIT, or only a listener is no answer, and the owner check refuses it.
 * Then the ways around the addon: SWITCHYARD_OWNER_LOOKUP=proc, a kernel that cannot be asked
 * (EMFILE), and a host without sockdiag.node (serve warns and scans; doctor warns with the fix;
 * =netlink refuses to start), each in a process of its own since the choice is made once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { compileAccess } from '../../native-host/src/policy/access.ts';
import {
  clientIdentityStats,
  findClientSocket,
  lookupClientIdentity,
  type SocketEnd,
} from '../../native-host/src/policy/client-identity.ts';
import {
  OWNER_LOOKUP_ENV,
  type SockDiagAddon,
  ownerLookupStatus,
  sockDiag,
} from '../../native-host/src/policy/sockdiag.ts';
import { addressOf } from '../../native-host/src/protocol/address.ts';
import type { TunnelRequest } from '../../native-host/src/server/types.ts';
import { runProgram, socks5Connect, startServe, tempDir, writeConfig } from '../helpers/configs.ts';
import { startEchoServer } from '../helpers/net.ts';
import { HOST_SCRIPT, REPO_ROOT, ensureHostFresh } from '../helpers/switchyard-process.ts';

// The choice is made once per process, from the environment: this process tests the default.
delete process.env[OWNER_LOOKUP_ENV];

const ME = process.getuid?.();
const TIMEOUT = 60_000;
const PYTHON = '/usr/bin/python3';
// A client socket bound to the loopback device before it connects.
const BOUND_CLIENT = [
  'import os, socket, sys',
  'host, port = sys.argv[1], int(sys.argv[2])',
  's = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)',
  "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'lo')",
  's.connect((host, port))',
  'print(os.fstat(s.fileno()).st_ino, flush=True)',
  'sys.stdin.read()',
].join('\n');

interface Pair {
  readonly client: Socket;
  readonly accepted: Socket;
  /** Both ends as our accepted socket sees them, as the owner check is given them. */
  readonly clientEnd: SocketEnd;
  readonly serverEnd: SocketEnd;
  readonly server: Server;
  close(): Promise<void>;
}

/** A listener on `listenHost` and one client connected to it from this process. */
async function connectPair(listenHost: string, connectHost: string): Promise<Pair> {
  const server = createServer();
  server.listen(0, listenHost);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const arrived = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({ host: connectHost, port });
  client.on('error', () => undefined);
  await once(client, 'connect');
  const [accepted] = await arrived;
  accepted.on('error', () => undefined);
  return {
    client,
    accepted,
    clientEnd: { host: accepted.remoteAddress!, port: accepted.remotePort! },
    serverEnd: { host: accepted.localAddress!, port: accepted.localPort! },
    server,
    close: async () => {
      client.destroy();
      accepted.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

/** The inode of the socket behind a Node socket's descriptor: the truth both lookups must find. */
function inodeOf(socket: Socket): string {
  const handle: unknown = Reflect.get(socket, '_handle');
  const fd: unknown = typeof handle === 'object' && handle !== null ? Reflect.get(handle, 'fd') : undefined;
  assert.equal(typeof fd, 'number', 'the socket has a descriptor');
  const link = readlinkSync(`/proc/self/fd/${String(fd)}`);
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  assert.ok(inode !== undefined, link);
  return inode;
}

function addon(): SockDiagAddon {
  const loaded = sockDiag();
  assert.ok(loaded, `sockdiag.node did not load: ${ownerLookupStatus().unavailable}`);
  return loaded;
}

const V4_LOOPBACK = Buffer.from([127, 0, 0, 1]);
const V6_LOOPBACK = Buffer.from([...new Array<number>(15).fill(0), 1]);
const V4_MAPPED_LOOPBACK = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);

/** The /proc/net/tcp state (hex, `06` is TIME_WAIT) of 127.0.0.1:from -> 127.0.0.1:to, if listed. */
function procState(from: number, to: number): string | undefined {
  const address = endianness() === 'LE' ? '0100007F' : '7F000001';
  const end = (port: number): string => `${address}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === end(from) && f[2] === end(to)) return f[3];
  }
  return undefined;
}

async function until(what: string, done: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const ownerOnly = () =>
  compileAccess(
    { access: [], localClients: 'owner', privateDestinations: 'allow' },
    { ownerUid: ME, listenIsLoopback: true },
  );

function connectRequest(client: SocketEnd, local: SocketEnd): TunnelRequest {
  return {
    id: 1,
    protocol: 'socks5',
    command: 'connect',
    destination: addressOf('127.0.0.1', 9),
    client,
    local,
    user: undefined,
  };
}

const gone = (clientPort: number, serverPort: number): string =>
  `no live socket from port ${clientPort} to port ${serverPort} (asked the kernel by netlink sock_diag); the client may have closed`;

describe('owner lookup by netlink sock_diag, in this process', () => {
  test('the addon is built and loaded in this checkout, and lookups use it by default', async () => {
    addon();
    assert.deepEqual(ownerLookupStatus(), {
      method: 'netlink',
      description: 'netlink sock_diag',
      fallback: false,
    });
    const pair = await connectPair('127.0.0.1', '127.0.0.1');
    try {
      const before = clientIdentityStats();
      const identity = await lookupClientIdentity(pair.clientEnd, pair.serverEnd, { program: false });
      const after = clientIdentityStats();
      assert.equal(identity !== undefined && 'uid' in identity ? identity.uid : identity, ME);
      assert.equal(after.netlinkLookups - before.netlinkLookups, 1);
      assert.equal(after.tableReads - before.tableReads, 0);
      assert.equal(after.netlinkFailures, 0);
    } finally {
      await pair.close();
    }
  });

  const kinds = [
    { name: 'IPv4, 127.0.0.1', listen: '127.0.0.1', connect: '127.0.0.1', seen: '127.0.0.1' },
    { name: 'IPv6, ::1', listen: '::1', connect: '::1', seen: '::1' },
    // An AF_INET6 client socket dialling a v4-mapped address: /proc lists it in tcp6 only.
    {
      name: 'dual-stack, ::ffff:127.0.0.1',
      listen: '::',
      connect: '::ffff:127.0.0.1',
      seen: '::ffff:127.0.0.1',
    },
  ];
  for (const kind of kinds) {
    test(`${kind.name}: netlink and the /proc scan find the same socket, the client's, with our uid`, async () => {
      const pair = await connectPair(kind.listen, kind.connect);
      try {
        assert.equal(pair.clientEnd.host, kind.seen);
        const inode = inodeOf(pair.client);
        assert.notEqual(inode, inodeOf(pair.accepted));
        const netlink = await findClientSocket(pair.clientEnd, pair.serverEnd, { lookup: 'netlink' });
        const proc = await findClientSocket(pair.clientEnd, pair.serverEnd, { lookup: 'proc' });
        assert.deepEqual(netlink, { uid: ME, inode, via: 'netlink' });
        assert.deepEqual(proc, { uid: ME, inode, via: 'proc' });
      } finally {
        await pair.close();
      }
    });
  }

  test('an IPv4 question finds a dual-stack AF_INET6 client socket, so one question per IPv4 client does', async () => {
    const pair = await connectPair('::', '::ffff:127.0.0.1');
    try {
      assert.equal(pair.client.localAddress, '::ffff:127.0.0.1', 'the client socket is AF_INET6');
      const inode = Number(inodeOf(pair.client));
      const { clientEnd, serverEnd } = pair;
      const asV4 = addon().lookup(4, V4_LOOPBACK, clientEnd.port, V4_LOOPBACK, serverEnd.port);
      const asMapped = addon().lookup(
        6,
        V4_MAPPED_LOOPBACK,
        clientEnd.port,
        V4_MAPPED_LOOPBACK,
        serverEnd.port,
      );
      assert.deepEqual(asV4, { uid: ME, inode, state: 1 });
      assert.deepEqual(asMapped, { uid: ME, inode, state: 1 });
    } finally {
      await pair.close();
    }
  });

  test('a client bound to the loopback device (SO_BINDTODEVICE, as curl --interface lo) is found too', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const server = createServer();
      server.listen(0, host);
      await once(server, 'listening');
      const arrived = once(server, 'connection') as Promise<[Socket]>;
      // Prints its socket's inode, then holds the connection until its stdin closes.
      const child = spawn(
        PYTHON,
        ['-c', BOUND_CLIENT, host, String((server.address() as AddressInfo).port)],
        {
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      );
      try {
        const [printed] = (await once(child.stdout, 'data')) as [Buffer];
        const [accepted] = await arrived;
        const clientEnd = { host: accepted.remoteAddress!, port: accepted.remotePort! };
        const serverEnd = { host: accepted.localAddress!, port: accepted.localPort! };
        const inode = printed.toString().trim();
        assert.deepEqual(await findClientSocket(clientEnd, serverEnd, { lookup: 'netlink' }), {
          uid: ME,
          inode,
          via: 'netlink',
        });
        assert.deepEqual(await findClientSocket(clientEnd, serverEnd, { lookup: 'proc' }), {
          uid: ME,
          inode,
          via: 'proc',
        });
        accepted.destroy();
      } finally {
        child.stdin.end();
        await once(child, 'close');
        await new Promise<void>((done) => server.close(() => done()));
      }
    }
  });

  test('the client closed first: its end in TIME_WAIT is no answer, and the owner check refuses it', async () => {
    const pair = await connectPair('127.0.0.1', '127.0.0.1');
    try {
      const { clientEnd, serverEnd } = pair;
      const request = connectRequest(clientEnd, serverEnd);
      // While the client lives, the owner (this user) is let through.
      assert.deepEqual(await ownerOnly().evaluate(request), { kind: 'allow' });
      pair.client.end();
      await once(pair.client, 'close');
      await until('the client end is in TIME_WAIT', () => procState(clientEnd.port, serverEnd.port) === '06');
      assert.equal(addon().lookup(4, V4_LOOPBACK, clientEnd.port, V4_LOOPBACK, serverEnd.port), null);
      assert.deepEqual(await findClientSocket(clientEnd, serverEnd, { lookup: 'netlink' }), {
        kind: 'failure',
        reason: gone(clientEnd.port, serverEnd.port),
      });
      // The scan agrees: a TIME_WAIT row has no owner.
      assert.deepEqual(await findClientSocket(clientEnd, serverEnd, { lookup: 'proc' }), {
        kind: 'failure',
        reason: `no socket from port ${clientEnd.port} to port ${serverEnd.port} in /proc/net/tcp or /proc/net/tcp6; the client may have closed`,
      });
      assert.deepEqual(await ownerOnly().evaluate(request), {
        kind: 'deny',
        rule: 'builtin:owner-only',
        reason:
          `could not determine which local user runs this client (${gone(clientEnd.port, serverEnd.port)}); ` +
          'refusing because localClients is "owner"',
      });
    } finally {
      await pair.close();
    }
  });

  test("the server closed first: the client's socket is gone, no answer", async () => {
    const pair = await connectPair('127.0.0.1', '127.0.0.1');
    try {
      const { clientEnd, serverEnd } = pair;
      pair.accepted.end();
      await once(pair.client, 'close');
      await until('the client end is gone from /proc/net/tcp', () => {
        return procState(clientEnd.port, serverEnd.port) === undefined;
      });
      // TIME_WAIT is on the server's side, keyed the other way round: it is not the client.
      assert.equal(procState(serverEnd.port, clientEnd.port), '06');
      assert.equal(addon().lookup(4, V4_LOOPBACK, clientEnd.port, V4_LOOPBACK, serverEnd.port), null);
      assert.deepEqual(await findClientSocket(clientEnd, serverEnd), {
        kind: 'failure',
        reason: gone(clientEnd.port, serverEnd.port),
      });
    } finally {
      await pair.close();
    }
  });

  test("a port with only a listener is no answer (the kernel's fallback to the listener is refused)", async () => {
    for (const [host, bytes, family] of [
      ['127.0.0.1', V4_LOOPBACK, 4],
      ['::1', V6_LOOPBACK, 6],
    ] as const) {
      const server = createServer();
      server.listen(0, host);
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      try {
        // Asked as if the listener were a client connected to some port: the exact lookup
        // misses, falls back to the listening socket on that local port, and that is refused.
        assert.equal(addon().lookup(family, bytes, port, bytes, 1), null, host);
        assert.equal(addon().lookup(family, bytes, port, bytes, port), null, host);
      } finally {
        await new Promise<void>((done) => server.close(() => done()));
      }
    }
  });

  test('arguments of the wrong shape are a TypeError, not a crash', () => {
    const lookup = addon().lookup as (...args: unknown[]) => unknown;
    const invalid = { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' };
    assert.throws(() => lookup(5, V4_LOOPBACK, 1, V4_LOOPBACK, 2), invalid);
    assert.throws(() => lookup(4, V6_LOOPBACK, 1, V4_LOOPBACK, 2), {
      ...invalid,
      message: 'local must be a Buffer of 4 bytes',
    });
    assert.throws(() => lookup(6, V6_LOOPBACK, 1, V6_LOOPBACK, 65536), {
      ...invalid,
      message: 'remotePort must be a port number (0-65535)',
    });
    assert.throws(() => lookup(4, '127.0.0.1', 1, V4_LOOPBACK, 2), invalid);
  });
});

// ---- in processes of their own ----------------------------------------------------------------

const PAIR_SCRIPT = `
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { clientIdentityStats, findClientSocket, lookupClientIdentity } from './native-host/src/policy/client-identity.ts';
import { ownerLookupStatus, sockDiag } from './native-host/src/policy/sockdiag.ts';
// --starve=before-choice: the addon is loaded (that needs a descriptor) but not yet asked
// anything, so its netlink socket is still to be opened when every descriptor is taken;
// --starve=after-choice: as serve does, the choice first (it opens the socket), then starved.
const starve = process.argv.find((a) => a.startsWith('--starve='))?.slice('--starve='.length);
const status = starve === 'before-choice' ? (sockDiag() ? 'loaded' : 'missing') : ownerLookupStatus();
const server = createServer().listen(0, '127.0.0.1');
await once(server, 'listening');
const arrived = once(server, 'connection');
const client = connect(server.address().port, '127.0.0.1');
const [socket] = await arrived;
const client_ = { host: socket.remoteAddress, port: socket.remotePort };
const local = { host: socket.localAddress, port: socket.localPort };
const out = { status };
if (starve) {
  const hogs = [];
  try { for (;;) hogs.push(openSync('/dev/null', 'r')); } catch {}
  out.starved = await findClientSocket(client_, local, { lookup: 'netlink' });
  for (const fd of hogs) closeSync(fd);
  out.starvedStats = clientIdentityStats();
}
out.identity = await lookupClientIdentity(client_, local, { program: false });
out.via = (await findClientSocket(client_, local)).via;
out.stats = clientIdentityStats();
client.destroy();
socket.destroy();
server.close();
console.log(JSON.stringify(out));
`;

interface PairRun {
  readonly status: unknown;
  readonly identity: unknown;
  readonly via: string;
  readonly stats: Record<string, unknown>;
  readonly starved?: unknown;
  readonly starvedStats?: Record<string, unknown>;
}

async function runPairScript(env: Record<string, string>, args: readonly string[] = []): Promise<PairRun> {
  const r = await runProgram(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', PAIR_SCRIPT, '--', ...args],
    { cwd: REPO_ROOT, env, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as PairRun;
}

describe('owner lookup: the environment variable and the fallbacks', () => {
  const temps: string[] = [];
  after(() => {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  });

  test(`${OWNER_LOOKUP_ENV}=proc: the /proc scan is used, and still identifies the client`, {
    timeout: TIMEOUT,
  }, async () => {
    const run = await runPairScript({ [OWNER_LOOKUP_ENV]: 'proc' });
    assert.deepEqual(run.status, {
      method: 'proc',
      description: `/proc/net/tcp scan (${OWNER_LOOKUP_ENV}=proc)`,
      fallback: false,
    });
    assert.equal((run.identity as { uid?: number }).uid, ME);
    assert.equal(run.via, 'proc');
    assert.equal(run.stats.netlinkLookups, 0);
    assert.ok(Number(run.stats.tableReads) >= 1, JSON.stringify(run.stats));
  });

  test('a kernel that cannot be asked (EMFILE opening the netlink socket): that lookup falls back to the scan, counted', {
    timeout: TIMEOUT,
  }, async () => {
    const run = await runPairScript({}, ['--starve=before-choice']);
    assert.equal(run.status, 'loaded');
    // The scan has no descriptor either, so the lookup fails closed, saying where.
    assert.deepEqual(run.starved, {
      kind: 'failure',
      reason: 'EMFILE reading /proc/net/tcp',
      code: 'EMFILE',
    });
    assert.deepEqual(run.starvedStats, {
      lookups: 0,
      tableReads: 1,
      netlinkLookups: 1,
      netlinkFailures: 1,
      netlinkError: 'EMFILE: sock_diag socket: Too many open files',
    });
    // With descriptors back, the next lookup opens the netlink socket and is answered by it.
    assert.equal((run.identity as { uid?: number }).uid, ME);
    assert.equal(run.via, 'netlink');
    assert.equal(run.stats.netlinkFailures, 1);
    assert.equal(run.stats.tableReads, 1);
  });

  test('the netlink socket is opened when the choice is made (serve: at start-up), so a lookup never needs a descriptor', {
    timeout: TIMEOUT,
  }, async () => {
    // As serve: the status first; then every descriptor is taken before the first lookup.
    const run = await runPairScript({}, ['--starve=after-choice']);
    assert.deepEqual(run.status, { method: 'netlink', description: 'netlink sock_diag', fallback: false });
    const starved = run.starved as { uid?: number; via?: string };
    assert.deepEqual([starved.uid, starved.via], [ME, 'netlink'], JSON.stringify(run.starved));
    assert.equal(run.starvedStats?.netlinkLookups, 1);
    assert.equal(run.starvedStats?.netlinkFailures, 0);
    assert.equal(run.starvedStats?.tableReads, 0);
  });

  test('serve says in its listening line that the owner check uses netlink sock_diag', {
    timeout: TIMEOUT,
  }, async () => {
    ensureHostFresh();
    const dir = await tempDir();
    temps.push(dir.dir);
    const config = dir.path('config.json');
    await writeConfig(config, {});
    const host = await startServe({ args: ['--listen', '127.0.0.1:0', '--config', config] });
    try {
      // stderr may trail the address on stdout: wait for the line.
      const [line] = await host.waitForLog(/^\S+ info {2}listening .*$/m);
      assert.match(line, / owner_check="netlink sock_diag"$/);
      assert.doesNotMatch(host.stderr(), / warn /);
    } finally {
      await host.stop();
    }
  });

  test('a host without sockdiag.node: serve warns and the owner check scans /proc; doctor warns with the fix; =netlink refuses to start', {
    timeout: TIMEOUT,
  }, async () => {
    ensureHostFresh();
    // A copy of the bundle in a directory of its own (inside the checkout, so that it finds
    // node_modules), with no addon beside it.
    mkdirSync(join(REPO_ROOT, 'dist'), { recursive: true });
    const bare = mkdtempSync(join(REPO_ROOT, 'dist', 'no-sockdiag-'));
    temps.push(bare);
    const script = join(bare, 'switchyard.js');
    copyFileSync(HOST_SCRIPT, script);
    const missing = `sockdiag.node not built: no ${join(bare, 'sockdiag.node')}`;
    const dir = await tempDir();
    temps.push(dir.dir);
    const config = dir.path('config.json');
    await writeConfig(config, {});

    const refused = await runProgram(process.execPath, [script, 'serve', '--config', config], {
      env: { [OWNER_LOOKUP_ENV]: 'netlink' },
      timeoutMs: 20_000,
    });
    assert.equal(refused.code, 2);
    assert.equal(
      refused.stderr,
      `switchyard: ${OWNER_LOOKUP_ENV}=netlink, but ${missing} (npm run build:host compiles it; it needs gcc, libc6-dev and linux-libc-dev)\n`,
    );

    const echo = await startEchoServer();
    const host = await startServe({ script, args: ['--listen', '127.0.0.1:0', '--config', config] });
    try {
      const scan = `/proc/net/tcp scan (${missing})`;
      const [line] = await host.waitForLog(/^\S+ info {2}listening .*$/m);
      assert.ok(line.endsWith(` owner_check=${JSON.stringify(scan)}`), line);
      await host.waitForLog(new RegExp(`^\\S+ warn {2}owner check: ${escapeRegExp(scan)}$`, 'm'));
      // The owner (this user) still gets through: the scan found who runs the client.
      const { rep, socket } = await socks5Connect(host.port, '127.0.0.1', echo.port);
      socket.destroy();
      assert.equal(rep, 0);
    } finally {
      await host.stop();
      await echo.close();
    }

    const doctor = await runProgram(process.execPath, [script, 'doctor', '--json', '--config', config], {
      env: {
        HOME: dir.dir,
        XDG_CONFIG_HOME: dir.path('config'),
        XDG_DATA_HOME: dir.path('data'),
        XDG_RUNTIME_DIR: dir.dir,
        SWITCHYARD_CREDENTIAL_STORE: 'file',
      },
      // Outside the checkout, so that doctor names the host by its full path.
      cwd: dir.dir,
      timeoutMs: 60_000,
    });
    const checks = (JSON.parse(doctor.stdout) as { checks: { name: string }[] }).checks;
    assert.deepEqual(
      checks.find((c) => c.name === 'owner check'),
      {
        name: 'owner check',
        status: 'warn',
        summary: `/proc/net/tcp scan (${missing}): it works, but reads every TCP socket on the machine, slow when many are open`,
        details: [],
        fix:
          'install a C compiler and headers (Debian, as root: apt-get install gcc libc6-dev linux-libc-dev), then: ' +
          `cd ${REPO_ROOT.replace(/\/$/, '')} && rm -f dist/host/sockdiag.node && node scripts/build-native.mjs; ` +
          `then node ${script} stop (the next start uses netlink sock_diag)`,
      },
      doctor.stdout,
    );
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
