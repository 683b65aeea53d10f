// Properties of the SOCKS wire codec, shared by the bounded CI run (codec.property.test.ts) and
// the long-run fuzzer (scripts/fuzz.ts). Each property is named after the behaviour it checks.
//
// (a) totality: for any bytes, a parser answers need-more, a value that used 0 < size <= length
//     bytes, or throws a ProtocolError with a known code; nothing else escapes, the input is not
//     modified, where the bytes live (a Buffer, a view at an offset) does not matter, and a
//     parsed address is well-formed (checkAddress).
// (b) incremental = whole: with o(k) the outcome of parsing the first k bytes of an input of n
//     bytes, the sequence o(0), ..., o(n) is need-more up to some k0 and from k0 on constant:
//       - whole need-more:      every prefix is need-more;
//       - whole parsed(v, s):   k0 = s, i.e. o(k) is need-more for k < s and deep-equals
//                               parsed(v, s) for every k >= s (bytes after s are not looked at);
//       - whole throws code C:  o(k) is need-more for k < k0 and throws C for every k >= k0.
//     So a reader that keeps feeding a parser a growing buffer ends the same way, with the same
//     size, as one that had the whole input at once, however the bytes were split.
// (c) round trip: serialize then parse gives back the value, uses exactly the serialized bytes,
//     and leaves trailing bytes alone.

import assert from 'node:assert/strict';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import fc from 'fast-check';
import type { Address } from '../../native-host/src/protocol/address.ts';
import { bytesToIpv6, ipv6ToBytes } from '../../native-host/src/protocol/address.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../native-host/src/protocol/errors.ts';
import type { ParseResult } from '../../native-host/src/protocol/parse-result.ts';
import {
  parseSocks4Reply,
  parseSocks4Request,
  serializeSocks4Reply,
  serializeSocks4Request,
} from '../../native-host/src/protocol/socks4.ts';
import {
  type CommandName,
  parseGreeting,
  parseMethodChoice,
  parseReply,
  parseRequest,
  parseUdpDatagram,
  parseUserPass,
  parseUserPassStatus,
  serializeGreeting,
  serializeMethodChoice,
  serializeReply,
  serializeRequest,
  serializeUdpHeader,
  serializeUserPass,
  serializeUserPassStatus,
} from '../../native-host/src/protocol/socks5.ts';

export const PROTOCOL_ERROR_CODES: ReadonlySet<ProtocolErrorCode> = new Set<ProtocolErrorCode>([
  'BAD_VERSION',
  'BAD_COMMAND',
  'BAD_ADDRESS_TYPE',
  'BAD_ADDRESS',
  'BAD_LENGTH',
  'TOO_LONG',
  'BAD_METHOD',
  'BAD_STATUS',
  'BAD_HEADER',
]);

// ---- outcomes -------------------------------------------------------------------------------

export type Outcome =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'parsed'; readonly value: unknown; readonly size: number }
  | { readonly kind: 'error'; readonly code: ProtocolErrorCode };

export type Attempt<T> =
  | { readonly threw: false; readonly value: T }
  | { readonly threw: true; readonly code: ProtocolErrorCode };

/** Runs a parser; a ProtocolError becomes an outcome, anything else fails the property. */
export function attempt<T>(parse: (buf: Uint8Array) => T, input: Uint8Array): Attempt<T> {
  try {
    return { threw: false, value: parse(input) };
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      assert.fail(`parser threw something other than a ProtocolError: ${String(err)}`);
    }
    assert.ok(PROTOCOL_ERROR_CODES.has(err.code), `unknown ProtocolError code ${err.code}`);
    return { threw: true, code: err.code };
  }
}

export function parseOutcome(parse: (buf: Uint8Array) => ParseResult<unknown>, input: Uint8Array): Outcome {
  const a = attempt(parse, input);
  if (a.threw) return { kind: 'error', code: a.code };
  const result = a.value;
  return result.done ? { kind: 'parsed', value: result.value, size: result.size } : { kind: 'need-more' };
}

function describeBytes(bytes: Uint8Array): string {
  return `[${Array.from(bytes, (b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ')}]`;
}

