/** @jsxRuntime automatic @jsxImportSource preact */
import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import type { UiState } from '../shared/ui-protocol.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { HostError } from '../ui/HostError.tsx';
import { HostMissing } from '../ui/HostMissing.tsx';
import { ProblemList } from '../ui/ProblemList.tsx';
import { StatusLine } from '../ui/StatusLine.tsx';
import { Toggle } from '../ui/Toggle.tsx';
import { useUiState } from '../ui/use-ui-state.ts';
import { ImportExport } from './ImportExport.tsx';
import { Log } from './Log.tsx';
import { Routes } from './Routes.tsx';
import { Rules } from './Rules.tsx';
import { Settings } from './Settings.tsx';
import { Tester } from './Tester.tsx';
import { Upstreams } from './Upstreams.tsx';
import { type LoadedConfigEditor, useConfig } from './use-config.ts';
import { BackgroundDown, ErrorAlert } from '../ui/Messages.tsx';

export const TABS = [
  { id: 'upstreams', label: 'Upstreams' },
  { id: 'routes', label: 'Routes' },
  { id: 'rules', label: 'Rules' },
  { id: 'tester', label: 'Test a URL' },
  { id: 'settings', label: 'Settings' },
  { id: 'import-export', label: 'Import & export' },
  { id: 'log', label: 'Live log' },
] as const;
export type TabId = (typeof TABS)[number]['id'];

export function isTabId(value: string): value is TabId {
  return TABS.some((tab) => tab.id === value);
}

export interface OptionsProps {
  readonly client: BackgroundClient;
  readonly initialTab?: TabId;
  /** Lets the page keep the tab in its URL (#rules), so a reload or a link lands on it. */
  readonly onTabChange?: (tab: TabId) => void;
  /**
   * Asks for an optional permission. It must run in the page, inside the click that wants it:
   * browsers only grant permissions from a user gesture.
   */
  readonly requestPermission?: (permission: 'privacy') => Promise<boolean>;
}

export function Options({ client, initialTab = 'upstreams', onTabChange, requestPermission }: OptionsProps) {
  const { state, loadError, setState, reload } = useUiState(client);
  const [tab, setTab] = useState<TabId>(initialTab);

  const select = (next: TabId) => {
    setTab(next);
    onTabChange?.(next);
  };

  if (!state) {
    return (
      <main class="options">
        <h1>Switchyard</h1>
        {loadError ? <BackgroundDown error={loadError} onRetry={reload} /> : <p class="muted">Loading…</p>}
      </main>
    );
  }
  return (
    <main class="options">
      <OptionsHeader client={client} state={state} setState={setState} />
      <TabList tab={tab} onSelect={select} />
      <div class="tab-panel" role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        <Panel
          tab={tab}
          client={client}
          state={state}
          setState={setState}
          requestPermission={requestPermission}
        />
      </div>
    </main>
  );
}

function OptionsHeader({
  client,
  state,
  setState,
}: {
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly setState: (state: UiState) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const toggle = (enabled: boolean) => {
    setError(null);
    client.send({ type: 'toggle', enabled }).then(setState, (e: unknown) => setError(errorMessage(e)));
  };
  const reconnect = () => {
    client.send({ type: 'host.reconnect' }).then(setState, (e: unknown) => setError(errorMessage(e)));
  };
  const general = state.problems.filter((p) => p.kind !== 'host-missing');
  return (
    <header class="options-header">
      <div class="options-title">
        <h1>Switchyard</h1>
        <Toggle checked={state.enabled} label="Route traffic through Switchyard" onChange={toggle} />
        <StatusLine host={state.host} enabled={state.enabled} />
      </div>
      <ErrorAlert error={error} />
      {state.host.state === 'host-missing' && (
        <HostMissing installCommand={state.installCommand} onRetry={reconnect} />
      )}
      {state.host.state === 'host-error' && <HostError error={state.host.error} onReconnect={reconnect} />}
      <ProblemList problems={general} />
    </header>
  );
}

function TabList({ tab, onSelect }: { readonly tab: TabId; readonly onSelect: (tab: TabId) => void }) {
  const list = useRef<HTMLDivElement>(null);
  // Arrow keys move between tabs (and select them), as the ARIA tabs pattern expects.
  const onKeyDown = (event: KeyboardEvent) => {
    const index = TABS.findIndex((t) => t.id === tab);
    const next =
      event.key === 'ArrowRight'
        ? (index + 1) % TABS.length
        : event.key === 'ArrowLeft'
          ? (index - 1 + TABS.length) % TABS.length
          : event.key === 'Home'
            ? 0
            : event.key === 'End'
              ? TABS.length - 1
              : -1;
    const target = TABS[next];
    if (!target) return;
    event.preventDefault();
    onSelect(target.id);
    list.current?.querySelector<HTMLElement>(`#tab-${target.id}`)?.focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label="Sections" ref={list} onKeyDown={onKeyDown}>
      {TABS.map((t) => (
        <button
          key={t.id}
          id={`tab-${t.id}`}
          type="button"
          role="tab"
          aria-selected={t.id === tab}
          aria-controls={`panel-${t.id}`}
          tabIndex={t.id === tab ? 0 : -1}
          class="tab"
          onClick={() => onSelect(t.id)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

interface PanelProps {
  readonly tab: TabId;
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly setState: (state: UiState) => void;
  readonly requestPermission: OptionsProps['requestPermission'];
}

function Panel({ tab, client, state, setState, requestPermission }: PanelProps) {
  const editor = useConfig(client, state);
  const needsConfig = (render: (editor: LoadedConfigEditor) => ComponentChildren) =>
    editor.config ? render({ ...editor, config: editor.config }) : <NoConfig state={state} />;
  switch (tab) {
    case 'upstreams':
      return needsConfig((e) => <Upstreams client={client} state={state} editor={e} />);
    case 'routes':
      return needsConfig((e) => <Routes client={client} editor={e} />);
    case 'rules':
      return needsConfig((e) => <Rules editor={e} />);
    case 'tester':
      return needsConfig((e) => <Tester client={client} config={e.config} />);
    case 'settings':
      return (
        <Settings
          client={client}
          state={state}
          setState={setState}
          editor={editor}
          requestPermission={requestPermission}
        />
      );
    case 'import-export':
      return needsConfig((e) => <ImportExport client={client} editor={e} />);
    case 'log':
      return <Log client={client} />;
  }
}

function NoConfig({ state }: { readonly state: UiState }) {
  return (
    <p class="callout">
      {state.host.state === 'connecting'
        ? 'Waiting for the host to send its configuration…'
        : 'Upstreams, routes and rules live in the host’s configuration: they appear here once the host is running (see above).'}
    </p>
  );
}
