/** Looking for a secret in a browser profile: every file under a directory, byte for byte. */
import { type Dirent, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/**
 * Files under `dir` that contain `secret` as UTF-8 or as UTF-16LE (how V8 and some Chromium
 * stores write strings). Files that vanish or cannot be read (sockets, locks) are skipped.
 */
export function filesContaining(dir: string, secret: string): string[] {
  const needles = [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le')];
  const hits: string[] = [];
  for (const file of filesUnder(dir)) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      continue;
    }
    if (needles.some((n) => bytes.includes(n))) hits.push(file);
  }
  return hits;
}
