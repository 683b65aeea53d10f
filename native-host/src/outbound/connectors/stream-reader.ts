/**
 * The socket side of a connector: writes requests, feeds replies to the pure parsers however
 * the upstream split them, and turns every way a handshake can go wrong (deadline, abort,
 * hang-up, socket error, malformed reply) into one OutboundError that names the hop.
 *
 * Reading uses paused mode ('readable' + read()) rather than 'data' events, so that nothing is
 * consumed that the parser did not ask for: the bytes after a reply are unshifted back in the
 * same tick they were read, before the stream could emit 'end', and the next reader (another
 * connector, or the relay) gets them first. Servers that speak first (SSH, SMTP) often send
 * their banner in the same packet as the proxy's reply.
 */
import type { Socket } from 'node:net';
import { ProtocolError } from '../../protocol/errors.ts';
import type { ParseResult } from '../../protocol/parse-result.ts';
import { repForProtocolError } from '../../protocol/reply-codes.ts';
import { Rep, type RepCode } from '../../protocol/socks5.ts';
import { outboundErrorFrom } from '../direct.ts';
import { OutboundError, type OutboundFailure } from '../outbound.ts';
import type { ConnectorRequest } from './types.ts';

const EMPTY = Buffer.alloc(0);

export interface HopStreamOptions {
  /** Defaults to request.timeoutMs; Infinity leaves only the abort signal. */
  readonly timeoutMs?: number;
}

/**
 * One handshake with one hop. The deadline is fixed when this is created, so it bounds the
 * whole exchange (greeting, auth, request, reply), not each message.
 */
export class HopStream {
  readonly socket: Socket;
  readonly label: string;
  private readonly request: ConnectorRequest;
  private readonly timeoutMs: number;
  private readonly deadline: number;

  constructor(socket: Socket, request: ConnectorRequest, options: HopStreamOptions = {}) {
    this.socket = socket;
    this.request = request;
    this.label = `hop ${request.hop} (${request.hopName})`;
    this.timeoutMs = options.timeoutMs ?? request.timeoutMs;
    this.deadline = Date.now() + this.timeoutMs;
  }

  /** An OutboundError for this hop; `message` follows the label, e.g. "refused ...". */
  error(message: string, rep: RepCode, failure: OutboundFailure, cause?: unknown): OutboundError {
    return new OutboundError(
      `${this.label} ${message}`,
      rep,
      failure,
      this.request.hop,
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * Builds a message with a codec serializer; a target or credentials the protocol cannot
   * carry become an OutboundError before anything is sent.
   */
  encode(build: () => Buffer): Buffer {
    try {
      return build();
    } catch (error) {
      if (error instanceof ProtocolError) {
        throw this.error(
          `cannot send the request: ${error.message}`,
          repForProtocolError(error),
          'protocol',
          error,
        );
      }
      throw error;
    }
  }

  /** Errors surface in the next read, which listens for them. */
  send(bytes: Buffer): void {
    if (this.socket.writable) this.socket.write(bytes);
  }

  /** Reads one message; `what` names it in errors ("the method choice", "the reply"). */
  read<T>(parse: (buf: Buffer) => ParseResult<T>, what: string): Promise<T> {
    const { socket, request } = this;
    return new Promise<T>((resolve, reject) => {
      if (request.signal.aborted) {
        reject(this.error('cancelled', Rep.GENERAL_FAILURE, 'aborted'));
        return;
      }
      if (socket.destroyed || socket.readableEnded) {
        reject(this.error(`closed the connection before sending ${what}`, Rep.GENERAL_FAILURE, 'protocol'));
        return;
      }
      let buffer: Buffer = EMPTY;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;

      const cleanup = (): void => {
        settled = true;
        if (timer) clearTimeout(timer);
        request.signal.removeEventListener('abort', onAbort);
        socket.off('readable', onReadable);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        socket.off('error', onError);
      };
      const fail = (error: OutboundError): void => {
        if (settled) return;
        cleanup();
        reject(error);
      };
      const onReadable = (): void => {
        for (;;) {
          if (settled) return;
          const chunk = socket.read() as Buffer | null;
          if (chunk === null) return;
          buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
          let result: ParseResult<T>;
          try {
            result = parse(buffer);
          } catch (error) {
            const detail = error instanceof Error ? error.message : String(error);
            fail(this.error(`sent a malformed reply: ${detail}`, Rep.GENERAL_FAILURE, 'protocol', error));
            return;
          }
          if (result.done) {
            cleanup();
            // Same tick as the read: the stream still holds these bytes before any 'end'.
            if (result.size < buffer.length) socket.unshift(buffer.subarray(result.size));
            resolve(result.value);
            return;
          }
        }
      };
      const onEnd = (): void => {
        const got = buffer.length > 0 ? ` (${buffer.length} bytes of it arrived)` : '';
        fail(
          this.error(`closed the connection before sending ${what}${got}`, Rep.GENERAL_FAILURE, 'protocol'),
        );
      };
      const onError = (error: Error): void => {
        fail(outboundErrorFrom(error, this.label, request.hop));
      };
      const onAbort = (): void => {
        fail(this.error('cancelled', Rep.GENERAL_FAILURE, 'aborted'));
      };

      if (Number.isFinite(this.timeoutMs)) {
        timer = setTimeout(
          () => {
            fail(
              this.error(
                `did not answer within ${this.timeoutMs} ms (waiting for ${what})`,
                Rep.TTL_EXPIRED,
                'timeout',
              ),
            );
          },
          Math.max(0, this.deadline - Date.now()),
        );
      }
      request.signal.addEventListener('abort', onAbort, { once: true });
      socket.on('error', onError);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      // Adding the listener switches to paused mode and, if bytes are already buffered (left
      // by an earlier read), schedules a 'readable' for them.
      socket.on('readable', onReadable);
    });
  }
}
