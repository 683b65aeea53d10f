// Validation of rules as they arrive from a config file or the options page: the input is
// `unknown`, nothing here throws, and every problem comes back as a field path plus a message
// that tells the user what to change. The matcher compiles only rule lists that pass.

import { parseCidr, parseHostIp } from './ip.ts';
import { type HostPatternType, PRIVATE_CONTEXT, type ValidationError } from './types.ts';

/** Regexes run case-insensitively so that 'Example\.com' means what its author meant. */
export const REGEX_FLAGS = 'i';
export const MAX_REGEX_LENGTH = 512;
const MAX_HOST_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

const HOST_PATTERN_TYPES: readonly HostPatternType[] = ['exact', 'domain', 'suffix', 'regex'];
const PATTERN_LABEL: Record<HostPatternType, string> = {
  exact: 'exact host',
  domain: 'domain',
  suffix: 'suffix',
  regex: 'regex',
};

export interface ValidateOptions {
  /** Path of the rules list in the enclosing document; 'rules' by default. */
  path?: string;
  /** When given, route targets must name one of these routes. */
  routeIds?: Iterable<string>;
}

/** Lowercase and without one trailing dot: the form every host pattern is compared against. */
export function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function quote(value: string): string {
  return value.length > 80 ? `'${value.slice(0, 77)}...'` : `'${value}'`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'a list' : 'an object';
}

function checkUnknownKeys(
  obj: Obj,
  allowed: readonly string[],
  path: string,
  errors: ValidationError[],
  hint = '',
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key))
      errors.push({ path: `${path}.${key}`, message: `unknown field '${key}'${hint}` });
  }
}

/** Character-level problems shared by exact, domain and suffix patterns; null when fine. */
function hostTextProblem(text: string): string | null {
  // One regex test settles the common case; the slower checks below only explain a failure.
  if (/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i.test(text) || /^\.[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i.test(text)) {
    return text.length > MAX_HOST_LENGTH ? `it is longer than ${MAX_HOST_LENGTH} characters` : null;
  }
  if (/\s/.test(text)) return 'spaces are not allowed';
  if (text.includes('/')) return "write only the host name, without 'https://' or a path";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 127) return "write international names in their punycode form ('xn--...')";
    const ch = text[i]!;
    if (!/[a-z0-9._-]/i.test(ch)) {
      if (ch === ':') return 'a port is not part of a host pattern: put ports in match.ports';
      return `the character '${ch}' is not allowed (use letters, digits, '-', '_' and '.')`;
    }
  }
  if (text.includes('..')) return 'it has an empty label (two dots in a row)';
  if (text.length > MAX_HOST_LENGTH) return `it is longer than ${MAX_HOST_LENGTH} characters`;
  return null;
}

function hostNameProblem(name: string, type: 'exact' | 'domain'): string | null {
  if (name === '') return 'the host name is empty';
  if (parseHostIp(name) !== null) return 'it is an IP address: put it in match.ips instead';
  if (name.includes('*')) {
    return type === 'exact'
      ? "wildcards are not allowed here: use a domain pattern such as '*.example.com'"
      : "'*' is only allowed as the leading '*.'";
  }
  const text = hostTextProblem(name);
  if (text !== null) return text;
  if (name.startsWith('.')) return 'it has an empty label (a leading dot)';
  for (const label of name.split('.')) {
    if (label.length > MAX_LABEL_LENGTH) {
      return `the label ${quote(label)} is longer than ${MAX_LABEL_LENGTH} characters`;
    }
  }
  return null;
}

function suffixProblem(suffix: string): string | null {
  if (suffix === '') return 'the suffix is empty';
  if (suffix.includes('*')) {
    return "a suffix is plain text and '*' is not a wildcard here: use a domain pattern such as '*.example.com'";
  }
  return hostTextProblem(suffix);
}

interface GroupFrame {
  branchAtoms: number;
  branchAtomUnbounded: boolean;
  anyBranchSingleUnbounded: boolean;
}

/**
 * Cheap check for the textbook catastrophic-backtracking shape: a repeated group one of whose
 * alternatives is a single repeated atom, as in '(a+)+', '(\w*)*' or '(x+|y)*'. It does not try
 * to prove a pattern safe; it only catches the shapes people paste by accident.
 */
