import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export type HostsMap = Readonly<Record<string, readonly string[]>>;

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * Resolves a name the way the direct exit will use it: the config's hosts map first (exact,
 * case-insensitive), then the system resolver. IP literals are returned as they are, so a
 * client-supplied literal never reaches the resolver.
 */
export async function resolveHost(
  host: string,
  hosts: HostsMap = {},
  system: (host: string) => Promise<ResolvedAddress[]> = systemLookup,
): Promise<ResolvedAddress[]> {
  const literal = toLiteral(host);
  if (literal) return [literal];
  const mapped = hosts[host.toLowerCase().replace(/\.$/, '')];
  if (mapped && mapped.length > 0) {
    return mapped.map((a) => toLiteral(a)).filter((a): a is ResolvedAddress => a !== undefined);
  }
  return system(host);
}

export async function systemLookup(host: string): Promise<ResolvedAddress[]> {
  const found = await lookup(host, { all: true, verbatim: true });
  return found
    .filter((a) => a.family === 4 || a.family === 6)
    .map((a) => ({ address: a.address, family: a.family as 4 | 6 }));
}

export function toLiteral(host: string): ResolvedAddress | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  return family === 4 || family === 6 ? { address: bare, family } : undefined;
}
