/**
 * UDP ASSOCIATE: opens a datagram relay on the address the client reached us on, tells the
 * client where it is, and keeps it exactly as long as the TCP control connection lives (or
 * until it falls idle). The relay itself is in udp-relay.ts; this is the SOCKS glue.
 */
import { errnoOf } from '../../outbound/direct.ts';
import { formatAddress } from '../../protocol/address.ts';
import { repForErrno } from '../../protocol/reply-codes.ts';
import { Rep, type RepCode } from '../../protocol/socks5.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';
import { logTunnelFailure, logUdpAssociationEnd } from '../tunnel-log.ts';
import { UdpRelay, canonicalIp } from '../udp-relay.ts';

export async function runUdpAssociate(ctx: CommandContext): Promise<void> {
  const { socket, request } = ctx;
  const refuse = (rep: RepCode, error: unknown): void => {
    if (!socket.destroyed) ctx.replier.failed(rep);
    logTunnelFailure(ctx, rep, error);
    closeAfterReply(socket);
  };

  // The relay sends from this machine: a request routed through an upstream chain would leak
  // its datagrams past the chain, so only the direct exit may carry it.
  if (ctx.via !== 'direct') {
    refuse(
      Rep.COMMAND_NOT_SUPPORTED,
      new Error(`UDP ASSOCIATE is only supported direct, not via ${ctx.via}`),
    );
    return;
  }

  // DST is where the client will send from. Only the control connection's IP is ever trusted,
  // so an announced IP that differs could never be served; say so now instead of dropping every
  // datagram later. A host name there cannot be checked without a lookup; only its port counts.
  const announced = request.destination;
  if (announced.type !== 'domain') {
    const ip = canonicalIp(announced.host);
    if (ip !== '0.0.0.0' && ip !== '::' && ip !== canonicalIp(request.client.host)) {
      refuse(
        Rep.NOT_ALLOWED,
        new Error(`announced UDP source ${ip} is not the client's address ${request.client.host}`),
      );
      return;
    }
  }

  let relay: UdpRelay;
  try {
    relay = await UdpRelay.open({
      listenHost: request.local.host,
      clientHost: request.client.host,
      clientPort: announced.port,
      idleTimeoutMs: ctx.settings.timeouts.udpIdleMs,
      maxDestinations: ctx.settings.limits.maxUdpDestinations,
      logger: ctx.logger,
      logFields: { id: ctx.id },
    });
  } catch (error) {
    refuse(repForErrno(errnoOf(error)), error);
    return;
  }
  if (socket.destroyed) {
    relay.close();
    return;
  }

  ctx.replier.granted(relay.bound);
  // From here the association's own lifetime rules apply, not the handshake's.
  ctx.handshakeDone();

  // The control connection carries nothing after the request; whatever the client sends is read
  // and discarded so that its window never fills.
  ctx.reader.detach();
  const end = (): void => relay.close();
  socket.once('end', end);
  socket.once('close', end);
  if (ctx.reader.clientEnded) relay.close();
  socket.resume();

  const stats = await relay.done;
  socket.off('end', end);
  socket.off('close', end);
  closeAfterReply(socket);
  logUdpAssociationEnd(ctx, stats, formatAddress(relay.bound));
}
