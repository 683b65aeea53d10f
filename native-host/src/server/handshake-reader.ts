import type { Socket } from 'node:net';
import type { ParseResult } from '../protocol/parse-result.ts';

const EMPTY = Buffer.alloc(0);
/** Bytes a client may send ahead of our reply (pipelined payload) before we stop reading. */
const READ_AHEAD_LIMIT = 64 * 1024;

export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
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
  private readonly socket: Socket;

  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.buffer.length > READ_AHEAD_LIMIT) this.socket.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
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
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.pause();
    const rest = this.buffer;
    this.buffer = EMPTY;
    return rest;
  }

  get clientEnded(): boolean {
    return this.ended;
  }
}
