/** Starts the real SOCKS server in-process on a free loopback port, with captured logs. */
import type { InboundUser } from '../../native-host/src/auth/users.ts';
import { createLogger } from '../../native-host/src/log/logger.ts';
import { SocksServer } from '../../native-host/src/server/socks-server.ts';
import type { Dispatcher, Limits, ServerSettings, Timeouts } from '../../native-host/src/server/types.ts';

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
