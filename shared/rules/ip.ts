// IP literal parsing and CIDR containment, written without the `net` module so that the same code
// runs in the native host and in the extension (and its semantics can be mirrored in a PAC script).
//
// Parsing is deliberately strict: IPv4 is four decimal octets with no leading zeros, because
// resolvers disagree on what '010.0.0.1' or '10.1' mean and a rule must never see one address
// while the connector dials another. Zone ids ('fe80::1%eth0') are rejected: they name a local
// interface, not a destination a rule can describe.

export interface IPv4Address {
  readonly version: 4;
  readonly bytes: Uint8Array;
}

export interface IPv6Address {
  readonly version: 6;
  readonly bytes: Uint8Array;
}

export type IpAddress = IPv4Address | IPv6Address;

export interface Cidr {
  readonly address: IpAddress;
  /** Number of leading bits that must equal `address`: 0-32 for IPv4, 0-128 for IPv6. */
  readonly prefix: number;
}

export type IpParseResult = { ok: true; address: IpAddress } | { ok: false; error: string };
export type CidrParseResult = { ok: true; cidr: Cidr } | { ok: false; error: string };

const CODE_0 = 48;
const CODE_9 = 57;
const CODE_DOT = 46;

function parseIPv4Bytes(text: string, out: Uint8Array, offset: number): string | null {
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : CODE_DOT;
    if (c === CODE_DOT) {
      if (digits === 0) return 'empty octet';
      if (part > 3) return 'an IPv4 address has exactly four octets';
      out[offset + part] = octet;
      part++;
      octet = 0;
      digits = 0;
      continue;
    }
    if (c < CODE_0 || c > CODE_9) return `unexpected character '${text[i]}'`;
    if (digits > 0 && octet === 0) return 'octets must not have leading zeros';
    octet = octet * 10 + (c - CODE_0);
    digits++;
    if (octet > 255) return 'each octet must be 0-255';
  }
  if (part !== 4) return 'an IPv4 address has exactly four octets';
  return null;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses groups of an IPv6 address half (split at '::'), writing 16-bit groups into `groups`. */
function parseIPv6Groups(
  half: string,
  groups: number[],
  allowTrailingIPv4: boolean,
  v4: Uint8Array,
): string | null {
  if (half === '') return null;
  const parts = half.split(':');
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!;
    if (part === '') return 'misplaced colon';
    if (part.includes('.')) {
      if (!allowTrailingIPv4 || p !== parts.length - 1) {
        return 'an embedded IPv4 address may only appear at the end';
      }
      const err = parseIPv4Bytes(part, v4, 0);
      if (err !== null) return `embedded IPv4 address: ${err}`;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      continue;
    }
    if (part.length > 4) return 'each group has at most four hex digits';
    let value = 0;
    for (let i = 0; i < part.length; i++) {
      const h = hexValue(part.charCodeAt(i));
      if (h < 0) return `unexpected character '${part[i]}'`;
      value = (value << 4) | h;
    }
    groups.push(value);
  }
  return null;
}

function parseIPv6(text: string): IpParseResult {
  if (text.includes('%')) return { ok: false, error: 'zone ids (such as %eth0) are not allowed' };
  const gap = text.indexOf('::');
  const v4 = new Uint8Array(4);
  const head: number[] = [];
  const tail: number[] = [];
  let err: string | null;
  if (gap === -1) {
    err = parseIPv6Groups(text, head, true, v4);
    if (err === null && head.length !== 8) err = 'an IPv6 address without "::" has exactly eight groups';
  } else {
    if (text.indexOf('::', gap + 1) !== -1) return { ok: false, error: '"::" may appear only once' };
    err = parseIPv6Groups(text.slice(0, gap), head, false, v4);
    if (err === null) err = parseIPv6Groups(text.slice(gap + 2), tail, true, v4);
    if (err === null && head.length + tail.length > 7) err = 'too many groups';
  }
  if (err !== null) return { ok: false, error: err };
  const bytes = new Uint8Array(16);
  for (let i = 0; i < head.length; i++) {
    bytes[i * 2] = head[i]! >> 8;
    bytes[i * 2 + 1] = head[i]! & 0xff;
  }
  const tailStart = 8 - tail.length;
  for (let i = 0; i < tail.length; i++) {
    bytes[(tailStart + i) * 2] = tail[i]! >> 8;
    bytes[(tailStart + i) * 2 + 1] = tail[i]! & 0xff;
  }
  return { ok: true, address: { version: 6, bytes } };
}

