// Properties of the native-messaging framing (native-host/src/native-messaging/framing.ts),
// shared by the bounded CI run (native-framing.test.ts, `ciRuns` inputs each) and the long-run
// fuzzer (scripts/fuzz.ts, alongside the codec properties of codec-properties.ts).
//
// (a) chunking: a stream of frames decodes to the JSON form of each value, however its bytes
//     are split into chunks, in either byte order;
// (b) totality: any bytes, in any chunks, with any frame limit, give messages or typed
//     FramingErrors and never throw;
// (c) staying in step: frames over the limit, interleaved with ones under it, are each reported
//     once as FRAME_TOO_LARGE and skipped, and every frame after them still decodes.

import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import fc from 'fast-check';
import {
  type DecodeResult,
  type Endianness,
  FrameDecoder,
  FramingError,
  encodeFrame,
} from '../../native-host/src/native-messaging/framing.ts';
import { type CodecProperty, define } from './codec-properties.ts';

export function header(length: number, order: Endianness = endianness()): Buffer {
  const b = Buffer.alloc(4);
  if (order === 'LE') b.writeUInt32LE(length);
  else b.writeUInt32BE(length);
  return b;
}

export function raw(payload: string | Buffer, order: Endianness = endianness()): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([header(body.length, order), body]);
}

export function messages(results: readonly DecodeResult[]): unknown[] {
  return results.map((r) => (r.kind === 'message' ? r.message : `error:${r.error.code}`));
}

/** Cuts `data` at the given points (sorted, deduplicated, within range). */
export function cut(data: Buffer, points: readonly number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of [...at, data.length]) {
    out.push(data.subarray(last, p));
    last = p;
  }
  return out;
}

export interface FramingProperty extends CodecProperty {
  /** The title of its test in native-framing.test.ts. */
  readonly test: string;
  /** Inputs per CI run. */
  readonly ciRuns: number;
}

function framing<T>(
  name: string,
  test: string,
  ciRuns: number,
  arb: fc.Arbitrary<T>,
  check: (value: T) => void,
): FramingProperty {
  return { ...define(name, arb, check), test, ciRuns };
}

export const CHUNKING_PROPERTY: FramingProperty = framing(
  'FrameDecoder: any chunking of a stream of frames decodes to the same messages',
  'property: any chunking of a stream of frames decodes to the same messages',
  300,
  fc.tuple(
    fc.array(fc.jsonValue(), { maxLength: 12 }),
    fc.array(fc.nat(), { maxLength: 30 }),
    fc.constantFrom<Endianness>('LE', 'BE'),
  ),
  ([values, points, order]) => {
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
);

export const TOTALITY_PROPERTY: FramingProperty = framing(
  'FrameDecoder: any bytes, in any chunks, yield messages or typed errors and never throw',
  'property: any bytes, in any chunks, yield messages or typed errors and never throw',
  500,
  fc.tuple(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), fc.integer({ min: 0, max: 64 })),
  ([chunks, maxFrameBytes]) => {
    const d = new FrameDecoder({ maxFrameBytes });
    const out: DecodeResult[] = [];
    for (const chunk of chunks) out.push(...d.push(chunk));
    out.push(...d.end());
    for (const r of out) {
      if (r.kind === 'error') assert.ok(r.error instanceof FramingError);
      else assert.equal(r.kind, 'message');
    }
  },
);

export const OVERSIZED_PROPERTY: FramingProperty = framing(
  'FrameDecoder: frames and oversized frames interleaved stay in step under any chunking',
  'property: frames and oversized frames interleaved stay in step under any chunking',
  300,
  fc.tuple(
    fc.array(fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant('OVERSIZED')), { maxLength: 10 }),
    fc.array(fc.nat(), { maxLength: 20 }),
  ),
  ([items, points]) => {
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
);

export const FRAMING_PROPERTIES: readonly FramingProperty[] = [
  CHUNKING_PROPERTY,
  TOTALITY_PROPERTY,
  OVERSIZED_PROPERTY,
];