/** The same bytes as a view in the middle of a larger buffer, with different bytes around it. */
function embedded(bytes: Uint8Array): Buffer {
  const backing = Buffer.alloc(bytes.length + 13, 0xa5);
  backing.set(bytes, 7);
  return backing.subarray(7, 7 + bytes.length);
}

// ---- (a) and (b) for one parser -------------------------------------------------------------

export type Parser = (buf: Uint8Array) => ParseResult<unknown>;

/**
 * What the rest of the host may rely on in a parsed address: IP text that is what it says
 * (IPv6 in its canonical spelling), a host name without NUL, control characters, space or DEL,
 * and a port in 0..65535.
 */
export function checkAddress(address: Address): void {
  assert.ok(
    Number.isInteger(address.port) && address.port >= 0 && address.port <= 0xffff,
    `port ${address.port}`,
  );
  if (address.type === 'ipv4') assert.ok(isIPv4(address.host), `ipv4 '${address.host}'`);
  else if (address.type === 'ipv6') {
    assert.ok(isIPv6(address.host), `ipv6 '${address.host}'`);
    assert.equal(address.host, bytesToIpv6(ipv6ToBytes(address.host), 0), 'IPv6 text is not canonical');
  } else {
    assert.ok(address.host.length >= 1, 'empty host name');
    const bad = Array.from(address.host).some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f);
    assert.ok(!bad, `host name ${JSON.stringify(address.host)}`);
  }
}

function addressIn(value: unknown): Address | undefined {
  if (typeof value !== 'object' || value === null || !('address' in value)) return undefined;
  return value.address as Address;
}

export function checkTotal(parse: Parser, input: Uint8Array): void {
  const before = Uint8Array.from(input);
  const outcome = parseOutcome(parse, input);
  assert.deepStrictEqual(input, before, 'the parser modified its input');
  if (outcome.kind === 'parsed') {
    assert.ok(
      Number.isInteger(outcome.size) && outcome.size > 0 && outcome.size <= input.length,
      `size ${outcome.size} outside 1..${input.length}`,
    );
    const address = addressIn(outcome.value);
    if (address) checkAddress(address);
  }
  assert.deepStrictEqual(parseOutcome(parse, Buffer.from(input)), outcome, 'a Buffer parses differently');
  assert.deepStrictEqual(
    parseOutcome(parse, embedded(input)),
    outcome,
    'a view at an offset parses differently',
  );
}

export function checkIncremental(parse: Parser, input: Uint8Array): void {
  const whole = parseOutcome(parse, input);
  const n = input.length;
  // k0: the shortest prefix that is not need-more (n + 1 when the whole is need-more).
  let k0 = 0;
  while (k0 <= n && parseOutcome(parse, input.subarray(0, k0)).kind === 'need-more') k0++;
  if (whole.kind === 'need-more') {
    assert.equal(k0, n + 1, `prefix of ${k0} bytes answered, the whole ${n} bytes need more`);
    return;
  }
  if (whole.kind === 'parsed') {
    assert.equal(k0, whole.size, `first answer after ${k0} bytes, but the message is ${whole.size} bytes`);
  }
  for (let k = k0; k < n; k++) {
    assert.deepStrictEqual(
      parseOutcome(parse, input.subarray(0, k)),
      whole,
      `prefix of ${k} bytes of ${describeBytes(input)} disagrees with the whole`,
    );
  }
}

// ---- arbitraries ----------------------------------------------------------------------------

export const port = fc.integer({ min: 0, max: 0xffff });
const byte = fc.integer({ min: 0, max: 0xff });
/** 4 bytes: random, or an address with a meaning (unspecified, the 4a marker, loopback, broadcast). */
const bytes4 = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }),
  fc
    .constantFrom(
      [0, 0, 0, 0],
      [0, 0, 0, 1],
      [0, 0, 0, 255],
      [0, 0, 1, 0],
      [127, 0, 0, 1],
      [255, 255, 255, 255],
    )
    .map((b) => Uint8Array.from(b)),
);

const printableNonSpace = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));
/** 1..255 printable non-space ASCII characters: every such name is a valid wire host name. */
export const domainName = fc.oneof(
  fc.string({ unit: printableNonSpace, minLength: 1, maxLength: 255 }),
  fc.string({ unit: printableNonSpace, minLength: 250, maxLength: 255 }),
);

