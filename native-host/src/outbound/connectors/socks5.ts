/**
 * SOCKS5 client handshake (RFC 1928, RFC 1929) over a given stream. Host names go to the hop
 * unresolved (ATYP 3), so that DNS happens where the hop is, not here.
 */
import type { Socket } from 'node:net';
import {
  Method,
  Rep,
  type RepCode,
  type Socks5Reply,
  parseMethodChoice,
  parseReply,
  parseUserPassStatus,
  repText,
  serializeGreeting,
  serializeRequest,
  serializeUserPass,
} from '../../protocol/socks5.ts';
import type { Endpoint } from '../outbound.ts';
import { afterFirstReply } from './bind-reply.ts';
import { HopStream } from './stream-reader.ts';
import type { BindResult, Connector, ConnectorRequest, ConnectorResult } from './types.ts';

/** A REP the client can be given as it is; anything else becomes a general failure. */
function passOn(rep: number): RepCode {
  return rep >= Rep.GENERAL_FAILURE && rep <= Rep.ADDRESS_TYPE_NOT_SUPPORTED
    ? (rep as RepCode)
    : Rep.GENERAL_FAILURE;
}

async function negotiate(io: HopStream, request: Pick<ConnectorRequest, 'credentials'>): Promise<void> {
  const credentials = request.credentials;
  // Offering username/password without credentials would invite a server to pick it and then
  // wait for a password we do not have.
  const offered: number[] = credentials ? [Method.NO_AUTH, Method.USERNAME_PASSWORD] : [Method.NO_AUTH];
  io.send(serializeGreeting(offered));
  const method = await io.read(parseMethodChoice, 'the method choice');
  if (method === Method.NO_ACCEPTABLE) {
    throw io.error(
      credentials
        ? 'accepts none of the authentication methods offered (no-auth, username/password)'
        : 'found no acceptable authentication method (the upstream wants credentials)',
      Rep.GENERAL_FAILURE,
      'auth-failed',
    );
  }
  if (!offered.includes(method)) {
    throw io.error(
      `chose authentication method ${method}, which was not offered`,
      Rep.GENERAL_FAILURE,
      'protocol',
    );
  }
  if (method !== Method.USERNAME_PASSWORD || !credentials) return;
  // Only now, with the server having asked for them, do the credentials leave this machine.
  io.send(io.encode(() => serializeUserPass(credentials.username, credentials.password)));
  const ok = await io.read(parseUserPassStatus, 'the authentication status');
  if (!ok) {
    throw io.error(
      `rejected the username/password for user '${credentials.username}'`,
      Rep.GENERAL_FAILURE,
      'auth-failed',
    );
  }
}

async function readReply(io: HopStream, what: string): Promise<Endpoint> {
  const reply: Socks5Reply = await io.read(parseReply, what);
  if (reply.rep !== Rep.SUCCEEDED) {
    throw io.error(
      `upstream replied REP ${reply.rep} (${repText(reply.rep)})`,
      passOn(reply.rep),
      'rejected',
    );
  }
  return { host: reply.address.host, port: reply.address.port };
}

async function handshake(stream: Socket, request: ConnectorRequest): Promise<ConnectorResult | BindResult> {
  const io = new HopStream(stream, request);
  // Serialize first: a target the protocol cannot carry fails before any byte is sent.
  const requestBytes = io.encode(() => serializeRequest(request.command, request.target));
  await negotiate(io, request);
  io.send(requestBytes);
  const bound = await readReply(io, 'the reply');
  return afterFirstReply(stream, request, bound, readReply);
}

export const socks5Connector: Connector = { protocol: 'socks5', handshake };

/** UDP ASSOCIATE has no command choice and no second reply; everything else is as for CONNECT. */
export type UdpAssociateRequest = Omit<ConnectorRequest, 'command' | 'bindTimeoutMs'>;

/**
 * Opens a UDP association at a SOCKS5 hop: `target` is where our datagrams will come from
 * (0.0.0.0:0 when not known). Resolves with BND, the hop's relay (0.0.0.0 meaning the hop's own
 * address). The hop keeps the association as long as the stream stays open, so the caller
 * keeps it open and owns it, as with every connector.
 */
export async function socks5UdpAssociate(stream: Socket, request: UdpAssociateRequest): Promise<Endpoint> {
  // HopStream reads only the deadline, the signal and the hop's name from the request.
  const io = new HopStream(stream, { ...request, command: 'connect' });
  const requestBytes = io.encode(() => serializeRequest('udp-associate', request.target));
  await negotiate(io, request);
  io.send(requestBytes);
  return readReply(io, 'the UDP ASSOCIATE reply');
}
