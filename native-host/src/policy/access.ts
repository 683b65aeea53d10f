/**
 * Access control: whether a request may go anywhere at all, decided before routing. Pure apart
 * from the injected identity lookup (which reads /proc); it opens no sockets and resolves no
 * names, the caller does that and reports back.
 *
 * Order of evaluation, and why:
 * 1. Owner only (`localClients: 'owner'`). A client on this machine (loopback, or our own
 *    address) run by another OS user is refused: otherwise every local account rides on the
 *    upstream credentials of the person running Switchyard. The one way past it is an allow
 *    rule that names that user in `localUsers` and is the first rule to match, so admitting a
 *    user is always explicit. When the user cannot be told, two cases differ:
 *    - the platform cannot tell (no /proc: not Linux; the identity lookup answers undefined,
 *      and `ownerCheckSupported()` says so up front, for the service to warn once at start):
 *      the connection is allowed and a debug line says so, since refusing would lock the owner
 *      out on every platform without /proc;
 *    - Linux could have told but did not (reading /proc/net/tcp failed, say EMFILE or EACCES,
 *      or the client's socket was not there even after a fresh read; the lookup answers an
 *      `IdentityFailure`, and a lookup that throws counts as one): the connection is REFUSED,
 *      because letting an unknown user through is exactly the hole this check closes.
 * 2. Private destinations (`privateDestinations: 'deny'`, or `'auto'` when listening beyond
 *    loopback): loopback, private, link-local, unspecified and multicast addresses are refused,
 *    whatever the rules say. IP literals are judged at once, including the spellings a resolver
 *    reads as addresses (`127.1`, `0x7f000001`, `::ffff:127.0.0.1`); names are judged on their
 *    resolved addresses. Literals are refused before routing even if a chained route would
 *    carry them to an exit where they mean something else: erring closed costs little there.
 * 3. The access rules in order, first match wins; a rule matches when every condition it has
 *    holds. No match allows.
 *
 * Conditions that need facts the request does not carry:
 * - `localUsers` and `programs` need the client's identity from /proc. It is fetched at most
 *   once per connection (a UDP association's datagrams share it) and only when a rule or the
 *   owner check needs it; the program only when some rule has a `programs` condition, because
 *   finding it walks every process. Clients that are not on this machine, or whose identity
 *   cannot be read, match no such condition.
 * - `destinations` hold addresses. A request naming a host cannot be judged by them until the
 *   name is resolved, and neither can the private-destination check. Then evaluate() returns a
 *   `pending` verdict (`needsResolution(verdict)` is true):
 *   - direct exit: resolve the name ONCE, call `resolve(addresses)`, and connect only to the
 *     addresses it returns (each address is judged on its own, first match wins from the
 *     undecided rule on; an address whose verdict is deny is left out; none left is a deny).
 *     Connecting to anything else, or resolving again, reopens the hole this closes: a name
 *     may answer differently the second time.
 *   - chained route: the exit resolves the name where we cannot see it, so call
 *     `unresolved()`: `destinations` conditions do not match a name there (they only apply to
 *     IP literals) and the private check does not apply to the exit's addresses. Which of the
 *     two applies is the caller's business: it knows the route, this module does not.
 *   Names that only look numeric (`1.2.3.256`) are names; `127.1` and friends are treated as
 *   their address at once and, when destinations are restricted, still come back pending so
 *   that the caller resolves them and the resolver's own reading is what gets checked.
 *
 * UDP ASSOCIATE: the request's address is where the client will send from, not a destination.
 * evaluate() judges the association on the client alone: rules are read in order and the first
 * one whose client conditions hold decides, unless it also has destination conditions (hosts,
 * ports, destinations), in which case the answer differs per destination and the association
 * is allowed. Each datagram destination is then judged by evaluateDatagram(), with the same
 * verdicts (and the same pending/resolve protocol) as a CONNECT.
 */
import type { AccessRule, TimeWindow } from '../../../shared/config/schema.ts';
import { type Cidr, cidrContains, type IpAddress, parseCidr } from '../../../shared/rules/ip.ts';
import { type CompiledRuleset, compileRules, RulesValidationError } from '../../../shared/rules/matcher.ts';
import type { HostPattern, PortRange, ValidationError } from '../../../shared/rules/types.ts';
import { normalizeHost } from '../../../shared/rules/validate.ts';
import type { Logger } from '../log/logger.ts';
import type { Address } from '../protocol/address.ts';
import type { TunnelRequest } from '../server/types.ts';
import { type AddressClass, classifyIp, type NumericHost, parseNumericHost } from './address-ranges.ts';
import {
  type ClientIdentity,
  type IdentityFailure,
  type IdentityLookup,
  isIdentityFailure,
  lookupClientIdentity,
} from './client-identity.ts';
import { inWindow, wallClock } from './time-window.ts';