export const ipv4Address: fc.Arbitrary<Address> = fc
  .tuple(bytes4, port)
  .map(([b, p]) => ({ type: 'ipv4', host: b.join('.'), port: p }));

/** 16 bytes: uniformly random, zero-heavy (so `::` runs of every length occur), or IPv4-mapped. */
export const ipv6Bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc
    .array(
      fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff })),
      {
        minLength: 8,
        maxLength: 8,
      },
    )
    .map((groups) => {
      const out = new Uint8Array(16);
      groups.forEach((g, i) => {
        out[i * 2] = g >> 8;
        out[i * 2 + 1] = g & 0xff;
      });
      return out;
    }),
  bytes4.map((v4) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4])),
);

export const ipv6Address: fc.Arbitrary<Address> = fc
  .tuple(ipv6Bytes, port)
  .map(([b, p]) => ({ type: 'ipv6', host: bytesToIpv6(b, 0), port: p }));

export const domainAddress: fc.Arbitrary<Address> = fc
  .tuple(domainName, port)
  .map(([host, p]) => ({ type: 'domain', host, port: p }));

export const address = fc.oneof(ipv4Address, ipv6Address, domainAddress);

export const command = fc.constantFrom<CommandName>('connect', 'bind', 'udp-associate');

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** RFC 1929 credentials: strings whose UTF-8 form is 1..255 bytes, ASCII up to the limit or Unicode. */
export const credential = fc
  .oneof(
    fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 255 }),
    fc.string({ unit: 'binary-ascii', minLength: 250, maxLength: 255 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 100 }),
  )
  .filter((s) => utf8Length(s) >= 1 && utf8Length(s) <= 255);

/** A SOCKS4 user id: 0..255 UTF-8 bytes without NUL (the NUL terminates it on the wire). */
const asciiNotNul = fc.integer({ min: 0x01, max: 0x7f }).map((c) => String.fromCharCode(c));
export const userId = fc
  .oneof(
    fc.string({ unit: asciiNotNul, maxLength: 255 }),
    fc.string({ unit: asciiNotNul, minLength: 250, maxLength: 255 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
  )
  .filter((s) => !s.includes('\0') && utf8Length(s) <= 255);

/** SOCKS4 destinations: IPv4 except 0.0.0.x with x != 0, which is the 4a marker. */
export const socks4Ipv4Address: fc.Arbitrary<Address> = fc
  .tuple(bytes4, port)
  .filter(([b]) => !(b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] !== 0))
  .map(([b, p]) => ({ type: 'ipv4', host: b.join('.'), port: p }));

export const socks4Command = fc.constantFrom<'connect' | 'bind'>('connect', 'bind');

// ---- valid messages, as values with their bytes ---------------------------------------------

interface Message<T> {
  readonly value: T;
  readonly bytes: Uint8Array;
}

function message<V, T>(arb: fc.Arbitrary<V>, toValue: (v: V) => T, serialize: (v: V) => Uint8Array) {
  return arb.map((v): Message<T> => ({ value: toValue(v), bytes: serialize(v) }));
}

export const greetingMessage = message(
  fc.array(byte, { minLength: 1, maxLength: 255 }),
  (methods) => ({ methods }),
  (methods) => serializeGreeting(methods),
);
export const methodChoiceMessage = message(
  byte,
  (m) => m,
  (m) => serializeMethodChoice(m),
);
export const userPassMessage = message(
  fc.record({ username: credential, password: credential }),
  (c) => ({ ...c }),
  (c) => serializeUserPass(c.username, c.password),
);
export const userPassStatusMessage = message(
  fc.boolean(),
  (ok) => ok,
  (ok) => serializeUserPassStatus(ok),
);
export const requestMessage = message(
  fc.record({ command, address }),
  (r) => ({ ...r }),
  (r) => serializeRequest(r.command, r.address),
);
export const replyMessage = message(
  fc.record({ rep: byte, address }),
  (r) => ({ ...r }),
  (r) => serializeReply(r.rep, r.address),
);
export const socks4RequestMessage = message(
  fc.record({ command: socks4Command, address: fc.oneof(socks4Ipv4Address, domainAddress), userId }),
  (r) => ({ ...r, socks4a: r.address.type === 'domain' }),
  (r) => serializeSocks4Request(r.command, r.address, r.userId),
);
export const socks4ReplyMessage = message(
  fc.record({ status: byte, address: ipv4Address }),
  (r) => ({ status: r.status, host: r.address.host, port: r.address.port }),
  (r) => serializeSocks4Reply(r.status, r.address.host, r.address.port),
);

// ---- inputs for (a) and (b): random, valid, and valid-but-damaged bytes ---------------------

type Edit =
  | { readonly op: 'set'; readonly at: number; readonly byte: number }
  | { readonly op: 'insert'; readonly at: number; readonly byte: number }
  | { readonly op: 'delete'; readonly at: number };

/** Edits land in the header (versions, commands, types, lengths) as often as anywhere else. */
const editAt = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.nat());
/** Bytes that mean something in some field: versions, commands, ATYPs, lengths, NUL, space, DEL. */
const editByte = fc.oneof(byte, fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x7f, 0xff));
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: editAt, byte: editByte }),
  fc.record({ op: fc.constant('insert' as const), at: editAt, byte: editByte }),
  fc.record({ op: fc.constant('delete' as const), at: editAt }),
);

