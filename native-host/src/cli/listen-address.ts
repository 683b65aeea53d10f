import { isIP } from 'node:net';
import type { Endpoint } from '../outbound/outbound.ts';
import { UsageError } from './errors.ts';

/** Parses `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` for --listen. */
export function parseListen(text: string, defaultHost: string): Endpoint {
  let host = defaultHost;
  let portText = text;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else if (text.includes(':')) {
    const at = text.lastIndexOf(':');
    if (text.indexOf(':') !== at)
      throw new UsageError(`--listen ${text}: write IPv6 addresses in brackets, e.g. [::1]:1080`);
    host = text.slice(0, at) || defaultHost;
    portText = text.slice(at + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new UsageError(`--listen ${text}: the port must be a number from 0 to 65535 (0 picks a free port)`);
  }
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  const lower = host.toLowerCase();
  return lower === '::1' || lower.startsWith('::ffff:127.');
}
