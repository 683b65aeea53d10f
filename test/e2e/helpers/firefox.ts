/**
 * Debian's Firefox ESR, headless, through puppeteer-core over WebDriver BiDi, with the
 * extension as a temporary add-on (docs/browser-testing.md, "Firefox specifics"):
 * - HOME is the test's, so Firefox finds the host manifest under $HOME/.mozilla;
 * - the extension's moz-extension:// UUID is pinned by a pref, so its pages have known URLs;
 * - BiDi cannot navigate to moz-extension:// pages: the extension opens its popup page itself
 *   when installed temporarily, and `extensionPage` finds that tab by its location.
 */
import type { ChildProcess } from 'node:child_process';
import { type Browser, type Page, launch } from 'puppeteer-core';
import { GECKO_EXTENSION_ID } from '../../../shared/messages/native-host.ts';
import { waitFor } from './chromium.ts';

export const FIREFOX = '/usr/bin/firefox-esr';

/** The moz-extension:// host the extension gets, fixed by extensions.webextensions.uuids. */
export const EXTENSION_UUID = '5b1c8f0e-7a2d-4c3b-9e61-2f4d8a9c0b17';
export const EXTENSION_ORIGIN = `moz-extension://${EXTENSION_UUID}/`;

export interface FirefoxOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Names Firefox resolves to 127.0.0.1 by itself (network.dns.localDomains); no others. */
  readonly localDomains: readonly string[];
}

export interface LaunchedFirefox {
  readonly browser: Browser;
  /** Firefox's stderr so far, for failure messages. */
  stderr(): string;
  /** Closes the browser; kills its PID if it does not close in time. */
  close(): Promise<void>;
}

export async function launchFirefox(options: FirefoxOptions): Promise<LaunchedFirefox> {
  const browser = await launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    env: options.env,
    extraPrefsFirefox: {
      'extensions.webextensions.uuids': JSON.stringify({ [GECKO_EXTENSION_ID]: EXTENSION_UUID }),
      'network.dns.localDomains': options.localDomains.join(','),
      // No DNS over HTTPS, no speculative connections or prefetching: only what the test asks
      // for goes out, and names are only ever resolved by the system or the proxy.
      'network.trr.mode': 5,
      'network.dns.disablePrefetch': true,
      'network.http.speculative-parallel-limit': 0,
      'network.prefetch-next': false,
      'browser.safebrowsing.malware.enabled': false,
      'browser.safebrowsing.phishing.enabled': false,
    },
  });
  let stderr = '';
  const child: ChildProcess | null = browser.process();
  child?.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return {
    browser,
    stderr: () => stderr,
    close: async () => {
      const pid = child?.pid;
      const timer = setTimeout(() => {
        if (pid !== undefined && child?.exitCode === null) process.kill(pid, 'SIGKILL');
      }, 10_000);
      try {
        await browser.close();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The first tab showing `prefix` (Puppeteer's page.url() stays about:blank for extension pages). */
export function pageAt(browser: Browser, prefix: string, timeoutMs = 10_000): Promise<Page> {
  return waitFor(
    `a tab at ${prefix}`,
    async () => {
      for (const page of await browser.pages()) {
        const href = await page
          .evaluate(() => (globalThis as unknown as { location: { href: string } }).location.href)
          .catch(() => '');
        if (href.startsWith(prefix)) return page;
      }
      return undefined;
    },
    timeoutMs,
    100,
  );
}
