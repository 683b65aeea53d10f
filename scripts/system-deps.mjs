// The Debian packages the test suite runs against, with the command each one provides, in one
// place for scripts/test.mjs and .ci/run. Usage: node scripts/system-deps.mjs --list
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** `check` is a file that exists once the package is installed. */
export const SYSTEM_DEPS = [
  { pkg: 'curl', check: '/usr/bin/curl', why: 'interop tests: a real SOCKS4/4a/5 client' },
  { pkg: 'python3', check: '/usr/bin/python3', why: 'interop tests: runs PySocks' },
  {
    pkg: 'python3-socks',
    check: '/usr/lib/python3/dist-packages/socks.py',
    why: 'interop tests: PySocks client',
  },
  { pkg: 'microsocks', check: '/usr/bin/microsocks', why: 'upstream tests: a real SOCKS5 server (C)' },
  { pkg: 'dante-server', check: '/usr/sbin/danted', why: 'upstream tests: a real SOCKS4/5 server with BIND' },
  {
    pkg: 'dbus-daemon',
    check: '/usr/bin/dbus-run-session',
    why: 'keyring tests: a private D-Bus session bus',
  },
  {
    pkg: 'gnome-keyring',
    check: '/usr/bin/gnome-keyring-daemon',
    why: 'keyring tests: a real Secret Service',
  },
  {
    pkg: 'libsecret-tools',
    check: '/usr/bin/secret-tool',
    why: 'keyring tests: reads the keyring independently',
  },
  { pkg: 'util-linux', check: '/usr/bin/setpriv', why: 'access tests: runs a client as another OS user' },
  { pkg: 'passwd', check: '/usr/sbin/useradd', why: 'access tests: creates a test OS user' },
  {
    pkg: 'gcc',
    check: '/usr/bin/cc',
    why: "build: compiles the owner check's netlink addon (sockdiag.node)",
  },
  { pkg: 'libc6-dev', check: '/usr/include/stdio.h', why: 'build: C library headers for sockdiag.node' },
  {
    pkg: 'linux-libc-dev',
    check: '/usr/include/linux/inet_diag.h',
    why: 'build: the netlink sock_diag headers for sockdiag.node',
  },
  { pkg: 'chromium', check: '/usr/bin/chromium', why: 'end-to-end tests: the extension in a real browser' },
  { pkg: 'firefox-esr', check: '/usr/bin/firefox-esr', why: 'end-to-end tests: the extension in Firefox' },
];

export function missingDeps() {
  return SYSTEM_DEPS.filter((d) => !existsSync(d.check));
}

export function isDebianRoot() {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
}

export function installDeps(deps, log = console.log) {
  if (deps.length === 0) return;
  const names = [...new Set(deps.map((d) => d.pkg))];
  log(`installing system packages: ${names.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...names], { stdio: 'inherit', env });
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--list')) {
  console.log([...new Set(SYSTEM_DEPS.map((d) => d.pkg))].join(' '));
}
