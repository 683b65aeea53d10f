/**
 * The one line per tunnel that says who went where, by which rule and route, and how it
 * ended. Credentials are never part of a request, so they cannot end up here.
 */
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import type { LogFields } from '../log/logger.ts';
import { OutboundError } from '../outbound/outbound.ts';
import { formatAddress } from '../protocol/address.ts';
import { repText } from '../protocol/socks5.ts';
import type { RelayResult } from './relay.ts';
import type { CommandContext } from './session.ts';
import type { UdpRelayStats } from './udp-relay.ts';

export type TunnelEventSink = (event: Omit<TunnelEvent, 'seq'>) => void;

/** The same facts as the log line, for the live log of the extension and `switchyard log`. */
function emit(ctx: CommandContext, kind: TunnelEvent['kind'], fields: LogFields): void {
  if (!ctx.events) return;
  const r = ctx.request;
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const event: Omit<TunnelEvent, 'seq'> = {
    time: Date.now(),
    kind,
    id: r.id,
    client: formatAddress(r.client),
    proto: r.protocol,
    cmd: r.command,
    dest: formatAddress(r.destination),
    host: r.destination.host,
  };
  const extra: Partial<TunnelEvent> = {
    user: r.user,
    rule: ctx.rule,
    via: ctx.via,
    result: str(fields.result),
    error: str(fields.error),
    hop: num(fields.hop),
    up: num(fields.up),
    down: num(fields.down),
    ms: num(fields.ms),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (event as Record<string, unknown>)[k] = v;
  ctx.events(event);
}

function common(ctx: CommandContext) {
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

export function logTunnelFailure(ctx: CommandContext, rep: number, error: unknown): void {
  const hop = error instanceof OutboundError ? error.hop : undefined;
  const fields = {
    ...common(ctx),
    result: `rep ${rep} (${repText(rep)})`,
    hop,
    error: error instanceof Error ? error.message : String(error),
    ms: Date.now() - ctx.started,
  };
  ctx.logger.info('tunnel failed', fields);
  emit(ctx, 'failed', fields);
}

export function logTunnelEnd(ctx: CommandContext, result: RelayResult, remote: string): void {
  const fields = {
    ...common(ctx),
    remote,
    result: result.reason,
    error: result.error?.message,
    up: result.bytesUp,
    down: result.bytesDown,
    ms: Date.now() - ctx.started,
  };
  ctx.logger.info('tunnel closed', fields);
  emit(ctx, 'closed', fields);
}

/** An established tunnel, for the live log (the log line comes when it closes). */
export function logTunnelOpened(ctx: CommandContext): void {
  ctx.logger.debug('tunnel opened', common(ctx));
  emit(ctx, 'opened', { ms: Date.now() - ctx.started });
}

/** The UDP ASSOCIATE counterpart of logTunnelEnd: datagrams as well as bytes, and drops. */
export function logUdpAssociationEnd(ctx: CommandContext, stats: UdpRelayStats, relay: string): void {
  emit(ctx, 'closed', {
    result: stats.reason,
    up: stats.bytesUp,
    down: stats.bytesDown,
    ms: Date.now() - ctx.started,
  });
  ctx.logger.info('udp association closed', {
    ...common(ctx),
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
    ms: Date.now() - ctx.started,
  });
}
