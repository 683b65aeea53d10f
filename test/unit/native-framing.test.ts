import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_MESSAGE_BYTES } from '../../shared/messages/protocol.ts';
import {
  type DecodeResult,
  type Endianness,
  FrameDecoder,
  FramingError,
  MAX_INCOMING_FRAME_BYTES,
  encodeFrame,
} from '../../native-host/src/native-messaging/framing.ts';

function header(length: number, order: Endianness = endianness()): Buffer {
  const b = Buffer.alloc(4);
  if (order === 'LE') b.writeUInt32LE(length);
  else b.writeUInt32BE(length);
  return b;
}

function raw(payload: string | Buffer, order: Endianness = endianness()): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([header(body.length, order), body]);
}

function messages(results: readonly DecodeResult[]): unknown[] {
  return results.map((r) => (r.kind === 'message' ? r.message : `error:${r.error.code}`));
}

/** Cuts `data` at the given points (sorted, deduplicated, within range). */
function cut(data: Buffer, points: readonly number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of [...at, data.length]) {
    out.push(data.subarray(last, p));
    last = p;
  }
  return out;
}

describe('encodeFrame', () => {
  test('writes a 32-bit length in native byte order, then UTF-8 JSON', () => {
    const frame = encodeFrame({ hello: 'wörld' });
    const body = Buffer.from(JSON.stringify({ hello: 'wörld' }), 'utf8');
    const length = endianness() === 'LE' ? frame.readUInt32LE(0) : frame.readUInt32BE(0);
    assert.equal(length, body.length);
    assert.deepEqual(frame.subarray(4), body);
  });

  test('honours an explicit byte order', () => {
    assert.deepEqual([...encodeFrame(1, { endianness: 'BE' }).subarray(0, 4)], [0, 0, 0, 1]);
    assert.deepEqual([...encodeFrame(1, { endianness: 'LE' }).subarray(0, 4)], [1, 0, 0, 0]);
  });

  test('a message of exactly the limit goes; one byte more is refused with a typed error', () => {
    const fits = 'x'.repeat(MAX_MESSAGE_BYTES - 2);
    assert.equal(encodeFrame(fits).length, 4 + MAX_MESSAGE_BYTES);
    const over = 'x'.repeat(MAX_MESSAGE_BYTES - 1);
    assert.throws(
      () => encodeFrame(over),
      (e: unknown) =>
        e instanceof FramingError && e.code === 'MESSAGE_TOO_LARGE' && e.size === MAX_MESSAGE_BYTES + 1,
    );
  });

  test('the limit counts UTF-8 bytes, not characters', () => {
    const euro = '€'.repeat(Math.floor(MAX_MESSAGE_BYTES / 3)); // 3 bytes each, plus 2 quotes
    assert.throws(() => encodeFrame(euro), FramingError);
  });

  test('values without a JSON form are a typed error', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [undefined, 10n, cycle, () => 1]) {
      assert.throws(
        () => encodeFrame(value),
        (e: unknown) => e instanceof FramingError && e.code === 'UNSERIALIZABLE',
      );
    }
  });
});

