// Builds the browser's proxy auto-config script from the same rules the host routes with.
//
// The browser only needs to know whether a request may skip the local hop: "DIRECT" exactly when
// the host's matcher would pick a direct target, otherwise the local SOCKS5 server (which then
// blocks, routes or goes direct itself, and resolves names at the exit). Route and block targets
// are therefore the same answer here, but their rules are kept: under first-match-wins a route
// rule before a direct rule must shadow it, so the PAC needs the full rule order to agree with
// the host.
//
// The rules are embedded as data with the matcher's index (exact and domain maps, dotted
// suffixes by their tail, per-prefix address tables, scan lists), not as one `if` per rule: a
// 10,000-rule script stays a few hundred kilobytes, loads with one JSON.parse and answers with a
// handful of hash lookups. See runtime.ts for the code that reads it.

import { parseCidr } from '../rules/ip.ts';
import { RulesValidationError } from '../rules/matcher.ts';
import type { Rule, RuleTarget } from '../rules/types.ts';
import { normalizeHost, REGEX_FLAGS, validateRules, validateTarget } from '../rules/validate.ts';
import { PAC_RUNTIME, type PacData, type PacIndexList, prefixKey } from './runtime.ts';

/**
 * What the browser does when the local host does not answer: 'fail-closed' lets the request
 * fail (nothing leaks around the proxy), 'direct' lets the browser go DIRECT instead.
 */
export type PacFallback = 'fail-closed' | 'direct';

export interface PacProxy {
  /** Where the host's SOCKS server listens, normally '127.0.0.1'. */
  host: string;
  port: number;
}

export interface PacInput {
  rules: Rule[];
  defaultTarget: RuleTarget;
  proxy: PacProxy;
  fallback: PacFallback;
}

/** The global the generated script keeps its state in; tests read `failures` and `loadError`. */
export const PAC_STATE_GLOBAL = 'SwitchyardPac';

function proxyAnswer(proxy: PacProxy, fallback: PacFallback): string {
  const { host, port } = proxy;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`the proxy port must be a whole number from 1 to 65535, not ${port}`);
  }
  // The answer is parsed by the browser as 'SOCKS5 host:port[; DIRECT]' and must be ASCII (Chrome
  // rejects anything else), so only a plain name or an IP literal can be the host.
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!/^[A-Za-z0-9._-]+$/.test(bare) && !/^[0-9A-Fa-f:.]+$/.test(bare)) {
    throw new RangeError(`the proxy host must be a host name or an IP address, not '${host}'`);
  }
  const address = bare.includes(':') ? `[${bare}]` : bare;
  if (fallback !== 'fail-closed' && fallback !== 'direct') {
    throw new RangeError(`fallback must be 'fail-closed' or 'direct', not '${String(fallback)}'`);
  }
  const answer = `SOCKS5 ${address}:${port}`;
  return fallback === 'direct' ? `${answer}; DIRECT` : answer;
}

function hexOf(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += (byte < 16 ? '0' : '') + byte.toString(16);
  return hex;
}

/** Appends `index` unless it is already the last entry (one rule naming a key twice). */
function addIndex(map: Map<string, PacIndexList>, key: string, index: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [index]);
  else if (list[list.length - 1] !== index) list.push(index);
}

// Object.fromEntries defines own data properties, so a host named '__proto__' stays a key; the
// script reads the maps back with JSON.parse and hasOwnProperty for the same reason.
function toRecord<V>(map: Map<string, V>): Record<string, V> {
  return Object.fromEntries(map);
}

function tablesOf(tables: Map<number, Map<string, PacIndexList>>): [number, Record<string, PacIndexList>][] {
  return [...tables].map(([prefix, map]): [number, Record<string, PacIndexList>] => [prefix, toRecord(map)]);
}

