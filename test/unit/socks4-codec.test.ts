// The SOCKS4 / SOCKS4a codec, byte for byte: requests and replies in both directions, the 4a
// marker (DSTIP 0.0.0.x with x != 0), and the limits on the NUL-terminated fields.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_SOCKS4A_HOST_LENGTH,
  MAX_USERID_LENGTH,
  parseSocks4Reply,
  parseSocks4Request,
  type Socks4Request,
  Socks4Status,
  serializeSocks4Reply,
  serializeSocks4Request,
} from '../../native-host/src/protocol/socks4.ts';
import { ascii, dn, everySplitAsserter, repeat, throwsCode, v4 } from '../helpers/codec.ts';

// ---- helpers --------------------------------------------------------------------------------

// Trailing bytes after a whole message: 'GET\0'.
const assertEverySplit = everySplitAsserter([0x47, 0x45, 0x54, 0x00]);

// ---- request --------------------------------------------------------------------------------

interface RequestCase {
  name: string;
  request: Socks4Request;
  bytes: number[];
}

const REQUESTS: RequestCase[] = [
  {
    name: 'SOCKS4 CONNECT with a user id',
    request: { command: 'connect', address: v4('93.184.216.34', 80), userId: 'fred', socks4a: false },
    bytes: [0x04, 0x01, 0x00, 0x50, 93, 184, 216, 34, ...ascii('fred'), 0x00],
  },
  {
    name: 'SOCKS4 CONNECT with an empty user id',
    request: { command: 'connect', address: v4('127.0.0.1', 8080), userId: '', socks4a: false },
    bytes: [0x04, 0x01, 0x1f, 0x90, 127, 0, 0, 1, 0x00],
  },
  {
    name: 'SOCKS4 BIND',
    request: { command: 'bind', address: v4('10.0.0.7', 21), userId: 'ftp', socks4a: false },
    bytes: [0x04, 0x02, 0x00, 0x15, 10, 0, 0, 7, ...ascii('ftp'), 0x00],
  },
  {
    name: 'SOCKS4 to 0.0.0.0 (not 4a)',
    request: { command: 'bind', address: v4('0.0.0.0', 0), userId: '', socks4a: false },
    bytes: [0x04, 0x02, 0x00, 0x00, 0, 0, 0, 0, 0x00],
  },
  {
    name: 'SOCKS4 to 0.0.1.0 (not 4a: only the last byte may be non-zero)',
    request: { command: 'connect', address: v4('0.0.1.0', 1), userId: '', socks4a: false },
    bytes: [0x04, 0x01, 0x00, 0x01, 0, 0, 1, 0, 0x00],
  },
  {
    name: 'SOCKS4 with a UTF-8 user id',
    request: { command: 'connect', address: v4('1.2.3.4', 443), userId: 'jürg', socks4a: false },
    bytes: [0x04, 0x01, 0x01, 0xbb, 1, 2, 3, 4, 0x6a, 0xc3, 0xbc, 0x72, 0x67, 0x00],
  },
  {
    name: 'SOCKS4 with a 255-byte user id (the limit)',
    request: { command: 'connect', address: v4('1.2.3.4', 80), userId: 'u'.repeat(255), socks4a: false },
    bytes: [0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4, ...repeat(0x75, 255), 0x00],
  },
  {
    name: 'SOCKS4a CONNECT to a host name',
    request: { command: 'connect', address: dn('example.com', 443), userId: 'fred', socks4a: true },
    bytes: [0x04, 0x01, 0x01, 0xbb, 0, 0, 0, 1, ...ascii('fred'), 0x00, ...ascii('example.com'), 0x00],
  },
  {
    name: 'SOCKS4a BIND with an empty user id',
    request: { command: 'bind', address: dn('peer.lan', 20), userId: '', socks4a: true },
    bytes: [0x04, 0x02, 0x00, 0x14, 0, 0, 0, 1, 0x00, ...ascii('peer.lan'), 0x00],
  },
  {
    name: 'SOCKS4a with a 255-byte host name and a 255-byte user id',
    request: { command: 'connect', address: dn('h'.repeat(255), 80), userId: 'u'.repeat(255), socks4a: true },
    bytes: [0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, ...repeat(0x75, 255), 0x00, ...repeat(0x68, 255), 0x00],
  },
];

