// Property-based tests of the SOCKS wire codec; the properties themselves are defined (and
// precisely stated) in codec-properties.ts, which scripts/fuzz.ts runs for much longer.
// FUZZ_RUNS sets the inputs per property (default 2000); FUZZ_SEED replays a reported seed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CodecProperty,
  INCREMENTAL_PROPERTIES,
  ROUND_TRIP_PROPERTIES,
  TOTALITY_PROPERTIES,
} from './codec-properties.ts';

function envInteger(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got '${text}'`);
  return n;
}

const NUM_RUNS = envInteger('FUZZ_RUNS', 2000);
const SEED = process.env.FUZZ_SEED ? envInteger('FUZZ_SEED', 0) : undefined;

function suite(title: string, properties: readonly CodecProperty[]): void {
  describe(title, () => {
    for (const property of properties) {
      it(property.name, () => {
        const run = property.run(NUM_RUNS, SEED);
        assert.equal(run.failed, false, run.report);
        assert.equal(run.numRuns, NUM_RUNS);
      });
    }
  });
}

suite('(a) parsers are total: need-more, a value within the input, or a ProtocolError', TOTALITY_PROPERTIES);
suite('(b) parsing incrementally agrees with parsing the whole input', INCREMENTAL_PROPERTIES);
suite('(c) serialize then parse returns the same value', ROUND_TRIP_PROPERTIES);
