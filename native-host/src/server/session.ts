/**
 * One client connection from the first byte to the end of its tunnel: protocol detection,
 * method negotiation and authentication, the request, the policy decision, then the command.
 * Every way out of here answers the client correctly (where the protocol has an answer) and
 * closes it; nothing a client sends can throw past this function.
 */
import type { Socket } from 'node:net';
import { type BlockList, isIPv6 } from 'node:net';
import { type RouteHint, parseRouteHint } from '../../../shared/messages/route-hint.ts';
import type { UserStore } from '../auth/users.ts';
import type { LogFields, Logger } from '../log/logger.ts';
import type { Endpoint } from '../outbound/outbound.ts';
import { formatAddress } from '../protocol/address.ts';
import { ProtocolError } from '../protocol/errors.ts';
import { repForProtocolError } from '../protocol/reply-codes.ts';
import {
  type Socks4Request,
  Socks4Status,
  parseSocks4Request,
  serializeSocks4Reply,
} from '../protocol/socks4.ts';
import {
  Method,
  Rep,
  type Socks5Request,
  parseGreeting,
  parseRequest,
  parseUserPass,
  serializeMethodChoice,
  serializeReply,
  serializeUserPassStatus,
} from '../protocol/socks5.ts';
import { runBind } from './commands/bind.ts';
import { runConnect } from './commands/connect.ts';
import { runUdpAssociate } from './commands/udp-associate.ts';
import { ClientGoneError, HandshakeReader } from './handshake-reader.ts';
import { type Replier, socks4Replier, socks5Replier, unmapIpv4 } from './replier.ts';
import type { TunnelEventSink } from './tunnel-log.ts';
import type { Dispatcher, Protocol, ServerSettings, TunnelRequest } from './types.ts';

export interface SessionContext {
  readonly id: number;
  readonly socket: Socket;
  readonly settings: ServerSettings;
  readonly users: UserStore;
  readonly socks4Sources: BlockList;
  readonly dispatch: Dispatcher;
  readonly logger: Logger;
  /** Aborted when the client leaves or the server shuts down. */
  readonly signal: AbortSignal;
  /** Called once the handshake is over, so its timer stops. */
  readonly handshakeDone: () => void;
  /** Receives the live log's events (tunnel opened, closed, failed, denied). */
  readonly events?: TunnelEventSink | undefined;
}

/** Everything a command needs once the request is accepted. */
export interface CommandContext extends SessionContext {
  readonly request: TunnelRequest;
  readonly reader: HandshakeReader;
  readonly replier: Replier;
  readonly started: number;
  readonly via: string;
  readonly rule: string | undefined;
}

export function endpointsOf(socket: Socket): { client: Endpoint; local: Endpoint } {
  return {
    client: { host: unmapIpv4(socket.remoteAddress ?? '?'), port: socket.remotePort ?? 0 },
    local: { host: unmapIpv4(socket.localAddress ?? '?'), port: socket.localPort ?? 0 },
  };
}

export async function runSession(ctx: SessionContext): Promise<void> {
  const { socket, logger } = ctx;
  const reader = new HandshakeReader(socket);
  const { client } = endpointsOf(socket);
  try {
    const version = await reader.read((buf) =>
      buf.length < 1 ? { done: false } : { done: true, value: buf[0]!, size: 0 },
    );
    if (version === 5 && ctx.settings.protocols.socks5) await socks5(ctx, reader);
    else if (version === 4 && ctx.settings.protocols.socks4) await socks4(ctx, reader);
    else {
      logger.warn('not a SOCKS client, or a disabled protocol; closing', {
        id: ctx.id,
        client: formatAddress(client),
        first_byte: version,
      });
      socket.destroy();
    }
  } catch (error) {
    if (error instanceof ClientGoneError) {
      logger.debug('client left during the handshake', { id: ctx.id, client: formatAddress(client) });
    } else if (error instanceof ProtocolError) {
      logger.warn('malformed request; closing', {
        id: ctx.id,
        client: formatAddress(client),
        error: error.message,
      });
    } else {
      logger.error('session failed', { id: ctx.id, client: formatAddress(client), error: String(error) });
    }
    closeAfterReply(socket);
  }
}

