/**
 * Validation of every message that crosses a trust boundary: a request from the browser or the
 * CLI is checked here before anything acts on it, and a problem is reported with the field it
 * concerns so the sender can fix it. Config payloads are only shape-checked here; the service
 * validates the resulting config with the config schema, which names the config's own fields.
 */
import { z } from 'zod';
import {
  type ConfigPatchKey,
  MAX_LOG_PAGE_LIMIT,
  PROTOCOL_VERSION,
  type ProtocolError,
  type ProtocolIssue,
  REQUEST_TYPES,
  type Request,
  type RequestType,
} from './protocol.ts';

const id = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const v = z.literal(PROTOCOL_VERSION);
const text = (max: number) => z.string().min(1, 'must not be empty').max(max);

function envelope<T extends RequestType>(type: T) {
  return { v, id, type: z.literal(type) };
}

const PATCH_KEYS = [
  'enabled',
  'listen',
  'users',
  'socks4AllowFrom',
  'allowOpenProxy',
  'timeouts',
  'limits',
  'log',
  'upstreams',
  'routes',
  'rules',
  'defaultTarget',
  'access',
  'localClients',
  'privateDestinations',
  'hosts',
] as const satisfies readonly ConfigPatchKey[];

// Every patchable field must be listed: a field added to the config but not here fails to compile.
type MissingPatchKeys = Exclude<ConfigPatchKey, (typeof PATCH_KEYS)[number]>;
const _allPatchKeys: MissingPatchKeys extends never ? true : MissingPatchKeys = true;
void _allPatchKeys;

const configObject = z.record(z.string(), z.unknown(), 'must be a JSON object (the whole config)');

const patchObject = z
  .object(
    Object.fromEntries(PATCH_KEYS.map((k) => [k, z.unknown().optional()])) as Record<
      ConfigPatchKey,
      z.ZodOptional<z.ZodUnknown>
    >,
  )
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, 'must name at least one config field');

export const requestSchema = z.discriminatedUnion('type', [
  z
    .object({
      ...envelope('hello'),
      client: z.enum(['chrome', 'firefox', 'cli']),
      extensionVersion: text(64).optional(),
    })
    .strict(),
  z.object(envelope('config.get')).strict(),
  z
    .object({
      ...envelope('config.part'),
      offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      revision: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    })
    .strict(),
  z.object({ ...envelope('config.replace'), config: configObject }).strict(),
  z.object({ ...envelope('config.patch'), patch: patchObject }).strict(),
  z.object({ ...envelope('credential.set'), upstreamId: text(64), password: text(4096) }).strict(),
  z.object({ ...envelope('credential.delete'), upstreamId: text(64) }).strict(),
  z.object({ ...envelope('toggle.set'), enabled: z.boolean() }).strict(),
  z.object({ ...envelope('route'), target: text(2048) }).strict(),
  z.object({ ...envelope('check'), name: text(100), target: text(2048) }).strict(),
  z.object(envelope('status')).strict(),
  z
    .object({
      ...envelope('log.page'),
      before: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
      limit: z.number().int().min(1).max(MAX_LOG_PAGE_LIMIT).optional(),
    })
    .strict(),
  z.object(envelope('log.subscribe')).strict(),
  z.object(envelope('log.unsubscribe')).strict(),
  z.object(envelope('service.reload')).strict(),
  z.object(envelope('service.stop')).strict(),
]);

/**
 * A request as the host receives it: like `Request`, except that config payloads are still
 * unchecked (the config schema checks them in context).
 */
export type IncomingRequest = z.output<typeof requestSchema>;

// A well-typed request from the extension or the CLI is always a valid incoming one.
type Accepts<T extends IncomingRequest> = T;
export type _RequestsAreIncoming = Accepts<Request>;

export type ParsedRequest =
  | { readonly ok: true; readonly request: IncomingRequest }
  | { readonly ok: false; readonly id: number | null; readonly error: ProtocolError };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(message)';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
  return typeof value === 'object' ? 'an object' : String(value);
}

function bad(id: number | null, issues: ProtocolIssue[]): ParsedRequest {
  const message = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return { ok: false, id, error: { code: 'BAD_MESSAGE', message, issues } };
}

/** Checks a decoded JSON value; never throws. */
export function parseRequest(input: unknown): ParsedRequest {
  if (!isRecord(input)) {
    return bad(null, [{ path: '(message)', message: `must be a JSON object, not ${describe(input)}` }]);
  }
  const parsedId = id.safeParse(input.id);
  if (!parsedId.success) {
    const message =
      input.id === undefined
        ? 'is missing (every request needs a numeric id)'
        : `must be a whole number from 0 to 2^53-1, not ${describe(input.id)}`;
    return bad(null, [{ path: 'id', message }]);
  }
  const reqId = parsedId.data;
  if (input.v !== PROTOCOL_VERSION) {
    const message =
      input.v === undefined
        ? `is missing (this host speaks protocol ${PROTOCOL_VERSION})`
        : `this host speaks protocol ${PROTOCOL_VERSION}, not ${describe(input.v)}`;
    return {
      ok: false,
      id: reqId,
      error: { code: 'UNSUPPORTED_VERSION', message: `v: ${message}`, issues: [{ path: 'v', message }] },
    };
  }
  const type = input.type;
  if (typeof type !== 'string' || !(REQUEST_TYPES as readonly string[]).includes(type)) {
    const message =
      type === undefined
        ? 'is missing'
        : `unknown message type ${describe(type)} (known: ${REQUEST_TYPES.join(', ')})`;
    return bad(reqId, [{ path: 'type', message }]);
  }
  const result = requestSchema.safeParse(input);
  if (result.success) return { ok: true, request: result.data };
  return bad(
    reqId,
    result.error.issues.map((issue) => ({
      path: formatIssuePath(issue.path),
      message:
        issue.code === 'unrecognized_keys' ? `unexpected ${issue.message.toLowerCase()}` : issue.message,
    })),
  );
}

const hostMessageSchema = z.union([
  z.object({ v, id, ok: z.literal(true), result: z.unknown() }),
  z.object({
    v,
    id: id.nullable(),
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
  z.object({ v, event: z.string(), data: z.unknown() }),
]);

/**
 * A light check of what comes from the host (a response or an event envelope): enough to route
 * it to the right waiter; the host itself is trusted for the payload's shape.
 */
export function isHostMessage(input: unknown): boolean {
  return hostMessageSchema.safeParse(input).success;
}
