/**
 * Upstream passwords in the OS credential store, through @napi-rs/keyring (a binding of the
 * keyring-rs crate): the Secret Service (the D-Bus API libsecret speaks) on Linux, the login
 * Keychain on macOS, Credential Manager on Windows. One entry per upstream: service
 * 'switchyard', account 'upstream:<id>'. keyring-rs stores the account in the Secret Service
 * attribute `username`, so `secret-tool lookup service switchyard username upstream:<id>` (or
 * Seahorse, or Keychain Access) shows exactly what is stored.
 *
 * The binding runs in a helper child process, not in this one. Its calls block: constructing an
 * entry says Hello to the session bus synchronously, and a wedged bus leaves that waiting for
 * libdbus's 25 s reply timeout, during which this process's event loop (every tunnel of the
 * proxy) would stand still and no timer of ours could fire. A worker thread does not help
 * either: it cannot be interrupted inside native code, and Node waits for it at exit. A child
 * process is killed, by its pid, when it does not answer in time.
 *
 * Nothing here logs, and no error message carries a password: the crate's messages describe the
 * store, never the secret, and passwords travel only over the helper's stdin/stdout pipes.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { CredentialStore } from './store.ts';

export const KEYRING_SERVICE = 'switchyard';

export function keyringAccount(upstreamId: string): string {
  return `upstream:${upstreamId}`;
}

export class KeyringError extends Error {
  override readonly name = 'KeyringError';
}

class KeyringTimeoutError extends Error {
  override readonly name = 'KeyringTimeoutError';
}

class KeyringUnavailableError extends Error {
  override readonly name = 'KeyringUnavailableError';
}

export function keyringName(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'darwin') return 'macOS Keychain';
  if (platform === 'win32') return 'Windows Credential Manager';
  return 'Secret Service (D-Bus session bus)';
}

/** The crate's messages are terse and about D-Bus internals; say what is missing and what helps. */
export function explainKeyringError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof KeyringTimeoutError || error instanceof KeyringUnavailableError) return message;
  if (/autolaunch|DBUS_SESSION_BUS_ADDRESS/.test(message)) {
    return 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus)';
  }
  if (/Failed to connect to socket|Connection refused/.test(message)) {
    return `cannot connect to the D-Bus session bus (${message.replace(/^.*DBus error: /, '')})`;
  }
  if (/org\.freedesktop\.secrets was not provided|ServiceUnknown/.test(message)) {
    return 'no Secret Service on the session bus (org.freedesktop.secrets not provided; gnome-keyring or KeePassXC provide it)';
  }
  if (/no result found/.test(message)) {
    return 'the Secret Service has no default keyring to store passwords in (no login keyring was created or unlocked in this session)';
  }
  if (/prompt was dismissed|locked/i.test(message)) {
    return 'the keyring is locked and unlocking it needs a prompt that was dismissed or could not be shown';
  }
  if (/Did not receive a reply/.test(message)) {
    return 'the Secret Service did not answer (D-Bus reply timeout)';
  }
  return message;
}

/**
 * The helper, plain CommonJS for `node -e` so it needs no loader and no file of its own in the
 * bundle. One JSON request per line on stdin, one reply per line on stdout; it ends when its
 * stdin does. On Linux the entry is pinned to the Secret Service: unpinned, the binding silently
 * falls back to the kernel keyutils keyring, which lives in memory only, so passwords saved there
 * would vanish at reboot or logout while the description claimed a keyring. A missing Secret
 * Service must mean the file, said out loud.
 */
const HELPER = `'use strict';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
let Entry;
try {
  ({ Entry } = require(process.argv[1]));
} catch (error) {
  send({ id: 0, ok: false, error: 'the keyring binding (@napi-rs/keyring) cannot be loaded: ' + error.message });
  process.exit(1);
}
const options = { linux: { store: 'secret-service' } };
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  let request;
  try { request = JSON.parse(line); } catch { return; }
  try {
    const entry = new Entry(request.service, request.account, options);
    let value = null;
    if (request.op === 'get') value = entry.getPassword();
    else if (request.op === 'set') entry.setPassword(request.password);
    else if (request.op === 'delete') value = entry.deleteCredential();
    send({ id: request.id, ok: true, value });
  } catch (error) {
    send({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
`;

type Op = 'get' | 'set' | 'delete';

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: string | boolean | null;
  readonly error?: string;
}

interface Pending {
  resolve(value: string | boolean | null): void;
  reject(error: Error): void;
}

/** Idle helpers exit, so a long-running host keeps no extra process between lookups. */
const HELPER_IDLE_MS = 30_000;

class KeyringHelper {
  readonly #timeoutMs: number;
  readonly #idleMs: number;
  readonly #name: string;
  #child: ChildProcessWithoutNullStreams | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #idle: NodeJS.Timeout | undefined;

  constructor(options: KeyringStoreOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#idleMs = options.helperIdleMs ?? HELPER_IDLE_MS;
    this.#name = keyringName(options.platform);
  }

