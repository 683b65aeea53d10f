/**
 * A route chosen by the browser, carried to the host in the SOCKS5 username (RFC 1929).
 *
 * Rules with a `contexts` condition (Firefox containers, private windows) can only be decided
 * in the browser: the host sees a connection from 127.0.0.1, not the tab it came from. When
 * such a rule targets a route or block, Firefox's proxy.onRequest answers with a SOCKS proxy
 * whose username names the target, and the host uses it instead of its own rules (which would
 * skip that rule). The password carries the deciding rule's id, for the host's log; neither is
 * a secret.
 *
 * The host reads hints only while it has no inbound users: with users, the username is a
 * person's login and cannot also carry a route (the options page says so next to the picker).
 */

export const ROUTE_HINT_PREFIX = 'route:';
/** The username for a container rule that blocks. A route id never starts with '!'. */
export const BLOCK_HINT = 'route:!block';
/** The password when the rule id does not fit RFC 1929's 255 bytes (it must not be empty). */
export const HINT_PASSWORD_PLACEHOLDER = '-';

const MAX_FIELD_BYTES = 255;

export type RouteHint =
  | { readonly kind: 'route'; readonly routeId: string; readonly ruleId?: string }
  | { readonly kind: 'block'; readonly ruleId?: string };

export interface HintCredentials {
  readonly username: string;
  readonly password: string;
}

// No TextEncoder here: shared/ has neither the DOM's nor Node's types.
function utf8Length(text: string): number {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** The username and password that carry `hint`; undefined when the route id is too long to fit. */
export function hintCredentials(hint: RouteHint): HintCredentials | undefined {
  const username = hint.kind === 'block' ? BLOCK_HINT : `${ROUTE_HINT_PREFIX}${hint.routeId}`;
  if (utf8Length(username) > MAX_FIELD_BYTES) return undefined;
  const ruleId = hint.ruleId;
  const password =
    ruleId !== undefined && ruleId !== '' && utf8Length(ruleId) <= MAX_FIELD_BYTES
      ? ruleId
      : HINT_PASSWORD_PLACEHOLDER;
  return { username, password };
}

/** The hint in a SOCKS5 username and password, or undefined when the username is not one. */
export function parseRouteHint(username: string, password: string): RouteHint | undefined {
  if (!username.startsWith(ROUTE_HINT_PREFIX)) return undefined;
  const ruleId = password !== '' && password !== HINT_PASSWORD_PLACEHOLDER ? { ruleId: password } : {};
  if (username === BLOCK_HINT) return { kind: 'block', ...ruleId };
  const routeId = username.slice(ROUTE_HINT_PREFIX.length);
  if (routeId === '') return undefined;
  return { kind: 'route', routeId, ...ruleId };
}
