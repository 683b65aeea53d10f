/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Route } from '../../shared/config/schema.ts';
import type { HostPatternType, PortRange, Rule, RuleMatch } from '../../shared/rules/types.ts';
import { validateRules } from '../../shared/rules/validate.ts';
import { ContainerPicker } from '../ui/ContainerPicker.tsx';
import { describedBy, Field } from '../ui/Field.tsx';
import { FieldError } from '../ui/FieldError.tsx';
import { routeLabel, targetFromKey, targetKey } from '../ui/format.ts';
import { IssueList } from '../ui/IssueList.tsx';

export type Position = 'first' | 'last';

export interface RuleEditorProps {
  /** The rule being edited, or undefined for a new one. */
  readonly original: Rule | undefined;
  readonly routes: readonly Route[];
  /** Ids of every rule, to keep ids unique. */
  readonly ruleIndexById: ReadonlyMap<string, number>;
  /** The host has inbound users (the container picker says what that means for it). */
  readonly usersConfigured?: boolean;
  readonly onSave: (rule: Rule, position: Position) => Promise<readonly { path: string; message: string }[]>;
  readonly onDelete?: () => void;
  readonly onCancel: () => void;
}

const PATTERN_TYPES: readonly { value: HostPatternType; label: string; placeholder: string }[] = [
  { value: 'domain', label: 'Domain and subdomains', placeholder: '*.example.com' },
  { value: 'exact', label: 'Exact host', placeholder: 'www.example.com' },
  { value: 'suffix', label: 'Ends with', placeholder: 'example.com' },
  { value: 'regex', label: 'Regular expression', placeholder: '^intranet[0-9]+\\.corp$' },
];

interface PatternDraft {
  readonly key: number;
  type: HostPatternType;
  value: string;
}

interface Draft {
  id: string;
  name: string;
  enabled: boolean;
  patterns: PatternDraft[];
  ips: string;
  ports: string;
  contexts: string[];
  target: string;
}

/** Where each validation message shows: a field, one host pattern, or the form. */
interface Placed {
  readonly id: string[];
  readonly name: string[];
  readonly patterns: Map<number, string[]>;
  readonly hosts: string[];
  readonly ips: string[];
  readonly ports: string[];
  readonly contexts: string[];
  readonly target: string[];
  readonly form: string[];
}

let nextPatternKey = 1;

function newRuleId(taken: ReadonlyMap<string, number>): string {
  for (let n = taken.size + 1; ; n++) {
    const id = `rule-${n}`;
    if (!taken.has(id)) return id;
  }
}

function portText(port: PortRange): string {
  return typeof port === 'number' ? String(port) : `${port.from}-${port.to}`;
}

/** '443, 8000-8999' -> [443, {from: 8000, to: 8999}]; anything else is passed on for the validator to explain. */
export function parsePorts(text: string): unknown[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((token) => {
      if (/^\d+$/.test(token)) return Number(token);
      const range = /^(\d+)-(\d+)$/.exec(token);
      return range ? { from: Number(range[1]), to: Number(range[2]) } : token;
    });
}

function toDraft(
  rule: Rule | undefined,
  routes: readonly Route[],
  taken: ReadonlyMap<string, number>,
): Draft {
  const patterns = (rule ? (rule.match.hosts ?? []) : [{ type: 'domain' as const, value: '' }]).map((p) => ({
    key: nextPatternKey++,
    type: p.type,
    value: p.value,
  }));
  return {
    id: rule?.id ?? newRuleId(taken),
    name: rule?.name ?? '',
    enabled: rule?.enabled ?? true,
    patterns,
    ips: (rule?.match.ips ?? []).join(', '),
    ports: (rule?.match.ports ?? []).map(portText).join(', '),
    contexts: [...(rule?.match.contexts ?? [])],
    target: rule ? targetKey(rule.target) : routes[0] ? `route:${routes[0].id}` : 'direct',
  };
}

function fromDraft(draft: Draft): Rule {
  const match: RuleMatch = {};
  if (draft.patterns.length > 0)
    match.hosts = draft.patterns.map((p) => ({ type: p.type, value: p.value.trim() }));
  const ips = draft.ips.split(/[\s,]+/).filter(Boolean);
  if (ips.length > 0) match.ips = ips;
  const ports = parsePorts(draft.ports);
  // Unparseable entries go to the validator as they are, so its message can name them.
  if (ports.length > 0) match.ports = ports as PortRange[];
  if (draft.contexts.length > 0) match.contexts = [...draft.contexts];
  const rule: Rule = {
    id: draft.id.trim(),
    enabled: draft.enabled,
    match,
    target: targetFromKey(draft.target),
  };
  if (draft.name.trim() !== '') rule.name = draft.name.trim();
  return rule;
}

