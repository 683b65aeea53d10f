/**
 * UDP ASSOCIATE: opens a datagram relay on the address the client reached us on, tells the
 * client where it is, and keeps it exactly as long as the TCP control connection lives (or
 * until it falls idle). The datagrams go out from here (the direct exit) or, for a route of one
 * SOCKS5 hop, to an association the upstream opens for us, which then lives exactly as long
 * as both control connections do. The relay itself is in udp-relay.ts and udp-upstream.ts;
 * this is the SOCKS glue.
 */
import { errnoOf } from '../../outbound/direct.ts';
import {
  type Outbound,
  OutboundError,
  type UdpAssociation,
  udpNotSupported,
} from '../../outbound/outbound.ts';
import { formatAddress } from '../../protocol/address.ts';
import { repForErrno } from '../../protocol/reply-codes.ts';
import { Rep, type RepCode } from '../../protocol/socks5.ts';
import { type CommandContext, closeAfterReply } from '../session.ts';
import { logTunnelFailure, logTunnelOpened, logUdpAssociationEnd } from '../tunnel-log.ts';
import type { DatagramPolicy } from '../types.ts';
import { UdpRelay, canonicalIp } from '../udp-relay.ts';
import { upstreamEgress } from '../udp-upstream.ts';

export async function runUdpAssociate(
  ctx: CommandContext,
  outbound: Outbound,
  policy?: DatagramPolicy,
): Promise<void> {
  const { socket, request } = ctx;
  const refuse = (rep: RepCode, error: unknown): void => {
    if (!socket.destroyed) ctx.replier.failed(rep);
    if (error instanceof OutboundError && error.failure === 'unsupported') {
      // Not a failure of anything: the route cannot carry UDP, and the user should learn why.
      ctx.logger.info(`udp associate refused: ${error.message}`, {
        id: ctx.id,
        client: formatAddress(request.client),
      });
    }
    logTunnelFailure(ctx, rep, error);
    closeAfterReply(socket);
  };

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

  let exit: UdpAssociation;
  try {
    exit = await openExit(ctx, outbound);
  } catch (error) {
    refuse(error instanceof OutboundError ? error.rep : Rep.GENERAL_FAILURE, error);
    return;
  }
  const control = exit.kind === 'upstream' ? exit.control : undefined;
  const judge = policy && (exit.kind === 'upstream' ? policy.upstream : policy.direct);

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
      ...(judge ? { judge } : {}),
      ...(exit.kind === 'upstream'
        ? { egress: upstreamEgress({ relay: exit.relay, localHost: exit.control.localAddress }) }
        : {}),
    });
  } catch (error) {
    control?.destroy();
    refuse(repForErrno(errnoOf(error)), error);
    return;
  }
  if (socket.destroyed || control?.destroyed) {
    relay.close();
    control?.destroy();
    if (!socket.destroyed) {
      refuse(Rep.GENERAL_FAILURE, new Error(`${exit.via} closed the UDP association before it was used`));
    }
    return;
  }

  // A failover route says which way it actually went.
  const logCtx = exit.via === ctx.via ? ctx : { ...ctx, via: exit.via };
  ctx.replier.granted(relay.bound);
  logTunnelOpened(logCtx);
  // From here the association's own lifetime rules apply, not the handshake's.
  ctx.handshakeDone();

  // The control connections carry nothing after the request and the reply; whatever arrives
  // is read and discarded so that no window fills.
  ctx.reader.detach();
  const end = (): void => relay.close();
  socket.once('end', end);
  socket.once('close', end);
  if (ctx.reader.clientEnded) relay.close();
  socket.resume();
  const upstreamEnd = (): void => relay.close('upstream-closed');
  if (control) {
    control.once('end', upstreamEnd);
    control.once('close', upstreamEnd);
    control.resume();
  }

  const stats = await relay.done;
  socket.off('end', end);
  socket.off('close', end);
  if (control) {
    control.off('end', upstreamEnd);
    control.off('close', upstreamEnd);
    // Ends the association at the upstream too.
    control.destroy();
  }
  closeAfterReply(socket);
  logUdpAssociationEnd(logCtx, stats, formatAddress(relay.bound));
}

/** Where the datagrams go: an association at the route's upstream, or out from here. */
function openExit(ctx: CommandContext, outbound: Outbound): Promise<UdpAssociation> {
  if (outbound.udpAssociate) return outbound.udpAssociate({ signal: ctx.signal });
  if (ctx.via === 'direct') return Promise.resolve({ kind: 'direct', via: ctx.via });
  return Promise.reject(udpNotSupported(`${ctx.via} cannot carry UDP`));
}
