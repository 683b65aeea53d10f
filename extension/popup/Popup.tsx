/** @jsxRuntime automatic @jsxImportSource preact */
import { useEffect, useState } from 'preact/hooks';
import type { UiState } from '../shared/ui-protocol.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { HostError } from '../ui/HostError.tsx';
import { HostMissing } from '../ui/HostMissing.tsx';
import { ProblemList } from '../ui/ProblemList.tsx';
import { StatusLine } from '../ui/StatusLine.tsx';
import { Toggle } from '../ui/Toggle.tsx';
import { useUiState } from '../ui/use-ui-state.ts';
import { SiteSection } from './SiteSection.tsx';
import { BackgroundDown } from '../ui/Messages.tsx';

export interface PopupProps {
  readonly client: BackgroundClient;
  /** The active tab's URL; a promise so that tabs.query runs alongside state.get, not before it. */
  readonly tabUrl: Promise<string | undefined>;
  /** Opens the options page, at a tab such as 'log' when given. */
  readonly openOptions: (tab?: string) => void;
}

export function Popup({ client, tabUrl, openOptions }: PopupProps) {
  const { state, loadError, setState, reload } = useUiState(client);
  // undefined: no URL (or no tab); null: not known yet.
  const [url, setUrl] = useState<string | undefined | null>(null);

  useEffect(() => {
    let live = true;
    tabUrl.then(
      (value) => live && setUrl(value),
      () => live && setUrl(undefined),
    );
    return () => {
      live = false;
    };
  }, [tabUrl]);

  return (
    <main class="popup">
      <Header client={client} state={state} setState={setState} />
      {loadError && !state && <BackgroundDown error={loadError} onRetry={reload} />}
      {state && <Body client={client} state={state} setState={setState} url={url} />}
      <footer class="popup-footer">
        <button type="button" class="link-button" onClick={() => openOptions()}>
          Options
        </button>
        <button type="button" class="link-button" onClick={() => openOptions('log')}>
          Live log
        </button>
      </footer>
    </main>
  );
}

interface HeaderProps {
  readonly client: BackgroundClient;
  readonly state: UiState | null;
  readonly setState: (state: UiState) => void;
}

function Header({ client, state, setState }: HeaderProps) {
  // Shown at once and undone on failure: the switch must feel instant.
  const [pending, setPending] = useState<boolean | null>(null);
  const [error, setError] = useState<string | null>(null);
  const enabled = pending ?? state?.enabled ?? false;

  const toggle = (next: boolean) => {
    setPending(next);
    setError(null);
    client.send({ type: 'toggle', enabled: next }).then(
      (fresh) => {
        setState(fresh);
        setPending(null);
      },
      (e: unknown) => {
        setPending(null);
        setError(errorMessage(e));
      },
    );
  };

  return (
    <header class="popup-header">
      <h1>Switchyard</h1>
      {/* The first control in the DOM: the first Tab lands on the popup's main switch. */}
      <Toggle
        id="toggle"
        checked={enabled}
        label="Route traffic through Switchyard"
        disabled={state === null}
        onChange={toggle}
      />
      {state && <StatusLine host={state.host} enabled={enabled} />}
      {error && (
        <p class="error" role="alert">
          Could not switch: {error}
        </p>
      )}
    </header>
  );
}

interface BodyProps {
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly setState: (state: UiState) => void;
  readonly url: string | undefined | null;
}

function Body({ client, state, setState, url }: BodyProps) {
  const reconnect = () => {
    client.send({ type: 'host.reconnect' }).then(setState, () => {});
  };
  // Site-specific problems belong to the site section; host-missing has its own instructions.
  const general = state.problems.filter((p) => p.host === undefined && p.kind !== 'host-missing');
  return (
    <>
      {state.host.state === 'host-missing' && (
        <HostMissing installCommand={state.installCommand} onRetry={reconnect} />
      )}
      {state.host.state === 'host-error' && <HostError error={state.host.error} onReconnect={reconnect} />}
      <ProblemList problems={general} />
      {url === null ? null : <SiteSection client={client} state={state} url={url} />}
    </>
  );
}
