/**
 * Builds for the end-to-end tests. The extension is built into the test's own directory (the
 * same vite config as `npm run build:ext`): dist/extension is emptied by every build, and a
 * browser must not load it while someone else rebuilds it. The host is rebuilt in place only
 * when a source is newer than dist/host/switchyard.js (the full suite has just built it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_SCRIPT, REPO_ROOT, ensureHostBuilt } from '../../helpers/switchyard-process.ts';

const VITE = join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (/\.tsx?$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** dist/host/switchyard.js, rebuilt when native-host/ or shared/ changed since it was built. */
export function ensureHostFresh(): string {
  ensureHostBuilt();
  const built = statSync(HOST_SCRIPT).mtimeMs;
  const sources = Math.max(
    newestMtime(join(REPO_ROOT, 'native-host', 'src')),
    newestMtime(join(REPO_ROOT, 'shared')),
  );
  if (sources > built) {
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-host.mjs')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 60_000,
    });
  }
  return HOST_SCRIPT;
}

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
