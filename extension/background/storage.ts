/**
 * What the worker must remember across service-worker restarts, in storage.local (never sync,
 * never a secret): the browser-side settings, the last known toggle and proxy address (so the
 * badge is right before the host answers), and a toggle the host has not heard of yet.
 * Passwords go from a page straight through the port to the host's credential store; nothing
 * here has a field that could hold one, and `parseRemembered` keeps only known fields.
 */
import { type BrowserSettings, DEFAULT_BROWSER_SETTINGS } from '../shared/ui-protocol.ts';
import type { ProxyEndpoint, Remembered } from './state.ts';

export const STORAGE_KEY = 'switchyard.background';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Known fields with valid values from `input`, the rest left out; never throws. */
export function parseSettings(
  input: unknown,
  base: BrowserSettings = DEFAULT_BROWSER_SETTINGS,
): BrowserSettings {
  if (!isRecord(input)) return base;
  const failMode =
    input.failMode === 'fail-closed' || input.failMode === 'fallback-direct' ? input.failMode : base.failMode;
  const toolbarClick =
    input.toolbarClick === 'popup' || input.toolbarClick === 'toggle'
      ? input.toolbarClick
      : base.toolbarClick;
  const webrtcProtection =
    typeof input.webrtcProtection === 'boolean' ? input.webrtcProtection : base.webrtcProtection;
  return { failMode, toolbarClick, webrtcProtection };
}

function parseEndpoint(input: unknown): ProxyEndpoint | undefined {
  if (!isRecord(input) || typeof input.host !== 'string' || typeof input.port !== 'number') return undefined;
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) return undefined;
  return { host: input.host, port: input.port };
}

export function parseRemembered(input: unknown): Remembered {
  const r = isRecord(input) ? input : {};
  const endpoint = parseEndpoint(r.endpoint);
  return {
    settings: parseSettings(r.settings),
    enabled: r.enabled === true,
    ...(endpoint ? { endpoint } : {}),
    ...(typeof r.pendingToggle === 'boolean' ? { pendingToggle: r.pendingToggle } : {}),
  };
}

/** storage.local as the polyfill types it, narrowed to what is used. */
export interface StorageArea {
  get(keys: string): Promise<Record<string, unknown>>;
  set(items: Record<string, unknown>): Promise<void>;
}

export async function loadRemembered(area: StorageArea): Promise<Remembered> {
  try {
    return parseRemembered((await area.get(STORAGE_KEY))[STORAGE_KEY]);
  } catch {
    return parseRemembered(undefined);
  }
}

export class RememberedStore {
  private readonly area: StorageArea;
  private last: string | undefined;

  constructor(area: StorageArea) {
    this.area = area;
  }

  /** Writes only when something changed: the state changes far more often than this does. */
  async save(remembered: Remembered): Promise<void> {
    const text = JSON.stringify(remembered);
    if (text === this.last) return;
    this.last = text;
    await this.area.set({ [STORAGE_KEY]: remembered });
  }
}
