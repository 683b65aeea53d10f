import type { Outbound } from '../../outbound/outbound.ts';
import { relayReads } from '../relay.ts';
import type { CommandContext } from '../session.ts';
import { logTunnelOpened } from '../tunnel-log.ts';
import { refuseTunnel, startTunnel } from './tunnel.ts';

export async function runConnect(ctx: CommandContext, outbound: Outbound): Promise<void> {
  let connected: Awaited<ReturnType<Outbound['connect']>>;
  try {
    connected = await outbound.connect(ctx.request.destination, { signal: ctx.signal, reads: relayReads });
  } catch (error) {
    refuseTunnel(ctx, error);
    return;
  }
  if (ctx.socket.destroyed) {
    connected.socket.destroy();
    return;
  }
  ctx.replier.granted(connected.bound);
  logTunnelOpened(ctx);
  ctx.handshakeDone();
  startTunnel(ctx, connected.socket, connected.remote, connected.via);
}
