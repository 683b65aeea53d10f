/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Rule, RuleMatch } from '../../shared/rules/types.ts';
import { BackgroundError, errorMessage } from '../ui/background-client.ts';
import { routeLabel, targetFromKey, targetKey } from '../ui/format.ts';
import { VirtualList } from '../ui/VirtualList.tsx';
import { type Position, RuleEditor } from './RuleEditor.tsx';
import type { LoadedConfigEditor } from './use-config.ts';
import { Outcome } from '../ui/Messages.tsx';

export interface RulesProps {
  readonly editor: LoadedConfigEditor;
}

export const RULE_ROW_HEIGHT = 44;

/** Room the page keeps above and below the list. */
const PAGE_CHROME = 320;

function useListHeight(): number {
  const measure = () => Math.max(240, Math.min(760, window.innerHeight - PAGE_CHROME));
  const [height, setHeight] = useState(measure);
  useEffect(() => {
    const onResize = () => setHeight(measure());
    window.addEventListener('resize', onResize);
    return () => window.removeEventListener('resize', onResize);
  }, []);
  return height;
}

function ruleLabel(rule: Rule): string {
  return rule.name ?? rule.id;
}

function listText(values: readonly string[], max = 3): string {
  return values.length <= max
    ? values.join(', ')
    : `${values.slice(0, max).join(', ')} +${values.length - max} more`;
}

export function matchSummary(match: RuleMatch): string {
  const parts: string[] = [];
  if (match.hosts) parts.push(listText(match.hosts.map((h) => h.value)));
  if (match.ips) parts.push(listText(match.ips));
  if (match.ports)
    parts.push(
      `port ${listText(match.ports.map((p) => (typeof p === 'number' ? String(p) : `${p.from}-${p.to}`)))}`,
    );
  // Firefox containers by their cookieStoreId; the editor shows their names.
  if (match.contexts)
    parts.push(`in ${listText(match.contexts.map((c) => (c === 'private' ? 'private windows' : c)))}`);
  return parts.length === 0 ? 'every site' : parts.join(' · ');
}

type Editing = { readonly id: string | null };

