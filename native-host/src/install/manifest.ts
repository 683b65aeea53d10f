/**
 * The native-messaging host manifest: building it, and checking one found on disk. Pure: no
 * file system here, so every rule can be tested on strings.
 *
 * Browsers report almost every manifest mistake as "Specified native messaging host not found."
 * (docs/browser-testing.md, "Native host manifest errors are misleading"), so each problem found
 * here names the mistake and the message the browser shows for it.
 */
import {
  DEV_EXTENSION_ID,
  GECKO_EXTENSION_ID,
  NATIVE_HOST_NAME,
} from '../../../shared/messages/native-host.ts';
import type { ManifestFamily } from './browsers.ts';

export const MANIFEST_DESCRIPTION = 'Switchyard: local SOCKS proxy host';

export interface HostManifest {
  readonly name: string;
  readonly description: string;
  readonly path: string;
  readonly type: 'stdio';
  readonly allowed_origins?: readonly string[];
  readonly allowed_extensions?: readonly string[];
}

/** The extensions a manifest lets in: Chromium ids for `allowed_origins`, Gecko ids for Firefox. */
export interface ExtensionIds {
  readonly chromium: readonly string[];
  readonly gecko: readonly string[];
}

export const DEFAULT_EXTENSION_IDS: ExtensionIds = {
  chromium: [DEV_EXTENSION_ID],
  gecko: [GECKO_EXTENSION_ID],
};

const CHROMIUM_ID = /^[a-p]{32}$/;
// Firefox add-on ids are an email-like string or a {GUID}.
const GECKO_ID =
  /^(?:[A-Za-z0-9._+-]*@[A-Za-z0-9._-]+|\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\})$/;

export class ExtensionIdError extends Error {
  override readonly name = 'ExtensionIdError';
}

/**
 * Sorts `--extension-id` values into Chromium and Gecko ids by their shape; a family with none
 * given keeps the development build's id.
 */
export function extensionIds(given: readonly string[] = []): ExtensionIds {
  const chromium: string[] = [];
  const gecko: string[] = [];
  for (const raw of given) {
    const id = raw.trim();
    if (CHROMIUM_ID.test(id)) chromium.push(id);
    else if (GECKO_ID.test(id)) gecko.push(id);
    else if (id.startsWith('chrome-extension://')) {
      throw new ExtensionIdError(
        `'${raw}' is an origin; give the id alone (the 32 letters between chrome-extension:// and /)`,
      );
    } else {
      throw new ExtensionIdError(
        `'${raw}' is not an extension id: a Chromium id is 32 letters a-p (chrome://extensions shows it), ` +
          'a Firefox id looks like name@example.org or {GUID}',
      );
    }
  }
  return {
    chromium: chromium.length > 0 ? [...new Set(chromium)] : DEFAULT_EXTENSION_IDS.chromium,
    gecko: gecko.length > 0 ? [...new Set(gecko)] : DEFAULT_EXTENSION_IDS.gecko,
  };
}

/** Exactly `chrome-extension://<id>/`: without the slash the browser says "not found". */
export function chromiumOrigin(id: string): string {
  return `chrome-extension://${id}/`;
}

export function buildManifest(family: ManifestFamily, launcherPath: string, ids: ExtensionIds): HostManifest {
  const base = {
    name: NATIVE_HOST_NAME,
    description: MANIFEST_DESCRIPTION,
    path: launcherPath,
    type: 'stdio',
  };
  return family === 'chromium'
    ? { ...base, type: 'stdio', allowed_origins: ids.chromium.map(chromiumOrigin) }
    : { ...base, type: 'stdio', allowed_extensions: [...ids.gecko] };
}

export function manifestText(manifest: HostManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

// ---- checking ---------------------------------------------------------------------------------

export const NOT_FOUND = '"Specified native messaging host not found."';
export const FORBIDDEN = '"Access to the specified native messaging host is forbidden."';
export const EXITED = '"Native host has exited."';

export interface ManifestProblem {
  /** 'problem' stops the extension from connecting; 'warn' works but is not what install writes. */
  readonly severity: 'problem' | 'warn';
  readonly message: string;
}

export interface ManifestCheck {
  /** The manifest file's path (its base name must be `<name>.json`). */
  readonly file: string;
  readonly text: string;
  readonly family: ManifestFamily;
  readonly ids: ExtensionIds;
  /** What install writes for `path`; a different one is a warning. */
  readonly expectedPath?: string;
  /** Windows resolves a relative `path` against the manifest's directory; elsewhere it is refused. */
  readonly platform?: NodeJS.Platform;
}

export interface ManifestReport {
  readonly problems: readonly ManifestProblem[];
  /** The parsed manifest when it was a JSON object, for checks that need the file system. */
  readonly manifest: Readonly<Record<string, unknown>> | undefined;
}

const EXACT_ORIGIN = /^chrome-extension:\/\/[a-p]{32}\/$/;

// Chrome's rule for host names.
const HOST_NAME = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

function baseName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}