/**
 * Parses a bare IPv4 or IPv6 literal (no brackets, no port, no zone id). The result keeps the
 * literal's family: use `unmapIPv4` to treat '::ffff:a.b.c.d' as the IPv4 address it carries.
 */
export function parseIpDetailed(text: string): IpParseResult {
  if (text.length === 0) return { ok: false, error: 'empty address' };
  if (text.length > 45) return { ok: false, error: 'too long for an IP address' };
  if (text.includes(':')) return parseIPv6(text);
  const bytes = new Uint8Array(4);
  const err = parseIPv4Bytes(text, bytes, 0);
  if (err !== null) return { ok: false, error: err };
  return { ok: true, address: { version: 4, bytes } };
}

export function parseIp(text: string): IpAddress | null {
  const result = parseIpDetailed(text);
  return result.ok ? result.address : null;
}

function isMappedIPv4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** '::ffff:a.b.c.d' is how dual-stack sockets spell an IPv4 peer; rules must see it as a.b.c.d. */
export function unmapIPv4(address: IpAddress): IpAddress {
  if (address.version === 6 && isMappedIPv4(address.bytes)) {
    return { version: 4, bytes: address.bytes.slice(12) };
  }
  return address;
}

/**
 * Parses the host part of a destination as an IP literal: accepts '[v6]' brackets as written in
 * URLs and unmaps IPv4-mapped IPv6. Returns null for host names (and for malformed literals,
 * which are then treated as names, exactly as a resolver would be asked about them).
 */
export function parseHostIp(host: string): IpAddress | null {
  let text = host;
  if (text.length > 1 && text.charCodeAt(0) === 91 && text.charCodeAt(text.length - 1) === 93) {
    text = text.slice(1, -1);
    if (!text.includes(':')) return null;
  } else {
    // Cheap pre-check keeps the hot path free of parse attempts for ordinary names: an IPv4
    // literal ends in a digit and an IPv6 one contains a colon.
    const last = text.charCodeAt(text.length - 1);
    if (!(last >= CODE_0 && last <= CODE_9) && !text.includes(':')) return null;
  }
  const address = parseIp(text);
  return address === null ? null : unmapIPv4(address);
}

function hasHostBits(bytes: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  const rem = prefix & 7;
  if (rem !== 0 && (bytes[whole]! & (0xff >> rem)) !== 0) return true;
  for (let i = whole + (rem === 0 ? 0 : 1); i < bytes.length; i++) if (bytes[i] !== 0) return true;
  return false;
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = bytes.slice();
  const whole = prefix >> 3;
  const rem = prefix & 7;
  if (rem !== 0) out[whole] = out[whole]! & ((0xff << (8 - rem)) & 0xff);
  out.fill(0, whole + (rem === 0 ? 0 : 1));
  return out;
}

/**
 * Parses 'a.b.c.d/n', 'v6/n' or a single address (a /32 or /128). Host bits set under the mask are
 * an error rather than silently masked, since '10.0.0.1/8' is usually a typo for something else.
 * IPv4-mapped ranges ('::ffff:10.0.0.0/104') become the IPv4 range they describe.
 */
export function parseCidr(text: string): CidrParseResult {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const parsed = parseIpDetailed(addrText);
  if (!parsed.ok) return parsed;
  const address = parsed.address;
  const max = address.version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      return {
        ok: false,
        error: `prefix length must be a number from 0 to ${max} for IPv${address.version}`,
      };
    }
    prefix = Number(prefixText);
  }
  if (hasHostBits(address.bytes, prefix)) {
    const suggestion = formatIp({ version: address.version, bytes: maskBytes(address.bytes, prefix) });
    return {
      ok: false,
      error: `address has bits set outside the /${prefix} prefix: did you mean '${suggestion}/${prefix}'?`,
    };
  }
  if (address.version === 6 && prefix >= 96 && isMappedIPv4(address.bytes)) {
    return { ok: true, cidr: { address: unmapIPv4(address), prefix: prefix - 96 } };
  }
  return { ok: true, cidr: { address, prefix } };
}

export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.address.version !== address.version) return false;
  const net = cidr.address.bytes;
  const bytes = address.bytes;
  const whole = cidr.prefix >> 3;
  for (let i = 0; i < whole; i++) if (net[i] !== bytes[i]) return false;
  const rem = cidr.prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((net[whole]! ^ bytes[whole]!) & mask) === 0;
}

/** Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (mapped addresses as '::ffff:a.b.c.d'). */
export function formatIp(address: IpAddress): string {
  const b = address.bytes;
  if (address.version === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (isMappedIPv4(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}
