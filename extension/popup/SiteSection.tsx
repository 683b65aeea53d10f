/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useState } from 'preact/hooks';
import type { RouteResult } from '../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';
import type { RuleTarget } from '../../shared/rules/types.ts';
import type { SiteInfo, UiState } from '../shared/ui-protocol.ts';
import { adviceFor } from '../ui/advice.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { formatTime, routeLabel, siteHostOf, targetLabel } from '../ui/format.ts';
import { HopList } from '../ui/HopList.tsx';

export interface SiteSectionProps {
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly url: string | undefined;
}

/** Beyond this many routes, one button each would crowd the popup: a select takes over. */
const MAX_ROUTE_BUTTONS = 3;
const MAX_ERRORS = 5;

export function SiteSection({ client, state, url }: SiteSectionProps) {
  const host = url === undefined ? null : siteHostOf(url);
  const connected = state.host.state === 'connected';
  const [info, setInfo] = useState<SiteInfo | null>(null);
  const [infoError, setInfoError] = useState<string | null>(null);
  const [refresh, setRefresh] = useState(0);

  // A new revision means the rules changed (here or elsewhere): the answer may have too.
  useEffect(() => {
    if (host === null || url === undefined || !connected) return;
    let live = true;
    client.send({ type: 'site.info', url }).then(
      (fresh) => {
        if (!live) return;
        setInfo(fresh);
        setInfoError(null);
      },
      (e: unknown) => live && setInfoError(errorMessage(e)),
    );
    return () => {
      live = false;
    };
  }, [client, url, host, connected, state.revision, refresh]);

  if (host === null) {
    return (
      <section class="site" aria-label="This page">
        <p class="muted">This page is not a web site, so no proxy carries it.</p>
      </section>
    );
  }

  const problems = state.problems.filter((p) => p.host === host);
  return (
    <section class="site" aria-labelledby="site-host">
      <h2 id="site-host" class="site-host">
        {host}
      </h2>
      {!state.enabled && <p class="muted">Switchyard is off: this site goes direct until you turn it on.</p>}
      {!connected && (
        <p class="muted">Which rule and route this site takes shows here once the host is connected.</p>
      )}
      {infoError && (
        <p class="error" role="alert">
          Could not look up this site: {infoError}
        </p>
      )}
      {info?.route && <Decision route={info.route} state={state} />}
      {connected && (
        <SiteActions client={client} state={state} host={host} onAdded={() => setRefresh((n) => n + 1)} />
      )}
      <SiteErrors errors={info?.errors ?? []} problems={problems} />
    </section>
  );
}

function Decision({ route, state }: { readonly route: RouteResult; readonly state: UiState }) {
  const isDefault = route.ruleId === undefined && route.rule === 'default';
  const ruleIndex =
    route.ruleId === undefined ? -1 : (state.config?.rules.findIndex((r) => r.id === route.ruleId) ?? -1);
  const fallback = route.onFirstHopDown;
  const firstHop = route.hops[0]?.name;
  return (
    <div class="decision">
      <dl class="facts">
        <dt>Rule</dt>
        <dd class="decision-rule">
          {isDefault ? 'No rule matches: the default applies' : route.rule}
          {ruleIndex >= 0 && <span class="muted"> (rule {ruleIndex + 1})</span>}
        </dd>
        <dt>Goes</dt>
        <dd class="decision-target">
          {route.target.kind === 'route'
            ? `via ${route.route?.name ?? route.target.routeId}`
            : route.target.kind === 'direct'
              ? 'Direct'
              : 'Blocked'}
        </dd>
      </dl>
      {route.hops.length > 0 && (
        <HopList
          hops={route.hops.map((hop) => ({ name: hop.name, detail: `${hop.type} ${hop.host}:${hop.port}` }))}
          destination={route.destination}
        />
      )}
      {fallback !== undefined && firstHop !== undefined && (
        <p class="muted">
          If {firstHop} is down:{' '}
          {fallback === 'direct'
            ? 'goes direct'
            : `tries ${state.config?.routes.find((r) => r.id === fallback.route)?.name ?? fallback.route}`}
        </p>
      )}
    </div>
  );
}

