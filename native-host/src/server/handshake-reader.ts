import type { Socket } from 'node:net';
import type { ParseResult } from '../protocol/parse-result.ts';

const EMPTY = Buffer.alloc(0);
/** Bytes a client may send ahead of our reply (pipelined payload) before we stop reading. */
const READ_AHEAD_LIMIT = 64 * 1024;

export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

const kReader = Symbol('switchyard.handshakeReader');

interface ReaderSocket extends Socket {
  [kReader]?: HandshakeReader | undefined;
}

// Shared by every connection and pointed at its reader through the socket: the reader stays
// referenced for the whole tunnel (the session keeps it), so per-reader closures would be
// memory held by every open tunnel for nothing once the handshake is over.
function onData(this: ReaderSocket, chunk: Buffer): void {
  this[kReader]?.receive(chunk);
}

function onEnd(this: ReaderSocket): void {
  this[kReader]?.clientLeft();
}

/**
 * Feeds a socket's bytes to the pure parsers, however the client split them, and keeps what
 * follows a message for the next one. When the handshake is over, `detach` hands the leftover
 * bytes (early payload) to the relay so none are lost.
 */
export class HandshakeReader {
  private buffer: Buffer = EMPTY;
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly socket: ReaderSocket;

  constructor(socket: Socket) {
    this.socket = socket;
    this.socket[kReader] = this;
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  }

  /** @internal A chunk from the socket. */
  receive(chunk: Buffer): void {
    // Messages almost always arrive whole, in one chunk each: nothing to concatenate then.
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.buffer.length > READ_AHEAD_LIMIT) this.socket.pause();
    this.notify();
  }

  /** @internal The client finished sending, or left. */
  clientLeft(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Throws ProtocolError from the parser, or ClientGoneError when the client leaves first. */
  async read<T>(parse: (buf: Buffer) => ParseResult<T>): Promise<T> {
    for (;;) {
      const result = parse(this.buffer);
      if (result.done) {
        this.buffer = result.size === this.buffer.length ? EMPTY : this.buffer.subarray(result.size);
        return result.value;
      }
      if (this.ended) throw new ClientGoneError('client closed the connection during the handshake');
      if (this.socket.isPaused()) this.socket.resume();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Whether the client has already sent more than the last message parsed. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Stops reading and returns the bytes received after the last parsed message. */
  detach(): Buffer {
    const socket = this.socket;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    // Cleared rather than deleted: deleting a property would turn the socket into a slow
    // dictionary-mode object for the rest of its life.
    socket[kReader] = undefined;
    socket.pause();
    const rest = this.buffer;
    this.buffer = EMPTY;
    return rest;
  }

  get clientEnded(): boolean {
    return this.ended;
  }
}