function place(errors: readonly { path: string; message: string }[]): Placed {
  const placed: Placed = {
    id: [],
    name: [],
    patterns: new Map(),
    hosts: [],
    ips: [],
    ports: [],
    contexts: [],
    target: [],
    form: [],
  };
  for (const { path, message } of errors) {
    const rel = path.replace(/^rule\[0\]\.?/, '');
    const pattern = /^match\.hosts\[(\d+)\]/.exec(rel);
    if (pattern) {
      const i = Number(pattern[1]);
      placed.patterns.set(i, [...(placed.patterns.get(i) ?? []), message]);
    } else if (rel === 'match.hosts') placed.hosts.push(message);
    else if (rel.startsWith('match.ips')) placed.ips.push(message);
    else if (rel.startsWith('match.ports')) placed.ports.push(message);
    else if (rel.startsWith('match.contexts')) placed.contexts.push(message);
    else if (rel.startsWith('target')) placed.target.push(message);
    else if (rel === 'id') placed.id.push(message);
    else if (rel === 'name') placed.name.push(message);
    else placed.form.push(message);
  }
  return placed;
}

/** The shared validator's messages for this rule, plus id uniqueness, which needs the whole list. */
export function validateRuleDraft(
  rule: Rule,
  routes: readonly Route[],
  ruleIndexById: ReadonlyMap<string, number>,
  originalId: string | undefined,
): { path: string; message: string }[] {
  const errors = validateRules([rule], { path: 'rule', routeIds: routes.map((r) => r.id) });
  const clash = ruleIndexById.get(rule.id);
  if (rule.id !== '' && rule.id !== originalId && clash !== undefined) {
    errors.push({ path: 'rule[0].id', message: `the id '${rule.id}' is already used by rule ${clash + 1}` });
  }
  return errors;
}

