/**
 * The fallback when no OS keyring works (typically headless Linux without a Secret Service):
 * a plain JSON file, `credentials.json` in the config directory, mode 0600 in a 0700 directory.
 *
 * It is deliberately not encrypted. Any key would have to sit next to the data, readable by
 * exactly whoever can read the file, so encryption would protect nothing and only make the file
 * look safer than it is. The file's permissions are the whole protection, which is why a file
 * that others can read is refused rather than used, and why the store says so in its description.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CredentialStore } from './store.ts';

export const CREDENTIALS_FILE = 'credentials.json';
const FILE_VERSION = 1;

export function credentialsFilePath(configDir: string): string {
  return join(configDir, CREDENTIALS_FILE);
}

export class CredentialFileError extends Error {
  override readonly name = 'CredentialFileError';
}

interface FileShape {
  readonly version: number;
  readonly comment: string;
  readonly passwords: Record<string, string>;
}

export interface FileStoreOptions {
  /** Mode bits mean nothing on Windows (the profile directory's ACL protects the file). */
  readonly platform?: NodeJS.Platform;
}

export class FileCredentialStore implements CredentialStore {
  readonly kind = 'file';
  readonly description: string;
  readonly path: string;
  readonly #posix: boolean;
  /** Writes are read-modify-write; one at a time, or two quick `set`s could lose one. */
  #queue: Promise<unknown> = Promise.resolve();

  /** `reason` says why the file is in use instead of the OS keyring; it goes in the description. */
  constructor(path: string, reason: string, options: FileStoreOptions = {}) {
    this.path = path;
    this.#posix = (options.platform ?? process.platform) !== 'win32';
    this.description = `file ${path} (mode 0600, not encrypted): ${reason}`;
  }

  async get(upstreamId: string): Promise<string | undefined> {
    return (await this.#read()).get(upstreamId);
  }

  async has(upstreamId: string): Promise<boolean> {
    return (await this.#read()).has(upstreamId);
  }

  set(upstreamId: string, password: string): Promise<void> {
    return this.#exclusive(async () => {
      const passwords = await this.#read();
      passwords.set(upstreamId, password);
      await this.#write(passwords);
    });
  }

  delete(upstreamId: string): Promise<boolean> {
    return this.#exclusive(async () => {
      const passwords = await this.#read();
      if (!passwords.delete(upstreamId)) return false;
      await this.#write(passwords);
      return true;
    });
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #read(): Promise<Map<string, string>> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new CredentialFileError(`cannot read ${this.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    let text: string;
    try {
      // Checked on the open handle, so the file judged is the file read.
      const stat = await handle.stat();
      if (this.#posix && (stat.mode & 0o077) !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        throw new CredentialFileError(
          `${this.path} holds passwords in plain text but other users can access it (mode ${mode}), so it is not used. ` +
            `If nobody else could have read it, fix it with: chmod 600 '${this.path}' (otherwise also change the passwords)`,
        );
      }
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
    return parse(this.path, text);
  }

  async #write(passwords: ReadonlyMap<string, string>): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (passwords.size === 0) {
      // No passwords, no file: nothing is left behind for a backup or a copy to pick up.
      await unlink(this.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await this.#syncDir(dir);
      return;
    }
    const shape: FileShape = {
      version: FILE_VERSION,
      comment:
        "Switchyard upstream passwords, NOT encrypted: only this file's mode (0600) protects them. " +
        'Used because no OS keyring was available; see `switchyard credential where`.',
      passwords: Object.fromEntries([...passwords].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    };
    const temp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      // The umask can only remove bits from 0600, but say it exactly: this mode is the protection.
      await handle.chmod(0o600);
      await handle.writeFile(`${JSON.stringify(shape, null, 2)}\n`, 'utf8');
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await this.#syncDir(dir);
  }

  /** The rename is durable only once the directory entry is on disk too. */
  async #syncDir(dir: string): Promise<void> {
    if (!this.#posix) return;
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

function parse(path: string, text: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CredentialFileError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null)
    throw new CredentialFileError(`${path} is not a JSON object`);
  const { version, passwords } = json as Partial<Record<keyof FileShape, unknown>>;
  if (version !== FILE_VERSION) {
    throw new CredentialFileError(`${path} has version ${String(version)}; this Switchyard reads version 1`);
  }
  if (typeof passwords !== 'object' || passwords === null || Array.isArray(passwords)) {
    throw new CredentialFileError(`${path}: "passwords" must be an object of upstream id to password`);
  }
  const map = new Map<string, string>();
  for (const [id, password] of Object.entries(passwords)) {
    // The message names the id only: the value is a password, even when it is the wrong type.
    if (typeof password !== 'string') {
      throw new CredentialFileError(`${path}: the password of upstream '${id}' is not a string`);
    }
    map.set(id, password);
  }
  return map;
}
