/**
 * Upstream passwords for tests that run the host's code in this process: a credential store in
 * memory, and over it the same store-backed source the service uses, as if
 * `switchyard credential set` had saved the passwords.
 */
import type { CredentialSource } from '../../native-host/src/credentials/credentials.ts';
import { type CredentialStore, storeCredentialSource } from '../../native-host/src/credentials/store.ts';

/** Tests only: the service opens the real store (keyring or file) in production. */
export class MemoryCredentialStore implements CredentialStore {
  readonly kind = 'file';
  readonly description = 'in memory (test)';
  readonly passwords: Map<string, string>;

  constructor(passwords: Readonly<Record<string, string>> = {}) {
    this.passwords = new Map(Object.entries(passwords));
  }
  async get(id: string): Promise<string | undefined> {
    return this.passwords.get(id);
  }
  async set(id: string, password: string): Promise<void> {
    this.passwords.set(id, password);
  }
  async delete(id: string): Promise<boolean> {
    return this.passwords.delete(id);
  }
  async has(id: string): Promise<boolean> {
    return this.passwords.has(id);
  }
}

/** The chain's credentials with these passwords saved, by upstream id. */
export function savedCredentials(passwords: Readonly<Record<string, string>>): CredentialSource {
  return storeCredentialSource(new MemoryCredentialStore(passwords));
}
