// What to do about a failed or denied tunnel. The host reports facts (REP code, hop, error
// text); people need the next step, so the popup and the log turn one into the other here.
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';

const CHECK_UPSTREAM = 'Use Check on it in Options → Upstreams.';

export function adviceFor(event: TunnelEvent): string {
  const error = `${event.error ?? ''} ${event.result ?? ''}`.toLowerCase();
  if (event.kind === 'denied') {
    return "An access rule of the host refused this connection. Look at the access rules in the host's config (`switchyard doctor` shows which file).";
  }
  if (event.hop !== undefined) {
    const hop = `Hop ${event.hop} of ${event.via ?? 'the route'}`;
    if (/auth|password|credential|login/.test(error)) {
      return `${hop} rejected the login: check its username and save the password again in Options → Upstreams.`;
    }
    if (/timed? ?out|timeout/.test(error)) {
      return `${hop} did not answer in time: is it running and reachable from this computer? ${CHECK_UPSTREAM}`;
    }
    if (/refused|unreachable|not found|enotfound|econnrefused/.test(error) && event.hop === 1) {
      return `${hop} could not be reached: start it or fix its host and port. ${CHECK_UPSTREAM} A route can also fall back when its first hop is down (Options → Routes).`;
    }
    return `${hop} failed to connect onwards. ${CHECK_UPSTREAM}`;
  }
  if (/not found|enotfound|name|resolve/.test(error)) {
    return 'The name did not resolve where the connection left. If it is an intranet or region-only site, proxy it through the route that can reach it.';
  }
  if (/refused/.test(error)) {
    return 'The site refused the connection: it may be down, or not serve this port.';
  }
  if (/unreachable|ttl|timed? ?out|timeout/.test(error)) {
    return 'The site could not be reached from where the connection left. If it is only reachable through a proxy, use "Proxy this site via" above.';
  }
  if (/not allowed/.test(error)) {
    return 'The upstream proxy refused to connect there: its own rules do not allow this destination.';
  }
  return 'See the live log in Options for the whole story of this connection.';
}
