/**
 * Who is on the other end of a loopback connection, from Linux: the OS user that owns the
 * client's socket and, on request, the program holding it. On a shared machine any local user
 * can reach 127.0.0.1, and the person running Switchyard must not lend them its upstream
 * credentials.
 *
 * The client's socket is the TCP socket whose local end is the client's address and whose
 * remote end is ours; the kernel knows its uid and inode. The program is found by looking for
 * `socket:[inode]` among the descriptors in /proc/[pid]/fd, which is a walk over every process,
 * so it is only done when asked for. Without root, other users' descriptors are unreadable:
 * then the uid is still known and the program stays undefined.
 *
 * Two ways to find the socket; sockdiag.ts decides which, once per process.
 * - netlink sock_diag, when the addon sockdiag.node is built: the kernel is asked for exactly
 *   that socket and looks it up in its hash tables, a few microseconds whatever else is open.
 *   An IPv4 client is asked for once, as IPv4: the kernel's IPv4 lookup (the one an arriving
 *   packet gets) also finds AF_INET6 sockets with v4-mapped addresses. A socket that is gone
 *   (closed, TIME_WAIT) is an answer: not found. A sandbox that refuses netlink is found out
 *   when the choice is made (the scan is then used throughout); should a question fail later
 *   all the same (EMFILE reopening the netlink socket after an error), that lookup falls back
 *   to the scan and the failure is counted in clientIdentityStats(). One case it misses and the
 *   scan does not: a client bound to a network device (SO_BINDTODEVICE) other than lo, dialling
 *   one of our non-loopback addresses (the addon names lo, and only for loopback addresses).
 * - the scan of /proc/net/tcp (or tcp6), for the row whose local and remote columns are those
 *   two ends; the row gives the uid and inode.
 *
 * Cost of the scan. The table has a row for every TCP socket on the machine, two per loopback
 * connection, and the kernel formats it afresh on every read, so reading it once per lookup
 * makes opening N tunnels cost O(N^2). Lookups therefore share reads: there is one reader per
 * table file; a lookup registers the row it wants and waits for the next pass, which starts at
 * once when none is running. A lookup registered while a pass is running waits for the NEXT
 * one, since its socket may be newer than what the running pass has already read. A pass reads
 * the file in chunks, looks only at each row's local and remote address columns (a map lookup
 * per row), and stops as soon as every waiter is answered; one pass answers all the lookups
 * that arrived while the previous one ran. A row not found in a complete pass is looked for
 * once more in the next one (a table read in chunks is not an atomic snapshot), then given up
 * on.
 *
 * Answers. `undefined` means this platform cannot tell (no /proc: not Linux), which
 * `ownerCheckSupported()` says up front. On Linux every question gets an identity or an
 * `IdentityFailure` saying why not (the table could not be read, say EMFILE, or there is no
 * such socket: the client has gone); the owner check refuses on a failure. Nothing here throws.
 * Users that exist only in NSS (LDAP, systemd-homed) have a uid but no name here; names come
 * from /etc/passwd, checked for changes at most once a second.
 */
