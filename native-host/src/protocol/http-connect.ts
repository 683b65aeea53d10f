/**
 * HTTP CONNECT (RFC 9110 §9.3.6), client side only: the request that asks an HTTP proxy for a
 * tunnel, and the response head that grants or refuses it. Everything after the blank line
 * that ends the head belongs to the tunnel, so the parser never reports it as used.
 */
import { type Address, formatAddress } from './address.ts';
import { ProtocolError } from './errors.ts';
import { NEED_MORE, type ParseResult, parsed } from './parse-result.ts';

/** A response head longer than this is not a proxy talking to us. */
export const MAX_RESPONSE_HEAD = 16 * 1024;

export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

export interface ConnectResponse {
  readonly status: number;
  readonly reason: string;
  /** Lowercased names; repeated fields joined with ", " as RFC 9110 allows. */
  readonly headers: ReadonlyMap<string, string>;
}

// A control character or space could end the request line and inject headers; the others
// would make the authority mean a different host or port.
const UNSAFE_HOST_CHARS = new Set(':/?#@\\[]'.split(''));

function isSafeHostName(host: string): boolean {
  if (host.length === 0) return false;
  for (const ch of host) {
    const code = ch.codePointAt(0)!;
    if (code <= 0x20 || code === 0x7f || UNSAFE_HOST_CHARS.has(ch)) return false;
  }
  return true;
}

/** `host:port` as the request target and Host header want it (IPv6 in brackets). */
export function connectAuthority(target: Address): string {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 0xffff) {
    throw new ProtocolError('BAD_ADDRESS', `port ${target.port} is out of range`);
  }
  if (target.type === 'domain' && !isSafeHostName(target.host)) {
    throw new ProtocolError('BAD_ADDRESS', `'${target.host}' cannot be sent as an HTTP host name`);
  }
  if (target.type === 'ipv6' && target.host.includes('%')) {
    // A zone id names an interface of this machine; it means nothing to the proxy.
    throw new ProtocolError('BAD_ADDRESS', `'${target.host}' has a zone id, which a proxy cannot use`);
  }
  return formatAddress(target);
}

export function serializeConnectRequest(target: Address, auth?: BasicCredentials): Buffer {
  const authority = connectAuthority(target);
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (auth) {
    // RFC 7617: the user-id cannot contain a colon, because the first colon splits the pair.
    if (auth.username.includes(':')) {
      throw new ProtocolError('BAD_HEADER', 'a Basic auth user name cannot contain a colon');
    }
    const token = Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
    head += `Proxy-Authorization: Basic ${token}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

const HTTP_PREFIX = Buffer.from('HTTP/', 'latin1');
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: (.*))?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;

/** Offset just past the blank line that ends the head (CRLF CRLF, or bare LFs), if present. */
function endOfHead(buf: Uint8Array, limit: number): number | undefined {
  const end = Math.min(buf.length, limit);
  for (let i = 0; i < end; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return undefined;
}

function printable(buf: Uint8Array): string {
  return JSON.stringify(Buffer.from(buf.subarray(0, 16)).toString('latin1'));
}

export function parseConnectResponse(buf: Uint8Array): ParseResult<ConnectResponse> {
  // Judge the first bytes as soon as they arrive: a SOCKS or TLS answer must fail at once,
  // not after a timeout spent waiting for a blank line that never comes.
  const prefix = Math.min(buf.length, HTTP_PREFIX.length);
  for (let i = 0; i < prefix; i++) {
    if (buf[i] !== HTTP_PREFIX[i]) {
      throw new ProtocolError('BAD_VERSION', `expected an HTTP response, got ${printable(buf)}`);
    }
  }
  const size = endOfHead(buf, MAX_RESPONSE_HEAD);
  if (size === undefined) {
    if (buf.length >= MAX_RESPONSE_HEAD) {
      throw new ProtocolError('TOO_LONG', `HTTP response head longer than ${MAX_RESPONSE_HEAD} bytes`);
    }
    return NEED_MORE;
  }
  if (size > MAX_RESPONSE_HEAD) {
    throw new ProtocolError('TOO_LONG', `HTTP response head longer than ${MAX_RESPONSE_HEAD} bytes`);
  }
  const lines = Buffer.from(buf.buffer, buf.byteOffset, size)
    .toString('latin1')
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (!status) throw new ProtocolError('BAD_STATUS', `malformed HTTP status line ${printable(buf)}`);
  if (status[1] !== '1')
    throw new ProtocolError('BAD_VERSION', `unsupported HTTP version ${status[1]}.${status[2]}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const m = HEADER_LINE.exec(line);
    if (!m)
      throw new ProtocolError(
        'BAD_HEADER',
        `malformed HTTP header line ${JSON.stringify(line.slice(0, 40))}`,
      );
    const name = m[1]!.toLowerCase();
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? m[2]! : `${previous}, ${m[2]!}`);
  }
  return parsed({ status: Number(status[3]), reason: status[4] ?? '', headers }, size);
}
