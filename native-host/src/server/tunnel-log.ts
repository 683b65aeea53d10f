/**
 * The one line per tunnel that says who went where, by which rule and route, and how it
 * ended. Credentials are never part of a request, so they cannot end up here.
 */
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import { OutboundError } from '../outbound/outbound.ts';
import { formatAddress } from '../protocol/address.ts';
import { repText } from '../protocol/socks5.ts';
import type { RelayResult } from './relay.ts';
import type { CommandContext } from './session.ts';
import type { UdpRelayStats } from './udp-relay.ts';

export type TunnelEventSink = (event: Omit<TunnelEvent, 'seq'>) => void;

/**
 * What the log line and the live log need of a command: a running tunnel keeps only this (not
 * the whole handshake context) until it closes.
 */
export type TunnelLogContext = Pick<
  CommandContext,
  'request' | 'rule' | 'via' | 'started' | 'logger' | 'events'
>;

/** The part of `ctx` a tunnel keeps for its closing line; `via` is the route actually taken. */
export function tunnelLogContext(ctx: CommandContext, via: string = ctx.via): TunnelLogContext {
  const { request, rule, started, logger, events } = ctx;
  return { request, rule, via, started, logger, events };
}

/** The facts every line and event about one tunnel starts with. */
interface Common {
  readonly id: number;
  readonly client: string;
  readonly user: string | undefined;
  readonly proto: TunnelEvent['proto'];
  readonly cmd: TunnelEvent['cmd'];
  readonly dest: string;
  readonly rule: string | undefined;
  readonly via: string;
}

/** What only some lines and events carry. */
interface Outcome {
  readonly result?: string | undefined;
  readonly error?: string | undefined;
  readonly hop?: number | undefined;
  readonly up?: number;
  readonly down?: number;
  readonly ms?: number;
}

function common(ctx: TunnelLogContext): Common {
  const r = ctx.request;
  return {
    id: r.id,
    client: formatAddress(r.client),
    user: r.user,
    proto: r.protocol,
    cmd: r.command,
    dest: formatAddress(r.destination),
    rule: ctx.rule,
    via: ctx.via,
  };
}

/**
 * The same facts as the log line, for the live log of the extension and `switchyard log`.
 * Every tunnel sends two of these, so absent fields are left out by hand rather than by
 * building and filtering an object of candidates.
 */
function emit(ctx: TunnelLogContext, kind: TunnelEvent['kind'], c: Common, o: Outcome): void {
  if (!ctx.events) return;
  const event: Omit<TunnelEvent, 'seq'> = {
    time: Date.now(),
    kind,
    id: c.id,
    client: c.client,
    proto: c.proto,
    cmd: c.cmd,
    dest: c.dest,
    host: ctx.request.destination.host,
  };
  if (c.user !== undefined) event.user = c.user;
  if (c.rule !== undefined) event.rule = c.rule;
  event.via = c.via;
  if (o.result !== undefined) event.result = o.result;
  if (o.error !== undefined) event.error = o.error;
  if (o.hop !== undefined) event.hop = o.hop;
  if (o.up !== undefined) event.up = o.up;
  if (o.down !== undefined) event.down = o.down;
  if (o.ms !== undefined) event.ms = o.ms;
  ctx.events(event);
}

export function logTunnelFailure(ctx: TunnelLogContext, rep: number, error: unknown): void {
  const c = common(ctx);
  const o: Outcome = {
    result: `rep ${rep} (${repText(rep)})`,
    hop: error instanceof OutboundError ? error.hop : undefined,
    error: error instanceof Error ? error.message : String(error),
    ms: Date.now() - ctx.started,
  };
  if (ctx.logger.enabled('info')) ctx.logger.info('tunnel failed', { ...c, ...o });
  emit(ctx, 'failed', c, o);
}

export function logTunnelEnd(ctx: TunnelLogContext, result: RelayResult, remote: string): void {
  const c = common(ctx);
  const o: Outcome = {
    result: result.reason,
    error: result.error?.message,
    up: result.bytesUp,
    down: result.bytesDown,
    ms: Date.now() - ctx.started,
  };
  if (ctx.logger.enabled('info')) ctx.logger.info('tunnel closed', { ...c, remote, ...o });
  emit(ctx, 'closed', c, o);
}

/** An established tunnel, for the live log (the log line comes when it closes). */
export function logTunnelOpened(ctx: TunnelLogContext): void {
  if (!ctx.events && !ctx.logger.enabled('debug')) return;
  const c = common(ctx);
  if (ctx.logger.enabled('debug')) ctx.logger.debug('tunnel opened', { ...c });
  emit(ctx, 'opened', c, { ms: Date.now() - ctx.started });
}

/** The UDP ASSOCIATE counterpart of logTunnelEnd: datagrams as well as bytes, and drops. */
export function logUdpAssociationEnd(ctx: TunnelLogContext, stats: UdpRelayStats, relay: string): void {
  const c = common(ctx);
  const ms = Date.now() - ctx.started;
  emit(ctx, 'closed', c, { result: stats.reason, up: stats.bytesUp, down: stats.bytesDown, ms });
  ctx.logger.info('udp association closed', {
    ...c,
    relay,
    result: stats.reason,
    dgrams_up: stats.datagramsUp,
    up: stats.bytesUp,
    dgrams_down: stats.datagramsDown,
    down: stats.bytesDown,
    dropped: stats.dropped,
    denied: stats.denied,
    errors: stats.errors,
    dests: stats.destinations,
    ms,
  });
}
