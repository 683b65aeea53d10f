// Wording shared by the popup and the options page, so a route or target reads the same in both.
import type { Config, Route, Upstream } from '../../shared/config/schema.ts';
import type { RuleTarget } from '../../shared/rules/types.ts';

export function routeLabel(route: Pick<Route, 'id' | 'name'>): string {
  return route.name ?? route.id;
}

export function upstreamLabel(upstream: Pick<Upstream, 'id' | 'name'>): string {
  return upstream.name ?? upstream.id;
}

export function targetLabel(target: RuleTarget, config: Pick<Config, 'routes'> | undefined): string {
  switch (target.kind) {
    case 'direct':
      return 'Direct';
    case 'block':
      return 'Block';
    case 'route': {
      const route = config?.routes.find((r) => r.id === target.routeId);
      return route ? `via ${routeLabel(route)}` : `via ${target.routeId} (no such route)`;
    }
  }
}

/** Select values for a target: 'direct', 'block' or 'route:<id>'. */
export function targetKey(target: RuleTarget): string {
  return target.kind === 'route' ? `route:${target.routeId}` : target.kind;
}

export function targetFromKey(key: string): RuleTarget {
  if (key === 'direct' || key === 'block') return { kind: key };
  return { kind: 'route', routeId: key.slice('route:'.length) };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The port of 'host:port' or '[v6]:port'. */
export function portOf(listening: string): string {
  const colon = listening.lastIndexOf(':');
  return colon === -1 ? listening : listening.slice(colon + 1);
}

export function formatTime(time: number): string {
  const d = new Date(time);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** 'https://www.example.com:8443/x' -> 'www.example.com'; null for pages no proxy carries. */
export function siteHostOf(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol)) return null;
  const host = parsed.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host || null;
}
