/**
 * Inbound user passwords are stored as scrypt hashes in a self-describing string, so the
 * parameters can be raised later without breaking stored users:
 *   scrypt$<log2 N>$<r>$<p>$<salt base64>$<hash base64>
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_LENGTH = 32;
const DEFAULT_LOG_N = 14;
const DEFAULT_R = 8;
const DEFAULT_P = 1;

function scryptAsync(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, DEFAULT_LOG_N, DEFAULT_R, DEFAULT_P);
  return `scrypt$${DEFAULT_LOG_N}$${DEFAULT_R}$${DEFAULT_P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const HASH_PATTERN = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/=]{8,})\$([A-Za-z0-9+/=]{40,})$/;

export function isPasswordHash(text: string): boolean {
  const m = HASH_PATTERN.exec(text);
  if (!m) return false;
  const logN = Number(m[1]);
  return logN >= 10 && logN <= 20 && Number(m[2]) >= 1 && Number(m[3]) >= 1;
}

/** Constant-time in the password: the comparison never short-circuits on the first byte. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = HASH_PATTERN.exec(stored);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await scryptAsync(
    password,
    Buffer.from(m[4]!, 'base64'),
    Number(m[1]),
    Number(m[2]),
    Number(m[3]),
  );
  return key.length === expected.length && timingSafeEqual(key, expected);
}
