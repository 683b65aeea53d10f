/**
 * `switchyard install` and `uninstall`: the launcher and one host manifest per browser (plus, on
 * Windows, the registry key naming it). What was written is kept in a small record in the data
 * directory, so uninstall removes exactly that, including the directories install had to create,
 * and nothing a person or a browser put there since.
 *
 * Installing twice is harmless: unchanged files are left alone and the record is merged.
 */
import { readFile, rmdir, unlink } from 'node:fs/promises';
import {
  BROWSERS,
  BROWSER_IDS,
  type BrowserId,
  type ManifestTarget,
  type PlatformContext,
  type Registry,
  browserPresent,
  manifestTarget,
  pathsFor,
  regExeArgs,
  regExePath,
} from './browsers.ts';
import {
  type LauncherTarget,
  dataDir,
  launcherPath,
  launcherText,
  parseLauncher,
  writeIfChanged,
} from './launcher.ts';
import { DEFAULT_EXTENSION_IDS, type ExtensionIds, buildManifest, manifestText } from './manifest.ts';

export type BrowserChoice = readonly BrowserId[] | 'all';

export interface InstallRequest {
  readonly ctx: PlatformContext;
  readonly browsers: BrowserChoice;
  readonly ids?: ExtensionIds;
  readonly userDataDir?: string;
  readonly launcher: LauncherTarget;
  /** Whether a browser counts as found for 'all'; the default looks for its per-user directory. */
  readonly present?: (target: ManifestTarget) => boolean;
}

export interface PlannedManifest {
  readonly target: ManifestTarget;
  readonly text: string;
}

export interface InstallPlan {
  readonly launcherPath: string;
  readonly launcherText: string;
  readonly manifests: readonly PlannedManifest[];
  /** With 'all': the browsers passed over because they have never run here. */
  readonly notFound: readonly ManifestTarget[];
}

export function targetLabel(target: ManifestTarget): string {
  return target.userDataDir !== undefined
    ? `${target.browser.label} (--user-data-dir ${target.userDataDir})`
    : target.browser.label;
}

/**
 * The targets for a choice of browsers. With a user data dir, 'all' means Chromium: the
 * directory belongs to one Chromium-family browser, and which one does not change the path.
 */
export function chosenTargets(
  ctx: PlatformContext,
  browsers: BrowserChoice,
  userDataDir: string | undefined,
): ManifestTarget[] {
  if (userDataDir !== undefined) {
    const ids: readonly BrowserId[] = browsers === 'all' ? ['chromium'] : browsers;
    return ids.map((id) => manifestTarget(id, ctx, userDataDir));
  }
  return (browsers === 'all' ? BROWSER_IDS : browsers).map((id) => manifestTarget(id, ctx));
}

/** What install would write; pure apart from looking for the browsers' directories. */
export function planInstall(request: InstallRequest): InstallPlan {
  const { ctx } = request;
  const ids = request.ids ?? DEFAULT_EXTENSION_IDS;
  const present = request.present ?? browserPresent;
  const all = chosenTargets(ctx, request.browsers, request.userDataDir);
  // An explicit choice (or a user data dir, which the browser creates on first start) installs
  // even before the browser has ever run.
  const filter = request.browsers === 'all' && request.userDataDir === undefined;
  const chosen = filter ? all.filter(present) : all;
  const path = launcherPath(ctx);
  return {
    launcherPath: path,
    launcherText: launcherText(request.launcher, ctx.platform),
    manifests: chosen.map((target) => ({
      target,
      text: manifestText(buildManifest(target.browser.family, path, ids)),
    })),
    notFound: filter ? all.filter((t) => !present(t)) : [],
  };
}

