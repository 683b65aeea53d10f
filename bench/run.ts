/**
 * The measurements: memory with 2,000 held tunnels once per server, then rounds in which the
 * contenders take turns at each figure (the order rotates every round), so that every ratio
 * compares runs made seconds apart on the same noisy machine.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { benchRules } from '../scripts/bench-rules.ts';
import {
  baseline,
  type Contender,
  type ContenderId,
  chain,
  dante,
  direct,
  ensureFreshBuild,
  ensureInstalled,
  microsocks,
  switchyard,
  switchyardAny,
} from './contenders.ts';
import {
  type BulkReport,
  type HeldTunnels,
  type Loadgen,
  type PingReport,
  type RateReport,
  compileLoadgen,
  holdTunnels,
  runClient,
  startTarget,
} from './loadgen.ts';
import { benchPac } from './pac.ts';
import { cpuSeconds, pssKb, raiseFdLimit, rssKb } from './proc.ts';
import type { BenchResults, MemoryFigure, MetricId, Series } from './report.ts';

export interface BenchOptions {
  readonly rounds: number;
  readonly quick: boolean;
  /** Each timed loop first runs this long unmeasured (connections, buffers, JIT settle). */
  readonly warmMs: number;
  readonly bulkMs: number;
  readonly rateMs: number;
  readonly pingMs: number;
  readonly holdCount: number;
  /** Another built host to measure alongside (before/after in one run). */
  readonly baseline?: string | undefined;
  /** Node options for the baseline host only. */
  readonly baselineNodeArgs?: readonly string[] | undefined;
}

export function benchOptions(
  quick: boolean,
  rounds: number | undefined,
  baseline?: string,
  baselineNodeArgs?: readonly string[],
): BenchOptions {
  const common = { quick, holdCount: 2000, baseline, baselineNodeArgs };
  return quick
    ? { ...common, rounds: rounds ?? 1, warmMs: 150, bulkMs: 400, rateMs: 400, pingMs: 300 }
    : { ...common, rounds: rounds ?? 3, warmMs: 300, bulkMs: 1000, rateMs: 1000, pingMs: 700 };
}

const BULK = [
  { metric: 'bulk-up-1', dir: 'up', conns: 1 },
  { metric: 'bulk-down-1', dir: 'down', conns: 1 },
  { metric: 'bulk-up-8', dir: 'up', conns: 8 },
  { metric: 'bulk-down-8', dir: 'down', conns: 8 },
] as const;
const RATE_CONCURRENCY = [1, 64] as const;
const PING_SIZE = 64;
const GIB = 1024 ** 3;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** TIME_WAIT sockets on the machine: the owner check scans them all in /proc/net/tcp. */
function timeWaitSockets(): number {
  const m = readFileSync('/proc/net/sockstat', 'utf8').match(/^TCP:.* tw (\d+)/m);
  return Number(m?.[1] ?? 0);
}

