// Compiles the owner check's netlink addon, native-host/native/sockdiag.c, into
// dist/host/sockdiag.node (beside the bundle, where native-host/src/policy/sockdiag.ts looks).
// Linux only; rebuilt only when the .c is newer than the .node. It never fails the build: the
// owner check works without it, by scanning /proc/net/tcp, so what is missing (a C compiler,
// the C headers, Node's node_api.h) is said in one line and the build goes on.
//   node scripts/build-native.mjs        (also run at the end of scripts/build-host.mjs)
// SWITCHYARD_NODE_INCLUDE names Node's include/node directory when it is not beside node.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const SOCKDIAG_SOURCE = join(root, 'native-host', 'native', 'sockdiag.c');
export const SOCKDIAG_ADDON = join(root, 'dist', 'host', 'sockdiag.node');

const DEBIAN = 'apt-get install gcc libc6-dev linux-libc-dev';
const FALLBACK = 'the owner check then falls back to scanning /proc/net/tcp (slower with many sockets)';

/** Node's C headers: SWITCHYARD_NODE_INCLUDE, else include/node beside the running node. */
export function nodeIncludeDir(env = process.env) {
  return env.SWITCHYARD_NODE_INCLUDE || resolve(dirname(process.execPath), '../include/node');
}

/**
 * Builds the addon when it is missing or older than its source. Returns what happened:
 * `{ status: 'built' | 'fresh' | 'skipped', reason? }`; a skip is also said on stderr, in one line.
 */
export function buildNative({ log = console.log, warn = console.warn } = {}) {
  if (process.platform !== 'linux') return { status: 'skipped', reason: 'netlink sock_diag is Linux only' };
  if (existsSync(SOCKDIAG_ADDON) && statSync(SOCKDIAG_ADDON).mtimeMs >= statSync(SOCKDIAG_SOURCE).mtimeMs)
    return { status: 'fresh' };
  const skip = (what, install) => {
    warn(`sockdiag.node not built: ${what}; install ${install}; ${FALLBACK}.`);
    return { status: 'skipped', reason: what };
  };
  const include = nodeIncludeDir();
  if (!existsSync(join(include, 'node_api.h')))
    return skip(
      `no node_api.h in ${include}`,
      "Node's headers (they come with the nodejs package or tarball) or set SWITCHYARD_NODE_INCLUDE to their include/node directory",
    );
  mkdirSync(dirname(SOCKDIAG_ADDON), { recursive: true });
  // Written aside and renamed, so that a process loading the addon meanwhile never sees half a file.
  const partial = `${SOCKDIAG_ADDON}.${process.pid}.tmp`;
  const args = ['-O2', '-shared', '-fPIC', '-Wall', '-Wextra', `-I${include}`];
  const cc = spawnSync('cc', [...args, relative(root, SOCKDIAG_SOURCE), '-o', partial], {
    cwd: root,
    encoding: 'utf8',
  });
  if (cc.error !== undefined) {
    const what = cc.error.code === 'ENOENT' ? 'no C compiler (cc)' : `cc did not run (${cc.error.message})`;
    return skip(what, `it on Debian with: ${DEBIAN}`);
  }
  if (cc.status !== 0) {
    rmSync(partial, { force: true });
    const output = `${cc.stderr}${cc.stdout}`;
    const header = /fatal error: ([^:\s]+): No such file/.exec(output)?.[1];
    const what =
      header !== undefined
        ? `the C header ${header} is missing`
        : `compiling ${relative(root, SOCKDIAG_SOURCE)} failed: ${output.split('\n').find((l) => l.includes('error')) ?? `cc exited with ${cc.status}`}`;
    return skip(what, `the C toolchain on Debian with: ${DEBIAN}`);
  }
  if (cc.stderr.trim() !== '') warn(cc.stderr.trimEnd());
  renameSync(partial, SOCKDIAG_ADDON);
  log(`built ${relative(root, SOCKDIAG_ADDON)}`);
  return { status: 'built' };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) buildNative();
