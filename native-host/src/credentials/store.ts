/**
 * Where upstream passwords are kept: the OS keyring when one works, else a 0600 file in the
 * config directory. The config names upstreams by id only; a password is read when a hop needs
 * it and is never returned to the extension, which learns at most whether one is saved.
 *
 * The choice is made once, by a real round trip through the keyring, and the reason for a
 * fallback is kept in `description`, so `hello`, `doctor`, the UI and `credential where` can
 * all say plainly where the passwords are and why.
 */
import { existsSync } from 'node:fs';
import type { Upstream } from '../../../shared/config/schema.ts';
import { type CredentialSource, MissingCredentialError } from './credentials.ts';
import { FileCredentialStore, credentialsFilePath } from './file-store.ts';
import { probeKeyring } from './keyring-store.ts';

export interface CredentialStore {
  readonly kind: 'keyring' | 'file';
  /** For people: where the passwords are, and for the file, why and that it is not encrypted. */
  readonly description: string;
  get(upstreamId: string): Promise<string | undefined>;
  set(upstreamId: string, password: string): Promise<void>;
  /** False when there was nothing to delete. */
  delete(upstreamId: string): Promise<boolean>;
  has(upstreamId: string): Promise<boolean>;
}

export type CredentialStorePreference = 'keyring' | 'file';

/** Lets a user (or a test) skip the keyring: SWITCHYARD_CREDENTIAL_STORE=file. */
export const CREDENTIAL_STORE_ENV = 'SWITCHYARD_CREDENTIAL_STORE';

export function credentialStorePreference(
  env: NodeJS.ProcessEnv = process.env,
): CredentialStorePreference | undefined {
  const value = env[CREDENTIAL_STORE_ENV];
  if (value === undefined || value === '') return undefined;
  if (value === 'keyring' || value === 'file') return value;
  throw new Error(`${CREDENTIAL_STORE_ENV} must be 'keyring' or 'file', not '${value}'`);
}

/**
 * The crate bounds a plain D-Bus call at about 2 s by itself; what can take longer is an unlock
 * prompt, which on a desktop needs a person to type a password, hence the generous default.
 */
export const DEFAULT_KEYRING_TIMEOUT_MS = 15_000;

export interface OpenCredentialStoreOptions {
  /** The directory of the config file in use; the fallback file goes next to it. */
  readonly configDir: string;
  /** 'file' skips the keyring; 'keyring' (the default) tries it and falls back to the file. */
  readonly prefer?: CredentialStorePreference;
  /** Bounds the probe and, later, every single keyring call. */
  readonly keyringTimeoutMs?: number;
  readonly platform?: NodeJS.Platform;
}

export async function openCredentialStore(options: OpenCredentialStoreOptions): Promise<CredentialStore> {
  const file = credentialsFilePath(options.configDir);
  const platform = options.platform ?? process.platform;
  if (options.prefer === 'file') {
    return new FileCredentialStore(file, `chosen instead of the OS keyring (${CREDENTIAL_STORE_ENV}=file)`, {
      platform,
    });
  }
  const keyringOptions = { timeoutMs: options.keyringTimeoutMs ?? DEFAULT_KEYRING_TIMEOUT_MS, platform };
  const probe = await probeKeyring(keyringOptions);
  if (!probe.ok) return new FileCredentialStore(file, probe.reason, { platform });
  // Passwords saved while the keyring was unavailable (say, over ssh) are not read from the
  // file any more; say so rather than let them seem lost.
  const note = existsSync(file)
    ? `${file} also exists, from a time without a keyring; its passwords are not used while the keyring works`
    : undefined;
  return probe.store(note);
}

/** SOCKS4 has a user id but no password, so nothing needs to be looked up for it. */
function needsPassword(upstream: Upstream): boolean {
  return upstream.type === 'socks5' || upstream.type === 'http';
}

/**
 * The chain's credentials from the store: the username from the config, the password from the
 * store, looked up each time a hop needs it (never cached, never logged).
 */
export function storeCredentialSource(store: CredentialStore): CredentialSource {
  return async (upstream) => {
    const username = upstream.username;
    if (username === undefined) return undefined;
    if (!needsPassword(upstream)) return { username, password: '' };
    const password = await store.get(upstream.id);
    if (password !== undefined) return { username, password };
    const where = store.kind === 'keyring' ? 'the OS keyring' : 'the credentials file';
    throw new MissingCredentialError(
      `no password is saved for upstream '${upstream.id}' (user '${username}') in ${where}; ` +
        `save it with: switchyard credential set ${upstream.id} --password-stdin`,
    );
  };
}
