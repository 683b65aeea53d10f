/**
 * Debian's Chromium, headless, with unpacked extensions, through playwright-core: the flags and
 * the pitfalls are the ones docs/browser-testing.md found to work (never `playwright install`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BrowserContext, type Worker, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Hosts the sites under test answer for; Chromium resolves them to loopback by itself. */
export const TEST_HOSTS = ['proxied.test', 'direct.test'] as const;

/** The id Chromium gives an unpacked extension whose manifest has a "key": sha256 of it, a-p. */
export function extensionIdOf(extensionDir: string): string {
  const manifest = JSON.parse(readFileSync(join(extensionDir, 'manifest.json'), 'utf8')) as { key?: string };
  if (!manifest.key) throw new Error(`${extensionDir}/manifest.json has no "key"`);
  const hex = createHash('sha256').update(Buffer.from(manifest.key, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + Number.parseInt(c, 16))).join('');
}

export interface LaunchOptions {
  readonly userDataDir: string;
  /** Absolute paths of unpacked extensions, in install order (the last one installed wins settings). */
  readonly extensions: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

export function launchChromium(options: LaunchOptions): Promise<BrowserContext> {
  const list = options.extensions.join(',');
  return chromium.launchPersistentContext(options.userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    env: options.env,
    viewport: { width: 1000, height: 800 },
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--disable-extensions-except=${list}`,
      `--load-extension=${list}`,
      `--host-resolver-rules=${TEST_HOSTS.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`,
    ],
  });
}

/** The extension's service worker, waiting for it when it has not started yet. */
export async function serviceWorkerOf(
  context: BrowserContext,
  extensionId: string,
  timeoutMs = 10_000,
): Promise<Worker> {
  const prefix = `chrome-extension://${extensionId}/`;
  const found = context.serviceWorkers().find((w) => w.url().startsWith(prefix));
  if (found) return found;
  return context.waitForEvent('serviceworker', {
    predicate: (w) => w.url().startsWith(prefix),
    timeout: timeoutMs,
  });
}

/** Any extension's service worker other than the ones listed (the fixture, whose id is not fixed). */
export async function otherServiceWorker(
  context: BrowserContext,
  exclude: readonly string[],
  timeoutMs = 10_000,
): Promise<Worker> {
  const isOther = (w: Worker) =>
    w.url().startsWith('chrome-extension://') &&
    !exclude.some((id) => w.url().startsWith(`chrome-extension://${id}/`));
  const found = context.serviceWorkers().find(isOther);
  if (found) return found;
  return context.waitForEvent('serviceworker', { predicate: isOther, timeout: timeoutMs });
}

/** Polls `probe` until it returns something other than undefined; the last value goes in the error. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
