/**
 * The browser's proxy setting. On: a PAC script from shared/pac, made from the very rules the
 * host routes with, so `direct` rules skip the local hop and everything else goes to the host
 * as SOCKS5 (names unresolved, so DNS happens at the exit). Off: the setting is cleared and the
 * browser's own proxy settings return.
 *
 * `proxyPlan` decides (pure); `ProxyControl` talks to chrome.proxy.settings through whatever
 * setting object it is given, one change at a time, and skips a change already in force.
 */
import { generatePac } from '../../shared/pac/generate.ts';
import type { ProxyControl as ProxyControlLevel } from '../shared/ui-protocol.ts';
import type { BackgroundState } from './state.ts';

/** The host's default listen address, for when it has never told us its own. */
const DEFAULT_ENDPOINT = { host: '127.0.0.1', port: 1080 } as const;

export type ProxyPlan =
  | { readonly kind: 'pac'; readonly pac: string }
  | { readonly kind: 'clear' }
  /** Not enough known yet (no config from the host): leave whatever is in force. */
  | { readonly kind: 'keep' }
  | { readonly kind: 'invalid'; readonly message: string };

export function proxyPlan(state: BackgroundState): ProxyPlan {
  if (!state.enabled) return { kind: 'clear' };
  const { config } = state;
  const fallback = state.settings.failMode === 'fallback-direct' ? 'direct' : 'fail-closed';
  if (config === undefined) {
    // Turned on while the host cannot tell us its rules: everything to where it listens (or
    // will), so nothing leaks around it; the real rules replace this once it answers.
    if (state.pendingToggle === true) {
      const proxy = state.endpoint ?? DEFAULT_ENDPOINT;
      return {
        kind: 'pac',
        pac: generatePac({ rules: [], defaultTarget: { kind: 'block' }, proxy, fallback }),
      };
    }
    // Chrome keeps the last PAC across worker and browser restarts, so until the host has
    // answered, the one in force (fail-closed or not, as it was made) is the right one to keep.
    return { kind: 'keep' };
  }
  const endpoint = state.endpoint;
  if (endpoint === undefined) return { kind: 'keep' };
  try {
    const pac = generatePac({
      rules: config.rules,
      defaultTarget: config.defaultTarget,
      proxy: endpoint,
      fallback,
    });
    return { kind: 'pac', pac };
  } catch (error) {
    return { kind: 'invalid', message: error instanceof Error ? error.message : String(error) };
  }
}

/** chrome.proxy.settings, or browser.proxy.settings through the polyfill (which passes it through). */
export interface SettingApi {
  get(details: { incognito?: boolean }): Promise<{ levelOfControl: string; value: unknown }>;
  set(details: { value: unknown; scope?: 'regular' }): Promise<void>;
  clear(details: { scope?: 'regular' }): Promise<void>;
}

export function pacSettingValue(pac: string): unknown {
  // mandatory: a script that cannot run must fail the request, not fall back to DIRECT.
  return { mode: 'pac_script', pacScript: { data: pac, mandatory: true } };
}

const LEVELS: readonly ProxyControlLevel[] = [
  'controlled_by_this_extension',
  'controllable_by_this_extension',
  'controlled_by_other_extensions',
  'not_controllable',
];

export function levelOf(value: unknown): ProxyControlLevel {
  return (LEVELS as readonly unknown[]).includes(value) ? (value as ProxyControlLevel) : 'unknown';
}

export type ApplyOutcome =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'applied'; readonly level: ProxyControlLevel }
  | { readonly kind: 'failed'; readonly message: string };

export class ProxySetting {
  private readonly api: SettingApi;
  /** What this worker last put in force: the PAC text, or 'clear'. Unknown after a restart. */
  private inForce: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(api: SettingApi) {
    this.api = api;
  }

  async level(): Promise<ProxyControlLevel> {
    try {
      return levelOf((await this.api.get({ incognito: false })).levelOfControl);
    } catch {
      return 'unknown';
    }
  }

  /** Applies plans in order; a plan equal to the one in force costs nothing. */
  apply(plan: ProxyPlan, force = false): Promise<ApplyOutcome> {
    const run = this.queue.then(() => this.applyNow(plan, force));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(plan: ProxyPlan, force: boolean): Promise<ApplyOutcome> {
    if (plan.kind === 'keep') return { kind: 'unchanged' };
    if (plan.kind === 'invalid') return { kind: 'failed', message: plan.message };
    const key = plan.kind === 'pac' ? plan.pac : 'clear';
    if (!force && key === this.inForce) return { kind: 'unchanged' };
    try {
      if (plan.kind === 'pac') await this.api.set({ value: pacSettingValue(plan.pac), scope: 'regular' });
      else await this.api.clear({ scope: 'regular' });
    } catch (error) {
      this.inForce = undefined;
      return { kind: 'failed', message: error instanceof Error ? error.message : String(error) };
    }
    this.inForce = key;
    return { kind: 'applied', level: await this.level() };
  }
}

/** Chrome's proxy.onProxyError payload (Firefox has proxy.onError with an Error instead). */
export interface ProxyErrorDetails {
  readonly fatal?: boolean;
  readonly error?: string;
  readonly details?: string;
  readonly message?: string;
}