export function Rules({ editor }: RulesProps) {
  const { config } = editor;
  const rules = config.rules;
  const [query, setQuery] = useState('');
  const [filter, setFilter] = useState('all');
  const [editing, setEditing] = useState<Editing | null>(null);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [focusRequest, setFocusRequest] = useState<{
    readonly ruleId: string;
    readonly focus: boolean;
  } | null>(null);
  const listHeight = useListHeight();

  const routeNames = useMemo(() => new Map(config.routes.map((r) => [r.id, routeLabel(r)])), [config.routes]);
  const targetText = (rule: Rule) =>
    rule.target.kind === 'route'
      ? `via ${routeNames.get(rule.target.routeId) ?? `${rule.target.routeId} (missing)`}`
      : rule.target.kind === 'direct'
        ? 'Direct'
        : 'Block';

  // Built once per rule list, so that each keystroke in the search is one pass of includes().
  const haystacks = useMemo(
    () =>
      rules.map((rule) =>
        [
          rule.name ?? '',
          rule.id,
          ...(rule.match.hosts ?? []).map((h) => h.value),
          ...(rule.match.ips ?? []),
          targetText(rule),
        ]
          .join('\n')
          .toLowerCase(),
      ),
    // targetText only reads routeNames.
    [rules, routeNames],
  );
  const indexById = useMemo(() => new Map(rules.map((r, i) => [r.id, i])), [rules]);

  const visible = useMemo(() => {
    const needle = query.trim().toLowerCase();
    const out: number[] = [];
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (filter === 'enabled' && !rule.enabled) continue;
      if (filter === 'disabled' && rule.enabled) continue;
      if (
        filter !== 'all' &&
        filter !== 'enabled' &&
        filter !== 'disabled' &&
        targetKey(rule.target) !== filter
      )
        continue;
      if (needle !== '' && !haystacks[i]!.includes(needle)) continue;
      out.push(i);
    }
    return out;
  }, [rules, haystacks, query, filter]);

  // Computed in the render that applies a move, so it sees the rule's new place.
  const focusIndex = useMemo(() => {
    if (!focusRequest) return null;
    const full = indexById.get(focusRequest.ruleId);
    const index = full === undefined ? -1 : visible.indexOf(full);
    return index < 0 ? null : { index, focus: focusRequest.focus };
    // Only a new request should move the list.
  }, [focusRequest]);

  const save = async (next: Rule[]) => {
    setError(null);
    try {
      await editor.patch({ rules: next });
    } catch (e) {
      setError(`Not saved: ${errorMessage(e)}`);
    }
  };

  const setEnabled = (index: number, enabled: boolean) => {
    void save(rules.map((r, i) => (i === index ? { ...r, enabled } : r)));
  };

  const move = (index: number, delta: -1 | 1, focus: boolean) => {
    const to = index + delta;
    const rule = rules[index];
    if (!rule || to < 0 || to >= rules.length) return;
    const next = [...rules];
    next[index] = next[to]!;
    next[to] = rule;
    setFocusRequest({ ruleId: rule.id, focus });
    void save(next);
  };

  const onSave = async (rule: Rule, position: Position) => {
    const original = editing?.id ?? null;
    const next =
      original === null
        ? position === 'first'
          ? [rule, ...rules]
          : [...rules, rule]
        : rules.map((r) => (r.id === original ? rule : r));
    try {
      await editor.patch({ rules: next });
    } catch (e) {
      return e instanceof BackgroundError && e.issues.length > 0
        ? e.issues
        : [{ path: 'rules', message: errorMessage(e) }];
    }
    setEditing(null);
    setNotice(`Saved rule ${ruleLabel(rule)}.`);
    // Only visible rules can be scrolled to; a search may hide the saved one.
    setFocusRequest({ ruleId: rule.id, focus: false });
    return [];
  };

  const onDelete = () => {
    const id = editing?.id;
    if (id === null || id === undefined) return;
    const rule = rules.find((r) => r.id === id);
    setEditing(null);
    setNotice(`Deleted rule ${rule ? ruleLabel(rule) : id}.`);
    void save(rules.filter((r) => r.id !== id));
  };

  const renderRow = (position: number, active: boolean) => {
    const index = visible[position]!;
    const rule = rules[index]!;
    const label = ruleLabel(rule);
    const tab = active ? 0 : -1;
    return (
      <div class="rule-row" data-enabled={rule.enabled}>
        <span class="rule-pos" title="Position: the first matching rule wins">
          {index + 1}
        </span>
        <input
          type="checkbox"
          checked={rule.enabled}
          tabIndex={tab}
          aria-label={`Enabled: ${label}`}
          onChange={(e) => setEnabled(index, e.currentTarget.checked)}
        />
        <span class="rule-name" title={rule.id}>
          {label}
        </span>
        <span class="rule-match">{matchSummary(rule.match)}</span>
        <span class="rule-target" data-kind={rule.target.kind}>
          {targetText(rule)}
        </span>
        <span class="rule-actions">
          <button
            type="button"
            class="icon-button"
            tabIndex={tab}
            aria-label={`Edit ${label}`}
            onClick={() => setEditing({ id: rule.id })}
          >
            Edit
          </button>
          <button
            type="button"
            class="icon-button"
            tabIndex={tab}
            aria-label={`Move ${label} up`}
            disabled={index === 0}
            onClick={() => move(index, -1, false)}
          >
            ↑
          </button>
          <button
            type="button"
            class="icon-button"
            tabIndex={tab}
            aria-label={`Move ${label} down`}
            disabled={index === rules.length - 1}
            onClick={() => move(index, 1, false)}
          >
            ↓
          </button>
        </span>
      </div>
    );
  };

  const onRowKeyDown = (position: number, event: KeyboardEvent) => {
    const index = visible[position];
    const rule = index === undefined ? undefined : rules[index];
    if (index === undefined || !rule) return;
    const onRow = (event.target as HTMLElement).dataset.index !== undefined;
    if (event.altKey && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) {
      event.preventDefault();
      move(index, event.key === 'ArrowUp' ? -1 : 1, true);
    } else if (onRow && event.key === 'Enter') {
      event.preventDefault();
      setEditing({ id: rule.id });
    } else if (onRow && event.key === ' ') {
      event.preventDefault();
      setEnabled(index, !rule.enabled);
    }
  };

  const editedRule = editing?.id ? rules.find((r) => r.id === editing.id) : undefined;
  return (
    <section aria-labelledby="rules-title">
      <div class="section-head">
        <h2 id="rules-title">Rules</h2>
        <button
          type="button"
          class="button button-primary"
          onClick={() => setEditing({ id: null })}
          disabled={editing?.id === null}
        >
          Add rule
        </button>
      </div>
      <p class="muted">
        Checked from the top: the first enabled rule that matches a site decides where it goes.
      </p>
      <div class="inline-field">
        <label for="default-target">Sites no rule matches go</label>
        <select
          id="default-target"
          value={targetKey(config.defaultTarget)}
          onChange={(e) =>
            void editor
              .patch({ defaultTarget: targetFromKey(e.currentTarget.value) })
              .catch((x: unknown) => setError(`Not saved: ${errorMessage(x)}`))
          }
        >
          <option value="direct">Direct</option>
          {config.routes.map((r) => (
            <option key={r.id} value={`route:${r.id}`}>
              via {routeLabel(r)}
            </option>
          ))}
          <option value="block">Block</option>
        </select>
      </div>
      {editing && (
        <RuleEditor
          key={editing.id ?? '(new)'}
          original={editedRule}
          routes={config.routes}
          ruleIndexById={indexById}
          usersConfigured={config.users.length > 0}
          onSave={onSave}
          onDelete={editedRule ? onDelete : undefined}
          onCancel={() => setEditing(null)}
        />
      )}
      <Outcome notice={notice} error={error} />
      <div class="toolbar">
        <div class="inline-field grow">
          <label for="rule-search" class="sr-only">
            Search rules
          </label>
          <input
            id="rule-search"
            type="search"
            placeholder="Search by name, pattern, address or route"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
        </div>
        <div class="inline-field">
          <label for="rule-filter">Show</label>
          <select id="rule-filter" value={filter} onChange={(e) => setFilter(e.currentTarget.value)}>
            <option value="all">All rules</option>
            <option value="enabled">Enabled</option>
            <option value="disabled">Disabled</option>
            <option value="direct">Direct</option>
            <option value="block">Block</option>
            {config.routes.map((r) => (
              <option key={r.id} value={`route:${r.id}`}>
                via {routeLabel(r)}
              </option>
            ))}
          </select>
        </div>
      </div>
      <p class="muted small" aria-live="polite">
        {visible.length === rules.length
          ? `${rules.length.toLocaleString('en')} ${rules.length === 1 ? 'rule' : 'rules'}`
          : `${visible.length.toLocaleString('en')} of ${rules.length.toLocaleString('en')} rules`}
        {rules.length > 0 &&
          ' · ↑↓ to move between rules, Enter to edit, Space to enable or disable, Alt+↑↓ to reorder'}
      </p>
      {rules.length === 0 ? (
        <p class="empty">No rules yet: every site goes the default way above.</p>
      ) : visible.length === 0 ? (
        <p class="empty">No rule matches this search.</p>
      ) : (
        <VirtualList
          class="rule-list"
          label="Rules"
          count={visible.length}
          rowHeight={RULE_ROW_HEIGHT}
          height={listHeight}
          rowKey={(position) => rules[visible[position]!]!.id}
          renderRow={renderRow}
          onRowKeyDown={onRowKeyDown}
          focusIndex={focusIndex}
        />
      )}
    </section>
  );
}
