/**
 * The one line per tunnel that says who went where, by which rule and route, and how it
 * ended. Credentials are never part of a request, so they cannot end up here.
 */
import { OutboundError } from '../outbound/outbound.ts';
import { formatAddress } from '../protocol/address.ts';
import { repText } from '../protocol/socks5.ts';
import type { RelayResult } from './relay.ts';
import type { CommandContext } from './session.ts';
import type { UdpRelayStats } from './udp-relay.ts';

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
  ctx.logger.info('tunnel failed', {
    ...common(ctx),
    result: `rep ${rep} (${repText(rep)})`,
    hop,
    error: error instanceof Error ? error.message : String(error),
    ms: Date.now() - ctx.started,
  });
}

export function logTunnelEnd(ctx: CommandContext, result: RelayResult, remote: string): void {
  ctx.logger.info('tunnel closed', {
    ...common(ctx),
    remote,
    result: result.reason,
    error: result.error?.message,
    up: result.bytesUp,
    down: result.bytesDown,
    ms: Date.now() - ctx.started,
  });
}

/** The UDP ASSOCIATE counterpart of logTunnelEnd: datagrams as well as bytes, and drops. */
export function logUdpAssociationEnd(ctx: CommandContext, stats: UdpRelayStats, relay: string): void {
  ctx.logger.info('udp association closed', {
    ...common(ctx),
    relay,
    result: stats.reason,
    dgrams_up: stats.datagramsUp,
    up: stats.bytesUp,
    dgrams_down: stats.datagramsDown,
    down: stats.bytesDown,
    dropped: stats.dropped,
    errors: stats.errors,
    dests: stats.destinations,
    ms: Date.now() - ctx.started,
  });
}