/** Lets a failure reply reach the client, then closes (RFC 1928: close within 10 s). */
export function closeAfterReply(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * Ends a handshake whose refusal has just been written: a warning that says why (with the
 * session id and the client first), then the close once the reply is out.
 */
function refuse(ctx: SessionContext, message: string, fields: LogFields = {}): void {
  const { client } = endpointsOf(ctx.socket);
  ctx.logger.warn(message, { id: ctx.id, client: formatAddress(client), ...fields });
  closeAfterReply(ctx.socket);
}

/**
 * Never a method the client did not offer. With users configured, "no auth" is not acceptable
 * even if offered. Without users, "no auth" when offered, else username/password: that is how
 * Firefox sends a route hint (it offers that method alone when a proxy has a username).
 */
function chooseMethod(required: boolean, offered: readonly number[]): number {
  if (required)
    return offered.includes(Method.USERNAME_PASSWORD) ? Method.USERNAME_PASSWORD : Method.NO_ACCEPTABLE;
  if (offered.includes(Method.NO_AUTH)) return Method.NO_AUTH;
  return offered.includes(Method.USERNAME_PASSWORD) ? Method.USERNAME_PASSWORD : Method.NO_ACCEPTABLE;
}

async function socks5(ctx: SessionContext, reader: HandshakeReader): Promise<void> {
  const { socket } = ctx;
  const greeting = await reader.read(parseGreeting);
  const wanted = chooseMethod(ctx.users.required, greeting.methods);
  if (wanted === Method.NO_ACCEPTABLE) {
    socket.write(serializeMethodChoice(Method.NO_ACCEPTABLE));
    refuse(ctx, 'no acceptable authentication method', {
      offered: greeting.methods.join(','),
      required: ctx.users.required ? 'username/password' : 'none',
    });
    return;
  }
  socket.write(serializeMethodChoice(wanted));

  let user: string | undefined;
  let routeHint: RouteHint | undefined;
  if (wanted === Method.USERNAME_PASSWORD && !ctx.users.required) {
    // Nobody to authenticate: the only credentials that mean something here are a route hint.
    const creds = await reader.read(parseUserPass);
    routeHint = parseRouteHint(creds.username, creds.password);
    socket.write(serializeUserPassStatus(routeHint !== undefined));
    if (routeHint === undefined) {
      refuse(ctx, 'credentials refused: no inbound users are configured, and it is not a route hint', {
        user: creds.username,
      });
      return;
    }
  } else if (wanted === Method.USERNAME_PASSWORD) {
    const creds = await reader.read(parseUserPass);
    const ok = await ctx.users.verify(creds.username, creds.password);
    socket.write(serializeUserPassStatus(ok));
    if (!ok) {
      refuse(ctx, 'authentication failed', { user: creds.username });
      return;
    }
    user = creds.username;
  }

  let request: Socks5Request;
  try {
    request = await reader.read(parseRequest);
  } catch (error) {
    // The request has a reply for this: say what was wrong before closing.
    if (error instanceof ProtocolError) socket.write(serializeReply(repForProtocolError(error)));
    throw error;
  }
  await dispatchAndRun(
    ctx,
    reader,
    socks5Replier(socket),
    'socks5',
    request.command,
    request.address,
    user,
    routeHint,
  );
}

async function socks4(ctx: SessionContext, reader: HandshakeReader): Promise<void> {
  const { socket } = ctx;
  let request: Socks4Request;
  try {
    request = await reader.read(parseSocks4Request);
  } catch (error) {
    if (error instanceof ProtocolError) socket.write(serializeSocks4Reply(Socks4Status.REJECTED));
    throw error;
  }
  const { client } = endpointsOf(socket);
  if (ctx.users.required && !ctx.socks4Sources.check(client.host, isIPv6(client.host) ? 'ipv6' : 'ipv4')) {
    // SOCKS4 carries no password, so it cannot prove who the client is.
    socket.write(serializeSocks4Reply(Socks4Status.REJECTED));
    refuse(ctx, 'SOCKS4 refused: inbound users are required and this source is not in socks4AllowFrom');
    return;
  }
  const { command, address, socks4a } = request;
  await dispatchAndRun(
    ctx,
    reader,
    socks4Replier(socket),
    socks4a ? 'socks4a' : 'socks4',
    command,
    address,
    undefined,
  );
}

async function dispatchAndRun(
  ctx: SessionContext,
  reader: HandshakeReader,
  replier: Replier,
  protocol: Protocol,
  command: TunnelRequest['command'],
  destination: TunnelRequest['destination'],
  user: string | undefined,
  routeHint?: RouteHint,
): Promise<void> {
  const { client, local } = endpointsOf(ctx.socket);
  const request: TunnelRequest = {
    id: ctx.id,
    protocol,
    command,
    destination,
    client,
    local,
    user,
    ...(routeHint ? { routeHint } : {}),
  };
  const started = Date.now();
  const decision = await ctx.dispatch(request);
  if (decision.kind === 'deny') {
    replier.failed(Rep.NOT_ALLOWED);
    ctx.logger.info('tunnel denied', {
      id: ctx.id,
      client: formatAddress(client),
      user,
      proto: protocol,
      cmd: command,
      dest: formatAddress(destination),
      rule: decision.rule,
      reason: decision.reason,
    });
    ctx.events?.({
      time: Date.now(),
      kind: 'denied',
      id: ctx.id,
      client: formatAddress(client),
      ...(user !== undefined ? { user } : {}),
      proto: protocol,
      cmd: command,
      dest: formatAddress(destination),
      host: destination.host,
      ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
      error: decision.reason,
    });
    closeAfterReply(ctx.socket);
    return;
  }
  const cctx: CommandContext = {
    ...ctx,
    request,
    reader,
    replier,
    started,
    via: decision.outbound.label,
    rule: decision.rule,
  };
  switch (command) {
    case 'connect':
      return runConnect(cctx, decision.outbound);
    case 'bind':
      return runBind(cctx, decision.outbound);
    case 'udp-associate':
      return runUdpAssociate(cctx, decision.outbound, decision.datagramPolicy);
  }
}
