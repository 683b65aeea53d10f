import { fileURLToPath } from 'node:url';
import { crx } from '@crxjs/vite-plugin';
import { defineConfig } from 'vite';
import manifest from '../manifest.json' with { type: 'json' };

// manifest.json lives at the repo root and names its entries from there
// ("extension/popup/index.html"), so the root must be the repo root too.
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root: repoRoot,
  // With the repo root as root, Vite's default public dir would be <repo>/public: copy nothing implicitly.
  publicDir: false,
  plugins: [crx({ manifest })],
  // Vite 8 transforms TS/JSX with oxc; point the automatic runtime at Preact instead of React.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist/extension',
    emptyOutDir: true,
  },
});
