/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Config, Failover, Route } from '../../shared/config/schema.ts';
import type { CheckResult } from '../../shared/messages/protocol.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { CheckReport } from '../ui/CheckReport.tsx';
import { describedBy, Field } from '../ui/Field.tsx';
import { routeLabel, upstreamLabel } from '../ui/format.ts';
import type { LoadedConfigEditor } from './use-config.ts';
import { ErrorAlert } from '../ui/Messages.tsx';

export interface RoutesProps {
  readonly client: BackgroundClient;
  readonly editor: LoadedConfigEditor;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const CHECK_TARGET = 'example.com:443';

/** Where focus goes after a reorder: the same button of the hop that moved. */
interface FocusRequest {
  readonly routeId: string;
  readonly index: number;
  readonly direction: 'up' | 'down';
}

export function Routes({ client, editor }: RoutesProps) {
  const { config } = editor;
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [focus, setFocus] = useState<FocusRequest | null>(null);
  const [checks, setChecks] = useState<Record<string, CheckResult | string | 'running'>>({});

  useEffect(() => {
    if (!focus) return;
    const byId = (direction: string) =>
      document.getElementById(`hop-${focus.routeId}-${focus.index}-${direction}`) as HTMLButtonElement | null;
    const wanted = byId(focus.direction);
    // At the top or bottom the button that moved it is disabled: its neighbour keeps focus in the row.
    const target = wanted && !wanted.disabled ? wanted : byId(focus.direction === 'up' ? 'down' : 'up');
    target?.focus();
    setFocus(null);
  }, [focus]);

  const save = async (routes: Route[]) => {
    setError(null);
    try {
      await editor.patch({ routes });
    } catch (e) {
      setError(`Not saved: ${errorMessage(e)}`);
    }
  };

  const update = (route: Route, next: Route) =>
    save(config.routes.map((r) => (r.id === route.id ? next : r)));

  const move = (route: Route, index: number, direction: 'up' | 'down') => {
    const to = direction === 'up' ? index - 1 : index + 1;
    if (to < 0 || to >= route.hops.length) return;
    const hops = [...route.hops];
    [hops[index], hops[to]] = [hops[to]!, hops[index]!];
    setFocus({ routeId: route.id, index: to, direction });
    void update(route, { ...route, hops });
  };

  const remove = (route: Route) => {
    const users = routeUsers(config, route.id);
    if (users.length > 0) {
      setError(`${routeLabel(route)} is still used by ${users.join(', ')}: change those first.`);
      return;
    }
    void save(config.routes.filter((r) => r.id !== route.id));
  };

  const check = (route: Route) => {
    setChecks((c) => ({ ...c, [route.id]: 'running' }));
    client.host('check', { name: route.id, target: CHECK_TARGET }).then(
      (result) => setChecks((c) => ({ ...c, [route.id]: result })),
      (e: unknown) => setChecks((c) => ({ ...c, [route.id]: `Check failed: ${errorMessage(e)}` })),
    );
  };

  return (
    <section aria-labelledby="routes-title">
      <div class="section-head">
        <h2 id="routes-title">Routes</h2>
        <button
          type="button"
          class="button button-primary"
          onClick={() => setAdding(true)}
          disabled={adding || config.upstreams.length === 0}
        >
          Add route
        </button>
      </div>
      <p class="muted">
        A route is a chain of upstreams: traffic enters the first hop, which connects to the second, and so on
        to the site.
      </p>
      {config.upstreams.length === 0 && (
        <p class="empty">Add an upstream first: a route needs at least one hop.</p>
      )}
      <ErrorAlert error={error} />
      {adding && (
        <NewRouteForm
          config={config}
          onCancel={() => setAdding(false)}
          onSave={async (route) => {
            await save([...config.routes, route]);
            setAdding(false);
          }}
        />
      )}
      <ul class="cards">
        {config.routes.map((route) => {
          const checkState = checks[route.id];
          return (
            <li key={route.id} class="card">
              <RouteCard
                route={route}
                config={config}
                onChange={(next) => void update(route, next)}
                onMove={(index, direction) => move(route, index, direction)}
              />
              <div class="button-row">
                <button
                  type="button"
                  class="button"
                  aria-label={`Check ${routeLabel(route)}`}
                  disabled={checkState === 'running'}
                  onClick={() => check(route)}
                >
                  {checkState === 'running' ? 'Checking…' : 'Check'}
                </button>
                <button
                  type="button"
                  class="button"
                  aria-label={`Remove route ${routeLabel(route)}`}
                  onClick={() => remove(route)}
                >
                  Remove route
                </button>
              </div>
              <div aria-live="polite">
                {typeof checkState === 'object' && <CheckReport result={checkState} />}
                {typeof checkState === 'string' && checkState !== 'running' && (
                  <p class="error">{checkState}</p>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** What refers to a route: rules, the default target, other routes' failover. */
function routeUsers(config: Config, routeId: string): string[] {
  const users: string[] = [];
  const rules = config.rules.filter((r) => r.target.kind === 'route' && r.target.routeId === routeId).length;
  if (rules > 0) users.push(rules === 1 ? '1 rule' : `${rules} rules`);
  if (config.defaultTarget.kind === 'route' && config.defaultTarget.routeId === routeId)
    users.push('the default');
  for (const r of config.routes) {
    if (typeof r.onFirstHopDown === 'object' && r.onFirstHopDown.route === routeId) {
      users.push(`route ${routeLabel(r)} (its fallback)`);
    }
  }
  return users;
}

function failoverKey(f: Failover): string {
  return typeof f === 'object' ? `route:${f.route}` : f;
}

function failoverFromKey(key: string): Failover {
  if (key === 'fail' || key === 'direct') return key;
  return { route: key.slice('route:'.length) };
}

interface RouteCardProps {
  readonly route: Route;
  readonly config: Config;
  readonly onChange: (route: Route) => void;
  readonly onMove: (index: number, direction: 'up' | 'down') => void;
}

function RouteCard({ route, config, onChange, onMove }: RouteCardProps) {
  const upstreamName = (id: string) => {
    const u = config.upstreams.find((x) => x.id === id);
    return u ? upstreamLabel(u) : `${id} (missing)`;
  };
  const [addHop, setAddHop] = useState(config.upstreams[0]?.id ?? '');
  const label = routeLabel(route);
  const base = `route-${route.id}`;
  return (
    <div class="route">
      <div class="card-head">
        <h3>{label}</h3>
        <span class="muted small">id {route.id}</span>
      </div>
      <Field id={`${base}-name`} label="Name">
        <input
          id={`${base}-name`}
          value={route.name ?? ''}
          placeholder={route.id}
          // change, not input: one save per edit, when the field is left or Enter is pressed.
          onChange={(e) => {
            const name = e.currentTarget.value.trim();
            const next: Route = { ...route };
            if (name === '') delete next.name;
            else next.name = name;
            if (name !== (route.name ?? '')) onChange(next);
          }}
        />
      </Field>
      <p class="field-label" id={`${base}-hops-label`}>
        Hops, in order
      </p>
      <ol class="hop-editor" aria-labelledby={`${base}-hops-label`}>
        {route.hops.map((hop, index) => {
          const name = upstreamName(hop);
          return (
            // A route may pass the same upstream twice: position is the identity.
            <li key={index} class="hop-edit">
              <span class="hop-pos">{index + 1}</span>
              <span class="hop-name">{name}</span>
              <button
                type="button"
                class="icon-button"
                id={`hop-${route.id}-${index}-up`}
                aria-label={`Move ${name} up in ${label}`}
                disabled={index === 0}
                onClick={() => onMove(index, 'up')}
              >
                ↑
              </button>
              <button
                type="button"
                class="icon-button"
                id={`hop-${route.id}-${index}-down`}
                aria-label={`Move ${name} down in ${label}`}
                disabled={index === route.hops.length - 1}
                onClick={() => onMove(index, 'down')}
              >
                ↓
              </button>
              <button
                type="button"
                class="icon-button"
                aria-label={`Remove ${name} from ${label}`}
                disabled={route.hops.length === 1}
                title={route.hops.length === 1 ? 'A route needs at least one hop' : undefined}
                onClick={() => onChange({ ...route, hops: route.hops.filter((_, i) => i !== index) })}
              >
                ✕
              </button>
            </li>
          );
        })}
      </ol>
      <div class="inline-field">
        <label for={`${base}-add-hop`}>Add hop</label>
        <select id={`${base}-add-hop`} value={addHop} onChange={(e) => setAddHop(e.currentTarget.value)}>
          {config.upstreams.map((u) => (
            <option key={u.id} value={u.id}>
              {upstreamLabel(u)}
            </option>
          ))}
        </select>
        <button
          type="button"
          class="button"
          disabled={addHop === '' || route.hops.length >= 16}
          onClick={() => onChange({ ...route, hops: [...route.hops, addHop] })}
        >
          Add as last hop
        </button>
      </div>
      <Field
        id={`${base}-failover`}
        label={`When the first hop (${upstreamName(route.hops[0] ?? '')}) is down`}
      >
        <select
          id={`${base}-failover`}
          value={failoverKey(route.onFirstHopDown)}
          onChange={(e) => onChange({ ...route, onFirstHopDown: failoverFromKey(e.currentTarget.value) })}
        >
          <option value="fail">Fail: the site shows a connection error</option>
          <option value="direct">Go direct (traffic leaves without a proxy)</option>
          {config.routes
            .filter((r) => r.id !== route.id)
            .map((r) => (
              <option key={r.id} value={`route:${r.id}`}>
                Try route {routeLabel(r)}
              </option>
            ))}
        </select>
      </Field>
    </div>
  );
}

interface NewRouteFormProps {
  readonly config: Config;
  readonly onSave: (route: Route) => Promise<void>;
  readonly onCancel: () => void;
}

function NewRouteForm({ config, onSave, onCancel }: NewRouteFormProps) {
  const [name, setName] = useState('');
  const [id, setId] = useState('');
  const [idTouched, setIdTouched] = useState(false);
  const [hop, setHop] = useState(config.upstreams[0]?.id ?? '');
  const [errors, setErrors] = useState<{ name?: string[]; id?: string[] }>({});
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const autoId = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .replace(/-+$/, '')
      .slice(0, 64);
  const effectiveId = idTouched ? id : autoId(name);

  const submit = async (event: Event) => {
    event.preventDefault();
    const found: { id?: string[] } = {};
    if (!ID_PATTERN.test(effectiveId)) {
      found.id = ['The id must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit.'];
    } else if (config.routes.some((r) => r.id === effectiveId)) {
      found.id = [`The id '${effectiveId}' is already used by another route.`];
    }
    setErrors(found);
    if (found.id) return;
    const route: Route = { id: effectiveId, hops: [hop], onFirstHopDown: 'fail' };
    if (name.trim() !== '') route.name = name.trim();
    await onSave(route);
  };

  return (
    <form
      class="form"
      aria-label="New route"
      onSubmit={submit}
      onKeyDown={(e) => e.key === 'Escape' && onCancel()}
    >
      <h3>New route</h3>
      <div class="form-grid">
        <Field id="new-route-name" label="Name">
          <input
            ref={first}
            id="new-route-name"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </Field>
        <Field id="new-route-id" label="ID" errors={errors.id ?? []}>
          <input
            id="new-route-id"
            value={effectiveId}
            onInput={(e) => {
              setIdTouched(true);
              setId(e.currentTarget.value);
            }}
            {...describedBy('new-route-id', errors.id ?? [])}
          />
        </Field>
        <Field id="new-route-hop" label="First hop" hint="Add more hops once the route exists.">
          <select id="new-route-hop" value={hop} onChange={(e) => setHop(e.currentTarget.value)}>
            {config.upstreams.map((u) => (
              <option key={u.id} value={u.id}>
                {upstreamLabel(u)}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <div class="button-row">
        <button type="submit" class="button button-primary">
          Create route
        </button>
        <button type="button" class="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