function applyEdits(bytes: Uint8Array, edits: readonly Edit[]): Uint8Array {
  const out = Array.from(bytes);
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + (e.op === 'insert' ? 1 : 0));
    if (e.op === 'set' && out.length > 0) out[at] = e.byte;
    else if (e.op === 'insert') out.splice(at, 0, e.byte);
    else if (e.op === 'delete' && out.length > 0) out.splice(at, 1);
  }
  return Uint8Array.from(out);
}

const tail = fc.uint8Array({ maxLength: 8 });

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** Random bytes, a valid message plus trailing bytes, and a valid message with a few edits. */
export function inputsFrom(valid: fc.Arbitrary<Uint8Array>, ...extra: fc.Arbitrary<Uint8Array>[]) {
  return fc.oneof(
    fc.uint8Array({ maxLength: 48 }),
    fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 1 }), fc.uint8Array({ maxLength: 48 })).map(
      // a plausible first byte (a version) followed by noise
      ([first, rest]) => concat(Uint8Array.from([[0, 1, 4, 5][first[0]! & 3]!]), rest),
    ),
    fc.tuple(valid, tail).map(([v, t]) => concat(v, t)),
    fc
      .tuple(valid, fc.array(edit, { minLength: 1, maxLength: 3 }), tail)
      .map(([v, e, t]) => concat(applyEdits(v, e), t)),
    ...extra,
  );
}

const nonNulBytes = (maxLength: number) => fc.uint8Array({ min: 1, max: 0xff, maxLength });
/** SOCKS4 requests whose user id / host fields run near and past the 255-byte limits. */
const socks4LongFields = fc
  .tuple(
    fc.constantFrom(1, 2, 3),
    fc.uint8Array({ minLength: 2, maxLength: 2 }),
    fc.oneof(
      bytes4,
      bytes4.map((b) => Uint8Array.from([0, 0, 0, b[3]! | 1])),
    ),
    nonNulBytes(300),
    fc.boolean(),
    nonNulBytes(300),
    fc.boolean(),
    tail,
  )
  .map(([cd, p, ip, user, nul1, host, nul2, t]) =>
    concat(
      Uint8Array.from([4, cd]),
      p,
      ip,
      user,
      nul1 ? Uint8Array.of(0) : Uint8Array.of(),
      host,
      nul2 ? Uint8Array.of(0) : Uint8Array.of(),
      t,
    ),
  );

const bytesOf = <T>(m: fc.Arbitrary<Message<T>>) => m.map((x) => x.bytes);

export interface ParserCase {
  readonly name: string;
  readonly parse: Parser;
  readonly inputs: fc.Arbitrary<Uint8Array>;
}

