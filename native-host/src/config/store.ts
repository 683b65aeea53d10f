/**
 * Reading and writing the config file. Reads validate against the shared schema and report
 * every problem with its field path; writes are atomic (temp file, fsync, rename) and keep the
 * previous file as `<name>.bak`, so a crash mid-save leaves the old or the new file, never half.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  type Config,
  type ConfigIssue,
  defaultConfig,
  validateConfig,
} from '../../../shared/config/schema.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(
      `${file} is not a valid Switchyard config:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
    );
    this.file = file;
    this.issues = issues;
  }
}

export interface LoadedConfig {
  readonly config: Config;
  /** False when the file did not exist and defaults are in use. */
  readonly exists: boolean;
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { config: defaultConfig(), exists: false };
    throw new ConfigError(file, [{ path: '(file)', message: `cannot be read: ${(error as Error).message}` }]);
  }
  return { config: parseConfigText(file, text), exists: true };
}

export function parseConfigText(file: string, text: string): Config {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, [
      { path: '(file)', message: `is not valid JSON: ${(error as Error).message}` },
    ]);
  }
  const result = validateConfig(json);
  if (!result.ok) throw new ConfigError(file, result.issues);
  return result.config;
}

export async function saveConfig(file: string, config: Config): Promise<void> {
  const result = validateConfig(config);
  if (!result.ok) throw new ConfigError(file, result.issues);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(result.config, null, 2)}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await copyFile(file, `${file}.bak`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }
  await rename(temp, file);
  // The rename is durable only once the directory entry is on disk too.
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
