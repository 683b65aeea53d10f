// The routing rule model shared by the native host (which decides every connection) and the
// extension (which compiles the same rules into a PAC script). Plain data, JSON-serialisable.

/**
 * - `exact`: one host, e.g. 'example.com' (case-insensitive, a trailing dot is ignored).
 * - `domain`: written '*.example.com'; matches example.com itself and every subdomain.
 * - `suffix`: a plain string suffix of the host: 'ample.com' matches 'example.com'.
 * - `regex`: JavaScript RegExp source, unanchored, tested case-insensitively against the
 *   normalised host (lowercase, no trailing dot).
 *
 * Host patterns only ever match host names: a destination given as an IP literal is matched by
 * `RuleMatch.ips` instead, so that '::ffff:10.0.0.1' and '10.0.0.1' can never be told apart by
 * the way they happen to be spelled.
 */
export type HostPatternType = 'exact' | 'domain' | 'suffix' | 'regex';

export interface HostPattern {
  type: HostPatternType;
  value: string;
}

/** A single port (1-65535) or an inclusive range of ports. */
export type PortRange = number | { from: number; to: number };

/** The `contexts` entry for private windows (Firefox). */
export const PRIVATE_CONTEXT = 'private';

/**
 * All present conditions must hold; within one list any entry may match. A match with no
 * conditions matches every destination. `hosts` and `ips` cannot be combined in one rule: a
 * destination is either a name or an address, so such a rule could never match.
 */
export interface RuleMatch {
  hosts?: HostPattern[];
  /** IPv4/IPv6 addresses or CIDR ranges ('10.0.0.0/8', '2001:db8::/32', '192.168.1.5'). */
  ips?: string[];
  ports?: PortRange[];
  /**
   * Where in the browser the request comes from (Firefox): a container's cookieStoreId
   * ('firefox-container-1', or 'firefox-default' for no container) or PRIVATE_CONTEXT for
   * private windows. Only the browser knows this: a decision made without a RequestContext
   * (the host, Chrome's PAC script) skips every rule that has this condition.
   */
  contexts?: string[];
}

/** Where a request comes from in the browser, for rules with `contexts`. */
export interface RequestContext {
  /** The tab's cookieStoreId, when the browser has containers. */
  readonly cookieStoreId?: string | undefined;
  /** A private window's request. */
  readonly private?: boolean | undefined;
}

export type RuleTarget = { kind: 'route'; routeId: string } | { kind: 'direct' } | { kind: 'block' };

export interface Rule {
  id: string;
  enabled: boolean;
  name?: string;
  match: RuleMatch;
  target: RuleTarget;
}

export interface Ruleset {
  rules: Rule[];
  defaultTarget: RuleTarget;
}

/** Where a connection wants to go: a host name or IP literal ('[::1]' accepted), and a port. */
export interface Destination {
  host: string;
  port: number;
}

export interface RuleDecision {
  readonly matched: 'rule';
  readonly ruleId: string;
  /** Position in the rules array given to compileRules (disabled rules count). */
  readonly ruleIndex: number;
  readonly target: Readonly<RuleTarget>;
}

export interface DefaultDecision {
  readonly matched: 'default';
  readonly target: Readonly<RuleTarget>;
}

export type Decision = RuleDecision | DefaultDecision;

export interface ValidationError {
  /** Field path such as 'rules[3].match.hosts[0]'. */
  path: string;
  message: string;
}
