// The relay benchmark: Switchyard against no proxy, microsocks and danted, in interleaved rounds
// on loopback. Results and how to read them: docs/performance.md.
//   npm run bench [-- [--quick] [--rounds N] [--json FILE] [--baseline FILE [--baseline-node-args ARGS]]]
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport } from '../bench/report.ts';
import { benchOptions, runBench } from '../bench/run.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    json: { type: 'string' },
    baseline: { type: 'string' },
    'baseline-node-args': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(
    'usage: npm run bench -- [--quick] [--rounds N] [--json FILE]\n' +
      '  --quick      one short round (about 40 s) instead of three (about 3 min)\n' +
      '  --rounds N   rounds of interleaved runs (medians are over rounds)\n' +
      '  --json FILE  also write the raw per-round figures to FILE\n' +
      '  --baseline FILE  also measure another built host (e.g. a bundle of an older commit)\n' +
      '  --baseline-node-args "ARGS"  Node options for the baseline host (e.g. "--initial-old-space-size=64")',
  );
  process.exit(0);
}

const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 50)) {
  console.error('--rounds wants a whole number from 1 to 50');
  process.exit(2);
}

if (values.baseline !== undefined && !existsSync(values.baseline)) {
  console.error(`--baseline ${values.baseline}: no such file (a bundle built by scripts/build-host.mjs)`);
  process.exit(2);
}

const baselineNodeArgs = values['baseline-node-args']?.split(/\s+/).filter((a) => a.length > 0);
if (baselineNodeArgs !== undefined && values.baseline === undefined) {
  console.error('--baseline-node-args needs --baseline FILE (it can be dist/host/switchyard.js itself)');
  process.exit(2);
}
const options = benchOptions(values.quick, rounds, values.baseline, baselineNodeArgs);
const began = Date.now();
const log = (line: string): void =>
  console.error(`[bench ${((Date.now() - began) / 1000).toFixed(0).padStart(3)} s] ${line}`);

// Everything started is stopped by its PID (or danted's process group), also on Ctrl-C.
let cleanup: (() => Promise<void>) | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the servers`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const results = await runBench(options, log, (c) => {
  cleanup = c;
});
const args = process.argv.slice(2);
const command = `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
console.log(formatReport(results, command));
log(`done in ${((Date.now() - began) / 1000).toFixed(0)} s`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
