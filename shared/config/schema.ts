/**
 * The configuration file's schema, shared by the host (which loads and writes it) and the
 * extension (which edits it). Validation errors name the field path, so a user can find the
 * mistake in a file they edited by hand.
 */
import { z } from 'zod';
import type { HostPattern, PortRange, Rule, RuleTarget } from '../rules/types.ts';
import { validateHostPattern, validateRules, validateTarget } from '../rules/validate.ts';

export const CONFIG_VERSION = 1;

const port = z.number().int().min(0).max(65535);
const positiveMs = z
  .number()
  .int()
  .min(1)
  .max(24 * 3600 * 1000);
const ipAddress = z.string().regex(/^[0-9a-fA-F.:]+$/, 'must be an IP address');
const ipOrCidr = z
  .string()
  .regex(/^[0-9a-fA-F.:]+(\/\d{1,3})?$/, 'must be an IP address or a CIDR block such as 192.168.0.0/16');

export const inboundUserSchema = z
  .object({
    name: z.string().min(1).max(255),
    passwordHash: z
      .string()
      .regex(/^scrypt\$/, 'must be a scrypt hash made by `switchyard user add`, never a plain password'),
  })
  .strict();

export const listenSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(1080),
    socks4: z.boolean().default(true),
    socks5: z.boolean().default(true),
  })
  .strict();

export const timeoutsSchema = z
  .object({
    handshakeMs: positiveMs.default(30_000),
    /** 0 turns the idle timeout off. */
    idleMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600 * 1000)
      .default(2 * 3600 * 1000),
    connectMs: positiveMs.default(10_000),
    bindMs: positiveMs.default(120_000),
    udpIdleMs: positiveMs.default(120_000),
    shutdownGraceMs: z.number().int().min(0).max(600_000).default(5_000),
    /** Default per-hop handshake timeout (an upstream's own handshakeTimeoutMs wins). */
    hopHandshakeMs: positiveMs.default(10_000),
    /** After a first hop fails, how long it counts as down (so failover does not wait again). */
    upstreamRetryMs: z.number().int().min(0).max(3_600_000).default(10_000),
  })
  .strict();

export const limitsSchema = z
  .object({
    maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
    maxUdpDestinations: z.number().int().min(1).max(65536).default(256),
  })
  .strict();

export const logSchema = z
  .object({
    level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
    format: z.enum(['text', 'json']).default('text'),
  })
  .strict();

const id = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit',
  );

export const UPSTREAM_TYPES = ['socks5', 'socks4', 'socks4a', 'http'] as const;
export type UpstreamType = (typeof UPSTREAM_TYPES)[number];

const PASSWORD_ENV_REMOVED =
  'passwords are no longer read from environment variables; save it with: switchyard credential set <id> --password-stdin';

export const upstreamSchema = z
  .object({
    id,
    name: z.string().min(1).max(100).optional(),
    type: z.enum(UPSTREAM_TYPES),
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535),
    /** The password is never in this file: `switchyard credential set ID --password-stdin` saves it. */
    username: z.string().min(1).max(255).optional(),
    /**
     * Gone: it named an environment variable holding the password, before the credential store.
     * Kept only so that a file which still has it is told what to do instead of "Unrecognized key".
     */
    passwordEnv: z.never({ error: PASSWORD_ENV_REMOVED }).optional(),
    connectTimeoutMs: positiveMs.optional(),
    handshakeTimeoutMs: positiveMs.optional(),
  })
  .strict();
export type Upstream = z.output<typeof upstreamSchema>;

export const failoverSchema = z.union([
  z.literal('fail'),
  z.literal('direct'),
  z.object({ route: id }).strict(),
]);
export type Failover = z.output<typeof failoverSchema>;

export const routeSchema = z
  .object({
    id,
    name: z.string().min(1).max(100).optional(),
    hops: z.array(id).min(1, 'a route needs at least one hop (an upstream id)').max(16),
    /** What to do when the first hop cannot be reached. */
    onFirstHopDown: failoverSchema.default('fail'),
  })
  .strict();
export type Route = z.output<typeof routeSchema>;

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day such as 09:00 or 17:30');

export const timeWindowSchema = z
  .object({
    days: z.array(z.enum(DAYS)).min(1).optional(),
    /** Inclusive start, exclusive end; an end before the start spans midnight. */
    from: clock.optional(),
    to: clock.optional(),
    /** IANA time zone such as Europe/Berlin; the host's own zone when absent. */
    timeZone: z.string().min(1).optional(),
  })
  .strict()
  .refine((w) => (w.from === undefined) === (w.to === undefined), {
    message: 'give both from and to, or neither',
  });
export type TimeWindow = z.output<typeof timeWindowSchema>;

const hostPatterns = z.custom<HostPattern[]>((v) => Array.isArray(v), 'must be a list of host patterns');
const portRanges = z.custom<PortRange[]>(
  (v) => Array.isArray(v),
  'must be a list of ports or {from, to} ranges',
);

export const accessRuleSchema = z
  .object({
    id: id.optional(),
    name: z.string().min(1).max(100).optional(),
    action: z.enum(['allow', 'deny']),
    /** Inbound (RFC 1929) user names. */
    users: z.array(z.string().min(1)).min(1).optional(),
    /** Client source addresses. */
    sources: z.array(ipOrCidr).min(1).optional(),
    /** Destination host patterns (as the client named them). */
    hosts: hostPatterns.optional(),
    /** Destination addresses, checked after resolution at the direct exit. */
    destinations: z.array(ipOrCidr).min(1).optional(),
    ports: portRanges.optional(),
    /** Local OS users (names or uids) of loopback clients. */
    localUsers: z
      .array(z.union([z.string().min(1), z.number().int().min(0)]))
      .min(1)
      .optional(),
    /** Programs of loopback clients: a full path or an executable name. */
    programs: z.array(z.string().min(1)).min(1).optional(),
    time: timeWindowSchema.optional(),
  })
  .strict();
