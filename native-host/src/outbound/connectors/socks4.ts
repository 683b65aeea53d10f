/**
 * SOCKS4 and SOCKS4a client handshakes over a given stream. SOCKS4 carries IPv4 only, so a host
 * name would have to be resolved here, leaking DNS outside the chain; it is refused instead, and
 * SOCKS4a (or SOCKS5) sends the name unresolved. Neither carries a password: the user id is the
 * credentials' username, and the password is not sent anywhere.
 */
import type { Socket } from 'node:net';
import type { Address } from '../../protocol/address.ts';
import { Socks4Status, parseSocks4Reply, serializeSocks4Request } from '../../protocol/socks4.ts';
import { Rep } from '../../protocol/socks5.ts';
import type { Endpoint } from '../outbound.ts';
import { afterFirstReply } from './bind-reply.ts';
import { HopStream } from './stream-reader.ts';
import type { BindResult, Connector, ConnectorRequest, ConnectorResult } from './types.ts';

const STATUS_TEXT: Record<number, string> = {
  [Socks4Status.REJECTED]: 'SOCKS4 status 91: request rejected or failed',
  [Socks4Status.IDENTD_UNREACHABLE]: 'SOCKS4 status 92: the server could not reach identd on the client',
  [Socks4Status.IDENTD_MISMATCH]: 'SOCKS4 status 93: identd reported a different user id than the one sent',
};

/** Why `target` cannot go to this hop as the protocol stands, or undefined if it can. */
function unsendable(socks4a: boolean, target: Address): string | undefined {
  if (target.type === 'ipv6') {
    return `is ${socks4a ? 'SOCKS4a' : 'SOCKS4'}, which cannot carry IPv6 addresses (${target.host}); use socks5 for this hop`;
  }
  if (target.type === 'domain' && !socks4a) {
    return `is SOCKS4, which cannot carry host names (${target.host}); use socks4a or socks5 for this hop`;
  }
  // 0.0.0.x (x != 0) on the wire is the 4a marker, so the server would wait for a host name.
  if (target.type === 'ipv4' && /^0\.0\.0\.(?!0$)\d+$/.test(target.host)) {
    return `cannot be asked for ${target.host} over SOCKS4: 0.0.0.x is the SOCKS4a host name marker`;
  }
  return undefined;
}

async function readReply(io: HopStream, what: string): Promise<Endpoint> {
  const reply = await io.read(parseSocks4Reply, what);
  if (reply.status === Socks4Status.GRANTED) return { host: reply.host, port: reply.port };
  const text = STATUS_TEXT[reply.status];
  if (text === undefined) {
    throw io.error(`sent an unknown SOCKS4 status ${reply.status}`, Rep.GENERAL_FAILURE, 'protocol');
  }
  // SOCKS4 gives no reason beyond these codes, so the client gets a general failure.
  throw io.error(`rejected the request (${text})`, Rep.GENERAL_FAILURE, 'rejected');
}

function socks4Family(socks4a: boolean): Connector {
  const handshake = async (
    stream: Socket,
    request: ConnectorRequest,
  ): Promise<ConnectorResult | BindResult> => {
    const io = new HopStream(stream, request);
    const why = unsendable(socks4a, request.target);
    if (why) throw io.error(why, Rep.ADDRESS_TYPE_NOT_SUPPORTED, 'protocol');
    io.send(
      io.encode(() =>
        serializeSocks4Request(request.command, request.target, request.credentials?.username ?? ''),
      ),
    );
    const bound = await readReply(io, 'the reply');
    return afterFirstReply(stream, request, bound, readReply);
  };
  return { protocol: socks4a ? 'socks4a' : 'socks4', handshake };
}

export const socks4Connector: Connector = socks4Family(false);
export const socks4aConnector: Connector = socks4Family(true);
