// `npm start`: installs the npm dependencies if needed, builds the host and the extension, and
// runs `switchyard serve` in the foreground. Extra arguments go to serve:
//   npm start -- --listen 127.0.0.1:1081
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
};
if (!existsSync('node_modules/.package-lock.json')) run('npm', ['ci', '--no-audit', '--no-fund']);
run('npm', ['run', '--silent', 'build']);
console.log(`\nThe unpacked extension is in ${root}dist/extension (chrome://extensions > Load unpacked).`);
const r = spawnSync(process.execPath, ['dist/host/switchyard.js', 'serve', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(r.status ?? 0);
