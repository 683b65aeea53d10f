/**
 * Which kind of network an address belongs to, for the private-destination check: a proxy that
 * listens beyond loopback must not become a way into the host's own services or its LAN.
 *
 * Names are the hard part, not addresses. getaddrinfo (glibc's inet_aton rules) reads `127.1`,
 * `0x7f000001`, `2130706433` and `0177.0.0.1` as 127.0.0.1, and `::1%lo` as ::1, while the
 * strict parser in shared/rules calls them host names. `parseNumericHost` reads them the way the
 * resolver will, so the policy can judge the address a connection will really reach; and since
 * resolvers may still differ in corner cases, callers that restrict destinations resolve such
 * names and check the result rather than trusting the spelling.
 */
import { formatIp, type IpAddress, parseIp, unmapIPv4 } from '../../../shared/rules/ip.ts';

export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'multicast' | 'public';

export interface NumericHost {
  /** IPv4-mapped IPv6 is returned as the IPv4 address it carries. */
  readonly address: IpAddress;
  /** Canonical spelling (dotted quad, RFC 5952). */
  readonly text: string;
  /**
   * True for literals that Node and the SOCKS codec dial as they are (a dotted quad, IPv6 with
   * or without brackets); false for spellings only a resolver reads as this address (`127.1`,
   * `0x7f000001`, `10.0.0.1.`, zone ids).
   */
  readonly canonical: boolean;
}

function classifyIPv4(b: Uint8Array): AddressClass {
  const [a = 0, c = 0] = b;
  if (a === 0) return 'unspecified';
  if (a === 127) return 'loopback';
  if (a === 10) return 'private';
  if (a === 172 && (c & 0xf0) === 16) return 'private';
  if (a === 192 && c === 168) return 'private';
  // Carrier-grade NAT space: not the public internet, and often the ISP's own equipment.
  if (a === 100 && (c & 0xc0) === 64) return 'private';
  if (a === 169 && c === 254) return 'link-local';
  if (a >= 224 && a <= 239) return 'multicast';
  return 'public';
}

function isZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

function classifyIPv6(b: Uint8Array): AddressClass {
  if (isZero(b, 0, 16)) return 'unspecified';
  if (isZero(b, 0, 15) && b[15] === 1) return 'loopback';
  const b0 = b[0]!;
  const b1 = b[1]!;
  if (b0 === 0xff) return 'multicast';
  if ((b0 & 0xfe) === 0xfc) return 'private';
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return 'link-local';
  // Deprecated site-local fec0::/10: some stacks still route it inside the site.
  if (b0 === 0xfe && (b1 & 0xc0) === 0xc0) return 'private';
  // NAT64 well-known prefix 64:ff9b::/96: a translator on the path delivers to the embedded IPv4
  // address, so 64:ff9b::a00:1 is as internal as 10.0.0.1 whatever RFC 6052 asks of gateways.
  if (b0 === 0 && b1 === 0x64 && b[2] === 0xff && b[3] === 0x9b && isZero(b, 4, 12)) {
    return classifyIPv4(b.subarray(12));
  }
  return 'public';
}

/** Classifies a parsed address; IPv4-mapped IPv6 counts as the IPv4 address it carries. */
export function classifyIp(address: IpAddress): AddressClass {
  const a = unmapIPv4(address);
  return a.version === 4 ? classifyIPv4(a.bytes) : classifyIPv6(a.bytes);
}

/**
 * Classifies an IP address in any spelling `parseNumericHost` accepts. Throws a RangeError for a
 * host name: a name has no class until it is resolved.
 */
export function classifyAddress(ip: string): AddressClass {
  const parsed = parseNumericHost(ip);
  if (parsed === undefined) throw new RangeError(`'${ip}' is not an IP address`);
  return classifyIp(parsed.address);
}

