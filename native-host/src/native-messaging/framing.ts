/**
 * Native-messaging framing, as Chromium and Firefox speak it on the host's stdio: a 32-bit
 * length in the machine's native byte order, then that many bytes of UTF-8 JSON. Pure codec:
 * no streams here, so every way bytes can arrive (split anywhere, several frames at once) is
 * testable without a browser.
 */
import { endianness } from 'node:os';
import { MAX_MESSAGE_BYTES } from '../../../shared/messages/protocol.ts';

/**
 * Browser to host: Chromium allows up to 64 MiB, but nothing Switchyard expects comes near
 * that (a config with thousands of rules is well under 1 MiB). 4 MiB leaves room for big rule
 * lists while a broken or hostile length cannot make the host buffer much.
 */
export const MAX_INCOMING_FRAME_BYTES = 4 * 1024 * 1024;

const HEADER_BYTES = 4;

export type Endianness = 'LE' | 'BE';

export type FramingErrorCode =
  /** The declared length of an incoming frame is over the limit; its bytes are skipped. */
  | 'FRAME_TOO_LARGE'
  /** An outgoing message would exceed the host-to-browser limit; nothing was sent. */
  | 'MESSAGE_TOO_LARGE'
  | 'INVALID_UTF8'
  | 'INVALID_JSON'
  /** The stream ended inside a frame. */
  | 'TRUNCATED'
  /** An outgoing value has no JSON form (undefined, a BigInt, a cycle). */
  | 'UNSERIALIZABLE';

export class FramingError extends Error {
  override readonly name = 'FramingError';
  readonly code: FramingErrorCode;
  /** The length the frame declared or the message would have needed, where that applies. */
  readonly size: number | undefined;

  constructor(code: FramingErrorCode, message: string, size?: number) {
    super(message);
    this.code = code;
    this.size = size;
  }
}

export interface FramingOptions {
  /** The machine's own by default; the browser uses native order. */
  readonly endianness?: Endianness;
}

function writeLength(header: Buffer, length: number, order: Endianness): void {
  if (order === 'LE') header.writeUInt32LE(length, 0);
  else header.writeUInt32BE(length, 0);
}

/** One frame for `message`. Throws a FramingError (and only that) when it cannot be sent. */
export function encodeFrame(
  message: unknown,
  options: FramingOptions & { readonly maxBytes?: number } = {},
): Buffer {
  const max = options.maxBytes ?? MAX_MESSAGE_BYTES;
  let json: string | undefined;
  try {
    json = JSON.stringify(message);
  } catch (error) {
    throw new FramingError('UNSERIALIZABLE', `the message has no JSON form: ${(error as Error).message}`);
  }
  if (json === undefined) throw new FramingError('UNSERIALIZABLE', 'the message has no JSON form');
  const size = Buffer.byteLength(json, 'utf8');
  if (size > max) {
    throw new FramingError(
      'MESSAGE_TOO_LARGE',
      `the message is ${size} bytes, over the ${max}-byte limit of native messaging`,
      size,
    );
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + size);
  writeLength(frame, size, options.endianness ?? endianness());
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

export type DecodeResult =
  | { readonly kind: 'message'; readonly message: unknown }
  | { readonly kind: 'error'; readonly error: FramingError };

/**
 * Feed it chunks as they arrive; it returns each complete frame's message, or a FramingError
 * for a frame that is too large, not UTF-8 or not JSON. A bad frame never stops the ones after
 * it: an oversized one is skipped by its declared length, so an honest sender stays in step.
 */
export class FrameDecoder {
  private readonly order: Endianness;
  private readonly maxFrameBytes: number;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Payload length of the frame being read, once its header is in. */
  private expected: number | undefined;
  /** Bytes of an oversized frame still to discard. */
  private skipping = 0;

  constructor(options: FramingOptions & { readonly maxFrameBytes?: number } = {}) {
    this.order = options.endianness ?? endianness();
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_INCOMING_FRAME_BYTES;
  }

  /** True while part of a frame is buffered or being skipped. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.expected !== undefined || this.skipping > 0;
  }

  push(chunk: Uint8Array): DecodeResult[] {
    const out: DecodeResult[] = [];
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, data.length);
        this.skipping -= n;
        data = data.subarray(n);
        if (this.skipping > 0) return out;
      }
      if (data.length > 0) {
        this.chunks.push(data);
        this.buffered += data.length;
        data = Buffer.alloc(0);
      }
      if (this.expected === undefined) {
        if (this.buffered < HEADER_BYTES) return out;
        const header = this.take(HEADER_BYTES);
        const length = this.order === 'LE' ? header.readUInt32LE(0) : header.readUInt32BE(0);
        if (length > this.maxFrameBytes) {
          out.push({
            kind: 'error',
            error: new FramingError(
              'FRAME_TOO_LARGE',
              `a frame declared ${length} bytes, over the ${this.maxFrameBytes}-byte limit; it was skipped`,
              length,
            ),
          });
          this.skipping = length;
          // What is already buffered belongs to the skipped frame first.
          data = this.take(this.buffered);
          continue;
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) return out;
      const payload = this.take(this.expected);
      this.expected = undefined;
      out.push(this.decodePayload(payload));
    }
  }

  /** The input ended: a frame cut short is reported, and the decoder starts afresh. */
  end(): DecodeResult[] {
    const cut = this.midFrame;
    const declared = this.expected;
    this.chunks = [];
    this.buffered = 0;
    this.expected = undefined;
    this.skipping = 0;
    if (!cut) return [];
    return [
      {
        kind: 'error',
        error: new FramingError('TRUNCATED', 'the input ended in the middle of a frame', declared),
      },
    ];
  }

  private decodePayload(payload: Buffer): DecodeResult {
    let text: string;
    try {
      text = this.utf8.decode(payload);
    } catch {
      return {
        kind: 'error',
        error: new FramingError('INVALID_UTF8', 'a frame is not valid UTF-8', payload.length),
      };
    }
    try {
      return { kind: 'message', message: JSON.parse(text) as unknown };
    } catch (error) {
      return {
        kind: 'error',
        error: new FramingError(
          'INVALID_JSON',
          `a frame is not JSON: ${(error as Error).message}`,
          payload.length,
        ),
      };
    }
  }

  /** The next `n` buffered bytes (n <= buffered), joined only when they span chunks. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const want = n - filled;
      if (chunk.length <= want) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, filled, 0, want);
        this.chunks[0] = chunk.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
