/**
 * SOCKS5 (RFC 1928) and its username/password sub-negotiation (RFC 1929): every message in
 * both directions, so the inbound server and the upstream connectors share one codec.
 */
import {
  type Address,
  MAX_DOMAIN_LENGTH,
  bytesToIpv4,
  bytesToIpv6,
  ipv4ToBytes,
  ipv6ToBytes,
} from './address.ts';
import { ProtocolError } from './errors.ts';
import { NEED_MORE, type ParseResult, parsed } from './parse-result.ts';

export const SOCKS5_VERSION = 0x05;
export const USERPASS_VERSION = 0x01;

export const Method = {
  NO_AUTH: 0x00,
  GSSAPI: 0x01,
  USERNAME_PASSWORD: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

export const Command = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const;
export type CommandName = 'connect' | 'bind' | 'udp-associate';

export const AddressType = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const;

/** REP values of a SOCKS5 reply. */
export const Rep = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type RepCode = (typeof Rep)[keyof typeof Rep];

const REP_TEXT: Record<number, string> = {
  0: 'succeeded',
  1: 'general failure',
  2: 'not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

export function repText(rep: number): string {
  return REP_TEXT[rep] ?? `unknown reply code ${rep}`;
}

/** RFC 1929 caps both fields at 255 bytes by their one-byte length. */
export const MAX_CREDENTIAL_LENGTH = 255;

export interface Greeting {
  readonly methods: readonly number[];
}

export interface UserPass {
  readonly username: string;
  readonly password: string;
}

export interface Socks5Request {
  readonly command: CommandName;
  readonly address: Address;
}

export interface Socks5Reply {
  readonly rep: number;
  readonly address: Address;
}

export interface UdpDatagram {
  readonly frag: number;
  readonly address: Address;
  /** Offset of the payload in the datagram, so relaying needs no copy. */
  readonly dataOffset: number;
}

// ---- greeting ------------------------------------------------------------------------------

export function parseGreeting(buf: Uint8Array): ParseResult<Greeting> {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== SOCKS5_VERSION)
    throw new ProtocolError('BAD_VERSION', `expected SOCKS version 5, got ${buf[0]}`);
  if (buf.length < 2) return NEED_MORE;
  const n = buf[1]!;
  if (n === 0) throw new ProtocolError('BAD_LENGTH', 'greeting offers no authentication methods');
  if (buf.length < 2 + n) return NEED_MORE;
  return parsed({ methods: Array.from(buf.subarray(2, 2 + n)) }, 2 + n);
}

export function serializeGreeting(methods: readonly number[]): Buffer {
  if (methods.length < 1 || methods.length > 255) {
    throw new ProtocolError('BAD_LENGTH', 'a greeting offers between 1 and 255 methods');
  }
  return Buffer.from([SOCKS5_VERSION, methods.length, ...methods]);
}

export function serializeMethodChoice(method: number): Buffer {
  return Buffer.from([SOCKS5_VERSION, method]);
}

export function parseMethodChoice(buf: Uint8Array): ParseResult<number> {
  if (buf.length < 2) return NEED_MORE;
  if (buf[0] !== SOCKS5_VERSION)
    throw new ProtocolError('BAD_VERSION', `expected SOCKS version 5, got ${buf[0]}`);
  return parsed(buf[1]!, 2);
}

// ---- RFC 1929 -----------------------------------------------------------------------------

export function parseUserPass(buf: Uint8Array): ParseResult<UserPass> {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== USERPASS_VERSION) {
    throw new ProtocolError('BAD_VERSION', `expected username/password version 1, got ${buf[0]}`);
  }
  if (buf.length < 2) return NEED_MORE;
  const ulen = buf[1]!;
  if (buf.length < 2 + ulen + 1) return NEED_MORE;
  const plen = buf[2 + ulen]!;
  const size = 3 + ulen + plen;
  if (buf.length < size) return NEED_MORE;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return parsed(
    { username: b.toString('utf8', 2, 2 + ulen), password: b.toString('utf8', 3 + ulen, size) },
    size,
  );
}

