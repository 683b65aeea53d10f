// `npm start`: installs the npm dependencies if needed, builds the host and the extension,
// registers the native-messaging host with the browsers found here, and runs `switchyard serve`
// in the foreground. Extra arguments go to serve:
//   npm start -- --listen 127.0.0.1:1081
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
};
if (!existsSync('node_modules/.package-lock.json')) run('npm', ['ci', '--no-audit', '--no-fund']);
run('npm', ['run', '--silent', 'build']);

// Without the host manifest the extension cannot reach the proxy, but the proxy itself still
// works for curl and friends, so a failed install is reported and serve runs regardless.
const installed = spawnSync(
  process.execPath,
  ['dist/host/switchyard.js', 'install', '--browser', 'all', '--quiet'],
  { stdio: 'inherit' },
);
if (installed.status !== 0) {
  console.error(
    'Could not register the native-messaging host (see above); the extension will not reach the proxy\n' +
      'until `node dist/host/switchyard.js install` succeeds. `node dist/host/switchyard.js doctor` says why.',
  );
}

const extension = join(root, 'dist', 'extension');
console.log(
  [
    '',
    `The unpacked extension is in ${extension}`,
    '  Load it once: open chrome://extensions (edge://extensions, brave://extensions), turn on',
    '  Developer mode, click "Load unpacked" and choose that folder. Its id is fixed by the key in',
    '  manifest.json, so the host installed above already allows it.',
    '  Something not working? node dist/host/switchyard.js doctor',
    '',
  ].join('\n'),
);
// The service's V8 options, as the executable's own first line would pass them.
const nodeFlags = JSON.parse(readFileSync('native-host/node-flags.json', 'utf8'));
const r = spawnSync(
  process.execPath,
  [...nodeFlags, 'dist/host/switchyard.js', 'serve', ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 0);