describe('SOCKS4 request: parse', () => {
  for (const c of REQUESTS) {
    it(`parses ${c.name}, needing more at every shorter prefix`, () => {
      assertEverySplit(parseSocks4Request, c.bytes, c.request);
    });
  }

  it('recognizes 4a for every DSTIP 0.0.0.x with x != 0', () => {
    for (const x of [1, 2, 0x7f, 0xff]) {
      const bytes = [0x04, 0x01, 0x00, 0x50, 0, 0, 0, x, 0x00, ...ascii('a.b'), 0x00];
      assert.deepStrictEqual(parseSocks4Request(Uint8Array.from(bytes)), {
        done: true,
        value: { command: 'connect', address: dn('a.b', 80), userId: '', socks4a: true },
        size: 13,
      });
    }
  });

  it('treats 0.0.0.0 as plain SOCKS4: what follows the user id is not read as a host name', () => {
    const bytes = [0x04, 0x01, 0x00, 0x50, 0, 0, 0, 0, 0x00, ...ascii('example.com'), 0x00];
    assert.deepStrictEqual(parseSocks4Request(Uint8Array.from(bytes)), {
      done: true,
      value: { command: 'connect', address: v4('0.0.0.0', 80), userId: '', socks4a: false },
      size: 9,
    });
  });

  it('does not consume early payload after the request (size excludes it)', () => {
    const plain = [0x04, 0x01, 0x00, 0x50, 10, 0, 0, 1, ...ascii('me'), 0x00, ...ascii('GET /')];
    assert.deepStrictEqual(parseSocks4Request(Uint8Array.from(plain)), {
      done: true,
      value: { command: 'connect', address: v4('10.0.0.1', 80), userId: 'me', socks4a: false },
      size: 11,
    });
    const fourA = [0x04, 0x01, 0x00, 0x50, 0, 0, 0, 9, 0x00, ...ascii('x.y'), 0x00, ...ascii('GET /'), 0x00];
    assert.deepStrictEqual(parseSocks4Request(Uint8Array.from(fourA)), {
      done: true,
      value: { command: 'connect', address: dn('x.y', 80), userId: '', socks4a: true },
      size: 13,
    });
  });

  it('has 255-byte limits on the user id and the 4a host name', () => {
    assert.equal(MAX_USERID_LENGTH, 255);
    assert.equal(MAX_SOCKS4A_HOST_LENGTH, 255);
  });

  it('needs more for a user id of up to 255 bytes without NUL, and says TOO_LONG at the 256th byte', () => {
    const head = [0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4];
    assert.deepStrictEqual(parseSocks4Request(Uint8Array.from([...head, ...repeat(0x75, 255)])), {
      done: false,
    });
    throwsCode(() => parseSocks4Request(Uint8Array.from([...head, ...repeat(0x75, 256)])), 'TOO_LONG');
    throwsCode(() => parseSocks4Request(Uint8Array.from([...head, ...repeat(0x75, 256), 0x00])), 'TOO_LONG');
  });

  it('needs more for a 4a host of up to 255 bytes without NUL, and says TOO_LONG at the 256th byte', () => {
    const head = [0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0x00];
    assert.deepStrictEqual(parseSocks4Request(Uint8Array.from([...head, ...repeat(0x68, 255)])), {
      done: false,
    });
    throwsCode(() => parseSocks4Request(Uint8Array.from([...head, ...repeat(0x68, 256)])), 'TOO_LONG');
    throwsCode(() => parseSocks4Request(Uint8Array.from([...head, ...repeat(0x68, 256), 0x00])), 'TOO_LONG');
  });

  it('rejects an empty 4a host name with BAD_ADDRESS', () => {
    throwsCode(
      () =>
        parseSocks4Request(Uint8Array.from([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, ...ascii('me'), 0x00, 0x00])),
      'BAD_ADDRESS',
    );
  });

  it('rejects control characters, space and DEL in a 4a host name with BAD_ADDRESS', () => {
    for (const bad of [0x01, 0x09, 0x0a, 0x1f, 0x20, 0x7f]) {
      const bytes = [0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0x00, 0x61, bad, 0x62, 0x00];
      throwsCode(() => parseSocks4Request(Uint8Array.from(bytes)), 'BAD_ADDRESS');
    }
  });

  it('rejects a version other than 4 with BAD_VERSION from the first byte', () => {
    throwsCode(() => parseSocks4Request(Uint8Array.from([0x05])), 'BAD_VERSION');
    throwsCode(
      () => parseSocks4Request(Uint8Array.from([0x00, 0x01, 0x00, 0x50, 1, 2, 3, 4, 0x00])),
      'BAD_VERSION',
    );
  });

  it('rejects a command other than CONNECT (1) and BIND (2) with BAD_COMMAND as soon as CD arrives', () => {
    for (const cd of [0x00, 0x03, 0x5a, 0xff]) {
      throwsCode(() => parseSocks4Request(Uint8Array.from([0x04, cd])), 'BAD_COMMAND');
      throwsCode(
        () => parseSocks4Request(Uint8Array.from([0x04, cd, 0x00, 0x50, 1, 2, 3, 4, 0x00])),
        'BAD_COMMAND',
      );
    }
  });
});

