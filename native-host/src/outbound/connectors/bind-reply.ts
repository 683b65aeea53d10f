/**
 * What SOCKS4 and SOCKS5 share once the first reply is in: CONNECT is done with it, while BIND
 * has only been told where the hop listens and waits for a second reply, sent when the peer
 * connects. That wait has its own deadline (the request's bindTimeoutMs, or none but the abort
 * signal), since a peer may take long to come.
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../outbound.ts';
import { HopStream } from './stream-reader.ts';
import type { BindResult, ConnectorRequest, ConnectorResult } from './types.ts';

/** Reads one reply of the connector's protocol; a refusal throws. */
export type ReplyReader = (io: HopStream, what: string) => Promise<Endpoint>;

export function afterFirstReply(
  stream: Socket,
  request: ConnectorRequest,
  bound: Endpoint,
  readReply: ReplyReader,
): ConnectorResult | BindResult {
  if (request.command === 'connect') return { bound };

  const waitForPeer = new HopStream(stream, request, {
    timeoutMs: request.bindTimeoutMs ?? Number.POSITIVE_INFINITY,
  });
  const peer = readReply(waitForPeer, 'the second BIND reply (peer connected)');
  peer.catch(() => undefined);
  return { bound, peer };
}