export interface AccessAllow {
  readonly kind: 'allow';
  /** The allowing rule's id, name or `access[i]`; absent when no rule matched. */
  readonly rule?: string;
  /** Only from `resolve()`: the checked addresses, in the order given; connect to these only. */
  readonly addresses?: readonly string[];
  /** Only from `resolve()`: addresses left out, with the deny that hit each. */
  readonly excluded?: readonly ExcludedAddress[];
}

export interface AccessDeny {
  readonly kind: 'deny';
  /** The access rule's id, name or `access[i]`, or a `builtin:` label. */
  readonly rule: string;
  /** A sentence for the user, saying what to change to allow it. */
  readonly reason: string;
}

export interface ExcludedAddress {
  readonly address: string;
  readonly rule: string;
  readonly reason: string;
}

export interface AccessPending {
  readonly kind: 'pending';
  /** The destination as the client named it. */
  readonly host: string;
  /** Finishes the evaluation for a name resolved at the direct exit: see the module comment. */
  resolve(addresses: readonly string[]): AccessAllow | AccessDeny;
  /** Finishes the evaluation for a name the exit of a chained route resolves. */
  unresolved(): AccessAllow | AccessDeny;
}

export type AccessVerdict = AccessAllow | AccessDeny | AccessPending;

export interface AccessPolicy {
  /** Judges a request before routing; for UDP ASSOCIATE, the association (see the module comment). */
  evaluate(request: TunnelRequest): Promise<AccessVerdict>;
  /**
   * Judges one destination of an allowed UDP association, exactly as a CONNECT to it from the
   * same client would be (pending included); the client's identity is looked up once per
   * association, not per destination.
   */
  evaluateDatagram(association: TunnelRequest, destination: Address): Promise<AccessVerdict>;
  /** Whether private destinations are refused (privateDestinations and the listen address). */
  readonly restrictsPrivate: boolean;
}

export interface AccessInput {
  readonly access: readonly AccessRule[];
  readonly localClients: 'owner' | 'any';
  readonly privateDestinations: 'auto' | 'allow' | 'deny';
}

export interface AccessContext {
  /** The OS user running Switchyard; undefined where there is no such notion (Windows). */
  readonly ownerUid: number | undefined;
  readonly listenIsLoopback: boolean;
  readonly now?: () => Date;
  readonly identity?: typeof lookupClientIdentity;
  /** Receives the debug lines the policy has to say (an owner check it could not make). */
  readonly logger?: Pick<Logger, 'debug'>;
}

export const OWNER_ONLY_RULE = 'builtin:owner-only';
export const PRIVATE_DESTINATIONS_RULE = 'builtin:private-destinations';
export const NO_ADDRESS_RULE = 'builtin:no-address';

/** True when the verdict waits for the destination name to be resolved. */
export function needsResolution(verdict: AccessVerdict): verdict is AccessPending {
  return verdict.kind === 'pending';
}

interface CompiledRule {
  readonly label: string;
  readonly action: 'allow' | 'deny';
  readonly users: ReadonlySet<string> | undefined;
  readonly sources: readonly Cidr[] | undefined;
  readonly hosts: CompiledRuleset | undefined;
  readonly ports: CompiledRuleset | undefined;
  readonly destinations: readonly Cidr[] | undefined;
  readonly localUsers:
    | { readonly names: ReadonlySet<string>; readonly uids: ReadonlySet<number> }
    | undefined;
  readonly programs: { readonly paths: ReadonlySet<string>; readonly names: ReadonlySet<string> } | undefined;
  readonly time: TimeWindow | undefined;
  readonly needsIdentity: boolean;
  /** Has a hosts, ports or destinations condition. */
  readonly judgesDestination: boolean;
}

