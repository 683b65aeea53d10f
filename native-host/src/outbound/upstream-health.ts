/**
 * Which first hops are known to be down, for a while. Without it every request to a route with
 * a dead first hop would wait out that hop's timeout again before failing over; with it, the
 * requests that follow within upstreamRetryMs go straight to the fallback (or fail at once),
 * and the first one after that tries the hop again.
 */
import { OutboundError, type OutboundFailure } from './outbound.ts';

export interface DownEntry {
  /** The failure that marked the upstream down. */
  readonly error: OutboundError;
  /** When it was marked down (clock ms). */
  readonly since: number;
  /** When it will be tried again (clock ms). */
  readonly until: number;
}

export interface UpstreamHealthOptions {
  /** How long an upstream counts as down after a failure (timeouts.upstreamRetryMs); 0 = never. */
  readonly retryMs: number;
  /** Milliseconds now; tests move time by hand. */
  readonly now?: () => number;
}

/**
 * Only these say "could not reach the first hop at all". Auth failures, protocol errors and
 * refusals from the hop itself come from a hop that is up and answering: waiting less for it
 * or going around it would hide a configuration mistake.
 */
const DOWN_FAILURES: ReadonlySet<OutboundFailure> = new Set<OutboundFailure>([
  'refused',
  'timeout',
  'unreachable',
  'not-found',
]);

/** Whether `error` means that a chain's first hop could not be reached. */
export function isFirstHopDown(error: unknown): error is OutboundError {
  return error instanceof OutboundError && error.hop === 1 && DOWN_FAILURES.has(error.failure);
}

export class UpstreamHealth {
  private readonly retryMs: number;
  private readonly now: () => number;
  private readonly down = new Map<string, DownEntry>();

  constructor(options: UpstreamHealthOptions) {
    this.retryMs = options.retryMs;
    this.now = options.now ?? Date.now;
  }

  markDown(upstreamId: string, error: OutboundError): void {
    if (this.retryMs <= 0) return;
    const now = this.now();
    this.down.set(upstreamId, { error, since: now, until: now + this.retryMs });
  }

  markUp(upstreamId: string): void {
    this.down.delete(upstreamId);
  }

  /** The entry while the upstream counts as down; undefined once it may be tried again. */
  downSince(upstreamId: string): DownEntry | undefined {
    const entry = this.down.get(upstreamId);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.until) {
      this.down.delete(upstreamId);
      return undefined;
    }
    return entry;
  }

  /** Milliseconds now, on the same clock as the entries. */
  clock(): number {
    return this.now();
  }
}
