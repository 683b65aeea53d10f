/** @jsxRuntime automatic @jsxImportSource preact */

export interface HostErrorProps {
  readonly error: string | undefined;
  readonly onReconnect: () => void;
}

/** The host is installed but not answering: its own words, and a way to try again. */
export function HostError({ error, onReconnect }: HostErrorProps) {
  return (
    <div class="callout callout-bad">
      <p class="host-error">{error ?? 'The host stopped answering.'}</p>
      <button type="button" class="button" onClick={onReconnect}>
        Reconnect
      </button>
    </div>
  );
}
