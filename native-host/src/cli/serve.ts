import { type Config, validateConfig } from '../../../shared/config/schema.ts';
import { serverSettingsFrom } from '../config/settings.ts';
import { ConfigError, loadConfig } from '../config/store.ts';
import { type CredentialSource, envCredentials } from '../credentials/credentials.ts';
import { type LogFormat, type LogLevel, type Logger, createLogger } from '../log/logger.ts';
import { UpstreamHealth } from '../outbound/upstream-health.ts';
import { buildPolicy } from '../policy/dispatcher.ts';
import { formatAddress } from '../protocol/address.ts';
import { SocksServer } from '../server/socks-server.ts';
import { UsageError } from './errors.ts';
import { isLoopback, parseListen } from './listen-address.ts';
import { type ViaHop, applyVia, parseVia } from './via.ts';

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
  via?: string[];
}

/** Command-line flags win over the file, for this run only. */
export function applyOverrides(config: Config, options: ServeOptions, via: readonly ViaHop[] = []): Config {
  const merged = applyFlags(config, options);
  const result = validateConfig(applyVia(merged, via));
  if (!result.ok) throw new ConfigError(options.config, result.issues);
  return result.config;
}

function applyFlags(config: Config, options: ServeOptions): Config {
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

/** Upstream passwords: from --via URLs for those hops, else from the variable the config names. */
function credentialSource(via: readonly ViaHop[]): CredentialSource {
  const fromEnv = envCredentials();
  const fromVia = new Map(via.map((h) => [h.upstream.id, h.credentials]));
  return async (upstream) => (fromVia.has(upstream.id) ? fromVia.get(upstream.id) : fromEnv(upstream));
}

export interface Runtime {
  readonly settings: ReturnType<typeof serverSettingsFrom>;
  readonly dispatch: ReturnType<typeof buildPolicy>['dispatch'];
}

export function buildRuntime(
  config: Config,
  credentials: CredentialSource,
  logger: Logger,
  health: UpstreamHealth,
): Runtime {
  const policy = buildPolicy({
    config,
    credentials,
    logger,
    health,
    ownerUid: process.getuid?.(),
    listenIsLoopback: isLoopback(config.listen.host),
  });
  return { settings: serverSettingsFrom(config), dispatch: policy.dispatch };
}

export async function serve(options: ServeOptions): Promise<void> {
  const via = (options.via ?? []).map((url, i) => parseVia(url, i));
  const loaded = await loadConfig(options.config);
  let config = applyOverrides(loaded.config, options, via);
  checkOpenProxy(config);
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  if (via.some((h) => h.credentials?.password)) {
    logger.warn(
      'a password was given on the command line with --via: other local users can read it in the process list',
    );
  }
  const credentials = credentialSource(via);
  const health = new UpstreamHealth({ retryMs: config.timeouts.upstreamRetryMs });
  const runtime = buildRuntime(config, credentials, logger, health);
  const server = new SocksServer({ settings: runtime.settings, dispatch: runtime.dispatch, logger });
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
      const next = applyOverrides((await loadConfig(options.config)).config, options, via);
      checkOpenProxy(next);
      // The listener stays where it is; everything else applies to new connections.
      const fresh = buildRuntime({ ...next, listen: config.listen }, credentials, logger, health);
      server.reconfigure(fresh.settings, fresh.dispatch);
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