export const PARSERS: readonly ParserCase[] = [
  { name: 'parseGreeting', parse: parseGreeting, inputs: inputsFrom(bytesOf(greetingMessage)) },
  { name: 'parseMethodChoice', parse: parseMethodChoice, inputs: inputsFrom(bytesOf(methodChoiceMessage)) },
  { name: 'parseUserPass', parse: parseUserPass, inputs: inputsFrom(bytesOf(userPassMessage)) },
  {
    name: 'parseUserPassStatus',
    parse: parseUserPassStatus,
    inputs: inputsFrom(bytesOf(userPassStatusMessage)),
  },
  { name: 'parseRequest', parse: parseRequest, inputs: inputsFrom(bytesOf(requestMessage)) },
  { name: 'parseReply', parse: parseReply, inputs: inputsFrom(bytesOf(replyMessage)) },
  {
    name: 'parseSocks4Request',
    parse: parseSocks4Request,
    inputs: inputsFrom(bytesOf(socks4RequestMessage), socks4LongFields),
  },
  { name: 'parseSocks4Reply', parse: parseSocks4Reply, inputs: inputsFrom(bytesOf(socks4ReplyMessage)) },
];

const udpDatagram = fc
  .tuple(address, fc.uint8Array({ maxLength: 32 }))
  .map(([a, payload]) => ({ address: a, payload, bytes: concat(serializeUdpHeader(a), payload) }));

/** parseUdpDatagram sees a whole datagram: a value whose payload starts inside it, or a ProtocolError. */
export function checkUdpTotal(input: Uint8Array): void {
  const before = Uint8Array.from(input);
  const out = attempt(parseUdpDatagram, input);
  assert.deepStrictEqual(input, before, 'the parser modified its input');
  if (!out.threw) {
    const d = out.value;
    assert.ok(d.frag >= 0 && d.frag <= 0xff, `frag ${d.frag}`);
    // The shortest header: RSV RSV FRAG ATYP=3 LEN=1 NAME PORT PORT.
    assert.ok(d.dataOffset >= 8 && d.dataOffset <= input.length, `dataOffset ${d.dataOffset}`);
  }
  assert.deepStrictEqual(attempt(parseUdpDatagram, embedded(input)), out);
}

// ---- (c) round trips ------------------------------------------------------------------------

function checkRoundTrip<T>(parse: (buf: Uint8Array) => ParseResult<T>, m: Message<T>, trailing: Uint8Array) {
  assert.deepStrictEqual(parse(m.bytes), { done: true, value: m.value, size: m.bytes.length });
  assert.deepStrictEqual(parse(concat(m.bytes, trailing)), {
    done: true,
    value: m.value,
    size: m.bytes.length,
  });
}

/** RFC 5952 text, checked against Node's inet_ntop (except IPv4-compatible ::a.b.c.d, which it dots). */
export function checkIpv6Text(b: Uint8Array): void {
  const text = bytesToIpv6(b, 0);
  assert.ok(isIPv6(text), `${text} is not IPv6 text`);
  assert.deepStrictEqual(ipv6ToBytes(text), b);
  const node = new SocketAddress({ address: text, family: 'ipv6' }).address;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (!node.includes('.') || mapped) assert.equal(text, node);
}

// ---- the property list ----------------------------------------------------------------------

export interface PropertyRun {
  readonly failed: boolean;
  /** Inputs tried (up to and including the first failing one). */
  readonly numRuns: number;
  readonly seed: number;
  /** fast-check's report: shrunk counterexample, seed and path to replay it. */
  readonly report: string | undefined;
}

export interface CodecProperty {
  readonly name: string;
  run(numRuns: number, seed?: number): PropertyRun;
}

/** The assertion that failed, which fast-check's report leaves out. */
function errorText<T>(details: fc.RunDetails<T>): string {
  const err = 'errorInstance' in details ? details.errorInstance : undefined;
  return err instanceof Error ? `Error: ${err.message}` : `Error: ${String(err)}`;
}

/**
 * A named property over `arb` that `check` states with assertions; also used for the framing
 * properties (framing-properties.ts), so scripts/fuzz.ts runs both the same way.
 */
export function define<T>(name: string, arb: fc.Arbitrary<T>, check: (value: T) => void): CodecProperty {
  return {
    name,
    run(numRuns, seed) {
      const details = fc.check(
        fc.property(arb, (v) => {
          check(v);
        }),
        { numRuns, seed },
      );
      return {
        failed: details.failed,
        numRuns: details.numRuns,
        seed: details.seed,
        report: details.failed ? `${fc.defaultReportMessage(details)}\n${errorText(details)}` : undefined,
      };
    },
  };
}