export function machine(): BenchResults['machine'] {
  const model =
    readFileSync('/proc/cpuinfo', 'utf8')
      .match(/^model name\s*:\s*(.*)$/m)?.[1]
      ?.trim() ?? 'unknown';
  return {
    cpus: cpus().length,
    model,
    node: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

/**
 * Memory of a fresh server: idle, with half the tunnels, then with all of them. The first
 * half also pays for one-time growth (a busy runtime's larger heap, JIT code); the second half
 * shows what one more tunnel costs.
 */
export async function measureMemory(
  lg: Loadgen,
  targetPort: number,
  c: Contender,
  count: number,
): Promise<MemoryFigure> {
  const idleRssKb = rssKb(c.pids());
  const idlePssKb = pssKb(c.pids());
  const half = Math.floor(count / 2);
  const held: HeldTunnels[] = [];
  try {
    held.push(await holdTunnels(lg, targetPort, c.port, half, 90_000));
    // Let allocation from the handshakes settle before reading what the tunnels keep.
    await sleep(1000);
    const halfPssKb = pssKb(c.pids());
    held.push(await holdTunnels(lg, targetPort, c.port, count - half, 90_000));
    await sleep(1000);
    const heldPssKb = pssKb(c.pids());
    const heldRssKb = rssKb(c.pids());
    const [a, b] = held.map((h) => h.report);
    const total = (a?.held ?? 0) + (b?.held ?? 0);
    const error = a?.error ?? b?.error;
    return {
      idleRssKb,
      heldRssKb,
      held: total,
      perConnBytes: total > 0 ? ((heldPssKb - idlePssKb) * 1024) / total : Number.NaN,
      marginalBytes: b && b.held > 0 ? ((heldPssKb - halfPssKb) * 1024) / b.held : Number.NaN,
      ...(error ? { error } : {}),
    };
  } finally {
    for (const h of held) await h.release();
  }
}

class Recorder {
  readonly series: Partial<Record<MetricId, Partial<Record<ContenderId, Series>>>> = {};

  add(metric: MetricId, id: ContenderId, value: number, ratio?: number): void {
    const byContender = this.series[metric] ?? {};
    this.series[metric] = byContender;
    const s = byContender[id] ?? { values: [], ratios: [] };
    byContender[id] = s;
    s.values.push(value);
    if (ratio !== undefined && Number.isFinite(ratio)) s.ratios.push(ratio);
  }
}

/** Runs the whole benchmark; `cleanup` is set so that a signal can stop what was started. */
export async function runBench(
  options: BenchOptions,
  log: (line: string) => void,
  onCleanup: (cleanup: () => Promise<void>) => void,
): Promise<BenchResults> {
  const fd = raiseFdLimit();
  await ensureFreshBuild(log);
  const lg: Loadgen = compileLoadgen();
  const started: Contender[] = [];
  let target: Awaited<ReturnType<typeof startTarget>> | undefined;
  const cleanup = async (): Promise<void> => {
    for (const c of started.splice(0)) await c.stop().catch(() => undefined);
    await target?.stop();
    target = undefined;
    lg.dispose();
  };
  onCleanup(cleanup);
  try {
    // The target outlives every run; its own deadline only matters if we die without stopping it.
    target = await startTarget(lg, 900);
    const targetPort = target.port;
    const installed = ensureInstalled(log);
    const notInstalled = [
      ...(installed.microsocks ? [] : ['microsocks']),
      ...(installed.dante ? [] : ['dante-server']),
    ];

    const start = async (make: () => Promise<Contender>): Promise<Contender> => {
      const c = await make();
      started.push(c);
      return c;
    };
    const none = direct();
    const sy = await start(switchyard);
    const syAny = await start(switchyardAny);
    const other =
      options.baseline === undefined
        ? undefined
        : await start(() => baseline(options.baseline!, options.baselineNodeArgs));
    const hops = await start(chain);
    // A reference server that will not start is reported, not fatal: the rest still compares.
    const optional = async (name: string, make: () => Promise<Contender>): Promise<Contender | undefined> => {
      try {
        return await start(make);
      } catch (error) {
        log(`${name} did not start: ${error instanceof Error ? error.message : String(error)}`);
        notInstalled.push(`${name} (installed, but did not start)`);
        return undefined;
      }
    };
    const ms = installed.microsocks ? await optional('microsocks', microsocks) : undefined;
    const dt = installed.dante ? await optional('dante-server', dante) : undefined;
    // A baseline runs without the owner check (see contenders.ts), so the same configuration of
    // this build is measured everywhere too: build against build, nothing else different.
    const peer = other === undefined ? undefined : syAny;
    const servers = [sy, peer, other, ms, dt].filter((c): c is Contender => c !== undefined);
    const mine = [sy, peer, other].filter((c): c is Contender => c !== undefined);
    const cServers = [ms, dt].filter((c): c is Contender => c !== undefined);
    log(`started: ${started.map((c) => `${c.label} :${c.port}`).join(', ')}; target :${targetPort}`);

    // Memory first, on fresh processes: idle, then with the tunnels held.
    await sleep(500);
    const memory: Partial<Record<ContenderId, MemoryFigure>> = {};
    for (const c of servers) {
      let m: MemoryFigure;
      try {
        m = await measureMemory(lg, targetPort, c, options.holdCount);
      } catch (error) {
        log(`memory ${c.label} failed: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      memory[c.id] = m;
      log(
        `memory ${c.label}: idle ${(m.idleRssKb / 1024).toFixed(1)} MiB; ${m.held} tunnels ` +
          `${(m.perConnBytes / 1000).toFixed(1)} KB each, the second half ${(m.marginalBytes / 1000).toFixed(1)} KB each`,
      );
      await sleep(300);
    }

    const rec = new Recorder();
    const timeWait: number[] = [];
    // One failed run (a server refusing under load, say) costs that figure for that round only.
    const attempt = async <T>(what: string, run: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await run();
      } catch (error) {
        log(`    ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
        return undefined;
      }
    };
    const bulkTimeout = options.warmMs + options.bulkMs + 30_000;
    for (let round = 0; round < options.rounds; round++) {
      log(`round ${round + 1}/${options.rounds}`);
      const cpu = new Map<ContenderId, { seconds: number; bytes: number }>();

      log('  bulk throughput');
      for (const b of BULK) {
        const got = new Map<ContenderId, number>();
        for (const c of rotate([none, ...mine, hops, ...cServers], round)) {
          const before = cpuSeconds(c.pids());
          const r = await attempt(`${c.label}, bulk ${b.dir} ×${b.conns}`, () =>
            runClient<BulkReport>(
              lg,
              ['bulk', targetPort, c.port, b.dir, b.conns, options.warmMs, options.bulkMs],
              bulkTimeout,
            ),
          );
          if (!r) continue;
          const used = cpuSeconds(c.pids()) - before;
          if (r.errors > 0)
            log(`    ${c.label}: ${r.errors} of ${b.conns} connections failed during bulk ${b.dir}`);
          got.set(c.id, r.bytesPerSec);
          const acc = cpu.get(c.id) ?? { seconds: 0, bytes: 0 };
          cpu.set(c.id, { seconds: acc.seconds + used, bytes: acc.bytes + r.totalBytes });
        }
        const directValue = got.get('direct') ?? Number.NaN;
        for (const [id, v] of got) rec.add(b.metric, id, v, v / directValue);
      }
      for (const [id, { seconds, bytes }] of cpu) {
        if (id !== 'direct' && bytes > 0) rec.add('cpu-gib', id, seconds / (bytes / GIB));
      }

      log('  connection rate');
      for (const conc of RATE_CONCURRENCY) {
        const metric = conc === 1 ? 'rate-1' : 'rate-64';
        const got = new Map<ContenderId, number>();
        for (const c of rotate([...new Set([...mine, syAny]), ...cServers], round)) {
          if (c.id === 'switchyard') timeWait.push(timeWaitSockets());
          const r = await attempt(`${c.label}, connection rate ×${conc}`, () =>
            runClient<RateReport>(
              lg,
              ['rate', targetPort, c.port, conc, options.warmMs, options.rateMs, 1_000_000],
              options.warmMs + options.rateMs + 30_000,
            ),
          );
          if (!r) continue;
          if (r.errors > 0) log(`    ${c.label}: ${r.errors} failed connections at concurrency ${conc}`);
          got.set(c.id, r.errors > 0 && r.perSec === 0 ? Number.NaN : r.perSec);
        }
        const best = Math.max(...cServers.map((c) => got.get(c.id) ?? 0));
        for (const [id, v] of got) rec.add(metric, id, v, best > 0 ? v / best : undefined);
      }

      log('  round-trip latency');
      const p50 = new Map<ContenderId, number>();
      const p99 = new Map<ContenderId, number>();
      for (const c of rotate([none, ...mine, hops, ...cServers], round)) {
        const r = await attempt(`${c.label}, round trips`, () =>
          runClient<PingReport>(
            lg,
            ['ping', targetPort, c.port, PING_SIZE, 300, 200_000, options.pingMs],
            options.pingMs + 30_000,
          ),
        );
        if (!r) continue;
        p50.set(c.id, r.p50Us);
        p99.set(c.id, r.p99Us);
      }
      for (const [metric, got] of [
        ['p50', p50],
        ['p99', p99],
      ] as const) {
        const directValue = got.get('direct') ?? Number.NaN;
        for (const [id, v] of got) rec.add(metric, id, v, v / directValue);
      }
    }

    // In-process and CPU-bound: run alone, after the servers have gone quiet.
    log('rule matching and PAC generation (10,000 rules)');
    const rules = await benchRules();
    let pac: BenchResults['pac'];
    try {
      pac = benchPac();
    } catch (error) {
      pac = { error: error instanceof Error ? error.message : String(error) };
    }

    return {
      machine: { ...machine(), compiler: lg.compiler, fdLimit: fd.soft },
      options,
      contenders: [none, ...new Set([...mine, syAny]), hops, ...cServers].map((c) => ({
        id: c.id,
        label: c.label,
      })),
      notInstalled,
      series: rec.series,
      memory,
      timeWait,
      rules,
      pac,
    };
  } finally {
    await cleanup();
  }
}