/** Everything known about one request while it is evaluated. */
interface Facts {
  readonly request: TunnelRequest;
  /** The connection's own request: for a datagram, its association. */
  readonly origin: TunnelRequest;
  /** Judging a UDP association itself, whose address is the client's, not a destination. */
  readonly association: boolean;
  readonly clientIp: IpAddress | undefined;
  /** The client runs on this machine, so /proc can tell who it is. */
  readonly isLocal: boolean;
  /** The destination when it is an address in any spelling a resolver reads as one. */
  readonly literal: NumericHost | undefined;
  /** The normalised destination name when it is not an address. */
  readonly name: string | undefined;
  readonly now: Date;
  identityLoaded: boolean;
  identity: ClientIdentity | undefined;
  /** Set instead of identity when Linux could not tell who the client is. */
  identityFailure: IdentityFailure | undefined;
}

/** A local client of another user, known to be one: refused unless a localUsers rule allows. */
interface Foreign {
  readonly uid: number;
  readonly userName: string | undefined;
}

type Match = 'yes' | 'no' | 'undecided';

const ANY_TARGET = { kind: 'direct' } as const;
// A ports-only rule matches every destination, so any address will do to ask about a port; an
// IP literal takes the matcher's shortest path.
const PORT_PROBE_HOST = '0.0.0.0';

function ruleLabel(rule: AccessRule, index: number): string {
  return rule.id ?? rule.name ?? `access[${index}]`;
}

function compileCondition(
  kind: 'hosts' | 'ports',
  value: HostPattern[] | PortRange[],
  index: number,
  errors: ValidationError[],
): CompiledRuleset | undefined {
  const match = kind === 'hosts' ? { hosts: value as HostPattern[] } : { ports: value as PortRange[] };
  try {
    return compileRules([{ id: kind, enabled: true, match, target: ANY_TARGET }], ANY_TARGET);
  } catch (error) {
    if (!(error instanceof RulesValidationError)) throw error;
    for (const e of error.errors) {
      errors.push({ path: e.path.replace(/^rules\[0\]\.match\./, `access[${index}].`), message: e.message });
    }
    return undefined;
  }
}

function compileCidrs(texts: readonly string[], path: string, errors: ValidationError[]): readonly Cidr[] {
  const out: Cidr[] = [];
  texts.forEach((text, j) => {
    const parsed = parseCidr(text);
    if (parsed.ok) out.push(parsed.cidr);
    else errors.push({ path: `${path}[${j}]`, message: parsed.error });
  });
  return out;
}