export const TOTALITY_PROPERTIES: readonly CodecProperty[] = [
  ...PARSERS.map((p) =>
    define(
      `${p.name}: any bytes give need-more, a value within the input, or a ProtocolError`,
      p.inputs,
      (i) => checkTotal(p.parse, i),
    ),
  ),
  define(
    'parseUdpDatagram: any bytes give a datagram whose payload starts inside it, or a ProtocolError',
    inputsFrom(udpDatagram.map((d) => d.bytes)),
    checkUdpTotal,
  ),
];

export const INCREMENTAL_PROPERTIES: readonly CodecProperty[] = PARSERS.map((p) =>
  define(`${p.name}: every prefix is need-more or the whole input's outcome`, p.inputs, (i) =>
    checkIncremental(p.parse, i),
  ),
);

export const ROUND_TRIP_PROPERTIES: readonly CodecProperty[] = [
  define('greeting: serialize then parse gives the methods back', fc.tuple(greetingMessage, tail), ([m, t]) =>
    checkRoundTrip(parseGreeting, m, t),
  ),
  define(
    'method choice: serialize then parse gives the method back',
    fc.tuple(methodChoiceMessage, tail),
    ([m, t]) => checkRoundTrip(parseMethodChoice, m, t),
  ),
  define(
    'RFC 1929 request: serialize then parse gives the credentials back',
    fc.tuple(userPassMessage, tail),
    ([m, t]) => checkRoundTrip(parseUserPass, m, t),
  ),
  define(
    'RFC 1929 status: serialize then parse gives the status back',
    fc.tuple(userPassStatusMessage, tail),
    ([m, t]) => checkRoundTrip(parseUserPassStatus, m, t),
  ),
  define(
    'SOCKS5 request: serialize then parse gives command and address back',
    fc.tuple(requestMessage, tail),
    ([m, t]) => checkRoundTrip(parseRequest, m, t),
  ),
  define(
    'SOCKS5 reply: serialize then parse gives REP and address back',
    fc.tuple(replyMessage, tail),
    ([m, t]) => checkRoundTrip(parseReply, m, t),
  ),
  define(
    'UDP header: serialize then parse gives FRAG 0, the address and the payload offset',
    udpDatagram,
    (d) => {
      assert.deepStrictEqual(parseUdpDatagram(d.bytes), {
        frag: 0,
        address: d.address,
        dataOffset: d.bytes.length - d.payload.length,
      });
    },
  ),
  define(
    'SOCKS4/4a request: serialize then parse gives command, address and user id back',
    fc.tuple(socks4RequestMessage, tail),
    ([m, t]) => checkRoundTrip(parseSocks4Request, m, t),
  ),
  define(
    'SOCKS4 request to any IPv4 address: round trips, except 0.0.0.x (x != 0) which is refused with BAD_ADDRESS',
    fc.tuple(socks4Command, ipv4Address, userId),
    ([cmd, a, user]) => {
      const [b0, b1, b2, b3] = a.host.split('.').map(Number);
      if (b0 === 0 && b1 === 0 && b2 === 0 && b3 !== 0) {
        assert.throws(
          () => serializeSocks4Request(cmd, a, user),
          (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_ADDRESS',
        );
        return;
      }
      const bytes = serializeSocks4Request(cmd, a, user);
      assert.deepStrictEqual(parseSocks4Request(bytes), {
        done: true,
        value: { command: cmd, address: a, userId: user, socks4a: false },
        size: bytes.length,
      });
    },
  ),
  define(
    'SOCKS4 reply: serialize then parse gives status, address and port back',
    fc.tuple(socks4ReplyMessage, tail),
    ([m, t]) => checkRoundTrip(parseSocks4Reply, m, t),
  ),
  define('IPv6 bytes -> RFC 5952 text -> the same bytes', ipv6Bytes, checkIpv6Text),
];

export const ALL_PROPERTIES: readonly CodecProperty[] = [
  ...TOTALITY_PROPERTIES,
  ...INCREMENTAL_PROPERTIES,
  ...ROUND_TRIP_PROPERTIES,
];
