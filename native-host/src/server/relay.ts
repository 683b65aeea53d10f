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
  private readonly resolve: (result: RelayResult) => void;

  constructor(client: Socket, upstream: Socket, early: number, resolve: (result: RelayResult) => void) {
    this.client = client;
    this.upstream = upstream;
    this.upBase = client.bytesRead - early;
    this.downBase = client.bytesWritten;
    this.resolve = resolve;
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
    this.resolve({
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

export function relay(client: Socket, upstream: Socket, options: RelayOptions): Promise<RelayResult> {
  return new Promise((resolve) => {
    const tunnel = new Tunnel(client, upstream, options.early.length, resolve);
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

    // A side that was already gone before we listened will not say so again.
    for (const socket of sides) if (socket.closed) onClose.call(socket, socket.errored !== null);
  });
}
