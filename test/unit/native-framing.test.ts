import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { describe, test } from 'node:test';
import { MAX_MESSAGE_BYTES } from '../../shared/messages/protocol.ts';
import {
  type DecodeResult,
  FrameDecoder,
  FramingError,
  MAX_INCOMING_FRAME_BYTES,
  encodeFrame,
} from '../../native-host/src/native-messaging/framing.ts';
import { FRAMING_PROPERTIES, header, messages, raw } from './framing-properties.ts';

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

  // The properties themselves are in framing-properties.ts, which scripts/fuzz.ts runs for longer.
  for (const property of FRAMING_PROPERTIES) {
    test(property.test, () => {
      const run = property.run(property.ciRuns);
      assert.equal(run.failed, false, run.report);
      assert.equal(run.numRuns, property.ciRuns);
    });
  }
});