export function RuleEditor({
  original,
  routes,
  ruleIndexById,
  usersConfigured = false,
  onSave,
  onDelete,
  onCancel,
}: RuleEditorProps) {
  const [draft, setDraft] = useState<Draft>(() => toDraft(original, routes, ruleIndexById));
  const [position, setPosition] = useState<Position>('first');
  // Messages appear after the first save attempt, then follow every keystroke.
  const [attempted, setAttempted] = useState(false);
  const [serverIssues, setServerIssues] = useState<readonly { path: string; message: string }[]>([]);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const rule = fromDraft(draft);
  const errors = attempted ? validateRuleDraft(rule, routes, ruleIndexById, original?.id) : [];
  const placed = place(errors);
  const update = (change: Partial<Draft>) => setDraft((d) => ({ ...d, ...change }));
  const updatePattern = (key: number, change: Partial<PatternDraft>) =>
    setDraft((d) => ({ ...d, patterns: d.patterns.map((p) => (p.key === key ? { ...p, ...change } : p)) }));

  const submit = async (event: Event) => {
    event.preventDefault();
    setAttempted(true);
    if (validateRuleDraft(rule, routes, ruleIndexById, original?.id).length > 0) return;
    setBusy(true);
    const issues = await onSave(rule, position);
    setBusy(false);
    setServerIssues(issues);
  };

  const title = original ? `Edit rule ${original.name ?? original.id}` : 'New rule';
  const noConditions = !rule.match.hosts && !rule.match.ips && !rule.match.ports && !rule.match.contexts;
  return (
    <form
      class="form rule-editor"
      aria-label={title}
      onSubmit={submit}
      onKeyDown={(e) => e.key === 'Escape' && onCancel()}
      noValidate
    >
      <h3>{title}</h3>
      <div class="form-grid">
        <Field id="rule-name" label="Name" errors={placed.name}>
          <input
            ref={first}
            id="rule-name"
            value={draft.name}
            placeholder="e.g. Company intranet"
            onInput={(e) => update({ name: e.currentTarget.value })}
            {...describedBy('rule-name', placed.name)}
          />
        </Field>
        <Field id="rule-id" label="ID" errors={placed.id}>
          <input
            id="rule-id"
            value={draft.id}
            onInput={(e) => update({ id: e.currentTarget.value })}
            {...describedBy('rule-id', placed.id)}
          />
        </Field>
        <Field id="rule-target" label="Send matching sites" errors={placed.target}>
          <select
            id="rule-target"
            value={draft.target}
            onChange={(e) => update({ target: e.currentTarget.value })}
            {...describedBy('rule-target', placed.target)}
          >
            {routes.map((r) => (
              <option key={r.id} value={`route:${r.id}`}>
                via {routeLabel(r)}
              </option>
            ))}
            <option value="direct">Direct</option>
            <option value="block">Block</option>
          </select>
        </Field>
        <div class="field field-check">
          <input
            id="rule-enabled"
            type="checkbox"
            checked={draft.enabled}
            onChange={(e) => update({ enabled: e.currentTarget.checked })}
          />
          <label for="rule-enabled">Enabled</label>
        </div>
      </div>
      <fieldset class="patterns">
        <legend>Host patterns (any may match)</legend>
        {draft.patterns.map((p, i) => {
          const messages = placed.patterns.get(i) ?? [];
          const id = `rule-pattern-${i}`;
          return (
            <div key={p.key} class="pattern-row">
              <label for={`${id}-type`} class="sr-only">
                Pattern {i + 1} type
              </label>
              <select
                id={`${id}-type`}
                value={p.type}
                onChange={(e) => updatePattern(p.key, { type: e.currentTarget.value as HostPatternType })}
              >
                {PATTERN_TYPES.map((t) => (
                  <option key={t.value} value={t.value}>
                    {t.label}
                  </option>
                ))}
              </select>
              <label for={id} class="sr-only">
                Pattern {i + 1}
              </label>
              <input
                id={id}
                value={p.value}
                spellcheck={false}
                autocomplete="off"
                placeholder={PATTERN_TYPES.find((t) => t.value === p.type)?.placeholder}
                onInput={(e) => updatePattern(p.key, { value: e.currentTarget.value })}
                {...describedBy(id, messages)}
              />
              <button
                type="button"
                class="icon-button"
                aria-label={`Remove pattern ${i + 1}`}
                onClick={() =>
                  setDraft((d) => ({ ...d, patterns: d.patterns.filter((x) => x.key !== p.key) }))
                }
              >
                ✕
              </button>
              <FieldError id={`${id}-error`} messages={messages} />
            </div>
          );
        })}
        <FieldError id="rule-hosts-error" messages={placed.hosts} />
        <button
          type="button"
          class="button"
          onClick={() =>
            setDraft((d) => ({
              ...d,
              patterns: [...d.patterns, { key: nextPatternKey++, type: 'domain', value: '' }],
            }))
          }
        >
          Add pattern
        </button>
      </fieldset>
      <div class="form-grid">
        <Field
          id="rule-ips"
          label="IP addresses or ranges"
          errors={placed.ips}
          hint="For sites reached by address, e.g. 10.0.0.0/8, 192.168.1.5. A rule has host patterns or addresses, not both."
        >
          <input
            id="rule-ips"
            value={draft.ips}
            spellcheck={false}
            onInput={(e) => update({ ips: e.currentTarget.value })}
            {...describedBy('rule-ips', placed.ips, true)}
          />
        </Field>
        <Field
          id="rule-ports"
          label="Ports"
          errors={placed.ports}
          hint="Empty for any port; e.g. 443, 8000-8999"
        >
          <input
            id="rule-ports"
            value={draft.ports}
            spellcheck={false}
            onInput={(e) => update({ ports: e.currentTarget.value })}
            {...describedBy('rule-ports', placed.ports, true)}
          />
        </Field>
        {!original && (
          <Field id="rule-position" label="Position">
            <select
              id="rule-position"
              value={position}
              onChange={(e) => setPosition(e.currentTarget.value as Position)}
            >
              <option value="first">First: checked before all other rules</option>
              <option value="last">Last: checked after all other rules</option>
            </select>
          </Field>
        )}
      </div>
      <ContainerPicker
        value={draft.contexts}
        onChange={(contexts) => update({ contexts })}
        usersConfigured={usersConfigured}
        errors={placed.contexts}
      />
      {noConditions && (
        <p class="hint">With no patterns, addresses or ports, this rule matches every site.</p>
      )}
      {placed.form.length > 0 && (
        <div class="field-error" role="alert">
          {placed.form.map((m) => (
            <p key={m}>{m}</p>
          ))}
        </div>
      )}
      {errors.length > 0 && (
        <p class="error" role="alert">
          Not saved: fix the {errors.length === 1 ? 'problem' : `${errors.length} problems`} above.
        </p>
      )}
      <IssueList issues={serverIssues} title="The host refused the change:" />
      <div class="button-row">
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save rule'}
        </button>
        <button type="button" class="button" onClick={onCancel}>
          Cancel
        </button>
        {onDelete && (
          <button type="button" class="button button-danger" onClick={onDelete}>
            Delete rule
          </button>
        )}
      </div>
    </form>
  );
}
