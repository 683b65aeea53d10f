import { isIPv4, isIPv6 } from 'node:net';
import { ProtocolError } from './errors.ts';

/** A destination as a client names it: an IP literal or an unresolved host name. */
export type Address =
  | { readonly type: 'ipv4'; readonly host: string; readonly port: number }
  | { readonly type: 'ipv6'; readonly host: string; readonly port: number }
  | { readonly type: 'domain'; readonly host: string; readonly port: number };

export const MAX_DOMAIN_LENGTH = 255;

export function addressOf(host: string, port: number): Address {
  if (isIPv4(host)) return { type: 'ipv4', host, port };
  const unbracketed = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIPv6(unbracketed)) return { type: 'ipv6', host: unbracketed, port };
  return { type: 'domain', host, port };
}

/** `host:port` with IPv6 in brackets, as people write it in logs and on command lines. */
export function formatAddress(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function ipv4ToBytes(host: string): Uint8Array {
  // isIPv4 first: Number() alone would take '0x7f', ' 1', '1e2' and '+1' as octets.
  const parts = host.split('.');
  if (!isIPv4(host)) throw new ProtocolError('BAD_ADDRESS', `'${host}' is not an IPv4 address`);
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

export function bytesToIpv4(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export function ipv6ToBytes(host: string): Uint8Array {
  if (!isIPv6(host) || host.includes('%'))
    throw new ProtocolError('BAD_ADDRESS', `'${host}' is not an IPv6 address`);
  let text = host;
  const out = new Uint8Array(16);
  // An embedded dotted quad (::ffff:1.2.3.4) fills the last 4 bytes.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  let tailBytes: Uint8Array | undefined;
  if (tail.includes('.')) {
    tailBytes = ipv4ToBytes(tail);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [...head, ...new Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  for (let i = 0; i < 8; i++) {
    const g = Number.parseInt(groups[i] ?? '0', 16);
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  }
  if (tailBytes) out.set(tailBytes, 12);
  return out;
}

/** RFC 5952 text (lowercase, longest zero run compressed), so logs and rules see one spelling. */
export function bytesToIpv6(bytes: Uint8Array, offset: number): string {
  // RFC 5952 section 5: IPv4-mapped addresses in mixed notation, as Node and shared/rules spell them.
  let mapped = bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[offset + i] === 0;
  if (mapped) return `::ffff:${bytesToIpv4(bytes, offset + 12)}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++)
    groups.push(((bytes[offset + i * 2] ?? 0) << 8) | (bytes[offset + i * 2 + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
