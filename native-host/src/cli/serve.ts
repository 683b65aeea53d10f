import type { Config } from '../../../shared/config/schema.ts';
import { serverSettingsFrom } from '../config/settings.ts';
import { ConfigError, loadConfig } from '../config/store.ts';
import { type LogFormat, type LogLevel, createLogger } from '../log/logger.ts';
import { formatAddress } from '../protocol/address.ts';
import { SocksServer } from '../server/socks-server.ts';
import { UsageError } from './errors.ts';
import { isLoopback, parseListen } from './listen-address.ts';

export interface ServeOptions {
  config: string;
  listen?: string;
  allowOpenProxy?: boolean;
  quiet?: boolean;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  handshakeTimeout?: number;
  idleTimeout?: number;
  connectTimeout?: number;
  maxConnections?: number;
}

/** Command-line flags win over the file, for this run only. */
export function applyOverrides(config: Config, options: ServeOptions): Config {
  const listen = options.listen ? parseListen(options.listen, config.listen.host) : config.listen;
  return {
    ...config,
    listen: { ...config.listen, host: listen.host, port: listen.port },
    allowOpenProxy: options.allowOpenProxy || config.allowOpenProxy,
    timeouts: {
      ...config.timeouts,
      handshakeMs: options.handshakeTimeout ?? config.timeouts.handshakeMs,
      idleMs: options.idleTimeout ?? config.timeouts.idleMs,
      connectMs: options.connectTimeout ?? config.timeouts.connectMs,
    },
    limits: { ...config.limits, maxConnections: options.maxConnections ?? config.limits.maxConnections },
    log: {
      level: options.logLevel ?? (options.quiet ? 'warn' : config.log.level),
      format: options.logFormat ?? config.log.format,
    },
  };
}

export function checkOpenProxy(config: Config): void {
  if (isLoopback(config.listen.host) || config.users.length > 0 || config.allowOpenProxy) return;
  throw new UsageError(
    `refusing to listen on ${config.listen.host} without inbound users: anyone who can reach this ` +
      'address could use the proxy (an open proxy), and through it reach your local network.\n' +
      'Add a user (switchyard user add NAME --password-stdin), listen on 127.0.0.1, ' +
      'or pass --allow-open-proxy if this is really what you want.',
  );
}

export async function serve(options: ServeOptions): Promise<void> {
  const loaded = await loadConfig(options.config);
  let config = applyOverrides(loaded.config, options);
  checkOpenProxy(config);
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  const server = new SocksServer({ settings: serverSettingsFrom(config), logger });
  let address: ReturnType<SocksServer['address']>;
  try {
    address = await server.listen();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new UsageError(
        `${formatAddress(config.listen)} is already in use. Stop the program using it, or pick another port with --listen ${config.listen.host}:PORT (0 picks a free one).`,
      );
    }
    if (code === 'EACCES') {
      throw new UsageError(
        `not allowed to listen on ${formatAddress(config.listen)}: ports below 1024 need privileges; use a higher port.`,
      );
    }
    throw error;
  }
  const protocols = [config.listen.socks4 ? 'SOCKS4/4a' : '', config.listen.socks5 ? 'SOCKS5' : '']
    .filter(Boolean)
    .join(', ');
  // The address goes to stdout (scripts read it; port 0 picks one); everything else is log.
  process.stdout.write(`switchyard listening on ${formatAddress(address)}\n`);
  logger.info('listening', {
    address: formatAddress(address),
    protocols,
    auth: config.users.length > 0 ? 'username/password' : 'none',
    config: loaded.exists ? options.config : `${options.config} (not found; defaults)`,
  });

  const reload = async (): Promise<void> => {
    try {
      const next = applyOverrides((await loadConfig(options.config)).config, options);
      checkOpenProxy(next);
      server.reconfigure(serverSettingsFrom({ ...next, listen: config.listen }));
      config = next;
      logger.info('config reloaded; new connections use it, open tunnels keep running', {
        config: options.config,
      });
    } catch (error) {
      const text =
        error instanceof ConfigError || error instanceof UsageError ? error.message : String(error);
      logger.error('config reload rejected; the previous config stays active', { error: text });
    }
  };

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        logger.warn('second signal; exiting now', { signal });
        process.exit(130);
      }
      stopping = true;
      logger.info('shutting down', { signal });
      server.close().then(resolve, resolve);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => void reload());
  });
  logger.info('stopped');
}
