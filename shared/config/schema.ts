/**
 * The configuration file's schema, shared by the host (which loads and writes it) and the
 * extension (which edits it). Validation errors name the field path, so a user can find the
 * mistake in a file they edited by hand.
 */
import { z } from 'zod';

export const CONFIG_VERSION = 1;

const port = z.number().int().min(0).max(65535);
const positiveMs = z
  .number()
  .int()
  .min(1)
  .max(24 * 3600 * 1000);
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

export const configSchema = z
  .object({
    version: z.literal(CONFIG_VERSION),
    listen: listenSchema.default(() => listenSchema.parse({})),
    users: z.array(inboundUserSchema).default([]),
    socks4AllowFrom: z.array(ipOrCidr).default([]),
    /** Listening beyond loopback without users makes an open proxy; this says it is meant. */
    allowOpenProxy: z.boolean().default(false),
    timeouts: timeoutsSchema.default(() => timeoutsSchema.parse({})),
    limits: limitsSchema.default(() => limitsSchema.parse({})),
    log: logSchema.default(() => logSchema.parse({})),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.users.forEach((user, i) => {
      if (seen.has(user.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['users', i, 'name'],
          message: `duplicate user '${user.name}'`,
        });
      }
      seen.add(user.name);
    });
  });

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