function isAbsolute(path: string, platform: NodeJS.Platform): boolean {
  if (platform === 'win32') return /^(?:[A-Za-z]:[\\/]|\\\\)/.test(path);
  return path.startsWith('/');
}

function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.every((v): v is string => typeof v === 'string') ? value : undefined;
}

export function checkManifest(check: ManifestCheck): ManifestReport {
  const problems: ManifestProblem[] = [];
  const problem = (message: string): void => void problems.push({ severity: 'problem', message });
  const warn = (message: string): void => void problems.push({ severity: 'warn', message });
  const platform = check.platform ?? process.platform;

  let json: unknown;
  try {
    json = JSON.parse(check.text);
  } catch (error) {
    problem(`is not valid JSON (${(error as Error).message}): the browser says ${NOT_FOUND}`);
    return { problems, manifest: undefined };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    problem(`is not a JSON object: the browser says ${NOT_FOUND}`);
    return { problems, manifest: undefined };
  }
  const m = json as Record<string, unknown>;

  if (typeof m.name !== 'string') {
    problem(`has no "name": the browser says ${NOT_FOUND}`);
  } else {
    if (m.name !== NATIVE_HOST_NAME) {
      problem(`"name" is "${m.name}", not "${NATIVE_HOST_NAME}", the name the extension connects to`);
    } else if (!HOST_NAME.test(m.name)) {
      problem(`"name" may hold only lowercase letters, digits, dots and underscores`);
    }
    const file = baseName(check.file);
    if (file !== `${m.name}.json`) {
      problem(
        `the file is named ${file}, not "name" + .json (${m.name}.json): the browser says ${NOT_FOUND}`,
      );
    }
  }

  if (m.type !== 'stdio') problem(`"type" must be "stdio", not ${JSON.stringify(m.type)}`);

  if (typeof m.path !== 'string' || m.path === '') {
    problem(`has no "path" to the launcher: the browser says ${NOT_FOUND}`);
  } else if (!isAbsolute(m.path, platform)) {
    if (platform === 'win32')
      warn(`"path" ${m.path} is relative (to the manifest's folder); install writes it absolute`);
    else problem(`"path" ${m.path} is relative; it must be absolute: the browser says ${NOT_FOUND}`);
  } else if (check.expectedPath !== undefined && m.path !== check.expectedPath) {
    warn(`"path" is ${m.path}, not the launcher install writes (${check.expectedPath})`);
  }

  if (check.family === 'chromium') checkOrigins(m, check.ids.chromium, problem);
  else checkExtensions(m, check.ids.gecko, problem);

  return { problems, manifest: m };
}

function checkOrigins(
  m: Readonly<Record<string, unknown>>,
  ids: readonly string[],
  problem: (message: string) => void,
): void {
  const origins = stringList(m.allowed_origins);
  if (origins === undefined) {
    problem(
      m.allowed_extensions !== undefined && m.allowed_origins === undefined
        ? `has "allowed_extensions" (Firefox's key) but no "allowed_origins": the browser says ${NOT_FOUND}`
        : `has no "allowed_origins" list of strings: the browser says ${NOT_FOUND}`,
    );
    return;
  }
  // One malformed entry makes Chromium reject the whole manifest, so each is a problem.
  let malformed = false;
  for (const origin of origins) {
    if (EXACT_ORIGIN.test(origin)) continue;
    malformed = true;
    if (origin.includes('*')) {
      problem(
        `"allowed_origins" has the wildcard "${origin}"; wildcards are not allowed: the browser says ${NOT_FOUND}`,
      );
    } else if (EXACT_ORIGIN.test(`${origin}/`)) {
      problem(`"allowed_origins" has "${origin}" without the trailing "/": the browser says ${NOT_FOUND}`);
    } else {
      problem(
        `"allowed_origins" has "${origin}", which is not chrome-extension://<id>/: the browser says ${NOT_FOUND}`,
      );
    }
  }
  // The browser stops at "not found" then, and never gets as far as "forbidden".
  if (malformed) return;
  const missing = ids.filter((id) => !origins.includes(chromiumOrigin(id)));
  for (const id of missing) {
    const others = origins.length > 0 ? `only ${origins.map((o) => `"${o}"`).join(', ')}` : 'nothing';
    problem(
      `"allowed_origins" lets in ${others}, not the extension ${chromiumOrigin(id)}: the browser says ${FORBIDDEN}`,
    );
  }
}

function checkExtensions(
  m: Readonly<Record<string, unknown>>,
  ids: readonly string[],
  problem: (message: string) => void,
): void {
  const extensions = stringList(m.allowed_extensions);
  if (extensions === undefined) {
    problem(
      m.allowed_origins !== undefined
        ? `has "allowed_origins" (Chromium's key) but no "allowed_extensions", which Firefox needs`
        : `has no "allowed_extensions" list of strings, which Firefox needs`,
    );
    return;
  }
  for (const id of ids.filter((i) => !extensions.includes(i))) {
    const others = extensions.length > 0 ? `only ${extensions.map((e) => `"${e}"`).join(', ')}` : 'nothing';
    problem(`"allowed_extensions" lets in ${others}, not the extension ${id}`);
  }
}
