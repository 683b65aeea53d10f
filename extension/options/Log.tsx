/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import { adviceFor } from '../ui/advice.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { formatBytes, formatMs, formatTime } from '../ui/format.ts';
import { VirtualList } from '../ui/VirtualList.tsx';

export interface LogProps {
  readonly client: BackgroundClient;
}

/** Enough history to scroll back through a busy minute, bounded so a long session stays light. */
const MAX_EVENTS = 5000;
const ROW_HEIGHT = 36;

type KindFilter = 'all' | 'problems' | 'opened' | 'closed';

/** Events by seq, oldest first, without duplicates (a push can overlap the first page). */
function mergeEvents(a: readonly TunnelEvent[], b: readonly TunnelEvent[]): TunnelEvent[] {
  const bySeq = new Map<number, TunnelEvent>();
  for (const e of a) bySeq.set(e.seq, e);
  for (const e of b) bySeq.set(e.seq, e);
  const merged = [...bySeq.values()].sort((x, y) => x.seq - y.seq);
  return merged.length > MAX_EVENTS ? merged.slice(merged.length - MAX_EVENTS) : merged;
}

export function Log({ client }: LogProps) {
  const [events, setEvents] = useState<TunnelEvent[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [site, setSite] = useState('');
  const [kind, setKind] = useState<KindFilter>('all');
  const [paused, setPaused] = useState(false);
  const held = useRef<TunnelEvent[]>([]);
  const [heldCount, setHeldCount] = useState(0);
  const pausedRef = useRef(false);
  pausedRef.current = paused;

  useEffect(() => {
    let live = true;
    const unsubscribe = client.subscribe((push) => {
      if (push.type !== 'log' || !live) return;
      if (pausedRef.current) {
        held.current = mergeEvents(held.current, push.events);
        setHeldCount(held.current.length);
      } else setEvents((current) => mergeEvents(current, push.events));
    });
    client.send({ type: 'log.recent', limit: 1000 }).then(
      (recent) => {
        if (!live) return;
        setLoading(false);
        setEvents((current) => mergeEvents(recent, current));
      },
      (e: unknown) => {
        if (!live) return;
        setLoading(false);
        setError(errorMessage(e));
      },
    );
    return () => {
      live = false;
      unsubscribe();
    };
  }, [client]);

  const resume = () => {
    setEvents((current) => mergeEvents(current, held.current));
    held.current = [];
    setHeldCount(0);
    setPaused(false);
  };

  // Newest first: the log is read from the top while it grows.
  const shown = useMemo(() => {
    const needle = site.trim().toLowerCase();
    const out: TunnelEvent[] = [];
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i]!;
      if (kind === 'problems' && e.kind !== 'failed' && e.kind !== 'denied') continue;
      if ((kind === 'opened' || kind === 'closed') && e.kind !== kind) continue;
      if (needle !== '' && !e.host.toLowerCase().includes(needle) && !e.dest.toLowerCase().includes(needle))
        continue;
      out.push(e);
    }
    return out;
  }, [events, site, kind]);

  const renderRow = (index: number) => {
    const e = shown[index]!;
    const problem = e.kind === 'failed' || e.kind === 'denied';
    return (
      <div class="log-row" data-kind={e.kind}>
        <time class="log-time">{formatTime(e.time)}</time>
        <span class="log-kind">{e.kind}</span>
        <span class="log-dest" title={e.dest}>
          {e.dest}
        </span>
        <span class="log-rule" title={e.rule}>
          {e.rule ?? '—'}
        </span>
        <span class="log-via" title={e.via}>
          {e.via ?? 'direct'}
        </span>
        <span class="log-result" title={problem ? `${e.error ?? e.result ?? ''}\n${adviceFor(e)}` : e.result}>
          {e.error ?? e.result ?? ''}
        </span>
        <span class="log-size">
          {e.up !== undefined && e.down !== undefined ? `↑${formatBytes(e.up)} ↓${formatBytes(e.down)}` : ''}
          {e.ms !== undefined ? ` ${formatMs(e.ms)}` : ''}
        </span>
      </div>
    );
  };

  return (
    <section aria-labelledby="log-title">
      <div class="section-head">
        <h2 id="log-title">Live log</h2>
        {paused ? (
          <button type="button" class="button" onClick={resume}>
            Resume{heldCount > 0 ? ` (${heldCount} new)` : ''}
          </button>
        ) : (
          <button type="button" class="button" onClick={() => setPaused(true)}>
            Pause
          </button>
        )}
      </div>
      <p class="muted">
        Every connection through the host: which rule matched, which route it took, how it ended.
      </p>
      <div class="toolbar">
        <div class="inline-field grow">
          <label for="log-site">Site</label>
          <input
            id="log-site"
            type="search"
            placeholder="Filter by site, e.g. example.com"
            value={site}
            onInput={(e) => setSite(e.currentTarget.value)}
          />
        </div>
        <div class="inline-field">
          <label for="log-kind">Show</label>
          <select id="log-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as KindFilter)}>
            <option value="all">Everything</option>
            <option value="problems">Errors and denials</option>
            <option value="opened">Opened</option>
            <option value="closed">Closed</option>
          </select>
        </div>
      </div>
      {error && (
        <p class="error" role="alert">
          Could not load the log: {error}
        </p>
      )}
      <p class="muted small" aria-live="polite">
        {loading
          ? 'Loading…'
          : `${shown.length.toLocaleString('en')} of ${events.length.toLocaleString('en')} events`}
      </p>
      <div class="log-head" aria-hidden="true">
        <span>Time</span>
        <span>Event</span>
        <span>Destination</span>
        <span>Rule</span>
        <span>Route</span>
        <span>Result</span>
        <span>Traffic</span>
      </div>
      {shown.length > 0 && (
        <VirtualList
          class="log-list"
          label="Log events, newest first"
          count={shown.length}
          rowHeight={ROW_HEIGHT}
          height={480}
          rowKey={(index) => shown[index]!.seq}
          renderRow={renderRow}
        />
      )}
    </section>
  );
}
