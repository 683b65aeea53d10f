/**
 * Moves bytes both ways between two established sockets until both directions have ended.
 * Each direction ends on its own (half-close is passed on, never turned into a full close);
 * an error or idle timeout on either side ends the whole tunnel.
 *
 * This is the data path of every tunnel, so it is written for a steady state that allocates
 * nothing per chunk and little per tunnel: the listeners are shared module-level functions
 * that find their tunnel through a symbol on the socket (no closures per tunnel, no once()
 * wrappers, none of the dozen listeners stream.pipe() adds per direction), and each chunk is
 * handed to the other socket as it came, without copying or concatenating.
 */
import type { Socket } from 'node:net';
import type { SocketReads } from '../outbound/outbound.ts';

export interface RelayOptions {
  /** Payload the client sent before the handshake finished. */
  readonly early: Buffer;
  /** The client already half-closed during the handshake. */
  readonly clientEnded: boolean;
  readonly idleTimeoutMs: number;
}

export interface RelayResult {
  /** Bytes from the client to the destination. */
  readonly bytesUp: number;
  /** Bytes from the destination to the client. */
  readonly bytesDown: number;
  /** Why the tunnel ended: 'done' when both sides closed in order. */
  readonly reason: 'done' | 'idle' | 'error';
  readonly error?: Error;
}

const kTunnel = Symbol('switchyard.relay.tunnel');

interface RelaySocket extends Socket {
  [kTunnel]?: Tunnel;
}

class Tunnel {
  reason: RelayResult['reason'] = 'done';
  error: Error | undefined;
  open = 2;
  readonly client: RelaySocket;
  readonly upstream: RelaySocket;
  // bytesRead/bytesWritten are kept by the sockets anyway; reading them at the end costs
  // nothing on the data path, unlike counting in the data listener.
  private readonly upBase: number;
  private readonly downBase: number;
  private readonly done: (result: RelayResult) => void;

  constructor(client: Socket, upstream: Socket, early: number, done: (result: RelayResult) => void) {
    this.client = client;
    this.upstream = upstream;
    this.upBase = client.bytesRead - early;
    this.downBase = client.bytesWritten;
    this.done = done;
  }

  peer(socket: Socket): RelaySocket {
    return socket === this.client ? this.upstream : this.client;
  }

  fail(why: RelayResult['reason'], error?: Error): void {
    if (this.reason === 'done') this.reason = why;
    this.error ??= error;
    this.client.destroy();
    this.upstream.destroy();
  }

  closed(): void {
    if (--this.open > 0) return;
    const { client } = this;
    client.setTimeout(0);
    this.done({
      bytesUp: Math.max(0, client.bytesRead - this.upBase),
      bytesDown: Math.max(0, client.bytesWritten - this.downBase),
      reason: this.reason,
      ...(this.error ? { error: this.error } : {}),
    });
  }
}

function onData(this: RelaySocket, chunk: Buffer): void {
  const tunnel = this[kTunnel];
  if (!tunnel) return;
  const peer = tunnel.peer(this);
  // Bytes for a side that is already gone have nowhere to go; writing them would only raise
  // an error about a tunnel that is ending anyway.
  if (peer.destroyed) return;
  // write() says false once the other socket's queue reaches its high-water mark: stop reading
  // until it drains, so a fast sender never piles up memory for a slow reader. Pausing on a
  // merely non-empty queue would be finer, but Node emits 'drain' only after a write() that
  // returned false, so a small chunk left queued would then pause the tunnel for good.
  if (!peer.write(chunk)) this.pause();
}

// ---- reads into reused buffers (sockets we open ourselves) -------------------------------------
//
// A socket normally reads into a fresh 64 KiB buffer from Node every time, and at a gigabyte
// per second that allocation and its collection cost as much as the copying. A socket we
// create (the connection to the destination) can read into buffers of ours instead (Node's
// `onread`), which lets a bulk transfer reuse one buffer. Two rules keep that safe:
// - A chunk may only be reused once the other socket has taken it in full: write() on a
//   socket whose queue was empty sends at once, and an empty queue afterwards proves it.
//   Otherwise the chunk stays with the queue, and the next read goes elsewhere.
// - Quiet sockets share one small buffer, so that a held tunnel costs no buffer at all; what
//   lands there is copied out before it is written, since the next socket to read overwrites it.
//   A read that fills it moves the socket to a large buffer of its own; a small read moves it back.

/** Where every quiet socket reads; its contents never leave it uncopied. */
const SHARED_READ_BUFFER = Buffer.allocUnsafeSlow(16 * 1024);
/**
 * A busy socket's own buffer, the most one read can return. Larger than the 64 KiB Node reads
 * into by default: fewer reads per GiB (0.42-0.51 against 0.51-0.76 s/GiB downloading, in
 * interleaved runs), and only a socket in the middle of a burst holds one.
 */
const OWN_READ_SIZE = 256 * 1024;
/** A read this small means the burst is over: back to the shared buffer. */
const QUIET_READ = 4 * 1024;

const kReads = Symbol('switchyard.relay.reads');

