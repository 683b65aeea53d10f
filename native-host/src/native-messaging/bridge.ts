/**
 * `switchyard native-host`: what the browser starts. It reads native-messaging frames from
 * stdin, checks each one, forwards it to the per-user service's control endpoint (starting the
 * service when none runs) and writes the replies and events back as frames. It holds no state
 * of its own: the browser may start and kill it at will, the service carries on.
 *
 * stdout carries frames and nothing else; the bridge's own log goes to stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import {
  type HostMessage,
  PROTOCOL_VERSION,
  type ProtocolError,
  errorResponse,
  isEvent,
} from '../../../shared/messages/protocol.ts';
import { type IncomingRequest, parseRequest } from '../../../shared/messages/schema.ts';
import {
  ConnectionLostError,
  type ControlClient,
  ServiceNotRunningError,
  connectControl,
} from '../control/client.ts';
import { type ControlPaths, controlPaths, ensurePrivateDir } from '../control/paths.ts';
import { type Logger, createLogger } from '../log/logger.ts';
import { FrameDecoder, FramingError, encodeFrame } from './framing.ts';
import { withServiceFlags } from '../service/node-flags.ts';

/** How long to wait for a service the bridge started to answer on its endpoint. */
export const SERVICE_START_TIMEOUT_MS = 5_000;

/** Who started us, from the arguments the browser passes. */
export interface Caller {
  readonly browser: 'chrome' | 'firefox' | 'unknown';
  /** Chromium: `chrome-extension://<id>/`; Firefox: the extension id. */
  readonly origin: string | undefined;
  /** Firefox: the path of the host manifest it read. */
  readonly manifest: string | undefined;
}

/** Chromium passes the caller's origin; Firefox the manifest path and the extension id. */
export function callerFrom(args: readonly string[]): Caller {
  const [first, second] = args;
  if (first?.startsWith('chrome-extension://'))
    return { browser: 'chrome', origin: first, manifest: undefined };
  if (first !== undefined && second !== undefined)
    return { browser: 'firefox', origin: second, manifest: first };
  return { browser: 'unknown', origin: first, manifest: undefined };
}

export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError';
}

export interface BridgeOptions {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly logger: Logger;
  readonly paths: ControlPaths;
  /** Starts `serve --started-by-bridge` in the background. */
  readonly startService: () => ChildProcess;
  readonly startTimeoutMs?: number;
  /** Called once stdin has ended and what was sent to the service is on its way. */
  readonly onEnd: () => void;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The end of the service's log, to say why it did not come up. */
function logTail(file: string): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    const lines = text.split('\n').slice(-3).join(' | ');
    return lines ? ` (its log, ${file}: ${lines})` : '';
  } catch {
    return '';
  }
}

export class Bridge {
  private readonly options: BridgeOptions;
  private readonly decoder = new FrameDecoder();
  private connecting: Promise<ControlClient> | undefined;
  private client: ControlClient | undefined;
  private ending = false;

  constructor(options: BridgeOptions) {
    this.options = options;
  }

  start(): void {
    const { stdin } = this.options;
    stdin.on('data', (chunk: Buffer) => {
      for (const result of this.decoder.push(chunk)) {
        if (result.kind === 'error') this.rejectFrame(result.error);
        else this.receive(result.message);
      }
    });
    stdin.once('end', () => void this.end());
    stdin.once('close', () => void this.end());
    stdin.on('error', () => void this.end());
    this.options.stdout.on('error', () => void this.end());
  }

