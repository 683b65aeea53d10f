/**
 * A full garbage collection when the service goes quiet after a burst of new connections.
 *
 * The service runs with a large initial old generation (node-flags.ts) so that V8 does not
 * collect it again and again in the middle of a transfer. The price is that what a burst of
 * handshakes leaves behind (promises, parsed requests, buffers that lived a little too long)
 * stays in the heap until the old generation reaches that size, which can be a long time for
 * a process that then sits idle holding its tunnels: measured, 16-20 KB of memory per held
 * tunnel instead of the 10-11 KB they actually keep alive. V8 has no idle hook that Node
 * exposes, so the service asks for the collection itself: after clients came or went, once a
 * whole tick passes with none arriving and almost no CPU used (no transfer running either),
 * if the heap has grown since the last one. The pause of a few milliseconds then costs no
 * client anything, and a busy process is never interrupted by it. At most once per burst.
 * Needs node's --expose-gc (in node-flags.json); without it this does nothing.
 */
import { getHeapStatistics } from 'node:v8';

export interface IdleCollectorOptions {
  /** A number that changes whenever a client connects or leaves (counts of both, added). */
  readonly activity: () => number;
  /** How often to look; quiet means no change over one whole tick. */
  readonly tickMs?: number;
  /** Heap growth since the last collection that makes one worth it. */
  readonly minGrowthBytes?: number;
  /** The share of one CPU below which a tick counts as idle. */
  readonly idleCpuShare?: number;
  /** What runs the collection: by default V8's, exposed by --expose-gc. */
  readonly collect?: () => void;
}

export interface IdleCollector {
  /** Full collections run so far. */
  readonly collections: number;
  stop(): void;
}

type Collect = () => void;

function exposedGc(): Collect | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as Collect) : undefined;
}

export function startIdleCollector(options: IdleCollectorOptions): IdleCollector {
  const collect = options.collect ?? exposedGc();
  const tickMs = options.tickMs ?? 250;
  const minGrowth = options.minGrowthBytes ?? 8 * 1024 * 1024;
  let collections = 0;
  if (collect === undefined) return { collections, stop: () => undefined };

  const idleCpuMicros = tickMs * 1000 * (options.idleCpuShare ?? 0.05);
  let lastActivity = options.activity();
  let lastCpu = process.cpuUsage();
  let busySinceCollection = false;
  let heapAfterCollection = getHeapStatistics().used_heap_size;
  const timer = setInterval(() => {
    const activity = options.activity();
    const cpuNow = process.cpuUsage();
    const cpuMicros = cpuNow.user - lastCpu.user + (cpuNow.system - lastCpu.system);
    lastCpu = cpuNow;
    if (activity !== lastActivity) {
      lastActivity = activity;
      busySinceCollection = true;
      return;
    }
    if (!busySinceCollection || cpuMicros > idleCpuMicros) return;
    if (getHeapStatistics().used_heap_size - heapAfterCollection < minGrowth) return;
    collect();
    collections++;
    busySinceCollection = false;
    heapAfterCollection = getHeapStatistics().used_heap_size;
  }, tickMs);
  // Never the reason the process stays up.
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop: () => clearInterval(timer),
  };
}