export function serializeUserPass(username: string, password: string): Buffer {
  const u = Buffer.from(username, 'utf8');
  const p = Buffer.from(password, 'utf8');
  if (u.length < 1 || u.length > MAX_CREDENTIAL_LENGTH) {
    throw new ProtocolError('TOO_LONG', 'a SOCKS5 username must be 1 to 255 bytes');
  }
  if (p.length < 1 || p.length > MAX_CREDENTIAL_LENGTH) {
    throw new ProtocolError('TOO_LONG', 'a SOCKS5 password must be 1 to 255 bytes');
  }
  return Buffer.concat([Buffer.from([USERPASS_VERSION, u.length]), u, Buffer.from([p.length]), p]);
}

export function serializeUserPassStatus(success: boolean): Buffer {
  return Buffer.from([USERPASS_VERSION, success ? 0x00 : 0x01]);
}

export function parseUserPassStatus(buf: Uint8Array): ParseResult<boolean> {
  if (buf.length < 2) return NEED_MORE;
  // Some servers answer with version 5 here; the status byte is what matters.
  if (buf[0] !== USERPASS_VERSION && buf[0] !== SOCKS5_VERSION) {
    throw new ProtocolError('BAD_VERSION', `expected username/password version 1, got ${buf[0]}`);
  }
  return parsed(buf[1] === 0x00, 2);
}

// ---- addresses ------------------------------------------------------------------------------

/** Parses ATYP + DST.ADDR + DST.PORT at `offset`. */
function parseAddressAt(buf: Uint8Array, offset: number): ParseResult<Address> {
  if (buf.length < offset + 1) return NEED_MORE;
  const atyp = buf[offset]!;
  const at = offset + 1;
  switch (atyp) {
    case AddressType.IPV4: {
      if (buf.length < at + 6) return NEED_MORE;
      const port = (buf[at + 4]! << 8) | buf[at + 5]!;
      return parsed({ type: 'ipv4', host: bytesToIpv4(buf, at), port }, at + 6 - offset);
    }
    case AddressType.IPV6: {
      if (buf.length < at + 18) return NEED_MORE;
      const port = (buf[at + 16]! << 8) | buf[at + 17]!;
      return parsed({ type: 'ipv6', host: bytesToIpv6(buf, at), port }, at + 18 - offset);
    }
    case AddressType.DOMAIN: {
      if (buf.length < at + 1) return NEED_MORE;
      const len = buf[at]!;
      if (len === 0) throw new ProtocolError('BAD_ADDRESS', 'empty domain name');
      if (buf.length < at + 1 + len + 2) return NEED_MORE;
      const host = decodeHostName(buf, at + 1, at + 1 + len);
      const port = (buf[at + 1 + len]! << 8) | buf[at + 2 + len]!;
      return parsed({ type: 'domain', host, port }, at + 3 + len - offset);
    }
    default:
      throw new ProtocolError('BAD_ADDRESS_TYPE', `unknown address type ${atyp}`);
  }
}

/**
 * Host names are bytes on the wire; control characters, spaces and NULs are refused here so
 * that nothing downstream (logs, resolver, rule matcher) has to think about them.
 */
export function decodeHostName(buf: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c <= 0x20 || c === 0x7f)
      throw new ProtocolError('BAD_ADDRESS', 'host name contains a control character');
  }
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8', start, end);
}

export function addressSize(address: Address): number {
  switch (address.type) {
    case 'ipv4':
      return 1 + 4 + 2;
    case 'ipv6':
      return 1 + 16 + 2;
    case 'domain':
      return 1 + 1 + Buffer.byteLength(address.host, 'utf8') + 2;
  }
}

