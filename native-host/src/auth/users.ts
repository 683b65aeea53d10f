import { createHmac, randomBytes } from 'node:crypto';
import { verifyPassword } from './password-hash.ts';

export interface InboundUser {
  readonly name: string;
  readonly passwordHash: string;
}

const MAX_CACHED = 1024;

/**
 * Checks RFC 1929 credentials. scrypt is deliberately slow (tens of ms), which a client that
 * opens many connections would pay on each one, so a success is remembered as an HMAC under a
 * key that lives only in this process: the password itself is never kept. An unknown user
 * costs the same scrypt work as a known one, so timing does not tell which names exist.
 */
export class UserStore {
  private readonly users: Map<string, string>;
  private readonly dummyHash: string;
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Set<string>();

  constructor(users: readonly InboundUser[]) {
    this.users = new Map(users.map((u) => [u.name, u.passwordHash]));
    this.dummyHash = users[0]?.passwordHash ?? '';
  }

  get required(): boolean {
    return this.users.size > 0;
  }

  async verify(name: string, password: string): Promise<boolean> {
    const stored = this.users.get(name);
    const tag = createHmac('sha256', this.cacheKey)
      .update(`${name}\0${password}\0${stored ?? ''}`)
      .digest('base64');
    if (stored !== undefined && this.verified.has(tag)) return true;
    const ok = (await verifyPassword(password, stored ?? this.dummyHash)) && stored !== undefined;
    if (ok) {
      if (this.verified.size >= MAX_CACHED) this.verified.clear();
      this.verified.add(tag);
    }
    return ok;
  }
}
