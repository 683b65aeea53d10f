import assert from 'node:assert/strict';
import { type ChildProcess, type ExecFileSyncOptions, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, realpathSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { after, before, describe, test } from 'node:test';
import {
  clientIdentityStats,
  type IdentityFailure,
  isIdentityFailure,
  lookupClientIdentity,
  ownerCheckSupported,
  type SocketEnd,
} from '../../native-host/src/policy/client-identity.ts';
import type { OwnerLookupMethod } from '../../native-host/src/policy/sockdiag.ts';

const LINUX = process.platform === 'linux';
const ROOT = process.getuid?.() === 0;
const OTHER_USER = 'switchyard-other';
const PYTHON = '/usr/bin/python3';
const SETPRIV = '/usr/bin/setpriv';
// Both ways of finding a client's socket answer every question here alike (the netlink one needs
// the addon the test command builds; owner-lookup-netlink.test.ts checks it is there).
const METHODS: readonly OwnerLookupMethod[] = ['netlink', 'proc'];

interface Listener {
  readonly server: Server;
  readonly port: number;
  /** The next accepted socket, with both ends as the server sees them. */
  accept(): Promise<{ socket: Socket; client: SocketEnd; local: SocketEnd }>;
  close(): Promise<void>;
}

async function listen(host: string): Promise<Listener> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async accept() {
      const [socket] = (await once(server, 'connection')) as [Socket];
      return {
        socket,
        client: { host: socket.remoteAddress!, port: socket.remotePort! },
        local: { host: socket.localAddress!, port: socket.localPort! },
      };
    },
    close: () =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}

/** Connects from this process and looks the client up from the server's side. */
async function lookupOwnClient(
  listenHost: string,
  connectHost: string,
  program: boolean,
  lookup: OwnerLookupMethod,
) {
  const listener = await listen(listenHost);
  try {
    const accepted = listener.accept();
    const client = connect({ host: connectHost, port: listener.port });
    client.on('error', () => undefined);
    const { client: clientEnd, local } = await accepted;
    const identity = await lookupClientIdentity(clientEnd, local, { program, lookup });
    client.destroy();
    return { identity, clientEnd, local };
  } finally {
    await listener.close();
  }
}

for (const lookup of METHODS) {
  describe(`lookupClientIdentity by ${lookup}: this process`, () => {
    const me = { uid: process.getuid?.(), userName: userInfo().username };
    const program = realpathSync(process.execPath);

    test('an IPv4 client is identified with our uid, pid and program', async () => {
      const { identity } = await lookupOwnClient('127.0.0.1', '127.0.0.1', true, lookup);
      assert.deepEqual(identity, { ...me, pid: process.pid, program });
    });

    test('without program: true, no process walk', async () => {
      const { identity } = await lookupOwnClient('127.0.0.1', '127.0.0.1', false, lookup);
      assert.deepEqual(identity, me);
    });

    test('an IPv6 client on ::1', async () => {
      const { identity, clientEnd } = await lookupOwnClient('::1', '::1', true, lookup);
      assert.equal(clientEnd.host, '::1');
      assert.deepEqual(identity, { ...me, pid: process.pid, program });
    });

    test('an IPv4 client of a dual-stack listener (seen as ::ffff:127.0.0.1)', async () => {
      const { identity, clientEnd } = await lookupOwnClient('::', '127.0.0.1', true, lookup);
      assert.equal(clientEnd.host, '::ffff:127.0.0.1');
      assert.deepEqual(identity, { ...me, pid: process.pid, program });
    });

    test('an IPv6 socket dialling a mapped address (listed in tcp6)', async () => {
      const { identity, clientEnd } = await lookupOwnClient('::', '::ffff:127.0.0.1', true, lookup);
      assert.equal(clientEnd.host, '::ffff:127.0.0.1');
      assert.deepEqual(identity, { ...me, pid: process.pid, program });
    });

    test('no such connection gives a typed failure, not undefined', async () => {
      const listener = await listen('127.0.0.1');
      try {
        const before = clientIdentityStats();
        const missing = await lookupClientIdentity(
          { host: '127.0.0.1', port: 1 },
          { host: '127.0.0.1', port: listener.port },
          { program: true, lookup },
        );
        const after = clientIdentityStats();
        assert.ok(isIdentityFailure(missing), JSON.stringify(missing));
        assert.equal(missing.code, undefined);
        if (lookup === 'netlink') {
          assert.equal(
            missing.reason,
            `no live socket from port 1 to port ${listener.port} (asked the kernel by netlink sock_diag); the client may have closed`,
          );
          // One exact question, and no table read.
          assert.equal(after.netlinkLookups - before.netlinkLookups, 1);
          assert.equal(after.tableReads - before.tableReads, 0);
        } else {
          assert.equal(
            missing.reason,
            `no socket from port 1 to port ${listener.port} in /proc/net/tcp or /proc/net/tcp6; the client may have closed`,
          );
          // tcp, then tcp6 (an AF_INET6 socket dialling a mapped address), then both once more.
          assert.equal(after.tableReads - before.tableReads, 4);
          assert.equal(after.netlinkLookups - before.netlinkLookups, 0);
        }
      } finally {
        await listener.close();
      }
    });
  });
}

