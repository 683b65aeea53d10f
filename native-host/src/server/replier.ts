/**
 * The one difference between SOCKS4 and SOCKS5 once a request is parsed is how replies are
 * spelled, so commands talk to this interface and stay protocol-neutral.
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../outbound/outbound.ts';
import { addressOf } from '../protocol/address.ts';
import { Socks4Status, serializeSocks4Reply } from '../protocol/socks4.ts';
import { Rep, type RepCode, serializeReply } from '../protocol/socks5.ts';

export interface Replier {
  granted(bound: Endpoint): void;
  failed(rep: RepCode): void;
}

export function socks5Replier(socket: Socket): Replier {
  return {
    granted: (bound) => {
      socket.write(serializeReply(Rep.SUCCEEDED, addressOf(unmapIpv4(bound.host), bound.port)));
    },
    failed: (rep) => {
      socket.write(serializeReply(rep));
    },
  };
}

export function socks4Replier(socket: Socket): Replier {
  return {
    granted: (bound) => {
      const host = unmapIpv4(bound.host);
      // SOCKS4 replies carry IPv4 only; 0.0.0.0 tells the client "use the proxy's address".
      const ipv4 = addressOf(host, bound.port).type === 'ipv4' ? host : '0.0.0.0';
      socket.write(serializeSocks4Reply(Socks4Status.GRANTED, ipv4, bound.port));
    },
    failed: () => {
      socket.write(serializeSocks4Reply(Socks4Status.REJECTED));
    },
  };
}

/** Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; clients want a.b.c.d. */
export function unmapIpv4(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host;
}