function writeAddressAt(out: Buffer, offset: number, address: Address): number {
  let at = offset;
  switch (address.type) {
    case 'ipv4':
      out[at++] = AddressType.IPV4;
      out.set(ipv4ToBytes(address.host), at);
      at += 4;
      break;
    case 'ipv6':
      out[at++] = AddressType.IPV6;
      out.set(ipv6ToBytes(address.host), at);
      at += 16;
      break;
    case 'domain': {
      const len = Buffer.byteLength(address.host, 'utf8');
      if (len < 1 || len > MAX_DOMAIN_LENGTH) {
        throw new ProtocolError('TOO_LONG', `host name must be 1 to ${MAX_DOMAIN_LENGTH} bytes`);
      }
      out[at++] = AddressType.DOMAIN;
      out[at++] = len;
      at += out.write(address.host, at, 'utf8');
      break;
    }
  }
  if (!Number.isInteger(address.port) || address.port < 0 || address.port > 0xffff) {
    throw new ProtocolError('BAD_ADDRESS', `port ${address.port} is out of range`);
  }
  out.writeUInt16BE(address.port, at);
  return at + 2;
}

// ---- request / reply ------------------------------------------------------------------------

const COMMANDS: Record<number, CommandName> = {
  [Command.CONNECT]: 'connect',
  [Command.BIND]: 'bind',
  [Command.UDP_ASSOCIATE]: 'udp-associate',
};
const COMMAND_CODES: Record<CommandName, number> = { connect: 1, bind: 2, 'udp-associate': 3 };

export function parseRequest(buf: Uint8Array): ParseResult<Socks5Request> {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== SOCKS5_VERSION)
    throw new ProtocolError('BAD_VERSION', `expected SOCKS version 5, got ${buf[0]}`);
  if (buf.length < 2) return NEED_MORE;
  // Errors are judged in byte order so that a request split anywhere fails the same way as the
  // whole request. RSV is not checked: a few clients send garbage there and nothing depends on it.
  const command = COMMANDS[buf[1]!];
  if (!command) throw new ProtocolError('BAD_COMMAND', `unknown command ${buf[1]}`);
  if (buf.length < 3) return NEED_MORE;
  const addr = parseAddressAt(buf, 3);
  if (!addr.done) return NEED_MORE;
  return parsed({ command, address: addr.value }, 3 + addr.size);
}

export function serializeRequest(command: CommandName, address: Address): Buffer {
  const out = Buffer.allocUnsafe(3 + addressSize(address));
  out[0] = SOCKS5_VERSION;
  out[1] = COMMAND_CODES[command];
  out[2] = 0;
  writeAddressAt(out, 3, address);
  return out;
}

const ZERO_ADDRESS: Address = { type: 'ipv4', host: '0.0.0.0', port: 0 };

/** Replies are always full length, also on errors (clients read exactly that many bytes). */
export function serializeReply(rep: number, bound: Address = ZERO_ADDRESS): Buffer {
  const out = Buffer.allocUnsafe(3 + addressSize(bound));
  out[0] = SOCKS5_VERSION;
  out[1] = rep;
  out[2] = 0;
  writeAddressAt(out, 3, bound);
  return out;
}

export function parseReply(buf: Uint8Array): ParseResult<Socks5Reply> {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== SOCKS5_VERSION)
    throw new ProtocolError('BAD_VERSION', `expected SOCKS version 5, got ${buf[0]}`);
  if (buf.length < 3) return NEED_MORE;
  const addr = parseAddressAt(buf, 3);
  if (!addr.done) return NEED_MORE;
  return parsed({ rep: buf[1]!, address: addr.value }, 3 + addr.size);
}

// ---- UDP ------------------------------------------------------------------------------------

/** A whole datagram is at hand, so "incomplete" is an error here, not a reason to wait. */
export function parseUdpDatagram(buf: Uint8Array): UdpDatagram {
  if (buf.length < 4) throw new ProtocolError('BAD_HEADER', 'UDP datagram shorter than its header');
  const addr = parseAddressAt(buf, 3);
  if (!addr.done) throw new ProtocolError('BAD_HEADER', 'UDP datagram truncated inside its address');
  return { frag: buf[2]!, address: addr.value, dataOffset: 3 + addr.size };
}

export function serializeUdpHeader(address: Address): Buffer {
  const out = Buffer.allocUnsafe(3 + addressSize(address));
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  writeAddressAt(out, 3, address);
  return out;
}
