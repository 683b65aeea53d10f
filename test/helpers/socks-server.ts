/** Starts the real SOCKS server in-process on a free loopback port, with captured logs. */
import { CONFIG_VERSION, configSchema } from '../../shared/config/schema.ts';
import type { InboundUser } from '../../native-host/src/auth/users.ts';
import type { CredentialSource } from '../../native-host/src/credentials/credentials.ts';
import { createLogger, silentLogger } from '../../native-host/src/log/logger.ts';
import type { ResolvedAddress } from '../../native-host/src/outbound/resolve.ts';
import { buildPolicy } from '../../native-host/src/policy/dispatcher.ts';
import { SocksServer } from '../../native-host/src/server/socks-server.ts';
import type { Dispatcher, Limits, ServerSettings, Timeouts } from '../../native-host/src/server/types.ts';
import { waitFor } from './wait.ts';

export interface TestServerOptions {
  host?: string;
  users?: InboundUser[];
  socks4?: boolean;
  socks5?: boolean;
  socks4AllowFrom?: string[];
  timeouts?: Partial<Timeouts>;
  limits?: Partial<Limits>;
  dispatch?: Dispatcher;
}

export interface TestServer {
  readonly server: SocksServer;
  readonly port: number;
  readonly host: string;
  /** Every log line written so far. */
  readonly logs: string[];
  close(): Promise<void>;
}

export function testSettings(options: TestServerOptions = {}): ServerSettings {
  return {
    listen: { host: options.host ?? '127.0.0.1', port: 0 },
    protocols: { socks4: options.socks4 ?? true, socks5: options.socks5 ?? true },
    users: options.users ?? [],
    socks4AllowFrom: options.socks4AllowFrom ?? [],
    timeouts: {
      handshakeMs: 5_000,
      idleMs: 0,
      connectMs: 3_000,
      bindMs: 5_000,
      udpIdleMs: 5_000,
      shutdownGraceMs: 0,
      ...options.timeouts,
    },
    limits: { maxConnections: 1000, maxUdpDestinations: 64, ...options.limits },
  };
}

export async function startSocksServer(options: TestServerOptions = {}): Promise<TestServer> {
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', sink: { write: (line: string) => logs.push(line) } });
  const server = new SocksServer({
    settings: testSettings(options),
    logger,
    ...(options.dispatch ? { dispatch: options.dispatch } : {}),
  });
  const address = await server.listen();
  return { server, port: address.port, host: address.host, logs, close: () => server.close(0) };
}

/** Waits for a log line that contains every one of `parts`, and returns it. */
export async function waitForLog(server: TestServer, ...parts: string[]): Promise<string> {
  await waitFor(() => server.logs.some((l) => parts.every((p) => l.includes(p))), parts.join(' '));
  return server.logs.find((l) => parts.every((p) => l.includes(p)))!;
}

export interface PolicyServer extends TestServer {
  /** Names this server's resolver was asked for. */
  readonly lookups: string[];
}

export interface PolicyServerOptions {
  /** All that the resolver knows: name to IPv4 address. Any other name is ENOTFOUND. */
  names?: Record<string, string>;
  credentials?: CredentialSource;
  server?: TestServerOptions;
}

/** Our server with the real policy layer built from `config` (direct exit, routes, access). */
export async function startPolicyServer(
  config: Record<string, unknown>,
  options: PolicyServerOptions = {},
): Promise<PolicyServer> {
  const lookups: string[] = [];
  const names = options.names ?? {};
  const lookup = async (host: string): Promise<ResolvedAddress[]> => {
    lookups.push(host);
    if (Object.hasOwn(names, host)) return [{ address: names[host]!, family: 4 }];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
  const policy = buildPolicy({
    config: configSchema.parse({ version: CONFIG_VERSION, ...config }),
    credentials: options.credentials ?? (async () => undefined),
    logger: silentLogger,
    listenIsLoopback: true,
    lookup,
  });
  const server = await startSocksServer({ ...options.server, dispatch: policy.dispatch });
  return Object.assign(server, { lookups });
}
