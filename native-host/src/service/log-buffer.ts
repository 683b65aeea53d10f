/**
 * The live log: the last N tunnel events in a ring, numbered by seq, paged from newest to
 * oldest so that no page exceeds the native-messaging size limit, and pushed to subscribers.
 */
import {
  DEFAULT_LOG_PAGE_LIMIT,
  MAX_LOG_PAGE_LIMIT,
  MAX_MESSAGE_BYTES,
  type LogPageResult,
  utf8Length,
} from '../../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';

export const DEFAULT_LOG_CAPACITY = 10_000;

/** Room left in a page for the response envelope around the events. */
const ENVELOPE_RESERVE = 1024;
export const PAGE_BYTE_BUDGET = MAX_MESSAGE_BYTES - ENVELOPE_RESERVE;

/** Long enough for any real error text; short enough that one event always fits a message. */
const MAX_FIELD_CHARS = 2048;

interface Entry {
  readonly event: TunnelEvent;
  /**
   * Its JSON size, measured the first time a page needs it: every tunnel appends two events,
   * and most of them leave the ring unread, so measuring on append would cost every tunnel.
   */
  bytes: number;
}

function sizeOf(entry: Entry): number {
  if (entry.bytes < 0) entry.bytes = utf8Length(JSON.stringify(entry.event));
  return entry.bytes;
}

export type LogListener = (event: TunnelEvent) => void;

function capped(event: TunnelEvent): TunnelEvent {
  let out = event;
  for (const key in event) {
    const value = event[key as keyof TunnelEvent];
    if (typeof value === 'string' && value.length > MAX_FIELD_CHARS) {
      out = { ...out, [key]: `${value.slice(0, MAX_FIELD_CHARS)}...` };
    }
  }
  return out;
}

export class LogBuffer {
  private readonly ring: (Entry | undefined)[];
  private readonly capacity: number;
  private last = 0;
  private readonly listeners = new Set<LogListener>();

  constructor(capacity = DEFAULT_LOG_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be at least 1');
    this.capacity = capacity;
    this.ring = new Array<Entry | undefined>(capacity);
  }

  get latestSeq(): number {
    return this.last;
  }

  /** The oldest seq still held (latestSeq + 1 when empty). */
  get oldestSeq(): number {
    return Math.max(1, this.last - this.capacity + 1);
  }

  append(event: Omit<TunnelEvent, 'seq'>): TunnelEvent {
    const seq = ++this.last;
    const stored = capped({ seq, ...event });
    this.ring[(seq - 1) % this.capacity] = { event: stored, bytes: -1 };
    for (const listener of this.listeners) {
      try {
        listener(stored);
      } catch {
        // One broken subscriber must not stop the others or the tunnel that logged.
      }
    }
    return stored;
  }

  subscribe(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Events older than `before` (all when absent), newest first until `limit` or the byte
   * budget is reached, returned oldest first.
   */
  page(options: { before?: number; limit?: number; maxBytes?: number } = {}): LogPageResult {
    const limit = Math.min(Math.max(1, options.limit ?? DEFAULT_LOG_PAGE_LIMIT), MAX_LOG_PAGE_LIMIT);
    const budget = options.maxBytes ?? PAGE_BYTE_BUDGET;
    const start = Math.min((options.before ?? this.last + 1) - 1, this.last);
    const oldest = this.oldestSeq;
    const picked: TunnelEvent[] = [];
    let bytes = 0;
    let seq = start;
    for (; seq >= oldest && picked.length < limit; seq--) {
      const entry = this.ring[(seq - 1) % this.capacity]!;
      // +1 for the comma between array elements.
      const size = sizeOf(entry);
      if (picked.length > 0 && bytes + size + 1 > budget) break;
      bytes += size + 1;
      picked.push(entry.event);
    }
    picked.reverse();
    return { events: picked, more: seq >= oldest, latestSeq: this.last };
  }
}
