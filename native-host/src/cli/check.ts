import type { Config, Route, Upstream } from '../../../shared/config/schema.ts';
import { loadConfig } from '../config/store.ts';
import type { CredentialSource } from '../credentials/credentials.ts';
import { type CredentialStore, openCredentialStore, storeCredentialSource } from '../credentials/store.ts';
import { ChainOutbound, type HopReport } from '../outbound/chain.ts';
import { type Address, addressOf, formatAddress } from '../protocol/address.ts';
import { upstreamLabel } from '../policy/router.ts';
import { credentialStoreOptions } from './credential.ts';
import { UsageError } from './errors.ts';
import { parseTarget } from './route.ts';

/** The route `name` names, or a one-hop route through the upstream it names. */
export function findCheckRoute(config: Config, name: string): Route | undefined {
  const route = config.routes.find((r) => r.id === name || r.name === name);
  if (route) return route;
  const upstream = config.upstreams.find((u) => u.id === name || u.name === name);
  return upstream ? { id: `check-${upstream.id}`, hops: [upstream.id], onFirstHopDown: 'fail' } : undefined;
}

/** `(known: route a, upstream b)`, for a name that matched nothing. */
export function knownCheckNames(config: Config): string {
  const known = [
    ...config.routes.map((r) => `route ${r.id}`),
    ...config.upstreams.map((u) => `upstream ${u.id}`),
  ];
  return known.length ? `(known: ${known.join(', ')})` : '(it defines none)';
}

export interface CheckOutcome {
  readonly label: string;
  readonly destination: Address;
  readonly reports: readonly HopReport[];
  /** The upstream of each report, by its position in the route. */
  readonly upstreamOf: (report: HopReport) => Upstream | undefined;
  readonly failed: boolean;
}

/**
 * Walks `route` hop by hop to `target`, timing each hop; the CLI and the service share it.
 * `onStart` runs once the chain is built, before anything is dialled.
 */
export async function runCheck(
  config: Config,
  route: Route,
  target: string,
  credentials: CredentialSource,
  signal: AbortSignal,
  onStart?: (label: string, destination: Address) => void,
): Promise<CheckOutcome> {
  const upstreams = new Map(config.upstreams.map((u) => [u.id, u]));
  const parsed = parseTarget(target);
  const chain = new ChainOutbound({
    route,
    upstreams,
    credentials,
    timeouts: {
      connectMs: config.timeouts.connectMs,
      hopHandshakeMs: config.timeouts.hopHandshakeMs,
      bindMs: config.timeouts.bindMs,
    },
    resolve: { hosts: config.hosts },
  });
  const destination = addressOf(parsed.host, parsed.port);
  onStart?.(chain.label, destination);
  const reports = await chain.check(destination, signal);
  return {
    label: chain.label,
    destination,
    reports,
    upstreamOf: (r) => upstreams.get(route.hops[r.hop - 1] ?? ''),
    failed: reports.some((r) => !r.ok),
  };
}

/**
 * The passwords `serve` would use with this config file: the same store, opened only once a hop
 * needs a password (a check through hops without users never touches the keyring).
 */
function savedCredentials(configFile: string): CredentialSource {
  const options = credentialStoreOptions(configFile);
  let store: Promise<CredentialStore> | undefined;
  return async (upstream) => {
    store ??= openCredentialStore(options);
    return storeCredentialSource(await store)(upstream);
  };
}

/**
 * `switchyard check UPSTREAM|ROUTE --target HOST:PORT`: walks the chain hop by hop to the
 * target and reports each hop's result and time. Exit status 1 when a hop fails.
 */
export async function checkCommand(name: string, options: { config: string; target: string }): Promise<void> {
  const { config } = await loadConfig(options.config);
  const route = findCheckRoute(config, name);
  if (!route) {
    throw new UsageError(
      `no route or upstream named '${name}' in ${options.config} ${knownCheckNames(config)}`,
    );
  }
  const outcome = await runCheck(
    config,
    route,
    options.target,
    savedCredentials(options.config),
    new AbortController().signal,
    (label, destination) => process.stdout.write(`checking ${label} to ${formatAddress(destination)}\n`),
  );
  for (const r of outcome.reports) {
    const upstream = outcome.upstreamOf(r);
    const where = upstream ? ` ${upstream.type}://${formatAddress(upstream)}` : '';
    const name = upstream ? upstreamLabel(upstream) : r.name;
    process.stdout.write(
      `  hop ${r.hop} ${name}${where}: ${r.ok ? 'ok' : 'FAILED'} ${r.ms} ms${r.error ? ` - ${r.error}` : ''}\n`,
    );
  }
  const { destination } = outcome;
  process.stdout.write(
    outcome.failed ? 'result: failed\n' : `result: ok, reached ${formatAddress(destination)}\n`,
  );
  if (outcome.failed) process.exitCode = 1;
}
