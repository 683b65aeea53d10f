/** Small loopback building blocks for tests: an echo server, a raw client, exact reads. */
import assert from 'node:assert/strict';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

export interface EchoServer {
  readonly port: number;
  readonly server: Server;
  /** Sockets accepted so far (to check peers or kill them). */
  readonly sockets: Socket[];
  close(): Promise<void>;
}

/** Echoes every byte back; on the client's FIN it finishes sending and ends too. */
export function startEchoServer(host = '127.0.0.1'): Promise<EchoServer> {
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        server,
        sockets,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A plain client: when the peer ends, it ends too (as most clients do). */
export function connectTo(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Reads exactly `n` bytes (buffering any extra for the next call), or rejects when the socket
 * ends first or the timeout passes.
 */
export class ByteReader {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | undefined;

  constructor(socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < n) {
      if (this.ended) throw new Error(`socket ended after ${this.buffer.length} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.buffer.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  /** Resolves with whatever arrives until the peer ends the stream. */
  async readToEnd(timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the end of the stream');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    const out = this.buffer;
    this.buffer = Buffer.alloc(0);
    return out;
  }

  get isEnded(): boolean {
    return this.ended;
  }
}

/** Resolves once the socket is fully closed (both directions), with whether it was an error. */
export function closed(socket: Socket, timeoutMs = 5000): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(false);
  // A socket nobody reads never sees the peer's FIN; drain it so 'close' can come.
  if (socket.listenerCount('data') === 0) socket.resume();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket did not close in time')), timeoutMs);
    socket.once('close', (hadError) => {
      clearTimeout(t);
      resolve(hadError);
    });
  });
}

/**
 * `assertEcho(socket, size = 70 000)`: bytes both ways through an echo server (`hello`, then
 * `size` bytes of the pattern i * `step`), then an orderly close in both directions.
 */
export function echoAsserter(hello: string, step: number): (socket: Socket, size?: number) => Promise<void> {
  return async (socket, size = 70_000) => {
    const reader = new ByteReader(socket);
    const small = Buffer.from(hello);
    socket.write(small);
    assert.deepEqual(await reader.read(small.length), small);
    const big = Buffer.alloc(size);
    for (let i = 0; i < size; i++) big[i] = (i * step) & 0xff;
    socket.write(big);
    assert.ok((await reader.read(size)).equals(big), 'large payload came back intact');
    socket.end();
    assert.equal((await reader.readToEnd()).length, 0);
    await closed(socket);
  };
}
