/** @jsxRuntime automatic @jsxImportSource preact */
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

export interface VirtualListProps {
  readonly count: number;
  /** Every row has this height: it is what makes the window arithmetic exact and cheap. */
  readonly rowHeight: number;
  /** Viewport height until the element can be measured (and in DOMs that do not lay out). */
  readonly height: number;
  readonly overscan?: number;
  readonly label: string;
  readonly renderRow: (index: number, active: boolean) => ComponentChildren;
  readonly rowKey: (index: number) => string | number;
  /** Keys the list does not handle itself, on a focused row (Enter, Space, Alt+arrows...). */
  readonly onRowKeyDown?: (index: number, event: KeyboardEvent) => void;
  /** Bring this row into view and make it the active one (e.g. after a move). */
  readonly focusIndex?: { readonly index: number; readonly focus: boolean } | null;
  readonly class?: string;
}

/**
 * A windowed list: only the rows in view (plus `overscan` on each side) exist in the DOM, so
 * 10,000 rules scroll and re-render as cheaply as 30. One row is the tab stop (roving tabindex);
 * arrow keys, Page Up/Down, Home and End move it.
 */
export function VirtualList({
  count,
  rowHeight,
  height,
  overscan = 8,
  label,
  renderRow,
  rowKey,
  onRowKeyDown,
  focusIndex,
  class: className,
}: VirtualListProps) {
  const viewport = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewportHeight, setViewportHeight] = useState(height);
  const [active, setActive] = useState(0);
  const pendingFocus = useRef<number | null>(null);

  const clampedActive = count === 0 ? -1 : Math.min(active, count - 1);

  useEffect(() => {
    const el = viewport.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(() => {
      if (el.clientHeight > 0) setViewportHeight(el.clientHeight);
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  // A shorter list (a search) can leave the scroll position past its end.
  const maxScroll = Math.max(0, count * rowHeight - viewportHeight);
  const top = Math.min(scrollTop, maxScroll);

  const scrollTo = (index: number) => {
    const el = viewport.current;
    let next = top;
    if (index * rowHeight < top) next = index * rowHeight;
    else if ((index + 1) * rowHeight > top + viewportHeight) next = (index + 1) * rowHeight - viewportHeight;
    if (next === top) return;
    if (el) el.scrollTop = next;
    // Set it here too: not every DOM fires scroll for a programmatic change before the next render.
    setScrollTop(next);
  };

  const moveTo = (index: number, focus: boolean) => {
    if (count === 0) return;
    const next = Math.max(0, Math.min(count - 1, index));
    setActive(next);
    scrollTo(next);
    if (focus) pendingFocus.current = next;
  };

  useEffect(() => {
    if (focusIndex) moveTo(focusIndex.index, focusIndex.focus);
    // Only a new request moves the list; moveTo changes every render.
  }, [focusIndex]);

  useLayoutEffect(() => {
    const index = pendingFocus.current;
    if (index === null) return;
    const row = viewport.current?.querySelector<HTMLElement>(`[data-index="${index}"]`);
    if (!row) return;
    pendingFocus.current = null;
    row.focus();
  });

  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(count - 1, Math.ceil((top + viewportHeight) / rowHeight) + overscan);
  const indices: number[] = [];
  // The active row stays rendered even when scrolled away, so the list never loses its tab stop.
  if (clampedActive >= 0 && clampedActive < first) indices.push(clampedActive);
  for (let i = first; i <= last; i++) indices.push(i);
  if (clampedActive > last) indices.push(clampedActive);

  const pageRows = Math.max(1, Math.floor(viewportHeight / rowHeight) - 1);

  const onKeyDown = (event: KeyboardEvent) => {
    const target = event.target as HTMLElement | null;
    const row = target?.closest<HTMLElement>('[data-index]');
    if (!row) return;
    const index = Number(row.dataset.index);
    // Typing in a field inside a row keeps its own keys.
    const inField = target !== row && target?.matches('input:not([type=checkbox]), select, textarea');
    if (!event.altKey && !event.ctrlKey && !event.metaKey && !inField) {
      const moves: Record<string, number> = {
        ArrowDown: index + 1,
        ArrowUp: index - 1,
        PageDown: index + pageRows,
        PageUp: index - pageRows,
        Home: 0,
        End: count - 1,
      };
      const next = moves[event.key];
      if (next !== undefined) {
        event.preventDefault();
        moveTo(next, true);
        return;
      }
    }
    onRowKeyDown?.(index, event);
  };

  return (
    <div
      ref={viewport}
      class={`vlist${className ? ` ${className}` : ''}`}
      style={{ height: `${height}px` }}
      onScroll={(event) => setScrollTop((event.currentTarget as HTMLDivElement).scrollTop)}
    >
      {/* Keys bubble here from the focused row (or a control in it). */}
      <ul
        class="vlist-spacer"
        aria-label={label}
        style={{ height: `${count * rowHeight}px` }}
        onKeyDown={onKeyDown}
      >
        {indices.map((index) => (
          <li
            key={rowKey(index)}
            class="vlist-row"
            aria-posinset={index + 1}
            aria-setsize={count}
            data-index={index}
            tabIndex={index === clampedActive ? 0 : -1}
            style={{ top: `${index * rowHeight}px`, height: `${rowHeight}px` }}
            // Clicking a control in a row makes that row the tab stop, as arrow keys would.
            onFocusIn={() => setActive(index)}
          >
            {renderRow(index, index === clampedActive)}
          </li>
        ))}
      </ul>
    </div>
  );
}
