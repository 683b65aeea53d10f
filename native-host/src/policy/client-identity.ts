/**
 * Who is on the other end of a loopback connection, from Linux's /proc: the OS user that owns
 * the client's socket and, on request, the program holding it. On a shared machine any local
 * user can reach 127.0.0.1, and the person running Switchyard must not lend them its upstream
 * credentials.
 *
 * The client's socket is the row of /proc/net/tcp (or tcp6) whose local end is the client's
 * address and whose remote end is ours; the row gives its uid and inode. The program is found
 * by looking for `socket:[inode]` among the descriptors in /proc/[pid]/fd, which is a walk over
 * every process, so it is only done when asked for. Without root, other users' descriptors are
 * unreadable: then the uid is still known and the program stays undefined.
 *
 * Nothing here throws: a lookup that cannot be answered returns what it found, or undefined.
 * Users that exist only in NSS (LDAP, systemd-homed) have a uid but no name here.
 */
import { open, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { type IpAddress, parseIp, unmapIPv4 } from '../../../shared/rules/ip.ts';

export interface ClientIdentity {
  readonly uid?: number;
  readonly userName?: string;
  readonly pid?: number;
  readonly program?: string;
}

export interface SocketEnd {
  readonly host: string;
  readonly port: number;
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

const CHUNK = 64 * 1024;

/**
 * Reads a /proc/net table in chunks up to the wanted row only: on a busy host the table holds
 * tens of thousands of rows, and the client's is usually among the newest ones near the top.
 */
async function findSocketRow(table: string, local: string, remote: string): Promise<SocketRow | undefined> {
  const needle = ` ${local} ${remote} `;
  const file = await open(table, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let carry = '';
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) return undefined;
      const text = carry + buffer.toString('latin1', 0, bytesRead);
      const complete = text.lastIndexOf('\n') + 1;
      for (let at = text.indexOf(needle); at !== -1 && at < complete; at = text.indexOf(needle, at + 1)) {
        const lineStart = text.lastIndexOf('\n', at) + 1;
        const lineEnd = text.indexOf('\n', at);
        const fields = text.slice(lineStart, lineEnd).trim().split(/\s+/);
        // sl local remote st tx:rx tr:when retrnsmt uid timeout inode
        if (fields[1] !== local || fields[2] !== remote) continue;
        const uid = Number(fields[7]);
        const inode = fields[9];
        // TIME_WAIT rows of an earlier connection on the same ports carry inode 0 and no owner.
        if (inode === undefined || inode === '0' || !Number.isInteger(uid)) continue;
        return { uid, inode };
      }
      carry = text.slice(complete);
    }
  } finally {
    await file.close();
  }
}

async function findSocket(
  client: IpAddress,
  clientPort: number,
  server: IpAddress,
  serverPort: number,
): Promise<SocketRow | undefined> {
  if (client.version === 4) {
    const row = await findSocketRow(
      '/proc/net/tcp',
      procEnd(client.bytes, clientPort),
      procEnd(server.bytes, serverPort),
    );
    if (row !== undefined) return row;
    // An AF_INET6 client socket reaching an IPv4 address is listed with mapped addresses.
    return findSocketRow(
      '/proc/net/tcp6',
      procEnd(mapped(client.bytes), clientPort),
      procEnd(mapped(server.bytes), serverPort),
    );
  }
  return findSocketRow(
    '/proc/net/tcp6',
    procEnd(client.bytes, clientPort),
    procEnd(server.bytes, serverPort),
  );
}

interface PasswdCache {
  readonly mtimeMs: number;
  readonly size: number;
  readonly names: ReadonlyMap<number, string>;
}

let passwd: PasswdCache | undefined;

async function userNameOf(uid: number): Promise<string | undefined> {
  try {
    const info = await stat('/etc/passwd');
    if (passwd === undefined || passwd.mtimeMs !== info.mtimeMs || passwd.size !== info.size) {
      const names = new Map<number, string>();
      for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
        const [name, , id] = line.split(':');
        if (name === undefined || id === undefined || !/^\d+$/.test(id)) continue;
        // The first entry for a uid is the one getpwuid returns.
        if (!names.has(Number(id))) names.set(Number(id), name);
      }
      passwd = { mtimeMs: info.mtimeMs, size: info.size, names };
    }
    return passwd.names.get(uid);
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
 * undefined off Linux, for a client that is not on this machine, or when /proc cannot tell.
 */
export async function lookupClientIdentity(
  client: SocketEnd,
  server: SocketEnd,
  options: { readonly program: boolean },
): Promise<ClientIdentity | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const clientIp = parseEndpointIp(client.host);
    const serverIp = parseEndpointIp(server.host);
    if (clientIp === null || serverIp === null || clientIp.version !== serverIp.version) return undefined;
    const row = await findSocket(clientIp, client.port, serverIp, server.port);
    if (row === undefined) return undefined;
    const userName = await userNameOf(row.uid);
    const identity: { uid: number; userName?: string; pid?: number; program?: string } = { uid: row.uid };
    if (userName !== undefined) identity.userName = userName;
    if (!options.program) return identity;
    const pid = await findHolder(row.inode, row.uid);
    if (pid === undefined) return identity;
    identity.pid = pid;
    const program = await programOf(pid);
    if (program !== undefined) identity.program = program;
    return identity;
  } catch {
    return undefined;
  }
}
