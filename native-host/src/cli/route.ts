import type { Config } from '../../../shared/config/schema.ts';
import { loadConfig } from '../config/store.ts';
import { type Address, addressOf, formatAddress } from '../protocol/address.ts';
import { type RouteDecision, Router, upstreamLabel } from '../policy/router.ts';
import { UsageError } from './errors.ts';

/** `HOST`, `HOST:PORT`, `[V6]:PORT` or a URL (`https://example.com/x` -> example.com:443). */
export function parseTarget(text: string, defaultPort = 443): { host: string; port: number } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const url = new URL(text);
    const scheme = url.protocol.slice(0, -1);
    const known: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return { host, port: url.port ? Number(url.port) : (known[scheme] ?? defaultPort) };
  }
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  const parts = text.split(':');
  if (parts.length === 2) {
    const port = Number(parts[1]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new UsageError(`${text}: the port must be 1-65535`);
    return { host: parts[0]!, port };
  }
  if (parts.length > 2) return { host: text, port: defaultPort };
  if (!text) throw new UsageError('give a host, host:port or URL');
  return { host: text, port: defaultPort };
}

export interface RouteExplanation {
  readonly destination: Address;
  readonly decision: RouteDecision;
  /** One line for people: `rule corp -> route corp (gw > abroad)`. */
  readonly description: string;
  /** What `switchyard route` prints, line by line. */
  readonly lines: readonly string[];
}

/** Which rule, route and hops `target` takes under `config`; the CLI and the service share it. */
export function explainRoute(
  config: Pick<Config, 'rules' | 'defaultTarget' | 'routes' | 'upstreams'>,
  target: string,
): RouteExplanation {
  const { host, port } = parseTarget(target);
  const router = new Router(config);
  const decision = router.decide(host, port);
  const destination = addressOf(host, port);
  const description = router.describe(decision);
  const lines = [`${formatAddress(destination)}: ${description}`];
  decision.hops.forEach((hop, i) => {
    const auth = hop.username ? ` as ${hop.username}` : '';
    lines.push(`  hop ${i + 1}: ${upstreamLabel(hop)} ${hop.type}://${formatAddress(hop)}${auth}`);
  });
  if (decision.route && decision.route.onFirstHopDown !== 'fail') {
    const f = decision.route.onFirstHopDown;
    lines.push(`  if hop 1 is down: ${f === 'direct' ? 'go direct' : `use route ${f.route}`}`);
  }
  return { destination, decision, description, lines };
}

export async function routeCommand(target: string, options: { config: string }): Promise<void> {
  const { config } = await loadConfig(options.config);
  process.stdout.write(`${explainRoute(config, target).lines.join('\n')}\n`);
}