describe('SOCKS4 request: serialize', () => {
  for (const c of REQUESTS) {
    it(`serializes ${c.name}`, () => {
      assert.deepStrictEqual(
        serializeSocks4Request(c.request.command, c.request.address, c.request.userId),
        Buffer.from(c.bytes),
      );
    });
  }

  it('sends an empty user id when none is given', () => {
    assert.deepStrictEqual(
      serializeSocks4Request('connect', v4('1.2.3.4', 80)),
      Buffer.from([0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4, 0x00]),
    );
  });

  it('cannot send an IPv6 address (BAD_ADDRESS_TYPE)', () => {
    throwsCode(
      () => serializeSocks4Request('connect', { type: 'ipv6', host: '::1', port: 80 }),
      'BAD_ADDRESS_TYPE',
    );
  });

  it('cannot send 0.0.0.x with x != 0 as an IPv4 address: it would be read as 4a (BAD_ADDRESS)', () => {
    throwsCode(() => serializeSocks4Request('connect', v4('0.0.0.1', 80)), 'BAD_ADDRESS');
    throwsCode(() => serializeSocks4Request('bind', v4('0.0.0.255', 80)), 'BAD_ADDRESS');
  });

  it('refuses a user id longer than 255 bytes (TOO_LONG) or containing NUL (BAD_ADDRESS)', () => {
    throwsCode(() => serializeSocks4Request('connect', v4('1.2.3.4', 80), 'u'.repeat(256)), 'TOO_LONG');
    throwsCode(() => serializeSocks4Request('connect', v4('1.2.3.4', 80), 'a\0b'), 'BAD_ADDRESS');
  });

  it('refuses an empty or longer than 255-byte 4a host (TOO_LONG), or one containing NUL (BAD_ADDRESS)', () => {
    throwsCode(() => serializeSocks4Request('connect', dn('', 80)), 'TOO_LONG');
    throwsCode(() => serializeSocks4Request('connect', dn('h'.repeat(256), 80)), 'TOO_LONG');
    throwsCode(() => serializeSocks4Request('connect', dn('evil.com\0x', 80)), 'BAD_ADDRESS');
  });

  it('refuses malformed IPv4 text (BAD_ADDRESS)', () => {
    throwsCode(() => serializeSocks4Request('connect', v4('1.2.3', 80)), 'BAD_ADDRESS');
    throwsCode(() => serializeSocks4Request('connect', v4('0x7f.0.0.1', 80)), 'BAD_ADDRESS');
  });
});

// ---- reply ----------------------------------------------------------------------------------

