/**
 * The popup's one click: "this site always direct / through route X / blocked". Kept simple on
 * purpose: the site is the host without a leading 'www.', matched as a domain pattern so its
 * subdomains come along; no public-suffix list. The rule goes first so it wins, and clicking
 * again for the same site replaces the earlier one-click rule instead of stacking another.
 */
import { parseHostIp } from '../../shared/rules/ip.ts';
import type { Rule, RuleMatch, RuleTarget } from '../../shared/rules/types.ts';
import { hostPatternProblem, normalizeHost } from '../../shared/rules/validate.ts';

export class SiteRuleError extends Error {
  override readonly name = 'SiteRuleError';
}

/** The host of a URL or a bare host ('www.example.com:8080' is fine), lowercased, no brackets. */
export function hostOf(input: string): string {
  const text = input.trim();
  // A bare IPv6 literal would not survive 'http://' + text.
  if (parseHostIp(text) !== null) return normalizeHost(text.replace(/^\[|\]$/g, ''));
  let host: string;
  try {
    host = new URL(text.includes('://') ? text : `http://${text}`).hostname;
  } catch {
    throw new SiteRuleError(`'${input}' is not a host name or URL`);
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return normalizeHost(host);
}

/** 'www.example.com' -> 'example.com'; 'www' alone stays (it is the whole name). */
export function siteDomain(host: string): string {
  const h = normalizeHost(host);
  return h.startsWith('www.') && h.length > 4 ? h.slice(4) : h;
}

function matchFor(host: string): { match: RuleMatch; label: string } {
  if (parseHostIp(host) !== null) return { match: { ips: [host] }, label: host };
  const domain = siteDomain(host);
  const value = `*.${domain}`;
  const problem = hostPatternProblem('domain', value);
  if (problem !== null) throw new SiteRuleError(`cannot make a rule for '${host}': ${problem}`);
  return { match: { hosts: [{ type: 'domain', value }] }, label: value };
}

/** A stable id per site, so a second click replaces the first rule. */
export function siteRuleId(host: string): string {
  const base = parseHostIp(host) !== null ? host : siteDomain(host);
  const cleaned = base.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return `site-${cleaned}`.slice(0, 64);
}

function targetText(target: RuleTarget): string {
  return target.kind === 'route' ? `route ${target.routeId}` : target.kind;
}

export interface SiteRuleResult {
  readonly rules: Rule[];
  readonly ruleId: string;
}

/** The rule list with the site's rule first; any earlier one-click rule for the site removed. */
export function withSiteRule(rules: readonly Rule[], input: string, target: RuleTarget): SiteRuleResult {
  const host = hostOf(input);
  if (host === '') throw new SiteRuleError('this page has no host name to make a rule for');
  const { match, label } = matchFor(host);
  const id = siteRuleId(host);
  const rule: Rule = {
    id,
    enabled: true,
    name: `${label} -> ${targetText(target)} (from the popup)`,
    match,
    target,
  };
  return { rules: [rule, ...rules.filter((r) => r.id !== id)], ruleId: id };
}
