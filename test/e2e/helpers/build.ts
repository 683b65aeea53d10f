/**
 * Builds for the end-to-end tests. The extension is built into the test's own directory (the
 * same vite config as `npm run build:ext`): dist/extension is emptied by every build, and a
 * browser must not load it while someone else rebuilds it. The host is rebuilt in place only
 * when a source is newer than dist/host/switchyard.js (the full suite has just built it): that
 * is ensureHostFresh, in test/helpers/switchyard-process.ts, re-exported here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../helpers/switchyard-process.ts';

export { ensureHostFresh } from '../../helpers/switchyard-process.ts';

const VITE = join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');

/**
 * The unpacked extension, built into `outDir`; returns the directory the browser loads.
 * `config`: extension/vite.firefox.config.ts for Firefox's build.
 */
export function buildExtension(outDir: string, config = 'extension/vite.config.ts'): string {
  execFileSync(
    process.execPath,
    [VITE, 'build', '--config', config, '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 },
  );
  if (!existsSync(join(outDir, 'manifest.json')))
    throw new Error(`the extension build wrote no manifest.json to ${outDir}`);
  return outDir;
}