/** Runs `fn` with every descriptor this process could still open taken, then gives them back. */
async function withoutDescriptors<T>(fn: () => Promise<T>): Promise<T> {
  const hogs: number[] = [];
  try {
    try {
      for (;;) hogs.push(openSync('/dev/null', 'r'));
    } catch (error) {
      assert.equal((error as NodeJS.ErrnoException).code, 'EMFILE');
    }
    return await fn();
  } finally {
    for (const fd of hogs) closeSync(fd);
  }
}

describe('lookupClientIdentity: this process', () => {
  const me = { uid: process.getuid?.(), userName: userInfo().username };

  test('nonsense, or ends of two families, give a typed failure', async () => {
    for (const clientHost of ['example.com', '127.0.0.1']) {
      assert.deepEqual(
        await lookupClientIdentity(
          { host: clientHost, port: 1 },
          { host: '::1', port: 2 },
          { program: false },
        ),
        { kind: 'failure', reason: `${clientHost} and ::1 are not the two ends of one local TCP connection` },
      );
    }
  });

  test('ownerCheckSupported: yes on Linux', () => {
    assert.equal(ownerCheckSupported(), LINUX);
  });

  test('by proc: when /proc/net/tcp cannot be opened (EMFILE), a failure that says so', async () => {
    const listener = await listen('127.0.0.1');
    try {
      const accepted = listener.accept();
      const client = connect({ host: '127.0.0.1', port: listener.port });
      client.on('error', () => undefined);
      const { client: clientEnd, local } = await accepted;
      // Every descriptor left taken, so that the lookup's open() of the table fails.
      const identity = await withoutDescriptors(() =>
        lookupClientIdentity(clientEnd, local, { program: false, lookup: 'proc' }),
      );
      const expected: IdentityFailure = {
        kind: 'failure',
        reason: 'EMFILE reading /proc/net/tcp',
        code: 'EMFILE',
      };
      assert.deepEqual(identity, expected);
      // With descriptors back, the same client is identified.
      const again = await lookupClientIdentity(clientEnd, local, { program: false, lookup: 'proc' });
      assert.deepEqual(again, { uid: me.uid, userName: me.userName });
      client.destroy();
    } finally {
      await listener.close();
    }
  });

  test('by netlink: with its socket open, a lookup needs no descriptor, so EMFILE does not stop it', async () => {
    const listener = await listen('127.0.0.1');
    try {
      const accepted = listener.accept();
      const client = connect({ host: '127.0.0.1', port: listener.port });
      client.on('error', () => undefined);
      const { client: clientEnd, local } = await accepted;
      // Opens the netlink socket (kept for the process) and takes a fresh look at /etc/passwd.
      const first = await lookupClientIdentity(clientEnd, local, { program: false, lookup: 'netlink' });
      assert.deepEqual(first, me);
      const before = clientIdentityStats();
      const identity = await withoutDescriptors(() =>
        lookupClientIdentity(clientEnd, local, { program: false, lookup: 'netlink' }),
      );
      const after = clientIdentityStats();
      assert.deepEqual(identity, me);
      assert.equal(after.netlinkLookups - before.netlinkLookups, 1);
      assert.equal(after.netlinkFailures - before.netlinkFailures, 0);
      assert.equal(after.tableReads - before.tableReads, 0);
      client.destroy();
    } finally {
      await listener.close();
    }
  });

  test('by proc: concurrent lookups share passes over the table, and each gets its own row', async () => {
    const listener = await listen('127.0.0.1');
    const clients: Socket[] = [];
    try {
      const ends: { client: SocketEnd; local: SocketEnd }[] = [];
      for (let i = 0; i < 20; i++) {
        const accepted = listener.accept();
        const client = connect({ host: '127.0.0.1', port: listener.port });
        client.on('error', () => undefined);
        clients.push(client);
        ends.push(await accepted);
      }
      const before = clientIdentityStats();
      const identities = await Promise.all([
        ...ends.map((e) => lookupClientIdentity(e.client, e.local, { program: false, lookup: 'proc' })),
        // One that is not there: it must not hold up or confuse the others.
        lookupClientIdentity(
          { host: '127.0.0.1', port: 1 },
          { host: '127.0.0.1', port: listener.port },
          { program: false, lookup: 'proc' },
        ),
      ]);
      const after = clientIdentityStats();
      for (const identity of identities.slice(0, -1)) assert.deepEqual(identity, me);
      assert.ok(isIdentityFailure(identities.at(-1)));
      assert.equal(after.lookups - before.lookups, 21);
      // One pass over tcp finds the 20; the missing one costs tcp6, tcp, tcp6 more.
      assert.ok(after.tableReads - before.tableReads <= 4, `${after.tableReads - before.tableReads} reads`);
    } finally {
      for (const c of clients) c.destroy();
      await listener.close();
    }
  });
});

