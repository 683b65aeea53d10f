/**
 * `serve --via URL --via URL ...`: a quick chain for all traffic without editing a config file.
 * Each URL becomes an upstream, the list becomes one route, and that route becomes the default
 * target. Passwords given here stay in this process's memory (and are visible to other local
 * users in the process list, which the help text says).
 */
import type { Config, Upstream, UpstreamType } from '../../../shared/config/schema.ts';
import type { HopCredentials } from '../outbound/connectors/types.ts';
import { UsageError } from './errors.ts';

const SCHEMES: Record<string, UpstreamType> = {
  'socks5:': 'socks5',
  'socks5h:': 'socks5',
  'socks4:': 'socks4',
  'socks4a:': 'socks4a',
  'http:': 'http',
};

export interface ViaHop {
  readonly upstream: Upstream;
  readonly credentials: HopCredentials | undefined;
}

export function parseVia(text: string, index: number): ViaHop {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--via ${text}: not a URL; write it like socks5://user:pass@host:1080 or http://host:3128`,
    );
  }
  const type = SCHEMES[url.protocol];
  if (!type) {
    throw new UsageError(
      `--via ${text}: unknown scheme ${url.protocol} (use socks5, socks5h, socks4, socks4a or http)`,
    );
  }
  const port = Number(url.port || (type === 'http' ? 8080 : 1080));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (!host) throw new UsageError(`--via ${text}: the host is missing`);
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (password && (type === 'socks4' || type === 'socks4a')) {
    throw new UsageError(`--via ${text}: SOCKS4 has no passwords; use socks5:// or http://`);
  }
  const id = `via${index + 1}`;
  return {
    upstream: {
      id,
      name: `${type}://${host.includes(':') ? `[${host}]` : host}:${port}`,
      type,
      host,
      port,
      ...(username ? { username } : {}),
    },
    credentials: username ? { username, password } : undefined,
  };
}

export const VIA_ROUTE_ID = 'via';

/** The config with the --via chain as an extra route and the default target. */
export function applyVia(config: Config, hops: readonly ViaHop[]): Config {
  if (hops.length === 0) return config;
  return {
    ...config,
    upstreams: [...config.upstreams, ...hops.map((h) => h.upstream)],
    routes: [
      ...config.routes,
      { id: VIA_ROUTE_ID, name: '--via', hops: hops.map((h) => h.upstream.id), onFirstHopDown: 'fail' },
    ],
    rules: [],
    defaultTarget: { kind: 'route', routeId: VIA_ROUTE_ID },
  };
}
