/**
 * PAC generation time for the same 10,000-rule list the rule-matching figure uses: what a
 * config change costs before the browser has its new script.
 */
import { generatePac } from '../shared/pac/generate.ts';
import { buildRules, prng } from '../scripts/bench-rules.ts';
import { median } from './report.ts';

export interface PacBenchResult {
  readonly rules: number;
  /** Median of the timed runs. */
  readonly ms: number;
  readonly bytes: number;
  readonly runs: number;
}

/** Bounded by count and time: at most `maxRuns` runs, and no new run after `budgetMs`. */
export function benchPac(maxRuns = 7, budgetMs = 3000): PacBenchResult {
  // The seed of scripts/bench-rules.ts, so both figures are about the same rules.
  const { rules } = buildRules(prng(0x5717c4));
  const input = {
    rules,
    defaultTarget: { kind: 'direct' } as const,
    proxy: { host: '127.0.0.1', port: 1080 },
    fallback: 'fail-closed' as const,
  };
  // The first run also compiles the generator; it is not the figure.
  let bytes = generatePac(input).length;
  const times: number[] = [];
  const stop = performance.now() + budgetMs;
  while (times.length < maxRuns && performance.now() < stop) {
    const start = performance.now();
    bytes = generatePac(input).length;
    times.push(performance.now() - start);
  }
  return { rules: rules.length, ms: median(times), bytes, runs: times.length };
}
