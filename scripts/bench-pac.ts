// Benchmark of the PAC generator on the rule matcher's 10,000-rule list: how long building the
// script takes, how big it is, how long a PAC engine takes to load it, and FindProxyForURL calls
// per second once loaded. The script runs in a node:vm context, as in a browser's PAC engine
// (V8 in Chrome). Exported for the project's benchmark runner; prints one JSON line when run
// directly:
//   node --import tsx scripts/bench-pac.ts

import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { generatePac } from '../shared/pac/generate.ts';
import { compileRules, type RuleTarget } from '../shared/rules/index.ts';
import { buildDestinations, buildRules, prng } from './bench-rules.ts';

export interface PacBenchResult {
  rules: number;
  /** Building the script, validation included, measured on the first (cold) build. */
  generateMs: number;
  pacBytes: number;
  /** Compiling and running the script in a fresh context (JSON.parse, regexes). */
  loadMs: number;
  evaluationsPerSecond: number;
  nsPerEvaluation: number;
}

// The seed of bench-rules.ts, so both benchmarks measure the same rules and hosts.
const SEED = 0x5717c4;
const MEASURE_MS = 1000;
const WARMUP_MS = 150;
const PROXY = { host: '127.0.0.1', port: 1080 };

type FindProxy = (url: string, host: string) => string;

export async function benchPac(): Promise<PacBenchResult> {
  const random = prng(SEED);
  const { rules, exactHosts, domains } = buildRules(random);
  const dests = buildDestinations(random, exactHosts, domains);
  const defaultTarget: RuleTarget = { kind: 'route', routeId: 'corp' };

  const generateStart = performance.now();
  const pac = generatePac({ rules, defaultTarget, proxy: PROXY, fallback: 'fail-closed' });
  const generateMs = performance.now() - generateStart;

  const context = vm.createContext({});
  const loadStart = performance.now();
  vm.runInContext(pac, context);
  const loadMs = performance.now() - loadStart;
  const find = context.FindProxyForURL as FindProxy;

  // What a browser passes: the URL and the host without IPv6 brackets.
  const urls = dests.map((d) => `https://${d.host}:${d.port}/`);
  const hosts = dests.map((d) => (d.host.startsWith('[') ? d.host.slice(1, -1) : d.host));

  // A fast wrong answer is worth nothing: check agreement with the host's matcher first.
  const compiled = compileRules(rules, defaultTarget);
  for (let i = 0; i < dests.length; i++) {
    const expected = compiled.decide(dests[i]!).target.kind === 'direct' ? 'DIRECT' : 'SOCKS5 127.0.0.1:1080';
    const answer = find(urls[i]!, hosts[i]!);
    if (answer !== expected)
      throw new Error(`PAC answered '${answer}' for ${urls[i]}, the host '${expected}'`);
  }

  // The checksum keeps the optimiser from discarding answers nobody reads.
  let checksum = 0;
  const pass = (): void => {
    for (let i = 0; i < urls.length; i++) checksum += find(urls[i]!, hosts[i]!).length;
  };
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) pass();

  let evaluations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < MEASURE_MS) {
    pass();
    evaluations += urls.length;
    elapsed = performance.now() - start;
  }
  if (!Number.isFinite(checksum)) throw new Error('unreachable: checksum overflow');

  return {
    rules: rules.length,
    generateMs: Math.round(generateMs * 100) / 100,
    pacBytes: Buffer.byteLength(pac),
    loadMs: Math.round(loadMs * 100) / 100,
    evaluationsPerSecond: Math.round((evaluations / elapsed) * 1000),
    nsPerEvaluation: Math.round((elapsed * 1e6) / evaluations),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchPac()));
}