/** A command line for people (and tests), quoted the way cmd.exe reads it. */
function windowsCommandLine(file: string, args: readonly string[]): string {
  const q = (a: string): string => (/[\s"]/.test(a) || a === '' ? `"${a.replaceAll('"', '\\"')}"` : a);
  return [file, ...args].map(q).join(' ');
}

/** The reg.exe commands installing the plan runs on Windows, one per browser. */
export function registryCommands(ctx: PlatformContext, plan: InstallPlan): string[] {
  return plan.manifests.flatMap(({ target }) =>
    target.registryKey === undefined
      ? []
      : [windowsCommandLine(regExePath(ctx), regExeArgs.add(target.registryKey, target.manifestPath))],
  );
}

/** The reg.exe commands uninstalling runs for these targets. */
export function registryRemoveCommands(ctx: PlatformContext, targets: readonly ManifestTarget[]): string[] {
  return targets.flatMap((t) =>
    t.registryKey === undefined
      ? []
      : [windowsCommandLine(regExePath(ctx), regExeArgs.delete(t.registryKey))],
  );
}

// ---- the record -------------------------------------------------------------------------------

export interface RecordedManifest {
  readonly browser: BrowserId;
  readonly path: string;
  readonly registryKey?: string;
  readonly userDataDir?: string;
}

export interface InstallRecord {
  readonly version: 1;
  readonly launcher: string;
  readonly manifests: readonly RecordedManifest[];
  /** Directories install created, outermost first; removed again only while empty. */
  readonly createdDirs: readonly string[];
}

export function recordPath(ctx: PlatformContext): string {
  return pathsFor(ctx).join(dataDir(ctx), 'install.json');
}

function isRecord(value: unknown): value is InstallRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    r.version === 1 &&
    typeof r.launcher === 'string' &&
    Array.isArray(r.manifests) &&
    r.manifests.every(
      (m: unknown) =>
        typeof m === 'object' &&
        m !== null &&
        typeof (m as Record<string, unknown>).path === 'string' &&
        BROWSER_IDS.includes((m as Record<string, unknown>).browser as BrowserId),
    ) &&
    Array.isArray(r.createdDirs) &&
    r.createdDirs.every((d: unknown) => typeof d === 'string')
  );
}