describe('FrameDecoder', () => {
  test('decodes several frames from one chunk', () => {
    const d = new FrameDecoder();
    const data = Buffer.concat([encodeFrame({ a: 1 }), encodeFrame([1, 2]), encodeFrame('x')]);
    assert.deepEqual(messages(d.push(data)), [{ a: 1 }, [1, 2], 'x']);
    assert.equal(d.midFrame, false);
  });

  test('a frame fed one byte at a time comes out once, whole', () => {
    const d = new FrameDecoder();
    const data = encodeFrame({ type: 'status', id: 7, v: 1, text: 'ünïcödé 🚀' });
    const out: DecodeResult[] = [];
    for (const byte of data) out.push(...d.push(Buffer.from([byte])));
    assert.deepEqual(messages(out), [{ type: 'status', id: 7, v: 1, text: 'ünïcödé 🚀' }]);
  });

  test('reads the length in the configured byte order', () => {
    const d = new FrameDecoder({ endianness: 'BE' });
    assert.deepEqual(messages(d.push(raw('{"x":1}', 'BE'))), [{ x: 1 }]);
  });

  test('a declared length over the limit is an error; the frame is skipped and the next one decodes', () => {
    const d = new FrameDecoder({ maxFrameBytes: 16 });
    const big = raw(JSON.stringify('y'.repeat(40)));
    const out = [...d.push(big.subarray(0, 10)), ...d.push(big.subarray(10)), ...d.push(raw('{"ok":true}'))];
    assert.deepEqual(messages(out), ['error:FRAME_TOO_LARGE', { ok: true }]);
    const error = out[0];
    assert.ok(error?.kind === 'error');
    assert.equal(error.error.size, 42);
  });

  test('the default incoming limit is 4 MiB: a header declaring more is refused at once', () => {
    const d = new FrameDecoder();
    const out = d.push(header(MAX_INCOMING_FRAME_BYTES + 1));
    assert.deepEqual(messages(out), ['error:FRAME_TOO_LARGE']);
    assert.deepEqual(messages(new FrameDecoder().push(header(0xffffffff))), ['error:FRAME_TOO_LARGE']);
  });

  test('invalid UTF-8, invalid JSON and an empty frame are errors, and decoding goes on', () => {
    const d = new FrameDecoder();
    const data = Buffer.concat([
      raw(Buffer.from([0x22, 0xff, 0xfe, 0x22])),
      raw('{"unterminated": '),
      raw(''),
      raw('{"after":1}'),
    ]);
    assert.deepEqual(messages(d.push(data)), [
      'error:INVALID_UTF8',
      'error:INVALID_JSON',
      'error:INVALID_JSON',
      { after: 1 },
    ]);
  });

  test('input that ends inside a frame reports TRUNCATED once, then starts afresh', () => {
    const d = new FrameDecoder();
    d.push(encodeFrame({ a: 1 }).subarray(0, 6));
    assert.deepEqual(messages(d.end()), ['error:TRUNCATED']);
    assert.deepEqual(messages(d.end()), []);
    assert.deepEqual(messages(d.push(encodeFrame(2))), [2]);
  });

  test('property: any chunking of a stream of frames decodes to the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.constantFrom<Endianness>('LE', 'BE'),
        (values, points, order) => {
          const stream = Buffer.concat(values.map((v) => encodeFrame(v, { endianness: order })));
          const d = new FrameDecoder({ endianness: order });
          const out: DecodeResult[] = [];
          for (const chunk of cut(stream, points)) out.push(...d.push(chunk));
          out.push(...d.end());
          // JSON has no -0: what the codec carries is the JSON form of each value.
          assert.deepEqual(
            messages(out),
            values.map((v) => JSON.parse(JSON.stringify(v)) as unknown),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: any bytes, in any chunks, yield messages or typed errors and never throw', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 64 }),
        (chunks, maxFrameBytes) => {
          const d = new FrameDecoder({ maxFrameBytes });
          const out: DecodeResult[] = [];
          for (const chunk of chunks) out.push(...d.push(chunk));
          out.push(...d.end());
          for (const r of out) {
            if (r.kind === 'error') assert.ok(r.error instanceof FramingError);
            else assert.equal(r.kind, 'message');
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test('property: frames and oversized frames interleaved stay in step under any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant('OVERSIZED')), { maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (items, points) => {
          const max = 64;
          const frames = items.map((item) =>
            item === 'OVERSIZED'
              ? raw('z'.repeat(max + 10))
              : encodeFrame(item, { maxBytes: Number.MAX_SAFE_INTEGER }),
          );
          const expected = items.map((item, i) =>
            item === 'OVERSIZED' || frames[i]!.length - 4 > max
              ? 'error:FRAME_TOO_LARGE'
              : (JSON.parse(JSON.stringify(item)) as unknown),
          );
          const d = new FrameDecoder({ maxFrameBytes: max });
          const out: DecodeResult[] = [];
          for (const chunk of cut(Buffer.concat(frames), points)) out.push(...d.push(chunk));
          assert.deepEqual(messages(out), expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
