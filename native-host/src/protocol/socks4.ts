/**
 * SOCKS4 and SOCKS4a, both directions. SOCKS4 has no authentication and IPv4 only; 4a adds an
 * unresolved host name after the user id, flagged by a DSTIP of 0.0.0.x with x != 0.
 */
import { type Address, bytesToIpv4, ipv4ToBytes } from './address.ts';
import { decodeHostName } from './socks5.ts';
import { ProtocolError } from './errors.ts';
import { NEED_MORE, type ParseResult, parsed } from './parse-result.ts';

export const SOCKS4_VERSION = 0x04;
/** The reply's VN is 0, not 4: a classic mistake. */
export const SOCKS4_REPLY_VERSION = 0x00;

export const Socks4Status = {
  GRANTED: 90,
  REJECTED: 91,
  IDENTD_UNREACHABLE: 92,
  IDENTD_MISMATCH: 93,
} as const;

/** Both fields are NUL-terminated with no length byte, so the limits are ours to impose. */
export const MAX_USERID_LENGTH = 255;
export const MAX_SOCKS4A_HOST_LENGTH = 255;

export interface Socks4Request {
  readonly command: 'connect' | 'bind';
  readonly address: Address;
  readonly userId: string;
  /** True when the request used the 4a host name extension. */
  readonly socks4a: boolean;
}

export interface Socks4Reply {
  readonly status: number;
  readonly host: string;
  readonly port: number;
}

function findNul(buf: Uint8Array, start: number, max: number, what: string): number | undefined {
  const end = Math.min(buf.length, start + max + 1);
  for (let i = start; i < end; i++) if (buf[i] === 0) return i;
  if (buf.length > start + max) throw new ProtocolError('TOO_LONG', `${what} longer than ${max} bytes`);
  return undefined;
}

export function parseSocks4Request(buf: Uint8Array): ParseResult<Socks4Request> {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== SOCKS4_VERSION)
    throw new ProtocolError('BAD_VERSION', `expected SOCKS version 4, got ${buf[0]}`);
  if (buf.length < 2) return NEED_MORE;
  const cd = buf[1];
  if (cd !== 1 && cd !== 2) throw new ProtocolError('BAD_COMMAND', `unknown SOCKS4 command ${cd}`);
  if (buf.length < 8) return NEED_MORE;
  const port = (buf[2]! << 8) | buf[3]!;
  const userEnd = findNul(buf, 8, MAX_USERID_LENGTH, 'SOCKS4 user id');
  if (userEnd === undefined) return NEED_MORE;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const userId = b.toString('utf8', 8, userEnd);
  const command = cd === 1 ? 'connect' : 'bind';
  const is4a = buf[4] === 0 && buf[5] === 0 && buf[6] === 0 && buf[7] !== 0;
  if (!is4a) {
    return parsed(
      { command, address: { type: 'ipv4', host: bytesToIpv4(buf, 4), port }, userId, socks4a: false },
      userEnd + 1,
    );
  }
  const hostEnd = findNul(buf, userEnd + 1, MAX_SOCKS4A_HOST_LENGTH, 'SOCKS4a host name');
  if (hostEnd === undefined) return NEED_MORE;
  if (hostEnd === userEnd + 1) throw new ProtocolError('BAD_ADDRESS', 'empty SOCKS4a host name');
  const host = decodeHostName(buf, userEnd + 1, hostEnd);
  return parsed({ command, address: { type: 'domain', host, port }, userId, socks4a: true }, hostEnd + 1);
}

/** Builds a 4 or 4a request; a domain address makes it 4a, an IPv6 address cannot be sent. */
export function serializeSocks4Request(command: 'connect' | 'bind', address: Address, userId = ''): Buffer {
  const user = Buffer.from(userId, 'utf8');
  if (user.length > MAX_USERID_LENGTH)
    throw new ProtocolError('TOO_LONG', 'SOCKS4 user id longer than 255 bytes');
  if (user.includes(0)) throw new ProtocolError('BAD_ADDRESS', 'SOCKS4 user id contains a NUL byte');
  if (address.type === 'ipv6')
    throw new ProtocolError('BAD_ADDRESS_TYPE', 'SOCKS4 cannot carry an IPv6 address');
  const head = Buffer.allocUnsafe(8);
  head[0] = SOCKS4_VERSION;
  head[1] = command === 'connect' ? 1 : 2;
  head.writeUInt16BE(address.port, 2);
  if (address.type === 'ipv4') {
    const ip = ipv4ToBytes(address.host);
    // 0.0.0.x (x != 0) is the 4a marker: a server would wait for a host name that never comes.
    if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0)
      throw new ProtocolError('BAD_ADDRESS', `${address.host} cannot be sent in SOCKS4 (it marks 4a)`);
    head.set(ip, 4);
    return Buffer.concat([head, user, Buffer.from([0])]);
  }
  const host = Buffer.from(address.host, 'utf8');
  if (host.length < 1 || host.length > MAX_SOCKS4A_HOST_LENGTH) {
    throw new ProtocolError('TOO_LONG', 'SOCKS4a host name must be 1 to 255 bytes');
  }
  if (host.includes(0)) throw new ProtocolError('BAD_ADDRESS', 'SOCKS4a host name contains a NUL byte');
  head.set([0, 0, 0, 1], 4);
  return Buffer.concat([head, user, Buffer.from([0]), host, Buffer.from([0])]);
}

export function serializeSocks4Reply(status: number, host = '0.0.0.0', port = 0): Buffer {
  const out = Buffer.allocUnsafe(8);
  out[0] = SOCKS4_REPLY_VERSION;
  out[1] = status;
  out.writeUInt16BE(port, 2);
  out.set(ipv4ToBytes(host), 4);
  return out;
}

export function parseSocks4Reply(buf: Uint8Array): ParseResult<Socks4Reply> {
  if (buf.length < 8) return NEED_MORE;
  // A few servers echo VN 4 in replies; the status byte is what matters.
  if (buf[0] !== SOCKS4_REPLY_VERSION && buf[0] !== SOCKS4_VERSION) {
    throw new ProtocolError('BAD_VERSION', `expected SOCKS4 reply version 0, got ${buf[0]}`);
  }
  return parsed({ status: buf[1]!, host: bytesToIpv4(buf, 4), port: (buf[2]! << 8) | buf[3]! }, 8);
}
