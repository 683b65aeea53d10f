import { fileURLToPath } from 'node:url';
import { type ManifestV3Export, crx } from '@crxjs/vite-plugin';
import { defineConfig } from 'vite';
import { GECKO_EXTENSION_ID } from '../shared/messages/native-host.ts';
import manifest from '../manifest.json' with { type: 'json' };

// The same sources as vite.config.ts, built for Firefox into dist/extension-firefox.

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

type Manifest = typeof manifest;

/**
 * manifest.json as Firefox wants it:
 * - an event page (`background.scripts`), since Firefox has no extension service workers;
 * - no `key` (Chromium's id; Firefox warns about it) but `browser_specific_settings.gecko.id`,
 *   which the host manifest's allowed_extensions names;
 * - `contextualIdentities` and `cookies` for container rules (the picker lists containers, and
 *   a tab is opened in one with its cookieStoreId);
 * - `<all_urls>`: in MV3 proxy.onRequest only sees requests to hosts it has permission for;
 * - `options_ui` instead of Chrome's `options_page`, opened in a tab as on Chrome.
 */
export function firefoxManifest(base: Manifest): Record<string, unknown> {
  const { key: _key, background, options_page, permissions, browser_specific_settings, ...rest } = base;
  return {
    ...rest,
    permissions: [...permissions, 'contextualIdentities', 'cookies'],
    host_permissions: ['<all_urls>'],
    background: { scripts: [background.service_worker], type: background.type },
    options_ui: { page: options_page, open_in_tab: true },
    browser_specific_settings: {
      ...browser_specific_settings,
      gecko: {
        ...browser_specific_settings.gecko,
        id: GECKO_EXTENSION_ID,
        // MV3 with proxy.onRequest and event pages as used here; data_collection_permissions
        // is read from 140 on, and earlier versions only warn about it.
        strict_min_version: '128.0',
        data_collection_permissions: { required: ['none'] },
      },
    },
  };
}

export default defineConfig({
  root: repoRoot,
  publicDir: false,
  plugins: [crx({ manifest: firefoxManifest(manifest) as unknown as ManifestV3Export, browser: 'firefox' })],
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist/extension-firefox',
    emptyOutDir: true,
  },
});
