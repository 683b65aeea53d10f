/**
 * HTTP CONNECT client handshake over a given stream, with optional Basic proxy auth. The host
 * name goes to the proxy unresolved. HTTP has no BIND, and its status codes say less than a
 * SOCKS5 REP, so failures are mapped to the nearest REP for the client.
 */
import type { Socket } from 'node:net';
import { parseConnectResponse, serializeConnectRequest } from '../../protocol/http-connect.ts';
import { Rep, type RepCode } from '../../protocol/socks5.ts';
import { HopStream } from './stream-reader.ts';
import type { Connector, ConnectorRequest, ConnectorResult } from './types.ts';

const STATUS_TO_REP: Readonly<Record<number, RepCode>> = {
  403: Rep.NOT_ALLOWED,
  502: Rep.HOST_UNREACHABLE,
  504: Rep.TTL_EXPIRED,
};

/** HTTP does not tell where the proxy's outbound connection comes from. */
const UNKNOWN_BOUND = { host: '0.0.0.0', port: 0 } as const;

async function handshake(stream: Socket, request: ConnectorRequest): Promise<ConnectorResult> {
  const io = new HopStream(stream, request);
  if (request.command !== 'connect') {
    throw io.error('is an HTTP proxy, which cannot BIND', Rep.COMMAND_NOT_SUPPORTED, 'protocol');
  }
  io.send(io.encode(() => serializeConnectRequest(request.target, request.credentials)));
  const response = await io.read(parseConnectResponse, 'the CONNECT response');
  const { status, reason } = response;
  if (status >= 200 && status <= 299) return { bound: UNKNOWN_BOUND };

  const answered = `HTTP ${status}${reason ? ` ${reason}` : ''}`;
  if (status === 407) {
    const challenge = response.headers.get('proxy-authenticate') ?? '';
    // Only Basic is spoken here; say so when the proxy insists on something else.
    const scheme =
      challenge !== '' && !/^basic\b/i.test(challenge)
        ? `; it asks for ${challenge.split(/[\s,]/)[0]}, only Basic is supported`
        : '';
    const what = request.credentials
      ? `rejected the credentials for user '${request.credentials.username}'`
      : 'wants proxy credentials';
    throw io.error(`${what} (${answered}${scheme})`, Rep.GENERAL_FAILURE, 'auth-failed');
  }
  throw io.error(`upstream answered ${answered}`, STATUS_TO_REP[status] ?? Rep.GENERAL_FAILURE, 'rejected');
}

export const httpConnector: Connector = { protocol: 'http', handshake };