  call(op: Op, account: string, password?: string): Promise<string | boolean | null> {
    clearTimeout(this.#idle);
    let child: ChildProcessWithoutNullStreams;
    try {
      child = this.#child ?? this.#spawn();
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.#nextId++;
    return new Promise<string | boolean | null>((resolve, reject) => {
      // This timer is also what keeps a short-lived CLI alive while it waits: the helper and
      // its pipes are unref'd.
      const timer = setTimeout(() => {
        this.#fail(
          child,
          new KeyringTimeoutError(
            `the ${this.#name} did not answer within ${this.#timeoutMs} ms (a hung D-Bus service, or an unlock prompt nobody answered)`,
          ),
        );
      }, this.#timeoutMs);
      const settle = () => {
        clearTimeout(timer);
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#scheduleIdle(child);
      };
      this.#pending.set(id, {
        resolve: (value) => {
          settle();
          resolve(value);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      child.stdin.write(`${JSON.stringify({ id, op, service: KEYRING_SERVICE, account, password })}\n`);
    });
  }

  #spawn(): ChildProcessWithoutNullStreams {
    let bindingPath: string;
    try {
      bindingPath = createRequire(import.meta.url).resolve('@napi-rs/keyring');
    } catch (error) {
      throw new KeyringUnavailableError(
        `the keyring binding (@napi-rs/keyring) is not installed: ${(error as Error).message}`,
      );
    }
    const child = spawn(process.execPath, ['-e', HELPER, bindingPath], {
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.#child = child;
    let stderr = '';
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      buffered += text;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.#onReply(child, line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-2000);
    });
    child.stdin.on('error', () => undefined);
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.on('error', (error) => this.#fail(child, error));
    child.on('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      const detail = stderr.trim() ? `: ${stderr.trim()}` : '';
      this.#fail(
        child,
        new KeyringUnavailableError(
          `the keyring helper process exited (${signal ?? `code ${code}`})${detail}`,
        ),
      );
    });
    // An idle helper must not keep the host (or a CLI command) from exiting.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as Socket).unref();
    return child;
  }

  #onReply(child: ChildProcessWithoutNullStreams, line: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    if (reply.id === 0) {
      this.#fail(child, new KeyringUnavailableError(reply.error ?? 'the keyring helper failed to start'));
      return;
    }
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    if (reply.ok) pending.resolve(reply.value ?? null);
    else pending.reject(new Error(reply.error ?? 'unknown keyring error'));
  }

  /** A helper that failed once is not trusted with the next call: kill it, start afresh. */
  #fail(child: ChildProcessWithoutNullStreams, error: Error): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    clearTimeout(this.#idle);
    child.kill('SIGKILL');
    for (const pending of [...this.#pending.values()]) pending.reject(error);
  }

  /** Lets the helper exit once it has answered what it was asked. */
  close(): void {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    clearTimeout(this.#idle);
    child.stdin.end();
  }

  #scheduleIdle(child: ChildProcessWithoutNullStreams): void {
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#child === child && this.#pending.size === 0) this.close();
    }, this.#idleMs);
    this.#idle.unref();
  }
}

export interface KeyringStoreOptions {
  /** Bounds every call to the keyring. */
  readonly timeoutMs: number;
  /** How long the helper process lingers after its last call (30 s). */
  readonly helperIdleMs?: number;
  readonly platform?: NodeJS.Platform;
}

export class KeyringCredentialStore implements CredentialStore {
  readonly kind = 'keyring';
  readonly description: string;
  readonly #helper: KeyringHelper;
  readonly #name: string;

  /** Use `openCredentialStore`, which probes first; this trusts that the keyring works. */
  constructor(options: KeyringStoreOptions, note?: string, helper?: KeyringHelper) {
    this.#name = keyringName(options.platform);
    this.#helper = helper ?? new KeyringHelper(options);
    this.description = `keyring: ${this.#name}, service '${KEYRING_SERVICE}', one entry per upstream ('upstream:<id>')${
      note ? `; ${note}` : ''
    }`;
  }

  async get(upstreamId: string): Promise<string | undefined> {
    const password = await this.#call(upstreamId, 'read the password', 'get');
    return typeof password === 'string' ? password : undefined;
  }

  async set(upstreamId: string, password: string): Promise<void> {
    await this.#call(upstreamId, 'save the password', 'set', password);
  }

  async delete(upstreamId: string): Promise<boolean> {
    return (await this.#call(upstreamId, 'delete the password', 'delete')) === true;
  }

  async has(upstreamId: string): Promise<boolean> {
    return (await this.get(upstreamId)) !== undefined;
  }

  async #call(upstreamId: string, what: string, op: Op, password?: string): Promise<string | boolean | null> {
    try {
      return await this.#helper.call(op, keyringAccount(upstreamId), password);
    } catch (error) {
      throw new KeyringError(
        `cannot ${what} of upstream '${upstreamId}' in the ${this.#name}: ${explainKeyringError(error)}`,
        { cause: error },
      );
    }
  }
}

export type KeyringProbe =
  | { readonly ok: true; readonly store: (note?: string) => KeyringCredentialStore }
  | { readonly ok: false; readonly reason: string };

/**
 * Whether the keyring really works here: a round trip (write, read back, delete) through a
 * throwaway entry, because on Linux the binding loads fine and even constructs entries with no
 * usable Secret Service behind it; only a real write tells. The probe's account is unique so two
 * processes probing at once cannot delete each other's entry and fall back for no reason.
 */
export async function probeKeyring(options: KeyringStoreOptions): Promise<KeyringProbe> {
  const helper = new KeyringHelper(options);
  const account = `probe:${process.pid}-${randomBytes(6).toString('hex')}`;
  const value = randomBytes(16).toString('hex');
  try {
    await helper.call('set', account, value);
    let readBack: string | boolean | null;
    try {
      readBack = await helper.call('get', account);
    } finally {
      await helper.call('delete', account);
    }
    if (readBack !== value) {
      helper.close();
      return {
        ok: false,
        reason: `the ${keyringName(options.platform)} did not return the value just written to it`,
      };
    }
    // The probe's helper is already running and answering; the store keeps using it.
    return { ok: true, store: (note) => new KeyringCredentialStore(options, note, helper) };
  } catch (error) {
    helper.close();
    return { ok: false, reason: explainKeyringError(error) };
  }
}
