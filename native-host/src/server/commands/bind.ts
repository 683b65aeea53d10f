/**
 * BIND: the first reply tells the client where its peer should connect; the second, sent when
 * the peer arrives, names the peer; then the two are relayed. The wait is bounded and ends
 * early if the client goes away.
 */
import type { Outbound, PendingBind } from '../../outbound/outbound.ts';
import type { CommandContext } from '../session.ts';
import { logTunnelOpened } from '../tunnel-log.ts';
import { refuseTunnel, startTunnel } from './tunnel.ts';

export async function runBind(ctx: CommandContext, outbound: Outbound): Promise<void> {
  let pending: PendingBind;
  try {
    pending = await outbound.bind(
      ctx.request.destination,
      { host: ctx.request.local.host, port: 0 },
      { signal: ctx.signal },
    );
  } catch (error) {
    refuseTunnel(ctx, error);
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
    refuseTunnel(ctx, error);
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
  startTunnel(ctx, peer.socket, peer.peer);
}
