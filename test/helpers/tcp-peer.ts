/**
 * An echo server in a process of its own, for load tests whose destination side holds more
 * sockets than the test runner may open (started by startPeer in fd-limit.ts, through
 * `ulimit -n`). It prints `port N` once listening on 127.0.0.1; a line `open?` on stdin is
 * answered with `open N`, the connections it holds. It exits when stdin closes (its parent is
 * gone) or on SIGTERM.
 */
import { type Socket, createServer } from 'node:net';

const sockets = new Set<Socket>();
const server = createServer({ allowHalfOpen: true }, (socket) => {
  sockets.add(socket);
  socket.on('error', () => undefined);
  socket.once('close', () => sockets.delete(socket));
  socket.pipe(socket);
});
server.on('error', (error) => {
  process.stderr.write(`peer listener error: ${error.message}\n`);
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`port ${address.port}\n`);
});

let pending = '';
process.stdin.on('data', (chunk: Buffer) => {
  pending += chunk.toString('utf8');
  let newline = pending.indexOf('\n');
  while (newline !== -1) {
    const line = pending.slice(0, newline).trim();
    pending = pending.slice(newline + 1);
    if (line === 'open?') process.stdout.write(`open ${sockets.size}\n`);
    newline = pending.indexOf('\n');
  }
});
process.stdin.once('end', () => process.exit(0));
