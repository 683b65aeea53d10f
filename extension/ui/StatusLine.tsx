/** @jsxRuntime automatic @jsxImportSource preact */
import type { UiState } from '../shared/ui-protocol.ts';
import { formatBytes, portOf } from './format.ts';

export interface StatusLineProps {
  readonly host: UiState['host'];
  readonly enabled: boolean;
}

const STATE_TEXT: Record<UiState['host']['state'], string> = {
  connecting: 'Connecting to the host…',
  connected: 'Connected',
  'host-missing': 'Host not installed',
  'host-error': 'Host not reachable',
};

/** One line that says whether the host is there and what it is doing. */
export function StatusLine({ host, enabled }: StatusLineProps) {
  const status = host.status;
  const tone =
    host.state === 'connected' ? (enabled ? 'ok' : 'idle') : host.state === 'connecting' ? 'idle' : 'bad';
  return (
    <p class="status-line" data-tone={tone}>
      <span class="status-dot" aria-hidden="true" />
      <span class="status-state">{STATE_TEXT[host.state]}</span>
      {host.state === 'connected' && status && (
        <>
          <span class="status-item">port {portOf(status.listening)}</span>
          <span class="status-item">
            {status.activeTunnels} {status.activeTunnels === 1 ? 'tunnel' : 'tunnels'}
          </span>
          <span class="status-item" title="Traffic of closed tunnels since the host started">
            <span class="sr-only">traffic </span>↑ {formatBytes(status.bytesUp)} ↓{' '}
            {formatBytes(status.bytesDown)}
          </span>
        </>
      )}
    </p>
  );
}
