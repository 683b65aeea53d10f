// Bundles the native host into one runnable file, dist/host/switchyard.js (package.json "bin").
import { chmod, readFile } from 'node:fs/promises';
import { build } from 'esbuild';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/host/switchyard.js';
// The service's V8 options (why: native-host/src/service/node-flags.ts) go on the `#!` line, so
// that running the executable, or the `switchyard` npm puts on PATH, starts it with them.
// `env -S` splits them into words (coreutils 8.30+, BSD and macOS env; npm's Windows shim too).
const nodeFlags = JSON.parse(
  await readFile(new URL('../native-host/node-flags.json', import.meta.url), 'utf8'),
);
await build({
  entryPoints: ['native-host/src/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  // Bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: `#!/usr/bin/env -S node ${nodeFlags.join(' ')}\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);`,
  },
  define: { SWITCHYARD_VERSION: JSON.stringify(pkg.version) },
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
console.log(`built ${outfile}`);
// The owner check's netlink addon beside the bundle (never fails the build; see build-native.mjs).
(await import('./build-native.mjs')).buildNative();
