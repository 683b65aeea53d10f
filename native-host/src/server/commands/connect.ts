import type { Outbound } from '../../outbound/outbound.ts';
import { OutboundError } from '../../outbound/outbound.ts';
import { formatAddress } from '../../protocol/address.ts';
import { Rep } from '../../protocol/socks5.ts';
import { relay, relayReads } from '../relay.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';
import { logTunnelEnd, logTunnelFailure, logTunnelOpened, tunnelLogContext } from '../tunnel-log.ts';

export async function runConnect(ctx: CommandContext, outbound: Outbound): Promise<void> {
  let connected: Awaited<ReturnType<Outbound['connect']>>;
  try {
    connected = await outbound.connect(ctx.request.destination, { signal: ctx.signal, reads: relayReads });
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
  // The tunnel keeps only what its closing line needs: this function returns as soon as the
  // relay starts, and the handshake's context goes with it. A failover route says which way
  // it actually went.
  const log = tunnelLogContext(ctx, connected.via ?? ctx.via);
  const remote = formatAddress(connected.remote);
  relay(
    ctx.socket,
    connected.socket,
    { early: ctx.reader.detach(), clientEnded, idleTimeoutMs: ctx.settings.timeouts.idleMs },
    (result) => logTunnelEnd(log, result, remote),
  );
}