class Reads {
  /** Where the next read goes; Node asks for it right after each read. */
  next: Buffer = SHARED_READ_BUFFER;
  /** Chunks that arrived before the relay took the socket (copies), in order. */
  early: Buffer[] | undefined;
}

interface ReadsSocket extends RelaySocket {
  [kReads]?: Reads;
}

function onReadInto(this: ReadsSocket, nread: number, buf: Buffer): boolean {
  const reads = this[kReads];
  if (reads === undefined) return true;
  const shared = buf === SHARED_READ_BUFFER;
  let chunk: Buffer;
  if (shared) {
    chunk = Buffer.allocUnsafe(nread);
    buf.copy(chunk, 0, 0, nread);
  } else {
    chunk = buf.subarray(0, nread);
  }
  const tunnel = this[kTunnel];
  if (tunnel === undefined) {
    // The destination spoke before the tunnel started: keep a copy, and wait for the relay.
    reads.early ??= [];
    reads.early.push(shared ? chunk : Buffer.from(chunk));
    return false;
  }
  const peer = tunnel.peer(this);
  if (peer.destroyed) return true;
  const wasEmpty = peer.writableLength === 0;
  const ok = peer.write(chunk);
  if (shared) {
    if (nread === buf.length) reads.next = Buffer.allocUnsafeSlow(OWN_READ_SIZE);
  } else if (!wasEmpty || peer.writableLength !== 0) {
    // The queue holds `buf` now. Paused (ok false), reading only resumes on 'drain', when the
    // queue is empty and `buf` free again; still reading, the next read needs another buffer.
    if (ok) reads.next = Buffer.allocUnsafeSlow(OWN_READ_SIZE);
  } else if (nread <= QUIET_READ) {
    reads.next = SHARED_READ_BUFFER;
  }
  return ok;
}

/**
 * Node's `onread` option for a socket about to be opened for a tunnel (see above); `adopt` it
 * once created. Its data then reaches only the relay, never 'data' listeners, so it is for
 * sockets that go straight into `relay()`.
 */
export function relayReads(): SocketReads {
  const reads = new Reads();
  return {
    onread: { buffer: () => reads.next, callback: onReadInto },
    adopt: (socket: Socket) => {
      (socket as ReadsSocket)[kReads] = reads;
    },
  };
}

function onDrain(this: RelaySocket): void {
  this[kTunnel]?.peer(this).resume();
}

/** The sender finished: pass the half-close on once what it sent before has been written. */
function onEnd(this: RelaySocket): void {
  this[kTunnel]?.peer(this).end();
}

function onError(this: RelaySocket, error: Error): void {
  this[kTunnel]?.fail('error', error);
}

function onTimeout(this: RelaySocket): void {
  this[kTunnel]?.fail('idle');
}

/**
 * A side that closed completely has nothing more to send or take, so the other side flushes
 * what is pending for it and closes too; otherwise it would linger half-alive.
 */
function onClose(this: RelaySocket, hadError: boolean): void {
  const tunnel = this[kTunnel];
  if (!tunnel) return;
  const other = tunnel.peer(this);
  if (!other.destroyed) {
    if (hadError) other.destroy();
    else other.end(() => other.destroy());
  }
  tunnel.closed();
}

/**
 * Starts the tunnel and returns; `done` hears how it ended. A callback rather than a promise
 * on purpose: whoever awaited the promise would stay suspended for the tunnel's whole life,
 * keeping its frame and everything the handshake left in it (a few KB per open tunnel).
 */
export function relay(
  client: Socket,
  upstream: Socket,
  options: RelayOptions,
  done: (result: RelayResult) => void,
): void {
  const tunnel = new Tunnel(client, upstream, options.early.length, done);
  const sides: readonly RelaySocket[] = [client, upstream];
  for (const socket of sides) {
    socket[kTunnel] = tunnel;
    // Small request/response exchanges must not wait for Nagle's timer on either hop.
    socket.setNoDelay(true);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('drain', onDrain);
  }

  if (options.idleTimeoutMs > 0) {
    // Any byte in either direction touches the client socket (read or write), so one timer
    // on it covers the whole tunnel.
    client.setTimeout(options.idleTimeoutMs);
    client.on('timeout', onTimeout);
  }

  const reads = (upstream as ReadsSocket)[kReads];
  if (reads?.early !== undefined) {
    for (const chunk of reads.early) client.write(chunk);
    reads.early = undefined;
  }
  if (options.early.length > 0) upstream.write(options.early);
  if (options.clientEnded) upstream.end();
  else {
    client.on('data', onData);
    client.on('end', onEnd);
  }
  upstream.on('data', onData);
  upstream.on('end', onEnd);
  // The handshake reader paused the client, and an upstream may arrive paused too (a BIND
  // peer is accepted paused; a connector leaves a chain's stream paused): adding a 'data'
  // listener does not undo an explicit pause.
  client.resume();
  upstream.resume();

  // A side that was already gone (or done sending) before we listened will not say so again.
  if (upstream.readableEnded) onEnd.call(upstream);
  for (const socket of sides) if (socket.closed) onClose.call(socket, socket.errored !== null);
}
