/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  UPSTREAM_TYPES,
  type Upstream,
  type UpstreamType,
  upstreamSchema,
} from '../../shared/config/schema.ts';
import type { CheckResult, CredentialStoreInfo } from '../../shared/messages/protocol.ts';
import type { UiState } from '../shared/ui-protocol.ts';
import { type BackgroundClient, BackgroundError, errorMessage } from '../ui/background-client.ts';
import { CheckReport } from '../ui/CheckReport.tsx';
import { describedBy, Field } from '../ui/Field.tsx';
import { routeLabel, upstreamLabel } from '../ui/format.ts';
import { IssueList } from '../ui/IssueList.tsx';
import type { LoadedConfigEditor } from './use-config.ts';
import { Outcome } from '../ui/Messages.tsx';

export interface UpstreamsProps {
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly editor: LoadedConfigEditor;
}

const TYPE_LABEL: Record<UpstreamType, string> = {
  socks5: 'SOCKS5',
  socks4: 'SOCKS4 (no passwords, IPv4 only)',
  socks4a: 'SOCKS4a (no passwords)',
  http: 'HTTP CONNECT',
};

const DEFAULT_CHECK_TARGET = 'example.com:443';

type Editing = { readonly mode: 'new' } | { readonly mode: 'edit'; readonly upstream: Upstream };

