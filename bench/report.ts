/**
 * Medians, ratios and targets, printed as a Markdown table that docs/performance.md quotes.
 * Absolute numbers are context only on a noisy machine: each ratio is taken within one round
 * (contender and baseline measured seconds apart), and the median of those is reported.
 */
import type { RulesBenchResult } from '../scripts/bench-rules.ts';
import type { ContenderId } from './contenders.ts';
import type { PacBenchResult } from './pac.ts';

export type MetricId =
  | 'bulk-up-1'
  | 'bulk-down-1'
  | 'bulk-up-8'
  | 'bulk-down-8'
  | 'rate-1'
  | 'rate-64'
  | 'p50'
  | 'p99'
  | 'cpu-gib';

export interface Series {
  /** One value per round. */
  readonly values: number[];
  /** The same round's value over its baseline (direct, or the best C server for rates). */
  readonly ratios: number[];
}

export interface MemoryFigure {
  readonly idleRssKb: number;
  readonly heldRssKb: number;
  readonly held: number;
  /** Growth of the proportional set size per held tunnel, in bytes. */
  readonly perConnBytes: number;
  /** The same for the second half of the tunnels only: what one more tunnel costs. */
  readonly marginalBytes: number;
  readonly error?: string;
}

export interface BenchResults {
  readonly machine: {
    readonly cpus: number;
    readonly model: string;
    readonly node: string;
    readonly kernel: string;
    readonly compiler?: string;
    readonly fdLimit?: number;
  };
  readonly options: { readonly rounds: number; readonly quick: boolean };
  readonly contenders: readonly { readonly id: ContenderId; readonly label: string }[];
  readonly notInstalled: readonly string[];
  readonly series: Partial<Record<MetricId, Partial<Record<ContenderId, Series>>>>;
  readonly memory: Partial<Record<ContenderId, MemoryFigure>>;
  /** TIME_WAIT sockets on the machine when each Switchyard rate run started. */
  readonly timeWait: readonly number[];
  readonly rules: RulesBenchResult;
  readonly pac: PacBenchResult | { readonly error: string };
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const COLUMNS: readonly ContenderId[] = [
  'direct',
  'switchyard',
  'switchyard-any',
  'baseline',
  'chain',
  'microsocks',
  'dante',
];

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–';

const throughput = (bytesPerSec: number): string =>
  bytesPerSec >= 1e9 ? `${fmt(bytesPerSec / 1e9, 2)} GB/s` : `${fmt(bytesPerSec / 1e6, 0)} MB/s`;

interface Row {
  readonly figure: string;
  readonly cells: Partial<Record<ContenderId, string>>;
  readonly target: string;
  readonly met: string;
}

function verdict(ok: boolean | undefined): string {
  if (ok === undefined) return 'n/a';
  return ok ? 'yes' : '**no**';
}

export function formatReport(results: BenchResults, command: string): string {
  const s = results.series;
  const med = (metric: MetricId, id: ContenderId): number => median(s[metric]?.[id]?.values ?? []);
  const ratio = (metric: MetricId, id: ContenderId): number => median(s[metric]?.[id]?.ratios ?? []);
  const present = new Set(results.contenders.map((c) => c.id));
  const has = (id: ContenderId): boolean => present.has(id);
  const rows: Row[] = [];

  const metricRow = (
    metric: MetricId,
    figure: string,
    show: (value: number) => string,
    ids: readonly ContenderId[],
    withRatio: boolean,
    target: string,
    met: boolean | undefined,
  ): void => {
    const cells: Partial<Record<ContenderId, string>> = {};
    for (const id of ids) {
      if (!has(id) || !s[metric]?.[id]) continue;
      const r = ratio(metric, id);
      cells[id] =
        withRatio && Number.isFinite(r) ? `${show(med(metric, id))} (${fmt(r, 2)}×)` : show(med(metric, id));
    }
    rows.push({ figure, cells, target, met: target ? verdict(met) : '' });
  };

  const bulkIds: ContenderId[] = [
    'direct',
    'switchyard',
    'baseline',
    'switchyard-any',
    'chain',
    'microsocks',
    'dante',
  ];
  for (const [metric, figure] of [
    ['bulk-up-1', 'Bulk, 1 connection, client → target'],
    ['bulk-down-1', 'Bulk, 1 connection, target → client'],
    ['bulk-up-8', 'Bulk, 8 connections, client → target'],
    ['bulk-down-8', 'Bulk, 8 connections, target → client'],
  ] as const) {
    const dante = ratio(metric, 'dante');
    metricRow(
      metric,
      `${figure} (× direct)`,
      throughput,
      bulkIds,
      true,
      '≥ dante',
      has('dante') ? ratio(metric, 'switchyard') >= dante : undefined,
    );
  }

  const rateIds: ContenderId[] = ['switchyard', 'baseline', 'switchyard-any', 'microsocks', 'dante'];
  for (const [metric, figure] of [
    ['rate-1', 'New connections/s, concurrency 1'],
    ['rate-64', 'New connections/s, concurrency 64'],
  ] as const) {
    const micro = med(metric, 'microsocks');
    metricRow(
      metric,
      `${figure} (× best C server)`,
      (v) => `${fmt(v)}/s`,
      rateIds,
      true,
      '≥ microsocks',
      has('microsocks') ? med(metric, 'switchyard') >= micro : undefined,
    );
  }

  const pingIds: ContenderId[] = [
    'direct',
    'switchyard',
    'baseline',
    'switchyard-any',
    'chain',
    'microsocks',
    'dante',
  ];
  metricRow(
    'p50',
    'Round trip p50, 64 B (× direct)',
    (v) => `${fmt(v, 1)} µs`,
    pingIds,
    true,
    '≤ 2.1× direct',
    ratio('p50', 'switchyard') <= 2.1,
  );
  metricRow('p99', 'Round trip p99, 64 B (× direct)', (v) => `${fmt(v, 1)} µs`, pingIds, true, '', undefined);

  const mem = results.memory;
  const memCells = (pick: (m: MemoryFigure) => string): Partial<Record<ContenderId, string>> => {
    const cells: Partial<Record<ContenderId, string>> = {};
    for (const id of COLUMNS) {
      const m = mem[id];
      if (m) cells[id] = pick(m);
    }
    return cells;
  };
  const held = mem.switchyard?.held ?? 0;
  rows.push({
    figure: `Memory per held tunnel, ${fmt(held)} open (PSS growth over idle ÷ tunnels)`,
    cells: memCells(
      (m) => `${fmt(m.perConnBytes / 1000, 1)} KB${m.error ? ` (only ${m.held}: ${m.error})` : ''}`,
    ),
    target: '≤ 13 KB',
    met: verdict(mem.switchyard ? mem.switchyard.perConnBytes <= 13_000 : undefined),
  });
  rows.push({
    figure: 'Memory per tunnel, second half only (marginal cost)',
    cells: memCells((m) => `${fmt(m.marginalBytes / 1000, 1)} KB`),
    target: '',
    met: '',
  });
  rows.push({
    figure: 'Idle RSS',
    cells: memCells((m) => `${fmt(m.idleRssKb / 1024, 1)} MiB`),
    target: '',
    met: '',
  });
  const cpuIds: ContenderId[] = ['switchyard', 'baseline', 'switchyard-any', 'chain', 'microsocks', 'dante'];
  metricRow(
    'cpu-gib',
    'CPU seconds per GiB relayed (bulk runs)',
    (v) => `${fmt(v, 2)} s`,
    cpuIds,
    false,
    '≤ dante',
    has('dante') ? med('cpu-gib', 'switchyard') <= med('cpu-gib', 'dante') : undefined,
  );

  const header = [
    'Figure',
    ...COLUMNS.filter(has).map((id) => results.contenders.find((c) => c.id === id)!.label),
    'Target',
    'Met',
  ];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${[r.figure, ...COLUMNS.filter(has).map((id) => r.cells[id] ?? ''), r.target, r.met].join(' | ')} |`,
    ),
  ];

  const m = results.machine;
  const out = [
    `Command: \`${command}\``,
    `Machine: ${m.cpus} CPUs (${m.model}), Linux ${m.kernel}, Node ${m.node}${m.compiler ? `, loadgen built with ${m.compiler}` : ''}` +
      (m.fdLimit ? `, open-file limit ${m.fdLimit}` : ''),
    `Rounds: ${results.options.rounds}${results.options.quick ? ' (--quick)' : ''}; medians of per-round values and per-round ratios.`,
    ...(results.notInstalled.length > 0
      ? [`Skipped: ${results.notInstalled.join(', ')} (Debian: apt-get install -y microsocks dante-server)`]
      : []),
    '',
    ...lines,
    '',
    `Rule matching, ${fmt(results.rules.rules)} rules: ${fmt(results.rules.decisionsPerSecond)} decisions/s ` +
      `(${fmt(results.rules.nsPerDecision)} ns each), compiled in ${fmt(results.rules.compileMs, 1)} ms.`,
    'error' in results.pac
      ? `PAC generation: failed (${results.pac.error}).`
      : `PAC generation, ${fmt(results.pac.rules)} rules: ${fmt(results.pac.ms, 1)} ms ` +
        `(median of ${results.pac.runs}), ${fmt(results.pac.bytes / 1000)} KB of script.`,
    `TIME_WAIT sockets on the machine during the Switchyard rate runs (median): ${fmt(median(results.timeWait))}.`,
  ];
  return out.join('\n');
}