const CLIENT_SCRIPT = [
  'import socket, sys',
  's = socket.create_connection((sys.argv[1], int(sys.argv[2])))',
  // Hold the connection until the server closes it: the lookup needs the socket alive.
  's.recv(1)',
].join('\n');

const QUIET: ExecFileSyncOptions = { stdio: ['ignore', 'pipe', 'ignore'] };

interface OsUser {
  readonly uid: number;
  readonly gid: number;
  /** Whether this call created it (just now: /etc/passwd changed). */
  readonly created: boolean;
}

function ensureUser(name: string): OsUser {
  const ids = (created: boolean): OsUser => ({
    uid: Number(execFileSync('id', ['-u', name], QUIET).toString().trim()),
    gid: Number(execFileSync('id', ['-g', name], QUIET).toString().trim()),
    created,
  });
  try {
    return ids(false);
  } catch {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], {
        stdio: 'ignore',
      });
    } catch {
      // Created meanwhile by a concurrent run: the second lookup tells.
    }
    return ids(true);
  }
}

/** How long a look at /etc/passwd is trusted by the lookup (PASSWD_RECHECK_MS there). */
const PASSWD_RECHECK_MS = 1_000;

// These tests need Linux /proc, root (to create a user and run a client as it), python3 and
// setpriv; the test command installs what is missing, so a missing piece is a failure here.
before(() => {
  assert.ok(LINUX, 'client identity reads Linux /proc');
  assert.ok(ROOT, 'running a client as another OS user needs root');
  assert.ok(existsSync(PYTHON) && existsSync(SETPRIV), `needs ${PYTHON} and ${SETPRIV}`);
});

