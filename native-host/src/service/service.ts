/**
 * The per-user service: it owns the config file, the running SOCKS server, the credential
 * store and the live log, and every change to any of them goes through here, whether it comes
 * from the extension, the CLI or a SIGHUP. A config change is validated by the shared schema,
 * saved atomically, and only then applied, so the file and the running server never disagree.
 */
import { dirname } from 'node:path';
import type { Config, Upstream } from '../../../shared/config/schema.ts';
import { validateConfig } from '../../../shared/config/schema.ts';
import {
  CONFIG_PART_CHARS,
  type CheckResult,
  type ConfigChangeResult,
  type ConfigPartResult,
  type ConfigResult,
  type ErrorCode,
  type HopInfo,
  type RouteResult,
  type StatusResult,
} from '../../../shared/messages/protocol.ts';
import { CodedError } from '../../../shared/messages/requests.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import { findCheckRoute, knownCheckNames, runCheck } from '../cli/check.ts';
import { UsageError } from '../cli/errors.ts';
import { isLoopback } from '../cli/listen-address.ts';
import { explainRoute } from '../cli/route.ts';
import { serverSettingsFrom } from '../config/settings.ts';
import { ConfigError, type LoadedConfig, loadConfig, saveConfig } from '../config/store.ts';
import type { CredentialSource } from '../credentials/credentials.ts';
import {
  type CredentialStore,
  credentialStorePreference,
  openCredentialStore,
  storeCredentialSource,
} from '../credentials/store.ts';
import type { Logger } from '../log/logger.ts';
import type { HopCredentials } from '../outbound/connectors/types.ts';
import type { Endpoint } from '../outbound/outbound.ts';
import { UpstreamHealth } from '../outbound/upstream-health.ts';
import { buildPolicy } from '../policy/dispatcher.ts';
import { routeLabel } from '../policy/router.ts';
import { formatAddress } from '../protocol/address.ts';
import { SocksServer } from '../server/socks-server.ts';
import { LogBuffer } from './log-buffer.ts';
import { type IdleCollector, startIdleCollector } from './idle-collector.ts';

/** A failure a control client should see as such, with the protocol's error code. */
export class ServiceError extends CodedError<ErrorCode> {
  override readonly name = 'ServiceError';
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

/** The messages `serve` has always given for a port it cannot take. */
export function listenError(error: unknown, listen: { host: string; port: number }): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new UsageError(
      `${formatAddress(listen)} is already in use. Stop the program using it, or pick another port with --listen ${listen.host}:PORT (0 picks a free one).`,
    );
  }
  if (code === 'EACCES') {
    return new UsageError(
      `not allowed to listen on ${formatAddress(listen)}: ports below 1024 need privileges; use a higher port.`,
    );
  }
  return error;
}

export type StartedBy = 'user' | 'bridge';

export interface ServiceOptions {
  readonly configPath: string;
  readonly logger: Logger;
  readonly version: string;
  readonly startedBy: StartedBy;
  /**
   * The running config from the file's: `serve`'s command-line overrides, for this run only
   * (never saved). May throw ConfigError or UsageError. The file's config as is by default.
   */
  readonly derive?: (file: Config) => Config;
  /** Passwords given with --via, by upstream id: they win over every store. */
  readonly viaCredentials?: ReadonlyMap<string, HopCredentials | undefined>;
  /** Tests pass their own; otherwise the store next to the config is opened on first use. */
  readonly credentials?: CredentialStore;
  readonly logCapacity?: number;
}

export interface ConfigChange {
  readonly revision: number;
  readonly enabled: boolean;
}