/** The record, or undefined when there is none (or it is not one we can trust). */
export async function readRecord(ctx: PlatformContext): Promise<InstallRecord | undefined> {
  try {
    const json: unknown = JSON.parse(await readFile(recordPath(ctx), 'utf8'));
    return isRecord(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

function recordText(record: InstallRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

function unique<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) seen.set(key(item), item);
  return [...seen.values()];
}

// ---- install ----------------------------------------------------------------------------------

export interface InstallIo {
  /** Needed on Windows only. */
  readonly registry?: Registry;
  /** One line per file written or left as it was. */
  readonly log: (line: string) => void;
}

export interface InstallResult {
  readonly plan: InstallPlan;
  readonly launcher: string | undefined;
  readonly written: readonly string[];
}

export async function install(request: InstallRequest, io: InstallIo): Promise<InstallResult> {
  const { ctx } = request;
  const plan = planInstall(request);
  if (plan.manifests.length === 0) return { plan, launcher: undefined, written: [] };
  if (ctx.platform === 'win32' && io.registry === undefined) throw new Error('no registry to install into');

  const written: string[] = [];
  const createdDirs: string[] = [];
  const note = (what: string, outcome: string, path: string): void => {
    io.log(`${what}: ${outcome} ${path}`);
    if (outcome !== 'unchanged') written.push(path);
  };

  const launcher = await writeIfChanged(plan.launcherPath, plan.launcherText, 0o755);
  createdDirs.push(...launcher.createdDirs);
  note('launcher', launcher.outcome, plan.launcherPath);

  const recorded: RecordedManifest[] = [];
  for (const { target, text } of plan.manifests) {
    const result = await writeIfChanged(target.manifestPath, text, 0o644);
    createdDirs.push(...result.createdDirs);
    note(targetLabel(target), result.outcome, target.manifestPath);
    if (target.registryKey !== undefined && io.registry !== undefined) {
      const current = await io.registry.getDefault(target.registryKey);
      if (current !== target.manifestPath) {
        await io.registry.setDefault(target.registryKey, target.manifestPath);
        io.log(`${targetLabel(target)}: registry ${target.registryKey} = ${target.manifestPath}`);
      }
    }
    recorded.push({
      browser: target.browser.id,
      path: target.manifestPath,
      ...(target.registryKey !== undefined ? { registryKey: target.registryKey } : {}),
      ...(target.userDataDir !== undefined ? { userDataDir: target.userDataDir } : {}),
    });
  }

  const previous = await readRecord(ctx);
  const record: InstallRecord = {
    version: 1,
    launcher: plan.launcherPath,
    manifests: unique([...(previous?.manifests ?? []), ...recorded], (m) => m.path),
    createdDirs: unique([...(previous?.createdDirs ?? []), ...createdDirs], (d) => d),
  };
  const saved = await writeIfChanged(recordPath(ctx), recordText(record), 0o644);
  note('install record', saved.outcome, recordPath(ctx));
  return { plan, launcher: plan.launcherPath, written };
}

// ---- uninstall --------------------------------------------------------------------------------

export interface UninstallRequest {
  readonly ctx: PlatformContext;
  /** Only these browsers' manifests; everything install wrote when absent. */
  readonly browsers?: readonly BrowserId[];
  /** Only the manifest in this user data dir. */
  readonly userDataDir?: string;
}

export interface UninstallResult {
  readonly removed: readonly string[];
  /** False when there was no install record and the well-known places were searched instead. */
  readonly fromRecord: boolean;
}

async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Deepest first, and only while empty: anything someone else put there stays. */
async function removeEmptyDirs(dirs: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      await rmdir(dir);
      removed.push(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') removed.push(dir);
    }
  }
  return removed;
}

/** Whether a manifest is ours: its `path` is our launcher. Anything else is left alone. */
async function manifestIsOurs(path: string, launcher: string): Promise<boolean> {
  try {
    const json: unknown = JSON.parse(await readFile(path, 'utf8'));
    return typeof json === 'object' && json !== null && (json as Record<string, unknown>).path === launcher;
  } catch {
    return false;
  }
}

export async function uninstall(request: UninstallRequest, io: InstallIo): Promise<UninstallResult> {
  const { ctx } = request;
  const p = pathsFor(ctx);
  const saved = await readRecord(ctx);
  const fromRecord = saved !== undefined;
  const record = saved ?? (await recordFromDisk(ctx, request.userDataDir, io.registry));
  const udd = request.userDataDir !== undefined ? p.resolve(request.userDataDir) : undefined;
  const selected = (m: RecordedManifest): boolean => {
    if (udd !== undefined) return m.userDataDir === udd;
    if (request.browsers !== undefined)
      return m.userDataDir === undefined && request.browsers.includes(m.browser);
    return true;
  };
  const going = record.manifests.filter(selected);
  const staying = record.manifests.filter((m) => !selected(m));
  const removed: string[] = [];

  for (const m of going) {
    const name = BROWSERS[m.browser].label;
    const label = m.userDataDir !== undefined ? `${name} (--user-data-dir ${m.userDataDir})` : name;
    if (m.registryKey !== undefined && io.registry !== undefined) {
      if (await io.registry.deleteKey(m.registryKey))
        io.log(`${label}: removed registry key ${m.registryKey}`);
    }
    if (await removeFile(m.path)) {
      removed.push(m.path);
      io.log(`${label}: removed ${m.path}`);
    }
  }

  const everything = staying.length === 0;
  if (everything) {
    if (record.launcher !== '' && (await removeFile(record.launcher))) {
      removed.push(record.launcher);
      io.log(`launcher: removed ${record.launcher}`);
    }
    if (fromRecord && (await removeFile(recordPath(ctx)))) {
      removed.push(recordPath(ctx));
      io.log(`install record: removed ${recordPath(ctx)}`);
    }
  }
  const gone = new Set(await removeEmptyDirs(record.createdDirs));
  if (!everything) {
    const kept: InstallRecord = {
      ...record,
      manifests: staying,
      createdDirs: record.createdDirs.filter((d) => !gone.has(d)),
    };
    await writeIfChanged(recordPath(ctx), recordText(kept), 0o644);
  }
  return { removed, fromRecord };
}

/**
 * Without a record (deleted by hand, or written by an older version): the well-known places,
 * taking only manifests (and registry keys) that point at our launcher, and a launcher that
 * install wrote.
 */
async function recordFromDisk(
  ctx: PlatformContext,
  userDataDir: string | undefined,
  registry: Registry | undefined,
): Promise<InstallRecord> {
  const launcher = launcherPath(ctx);
  const targets = chosenTargets(ctx, 'all', undefined);
  if (userDataDir !== undefined) targets.push(manifestTarget('chromium', ctx, userDataDir));
  const manifests: RecordedManifest[] = [];
  for (const t of targets) {
    const registered =
      t.registryKey !== undefined && registry !== undefined
        ? (await registry.getDefault(t.registryKey)) === t.manifestPath
        : false;
    if (!registered && !(await manifestIsOurs(t.manifestPath, launcher))) continue;
    manifests.push({
      browser: t.browser.id,
      path: t.manifestPath,
      ...(registered && t.registryKey !== undefined ? { registryKey: t.registryKey } : {}),
      ...(t.userDataDir !== undefined ? { userDataDir: t.userDataDir } : {}),
    });
  }
  let ours = false;
  try {
    ours = parseLauncher(await readFile(launcher, 'utf8')) !== undefined;
  } catch {
    ours = false;
  }
  return { version: 1, launcher: ours ? launcher : '', manifests, createdDirs: [] };
}