import { open, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { type IpAddress, parseIp, unmapIPv4 } from '../../../shared/rules/ip.ts';
import { type OwnerLookupMethod, ownerLookupStatus, sockDiag } from './sockdiag.ts';

export interface ClientIdentity {
  readonly uid?: number;
  readonly userName?: string;
  readonly pid?: number;
  readonly program?: string;
}

/** Linux could have told, but did not this time: callers that depend on the answer refuse. */
export interface IdentityFailure {
  readonly kind: 'failure';
  /** What went wrong, for a log line or a refusal: `EMFILE reading /proc/net/tcp`. */
  readonly reason: string;
  /** The errno code when a read failed. */
  readonly code?: string;
}

/** An identity; a failure (Linux, could not tell); or undefined (this platform cannot tell). */
export type IdentityLookup = ClientIdentity | IdentityFailure | undefined;

export function isIdentityFailure(result: IdentityLookup): result is IdentityFailure {
  return result !== undefined && (result as { kind?: unknown }).kind === 'failure';
}

/** Whether lookups can tell local users apart here; where not, the owner check cannot work. */
export function ownerCheckSupported(): boolean {
  return process.platform === 'linux';
}

export interface SocketEnd {
  readonly host: string;
  readonly port: number;
}

export interface ClientIdentityStats {
  /** lookupClientIdentity calls. */
  readonly lookups: number;
  /** Passes over /proc/net/tcp or tcp6, each serving every lookup waiting for it. */
  readonly tableReads: number;
  /** Exact questions asked of the kernel through netlink sock_diag (one per socket looked for). */
  readonly netlinkLookups: number;
  /** Of those, the ones the kernel could not answer, which fell back to the /proc scan. */
  readonly netlinkFailures: number;
  /** The last such failure: `EMFILE: sock_diag socket: Too many open files`. */
  readonly netlinkError: string | undefined;
}

const stats: { -readonly [K in keyof ClientIdentityStats]: ClientIdentityStats[K] } = {
  lookups: 0,
  tableReads: 0,
  netlinkLookups: 0,
  netlinkFailures: 0,
  netlinkError: undefined,
};

/** Counters since the process started, for tests and diagnostics. */
export function clientIdentityStats(): ClientIdentityStats {
  return { ...stats };
}

const LITTLE_ENDIAN = endianness() === 'LE';

function parseEndpointIp(host: string): IpAddress | null {
  let text = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const parsed = parseIp(text);
  return parsed === null ? null : unmapIPv4(parsed);
}

const hex2 = (b: number): string => b.toString(16).toUpperCase().padStart(2, '0');

/**
 * The kernel prints addresses as 32-bit words in host byte order (`%08X` of each __be32), so on
 * a little-endian machine 127.0.0.1 reads 0100007F and ::1 reads 00000000 00000000 00000000
 * 01000000. Ports are printed after ntohs, most significant digit first.
 */
function procAddress(bytes: Uint8Array): string {
  let out = '';
  for (let w = 0; w < bytes.length; w += 4) {
    if (LITTLE_ENDIAN) for (let i = 3; i >= 0; i--) out += hex2(bytes[w + i]!);
    else for (let i = 0; i < 4; i++) out += hex2(bytes[w + i]!);
  }
  return out;
}

function procEnd(bytes: Uint8Array, port: number): string {
  return `${procAddress(bytes)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

function mapped(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

interface SocketRow {
  readonly uid: number;
  readonly inode: string;
}

/** The client's socket: its owner, its inode (as /proc spells it), and which way it was found. */
export interface ClientSocket extends SocketRow {
  readonly via: OwnerLookupMethod;
}

interface Waiter {
  /** `local remote`, exactly as the table spells the two columns. */
  readonly key: string;
  resolve(row: SocketRow | undefined): void;
  reject(error: unknown): void;
}

const CHUNK = 64 * 1024;

/**
 * One /proc/net table and the lookups waiting on it. At most one pass runs at a time; a pass
 * serves the waiters registered before it started reading, and the next pass (started as soon
 * as this one ends) those registered meanwhile.
 */
class ProcTable {
  readonly path: string;
  /** Characters in `local remote`: two `ADDR:PORT` and a space. */
  private readonly keyLength: number;
  private queued: Waiter[] = [];
  private running = false;

  constructor(path: string, addressBytes: number) {
    this.path = path;
    this.keyLength = 2 * (addressBytes * 2 + 5) + 1;
  }

  /** The live socket whose row has these two ends; undefined when the table has none. */
  find(local: string, remote: string): Promise<SocketRow | undefined> {
    return new Promise((resolve, reject) => {
      this.queued.push({ key: `${local} ${remote}`, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    // Let the lookups of the same turn of the event loop join the first pass.
    await Promise.resolve();
    try {
      while (this.queued.length > 0) await this.pass();
    } finally {
      this.running = false;
    }
  }

  private async pass(): Promise<void> {
    const batch = new Map<string, Waiter[]>();
    let taken = false;
    const take = (): void => {
      taken = true;
      for (const waiter of this.queued) {
        const same = batch.get(waiter.key);
        if (same === undefined) batch.set(waiter.key, [waiter]);
        else same.push(waiter);
      }
      this.queued = [];
    };
    stats.tableReads++;
    let failed: { readonly error: unknown } | undefined;
    try {
      const file = await open(this.path, 'r');
      try {
        // Taken once the file is open, not before: the kernel formats the rows when read()
        // runs, which is after this, so every socket in the batch is already in them.
        take();
        await this.scan(file, batch);
      } finally {
        await file.close().catch(() => undefined);
      }
    } catch (error) {
      failed = { error };
      // Those waiting when open() failed share its fate; those who came during a failed
      // scan are left for the next pass.
      if (!taken) take();
    }
    for (const waiters of batch.values()) {
      for (const w of waiters) {
        if (failed === undefined) w.resolve(undefined);
        else w.reject(failed.error);
      }
    }
  }

  /** Reads the table, answering (and removing) each waiter whose row goes by. */
  private async scan(file: Awaited<ReturnType<typeof open>>, batch: Map<string, Waiter[]>): Promise<void> {
    const buffer = Buffer.allocUnsafe(CHUNK);
    const keyLength = this.keyLength;
    let carry = '';
    while (batch.size > 0) {
      const { bytesRead } = await file.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) return;
      const text = carry + buffer.toString('latin1', 0, bytesRead);
      let lineStart = 0;
      for (let lineEnd = text.indexOf('\n'); lineEnd !== -1; lineEnd = text.indexOf('\n', lineStart)) {
        // `%4d: LOCAL REMOTE st ...`: the columns start two after the first colon. The header
        // line has no colon before its end, so it yields no key.
        const colon = text.indexOf(':', lineStart);
        if (colon !== -1 && colon < lineEnd) {
          const key = text.slice(colon + 2, colon + 2 + keyLength);
          const waiters = batch.get(key);
          if (waiters !== undefined) {
            const row = parseRow(text.slice(lineStart, lineEnd));
            if (row !== undefined) {
              batch.delete(key);
              for (const w of waiters) w.resolve(row);
            }
          }
        }
        lineStart = lineEnd + 1;
      }
      carry = text.slice(lineStart);
    }
  }
}

function parseRow(line: string): SocketRow | undefined {
  // sl local remote st tx:rx tr:when retrnsmt uid timeout inode
  const fields = line.trim().split(/\s+/);
  const uid = Number(fields[7]);
  const inode = fields[9];
  // TIME_WAIT rows of an earlier connection on the same ports carry inode 0 and no owner.
  if (inode === undefined || inode === '0' || !/^\d+$/.test(inode) || !Number.isInteger(uid))
    return undefined;
  return { uid, inode };
}

const TCP = new ProcTable('/proc/net/tcp', 4);
const TCP6 = new ProcTable('/proc/net/tcp6', 16);

interface Query {
  readonly table: ProcTable;
  readonly local: string;
  readonly remote: string;
}

function queries(client: IpAddress, clientPort: number, server: IpAddress, serverPort: number): Query[] {
  if (client.version === 4) {
    return [
      { table: TCP, local: procEnd(client.bytes, clientPort), remote: procEnd(server.bytes, serverPort) },
      // An AF_INET6 client socket reaching an IPv4 address is listed with mapped addresses.
      {
        table: TCP6,
        local: procEnd(mapped(client.bytes), clientPort),
        remote: procEnd(mapped(server.bytes), serverPort),
      },
    ];
  }
  return [
    { table: TCP6, local: procEnd(client.bytes, clientPort), remote: procEnd(server.bytes, serverPort) },
  ];
}

class ReadFailure {
  readonly failure: IdentityFailure;
  constructor(failure: IdentityFailure) {
    this.failure = failure;
  }
}

/** The client's socket row from the /proc tables, or why it could not be had. */
async function scanForSocket(
  client: IpAddress,
  clientPort: number,
  server: IpAddress,
  serverPort: number,
): Promise<SocketRow | ReadFailure> {
  const asked = queries(client, clientPort, server, serverPort);
  // A second round: a pass missed the row only if the table shifted under it, and the next
  // pass starts after it ended.
  for (let round = 0; round < 2; round++) {
    for (const { table, local, remote } of asked) {
      try {
        const row = await table.find(local, remote);
        if (row !== undefined) return row;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const reason = `${code ?? (error instanceof Error ? error.message : String(error))} reading ${table.path}`;
        return new ReadFailure(
          code === undefined ? { kind: 'failure', reason } : { kind: 'failure', reason, code },
        );
      }
    }
  }
  const files = asked.map((q) => q.table.path).join(' or ');
  return new ReadFailure({
    kind: 'failure',
    reason: `no socket from port ${clientPort} to port ${serverPort} in ${files}; the client may have closed`,
  });
}

const bufferOf = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The client's socket, asked of the kernel: its row, undefined when there is no such live
 * socket, or a ReadFailure when netlink was asked for and there is no addon. Throws what the
 * addon throws (the kernel could not be asked).
 */
function askKernel(
  client: IpAddress,
  clientPort: number,
  server: IpAddress,
  serverPort: number,
): SocketRow | undefined | ReadFailure {
  const addon = sockDiag();
  if (addon === undefined) {
    const why = ownerLookupStatus().unavailable ?? 'sockdiag.node is not loaded';
    return new ReadFailure({ kind: 'failure', reason: `netlink sock_diag is not available: ${why}` });
  }
  stats.netlinkLookups++;
  const found = addon.lookup(
    client.version,
    bufferOf(client.bytes),
    clientPort,
    bufferOf(server.bytes),
    serverPort,
  );
  return found === null ? undefined : { uid: found.uid, inode: String(found.inode) };
}

/**
 * The client's socket (`client` and `server` as our accepted socket sees them), found the way
 * `lookup` says (default: the process's way, ownerLookupStatus()); or why it could not be had.
 */
export async function findClientSocket(
  client: SocketEnd,
  server: SocketEnd,
  options: { readonly lookup?: OwnerLookupMethod } = {},
): Promise<ClientSocket | IdentityFailure> {
  const clientIp = parseEndpointIp(client.host);
  const serverIp = parseEndpointIp(server.host);
  if (clientIp === null || serverIp === null || clientIp.version !== serverIp.version) {
    return {
      kind: 'failure',
      reason: `${client.host} and ${server.host} are not the two ends of one local TCP connection`,
    };
  }
  const method = options.lookup ?? ownerLookupStatus().method;
  if (method === 'netlink') {
    try {
      const row = askKernel(clientIp, client.port, serverIp, server.port);
      if (row instanceof ReadFailure) return row.failure;
      if (row !== undefined) return { ...row, via: 'netlink' };
      return {
        kind: 'failure',
        reason: `no live socket from port ${client.port} to port ${server.port} (asked the kernel by netlink sock_diag); the client may have closed`,
      };
    } catch (error) {
      // The kernel could not be asked: the scan still can tell, at its usual cost.
      const code = (error as NodeJS.ErrnoException).code;
      const message = error instanceof Error ? error.message : String(error);
      stats.netlinkFailures++;
      stats.netlinkError = code === undefined ? message : `${code}: ${message}`;
    }
  }
  const row = await scanForSocket(clientIp, client.port, serverIp, server.port);
  return row instanceof ReadFailure ? row.failure : { ...row, via: 'proc' };
}

interface PasswdCache {
  readonly mtimeMs: number;
  readonly size: number;
  readonly names: ReadonlyMap<number, string>;
}

/** How long a look at /etc/passwd is trusted: a changed file is seen within this. */
const PASSWD_RECHECK_MS = 1_000;

let passwd: PasswdCache | undefined;
/**
 * The last look at /etc/passwd (a stat, and a read when it changed), shared by every lookup
 * within PASSWD_RECHECK_MS of it: with the exact netlink lookup, a stat per connection would be
 * the largest cost left.
 */
let passwdCheck: { readonly at: number; readonly names: Promise<ReadonlyMap<number, string>> } | undefined;

async function loadPasswd(mtimeMs: number, size: number): Promise<PasswdCache> {
  const names = new Map<number, string>();
  for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
    const [name, , id] = line.split(':');
    if (name === undefined || id === undefined || !/^\d+$/.test(id)) continue;
    // The first entry for a uid is the one getpwuid returns.
    if (!names.has(Number(id))) names.set(Number(id), name);
  }
  return { mtimeMs, size, names };
}

async function currentPasswd(): Promise<ReadonlyMap<number, string>> {
  const { mtimeMs, size } = await stat('/etc/passwd');
  if (passwd === undefined || passwd.mtimeMs !== mtimeMs || passwd.size !== size) {
    passwd = await loadPasswd(mtimeMs, size);
  }
  return passwd.names;
}

async function userNameOf(uid: number): Promise<string | undefined> {
  const now = performance.now();
  if (passwdCheck === undefined || now - passwdCheck.at >= PASSWD_RECHECK_MS) {
    const check = { at: now, names: currentPasswd() };
    passwdCheck = check;
    // A failed look (EMFILE, say) is not kept: the next lookup looks again.
    check.names.catch(() => {
      if (passwdCheck === check) passwdCheck = undefined;
    });
  }
  try {
    return (await passwdCheck.names).get(uid);
  } catch {
    return undefined;
  }
}

async function holdsSocket(pid: string, target: string): Promise<boolean> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    // Gone, a kernel thread, or another user's process without root: none of them tell us.
    return false;
  }
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return links.includes(target);
}

async function processUid(pid: string): Promise<number | undefined> {
  try {
    return (await stat(`/proc/${pid}`)).uid;
  } catch {
    return undefined;
  }
}

const SCAN_BATCH = 16;

/**
 * The process holding socket `inode`. The socket's owner usually runs the client, so that
 * user's processes are searched first and everyone else's only when they do not have it (a
 * socket passed on, or a setuid program).
 */
async function findHolder(inode: string, uid: number): Promise<number | undefined> {
  const target = `socket:[${inode}]`;
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  const uids = await Promise.all(pids.map(processUid));
  const mine = pids.filter((_, i) => uids[i] === uid);
  const others = pids.filter((_, i) => uids[i] !== uid && uids[i] !== undefined);
  for (const group of [mine, others]) {
    // Newest first: the client connected a moment ago, so it is more often a young process.
    group.reverse();
    for (let i = 0; i < group.length; i += SCAN_BATCH) {
      const batch = group.slice(i, i + SCAN_BATCH);
      const hits = await Promise.all(batch.map((pid) => holdsSocket(pid, target)));
      const hit = hits.indexOf(true);
      if (hit !== -1) return Number(batch[hit]);
    }
  }
  return undefined;
}

async function programOf(pid: number): Promise<string | undefined> {
  try {
    const exe = await readlink(`/proc/${pid}/exe`);
    // A program replaced on disk since it started (an upgrade) is still the same program.
    return exe.endsWith(' (deleted)') ? exe.slice(0, -' (deleted)'.length) : exe;
  } catch {
    return undefined;
  }
}

/**
 * Identifies the local process at `client` connected to our socket at `server` (both as our
 * accepted socket sees them: remoteAddress/remotePort and localAddress/localPort). Returns
 * undefined off Linux (see ownerCheckSupported), and on Linux the identity or an
 * IdentityFailure: there is no such socket (the client closed; the scan looks twice before it
 * says so), the table could not be read, or the two ends are not addresses of one family.
 */
export async function lookupClientIdentity(
  client: SocketEnd,
  server: SocketEnd,
  options: {
    readonly program: boolean;
    /** Forces one way of finding the socket (tests compare them); default: ownerLookupStatus(). */
    readonly lookup?: OwnerLookupMethod;
  },
): Promise<IdentityLookup> {
  if (!ownerCheckSupported()) return undefined;
  stats.lookups++;
  try {
    const row = await findClientSocket(client, server, options.lookup ? { lookup: options.lookup } : {});
    if (isIdentityFailure(row)) return row;
    const userName = await userNameOf(row.uid);
    const identity: { uid: number; userName?: string; pid?: number; program?: string } = { uid: row.uid };
    if (userName !== undefined) identity.userName = userName;
    if (!options.program) return identity;
    // The walk failing (EMFILE on /proc) costs the program, not the user, who is known.
    const pid = await findHolder(row.inode, row.uid).catch(() => undefined);
    if (pid === undefined) return identity;
    identity.pid = pid;
    const program = await programOf(pid);
    if (program !== undefined) identity.program = program;
    return identity;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = `${code ?? (error instanceof Error ? error.message : String(error))} reading /proc`;
    return code === undefined ? { kind: 'failure', reason } : { kind: 'failure', reason, code };
  }
}
