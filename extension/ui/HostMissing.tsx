/** @jsxRuntime automatic @jsxImportSource preact */
import { CopyButton } from './CopyButton.tsx';

export interface HostMissingProps {
  readonly installCommand: string;
  readonly onRetry: () => void;
}

/** The exact steps, not a link to a manual: the command is the whole fix. */
export function HostMissing({ installCommand, onRetry }: HostMissingProps) {
  return (
    <section class="callout callout-bad" aria-labelledby="host-missing-title">
      <h2 id="host-missing-title">The Switchyard host is not installed</h2>
      <p>
        The browser cannot start the host program that routes your traffic. Install it once: run this in a
        terminal.
      </p>
      <div class="command">
        <code id="install-command">{installCommand}</code>
        <CopyButton text={installCommand} label="Copy command" />
      </div>
      <p>Then restart the browser, or try again now:</p>
      <button type="button" class="button" onClick={onRetry}>
        Try again
      </button>
    </section>
  );
}