export function Upstreams({ client, state, editor }: UpstreamsProps) {
  const { config, passwordSaved } = editor;
  const [editing, setEditing] = useState<Editing | null>(null);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [confirmRemove, setConfirmRemove] = useState<string | null>(null);
  const [checkTarget, setCheckTarget] = useState(DEFAULT_CHECK_TARGET);
  const [checks, setChecks] = useState<Record<string, CheckState>>({});
  const store = state.host.hello?.credentialStore;

  const check = (id: string) => {
    setChecks((c) => ({ ...c, [id]: { kind: 'running' } }));
    client.host('check', { name: id, target: checkTarget.trim() || DEFAULT_CHECK_TARGET }).then(
      (result) => setChecks((c) => ({ ...c, [id]: { kind: 'done', result } })),
      (e: unknown) => setChecks((c) => ({ ...c, [id]: { kind: 'error', message: errorMessage(e) } })),
    );
  };

  const remove = async (upstream: Upstream) => {
    setConfirmRemove(null);
    setError(null);
    try {
      await editor.patch({ upstreams: config.upstreams.filter((u) => u.id !== upstream.id) });
      // The keyring entry would otherwise outlive the upstream it belongs to.
      if (passwordSaved[upstream.id]) {
        await client.host('credential.delete', { upstreamId: upstream.id });
        editor.markPassword(upstream.id, false);
      }
      setNotice(`Removed ${upstreamLabel(upstream)}.`);
    } catch (e) {
      setError(`Could not remove ${upstreamLabel(upstream)}: ${errorMessage(e)}`);
    }
  };

  return (
    <section aria-labelledby="upstreams-title">
      <div class="section-head">
        <h2 id="upstreams-title">Upstreams</h2>
        <button
          type="button"
          class="button button-primary"
          onClick={() => setEditing({ mode: 'new' })}
          disabled={editing?.mode === 'new'}
        >
          Add upstream
        </button>
      </div>
      <p class="muted">
        The proxies your traffic can go through. Routes chain them; rules pick a route for each site.
      </p>
      <Outcome notice={notice} error={error} />
      {editing?.mode === 'new' && (
        <UpstreamForm
          client={client}
          editor={editor}
          store={store}
          original={undefined}
          onDone={(message) => {
            setEditing(null);
            if (message) setNotice(message);
          }}
        />
      )}
      {config.upstreams.length === 0 && editing === null && (
        <p class="empty">No upstreams yet. Add the proxy you want some sites to go through.</p>
      )}
      <ul class="cards">
        {config.upstreams.map((upstream) => {
          const usedBy = config.routes.filter((r) => r.hops.includes(upstream.id));
          const checkState = checks[upstream.id];
          if (editing?.mode === 'edit' && editing.upstream.id === upstream.id) {
            return (
              <li key={upstream.id} class="card">
                <UpstreamForm
                  client={client}
                  editor={editor}
                  store={store}
                  original={upstream}
                  onDone={(message) => {
                    setEditing(null);
                    if (message) setNotice(message);
                  }}
                />
              </li>
            );
          }
          return (
            <li key={upstream.id} class="card" aria-labelledby={`upstream-${upstream.id}`}>
              <div class="card-head">
                <h3 id={`upstream-${upstream.id}`}>{upstreamLabel(upstream)}</h3>
                <span class="pill">{upstream.type}</span>
              </div>
              <p class="card-detail">
                {upstream.host}:{upstream.port}
                {upstream.username && <> · user {upstream.username}</>}
                {usedBy.length > 0 && <> · used by {usedBy.map(routeLabel).join(', ')}</>}
              </p>
              {upstream.type !== 'socks4' && upstream.type !== 'socks4a' && (
                <p class="muted small">{passwordStatus(passwordSaved[upstream.id] === true, store)}</p>
              )}
              <div class="button-row">
                <button
                  type="button"
                  class="button"
                  aria-label={`Edit ${upstreamLabel(upstream)}`}
                  onClick={() => setEditing({ mode: 'edit', upstream })}
                >
                  Edit
                </button>
                <button
                  type="button"
                  class="button"
                  aria-label={`Check ${upstreamLabel(upstream)}`}
                  disabled={checkState?.kind === 'running'}
                  onClick={() => check(upstream.id)}
                >
                  {checkState?.kind === 'running' ? 'Checking…' : 'Check'}
                </button>
                {confirmRemove === upstream.id ? (
                  <span class="confirm-inline">
                    {usedBy.length > 0 ? (
                      <span class="error">
                        Used by {usedBy.map(routeLabel).join(', ')}: take it out of{' '}
                        {usedBy.length === 1 ? 'that route' : 'those routes'} first.
                      </span>
                    ) : (
                      <button
                        type="button"
                        class="button button-danger"
                        onClick={() => void remove(upstream)}
                      >
                        Yes, remove {upstreamLabel(upstream)}
                      </button>
                    )}
                    <button type="button" class="button" onClick={() => setConfirmRemove(null)}>
                      Cancel
                    </button>
                  </span>
                ) : (
                  <button
                    type="button"
                    class="button"
                    aria-label={`Remove ${upstreamLabel(upstream)}`}
                    onClick={() => setConfirmRemove(upstream.id)}
                  >
                    Remove
                  </button>
                )}
              </div>
              <div aria-live="polite">
                {checkState?.kind === 'done' && <CheckReport result={checkState.result} />}
                {checkState?.kind === 'error' && <p class="error">Check failed: {checkState.message}</p>}
              </div>
            </li>
          );
        })}
      </ul>
      {config.upstreams.length > 0 && (
        <div class="field field-inline">
          <label for="check-target">Check connects through to</label>
          <input
            id="check-target"
            value={checkTarget}
            onInput={(e) => setCheckTarget(e.currentTarget.value)}
            placeholder={DEFAULT_CHECK_TARGET}
          />
        </div>
      )}
    </section>
  );
}

type CheckState =
  | { readonly kind: 'running' }
  | { readonly kind: 'done'; readonly result: CheckResult }
  | { readonly kind: 'error'; readonly message: string };

/** Says where the password is, honestly: a file is not a keyring, and people should know. */
export function passwordStatus(saved: boolean, store: CredentialStoreInfo | undefined): string {
  if (!saved) return 'No password saved.';
  if (!store) return "A password is saved in the host's credential store.";
  if (store.kind === 'keyring') return `A password is saved in your OS keyring (${store.description}).`;
  // The host's description says which file and why; this says what that means.
  return (
    `A password is saved in a file on this computer, not in an OS keyring: ${store.description}. ` +
    'Only your user account can read the file, but so can any program you run.'
  );
}

interface Draft {
  id: string;
  name: string;
  type: UpstreamType;
  host: string;
  port: string;
  username: string;
  password: string;
}

type Errors = Partial<Record<keyof Draft | 'form', string[]>>;