describe('SOCKS4 reply', () => {
  it('numbers the status codes 90..93', () => {
    assert.deepStrictEqual(Socks4Status, {
      GRANTED: 90,
      REJECTED: 91,
      IDENTD_UNREACHABLE: 92,
      IDENTD_MISMATCH: 93,
    });
  });

  const cases: { name: string; status: number; host: string; port: number; bytes: number[] }[] = [
    {
      name: 'granted, bound to 10.0.0.1:1080',
      status: Socks4Status.GRANTED,
      host: '10.0.0.1',
      port: 1080,
      bytes: [0x00, 0x5a, 0x04, 0x38, 10, 0, 0, 1],
    },
    {
      name: 'rejected',
      status: Socks4Status.REJECTED,
      host: '0.0.0.0',
      port: 0,
      bytes: [0x00, 0x5b, 0x00, 0x00, 0, 0, 0, 0],
    },
    {
      name: 'identd unreachable',
      status: Socks4Status.IDENTD_UNREACHABLE,
      host: '0.0.0.0',
      port: 0,
      bytes: [0x00, 0x5c, 0x00, 0x00, 0, 0, 0, 0],
    },
    {
      name: 'identd user mismatch',
      status: Socks4Status.IDENTD_MISMATCH,
      host: '255.255.255.255',
      port: 65535,
      bytes: [0x00, 0x5d, 0xff, 0xff, 255, 255, 255, 255],
    },
  ];
  for (const c of cases) {
    it(`serializes ${c.name} with VN 0`, () => {
      assert.deepStrictEqual(serializeSocks4Reply(c.status, c.host, c.port), Buffer.from(c.bytes));
    });
    it(`parses ${c.name}, needing more at every shorter prefix`, () => {
      assertEverySplit(parseSocks4Reply, c.bytes, { status: c.status, host: c.host, port: c.port });
    });
  }

  it('defaults to 0.0.0.0:0, 8 bytes with VN 0', () => {
    assert.deepStrictEqual(
      serializeSocks4Reply(Socks4Status.REJECTED),
      Buffer.from([0x00, 0x5b, 0, 0, 0, 0, 0, 0]),
    );
  });

  it('tolerates VN 4 from servers that echo the request version', () => {
    assert.deepStrictEqual(parseSocks4Reply(Uint8Array.from([0x04, 0x5a, 0x00, 0x50, 1, 2, 3, 4])), {
      done: true,
      value: { status: 90, host: '1.2.3.4', port: 80 },
      size: 8,
    });
  });

  it('rejects any other VN with BAD_VERSION', () => {
    throwsCode(() => parseSocks4Reply(Uint8Array.from([0x05, 0x5a, 0x00, 0x50, 1, 2, 3, 4])), 'BAD_VERSION');
    throwsCode(() => parseSocks4Reply(Uint8Array.from([0x01, 0x5a, 0x00, 0x50, 1, 2, 3, 4])), 'BAD_VERSION');
  });

  it('does not consume relayed data after the reply', () => {
    const input = [0x00, 0x5a, 0x00, 0x50, 1, 2, 3, 4, ...ascii('HTTP/1.0 200')];
    assert.deepStrictEqual(parseSocks4Reply(Uint8Array.from(input)), {
      done: true,
      value: { status: 90, host: '1.2.3.4', port: 80 },
      size: 8,
    });
  });

  it('cannot carry an IPv6 bound address (BAD_ADDRESS)', () => {
    throwsCode(() => serializeSocks4Reply(Socks4Status.GRANTED, '::1', 80), 'BAD_ADDRESS');
  });
});

// ---- round trips ----------------------------------------------------------------------------

describe('SOCKS4 round trips (serialize, then parse)', () => {
  for (const c of REQUESTS) {
    it(`request: ${c.name}`, () => {
      const bytes = serializeSocks4Request(c.request.command, c.request.address, c.request.userId);
      assert.deepStrictEqual(parseSocks4Request(bytes), { done: true, value: c.request, size: bytes.length });
    });
  }
  it('reply', () => {
    const bytes = serializeSocks4Reply(Socks4Status.GRANTED, '192.168.0.1', 40000);
    assert.deepStrictEqual(parseSocks4Reply(bytes), {
      done: true,
      value: { status: 90, host: '192.168.0.1', port: 40000 },
      size: 8,
    });
  });
});
