// Public API of the routing rule engine shared by the native host and the extension.

export type { Cidr, CidrParseResult, IPv4Address, IPv6Address, IpAddress, IpParseResult } from './ip.ts';
export {
  cidrContains,
  formatCidr,
  formatIp,
  parseCidr,
  parseHostIp,
  parseIp,
  parseIpDetailed,
  unmapIPv4,
} from './ip.ts';
export type { CompiledRuleset } from './matcher.ts';
export { compileRules, RulesValidationError } from './matcher.ts';
export type {
  Decision,
  DefaultDecision,
  Destination,
  HostPattern,
  HostPatternType,
  PortRange,
  RequestContext,
  Rule,
  RuleDecision,
  RuleMatch,
  Ruleset,
  RuleTarget,
  ValidationError,
} from './types.ts';
export { PRIVATE_CONTEXT } from './types.ts';
export type { ValidateOptions } from './validate.ts';
export {
  hostPatternProblem,
  MAX_REGEX_LENGTH,
  normalizeHost,
  REGEX_FLAGS,
  validateHostPattern,
  validateRules,
  validateRuleset,
  validateTarget,
} from './validate.ts';