/** `listen.port`-style issues from a ConfigError or a UsageError raised while deriving. */
function configFailure(error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  if (error instanceof ConfigError) {
    return new ServiceError(
      'INVALID_CONFIG',
      `the config is not valid: ${error.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      error.issues,
    );
  }
  if (error instanceof UsageError) {
    return new ServiceError('INVALID_CONFIG', error.message, [{ path: 'listen', message: error.message }]);
  }
  return new ServiceError('FAILED', error instanceof Error ? error.message : String(error));
}

function hopInfo(upstream: Upstream): HopInfo {
  return {
    id: upstream.id,
    name: upstream.name ?? upstream.id,
    type: upstream.type,
    host: upstream.host,
    port: upstream.port,
    ...(upstream.username ? { username: upstream.username } : {}),
  };
}

export class Service {
  readonly configPath: string;
  readonly startedBy: StartedBy;
  readonly version: string;
  readonly log: LogBuffer;
  /** False when the config file did not exist at start and defaults were used. */
  readonly fileExisted: boolean;
  private readonly logger: Logger;
  private readonly derive: (file: Config) => Config;
  private readonly via: ReadonlyMap<string, HopCredentials | undefined>;
  private readonly health: UpstreamHealth;
  private readonly credentialSource: CredentialSource;
  private store: Promise<CredentialStore> | undefined;
  private server: SocksServer;
  private listeningOn: Endpoint | undefined;
  /** Servers left behind by a listen change, finishing their tunnels. */
  private readonly retiring = new Set<SocksServer>();
  private collector: IdleCollector | undefined;
  /** config.get's answer as text, for config.part; made at offset 0 of each reading. */
  private partText: { readonly revision: number; readonly text: string } | undefined;
  private file: Config;
  private running: Config;
  private rev = 1;
  private readonly startedAt = Date.now();
  private bytesUp = 0;
  private bytesDown = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly changeListeners = new Set<(change: ConfigChange) => void>();
  private stopResolve: (reason: string) => void = () => undefined;
  /** Resolves when a control client asks the service to stop. */
  readonly stopRequested: Promise<string>;

  private constructor(options: ServiceOptions, file: Config, fileExisted: boolean) {
    this.configPath = options.configPath;
    this.startedBy = options.startedBy;
    this.version = options.version;
    this.logger = options.logger;
    this.derive = options.derive ?? ((c) => c);
    this.via = options.viaCredentials ?? new Map();
    this.log = new LogBuffer(options.logCapacity);
    this.fileExisted = fileExisted;
    if (options.credentials) this.store = Promise.resolve(options.credentials);
    this.file = file;
    this.running = this.derive(file);
    this.health = new UpstreamHealth({ retryMs: this.running.timeouts.upstreamRetryMs });
    this.credentialSource = async (upstream) => {
      if (this.via.has(upstream.id)) return this.via.get(upstream.id);
      return storeCredentialSource(await this.credentialStore())(upstream);
    };
    this.server = this.newServer(this.running);
    this.stopRequested = new Promise((resolve) => {
      this.stopResolve = resolve;
    });
  }

  /** Loads the config (a ConfigError names every bad field) and prepares, without listening. */
  static async load(options: ServiceOptions): Promise<Service> {
    return Service.create(options, await loadConfig(options.configPath));
  }

  /** For a caller that read the config already; `derive` may throw ConfigError or UsageError. */
  static create(options: ServiceOptions, loaded: LoadedConfig): Service {
    return new Service(options, loaded.config, loaded.exists);
  }

  /** The config as saved in the file. */
  get fileConfig(): Config {
    return this.file;
  }

  /** The config in force: the file's plus this run's command-line overrides. */
  get config(): Config {
    return this.running;
  }

  get revision(): number {
    return this.rev;
  }

  get activeTunnels(): number {
    let n = this.server.activeConnections;
    for (const s of this.retiring) n += s.activeConnections;
    return n;
  }

  /** Starts the SOCKS listener; errors read as `serve`'s always have. */
  async listen(): Promise<Endpoint> {
    try {
      this.listeningOn = await this.server.listen();
      // Arrivals and departures both leave garbage: a mass close is followed by a collection too.
      this.collector ??= startIdleCollector({ activity: () => this.server.accepted + this.server.departed });
      return this.listeningOn;
    } catch (error) {
      throw listenError(error, this.running.listen);
    }
  }

  /** Where the SOCKS server listens (or last listened, while it shuts down). */
  address(): Endpoint {
    if (this.listeningOn === undefined) throw new Error('the SOCKS server is not listening yet');
    return this.listeningOn;
  }

  onConfigChange(listener: (change: ConfigChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  status(controlClients: number): StatusResult {
    return {
      listening: formatAddress(this.address()),
      enabled: this.file.enabled,
      activeTunnels: this.activeTunnels,
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      uptimeMs: Date.now() - this.startedAt,
      startedBy: this.startedBy,
      pid: process.pid,
      configPath: this.configPath,
      controlClients,
    };
  }

  credentialStore(): Promise<CredentialStore> {
    this.store ??= openCredentialStore({
      configDir: dirname(this.configPath),
      prefer: credentialStorePreference(),
    }).catch((error: unknown) => {
      // Not cached: the next use tries again (a keyring may be unlocked by then).
      this.store = undefined;
      throw error;
    });
    return this.store;
  }

  async configResult(): Promise<ConfigResult> {
    return { config: this.file, passwordSaved: await this.passwordSaved(), revision: this.rev };
  }

  /**
   * config.get's answer as JSON text, a part at a time (protocol.ts, ConfigPartRequest). The
   * text is made once per revision, at offset 0, so that every part comes from the same one.
   */
  async configPart(offset: number, revision: number | undefined): Promise<ConfigPartResult> {
    if (revision !== undefined && revision !== this.rev) {
      throw new ServiceError(
        'CHANGED',
        `the config changed (revision ${revision} is now ${this.rev}) while it was read in parts; read it again from offset 0`,
      );
    }
    if (offset === 0 || this.partText?.revision !== this.rev) {
      const result = await this.configResult();
      this.partText = { revision: result.revision, text: JSON.stringify(result) };
    }
    const { text } = this.partText;
    if (offset > text.length) {
      throw new ServiceError(
        'BAD_MESSAGE',
        `offset ${offset} is past the end of the config (${text.length})`,
      );
    }
    let end = Math.min(text.length, offset + CONFIG_PART_CHARS);
    // Never half a surrogate pair: each part must be valid text on its own.
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    return { revision: this.partText.revision, offset, total: text.length, text: text.slice(offset, end) };
  }

  async passwordSaved(): Promise<Record<string, boolean>> {
    const store = await this.credentialStore();
    const out: Record<string, boolean> = {};
    for (const u of this.file.upstreams) out[u.id] = await store.has(u.id);
    return out;
  }

  /** Validates, saves and applies a whole new config; on any failure nothing changes. */
  replaceConfig(input: unknown, source = 'control'): Promise<ConfigChangeResult> {
    return this.serialize(async () => {
      const result = validateConfig(input);
      if (!result.ok) {
        throw new ServiceError(
          'INVALID_CONFIG',
          `the config is not valid: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
          result.issues,
        );
      }
      await this.commit(result.config, { save: true, source });
      return { revision: this.rev, passwordSaved: await this.passwordSaved() };
    });
  }

  /** Replaces the named top-level fields, each as a whole, and then as replaceConfig. */
  patchConfig(patch: Readonly<Record<string, unknown>>): Promise<ConfigChangeResult> {
    return this.replaceConfig({ ...this.file, ...patch }, 'patch');
  }

  async setEnabled(enabled: boolean): Promise<boolean> {
    await this.replaceConfig({ ...this.file, enabled }, 'toggle');
    return this.file.enabled;
  }

  /** Re-reads the file (after a hand edit); an invalid file leaves everything as it was. */
  reload(): Promise<number> {
    return this.serialize(async () => {
      let next: Config;
      try {
        next = (await loadConfig(this.configPath)).config;
      } catch (error) {
        throw configFailure(error);
      }
      await this.commit(next, { save: false, source: 'reload' });
      return this.rev;
    });
  }

  async setCredential(upstreamId: string, password: string): Promise<void> {
    this.requireUpstream(upstreamId);
    await (await this.credentialStore()).set(upstreamId, password);
    this.logger.info('credential saved', { upstream: upstreamId });
  }

  async deleteCredential(upstreamId: string): Promise<boolean> {
    // Deleting needs no upstream in the config: a removed upstream may have left a password behind.
    const deleted = await (await this.credentialStore()).delete(upstreamId);
    if (deleted) this.logger.info('credential deleted', { upstream: upstreamId });
    return deleted;
  }

  route(target: string): RouteResult {
    let explained: ReturnType<typeof explainRoute>;
    try {
      explained = explainRoute(this.running, target);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new ServiceError('BAD_MESSAGE', `target: ${message}`, [{ path: 'target', message }]);
    }
    const { decision } = explained;
    const route = decision.route;
    const upstreams = new Map(this.running.upstreams.map((u) => [u.id, u]));
    const failover = route?.onFirstHopDown;
    return {
      destination: formatAddress(explained.destination),
      rule: decision.ruleLabel,
      ...(decision.ruleId !== undefined ? { ruleId: decision.ruleId } : {}),
      target: decision.target,
      ...(route
        ? { route: { id: route.id, name: route.name ?? route.id, label: routeLabel(route, upstreams) } }
        : {}),
      hops: decision.hops.map(hopInfo),
      ...(failover !== undefined && failover !== 'fail' ? { onFirstHopDown: failover } : {}),
      description: explained.description,
    };
  }

  async check(name: string, target: string, signal: AbortSignal): Promise<CheckResult> {
    const config = this.running;
    const route = findCheckRoute(config, name);
    if (!route) {
      throw new ServiceError('NOT_FOUND', `no route or upstream named '${name}' ${knownCheckNames(config)}`);
    }
    let outcome: Awaited<ReturnType<typeof runCheck>>;
    try {
      outcome = await runCheck(config, route, target, this.credentialSource, signal);
    } catch (error) {
      if (error instanceof UsageError || error instanceof TypeError) {
        throw new ServiceError('BAD_MESSAGE', `target: ${error.message}`, [
          { path: 'target', message: error.message },
        ]);
      }
      throw error;
    }
    return {
      label: outcome.label,
      destination: formatAddress(outcome.destination),
      hops: outcome.reports.map((r) => {
        const upstream = outcome.upstreamOf(r);
        return {
          hop: r.hop,
          name: r.name,
          ok: r.ok,
          ms: r.ms,
          ...(r.error !== undefined ? { error: r.error } : {}),
          ...(upstream ? { upstream: hopInfo(upstream) } : {}),
        };
      }),
      ok: !outcome.failed,
    };
  }

  requestStop(reason: string): void {
    this.stopResolve(reason);
  }

  /** Stops accepting and lets tunnels finish for the grace period (0 cuts them at once). */
  async close(graceMs?: number): Promise<void> {
    this.collector?.stop();
    await Promise.all([this.server.close(graceMs), ...[...this.retiring].map((s) => s.close(graceMs))]);
  }

  private requireUpstream(upstreamId: string): Upstream {
    const upstream = this.file.upstreams.find((u) => u.id === upstreamId);
    if (!upstream) {
      const known = this.file.upstreams.map((u) => u.id);
      throw new ServiceError(
        'NOT_FOUND',
        `no upstream has the id '${upstreamId}' (${known.length ? `known: ${known.join(', ')}` : 'the config defines none'})`,
      );
    }
    return upstream;
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private newServer(config: Config): SocksServer {
    const runtime = buildRuntime(config, this.credentialSource, this.logger, this.health);
    return new SocksServer({
      settings: runtime.settings,
      dispatch: runtime.dispatch,
      logger: this.logger,
      events: (event) => this.record(event),
    });
  }

  private record(event: Omit<TunnelEvent, 'seq'>): void {
    if (event.kind === 'closed') {
      this.bytesUp += event.up ?? 0;
      this.bytesDown += event.down ?? 0;
    }
    this.log.append(event);
  }

  private async commit(next: Config, how: { save: boolean; source: string }): Promise<void> {
    let running: Config;
    try {
      running = this.derive(next);
    } catch (error) {
      throw configFailure(error);
    }
    const before = this.running.listen;
    const moved = running.listen.host !== before.host || running.listen.port !== before.port;
    let fresh: SocksServer | undefined;
    if (moved) {
      // Listen on the new address before anything else changes, so a taken port changes nothing.
      fresh = this.newServer(running);
      try {
        await fresh.listen();
      } catch (error) {
        const reason = listenError(error, running.listen);
        const text = reason instanceof Error ? reason.message : String(reason);
        throw new ServiceError('FAILED', `cannot move the listener: ${text} Nothing was changed.`);
      }
    }
    if (how.save) {
      try {
        await saveConfig(this.configPath, next);
      } catch (error) {
        await fresh?.close(0);
        if (error instanceof ConfigError) throw configFailure(error);
        throw new ServiceError(
          'FAILED',
          `cannot save ${this.configPath}: ${(error as Error).message}. Nothing was changed.`,
        );
      }
    }
    if (fresh) {
      const old = this.server;
      this.server = fresh;
      this.listeningOn = fresh.address();
      this.retiring.add(old);
      // Open tunnels on the old address run on for the grace period; new clients use the new one.
      void old.close().finally(() => this.retiring.delete(old));
      this.logger.info('listening on a new address', { address: formatAddress(fresh.address()) });
    } else {
      const runtime = buildRuntime(running, this.credentialSource, this.logger, this.health);
      this.server.reconfigure(runtime.settings, runtime.dispatch);
    }
    this.file = next;
    this.running = running;
    this.rev += 1;
    this.logger.info(
      how.source === 'reload'
        ? 'config reloaded; new connections use it, open tunnels keep running'
        : 'config changed; new connections use it, open tunnels keep running',
      { config: this.configPath, source: how.source, revision: this.rev },
    );
    const change = { revision: this.rev, enabled: next.enabled };
    for (const listener of this.changeListeners) listener(change);
  }
}
