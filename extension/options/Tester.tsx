/** @jsxRuntime automatic @jsxImportSource preact */
import { useState } from 'preact/hooks';
import type { Config } from '../../shared/config/schema.ts';
import type { CheckResult, RouteResult } from '../../shared/messages/protocol.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { CheckReport } from '../ui/CheckReport.tsx';
import { routeLabel } from '../ui/format.ts';
import { HopList } from '../ui/HopList.tsx';
import { ErrorAlert } from '../ui/Messages.tsx';

export interface TesterProps {
  readonly client: BackgroundClient;
  readonly config: Config;
}

function fallbackText(fallback: NonNullable<RouteResult['onFirstHopDown']>, config: Config): string {
  if (fallback === 'direct') return 'goes direct';
  const route = config.routes.find((r) => r.id === fallback.route);
  return `tries route ${route ? routeLabel(route) : fallback.route}`;
}

/** URL in; rule, route and hops out, as the host itself decides them (its `route` request). */
export function Tester({ client, config }: TesterProps) {
  const [target, setTarget] = useState('');
  const [result, setResult] = useState<RouteResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [check, setCheck] = useState<CheckResult | string | null>(null);

  const submit = (event: Event) => {
    event.preventDefault();
    const value = target.trim();
    if (value === '') {
      setError('Enter a URL or a host, such as https://intranet.example.com/ or example.com:443.');
      return;
    }
    setBusy(true);
    setError(null);
    setCheck(null);
    client.host('route', { target: value }).then(
      (r) => {
        setBusy(false);
        setResult(r);
      },
      (e: unknown) => {
        setBusy(false);
        setResult(null);
        setError(errorMessage(e));
      },
    );
  };

  const runCheck = (r: RouteResult) => {
    if (!r.route) return;
    setCheck('Checking…');
    client
      .host('check', { name: r.route.id, target: r.destination })
      .then(setCheck, (e: unknown) => setCheck(`Check failed: ${errorMessage(e)}`));
  };

  const ruleIndex = result?.ruleId === undefined ? -1 : config.rules.findIndex((r) => r.id === result.ruleId);
  return (
    <section aria-labelledby="tester-title">
      <h2 id="tester-title">Test a URL</h2>
      <p class="muted">See which rule a site matches and which way it goes, before you visit it.</p>
      <form class="toolbar" onSubmit={submit} aria-label="Test a URL">
        <div class="inline-field grow">
          <label for="tester-url" class="sr-only">
            URL or host
          </label>
          <input
            id="tester-url"
            type="text"
            inputMode="url"
            spellcheck={false}
            placeholder="https://intranet.example.com/ or example.com:443"
            value={target}
            onInput={(e) => setTarget(e.currentTarget.value)}
          />
        </div>
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Testing…' : 'Test'}
        </button>
      </form>
      <ErrorAlert error={error} />
      <div aria-live="polite">
        {result && (
          <div class="card tester-result">
            <dl class="facts">
              <dt>Destination</dt>
              <dd>{result.destination}</dd>
              <dt>Rule</dt>
              <dd class="tester-rule">
                {result.ruleId === undefined ? 'No rule matches: the default applies' : result.rule}
                {ruleIndex >= 0 && <span class="muted"> (rule {ruleIndex + 1})</span>}
              </dd>
              <dt>Goes</dt>
              <dd class="tester-target">
                {result.target.kind === 'route'
                  ? `via route ${result.route?.name ?? result.target.routeId}`
                  : result.target.kind === 'direct'
                    ? 'Direct'
                    : 'Blocked'}
              </dd>
              {result.onFirstHopDown !== undefined && (
                <>
                  <dt>If hop 1 is down</dt>
                  <dd>{fallbackText(result.onFirstHopDown, config)}</dd>
                </>
              )}
            </dl>
            {result.hops.length > 0 && (
              <HopList
                hops={result.hops.map((h) => ({ name: h.name, detail: `${h.type} ${h.host}:${h.port}` }))}
                destination={result.destination}
              />
            )}
            <p class="muted small">
              <code>{result.description}</code>
            </p>
            {result.route && (
              <button type="button" class="button" onClick={() => runCheck(result)}>
                Check this route
              </button>
            )}
            {typeof check === 'string' && <p class="muted">{check}</p>}
            {check !== null && typeof check === 'object' && <CheckReport result={check} />}
          </div>
        )}
      </div>
    </section>
  );
}