export type AccessRule = z.output<typeof accessRuleSchema>;

const targetSchema = z.custom<RuleTarget>(() => true);

export const configSchema = z
  .object({
    version: z.literal(CONFIG_VERSION),
    /** The browser toggle: when false the extension leaves the browser's proxy setting alone. */
    enabled: z.boolean().default(true),
    listen: listenSchema.default(() => listenSchema.parse({})),
    users: z.array(inboundUserSchema).default([]),
    socks4AllowFrom: z.array(ipOrCidr).default([]),
    /** Listening beyond loopback without users makes an open proxy; this says it is meant. */
    allowOpenProxy: z.boolean().default(false),
    timeouts: timeoutsSchema.default(() => timeoutsSchema.parse({})),
    limits: limitsSchema.default(() => limitsSchema.parse({})),
    log: logSchema.default(() => logSchema.parse({})),
    upstreams: z.array(upstreamSchema).default([]),
    routes: z.array(routeSchema).default([]),
    /** Ordered routing rules, first match wins (validated by shared/rules). */
    rules: z.custom<Rule[]>(() => true).default([]),
    defaultTarget: targetSchema.default({ kind: 'direct' }),
    /** Ordered access rules, first match wins; no match allows. */
    access: z.array(accessRuleSchema).default([]),
    /**
     * Loopback clients of other local OS users: 'owner' admits only the user running
     * Switchyard (others would ride on that person's upstream credentials).
     */
    localClients: z.enum(['owner', 'any']).default('owner'),
    /**
     * Destinations in loopback, private, link-local and unspecified ranges: 'auto' denies them
     * when listening beyond loopback.
     */
    privateDestinations: z.enum(['auto', 'allow', 'deny']).default('auto'),
    /** Name overrides for the direct exit, like /etc/hosts: name -> addresses. */
    hosts: z.record(z.string().min(1), z.array(ipAddress).min(1)).default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const unique = (items: readonly { id?: string | undefined }[], field: string) => {
      const seen = new Set<string>();
      items.forEach((item, i) => {
        if (item.id === undefined) return;
        if (seen.has(item.id)) issue([field, i, 'id'], `duplicate id '${item.id}'`);
        seen.add(item.id);
      });
    };
    const seenUsers = new Set<string>();
    config.users.forEach((user, i) => {
      if (seenUsers.has(user.name)) issue(['users', i, 'name'], `duplicate user '${user.name}'`);
      seenUsers.add(user.name);
    });
    unique(config.upstreams, 'upstreams');
    unique(config.routes, 'routes');
    unique(config.access, 'access');
    const upstreamIds = new Set(config.upstreams.map((u) => u.id));
    const routeIds = new Set(config.routes.map((r) => r.id));
    config.routes.forEach((route, i) => {
      route.hops.forEach((hop, j) => {
        if (!upstreamIds.has(hop)) issue(['routes', i, 'hops', j], `no upstream has the id '${hop}'`);
      });
      const f = route.onFirstHopDown;
      if (typeof f === 'object') {
        if (!routeIds.has(f.route))
          issue(['routes', i, 'onFirstHopDown', 'route'], `no route has the id '${f.route}'`);
        else if (f.route === route.id) {
          issue(['routes', i, 'onFirstHopDown', 'route'], 'a route cannot fail over to itself');
        }
      }
    });
    for (const e of validateRules(config.rules, { path: 'rules', routeIds }))
      issue(parsePath(e.path), e.message);
    for (const e of validateTarget(config.defaultTarget, 'defaultTarget', routeIds)) {
      issue(parsePath(e.path), e.message);
    }
    config.access.forEach((rule, i) => {
      rule.hosts?.forEach((pattern, j) => {
        for (const e of validateHostPattern(pattern, `access[${i}].hosts[${j}]`))
          issue(parsePath(e.path), e.message);
      });
      if (rule.ports) {
        // The rule validator's port checks, through a one-rule list.
        const probe = [{ id: 'p', enabled: true, match: { ports: rule.ports }, target: { kind: 'direct' } }];
        for (const e of validateRules(probe)) {
          issue(['access', i, ...parsePath(e.path.replace(/^rules\[0\]\.match\./, ''))], e.message);
        }
      }
      if (rule.time?.timeZone && !isTimeZone(rule.time.timeZone)) {
        issue(
          ['access', i, 'time', 'timeZone'],
          `unknown time zone '${rule.time.timeZone}' (use an IANA name such as Europe/Berlin)`,
        );
      }
    });
  });

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** 'rules[3].match.hosts[0]' -> ['rules', 3, 'match', 'hosts', 0] */
export function parsePath(path: string): PropertyKey[] {
  const out: PropertyKey[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export interface ConfigIssue {
  /** e.g. `listen.port` or `users[2].name` */
  readonly path: string;
  readonly message: string;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(root)';
}

export function validateConfig(input: unknown): ConfigResult {
  const result = configSchema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    issues: result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
  };
}

export function defaultConfig(): Config {
  return configSchema.parse({ version: CONFIG_VERSION });
}