function compileRule(rule: AccessRule, index: number, errors: ValidationError[]): CompiledRule {
  const path = `access[${index}]`;
  if (rule.time !== undefined) {
    try {
      inWindow(rule.time, new Date(0));
      if (rule.time.timeZone !== undefined) wallClock(new Date(0), rule.time.timeZone);
    } catch (error) {
      errors.push({ path: `${path}.time`, message: error instanceof Error ? error.message : String(error) });
    }
  }
  const localUsers =
    rule.localUsers === undefined
      ? undefined
      : {
          names: new Set(rule.localUsers.filter((u): u is string => typeof u === 'string')),
          uids: new Set(
            rule.localUsers.flatMap((u) =>
              typeof u === 'number' ? [u] : /^\d+$/.test(u) ? [Number(u)] : [],
            ),
          ),
        };
  const programs =
    rule.programs === undefined
      ? undefined
      : {
          paths: new Set(rule.programs.filter((p) => p.includes('/'))),
          names: new Set(rule.programs.filter((p) => !p.includes('/'))),
        };
  return {
    label: ruleLabel(rule, index),
    action: rule.action,
    users: rule.users === undefined ? undefined : new Set(rule.users),
    sources: rule.sources === undefined ? undefined : compileCidrs(rule.sources, `${path}.sources`, errors),
    hosts: rule.hosts === undefined ? undefined : compileCondition('hosts', rule.hosts, index, errors),
    ports: rule.ports === undefined ? undefined : compileCondition('ports', rule.ports, index, errors),
    destinations:
      rule.destinations === undefined
        ? undefined
        : compileCidrs(rule.destinations, `${path}.destinations`, errors),
    localUsers,
    programs,
    time: rule.time,
    needsIdentity: localUsers !== undefined || programs !== undefined,
    judgesDestination:
      rule.hosts !== undefined || rule.ports !== undefined || rule.destinations !== undefined,
  };
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Conditions about the client come first, then those about the destination, so that a UDP
 * association (which has no destination yet) can stop exactly where the destination matters.
 */
function matchRule(rule: CompiledRule, facts: Facts, destination: IpAddress | undefined): Match {
  const { request } = facts;
  if (rule.users !== undefined && (request.user === undefined || !rule.users.has(request.user))) return 'no';
  if (rule.sources !== undefined) {
    const ip = facts.clientIp;
    if (ip === undefined || !rule.sources.some((c) => cidrContains(c, ip))) return 'no';
  }
  if (rule.time !== undefined && !inWindow(rule.time, facts.now)) return 'no';
  if (rule.localUsers !== undefined) {
    const uid = facts.identity?.uid;
    const name = facts.identity?.userName;
    const hit =
      (uid !== undefined && rule.localUsers.uids.has(uid)) ||
      (name !== undefined && rule.localUsers.names.has(name));
    if (!hit) return 'no';
  }
  if (rule.programs !== undefined) {
    const program = facts.identity?.program;
    if (program === undefined) return 'no';
    if (!rule.programs.paths.has(program) && !rule.programs.names.has(basename(program))) return 'no';
  }
  if (facts.association) return rule.judgesDestination ? 'undecided' : 'yes';
  if (rule.ports?.decide({ host: PORT_PROBE_HOST, port: request.destination.port }).matched === 'default') {
    return 'no';
  }
  if (rule.hosts !== undefined) {
    // An address never matches host patterns, however it is spelled.
    if (facts.name === undefined) return 'no';
    if (rule.hosts.decide({ host: facts.name, port: request.destination.port }).matched === 'default') {
      return 'no';
    }
  }
  if (rule.destinations !== undefined) {
    if (destination === undefined) return facts.literal === undefined ? 'undecided' : 'no';
    const d = destination;
    if (!rule.destinations.some((c) => cidrContains(c, d))) return 'no';
  }
  return 'yes';
}

const CLASS_WORDS: Record<Exclude<AddressClass, 'public'>, string> = {
  loopback: 'a loopback address (this machine)',
  private: 'a private network address',
  'link-local': 'a link-local address',
  unspecified: 'an unspecified address (it reaches this machine)',
  multicast: 'a multicast address',
};

function describeUser(uid: number, userName: string | undefined): string {
  return userName === undefined ? `with uid ${uid}` : `${userName} (uid ${uid})`;
}

function clientText(request: TunnelRequest): string {
  const host = request.client.host;
  return host.includes(':') ? `[${host}]` : host;
}

function destinationText(request: TunnelRequest, address?: string): string {
  const host = request.destination.host;
  const named = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return address === undefined || address === host
    ? `${named}:${request.destination.port}`
    : `${named} (${address}):${request.destination.port}`;
}

export function compileAccess(input: AccessInput, context: AccessContext): AccessPolicy {
  const errors: ValidationError[] = [];
  const rules = input.access.map((rule, i) => compileRule(rule, i, errors));
  if (errors.length > 0) throw new RulesValidationError(errors);

  const now = context.now ?? (() => new Date());
  const identityOf = context.identity ?? lookupClientIdentity;
  const ownerUid = context.ownerUid;
  const ownerCheck = input.localClients === 'owner' && ownerUid !== undefined;
  const restrictsPrivate =
    input.privateDestinations === 'deny' ||
    (input.privateDestinations === 'auto' && !context.listenIsLoopback);
  const wantProgram = rules.some((r) => r.programs !== undefined);
  const anyDestinations = rules.some((r) => r.destinations !== undefined);
  const localUserAllows = rules.some((r) => r.action === 'allow' && r.localUsers !== undefined);
  // identityFrom[i]: some rule from i on needs the client's identity.
  const identityFrom: boolean[] = new Array<boolean>(rules.length + 1).fill(false);
  for (let i = rules.length - 1; i >= 0; i--)
    identityFrom[i] = rules[i]!.needsIdentity || identityFrom[i + 1]!;

  const privateWhy =
    input.privateDestinations === 'deny'
      ? 'because privateDestinations is "deny"; set it to "allow" to permit them'
      : 'when it listens beyond loopback, so that clients on the network cannot reach this machine or its LAN; ' +
        'set privateDestinations: "allow" to permit them';

  // Keyed by the connection's request, so that an association's datagrams reuse its lookup;
  // a promise, so that datagrams arriving together share one.
  const identities = new WeakMap<TunnelRequest, Promise<IdentityLookup>>();

  async function loadIdentity(facts: Facts): Promise<void> {
    if (facts.identityLoaded) return;
    facts.identityLoaded = true;
    if (!facts.isLocal) return;
    let lookup = identities.get(facts.origin);
    if (lookup === undefined) {
      const { client, local } = facts.origin;
      lookup = Promise.resolve()
        .then(() => identityOf(client, local, { program: wantProgram }))
        .catch(
          (error: unknown): IdentityFailure => ({
            kind: 'failure',
            reason: error instanceof Error ? error.message : String(error),
          }),
        );
      identities.set(facts.origin, lookup);
    }
    const result = await lookup;
    if (isIdentityFailure(result)) facts.identityFailure = result;
    else facts.identity = result;
  }

  function unknownOwnerDeny(failure: IdentityFailure): AccessDeny {
    return {
      kind: 'deny',
      rule: OWNER_ONLY_RULE,
      reason:
        `could not determine which local user runs this client (${failure.reason}); ` +
        'refusing because localClients is "owner"',
    };
  }

  function ownerDeny(foreign: Foreign): AccessDeny {
    const who = describeUser(foreign.uid, foreign.userName);
    const entry = JSON.stringify(foreign.userName ?? foreign.uid);
    return {
      kind: 'deny',
      rule: OWNER_ONLY_RULE,
      reason:
        `local user ${who} is not the owner of this Switchyard (uid ${ownerUid}); ` +
        `set localClients: "any" or add an access rule to allow (action: "allow", localUsers: [${entry}])`,
    };
  }

  function privateDeny(
    request: TunnelRequest,
    address: string,
    cls: AddressClass,
    resolved: boolean,
  ): AccessDeny {
    const host = request.destination.host;
    const words = CLASS_WORDS[cls as Exclude<AddressClass, 'public'>];
    const what =
      address === host || address === normalizeHost(host)
        ? `${address} is ${words}`
        : `${host} ${resolved ? 'resolves to' : 'means'} ${address}, ${words}`;
    return {
      kind: 'deny',
      rule: PRIVATE_DESTINATIONS_RULE,
      reason: `${what}; Switchyard refuses loopback, private, link-local and multicast destinations ${privateWhy}`,
    };
  }

  function ruleDeny(rule: CompiledRule, request: TunnelRequest, address?: string): AccessDeny {
    const as = request.user === undefined ? '' : ` as user ${request.user}`;
    return {
      kind: 'deny',
      rule: rule.label,
      reason:
        `access rule '${rule.label}' denies connections${as} from ${clientText(request)} to ` +
        `${destinationText(request, address)}; change that rule, or add an allow rule before it, to permit them`,
    };
  }

  /** The verdict once the first matching rule (or none) is known. */
  function finish(
    rule: CompiledRule | undefined,
    facts: Facts,
    foreign: Foreign | undefined,
    address?: string,
  ): AccessAllow | AccessDeny {
    if (rule?.action === 'deny') return ruleDeny(rule, facts.request, address);
    if (foreign !== undefined && rule?.localUsers === undefined) return ownerDeny(foreign);
    return rule === undefined ? { kind: 'allow' } : { kind: 'allow', rule: rule.label };
  }

  /** First match wins from rule `start` on, all facts at hand (identity already loaded). */
  function decideFrom(
    start: number,
    facts: Facts,
    foreign: Foreign | undefined,
    destination: IpAddress | undefined,
    address?: string,
  ): AccessAllow | AccessDeny {
    for (let i = start; i < rules.length; i++) {
      const rule = rules[i]!;
      // 'undecided' cannot happen here except for a name at a chained exit, where it means no.
      if (matchRule(rule, facts, destination) === 'yes') return finish(rule, facts, foreign, address);
    }
    return finish(undefined, facts, foreign, address);
  }

  function judgeAddress(
    start: number,
    facts: Facts,
    foreign: Foreign | undefined,
    address: string,
  ): AccessAllow | AccessDeny {
    const parsed = parseNumericHost(address);
    if (parsed === undefined) {
      return {
        kind: 'deny',
        rule: NO_ADDRESS_RULE,
        reason: `the resolver answered '${address}' for ${facts.request.destination.host}, which is not an IP address`,
      };
    }
    if (restrictsPrivate) {
      const cls = classifyIp(parsed.address);
      if (cls !== 'public') return privateDeny(facts.request, address, cls, true);
    }
    return decideFrom(start, facts, foreign, parsed.address, address);
  }

  async function pending(start: number, facts: Facts, foreign: Foreign | undefined): Promise<AccessPending> {
    // resolve() is synchronous, so whatever identity the remaining rules need is fetched now.
    if (identityFrom[start]) await loadIdentity(facts);
    const host = facts.request.destination.host;
    return {
      kind: 'pending',
      host,
      resolve(addresses: readonly string[]): AccessAllow | AccessDeny {
        if (addresses.length === 0) {
          return { kind: 'deny', rule: NO_ADDRESS_RULE, reason: `${host} resolved to no addresses` };
        }
        const allowed: string[] = [];
        const excluded: ExcludedAddress[] = [];
        let rule: string | undefined;
        for (const address of addresses) {
          const verdict = judgeAddress(start, facts, foreign, address);
          if (verdict.kind === 'deny') {
            excluded.push({ address, rule: verdict.rule, reason: verdict.reason });
          } else {
            if (allowed.length === 0) rule = verdict.rule;
            allowed.push(address);
          }
        }
        if (allowed.length === 0) {
          const first = excluded[0]!;
          const reason =
            excluded.length === 1
              ? first.reason
              : `none of the ${excluded.length} addresses of ${host} may be used; the first: ${first.reason}`;
          return { kind: 'deny', rule: first.rule, reason };
        }
        const verdict: AccessAllow = { kind: 'allow', addresses: allowed, excluded };
        return rule === undefined ? verdict : { ...verdict, rule };
      },
      unresolved(): AccessAllow | AccessDeny {
        return decideFrom(start, facts, foreign, facts.literal?.address);
      },
    };
  }

  /** `origin` is the request the client's identity belongs to: the association for datagrams. */
  async function run(request: TunnelRequest, origin: TunnelRequest): Promise<AccessVerdict> {
    const association = request === origin && request.command === 'udp-associate';
    const client = parseNumericHost(request.client.host);
    const local = parseNumericHost(request.local.host);
    const literal = association ? undefined : parseNumericHost(request.destination.host);
    const facts: Facts = {
      request,
      origin,
      association,
      clientIp: client?.address,
      isLocal:
        client !== undefined &&
        (classifyIp(client.address) === 'loopback' || (local !== undefined && local.text === client.text)),
      literal,
      name: association || literal !== undefined ? undefined : normalizeHost(request.destination.host),
      now: now(),
      identityLoaded: false,
      identity: undefined,
      identityFailure: undefined,
    };

    let foreign: Foreign | undefined;
    if (ownerCheck && facts.isLocal) {
      await loadIdentity(facts);
      const uid = facts.identity?.uid;
      // Fail closed: on Linux, not knowing the user is no reason to let them through.
      if (facts.identityFailure !== undefined) return unknownOwnerDeny(facts.identityFailure);
      if (uid === undefined) {
        // Said once per connection, not again for each of its datagrams.
        if (request === origin) {
          context.logger?.debug('cannot tell which local user this client runs as; allowing it', {
            id: request.id,
            client: clientText(request),
          });
        }
      } else if (uid !== ownerUid) {
        foreign = { uid, userName: facts.identity?.userName };
        if (!localUserAllows) return ownerDeny(foreign);
      }
    }

    if (literal !== undefined && restrictsPrivate) {
      const cls = classifyIp(literal.address);
      if (cls !== 'public') return privateDeny(request, literal.text, cls, false);
    }

    // A name must be resolved before the private check can judge it, and a numeric name that
    // only a resolver reads must be judged on what the resolver makes of it.
    const recheck =
      !association &&
      ((restrictsPrivate && (literal === undefined || !literal.canonical)) ||
        (anyDestinations && literal !== undefined && !literal.canonical));
    // For a name, the rules before the match failed on facts resolution cannot change; for a
    // numeric name they were judged on our reading of it, which the resolver's may contradict.
    const recheckFrom = (index: number): number => (literal === undefined ? index : 0);

    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (rule.needsIdentity) await loadIdentity(facts);
      const match = matchRule(rule, facts, literal?.address);
      if (match === 'no') continue;
      if (match === 'undecided') {
        // An association reaching a rule about destinations is allowed; its datagrams are judged.
        return association ? finish(undefined, facts, foreign) : pending(i, facts, foreign);
      }
      const verdict = finish(rule, facts, foreign);
      return verdict.kind === 'allow' && recheck ? pending(recheckFrom(i), facts, foreign) : verdict;
    }
    const verdict = finish(undefined, facts, foreign);
    return verdict.kind === 'allow' && recheck ? pending(recheckFrom(rules.length), facts, foreign) : verdict;
  }

  return {
    restrictsPrivate,
    evaluate: (request) => run(request, request),
    evaluateDatagram: (association, destination) => run({ ...association, destination }, association),
  };
}
