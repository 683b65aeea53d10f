/**
 * How the owner check finds a client's socket: by asking the kernel for exactly that socket
 * through netlink sock_diag (the addon native-host/native/sockdiag.c, which
 * scripts/build-native.mjs compiles into dist/host/sockdiag.node), or, without the addon, by
 * scanning /proc/net/tcp (client-identity.ts). The scan costs a read of the whole table, which
 * the kernel formats afresh each time: megabytes with tens of thousands of sockets open or in
 * TIME_WAIT. The exact lookup costs the same whatever the table holds.
 *
 * SWITCHYARD_OWNER_LOOKUP=proc forces the scan (to compare the two, or to opt out);
 * =netlink makes a missing addon an error at start-up (serve refuses to run).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type OwnerLookupMethod = 'netlink' | 'proc';

export const OWNER_LOOKUP_ENV = 'SWITCHYARD_OWNER_LOOKUP';

/** The kernel's answer for a live socket (TIME_WAIT, listeners and orphans are null). */
export interface SockDiagSocket {
  readonly uid: number;
  readonly inode: number;
  /** The TCP state, as the kernel numbers them (1 ESTABLISHED, ...). */
  readonly state: number;
}

export interface SockDiagAddon {
  /**
   * The socket whose own end is `local`:`localPort` and whose peer is `remote`:`remotePort`
   * (addresses of 4 or 16 bytes, network order); null when the kernel has no such live socket.
   * Throws an Error whose `code` is the errno name when the kernel cannot be asked.
   */
  lookup(
    family: 4 | 6,
    local: Buffer,
    localPort: number,
    remote: Buffer,
    remotePort: number,
  ): SockDiagSocket | null;
}

/** Which way lookups go in this process, and why. */
export interface OwnerLookupStatus {
  readonly method: OwnerLookupMethod;
  /** For the log and doctor: `netlink sock_diag` or `/proc/net/tcp scan (why)`. */
  readonly description: string;
  /** The scan stands in for a missing addon (not chosen with SWITCHYARD_OWNER_LOOKUP): a warning. */
  readonly fallback: boolean;
  /** Why the addon is not available, when it is not: `sockdiag.node not built: no /.../sockdiag.node`. */
  readonly unavailable?: string;
  /** SWITCHYARD_OWNER_LOOKUP asks for what cannot be had: serve refuses to start with this. */
  readonly error?: string;
}

/**
 * Where the addon is: beside the running bundle (dist/host/switchyard.js), or, when this runs
 * from source (tsx: this file is native-host/src/policy/sockdiag.ts), in the repository's dist/host.
 */
function addonPath(): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts')
    ? new URL('../../../dist/host/sockdiag.node', here)
    : new URL('./sockdiag.node', here);
  return fileURLToPath(url);
}

function isAddon(value: unknown): value is SockDiagAddon {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'lookup') === 'function';
}

let loaded: { readonly addon: SockDiagAddon } | { readonly why: string } | undefined;

function load(): { readonly addon: SockDiagAddon } | { readonly why: string } {
  if (process.platform !== 'linux') return { why: 'netlink sock_diag is Linux only' };
  const path = addonPath();
  try {
    const exports: unknown = createRequire(import.meta.url)(path);
    return isAddon(exports) ? { addon: exports } : { why: `${path} does not export lookup()` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND') return { why: `sockdiag.node not built: no ${path}` };
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { why: `sockdiag.node not built: ${path} did not load (${message})` };
  }
}

/** The addon, loaded on first use; undefined when it is not there (ownerLookupStatus says why). */
export function sockDiag(): SockDiagAddon | undefined {
  loaded ??= load();
  return 'addon' in loaded ? loaded.addon : undefined;
}

/**
 * Asks once for a socket that cannot exist (port 0 to port 0). This opens the netlink socket
 * now, while descriptors are plentiful (it is kept: later lookups need no new one, even when
 * none is left), and shows that the kernel answers at all (a sandbox may refuse netlink).
 * Returns why not, when it does not.
 */
function probe(addon: SockDiagAddon): string | undefined {
  const loopback = Buffer.from([127, 0, 0, 1]);
  try {
    addon.lookup(4, loopback, 0, loopback, 0);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = error instanceof Error ? error.message : String(error);
    return `netlink sock_diag does not answer (${code === undefined ? '' : `${code}: `}${message})`;
  }
}

let status: OwnerLookupStatus | undefined;

/**
 * The way this process looks up owners, decided once (environment, addon, and a first question
 * to the kernel); serve asks at start-up, so the netlink socket is open from then on.
 */
export function ownerLookupStatus(): OwnerLookupStatus {
  status ??= decide(process.env[OWNER_LOOKUP_ENV]);
  return status;
}

function decide(asked: string | undefined): OwnerLookupStatus {
  const loadedAddon = sockDiag();
  const unavailable =
    loaded !== undefined && 'why' in loaded
      ? loaded.why
      : loadedAddon !== undefined && asked !== 'proc'
        ? probe(loadedAddon)
        : undefined;
  const addon = unavailable === undefined ? loadedAddon : undefined;
  const known = asked === undefined || asked === '' || asked === 'netlink' || asked === 'proc';
  const error = !known
    ? `${OWNER_LOOKUP_ENV} must be "netlink" or "proc", not ${JSON.stringify(asked)}`
    : asked === 'netlink' && addon === undefined
      ? `${OWNER_LOOKUP_ENV}=netlink, but ${unavailable}` +
        (loadedAddon === undefined
          ? ' (npm run build:host compiles it; it needs gcc, libc6-dev and linux-libc-dev)'
          : '')
      : undefined;
  const common = {
    ...(unavailable !== undefined ? { unavailable } : {}),
    ...(error !== undefined ? { error } : {}),
  };
  if (asked === 'proc')
    return {
      method: 'proc',
      description: `/proc/net/tcp scan (${OWNER_LOOKUP_ENV}=proc)`,
      fallback: false,
      ...common,
    };
  if (addon !== undefined)
    return { method: 'netlink', description: 'netlink sock_diag', fallback: false, ...common };
  return { method: 'proc', description: `/proc/net/tcp scan (${unavailable})`, fallback: true, ...common };
}
