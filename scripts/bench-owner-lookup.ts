// Time per owner lookup, netlink sock_diag against the /proc/net/tcp scan, before and after
// filling the kernel's table with TIME_WAIT sockets (short loopback connections, the client
// closing first, as a connection-rate benchmark leaves them). Not a test: it prints figures.
//   node --import tsx scripts/bench-owner-lookup.ts [--connections N]   (N <= 5000, default 5000)
// Needs dist/host/sockdiag.node (npm run build:host). Loopback only; finishes in seconds.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import {
  findClientSocket,
  lookupClientIdentity,
  type SocketEnd,
} from '../native-host/src/policy/client-identity.ts';
import { type OwnerLookupMethod, ownerLookupStatus, sockDiag } from '../native-host/src/policy/sockdiag.ts';

const MAX_CONNECTIONS = 5_000;
const BATCH = 100;
const ROUNDS = { netlink: 2_000, proc: 200 } as const;

const arg = process.argv.indexOf('--connections');
const wanted = arg === -1 ? MAX_CONNECTIONS : Number(process.argv[arg + 1]);
if (!Number.isInteger(wanted) || wanted < 0) throw new Error('--connections takes a whole number');
const connections = Math.min(wanted, MAX_CONNECTIONS);

if (sockDiag() === undefined) {
  console.error(`no netlink addon: ${ownerLookupStatus().unavailable}; run npm run build:host first`);
  process.exit(1);
}

/** Rows in /proc/net/tcp and tcp6, and how many of them are TIME_WAIT (state 06). */
function table(): { rows: number; timeWait: number } {
  let rows = 0;
  let timeWait = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'latin1').split('\n').slice(1)) {
      const state = line.trim().split(/\s+/)[3];
      if (state === undefined) continue;
      rows++;
      if (state === '06') timeWait++;
    }
  }
  return { rows, timeWait };
}

const server = createServer((socket) => socket.on('error', () => undefined));
server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 });
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;

// The connection looked up: held open throughout.
const arrived = once(server, 'connection') as Promise<[Socket]>;
const held = connect({ host: '127.0.0.1', port });
await once(held, 'connect');
const [accepted] = await arrived;
const client: SocketEnd = { host: accepted.remoteAddress!, port: accepted.remotePort! };
const local: SocketEnd = { host: accepted.localAddress!, port: accepted.localPort! };

/** Microseconds per lookup, sequential (concurrency 1: no batching of /proc reads helps). */
async function perLookup(method: OwnerLookupMethod, identity: boolean): Promise<number> {
  const rounds = ROUNDS[method];
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    const found = identity
      ? await lookupClientIdentity(client, local, { program: false, lookup: method })
      : await findClientSocket(client, local, { lookup: method });
    if (found === undefined || !('uid' in found)) throw new Error(`lookup failed: ${JSON.stringify(found)}`);
  }
  return ((performance.now() - started) * 1000) / rounds;
}

async function measure(label: string): Promise<void> {
  const { rows, timeWait } = table();
  const figures: string[] = [];
  for (const method of ['netlink', 'proc'] as const) {
    const socket = await perLookup(method, false);
    const identity = await perLookup(method, true);
    figures.push(`${method} ${socket.toFixed(1)} µs (socket) / ${identity.toFixed(1)} µs (identity)`);
  }
  console.log(`${label}: ${rows} TCP rows (${timeWait} TIME_WAIT): ${figures.join(', ')}`);
}

/** One short connection: connect, then the client closes first, so its end stays in TIME_WAIT. */
async function shortConnection(): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.end();
  await once(socket, 'close');
}

console.log(
  `owner lookup per call, ${ROUNDS.netlink} netlink / ${ROUNDS.proc} /proc lookups each, sequential`,
);
await measure('before');
const started = performance.now();
for (let done = 0; done < connections; done += BATCH) {
  await Promise.all(Array.from({ length: Math.min(BATCH, connections - done) }, shortConnection));
}
console.log(`${connections} short connections in ${((performance.now() - started) / 1000).toFixed(1)} s`);
await measure('after');

held.destroy();
accepted.destroy();
server.close();