interface UpstreamFormProps {
  readonly client: BackgroundClient;
  readonly editor: LoadedConfigEditor;
  readonly store: CredentialStoreInfo | undefined;
  /** The upstream being edited; undefined for a new one. */
  readonly original: Upstream | undefined;
  readonly onDone: (message?: string) => void;
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64)
    .replace(/-+$/, '');
}

function UpstreamForm({ client, editor, store, original, onDone }: UpstreamFormProps) {
  const { config, passwordSaved } = editor;
  const prefix = original ? `upstream-${original.id}` : 'upstream-new';
  const [draft, setDraft] = useState<Draft>(() => ({
    id: original?.id ?? '',
    name: original?.name ?? '',
    type: original?.type ?? 'socks5',
    host: original?.host ?? '',
    port: original ? String(original.port) : '1080',
    username: original?.username ?? '',
    password: '',
  }));
  const [idTouched, setIdTouched] = useState(original !== undefined);
  const [errors, setErrors] = useState<Errors>({});
  const [serverIssues, setServerIssues] = useState<BackgroundError['issues']>([]);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);

  useEffect(() => first.current?.focus(), []);

  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => {
    setDraft((d) => {
      const next = { ...d, [key]: value };
      // A new upstream's id follows its name until someone types an id of their own.
      if (key === 'name' && !idTouched) next.id = slug(String(value));
      return next;
    });
  };

  const noPasswords = draft.type === 'socks4' || draft.type === 'socks4a';
  const saved = original !== undefined && passwordSaved[original.id] === true;

  const validate = (): { upstream: Upstream | null; errors: Errors } => {
    const found: Errors = {};
    const add = (field: keyof Errors, message: string) => {
      found[field] = [...(found[field] ?? []), message];
    };
    const port = Number(draft.port);
    if (draft.host.trim() === '') add('host', "Enter the proxy's host name or IP address.");
    if (draft.port.trim() === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
      add('port', 'The port must be a whole number from 1 to 65535.');
    }
    if (original === undefined && config.upstreams.some((u) => u.id === draft.id)) {
      add('id', `The id '${draft.id}' is already used by another upstream.`);
    }
    if (!noPasswords && draft.password !== '' && draft.username.trim() === '') {
      add('username', 'A password needs a username.');
    }
    const candidate: Record<string, unknown> = {
      // Fields this form does not edit (the timeouts) stay as they were.
      ...original,
      id: draft.id,
      type: draft.type,
      host: draft.host.trim(),
      port,
    };
    for (const key of ['name', 'username'] as const) {
      const value = draft[key].trim();
      if (value === '') delete candidate[key];
      else candidate[key] = value;
    }
    const parsed = upstreamSchema.safeParse(candidate);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = String(issue.path[0] ?? 'form');
        const key: keyof Errors = field in draft ? (field as keyof Draft) : 'form';
        // The checks above say it better for the fields they cover.
        if (found[key] === undefined) add(key, key === 'form' ? `${field}: ${issue.message}` : issue.message);
      }
    }
    const ok = Object.keys(found).length === 0 && parsed.success;
    return { upstream: ok ? parsed.data : null, errors: found };
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const { upstream, errors: found } = validate();
    setErrors(found);
    setServerIssues([]);
    if (!upstream) return;
    setBusy(true);
    const list = original
      ? config.upstreams.map((u) => (u.id === original.id ? upstream : u))
      : [...config.upstreams, upstream];
    try {
      // The password never goes into the config: only credential.set carries it, to the keyring.
      await editor.patch({ upstreams: list });
    } catch (e) {
      setBusy(false);
      setErrors({ form: [`Not saved: ${errorMessage(e)}`] });
      if (e instanceof BackgroundError) setServerIssues(e.issues);
      return;
    }
    if (!noPasswords && draft.password !== '') {
      try {
        await client.host('credential.set', { upstreamId: upstream.id, password: draft.password });
        editor.markPassword(upstream.id, true);
      } catch (e) {
        setBusy(false);
        setErrors({ password: [`The upstream was saved, but the password was not: ${errorMessage(e)}`] });
        return;
      }
    }
    setBusy(false);
    onDone(`Saved ${upstreamLabel(upstream)}.`);
  };

  const removePassword = async () => {
    if (!original) return;
    try {
      await client.host('credential.delete', { upstreamId: original.id });
      editor.markPassword(original.id, false);
    } catch (e) {
      setErrors({ password: [`Could not remove the password: ${errorMessage(e)}`] });
    }
  };

  const field = (key: keyof Draft) => `${prefix}-${key}`;
  const errs = (key: keyof Draft) => errors[key] ?? [];
  return (
    <form
      class="form"
      aria-label={original ? `Edit ${upstreamLabel(original)}` : 'New upstream'}
      onSubmit={submit}
      onKeyDown={(e) => e.key === 'Escape' && onDone()}
      noValidate
    >
      <h3>{original ? `Edit ${upstreamLabel(original)}` : 'New upstream'}</h3>
      <div class="form-grid">
        <Field id={field('name')} label="Name" errors={errs('name')}>
          <input
            ref={first}
            id={field('name')}
            value={draft.name}
            onInput={(e) => set('name', e.currentTarget.value)}
            placeholder="e.g. Office gateway"
            {...describedBy(field('name'), errs('name'))}
          />
        </Field>
        <Field
          id={field('id')}
          label="ID"
          errors={errs('id')}
          hint={original ? 'Routes refer to it, so it cannot change.' : 'Routes refer to the upstream by it.'}
        >
          <input
            id={field('id')}
            value={draft.id}
            readOnly={original !== undefined}
            onInput={(e) => {
              setIdTouched(true);
              set('id', e.currentTarget.value);
            }}
            {...describedBy(field('id'), errs('id'), true)}
          />
        </Field>
        <Field id={field('type')} label="Type" errors={errs('type')}>
          <select
            id={field('type')}
            value={draft.type}
            onChange={(e) => set('type', e.currentTarget.value as UpstreamType)}
          >
            {UPSTREAM_TYPES.map((t) => (
              <option key={t} value={t}>
                {TYPE_LABEL[t]}
              </option>
            ))}
          </select>
        </Field>
        <Field id={field('host')} label="Host" errors={errs('host')}>
          <input
            id={field('host')}
            value={draft.host}
            onInput={(e) => set('host', e.currentTarget.value)}
            autocomplete="off"
            spellcheck={false}
            {...describedBy(field('host'), errs('host'))}
          />
        </Field>
        <Field id={field('port')} label="Port" errors={errs('port')}>
          <input
            id={field('port')}
            type="number"
            min={1}
            max={65535}
            value={draft.port}
            onInput={(e) => set('port', e.currentTarget.value)}
            {...describedBy(field('port'), errs('port'))}
          />
        </Field>
        {!noPasswords && (
          <Field id={field('username')} label="Username" errors={errs('username')}>
            <input
              id={field('username')}
              value={draft.username}
              autocomplete="off"
              onInput={(e) => set('username', e.currentTarget.value)}
              {...describedBy(field('username'), errs('username'))}
            />
          </Field>
        )}
        {!noPasswords && (
          <Field
            id={field('password')}
            label={saved ? 'New password' : 'Password'}
            errors={errs('password')}
            hint={
              <>
                {passwordStatus(saved, store)} This field only writes: a password typed here goes to the
                host's credential store, and is never shown again or kept in the extension.
              </>
            }
          >
            <input
              id={field('password')}
              type="password"
              autocomplete="new-password"
              value={draft.password}
              placeholder={saved ? 'Leave empty to keep the saved one' : ''}
              onInput={(e) => set('password', e.currentTarget.value)}
              {...describedBy(field('password'), errs('password'), true)}
            />
          </Field>
        )}
      </div>
      {errors.form && (
        <div class="field-error" role="alert">
          {errors.form.map((m) => (
            <p key={m}>{m}</p>
          ))}
        </div>
      )}
      <IssueList issues={serverIssues} title="The host refused the change:" />
      <div class="button-row">
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save'}
        </button>
        <button type="button" class="button" onClick={() => onDone()}>
          Cancel
        </button>
        {saved && !noPasswords && (
          <button type="button" class="button" onClick={() => void removePassword()}>
            Remove saved password
          </button>
        )}
      </div>
    </form>
  );
}
