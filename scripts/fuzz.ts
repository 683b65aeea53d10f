// Long-run fuzzer of the SOCKS wire codec and the native-messaging framing: runs the properties
// of test/unit/codec-properties.ts (totality, incremental = whole, round trips) and of
// test/unit/framing-properties.ts (any chunking, any bytes, oversized frames in step) round-robin
// until enough inputs were tried; the input count covers both.
//   npm run fuzz -- [--inputs N] [--seconds S] [--seed N] [--keep-going]
// --inputs defaults to 1,000,000 (unbounded when only --seconds is given); with both, whichever
// limit is reached first ends the run. Progress goes to stdout every ~5 s. On a failure the
// shrunk counterexample is printed with the seed to replay it, and the exit code is 1.

import { parseArgs } from 'node:util';
import { ALL_PROPERTIES as CODEC_PROPERTIES, type CodecProperty } from '../test/unit/codec-properties.ts';
import { FRAMING_PROPERTIES } from '../test/unit/framing-properties.ts';

const USAGE = 'usage: npm run fuzz -- [--inputs N] [--seconds S] [--seed N] [--keep-going]';
/** Inputs per property per turn: small enough that progress and limits are checked often. */
const CHUNK = 1000;
const PROGRESS_MS = 5000;

interface Group {
  readonly label: string;
  readonly properties: readonly CodecProperty[];
}
const GROUPS: readonly Group[] = [
  { label: 'codec', properties: CODEC_PROPERTIES },
  { label: 'framing', properties: FRAMING_PROPERTIES },
];
/** Every property with its group's label, in the round-robin order. */
const ALL: readonly { readonly group: string; readonly property: CodecProperty }[] = GROUPS.flatMap((g) =>
  g.properties.map((property) => ({ group: g.label, property })),
);

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.replaceAll('_', '').replaceAll(',', ''));
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got '${text}'`);
  return n;
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      inputs: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      'keep-going': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
}
try {
  args = parse();
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
if (args.values.help) {
  console.log(USAGE);
  process.exit(0);
}

const seconds = positive('seconds', args.values.seconds);
const inputLimit = Math.floor(
  positive('inputs', args.values.inputs) ?? (seconds === undefined ? 1_000_000 : Number.POSITIVE_INFINITY),
);
const deadline = seconds === undefined ? Number.POSITIVE_INFINITY : performance.now() + seconds * 1000;
const baseSeed =
  args.values.seed === undefined
    ? (Math.random() * 0x7fffffff) | 0
    : Number.parseInt(args.values.seed, 10) | 0;
const keepGoing = args.values['keep-going'] === true;

const number = (n: number): string => Math.round(n).toLocaleString('en-US');
const perProperty = new Map<CodecProperty, number>(ALL.map((p) => [p.property, 0]));
const perGroup = new Map<string, number>(GROUPS.map((g) => [g.label, 0]));
const started = performance.now();
let tried = 0;
let failures = 0;
let chunkIndex = 0;
let stopped = false;
let lastProgress = started;

function progress(label: string): void {
  const elapsed = (performance.now() - started) / 1000;
  const groups = [...perGroup].map(([group, n]) => `${group} ${number(n)}`).join(', ');
  console.log(
    `[${label} ${elapsed.toFixed(1).padStart(6)} s] inputs ${number(tried)} (${groups})  ` +
      `${number(tried / Math.max(elapsed, 1e-9))}/s  failures ${failures}`,
  );
}

function summary(): void {
  progress('done');
  for (const { group, property } of ALL) {
    console.log(`  ${number(perProperty.get(property) ?? 0).padStart(12)}  [${group}] ${property.name}`);
  }
  console.log(`base seed ${baseSeed} (replay with --seed ${baseSeed})`);
}

process.on('SIGINT', () => {
  stopped = true;
});

console.log(
  `fuzzing ${GROUPS.map((g) => `${g.properties.length} ${g.label}`).join(' + ')} properties: ` +
    `${Number.isFinite(inputLimit) ? `${number(inputLimit)} inputs` : 'no input limit'}` +
    `${seconds === undefined ? '' : `, at most ${seconds} s`}, base seed ${baseSeed}`,
);

outer: while (!stopped && tried < inputLimit && performance.now() < deadline) {
  for (const { group, property } of ALL) {
    const runs = Math.min(CHUNK, inputLimit - tried);
    if (runs <= 0 || stopped || performance.now() >= deadline) break outer;
    // One seed per chunk, derived from the base seed, so a whole run can be replayed.
    const seed = (baseSeed + Math.imul(chunkIndex++, 0x9e3779b1)) | 0;
    const result = property.run(runs, seed);
    tried += result.numRuns;
    perProperty.set(property, (perProperty.get(property) ?? 0) + result.numRuns);
    perGroup.set(group, (perGroup.get(group) ?? 0) + result.numRuns);
    if (result.failed) {
      failures++;
      console.error(`\nFAILED: [${group}] ${property.name}\n${result.report ?? '(no report)'}\n`);
      if (!keepGoing) break outer;
    }
    if (performance.now() - lastProgress >= PROGRESS_MS) {
      lastProgress = performance.now();
      progress('fuzz');
    }
    // Let SIGINT in between chunks.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

summary();
if (stopped) console.log('interrupted');
process.exitCode = failures > 0 ? 1 : stopped ? 130 : 0;