function hasNestedRepetition(src: string): boolean {
  const stack: GroupFrame[] = [
    { branchAtoms: 0, branchAtomUnbounded: false, anyBranchSingleUnbounded: false },
  ];
  let closedGroupDangerous = false;
  let i = 0;
  const top = (): GroupFrame => stack[stack.length - 1]!;
  const endBranch = (frame: GroupFrame): void => {
    if (frame.branchAtoms === 1 && frame.branchAtomUnbounded) frame.anyBranchSingleUnbounded = true;
    frame.branchAtoms = 0;
    frame.branchAtomUnbounded = false;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '*' || c === '+' || c === '{') {
      const bounded = c === '{' ? /^\{\d+(,\d+)?\}/.exec(src.slice(i)) : null;
      const unbounded = c === '{' ? /^\{\d+,\}/.exec(src.slice(i)) : null;
      if (c === '{' && bounded === null && unbounded === null) {
        // A '{' that is not a quantifier is a literal character.
        top().branchAtoms++;
        closedGroupDangerous = false;
        i++;
        continue;
      }
      if (bounded === null) {
        if (closedGroupDangerous) return true;
        top().branchAtomUnbounded = top().branchAtoms === 1 || top().branchAtomUnbounded;
      }
      closedGroupDangerous = false;
      i += c === '{' ? (bounded ?? unbounded)![0].length : 1;
      continue;
    }
    if (c === '?') {
      i++;
      continue;
    }
    closedGroupDangerous = false;
    if (c === '(') {
      top().branchAtoms++;
      stack.push({ branchAtoms: 0, branchAtomUnbounded: false, anyBranchSingleUnbounded: false });
      i++;
      if (src[i] === '?') {
        if (src[i + 1] === '<' && src[i + 2] !== '=' && src[i + 2] !== '!') {
          const end = src.indexOf('>', i);
          i = end === -1 ? src.length : end + 1;
        } else {
          i += src[i + 1] === '<' ? 3 : 2;
        }
      }
      continue;
    }
    if (c === ')') {
      const frame = stack.length > 1 ? stack.pop()! : top();
      endBranch(frame);
      closedGroupDangerous = frame.anyBranchSingleUnbounded;
      if (closedGroupDangerous && top().branchAtoms === 1) top().branchAtomUnbounded = true;
      i++;
      continue;
    }
    if (c === '|') {
      endBranch(top());
      i++;
      continue;
    }
    if (c === '^' || c === '$') {
      i++;
      continue;
    }
    top().branchAtoms++;
    if (c === '\\') {
      const next = src[i + 1];
      i +=
        next === 'x'
          ? 4
          : next === 'u'
            ? src[i + 2] === '{'
              ? src.indexOf('}', i) + 1 || src.length
              : 6
            : 2;
      continue;
    }
    if (c === '[') {
      i++;
      if (src[i] === '^') i++;
      while (i < src.length && src[i] !== ']') i += src[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    i++;
  }
  return false;
}

function regexProblem(source: string): string | null {
  if (source === '') return 'the pattern is empty';
  if (source.length > MAX_REGEX_LENGTH) return `it is longer than ${MAX_REGEX_LENGTH} characters`;
  if (/^\/.+\/[a-z]*$/.test(source)) {
    return 'write the pattern without the surrounding slashes or flags (it is already case-insensitive)';
  }
  try {
    new RegExp(source, REGEX_FLAGS);
  } catch (e) {
    return `it does not compile (${e instanceof Error ? e.message : String(e)})`;
  }
  if (hasNestedRepetition(source)) {
    return "a repeated group around a repeated atom, such as '(a+)+', can take exponential time: simplify it";
  }
  return null;
}

/** Null when `value` is a valid pattern of this type, else why not. */
export function hostPatternProblem(type: HostPatternType, value: string): string | null {
  switch (type) {
    case 'exact':
      return hostNameProblem(normalizeHost(value), 'exact');
    case 'domain': {
      if (!value.startsWith('*.')) {
        if (value === '*')
          return 'it must name a domain, as in \'*.example.com\' (leave out "hosts" to match every host)';
        const base = value.replace(/^[*.]+/, '');
        const problem = hostNameProblem(normalizeHost(base), 'domain');
        if (problem !== null) return problem;
        return `it must start with '*.', as in '*.${base}' (or use an exact pattern for this one host)`;
      }
      return hostNameProblem(normalizeHost(value.slice(2)), 'domain');
    }
    case 'suffix':
      return suffixProblem(normalizeHost(value));
    case 'regex':
      return regexProblem(value);
  }
}

export function validateHostPattern(input: unknown, path = 'pattern'): ValidationError[] {
  const errors: ValidationError[] = [];
  if (!isObject(input)) {
    const example = "{ type: 'domain', value: '*.example.com' }";
    errors.push({
      path,
      message: `a host pattern must be an object such as ${example}, not ${describe(input)}`,
    });
    return errors;
  }
  checkUnknownKeys(input, ['type', 'value'], path, errors);
  const type = input.type;
  if (typeof type !== 'string' || !(HOST_PATTERN_TYPES as readonly string[]).includes(type)) {
    errors.push({ path: `${path}.type`, message: "type must be 'exact', 'domain', 'suffix' or 'regex'" });
  }
  if (typeof input.value !== 'string') {
    errors.push({ path: `${path}.value`, message: 'value must be a string' });
    return errors;
  }
  if (errors.length > 0) return errors;
  const patternType = type as HostPatternType;
  const problem = hostPatternProblem(patternType, input.value);
  if (problem !== null) {
    errors.push({
      path,
      message: `${quote(input.value)} is not a valid ${PATTERN_LABEL[patternType]} pattern: ${problem}`,
    });
  }
  return errors;
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

function validatePortEntry(entry: unknown, path: string, errors: ValidationError[]): void {
  if (typeof entry === 'number') {
    if (!isPort(entry)) {
      errors.push({ path, message: `a port must be a whole number from 1 to 65535, not ${entry}` });
    }
    return;
  }
  if (typeof entry === 'string') {
    const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(entry);
    const message = range
      ? `write the range as { from: ${range[1]}, to: ${range[2]} }, not as a string`
      : /^\s*\d+\s*$/.test(entry)
        ? `write the port as a number (${entry.trim()}), not as a string`
        : `${quote(entry)} is not a port: use a number such as 443 or a range such as { from: 8000, to: 8999 }`;
    errors.push({ path, message });
    return;
  }
  if (!isObject(entry)) {
    errors.push({
      path,
      message: `a port must be a number such as 443 or a range such as { from: 8000, to: 8999 }, not ${describe(entry)}`,
    });
    return;
  }
  checkUnknownKeys(entry, ['from', 'to'], path, errors);
  let ok = true;
  for (const key of ['from', 'to'] as const) {
    if (!isPort(entry[key])) {
      errors.push({
        path: `${path}.${key}`,
        message: `'${key}' must be a whole number from 1 to 65535, not ${describe(entry[key])}`,
      });
      ok = false;
    }
  }
  if (ok && (entry.from as number) > (entry.to as number)) {
    errors.push({ path, message: `the range starts at ${entry.from}, after its end ${entry.to}: swap them` });
  }
}

export function validateTarget(
  input: unknown,
  path = 'target',
  routeIds?: ReadonlySet<string>,
): ValidationError[] {
  const errors: ValidationError[] = [];
  if (!isObject(input)) {
    errors.push({
      path,
      message: `a target must be an object such as { kind: 'direct' }, not ${describe(input)}`,
    });
    return errors;
  }
  const kind = input.kind;
  if (kind === 'route') {
    checkUnknownKeys(input, ['kind', 'routeId'], path, errors);
    const routeId = input.routeId;
    if (typeof routeId !== 'string' || routeId === '') {
      errors.push({ path: `${path}.routeId`, message: 'a route target needs the id of a route' });
    } else if (routeIds !== undefined && !routeIds.has(routeId)) {
      errors.push({ path: `${path}.routeId`, message: `there is no route with id ${quote(routeId)}` });
    }
  } else if (kind === 'direct' || kind === 'block') {
    checkUnknownKeys(input, ['kind'], path, errors);
  } else {
    errors.push({ path: `${path}.kind`, message: "target kind must be 'route', 'direct' or 'block'" });
  }
  return errors;
}

function validateList(
  match: Obj,
  key: string,
  path: string,
  what: string,
  errors: ValidationError[],
  check: (entry: unknown, entryPath: string) => void,
): void {
  const list = match[key];
  if (list === undefined) return;
  if (!Array.isArray(list)) {
    errors.push({ path: `${path}.${key}`, message: `${key} must be a list of ${what}` });
    return;
  }
  if (list.length === 0) {
    errors.push({
      path: `${path}.${key}`,
      message: `${key} is empty: list at least one of ${what}, or leave ${key} out to match any`,
    });
    return;
  }
  for (let i = 0; i < list.length; i++) check(list[i], `${path}.${key}[${i}]`);
}

// Firefox's cookieStoreIds ('firefox-default', 'firefox-container-12', 'firefox-private').
const CONTEXT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function contextProblem(entry: unknown): string | null {
  if (typeof entry !== 'string') {
    return `a context must be a container's cookieStoreId such as 'firefox-container-1' or '${PRIVATE_CONTEXT}', not ${describe(entry)}`;
  }
  if (entry === PRIVATE_CONTEXT || CONTEXT_ID.test(entry)) return null;
  return `${quote(entry)} is not a container id: use its cookieStoreId (such as 'firefox-container-1') or '${PRIVATE_CONTEXT}' for private windows`;
}

function validateMatch(input: unknown, path: string, errors: ValidationError[]): void {
  if (!isObject(input)) {
    errors.push({
      path,
      message: `match must be an object with hosts, ips, ports and/or contexts, not ${describe(input)}`,
    });
    return;
  }
  checkUnknownKeys(
    input,
    ['hosts', 'ips', 'ports', 'contexts'],
    path,
    errors,
    ' (conditions are hosts, ips, ports and contexts)',
  );
  validateList(input, 'hosts', path, 'host patterns', errors, (entry, entryPath) => {
    errors.push(...validateHostPattern(entry, entryPath));
  });
  validateList(input, 'ips', path, 'addresses or CIDR ranges', errors, (entry, entryPath) => {
    if (typeof entry !== 'string') {
      errors.push({
        path: entryPath,
        message: `an IP entry must be a string such as '10.0.0.0/8', not ${describe(entry)}`,
      });
      return;
    }
    const parsed = parseCidr(entry);
    if (!parsed.ok) {
      errors.push({
        path: entryPath,
        message: `${quote(entry)} is not a valid IP address or CIDR range: ${parsed.error}`,
      });
    }
  });
  validateList(input, 'ports', path, 'ports', errors, (entry, entryPath) => {
    validatePortEntry(entry, entryPath, errors);
  });
  validateList(input, 'contexts', path, 'containers or private windows', errors, (entry, entryPath) => {
    const problem = contextProblem(entry);
    if (problem !== null) errors.push({ path: entryPath, message: problem });
  });
  if (input.hosts !== undefined && input.ips !== undefined) {
    errors.push({
      path,
      message:
        'a rule cannot have both hosts and ips: a destination is either a host name or an IP address, ' +
        'so it would never match; split it into two rules',
    });
  }
}

function validateRule(
  input: unknown,
  path: string,
  routeIds: ReadonlySet<string> | undefined,
  errors: ValidationError[],
): void {
  if (!isObject(input)) {
    errors.push({ path, message: `a rule must be an object, not ${describe(input)}` });
    return;
  }
  checkUnknownKeys(input, ['id', 'enabled', 'name', 'match', 'target'], path, errors);
  if (typeof input.id !== 'string' || input.id === '') {
    errors.push({ path: `${path}.id`, message: 'a rule needs an id: a non-empty string' });
  }
  if (typeof input.enabled !== 'boolean') {
    errors.push({ path: `${path}.enabled`, message: 'enabled must be true or false' });
  }
  if (input.name !== undefined && typeof input.name !== 'string') {
    errors.push({ path: `${path}.name`, message: 'name must be a string' });
  }
  validateMatch(input.match, `${path}.match`, errors);
  errors.push(...validateTarget(input.target, `${path}.target`, routeIds));
}

/** Validates an ordered rule list; returns every problem found (empty when valid). */
export function validateRules(input: unknown, options: ValidateOptions = {}): ValidationError[] {
  const path = options.path ?? 'rules';
  const routeIds = options.routeIds === undefined ? undefined : new Set(options.routeIds);
  const errors: ValidationError[] = [];
  if (!Array.isArray(input)) {
    errors.push({ path, message: `rules must be a list, not ${describe(input)}` });
    return errors;
  }
  const seen = new Map<string, number>();
  for (let i = 0; i < input.length; i++) {
    const rulePath = `${path}[${i}]`;
    const rule: unknown = input[i];
    validateRule(rule, rulePath, routeIds, errors);
    if (isObject(rule) && typeof rule.id === 'string' && rule.id !== '') {
      const first = seen.get(rule.id);
      if (first === undefined) {
        seen.set(rule.id, i);
      } else {
        errors.push({
          path: `${rulePath}.id`,
          message: `the id ${quote(rule.id)} is already used by ${path}[${first}]: rule ids must be unique`,
        });
      }
    }
  }
  return errors;
}

/** Validates `{ rules, defaultTarget }`, with paths relative to that object. */
export function validateRuleset(
  input: unknown,
  options: Omit<ValidateOptions, 'path'> = {},
): ValidationError[] {
  if (!isObject(input)) return [{ path: '', message: `a ruleset must be an object, not ${describe(input)}` }];
  const routeIds = options.routeIds === undefined ? undefined : new Set(options.routeIds);
  return [
    ...validateRules(input.rules, { path: 'rules', routeIds }),
    ...validateTarget(input.defaultTarget, 'defaultTarget', routeIds),
  ];
}
