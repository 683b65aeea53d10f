// Helpers for the byte-for-byte codec tests (socks4-codec.test.ts, socks5-codec.test.ts): byte
// spelling, addresses, the ProtocolError check, and parsing a message split at every boundary.

import assert from 'node:assert/strict';
import type { Address } from '../../native-host/src/protocol/address.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../native-host/src/protocol/errors.ts';
import type { ParseResult } from '../../native-host/src/protocol/parse-result.ts';

/** The bytes of an ASCII string, to spread into a literal byte array. */
export function ascii(text: string): number[] {
  return Array.from(text, (c) => c.charCodeAt(0));
}

export function repeat(byte: number, count: number): number[] {
  return new Array<number>(count).fill(byte);
}

export function throwsCode(fn: () => unknown, code: ProtocolErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

export type EverySplitAssertion = <T>(
  parse: (buf: Uint8Array) => ParseResult<T>,
  message: number[],
  value: T,
) => void;

/**
 * `assertEverySplit(parse, message, value)`: every proper prefix needs more; the whole message,
 * and the message plus `trailing` (what a client might send next), parse alike.
 */
export function everySplitAsserter(trailing: readonly number[]): EverySplitAssertion {
  return (parse, message, value) => {
    for (let k = 0; k < message.length; k++) {
      assert.deepStrictEqual(
        parse(Uint8Array.from(message.slice(0, k))),
        { done: false },
        `prefix of ${k} bytes`,
      );
    }
    const expected = { done: true, value, size: message.length };
    assert.deepStrictEqual(parse(Uint8Array.from(message)), expected);
    assert.deepStrictEqual(
      parse(Uint8Array.from([...message, ...trailing])),
      expected,
      'with trailing bytes',
    );
  };
}

export const v4 = (host: string, port: number): Address => ({ type: 'ipv4', host, port });
export const v6 = (host: string, port: number): Address => ({ type: 'ipv6', host, port });
export const dn = (host: string, port: number): Address => ({ type: 'domain', host, port });
