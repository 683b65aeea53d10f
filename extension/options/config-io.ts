// Export and import of the whole configuration. Secrets never travel in a file: passwords live in
// the credential store, and inbound users' password hashes stay with the host.
import { type Config, type ConfigIssue, validateConfig } from '../../shared/config/schema.ts';
import { validateRules } from '../../shared/rules/validate.ts';

/** Any key that names a password (password, passwordHash) stays out of exports. */
const SECRET_KEY = /password/i;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stripSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSecrets);
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (!SECRET_KEY.test(key)) out[key] = stripSecrets(v);
  return out;
}

/**
 * Inbound users are left out entirely: without their hashes they would not be valid, and an
 * import keeps this host's users anyway.
 */
export function exportConfig(config: Config): string {
  const { users: _users, ...rest } = config;
  return `${JSON.stringify(stripSecrets(rest), null, 2)}\n`;
}

export type ImportResult =
  | { readonly ok: true; readonly config: Config; readonly summary: string }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

function findPasswords(value: unknown, path: string, out: ConfigIssue[]): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) findPasswords(value[i], `${path}[${i}]`, out);
  } else if (isObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (key.toLowerCase() === 'password') {
        out.push({
          path: at,
          message:
            'passwords are never imported: remove this field, then set the password in Upstreams (it goes to the credential store)',
        });
      } else findPasswords(v, at, out);
    }
  }
}

/**
 * Parses and validates a file's text. What an export leaves out (inbound users) is kept from
 * the current config, so a round trip changes nothing else.
 */
export function prepareImport(text: string, current: Config | undefined): ImportResult {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      issues: [
        {
          path: '(file)',
          message: `not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
        },
      ],
    };
  }
  if (!isObject(input)) {
    return {
      ok: false,
      issues: [{ path: '(root)', message: 'the file must hold one JSON object: the configuration' }],
    };
  }
  const passwords: ConfigIssue[] = [];
  findPasswords(input, '', passwords);
  const merged: Record<string, unknown> = { ...input };
  if (current && merged.users === undefined) merged.users = current.users;
  const result = validateConfig(merged);
  // A password key would also fail the schema as an unknown key: say it once, the clear way.
  const schemaIssues = result.ok
    ? []
    : result.issues.filter((i) => !(passwords.length > 0 && /password/i.test(i.message)));
  // The schema checks rules only once everything else passes; a file is fixed faster when one
  // round lists them all.
  if (!result.ok) {
    const seen = new Set(schemaIssues.map((i) => `${i.path}\n${i.message}`));
    for (const issue of validateRules(merged.rules ?? [], { path: 'rules' })) {
      if (!seen.has(`${issue.path}\n${issue.message}`)) schemaIssues.push(issue);
    }
  }
  if (passwords.length > 0 || !result.ok) return { ok: false, issues: [...passwords, ...schemaIssues] };
  const c = result.config;
  const count = (n: number, one: string) => `${n.toLocaleString('en')} ${one}${n === 1 ? '' : 's'}`;
  return {
    ok: true,
    config: c,
    summary: `${count(c.upstreams.length, 'upstream')}, ${count(c.routes.length, 'route')}, ${count(c.rules.length, 'rule')}`,
  };
}