function buildData(rules: readonly Rule[], defaultTarget: RuleTarget): PacData {
  const direct: string[] = [];
  const ports: (number[] | 0)[] = [];
  const exact = new Map<string, PacIndexList>();
  const domain = new Map<string, PacIndexList>();
  const suffix = new Map<string, (number | string)[]>();
  const nameScan: PacData['nameScan'] = [];
  const ipScan: PacIndexList = [];
  const v4 = new Map<number, Map<string, PacIndexList>>();
  const v6 = new Map<number, Map<string, PacIndexList>>();

  for (let index = 0; index < rules.length; index++) {
    const rule = rules[index]!;
    const match = rule.match;
    // A PAC script cannot tell which container or window a request comes from, and the host
    // never can: a rule with a contexts condition is skipped by both, so they still agree.
    const active = rule.enabled && match.contexts === undefined;
    direct.push(active && rule.target.kind === 'direct' ? '1' : '0');
    ports.push(
      active && match.ports !== undefined
        ? match.ports.flatMap((p) => (typeof p === 'number' ? [p, p] : [p.from, p.to]))
        : 0,
    );
    if (!active) continue;
    if (match.ips !== undefined) {
      for (const text of match.ips) {
        const parsed = parseCidr(text);
        // Unreachable after validation; a range must never be dropped silently.
        if (!parsed.ok)
          throw new RulesValidationError([{ path: `rules[${index}].match.ips`, message: parsed.error }]);
        const { address, prefix } = parsed.cidr;
        const tables = address.version === 4 ? v4 : v6;
        let table = tables.get(prefix);
        if (table === undefined) {
          table = new Map();
          tables.set(prefix, table);
        }
        addIndex(table, prefixKey(hexOf(address.bytes), prefix), index);
      }
      continue;
    }
    if (match.hosts === undefined) {
      nameScan.push([index, 1, [], []]);
      ipScan.push(index);
      continue;
    }
    const scannedSuffixes: string[] = [];
    const regexes: string[] = [];
    for (const pattern of match.hosts) {
      switch (pattern.type) {
        case 'exact':
          addIndex(exact, normalizeHost(pattern.value), index);
          break;
        case 'domain':
          addIndex(domain, normalizeHost(pattern.value.slice(2)), index);
          break;
        case 'suffix': {
          const value = normalizeHost(pattern.value);
          const dot = value.indexOf('.');
          if (dot === -1) {
            scannedSuffixes.push(value);
          } else {
            const tail = value.slice(dot + 1);
            const list = suffix.get(tail);
            if (list === undefined) suffix.set(tail, [index, value]);
            else list.push(index, value);
          }
          break;
        }
        case 'regex':
          regexes.push(pattern.value);
          break;
      }
    }
    if (scannedSuffixes.length > 0 || regexes.length > 0) nameScan.push([index, 0, scannedSuffixes, regexes]);
  }

  return {
    count: rules.length,
    direct: direct.join(''),
    defaultDirect: defaultTarget.kind === 'direct' ? 1 : 0,
    ports,
    exact: toRecord(exact),
    domain: toRecord(domain),
    suffix: toRecord(suffix),
    nameScan,
    ipScan,
    v4: tablesOf(v4),
    v6: tablesOf(v6),
  };
}

/**
 * A JavaScript string literal for `text` that every engine accepts: JSON.stringify leaves U+2028
 * and U+2029 raw, and before ES2019 they end a line even inside a string literal.
 */
function jsString(text: string): string {
  return JSON.stringify(text)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * The PAC script for a rule list. Pure: the same input always gives the same text. Throws
 * RulesValidationError for invalid rules (as compileRules does, so the browser is never given a
 * script for rules the host would refuse) and RangeError for an invalid proxy or fallback.
 *
 * The script's FindProxyForURL(url, host) answers 'DIRECT' exactly when
 * compileRules(rules, defaultTarget).decide({ host, port }) targets direct, the port being the
 * URL's (or its scheme's default), and the proxy answer otherwise. Anything it cannot decide
 * (an unknown scheme without a port, a regex the engine cannot compile, an internal error) gets
 * the proxy answer, never DIRECT: the host always decides correctly.
 */
export function generatePac(input: PacInput): string {
  const { rules, defaultTarget } = input;
  const errors = [...validateRules(rules), ...validateTarget(defaultTarget, 'defaultTarget')];
  if (errors.length > 0) throw new RulesValidationError(errors);
  const proxy = jsString(proxyAnswer(input.proxy, input.fallback));
  // JSON.parse of a string rather than an object literal: in a literal a '__proto__' key would
  // set the prototype instead of naming a host, and engines parse JSON faster than code.
  const data = jsString(JSON.stringify(buildData(rules, defaultTarget)));
  const state = PAC_STATE_GLOBAL;
  return [
    `// Switchyard proxy auto-config: ${rules.length} routing rules, generated; edits are overwritten.`,
    '// DIRECT only where the rules send a request direct; everything else goes to the local',
    '// Switchyard host, which applies the same rules (and resolves names at the exit).',
    `var ${state} = { find: null, failures: 0, loadError: null };`,
    'try {',
    `  ${state}.find = (${PAC_RUNTIME})(JSON.parse(${data}), ${jsString(REGEX_FLAGS)}, ${proxy});`,
    '} catch (e) {',
    `  ${state}.loadError = String(e);`,
    '}',
    // A script that throws makes Chrome fall back to DIRECT, so nothing may escape from here.
    'function FindProxyForURL(url, host) {',
    '  try {',
    `    return ${state}.find(url, host);`,
    '  } catch (e) {',
    `    ${state}.failures++;`,
    `    return ${proxy};`,
    '  }',
    '}',
    '',
  ].join('\n');
}
