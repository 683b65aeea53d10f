/**
 * The two ends every stream command (CONNECT, BIND) shares: refusing with the REP the failure
 * carries, and handing an established pair of sockets to the relay with its closing log line.
 */
import type { Socket } from 'node:net';
import { type Endpoint, OutboundError } from '../../outbound/outbound.ts';
import { formatAddress } from '../../protocol/address.ts';
import { Rep } from '../../protocol/socks5.ts';
import { relay } from '../relay.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';
import { logTunnelEnd, logTunnelFailure, tunnelLogContext } from '../tunnel-log.ts';

/** Answers the client with the failure's REP (if it is still there), logs it, and closes. */
export function refuseTunnel(ctx: CommandContext, error: unknown): void {
  const rep = error instanceof OutboundError ? error.rep : Rep.GENERAL_FAILURE;
  if (!ctx.socket.destroyed) ctx.replier.failed(rep);
  logTunnelFailure(ctx, rep, error);
  closeAfterReply(ctx.socket);
}

/**
 * Relays the client and `other` until both ends close, then logs the tunnel's line. Returns at
 * once: the tunnel keeps only what that line needs, and the handshake's context goes with the
 * command that called this. `via` is the route actually taken (a failover route's fallback).
 */
export function startTunnel(ctx: CommandContext, other: Socket, remote: Endpoint, via = ctx.via): void {
  const clientEnded = ctx.reader.clientEnded;
  const log = tunnelLogContext(ctx, via);
  const remoteText = formatAddress(remote);
  relay(
    ctx.socket,
    other,
    { early: ctx.reader.detach(), clientEnded, idleTimeoutMs: ctx.settings.timeouts.idleMs },
    (result) => logTunnelEnd(log, result, remoteText),
  );
}
