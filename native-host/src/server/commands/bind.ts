/**
 * BIND: the first reply tells the client where its peer should connect; the second, sent when
 * the peer arrives, names the peer; then the two are relayed. The wait is bounded and ends
 * early if the client goes away.
 */
import type { Outbound, PendingBind } from '../../outbound/outbound.ts';
import { OutboundError } from '../../outbound/outbound.ts';
import { formatAddress } from '../../protocol/address.ts';
import { Rep } from '../../protocol/socks5.ts';
import { relay } from '../relay.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';
import { logTunnelEnd, logTunnelFailure, logTunnelOpened, tunnelLogContext } from '../tunnel-log.ts';

export async function runBind(ctx: CommandContext, outbound: Outbound): Promise<void> {
  const fail = (error: unknown): void => {
    const rep = error instanceof OutboundError ? error.rep : Rep.GENERAL_FAILURE;
    if (!ctx.socket.destroyed) ctx.replier.failed(rep);
    logTunnelFailure(ctx, rep, error);
    closeAfterReply(ctx.socket);
  };
  let pending: PendingBind;
  try {
    pending = await outbound.bind(
      ctx.request.destination,
      { host: ctx.request.local.host, port: 0 },
      { signal: ctx.signal },
    );
  } catch (error) {
    fail(error);
    return;
  }
  ctx.replier.granted(pending.bound);
  // Waiting for the peer is part of the command, not of the handshake: the BIND timeout
  // bounds it instead.
  ctx.handshakeDone();
  const onClientGone = (): void => pending.cancel();
  ctx.socket.once('close', onClientGone);
  let peer: Awaited<PendingBind['accepted']>;
  try {
    peer = await pending.accepted;
  } catch (error) {
    fail(error);
    return;
  } finally {
    ctx.socket.off('close', onClientGone);
  }
  if (ctx.socket.destroyed) {
    peer.socket.destroy();
    return;
  }
  ctx.replier.granted(peer.peer);
  logTunnelOpened(ctx);
  const clientEnded = ctx.reader.clientEnded;
  const log = tunnelLogContext(ctx);
  const remote = formatAddress(peer.peer);
  relay(
    ctx.socket,
    peer.socket,
    { early: ctx.reader.detach(), clientEnded, idleTimeoutMs: ctx.settings.timeouts.idleMs },
    (result) => logTunnelEnd(log, result, remote),
  );
}
