/**
 * `switchyard status | log | reload | stop`: the running service's operations from a terminal,
 * over the same control endpoint and protocol the extension uses.
 */
import type { StatusResult } from '../../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import {
  type ControlClient,
  RequestFailedError,
  ServiceNotRunningError,
  connectControl,
} from '../control/client.ts';
import { controlPaths } from '../control/paths.ts';

export const NOT_RUNNING_MESSAGE = 'no switchyard service is running; start one with `switchyard serve`';

export interface ServiceCommandOptions {
  config: string;
  json?: boolean;
}

function fail(message: string): void {
  process.stderr.write(`switchyard: ${message}\n`);
  process.exitCode = 1;
}

/** Runs `task` against the service for `config`; says so plainly when none runs. */
async function withService(
  options: ServiceCommandOptions,
  task: (client: ControlClient) => Promise<void>,
): Promise<void> {
  let client: ControlClient;
  try {
    client = await connectControl(controlPaths(options.config).endpoint);
  } catch (error) {
    if (error instanceof ServiceNotRunningError) return fail(NOT_RUNNING_MESSAGE);
    throw error;
  }
  try {
    await client.request('hello', { client: 'cli' }, { timeoutMs: 20_000 });
    await task(client);
  } catch (error) {
    if (!(error instanceof RequestFailedError)) throw error;
    const issues = error.issues?.map((i) => `\n  - ${i.path}: ${i.message}`).join('') ?? '';
    fail(
      error.code === 'INVALID_CONFIG' && issues
        ? `the config is not valid; nothing changed:${issues}`
        : error.message,
    );
  } finally {
    client.close();
  }
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = h > 0 ? [`${h}h`, `${m}m`] : m > 0 ? [`${m}m`] : [];
  return [...parts, `${s % 60}s`].join(' ');
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatStatus(s: StatusResult): string {
  const by = s.startedBy === 'bridge' ? 'the browser' : 'switchyard serve';
  return [
    `switchyard is running (pid ${s.pid}, started by ${by})`,
    `  listening:      ${s.listening}`,
    `  enabled:        ${s.enabled ? 'yes' : 'no (the browser leaves its proxy setting alone)'}`,
    `  active tunnels: ${s.activeTunnels}`,
    `  traffic:        ${bytes(s.bytesUp)} up, ${bytes(s.bytesDown)} down (tunnels closed so far)`,
    `  uptime:         ${duration(s.uptimeMs)}`,
    `  config:         ${s.configPath}`,
    '',
  ].join('\n');
}

export function formatEvent(e: TunnelEvent): string {
  const parts = [
    new Date(e.time).toISOString(),
    e.kind.padEnd(6),
    `#${e.id}`,
    `${e.client}${e.user ? ` (${e.user})` : ''}`,
    '->',
    e.dest,
    e.cmd !== 'connect' ? e.cmd : '',
    e.rule ? `rule=${e.rule}` : '',
    e.via ? `via=${JSON.stringify(e.via)}` : '',
    e.result ? `result=${JSON.stringify(e.result)}` : '',
    e.hop !== undefined ? `hop=${e.hop}` : '',
    e.error ? `error=${JSON.stringify(e.error)}` : '',
    e.up !== undefined ? `up=${e.up}` : '',
    e.down !== undefined ? `down=${e.down}` : '',
    e.ms !== undefined ? `ms=${e.ms}` : '',
  ];
  return parts.filter(Boolean).join(' ');
}

export async function statusCommand(options: ServiceCommandOptions): Promise<void> {
  await withService(options, async (client) => {
    const status = await client.request('status', {});
    process.stdout.write(options.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
  });
}

/** The newest `limit` events, oldest first, paging as far back as needed. */
async function lastEvents(client: ControlClient, limit: number): Promise<TunnelEvent[]> {
  const out: TunnelEvent[] = [];
  let before: number | undefined;
  while (out.length < limit) {
    const page = await client.request('log.page', {
      ...(before !== undefined ? { before } : {}),
      limit: Math.min(1000, limit - out.length),
    });
    out.unshift(...page.events);
    const first = page.events[0];
    if (!page.more || first === undefined) break;
    before = first.seq;
  }
  return out;
}

export async function logCommand(
  options: ServiceCommandOptions & { follow?: boolean; limit?: number },
): Promise<void> {
  const print = (e: TunnelEvent): void => {
    process.stdout.write(`${options.json ? JSON.stringify(e) : formatEvent(e)}\n`);
  };
  await withService(options, async (client) => {
    // Subscribe before paging, so nothing falls between the page and the first live event.
    const live: TunnelEvent[] = [];
    let shown = 0;
    let paging = true;
    if (options.follow) {
      client.onEvent((event) => {
        if (event.event !== 'log') return;
        for (const e of event.data.events) {
          if (paging) live.push(e);
          else if (e.seq > shown) {
            shown = e.seq;
            print(e);
          }
        }
        if (event.data.dropped) {
          process.stderr.write(
            `switchyard: ${event.data.dropped} log events were skipped (too far behind)\n`,
          );
        }
      });
      await client.request('log.subscribe', {});
    }
    for (const e of await lastEvents(client, options.limit ?? 50)) {
      shown = e.seq;
      print(e);
    }
    paging = false;
    for (const e of live) {
      if (e.seq > shown) {
        shown = e.seq;
        print(e);
      }
    }
    if (!options.follow) return;
    await new Promise<void>((resolve) => {
      client.onClose(resolve);
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  });
}

export async function reloadCommand(options: ServiceCommandOptions): Promise<void> {
  await withService(options, async (client) => {
    const { revision } = await client.request('service.reload', {});
    process.stdout.write(`config reloaded (revision ${revision}); new connections use it\n`);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function stopCommand(options: ServiceCommandOptions): Promise<void> {
  await withService(options, async (client) => {
    const { pid } = await client.request('service.stop', {});
    // Open tunnels get the config's grace period; then the process is gone for real.
    const deadline = Date.now() + 30_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) return fail(`the service (pid ${pid}) is still shutting down`);
    process.stdout.write(`switchyard stopped (pid ${pid})\n`);
  });
}
