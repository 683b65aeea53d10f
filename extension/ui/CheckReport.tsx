/** @jsxRuntime automatic @jsxImportSource preact */
import type { CheckResult } from '../../shared/messages/protocol.ts';
import { formatMs } from './format.ts';

/** Each hop of a check with its time, so a slow or dead hop stands out. */
export function CheckReport({ result }: { readonly result: CheckResult }) {
  return (
    <div class="check-report" data-ok={result.ok}>
      <p class="check-summary">
        {result.ok ? 'Reachable' : 'Failed'}: {result.label} to {result.destination}
      </p>
      <ol class="check-hops" aria-label="Check results by hop">
        {result.hops.map((hop) => (
          <li key={hop.hop} class="check-hop" data-ok={hop.ok}>
            <span class="check-hop-name">
              {hop.hop}. {hop.name}
            </span>
            <span class="check-hop-result">{hop.ok ? 'ok' : 'failed'}</span>
            <span class="check-hop-ms">{formatMs(hop.ms)}</span>
            {hop.error && <span class="check-hop-error">{hop.error}</span>}
          </li>
        ))}
      </ol>
    </div>
  );
}
