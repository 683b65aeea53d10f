/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useState } from 'preact/hooks';
import { PRIVATE_CONTEXT } from '../../shared/rules/types.ts';
import { FieldError } from './FieldError.tsx';

/** Firefox's cookieStoreId for tabs in no container. */
export const NO_CONTAINER = 'firefox-default';

/** What this picker needs of contextualIdentities.ContextualIdentity. */
export interface ContainerIdentity {
  readonly cookieStoreId: string;
  readonly name: string;
  /** CSS colour of the container, e.g. '#37adff'. */
  readonly colorCode?: string;
}

export interface ContainerSource {
  query(details: Record<string, never>): Promise<readonly ContainerIdentity[]>;
}

/**
 * Firefox's contextualIdentities when this browser has them and lets us use them; undefined on
 * Chrome, which has no containers (and whose PAC script could not tell them apart anyway).
 */
export function browserContainers(): ContainerSource | undefined {
  const api = (globalThis as { browser?: { contextualIdentities?: Partial<ContainerSource> } }).browser
    ?.contextualIdentities;
  return typeof api?.query === 'function' ? (api as ContainerSource) : undefined;
}

export interface ContainerPickerProps {
  /** The rule's match.contexts (empty: any container or window). */
  readonly value: readonly string[];
  readonly onChange: (contexts: string[]) => void;
  /**
   * The host has inbound users: it then reads a SOCKS username as a login, so it cannot take the
   * route a container rule chose (shared/messages/route-hint.ts).
   */
  readonly usersConfigured: boolean;
  /** Validation messages for match.contexts. */
  readonly errors?: readonly string[];
  /** Where the containers come from; browserContainers() by default. */
  readonly source?: ContainerSource | undefined;
}

interface Choice {
  readonly id: string;
  readonly label: string;
  readonly color?: string | undefined;
}

// Inline, so the picker needs nothing from styles.css: the container's colour dot Firefox shows.
const SWATCH = {
  display: 'inline-block',
  width: '0.75em',
  height: '0.75em',
  borderRadius: '50%',
  marginInlineEnd: '0.4em',
} as const;

type Loaded =
  | { readonly kind: 'loading' }
  | { readonly kind: 'ready'; readonly containers: readonly ContainerIdentity[] }
  | { readonly kind: 'failed'; readonly message: string };

/**
 * Which containers and private windows a rule applies to, for the rule editor. Firefox only:
 * without a container source it renders nothing.
 */
export function ContainerPicker({
  value,
  onChange,
  usersConfigured,
  errors = [],
  source = browserContainers(),
}: ContainerPickerProps) {
  const [loaded, setLoaded] = useState<Loaded>({ kind: 'loading' });
  useEffect(() => {
    if (source === undefined) return;
    let live = true;
    source.query({}).then(
      (containers) => live && setLoaded({ kind: 'ready', containers }),
      // Containers turned off in Firefox's settings: the API refuses, the rest still works.
      (error: unknown) =>
        live &&
        setLoaded({ kind: 'failed', message: error instanceof Error ? error.message : String(error) }),
    );
    return () => {
      live = false;
    };
  }, [source]);
  if (source === undefined) return null;

  const containers = loaded.kind === 'ready' ? loaded.containers : [];
  const known = new Set([NO_CONTAINER, PRIVATE_CONTEXT, ...containers.map((c) => c.cookieStoreId)]);
  const choices: Choice[] = [
    { id: NO_CONTAINER, label: 'No container' },
    ...containers.map((c) => ({ id: c.cookieStoreId, label: c.name, color: c.colorCode })),
    { id: PRIVATE_CONTEXT, label: 'Private windows' },
    // A container deleted since the rule was written stays listed, so it can be unticked.
    ...(loaded.kind === 'ready'
      ? value.filter((id) => !known.has(id)).map((id) => ({ id, label: `Removed container (${id})` }))
      : []),
  ];
  const selected = new Set(value);
  const toggle = (id: string, on: boolean) =>
    onChange(on ? [...value.filter((v) => v !== id), id] : value.filter((v) => v !== id));
  const routed = value.length > 0 && usersConfigured;

  return (
    <fieldset class="contexts" aria-describedby="rule-contexts-hint">
      <legend>Containers and private windows (any may match)</legend>
      <p id="rule-contexts-hint" class="hint">
        Leave all unticked to match any tab. Only Firefox can tell where a request comes from: the host,
        Chrome and command-line clients skip rules that name containers.
      </p>
      {loaded.kind === 'loading' && <p class="hint">Loading containers…</p>}
      {loaded.kind === 'failed' && (
        <p class="hint" role="status">
          Containers are not available: {loaded.message}
        </p>
      )}
      {choices.map((choice) => {
        const id = `rule-context-${choice.id}`;
        return (
          <div key={choice.id} class="field field-check">
            <input
              id={id}
              type="checkbox"
              checked={selected.has(choice.id)}
              onChange={(e) => toggle(choice.id, e.currentTarget.checked)}
            />
            <label for={id}>
              {choice.color !== undefined && (
                <span aria-hidden="true" style={{ ...SWATCH, background: choice.color }} />
              )}
              {choice.label}
            </label>
          </div>
        );
      })}
      {routed && (
        <p class="hint" role="note">
          The host has inbound users, so it takes the browser's SOCKS login for a user's and cannot follow the
          route this rule picks: its requests will fail unless the rule sends them direct.
        </p>
      )}
      <FieldError id="rule-contexts-error" messages={errors} />
    </fieldset>
  );
}
