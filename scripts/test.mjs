// The whole test suite, as the README promises: installs what it needs (npm packages; Debian
// packages when run as root on Debian), builds, typechecks, lints, then runs every test file
// in one node:test run so that its closing summary counts everything.
//   node scripts/test.mjs [--only unit|integration|interop|e2e] [--no-build] [file filters...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installDeps, isDebianRoot, missingDeps } from './system-deps.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const noBuild = args.includes('--no-build');
const filters = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--only');
const SUITES = ['unit', 'integration', 'interop', 'e2e'];
if (only && !SUITES.includes(only)) {
  console.error(`--only takes one of: ${SUITES.join(', ')}`);
  process.exit(2);
}

function step(title, command, commandArgs, options = {}) {
  console.log(`\n== ${title}`);
  const r = spawnSync(command, commandArgs, { stdio: 'inherit', ...options });
  if (r.status !== 0) {
    console.error(`\n${title} failed (exit ${r.status ?? r.signal}). Nothing after it was run.`);
    process.exit(r.status || 1);
  }
}

if (!existsSync('node_modules/.package-lock.json')) step('npm ci', 'npm', ['ci', '--no-audit', '--no-fund']);

const missing = missingDeps();
if (missing.length > 0) {
  if (isDebianRoot()) {
    installDeps(missing);
  } else {
    console.error('These system packages are needed by the tests and are missing:');
    for (const d of missing) console.error(`  ${d.pkg.padEnd(16)} ${d.why}`);
    console.error(`Install them with: sudo apt-get install -y ${missing.map((d) => d.pkg).join(' ')}`);
    process.exit(1);
  }
}

if (!noBuild) {
  step('build', 'npm', ['run', '--silent', 'build']);
  step('typecheck', 'npm', ['run', '--silent', 'typecheck']);
  step('lint', 'npm', ['run', '--silent', 'lint']);
}

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'fixtures' && name !== 'helpers') out.push(...testFiles(path));
    } else if (/\.test\.tsx?$/.test(name)) out.push(relative(root, path));
  }
  return out;
}

let files = (only ? [only] : SUITES).flatMap((s) => testFiles(join('test', s)));
if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
console.log(`\n== tests (${files.length} files)`);
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=180000', ...files],
  { stdio: 'inherit', env: { ...process.env, SWITCHYARD_TEST: '1' } },
);
process.exit(r.status ?? 1);
