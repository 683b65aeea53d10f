import { fdLimitWarning, openFileLimit } from './fd-limit.ts';
import { ownerCheckSupported } from '../policy/client-identity.ts';
import { ownerLookupStatus } from '../policy/sockdiag.ts';
import { resolve as resolvePath } from 'node:path';
import { type Config, validateConfig } from '../../../shared/config/schema.ts';
import { defaultConfigPath } from '../config/paths.ts';
import { ConfigError, loadConfig } from '../config/store.ts';
import { createControlServer } from '../control/handlers.ts';
import { ControlPathError, controlPaths } from '../control/paths.ts';
import { type LogFormat, type LogLevel, createLogger } from '../log/logger.ts';
import type { Endpoint } from '../outbound/outbound.ts';
import { formatAddress } from '../protocol/address.ts';
import { idleExitMs, startIdleExit } from '../service/idle-exit.ts';
import { Service } from '../service/service.ts';
import { alreadyRunningMessage, claimEndpoint } from '../service/single-instance.ts';
import { UsageError } from './errors.ts';
import { isLoopback, parseListen } from './listen-address.ts';
import { type ViaHop, applyVia, parseVia } from './via.ts';

// Moved to the service, which rebuilds the runtime on every config change; kept importable here.
export { buildRuntime, type Runtime } from '../service/service.ts';

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
  /** Set by the native-messaging bridge: the service then ends by itself when idle. */
  startedByBridge?: boolean;
  /** How long a bridge-started service waits, idle, before it ends (tests shorten it). */
  idleExitMs?: number;
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

export async function serve(options: ServeOptions, version = '0.0.0-dev'): Promise<void> {
  const via = (options.via ?? []).map((url, i) => parseVia(url, i));
  // SWITCHYARD_OWNER_LOOKUP=netlink without the addon (or a value it does not know) is refused
  // before anything listens, rather than quietly scanning /proc.
  const ownerLookup = ownerCheckSupported() ? ownerLookupStatus() : undefined;
  if (ownerLookup?.error !== undefined) throw new UsageError(ownerLookup.error);
  const loaded = await loadConfig(options.config);
  const derive = (file: Config): Config => {
    const next = applyOverrides(file, options, via);
    checkOpenProxy(next);
    return next;
  };
  const config = derive(loaded.config);
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  if (via.some((h) => h.credentials?.password)) {
    logger.warn(
      'a password was given on the command line with --via: other local users can read it in the process list',
    );
  }
  const startedBy = options.startedByBridge ? 'bridge' : 'user';
  const service = Service.create(
    {
      configPath: options.config,
      logger,
      version,
      startedBy,
      derive,
      viaCredentials: new Map(via.map((h) => [h.upstream.id, h.credentials])),
    },
    loaded,
  );

  const paths = controlPaths(options.config);
  const control = createControlServer(service, { endpoint: paths.endpoint, logger });
  let claim: Awaited<ReturnType<typeof claimEndpoint>>;
  try {
    claim = await claimEndpoint(control, paths);
  } catch (error) {
    if (error instanceof ControlPathError) throw new UsageError(error.message);
    throw error;
  }
  if (claim.kind === 'running') {
    const stop = `switchyard stop${isDefaultConfig(options.config) ? '' : ` --config ${options.config}`}`;
    process.stderr.write(`switchyard: ${alreadyRunningMessage(claim.status, stop)}\n`);
    process.exitCode = 1;
    return;
  }

  let address: Endpoint;
  try {
    address = await service.listen();
  } catch (error) {
    await control.close();
    throw error;
  }
  const protocols = [config.listen.socks4 ? 'SOCKS4/4a' : '', config.listen.socks5 ? 'SOCKS5' : '']
    .filter(Boolean)
    .join(', ');
  const announce = (): void => {
    // The address goes to stdout (scripts read it; port 0 picks one); everything else is log.
    process.stdout.write(`switchyard listening on ${formatAddress(address)}\n`);
    logger.info('listening', {
      address: formatAddress(address),
      protocols,
      auth: config.users.length > 0 ? 'username/password' : 'none',
      config: loaded.exists ? options.config : `${options.config} (not found; defaults)`,
      control: paths.endpoint,
      started_by: startedBy,
      // How the owner check finds a client's socket (undefined off Linux: it cannot).
      owner_check: ownerLookup?.description,
    });
    const fdWarning = fdLimitWarning(config.limits.maxConnections, openFileLimit());
    if (fdWarning) logger.warn(fdWarning);
    // The scan works, but costs a read of every TCP socket on the machine per batch of lookups.
    if (ownerLookup?.fallback) logger.warn(`owner check: ${ownerLookup.description}`);
    if (config.localClients === 'owner' && !ownerCheckSupported()) {
      logger.warn(
        'localClients is "owner", but this platform cannot tell which local user runs a client: ' +
          'every local client is allowed. Add inbound users (switchyard user add) to keep others out.',
      );
    }
  };

  const reload = async (): Promise<void> => {
    try {
      await service.reload();
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      logger.error('config reload rejected; the previous config stays active', { error: text });
    }
  };

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (reason: string): void => {
      if (stopping) {
        logger.warn('second signal; exiting now', { signal: reason });
        process.exit(130);
      }
      stopping = true;
      idle?.stop();
      logger.info('shutting down', { signal: reason });
      Promise.all([control.close(), service.close()]).then(() => resolve(), resolve);
    };
    const idle = options.startedByBridge
      ? startIdleExit(
          { controlClients: () => control.connectionCount, activeTunnels: () => service.activeTunnels },
          idleExitMs(options.idleExitMs),
          () => stop('idle: no browser connected and no tunnels open'),
        )
      : undefined;
    void service.stopRequested.then((reason) => {
      if (!stopping) stop(reason);
    });
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => void reload());
    // Only once the signals are handled: a script that reads the address and at once sends
    // SIGTERM must get a clean shutdown, not the default action (death without a log line).
    announce();
  });
  logger.info('stopped');
}

function isDefaultConfig(file: string): boolean {
  return resolvePath(file) === resolvePath(defaultConfigPath());
}
