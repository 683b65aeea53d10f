import type { Route } from '../../../shared/config/schema.ts';
import { loadConfig } from '../config/store.ts';
import { envCredentials } from '../credentials/credentials.ts';
import { ChainOutbound } from '../outbound/chain.ts';
import { addressOf, formatAddress } from '../protocol/address.ts';
import { upstreamLabel } from '../policy/router.ts';
import { UsageError } from './errors.ts';
import { parseTarget } from './route.ts';

/**
 * `switchyard check UPSTREAM|ROUTE --target HOST:PORT`: walks the chain hop by hop to the
 * target and reports each hop's result and time. Exit status 1 when a hop fails.
 */
export async function checkCommand(name: string, options: { config: string; target: string }): Promise<void> {
  const { config } = await loadConfig(options.config);
  const upstreams = new Map(config.upstreams.map((u) => [u.id, u]));
  let route: Route | undefined = config.routes.find((r) => r.id === name || r.name === name);
  if (!route) {
    const upstream = config.upstreams.find((u) => u.id === name || u.name === name);
    if (upstream) route = { id: `check-${upstream.id}`, hops: [upstream.id], onFirstHopDown: 'fail' };
  }
  if (!route) {
    const known = [
      ...config.routes.map((r) => `route ${r.id}`),
      ...config.upstreams.map((u) => `upstream ${u.id}`),
    ];
    throw new UsageError(
      `no route or upstream named '${name}' in ${options.config}${known.length ? ` (known: ${known.join(', ')})` : ' (it defines none)'}`,
    );
  }
  const target = parseTarget(options.target);
  const chain = new ChainOutbound({
    route,
    upstreams,
    credentials: envCredentials(),
    timeouts: {
      connectMs: config.timeouts.connectMs,
      hopHandshakeMs: config.timeouts.hopHandshakeMs,
      bindMs: config.timeouts.bindMs,
    },
    resolve: { hosts: config.hosts },
  });
  const destination = addressOf(target.host, target.port);
  process.stdout.write(`checking ${chain.label} to ${formatAddress(destination)}\n`);
  const reports = await chain.check(destination, new AbortController().signal);
  for (const r of reports) {
    const upstream = upstreams.get(route.hops[r.hop - 1] ?? '');
    const where = upstream ? ` ${upstream.type}://${formatAddress(upstream)}` : '';
    const name = upstream ? upstreamLabel(upstream) : r.name;
    process.stdout.write(
      `  hop ${r.hop} ${name}${where}: ${r.ok ? 'ok' : 'FAILED'} ${r.ms} ms${r.error ? ` - ${r.error}` : ''}\n`,
    );
  }
  const failed = reports.some((r) => !r.ok);
  process.stdout.write(failed ? 'result: failed\n' : `result: ok, reached ${formatAddress(destination)}\n`);
  if (failed) process.exitCode = 1;
}
