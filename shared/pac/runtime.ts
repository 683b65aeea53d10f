// The code that runs inside the browser's PAC engine, and the shape of the data it reads.
//
// Why a string and not a real function embedded with Function.prototype.toString(): the source
// text of a compiled function belongs to the toolchain, not to us. tsx and esbuild's keepNames
// insert calls to a module-level `__name` helper into every inner function, coverage
// instrumenters insert counters, and down-levelling inserts helpers; any of them turns a
// self-contained function into one that throws a ReferenceError in the PAC engine, and Chrome
// answers a PAC script that throws with DIRECT. A string constant reaches the browser byte for
// byte whatever bundles it. What is lost (type checking of this code) is paid back by the tests,
// which run this exact text against the host's matcher on generated rules and destinations, and
// parse it as ES5.
//
// The runtime is ES5 (var, function, no Map, no String.prototype.endsWith) so that any PAC
// engine can load it. It mirrors shared/rules/matcher.ts index for index: the same normalisation
// (normalizeHost), the same IP literal parsing (parseHostIp, strict, IPv4-mapped IPv6 as IPv4),
// the same lookups (exact map, domain and dotted-suffix maps probed per label suffix, per-prefix
// address tables, scan lists in rule order), so the winning rule is the host's winning rule and
// "DIRECT" is answered exactly when that rule (or the default) targets direct. It calls no PAC
// helper: isInNet, dnsResolve and friends would resolve names in the browser, which is the leak
// the SOCKS5 hop exists to prevent.

/** Rule indexes in ascending order. */
export type PacIndexList = number[];

/**
 * The rule data embedded in the PAC script (as JSON, see generate.ts). Only what decides the
 * winning rule is kept, plus one bit per rule saying whether it sends the request DIRECT.
 */
export interface PacData {
  /** Length of the rule list, disabled rules included: the "no match" index. */
  count: number;
  /** One character per rule: '1' when the rule is enabled and targets direct, else '0'. */
  direct: string;
  /** 1 when the default target is direct. */
  defaultDirect: 0 | 1;
  /** Per rule: flattened inclusive [from, to] port pairs, or 0 when it has no port condition. */
  ports: (number[] | 0)[];
  /** Normalised host -> rules with that exact pattern. */
  exact: Record<string, PacIndexList>;
  /** Base of '*.base' -> rules with that domain pattern. */
  domain: Record<string, PacIndexList>;
  /** Part after the first dot of a dotted suffix -> flat [ruleIndex, suffix, ruleIndex, ...]. */
  suffix: Record<string, (number | string)[]>;
  /** Unindexed name rules in rule order: [ruleIndex, anyHost 0|1, dotless suffixes, regexes]. */
  nameScan: [number, 0 | 1, string[], string[]][];
  /** Rules without hosts or ips: all an IP literal can match besides the address tables. */
  ipScan: PacIndexList;
  /** Per prefix length: [prefix, key -> rules], the key being the first `prefix` bits in hex. */
  v4: [number, Record<string, PacIndexList>][];
  v6: [number, Record<string, PacIndexList>][];
}

/**
 * The hex key of the first `prefix` bits of an address given as lowercase hex (8 digits for
 * IPv4, 32 for IPv6): whole digits, then the partial digit masked. The generator keys the tables
 * with this function and the runtime below repeats it; the agreement test holds them together.
 */
export function prefixKey(hex: string, prefix: number): string {
  const whole = prefix >> 2;
  const rem = prefix & 3;
  if (rem === 0) return hex.slice(0, whole);
  const nibble = parseInt(hex.charAt(whole), 16) & ((0xf << (4 - rem)) & 0xf);
  return hex.slice(0, whole) + nibble.toString(16);
}

/**
 * A function expression of three arguments (data: PacData, regexFlags: string, proxy: string)
 * returning findProxy(url, host): 'DIRECT' or `proxy`. It throws only on a bug or an exotic
 * engine; the generated FindProxyForURL catches that and answers `proxy`.
 */