interface SiteActionsProps {
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly host: string;
  readonly onAdded: () => void;
}

function SiteActions({ client, state, host, onAdded }: SiteActionsProps) {
  const routes = state.config?.routes ?? [];
  const [chosen, setChosen] = useState(routes[0]?.id ?? '');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ readonly text: string; readonly bad: boolean } | null>(null);

  const add = (target: RuleTarget) => {
    setBusy(true);
    setMessage(null);
    client.send({ type: 'site.addRule', host, target }).then(
      () => {
        setBusy(false);
        setMessage({
          text: `Added a rule: ${host} now goes ${targetLabel(target, state.config)}.`,
          bad: false,
        });
        onAdded();
      },
      (e: unknown) => {
        setBusy(false);
        setMessage({ text: `Could not add the rule: ${errorMessage(e)}`, bad: true });
      },
    );
  };

  const chosenRoute = routes.find((r) => r.id === chosen) ?? routes[0];
  return (
    <div class="site-actions">
      <p class="muted small">Adds a rule for this site, checked before all others:</p>
      <div class="button-row">
        {routes.length <= MAX_ROUTE_BUTTONS ? (
          routes.map((route) => (
            <button
              key={route.id}
              type="button"
              class="button"
              disabled={busy}
              onClick={() => add({ kind: 'route', routeId: route.id })}
            >
              Proxy this site via {routeLabel(route)}
            </button>
          ))
        ) : (
          <span class="inline-field">
            <label for="site-route" class="sr-only">
              Route
            </label>
            <select
              id="site-route"
              value={chosenRoute?.id}
              onChange={(e) => setChosen(e.currentTarget.value)}
            >
              {routes.map((route) => (
                <option key={route.id} value={route.id}>
                  {routeLabel(route)}
                </option>
              ))}
            </select>
            <button
              type="button"
              class="button"
              disabled={busy || !chosenRoute}
              onClick={() => chosenRoute && add({ kind: 'route', routeId: chosenRoute.id })}
            >
              Proxy this site via {chosenRoute ? routeLabel(chosenRoute) : 'route'}
            </button>
          </span>
        )}
        <button type="button" class="button" disabled={busy} onClick={() => add({ kind: 'direct' })}>
          Always direct
        </button>
        <button
          type="button"
          class="button button-danger"
          disabled={busy}
          onClick={() => add({ kind: 'block' })}
        >
          Block
        </button>
      </div>
      <p class={message?.bad ? 'error' : 'confirm'} role="status">
        {message?.text ?? ''}
      </p>
    </div>
  );
}

interface SiteErrorsProps {
  readonly errors: readonly TunnelEvent[];
  readonly problems: UiState['problems'];
}

function SiteErrors({ errors, problems }: SiteErrorsProps) {
  if (errors.length === 0 && problems.length === 0) return null;
  // Newest first: the last failure is the one the user just saw.
  const recent = errors.slice(-MAX_ERRORS).reverse();
  return (
    <section class="site-errors" aria-labelledby="site-errors-title">
      <h3 id="site-errors-title">Recent errors for this site</h3>
      <ul>
        {problems.map((problem) => (
          <li key={`p-${problem.at}-${problem.message}`} class="problem">
            <p class="problem-message">{problem.message}</p>
            {problem.advice && <p class="advice">{problem.advice}</p>}
          </li>
        ))}
        {recent.map((event) => (
          <li key={`e-${event.seq}`} class="problem">
            <p class="problem-message">
              <time class="muted">{formatTime(event.time)}</time> {event.dest}:{' '}
              {event.kind === 'denied' ? 'denied' : (event.error ?? event.result ?? 'failed')}
            </p>
            <p class="advice">{adviceFor(event)}</p>
          </li>
        ))}
      </ul>
    </section>
  );
}
