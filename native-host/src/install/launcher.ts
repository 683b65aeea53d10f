/**
 * The launcher the host manifest's `path` names: a tiny script that starts this switchyard's
 * `native-host` command with absolute paths. The browser starts it with a minimal environment
 * and an unknown working directory, and a manifest cannot carry arguments, so it must name both
 * node and the host file in full: `#!/usr/bin/env node` would find whatever node comes first on
 * the browser's PATH, if any.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PlatformContext, pathsFor, windowsLocalAppData } from './browsers.ts';

/** The per-user data directory: $XDG_DATA_HOME/switchyard, Application Support, %LOCALAPPDATA%. */
export function dataDir(ctx: PlatformContext): string {
  if (ctx.platform === 'win32') return pathsFor(ctx).join(windowsLocalAppData(ctx), 'Switchyard');
  if (ctx.platform === 'darwin')
    return pathsFor(ctx).join(ctx.home, 'Library', 'Application Support', 'Switchyard');
  const xdg = ctx.env.XDG_DATA_HOME;
  return pathsFor(ctx).join(
    xdg?.startsWith('/') ? xdg : pathsFor(ctx).join(ctx.home, '.local', 'share'),
    'switchyard',
  );
}

export function launcherPath(ctx: PlatformContext): string {
  const name = ctx.platform === 'win32' ? 'switchyard-native-host.cmd' : 'switchyard-native-host';
  return pathsFor(ctx).join(dataDir(ctx), name);
}

/** What the launcher runs. */
export interface LauncherTarget {
  /** Absolute path of the node executable. */
  readonly node: string;
  /** Absolute path of the built host, dist/host/switchyard.js. */
  readonly hostScript: string;
}

/** One POSIX shell word: single quotes pass everything through, and a quote is closed, escaped, reopened. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function shellUnquote(word: string): string {
  return word.replaceAll(`'\\''`, "'");
}

const MARKER = 'Written by `switchyard install`';

export function launcherText(target: LauncherTarget, platform: NodeJS.Platform): string {
  if (platform === 'win32') {
    // Windows paths cannot contain '"'; '%' is the one character a batch file still expands.
    const q = (path: string): string => `"${path.replaceAll('%', '%%')}"`;
    return [
      '@echo off',
      `rem ${MARKER}: the browser starts this for native messaging.`,
      `${q(target.node)} ${q(target.hostScript)} native-host %*`,
      '',
    ].join('\r\n');
  }
  return [
    '#!/bin/sh',
    `# ${MARKER}: the browser starts this for native messaging.`,
    `exec ${shellQuote(target.node)} ${shellQuote(target.hostScript)} native-host "$@"`,
    '',
  ].join('\n');
}

/** The paths a launcher written by install runs, or undefined for any other file. */
export function parseLauncher(text: string): LauncherTarget | undefined {
  const posix = /^exec '((?:[^']|'\\'')*)' '((?:[^']|'\\'')*)' native-host "\$@"$/m.exec(text);
  if (posix?.[1] !== undefined && posix[2] !== undefined) {
    return { node: shellUnquote(posix[1]), hostScript: shellUnquote(posix[2]) };
  }
  const cmd = /^"([^"]+)" "([^"]+)" native-host %\*\r?$/m.exec(text);
  if (cmd?.[1] !== undefined && cmd[2] !== undefined) {
    return { node: cmd[1].replaceAll('%%', '%'), hostScript: cmd[2].replaceAll('%%', '%') };
  }
  return undefined;
}

/**
 * The built host this process belongs to. Running from the bundle, that is this very file;
 * running from source (tsx), it is the repository's dist/host/switchyard.js, which may not be
 * built yet (doctor says so).
 */
export function defaultHostScript(): string {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.js') || self.endsWith('.mjs')) return self;
  return fileURLToPath(new URL('../../../dist/host/switchyard.js', import.meta.url));
}

// ---- writing ----------------------------------------------------------------------------------

export type WriteOutcome = 'created' | 'updated' | 'unchanged';

export interface WriteResult {
  readonly outcome: WriteOutcome;
  /** Directories this write had to create, outermost first, so uninstall can remove them again. */
  readonly createdDirs: readonly string[];
}

/** The directories `mkdir -p dir` created, given the first one it reported. */
function createdChain(first: string | undefined, dir: string): string[] {
  if (first === undefined) return [];
  const out = [first];
  const rest = relative(first, dir);
  if (rest === '') return out;
  let current = first;
  for (const part of rest.split(sep)) {
    current = join(current, part);
    out.push(current);
  }
  return out;
}

/**
 * Writes `text` to `file` with `mode` unless it is there already, through a temporary file and
 * a rename, so the browser never reads half a manifest and a running launcher is never truncated.
 */
export async function writeIfChanged(file: string, text: string, mode: number): Promise<WriteResult> {
  const dir = dirname(file);
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  const createdDirs = createdChain(first, dir);
  let existed = false;
  try {
    const [current, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    existed = true;
    const modeOk = process.platform === 'win32' || (info.mode & 0o777) === mode;
    if (current === text && modeOk && info.isFile()) return { outcome: 'unchanged', createdDirs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { mode, flag: 'wx' });
    // The umask may have taken bits away, and the launcher must be executable.
    await chmod(temp, mode);
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  return { outcome: existed ? 'updated' : 'created', createdDirs };
}

export async function writeLauncher(
  ctx: PlatformContext,
  target: LauncherTarget,
): Promise<WriteResult & { path: string }> {
  const path = launcherPath(ctx);
  const result = await writeIfChanged(path, launcherText(target, ctx.platform), 0o755);
  return { ...result, path };
}