  private async end(): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    // A request forwarded just before EOF (say, a config change) should still arrive.
    await this.client?.shutdown(100);
    this.options.onEnd();
  }

  private rejectFrame(error: FramingError): void {
    if (error.code === 'TRUNCATED') return;
    this.options.logger.warn('bad frame from the browser', { code: error.code, error: error.message });
    const code = error.code === 'FRAME_TOO_LARGE' ? 'TOO_LARGE' : 'BAD_MESSAGE';
    this.write(errorResponse(null, { code, message: error.message }));
  }

  private receive(message: unknown): void {
    const parsed = parseRequest(message);
    if (!parsed.ok) {
      this.write(errorResponse(parsed.id, parsed.error));
      return;
    }
    void this.forward(parsed.request);
  }

  private async forward(request: IncomingRequest): Promise<void> {
    try {
      const client = await this.connected();
      this.write(await client.forward(request));
    } catch (error) {
      if (this.ending) return;
      const failure: ProtocolError =
        error instanceof ServiceUnavailableError || error instanceof ConnectionLostError
          ? { code: 'UNAVAILABLE', message: error.message }
          : { code: 'FAILED', message: error instanceof Error ? error.message : String(error) };
      this.write(errorResponse(request.id, failure));
    }
  }

  /** The control connection, made (and the service started) on first need. */
  private connected(): Promise<ControlClient> {
    this.connecting ??= this.connect().then(
      (client) => {
        this.client = client;
        client.onEvent((event) => this.write(event));
        client.onClose(() => {
          this.client = undefined;
          this.connecting = undefined;
          if (!this.ending)
            this.write({ v: PROTOCOL_VERSION, event: 'service', data: { state: 'disconnected' } });
        });
        return client;
      },
      (error: unknown) => {
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }

  private async connect(): Promise<ControlClient> {
    const { paths, logger } = this.options;
    try {
      return await connectControl(paths.endpoint);
    } catch (error) {
      if (!(error instanceof ServiceNotRunningError)) throw error;
    }
    try {
      await ensurePrivateDir(paths.dir);
    } catch (error) {
      throw new ServiceUnavailableError(`cannot start the switchyard service: ${(error as Error).message}`);
    }
    logger.info('no switchyard service is running; starting one', { endpoint: paths.endpoint });
    const child = this.options.startService();
    let exited: number | string | undefined;
    child.once('exit', (code, signal) => {
      exited = code ?? signal ?? 'unknown';
    });
    child.once('error', (error) => {
      exited = error.message;
    });
    const deadline = Date.now() + (this.options.startTimeoutMs ?? SERVICE_START_TIMEOUT_MS);
    // Another bridge may have started one at the same moment: ours then exits (code 1) and the
    // other answers, so keep trying the endpoint until the deadline either way.
    for (;;) {
      try {
        return await connectControl(paths.endpoint, { timeoutMs: Math.max(100, deadline - Date.now()) });
      } catch (error) {
        if (!(error instanceof ServiceNotRunningError)) throw error;
      }
      if (Date.now() > deadline || (exited !== undefined && exited !== 1)) {
        const why = exited !== undefined ? `it exited (${exited})` : 'it did not answer in time';
        throw new ServiceUnavailableError(
          `could not start the switchyard service: ${why}${logTail(paths.serviceLog)}`,
        );
      }
      await delay(50);
    }
  }

  /** A frame to the browser; something over the size limit becomes an error reply instead. */
  private write(message: HostMessage): void {
    if (this.ending) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(message);
    } catch (error) {
      const text = error instanceof FramingError ? error.message : String(error);
      if (isEvent(message)) {
        this.options.logger.warn('an event was too large for native messaging; dropped', {
          event: message.event,
          error: text,
        });
        return;
      }
      frame = encodeFrame(errorResponse(message.id, { code: 'TOO_LARGE', message: text }));
    }
    this.options.stdout.write(frame);
  }
}

/** Spawns `<this program> serve --started-by-bridge`, detached, its output to `logFile`. */
export function spawnService(logFile: string): ChildProcess {
  const script = process.argv[1];
  if (script === undefined) throw new ServiceUnavailableError('cannot tell which program to start');
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(
      process.execPath,
      [...withServiceFlags(process.execArgv), script, 'serve', '--started-by-bridge'],
      {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: process.env,
      },
    );
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

export async function nativeHostCommand(first?: string, second?: string): Promise<void> {
  // Anything printed to stdout would corrupt the frame stream: send stray console output away.
  console.log = console.info = console.debug = (...args: unknown[]) => console.error(...args);
  const logger = createLogger({ level: 'info' });
  const caller = callerFrom([first, second].filter((a): a is string => a !== undefined));
  logger.info('native host started', {
    browser: caller.browser,
    origin: caller.origin,
    manifest: caller.manifest,
  });
  const paths = controlPaths();
  await new Promise<void>((resolve) => {
    const bridge = new Bridge({
      stdin: process.stdin,
      stdout: process.stdout,
      logger,
      paths,
      startService: () => spawnService(paths.serviceLog),
      onEnd: resolve,
    });
    bridge.start();
  });
  // The browser closed stdin: it is gone, and nothing else keeps this process useful.
  process.exit(0);
}