describe('lookupClientIdentity: another OS user', () => {
  let other: OsUser;
  const children: ChildProcess[] = [];
  const python = existsSync(PYTHON) ? realpathSync(PYTHON) : PYTHON;

  before(async () => {
    other = ensureUser(OTHER_USER);
    // A user added just now is named once the lookups' look at /etc/passwd is renewed.
    if (other.created) await new Promise((resolve) => setTimeout(resolve, PASSWD_RECHECK_MS + 100));
  });
  after(() => {
    for (const child of children) child.kill();
  });

  /** Runs the Python client as `who` against a fresh listener; returns what we saw. */
  async function lookupOtherClient(
    host: string,
    program: boolean,
    lookup: OwnerLookupMethod,
    who: { readonly uid: number; readonly gid: number } = other,
  ) {
    const listener = await listen(host);
    try {
      const accepted = listener.accept();
      const child = spawn(
        SETPRIV,
        [
          `--reuid=${who.uid}`,
          `--regid=${who.gid}`,
          '--clear-groups',
          PYTHON,
          '-c',
          CLIENT_SCRIPT,
          host,
          String(listener.port),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      children.push(child);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = once(child, 'exit');
      const timeout = setTimeout(() => child.kill(), 10_000);
      const first = await Promise.race([accepted, exited.then(() => undefined)]);
      if (first === undefined) throw new Error(`the client exited before connecting: ${stderr}`);
      const identity = await lookupClientIdentity(first.client, first.local, { program, lookup });
      first.socket.end();
      await exited;
      clearTimeout(timeout);
      return { identity, pid: child.pid };
    } finally {
      await listener.close();
    }
  }

  for (const lookup of METHODS) {
    test(`by ${lookup}: a client of another user is identified with that uid, name and program`, async () => {
      const { identity, pid } = await lookupOtherClient('127.0.0.1', true, lookup);
      // setpriv execs Python in place, so the client keeps the pid we spawned.
      assert.deepEqual(identity, { uid: other.uid, userName: OTHER_USER, pid, program: python });
      assert.notEqual(identity?.uid, process.getuid?.());
    });

    test(`by ${lookup}: without program: true, only the user`, async () => {
      const { identity } = await lookupOtherClient('127.0.0.1', false, lookup);
      assert.deepEqual(identity, { uid: other.uid, userName: OTHER_USER });
    });

    test(`by ${lookup}: over IPv6`, async () => {
      const { identity, pid } = await lookupOtherClient('::1', true, lookup);
      assert.deepEqual(identity, { uid: other.uid, userName: OTHER_USER, pid, program: python });
    });
  }

  test('a user added to /etc/passwd is named within a second (the file is looked at at most once a second)', async () => {
    const name = `switchyard-new${process.pid % 100_000}`;
    // Whatever an earlier test left in the cache is stale after a second; then the lookup below
    // looks at /etc/passwd afresh, at a moment no earlier than `looked` (taken before it), so
    // "less than a second after `looked`" is surely still within the cache's second.
    await new Promise((resolve) => setTimeout(resolve, PASSWD_RECHECK_MS + 50));
    const looked = performance.now();
    await lookupOwnClient('127.0.0.1', '127.0.0.1', false, 'netlink');
    const added = ensureUser(name);
    try {
      assert.ok(added.created, `${name} existed already`);
      const first = await lookupOtherClient('127.0.0.1', false, 'netlink', added);
      if (performance.now() - looked < PASSWD_RECHECK_MS) {
        // Still within the second: the uid is known, the name is not yet.
        assert.deepEqual(first.identity, { uid: added.uid });
      }
      const wait = looked + PASSWD_RECHECK_MS + 50 - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const later = await lookupOtherClient('127.0.0.1', false, 'netlink', added);
      assert.deepEqual(later.identity, { uid: added.uid, userName: name });
    } finally {
      execFileSync('userdel', [name], { stdio: 'ignore' });
    }
  });
});