/**
 * True for addresses a proxy reachable from elsewhere must not connect to: loopback, private,
 * link-local, unspecified (0.0.0.0 and :: reach the local host on Linux) and multicast (a UDP
 * relay would put the client on the LAN's service discovery). Anything that is not an address
 * counts as restricted, so a caller that passes a name by mistake fails closed.
 */
export function isRestrictedDestination(ip: string): boolean {
  const parsed = parseNumericHost(ip);
  return parsed === undefined || classifyIp(parsed.address) !== 'public';
}

// One inet_aton part: hex with 0x (digits optional, as glibc allows), octal with a leading 0,
// or decimal.
const PART = '(?:0[xX][0-9a-fA-F]*|[0-9]+)';
const NUMERIC_SHAPE = new RegExp(`^${PART}(?:\\.${PART}){0,3}\\.?$`);

function partValue(part: string): number | undefined {
  let digits: string;
  let base: number;
  if (/^0[xX]/.test(part)) {
    digits = part.slice(2);
    base = 16;
    if (digits === '') return 0;
  } else if (part.length > 1 && part.startsWith('0')) {
    digits = part.slice(1);
    base = 8;
    if (!/^[0-7]+$/.test(digits)) return undefined;
  } else {
    digits = part;
    base = 10;
  }
  // Leading zeros cannot push a value out of range, anything else this long already has.
  const trimmed = digits.replace(/^0+(?=.)/, '');
  if (trimmed.length > 11) return undefined;
  const value = Number.parseInt(trimmed, base);
  return value <= 0xffffffff ? value : undefined;
}

/** glibc inet_aton: `a`, `a.b`, `a.b.c` or `a.b.c.d`, the last part filling the remaining bytes. */
function parseInetAton(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  const values: number[] = [];
  for (const part of parts) {
    const value = partValue(part);
    if (value === undefined) return undefined;
    values.push(value);
  }
  const last = values.pop()!;
  for (const v of values) if (v > 0xff) return undefined;
  const lastBits = 8 * (4 - values.length);
  if (lastBits < 32 && last >= 2 ** lastBits) return undefined;
  const out = new Uint8Array(4);
  values.forEach((v, i) => {
    out[i] = v;
  });
  for (let i = 3; i >= values.length; i--) out[i] = Math.floor(last / 2 ** (8 * (3 - i))) & 0xff;
  return out;
}

/**
 * Reads a destination host the way the system resolver would read an address: canonical IPv4
 * and IPv6 literals, `[v6]` brackets, zone ids (`fe80::1%eth0`), IPv4-mapped IPv6, the inet_aton
 * forms (`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`) and one trailing dot. Returns
 * undefined for host names.
 */
export function parseNumericHost(name: string): NumericHost | undefined {
  if (name.includes(':')) {
    // Brackets only ever wrap IPv6, as in URLs; '[1.2.3.4]' is no address to any resolver.
    const text = name.length > 2 && name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
    const zone = text.indexOf('%');
    const bare = zone === -1 ? text : text.slice(0, zone);
    const parsed = parseIp(bare);
    if (parsed === null) return undefined;
    const address = unmapIPv4(parsed);
    return { address, text: formatIp(address), canonical: zone === -1 };
  }
  if (!NUMERIC_SHAPE.test(name)) return undefined;
  const strict = parseIp(name);
  if (strict !== null) return { address: strict, text: name, canonical: true };
  const bytes = parseInetAton(name.endsWith('.') ? name.slice(0, -1) : name);
  if (bytes === undefined) return undefined;
  const address: IpAddress = { version: 4, bytes };
  return { address, text: formatIp(address), canonical: false };
}

/**
 * True when a destination host is an address in disguise rather than a name: anything
 * `parseNumericHost` reads, and also numeric shapes it rejects (`1.2.3.256`, `09.1`), which
 * resolvers hand to DNS with unpredictable results. Either way, when destinations are restricted
 * the caller must resolve it and check the addresses, never pass it on as an unchecked name.
 */
export function looksLikeNumericHost(name: string): boolean {
  return parseNumericHost(name) !== undefined || NUMERIC_SHAPE.test(name);
}
