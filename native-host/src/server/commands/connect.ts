import type { Outbound } from '../../outbound/outbound.ts';
import { OutboundError } from '../../outbound/outbound.ts';
import { formatAddress } from '../../protocol/address.ts';
import { Rep } from '../../protocol/socks5.ts';
import { relay } from '../relay.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';
import { logTunnelEnd, logTunnelFailure, logTunnelOpened } from '../tunnel-log.ts';

export async function runConnect(ctx: CommandContext, outbound: Outbound): Promise<void> {
  let connected: Awaited<ReturnType<Outbound['connect']>>;
  try {
    connected = await outbound.connect(ctx.request.destination, { signal: ctx.signal });
  } catch (error) {
    const rep = error instanceof OutboundError ? error.rep : Rep.GENERAL_FAILURE;
    if (!ctx.socket.destroyed) ctx.replier.failed(rep);
    logTunnelFailure(ctx, rep, error);
    closeAfterReply(ctx.socket);
    return;
  }
  if (ctx.socket.destroyed) {
    connected.socket.destroy();
    return;
  }
  ctx.replier.granted(connected.bound);
  logTunnelOpened(ctx);
  ctx.handshakeDone();
  const clientEnded = ctx.reader.clientEnded;
  // Taken before the tunnel runs, so that the suspended call keeps two small values alive for
  // the tunnel's lifetime rather than the whole outbound answer.
  const remote = formatAddress(connected.remote);
  const via = connected.via;
  const result = await relay(ctx.socket, connected.socket, {
    early: ctx.reader.detach(),
    clientEnded,
    idleTimeoutMs: ctx.settings.timeouts.idleMs,
  });
  // A failover route says which way it actually went.
  logTunnelEnd(via ? { ...ctx, via } : ctx, result, remote);
}