export const PAC_RUNTIME = `function (data, regexFlags, proxy) {
  'use strict';
  var has = Object.prototype.hasOwnProperty;
  var count = data.count;
  var direct = data.direct;
  var ports = data.ports;
  var exact = data.exact;
  var domain = data.domain;
  var suffix = data.suffix;
  var ipScan = data.ipScan;
  var v4 = data.v4;
  var v6 = data.v6;
  // A rule this engine cannot evaluate (a regex it cannot compile) makes the answer unknown,
  // and unknown goes to the host, which always decides correctly.
  var UNKNOWN = -2;
  var DEFAULT_PORTS = { http: 80, ws: 80, https: 443, wss: 443, ftp: 21 };
  var AUTHORITY_ENDS = ['/', '?', '#'];

  var nameScan = [];
  for (var n = 0; n < data.nameScan.length; n++) {
    var raw = data.nameScan[n];
    var regexes = [];
    for (var r = 0; r < raw[3].length; r++) {
      var compiled = null;
      try {
        compiled = new RegExp(raw[3][r], regexFlags);
      } catch (e) {
        compiled = null;
      }
      regexes.push(compiled);
    }
    nameScan.push({ index: raw[0], anyHost: raw[1] === 1, suffixes: raw[2], regexes: regexes });
  }

  function get(map, key) {
    return has.call(map, key) ? map[key] : null;
  }

  function endsWith(text, tail) {
    return text.length >= tail.length && text.substring(text.length - tail.length) === tail;
  }

  function portsMatch(index, port) {
    var list = ports[index];
    if (list === 0) return true;
    for (var i = 0; i < list.length; i += 2) {
      if (port >= list[i] && port <= list[i + 1]) return true;
    }
    return false;
  }

  // The first rule of an ascending list that beats best and accepts the port, else best.
  function firstPortMatch(list, port, best) {
    if (list === null) return best;
    for (var i = 0; i < list.length; i++) {
      if (list[i] >= best) return best;
      if (portsMatch(list[i], port)) return list[i];
    }
    return best;
  }

  function firstSuffixMatch(list, host, port, best) {
    if (list === null) return best;
    for (var i = 0; i < list.length; i += 2) {
      if (list[i] >= best) return best;
      if (endsWith(host, list[i + 1]) && portsMatch(list[i], port)) return list[i];
    }
    return best;
  }

  // 1 when a scanned rule's host condition holds, 0 when not, UNKNOWN when it cannot be told.
  function scannedHostMatch(rule, host) {
    for (var i = 0; i < rule.suffixes.length; i++) {
      if (endsWith(host, rule.suffixes[i])) return 1;
    }
    var unknown = false;
    for (var j = 0; j < rule.regexes.length; j++) {
      if (rule.regexes[j] === null) unknown = true;
      else if (rule.regexes[j].test(host)) return 1;
    }
    return unknown ? UNKNOWN : 0;
  }

  function decideName(host, port) {
    var best = firstPortMatch(get(exact, host), port, count);
    for (var from = 0; ; ) {
      var key = from === 0 ? host : host.slice(from);
      best = firstPortMatch(get(domain, key), port, best);
      best = firstSuffixMatch(get(suffix, key), host, port, best);
      var dot = host.indexOf('.', from);
      if (dot === -1) break;
      from = dot + 1;
    }
    for (var i = 0; i < nameScan.length; i++) {
      var rule = nameScan[i];
      if (rule.index >= best) break;
      if (!portsMatch(rule.index, port)) continue;
      if (rule.anyHost) return rule.index;
      var hit = scannedHostMatch(rule, host);
      if (hit === 1) return rule.index;
      if (hit === UNKNOWN) return UNKNOWN;
    }
    return best;
  }

  function decideIp(hex, port) {
    var tables = hex.length === 8 ? v4 : v6;
    var best = count;
    for (var t = 0; t < tables.length; t++) {
      var prefix = tables[t][0];
      var whole = prefix >> 2;
      var rem = prefix & 3;
      var key = hex.slice(0, whole);
      if (rem !== 0) key += (parseInt(hex.charAt(whole), 16) & ((0xf << (4 - rem)) & 0xf)).toString(16);
      best = firstPortMatch(get(tables[t][1], key), port, best);
    }
    for (var i = 0; i < ipScan.length; i++) {
      if (ipScan[i] >= best) break;
      if (portsMatch(ipScan[i], port)) return ipScan[i];
    }
    return best;
  }

  // --- IP literals, as shared/rules/ip.ts parses them -------------------------------------

  function hex2(n) {
    return (n < 16 ? '0' : '') + n.toString(16);
  }

  // Appends the four octets of a strict dotted quad to out; false when text is not one.
  function parseV4(text, out) {
    var octet = 0;
    var digits = 0;
    var part = 0;
    for (var i = 0; i <= text.length; i++) {
      var c = i < text.length ? text.charCodeAt(i) : 46;
      if (c === 46) {
        if (digits === 0 || part > 3) return false;
        out.push(octet);
        part++;
        octet = 0;
        digits = 0;
        continue;
      }
      if (c < 48 || c > 57) return false;
      if (digits > 0 && octet === 0) return false;
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return false;
    }
    return part === 4;
  }

  function hexValue(c) {
    if (c >= 48 && c <= 57) return c - 48;
    if (c >= 97 && c <= 102) return c - 87;
    if (c >= 65 && c <= 70) return c - 55;
    return -1;
  }

  function parseGroups(half, groups, allowTrailingV4) {
    if (half === '') return true;
    var parts = half.split(':');
    for (var p = 0; p < parts.length; p++) {
      var part = parts[p];
      if (part === '') return false;
      if (part.indexOf('.') !== -1) {
        var octets = [];
        if (!allowTrailingV4 || p !== parts.length - 1 || !parseV4(part, octets)) return false;
        groups.push(octets[0] * 256 + octets[1], octets[2] * 256 + octets[3]);
        continue;
      }
      if (part.length > 4) return false;
      var value = 0;
      for (var i = 0; i < part.length; i++) {
        var h = hexValue(part.charCodeAt(i));
        if (h < 0) return false;
        value = value * 16 + h;
      }
      groups.push(value);
    }
    return true;
  }

  // 32 hex digits, or null when text is not an IPv6 literal.
  function parseV6(text) {
    if (text.indexOf('%') !== -1) return null;
    var gap = text.indexOf('::');
    var head = [];
    var tail = [];
    if (gap === -1) {
      if (!parseGroups(text, head, true) || head.length !== 8) return null;
    } else {
      if (text.indexOf('::', gap + 1) !== -1) return null;
      if (!parseGroups(text.slice(0, gap), head, false)) return null;
      if (!parseGroups(text.slice(gap + 2), tail, true)) return null;
      if (head.length + tail.length > 7) return null;
    }
    var groups = head.slice();
    while (groups.length + tail.length < 8) groups.push(0);
    groups = groups.concat(tail);
    var hex = '';
    for (var g = 0; g < 8; g++) hex += hex2(groups[g] >> 8) + hex2(groups[g] & 255);
    return hex;
  }

  // The address of an IP-literal host as hex (8 digits for IPv4, including IPv4-mapped IPv6;
  // 32 for IPv6), or null for a host name.
  function hostIp(host) {
    var text = host;
    if (text.length > 1 && text.charCodeAt(0) === 91 && text.charCodeAt(text.length - 1) === 93) {
      text = text.slice(1, -1);
      if (text.indexOf(':') === -1) return null;
    }
    if (text.length === 0 || text.length > 45) return null;
    if (text.indexOf(':') === -1) {
      var octets = [];
      if (!parseV4(text, octets)) return null;
      return hex2(octets[0]) + hex2(octets[1]) + hex2(octets[2]) + hex2(octets[3]);
    }
    var hex = parseV6(text);
    if (hex !== null && hex.slice(0, 24) === '00000000000000000000ffff') return hex.slice(24);
    return hex;
  }

  // --- the request ---------------------------------------------------------------------------

  // The port the browser will ask the SOCKS server for, or -1 when the URL does not say.
  function urlPort(url) {
    var schemeEnd = url.indexOf('://');
    if (schemeEnd === -1) return -1;
    var scheme = url.slice(0, schemeEnd).toLowerCase();
    var rest = url.slice(schemeEnd + 3);
    var end = rest.length;
    for (var s = 0; s < AUTHORITY_ENDS.length; s++) {
      var at = rest.indexOf(AUTHORITY_ENDS[s]);
      if (at !== -1 && at < end) end = at;
    }
    var authority = rest.slice(0, end);
    authority = authority.slice(authority.lastIndexOf('@') + 1);
    var portText = '';
    if (authority.charAt(0) === '[') {
      var close = authority.indexOf(']');
      if (close === -1) return -1;
      var after = authority.slice(close + 1);
      if (after !== '') {
        if (after.charAt(0) !== ':') return -1;
        portText = after.slice(1);
      }
    } else {
      var colon = authority.lastIndexOf(':');
      if (colon !== -1) portText = authority.slice(colon + 1);
    }
    if (portText === '') return has.call(DEFAULT_PORTS, scheme) ? DEFAULT_PORTS[scheme] : -1;
    if (!/^[0-9]{1,5}$/.test(portText)) return -1;
    var port = parseInt(portText, 10);
    return port <= 65535 ? port : -1;
  }

  return function findProxy(url, host) {
    var port = urlPort(String(url));
    if (port === -1) return proxy;
    var name = String(host).toLowerCase();
    if (name.charAt(name.length - 1) === '.') name = name.slice(0, -1);
    var ip = hostIp(name);
    var winner = ip === null ? decideName(name, port) : decideIp(ip, port);
    if (winner === UNKNOWN) return proxy;
    var isDirect = winner === count ? data.defaultDirect === 1 : direct.charAt(winner) === '1';
    return isDirect ? 'DIRECT' : proxy;
  };
}`;
