// The SOCKS5 codec (RFC 1928, RFC 1929), the address text <-> bytes helpers and the errno -> REP
// mapping, byte for byte. Expected bytes are written out literally; ascii() only spells the
// bytes of a name so that the tables stay readable.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Address,
  addressOf,
  bytesToIpv4,
  bytesToIpv6,
  formatAddress,
  ipv4ToBytes,
  ipv6ToBytes,
} from '../../native-host/src/protocol/address.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../native-host/src/protocol/errors.ts';
import { repForErrno, repForProtocolError } from '../../native-host/src/protocol/reply-codes.ts';
import {
  type CommandName,
  parseGreeting,
  parseMethodChoice,
  parseReply,
  parseRequest,
  parseUdpDatagram,
  parseUserPass,
  parseUserPassStatus,
  Rep,
  repText,
  serializeGreeting,
  serializeMethodChoice,
  serializeReply,
  serializeRequest,
  serializeUdpHeader,
  serializeUserPass,
  serializeUserPassStatus,
} from '../../native-host/src/protocol/socks5.ts';
import { ascii, dn, everySplitAsserter, repeat, throwsCode, v4, v6 } from '../helpers/codec.ts';

// ---- helpers --------------------------------------------------------------------------------

const assertEverySplit = everySplitAsserter([0x05, 0x01, 0x00]);

// ---- greeting and method choice -------------------------------------------------------------

describe('SOCKS5 greeting', () => {
  const cases: { name: string; bytes: number[]; methods: number[] }[] = [
    { name: 'one method (no auth)', bytes: [0x05, 0x01, 0x00], methods: [0x00] },
    { name: 'two methods', bytes: [0x05, 0x02, 0x00, 0x02], methods: [0x00, 0x02] },
    { name: 'three methods', bytes: [0x05, 0x03, 0x00, 0x01, 0x02], methods: [0x00, 0x01, 0x02] },
    { name: 'an unknown method is passed on', bytes: [0x05, 0x02, 0x80, 0xfe], methods: [0x80, 0xfe] },
    {
      name: '255 methods',
      bytes: [0x05, 0xff, ...Array.from({ length: 255 }, (_, i) => i)],
      methods: Array.from({ length: 255 }, (_, i) => i),
    },
  ];
  for (const c of cases) {
    it(`parses ${c.name}, needing more at every shorter prefix`, () => {
      assertEverySplit(parseGreeting, c.bytes, { methods: c.methods });
    });
    it(`serializes ${c.name}`, () => {
      assert.deepStrictEqual(serializeGreeting(c.methods), Buffer.from(c.bytes));
    });
  }

  it('does not consume the request that follows the greeting', () => {
    const input = [0x05, 0x02, 0x00, 0x02, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x00, 0x50];
    assert.deepStrictEqual(parseGreeting(Uint8Array.from(input)), {
      done: true,
      value: { methods: [0x00, 0x02] },
      size: 4,
    });
  });

  it('rejects NMETHODS = 0 with BAD_LENGTH as soon as that byte arrives', () => {
    throwsCode(() => parseGreeting(Uint8Array.from([0x05, 0x00])), 'BAD_LENGTH');
    throwsCode(() => parseGreeting(Uint8Array.from([0x05, 0x00, 0x00])), 'BAD_LENGTH');
  });

  it('rejects a version other than 5 with BAD_VERSION from the first byte', () => {
    throwsCode(() => parseGreeting(Uint8Array.from([0x04])), 'BAD_VERSION');
    throwsCode(() => parseGreeting(Uint8Array.from([0x04, 0x01, 0x00])), 'BAD_VERSION');
    throwsCode(() => parseGreeting(Uint8Array.from([0x01, 0x01, 0x00])), 'BAD_VERSION');
  });

  it('refuses to serialize no methods or more than 255 methods (BAD_LENGTH)', () => {
    throwsCode(() => serializeGreeting([]), 'BAD_LENGTH');
    throwsCode(() => serializeGreeting(repeat(0x00, 256)), 'BAD_LENGTH');
  });
});

describe('SOCKS5 method choice', () => {
  const cases: [string, number, number[]][] = [
    ['no authentication', 0x00, [0x05, 0x00]],
    ['GSS-API', 0x01, [0x05, 0x01]],
    ['username/password', 0x02, [0x05, 0x02]],
    ['no acceptable methods', 0xff, [0x05, 0xff]],
  ];
  for (const [name, method, bytes] of cases) {
    it(`serializes and parses ${name} as ${JSON.stringify(bytes)}`, () => {
      assert.deepStrictEqual(serializeMethodChoice(method), Buffer.from(bytes));
      assertEverySplit(parseMethodChoice, bytes, method);
    });
  }

  it('rejects a version other than 5 with BAD_VERSION', () => {
    throwsCode(() => parseMethodChoice(Uint8Array.from([0x04, 0x00])), 'BAD_VERSION');
    throwsCode(() => parseMethodChoice(Uint8Array.from([0x01, 0x00])), 'BAD_VERSION');
  });
});

// ---- RFC 1929 -------------------------------------------------------------------------------

describe('RFC 1929 username/password request', () => {
  const cases: { name: string; username: string; password: string; bytes: number[] }[] = [
    {
      name: 'ASCII credentials',
      username: 'user',
      password: 'secret',
      bytes: [0x01, 4, ...ascii('user'), 6, ...ascii('secret')],
    },
    { name: 'one-byte credentials', username: 'u', password: 'p', bytes: [0x01, 1, 0x75, 1, 0x70] },
    {
      name: 'UTF-8 credentials (lengths count bytes)',
      username: 'jürg',
      password: 'pä',
      bytes: [0x01, 5, 0x6a, 0xc3, 0xbc, 0x72, 0x67, 3, 0x70, 0xc3, 0xa4],
    },
    {
      name: '255-byte credentials',
      username: 'u'.repeat(255),
      password: 'p'.repeat(255),
      bytes: [0x01, 255, ...repeat(0x75, 255), 255, ...repeat(0x70, 255)],
    },
  ];
  for (const c of cases) {
    it(`serializes ${c.name}`, () => {
      assert.deepStrictEqual(serializeUserPass(c.username, c.password), Buffer.from(c.bytes));
    });
    it(`parses ${c.name}, needing more at every shorter prefix`, () => {
      assertEverySplit(parseUserPass, c.bytes, { username: c.username, password: c.password });
    });
  }

  it('requires version byte 0x01, not 0x05 (BAD_VERSION from the first byte)', () => {
    throwsCode(() => parseUserPass(Uint8Array.from([0x05])), 'BAD_VERSION');
    throwsCode(() => parseUserPass(Uint8Array.from([0x05, 1, 0x75, 1, 0x70])), 'BAD_VERSION');
    throwsCode(() => parseUserPass(Uint8Array.from([0x00, 1, 0x75, 1, 0x70])), 'BAD_VERSION');
  });

  it('does not consume the request that follows the credentials', () => {
    const input = [0x01, 1, 0x75, 1, 0x70, 0x05, 0x01, 0x00];
    assert.deepStrictEqual(parseUserPass(Uint8Array.from(input)), {
      done: true,
      value: { username: 'u', password: 'p' },
      size: 5,
    });
  });

  it('refuses to serialize empty or longer than 255-byte credentials (TOO_LONG)', () => {
    throwsCode(() => serializeUserPass('', 'p'), 'TOO_LONG');
    throwsCode(() => serializeUserPass('u', ''), 'TOO_LONG');
    throwsCode(() => serializeUserPass('u'.repeat(256), 'p'), 'TOO_LONG');
    throwsCode(() => serializeUserPass('u', 'p'.repeat(256)), 'TOO_LONG');
    throwsCode(() => serializeUserPass('ü'.repeat(128), 'p'), 'TOO_LONG'); // 256 bytes, 128 characters
  });
});

describe('RFC 1929 status', () => {
  it('serializes success as [0x01, 0x00] and failure as [0x01, 0x01]', () => {
    assert.deepStrictEqual(serializeUserPassStatus(true), Buffer.from([0x01, 0x00]));
    assert.deepStrictEqual(serializeUserPassStatus(false), Buffer.from([0x01, 0x01]));
  });

  const cases: [number[], boolean][] = [
    [[0x01, 0x00], true],
    [[0x01, 0x01], false],
    [[0x01, 0xff], false],
    [[0x05, 0x00], true], // servers that answer with version 5 are tolerated
    [[0x05, 0x01], false],
  ];
  for (const [bytes, ok] of cases) {
    it(`parses ${JSON.stringify(bytes)} as ${ok ? 'success' : 'failure'}`, () => {
      assertEverySplit(parseUserPassStatus, bytes, ok);
    });
  }

  it('rejects any other version byte with BAD_VERSION', () => {
    throwsCode(() => parseUserPassStatus(Uint8Array.from([0x02, 0x00])), 'BAD_VERSION');
    throwsCode(() => parseUserPassStatus(Uint8Array.from([0x00, 0x00])), 'BAD_VERSION');
  });
});

// ---- request --------------------------------------------------------------------------------

interface RequestCase {
  name: string;
  command: CommandName;
  address: Address;
  bytes: number[];
}

const REQUESTS: RequestCase[] = [
  {
    name: 'CONNECT to an IPv4 address',
    command: 'connect',
    address: v4('127.0.0.1', 8080),
    bytes: [0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x1f, 0x90],
  },
  {
    name: 'CONNECT to a domain',
    command: 'connect',
    address: dn('example.com', 443),
    bytes: [0x05, 0x01, 0x00, 0x03, 11, ...ascii('example.com'), 0x01, 0xbb],
  },
  {
    name: 'CONNECT to 2001:db8::1',
    command: 'connect',
    address: v6('2001:db8::1', 80),
    bytes: [0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, ...repeat(0, 11), 0x01, 0x00, 0x50],
  },
  {
    name: 'CONNECT to ::1',
    command: 'connect',
    address: v6('::1', 22),
    bytes: [0x05, 0x01, 0x00, 0x04, ...repeat(0, 15), 0x01, 0x00, 0x16],
  },
  {
    name: 'CONNECT to the IPv4-mapped ::ffff:1.2.3.4',
    command: 'connect',
    address: v6('::ffff:1.2.3.4', 443),
    bytes: [0x05, 0x01, 0x00, 0x04, ...repeat(0, 10), 0xff, 0xff, 1, 2, 3, 4, 0x01, 0xbb],
  },
  {
    name: 'BIND with an IPv4 address',
    command: 'bind',
    address: v4('10.1.2.3', 21),
    bytes: [0x05, 0x02, 0x00, 0x01, 10, 1, 2, 3, 0x00, 0x15],
  },
  {
    name: 'UDP ASSOCIATE from an unknown address (zeros)',
    command: 'udp-associate',
    address: v4('0.0.0.0', 0),
    bytes: [0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00],
  },
  {
    name: 'CONNECT to a 255-byte domain on port 65535',
    command: 'connect',
    address: dn('a'.repeat(255), 65535),
    bytes: [0x05, 0x01, 0x00, 0x03, 255, ...repeat(0x61, 255), 0xff, 0xff],
  },
  {
    name: 'CONNECT to a one-letter domain on port 0',
    command: 'connect',
    address: dn('x', 0),
    bytes: [0x05, 0x01, 0x00, 0x03, 1, 0x78, 0x00, 0x00],
  },
];

describe('SOCKS5 request', () => {
  for (const c of REQUESTS) {
    it(`parses ${c.name}, needing more at every shorter prefix`, () => {
      assertEverySplit(parseRequest, c.bytes, { command: c.command, address: c.address });
    });
    it(`serializes ${c.name}`, () => {
      assert.deepStrictEqual(serializeRequest(c.command, c.address), Buffer.from(c.bytes));
    });
  }

  it('does not consume early payload after the request (size excludes it)', () => {
    const input = [
      0x05,
      0x01,
      0x00,
      0x03,
      11,
      ...ascii('example.com'),
      0x01,
      0xbb,
      ...ascii('GET / HTTP/1.1'),
    ];
    assert.deepStrictEqual(parseRequest(Uint8Array.from(input)), {
      done: true,
      value: { command: 'connect', address: dn('example.com', 443) },
      size: 18,
    });
  });

  it('ignores the RSV byte', () => {
    assert.deepStrictEqual(parseRequest(Uint8Array.from([0x05, 0x01, 0xff, 0x01, 1, 2, 3, 4, 0x00, 0x50])), {
      done: true,
      value: { command: 'connect', address: v4('1.2.3.4', 80) },
      size: 10,
    });
  });

  it('rejects an unknown command with BAD_COMMAND as soon as CMD arrives', () => {
    for (const cmd of [0x00, 0x04, 0x05, 0x80, 0xff]) {
      throwsCode(() => parseRequest(Uint8Array.from([0x05, cmd])), 'BAD_COMMAND');
      throwsCode(
        () => parseRequest(Uint8Array.from([0x05, cmd, 0x00, 0x01, 1, 2, 3, 4, 0, 80])),
        'BAD_COMMAND',
      );
    }
  });

  it('rejects an unknown address type with BAD_ADDRESS_TYPE as soon as ATYP arrives', () => {
    for (const atyp of [0x00, 0x02, 0x05, 0xff]) {
      throwsCode(() => parseRequest(Uint8Array.from([0x05, 0x01, 0x00, atyp])), 'BAD_ADDRESS_TYPE');
      throwsCode(
        () => parseRequest(Uint8Array.from([0x05, 0x01, 0x00, atyp, 1, 2, 3, 4, 0, 80])),
        'BAD_ADDRESS_TYPE',
      );
    }
  });

  it('rejects an empty domain with BAD_ADDRESS as soon as its length byte arrives', () => {
    throwsCode(() => parseRequest(Uint8Array.from([0x05, 0x01, 0x00, 0x03, 0])), 'BAD_ADDRESS');
    throwsCode(() => parseRequest(Uint8Array.from([0x05, 0x01, 0x00, 0x03, 0, 0x00, 0x50])), 'BAD_ADDRESS');
  });

  it('rejects NUL, control characters, space and DEL in a domain with BAD_ADDRESS', () => {
    for (const bad of [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x7f]) {
      const bytes = [0x05, 0x01, 0x00, 0x03, 3, 0x61, bad, 0x62, 0x00, 0x50];
      throwsCode(() => parseRequest(Uint8Array.from(bytes)), 'BAD_ADDRESS');
    }
  });

  it('rejects a version other than 5 with BAD_VERSION from the first byte', () => {
    throwsCode(() => parseRequest(Uint8Array.from([0x04])), 'BAD_VERSION');
    throwsCode(
      () => parseRequest(Uint8Array.from([0x04, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0, 80])),
      'BAD_VERSION',
    );
  });

  it('refuses to serialize an empty or longer than 255-byte domain (TOO_LONG)', () => {
    throwsCode(() => serializeRequest('connect', dn('', 80)), 'TOO_LONG');
    throwsCode(() => serializeRequest('connect', dn('a'.repeat(256), 80)), 'TOO_LONG');
  });

  it('refuses to serialize a port outside 0..65535 or a fractional port (BAD_ADDRESS)', () => {
    throwsCode(() => serializeRequest('connect', v4('1.2.3.4', 65536)), 'BAD_ADDRESS');
    throwsCode(() => serializeRequest('connect', v4('1.2.3.4', -1)), 'BAD_ADDRESS');
    throwsCode(() => serializeRequest('connect', v4('1.2.3.4', 80.5)), 'BAD_ADDRESS');
  });

  it('refuses to serialize malformed IP text (BAD_ADDRESS)', () => {
    for (const host of ['1.2.3', '1.2.3.4.5', '256.0.0.1', '127.0.0.0x1', '1.2.3. 4', '01.2.3.4', '']) {
      throwsCode(() => serializeRequest('connect', v4(host, 80)), 'BAD_ADDRESS');
    }
    for (const host of ['1.2.3.4', 'fe80::1%eth0', '1::2::3', 'example.com', '']) {
      throwsCode(() => serializeRequest('connect', v6(host, 80)), 'BAD_ADDRESS');
    }
  });
});

// ---- reply ----------------------------------------------------------------------------------

describe('SOCKS5 reply', () => {
  it('is always full length: an error reply with the zero IPv4 address is 10 bytes', () => {
    assert.deepStrictEqual(
      serializeReply(Rep.GENERAL_FAILURE),
      Buffer.from([0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00]),
    );
    assert.deepStrictEqual(
      serializeReply(Rep.HOST_UNREACHABLE),
      Buffer.from([0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00]),
    );
  });

  const cases: { name: string; rep: number; address: Address; bytes: number[] }[] = [
    {
      name: 'success bound to an IPv4 address',
      rep: Rep.SUCCEEDED,
      address: v4('192.168.1.10', 54321),
      bytes: [0x05, 0x00, 0x00, 0x01, 192, 168, 1, 10, 0xd4, 0x31],
    },
    {
      name: 'success bound to an IPv6 address',
      rep: Rep.SUCCEEDED,
      address: v6('fe80::1:2', 1080),
      bytes: [0x05, 0x00, 0x00, 0x04, 0xfe, 0x80, ...repeat(0, 10), 0x00, 0x01, 0x00, 0x02, 0x04, 0x38],
    },
    {
      name: 'success bound to a domain',
      rep: Rep.SUCCEEDED,
      address: dn('proxy.lan', 1080),
      bytes: [0x05, 0x00, 0x00, 0x03, 9, ...ascii('proxy.lan'), 0x04, 0x38],
    },
    {
      name: 'connection refused',
      rep: Rep.CONNECTION_REFUSED,
      address: v4('0.0.0.0', 0),
      bytes: [0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00],
    },
    {
      name: 'address type not supported',
      rep: Rep.ADDRESS_TYPE_NOT_SUPPORTED,
      address: v4('0.0.0.0', 0),
      bytes: [0x05, 0x08, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00],
    },
    {
      name: 'an unknown REP value (passed on as is)',
      rep: 0x42,
      address: v4('0.0.0.0', 0),
      bytes: [0x05, 0x42, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00],
    },
  ];
  for (const c of cases) {
    it(`serializes ${c.name}`, () => {
      assert.deepStrictEqual(serializeReply(c.rep, c.address), Buffer.from(c.bytes));
    });
    it(`parses ${c.name}, needing more at every shorter prefix`, () => {
      assertEverySplit(parseReply, c.bytes, { rep: c.rep, address: c.address });
    });
  }

  it('does not consume relayed data after the reply', () => {
    const input = [0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x50, ...ascii('HTTP/1.1 200 OK')];
    assert.deepStrictEqual(parseReply(Uint8Array.from(input)), {
      done: true,
      value: { rep: 0, address: v4('10.0.0.1', 80) },
      size: 10,
    });
  });

  it('rejects a version other than 5 (BAD_VERSION) and an unknown ATYP (BAD_ADDRESS_TYPE)', () => {
    throwsCode(() => parseReply(Uint8Array.from([0x04])), 'BAD_VERSION');
    throwsCode(() => parseReply(Uint8Array.from([0x00, 0x5a, 0x00, 0x50, 1, 2, 3, 4])), 'BAD_VERSION');
    throwsCode(() => parseReply(Uint8Array.from([0x05, 0x00, 0x00, 0x02])), 'BAD_ADDRESS_TYPE');
  });

  it('names every REP code, and unknown ones by number', () => {
    assert.deepStrictEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(repText), [
      'succeeded',
      'general failure',
      'not allowed by ruleset',
      'network unreachable',
      'host unreachable',
      'connection refused',
      'TTL expired',
      'command not supported',
      'address type not supported',
      'unknown reply code 9',
    ]);
  });
});

// ---- UDP ------------------------------------------------------------------------------------

describe('SOCKS5 UDP datagram header', () => {
  const cases: { name: string; address: Address; header: number[] }[] = [
    {
      name: 'an IPv4 destination',
      address: v4('8.8.8.8', 53),
      header: [0, 0, 0, 0x01, 8, 8, 8, 8, 0x00, 0x35],
    },
    {
      name: 'an IPv6 destination',
      address: v6('2001:4860:4860::8888', 53),
      header: [0, 0, 0, 0x04, 0x20, 0x01, 0x48, 0x60, 0x48, 0x60, ...repeat(0, 8), 0x88, 0x88, 0x00, 0x35],
    },
    {
      name: 'a domain destination',
      address: dn('dns.google', 853),
      header: [0, 0, 0, 0x03, 10, ...ascii('dns.google'), 0x03, 0x55],
    },
  ];
  for (const c of cases) {
    it(`serializes the header for ${c.name}`, () => {
      assert.deepStrictEqual(serializeUdpHeader(c.address), Buffer.from(c.header));
    });
    it(`parses a datagram to ${c.name}, with the payload offset after the header`, () => {
      const datagram = Uint8Array.from([...c.header, 0xde, 0xad, 0xbe, 0xef]);
      assert.deepStrictEqual(parseUdpDatagram(datagram), {
        frag: 0,
        address: c.address,
        dataOffset: c.header.length,
      });
    });
  }

  it('accepts an empty payload (dataOffset = datagram length)', () => {
    assert.deepStrictEqual(parseUdpDatagram(Uint8Array.from([0, 0, 0, 0x01, 1, 2, 3, 4, 0x00, 0x35])), {
      frag: 0,
      address: v4('1.2.3.4', 53),
      dataOffset: 10,
    });
  });

  it('reports FRAG so that the caller can drop fragments', () => {
    assert.deepStrictEqual(
      parseUdpDatagram(Uint8Array.from([0, 0, 0x01, 0x01, 1, 2, 3, 4, 0x00, 0x35, 0xaa])),
      {
        frag: 1,
        address: v4('1.2.3.4', 53),
        dataOffset: 10,
      },
    );
  });

  it('treats a truncated datagram as BAD_HEADER, never as need-more', () => {
    throwsCode(() => parseUdpDatagram(Uint8Array.from([])), 'BAD_HEADER');
    throwsCode(() => parseUdpDatagram(Uint8Array.from([0, 0, 0])), 'BAD_HEADER');
    throwsCode(() => parseUdpDatagram(Uint8Array.from([0, 0, 0, 0x01, 1, 2, 3, 4, 0x00])), 'BAD_HEADER');
    throwsCode(() => parseUdpDatagram(Uint8Array.from([0, 0, 0, 0x03, 5, 0x61, 0x62])), 'BAD_HEADER');
  });

  it('rejects an unknown ATYP (BAD_ADDRESS_TYPE) and an empty domain (BAD_ADDRESS)', () => {
    throwsCode(
      () => parseUdpDatagram(Uint8Array.from([0, 0, 0, 0x02, 1, 2, 3, 4, 0, 53])),
      'BAD_ADDRESS_TYPE',
    );
    throwsCode(() => parseUdpDatagram(Uint8Array.from([0, 0, 0, 0x03, 0, 0, 53])), 'BAD_ADDRESS');
  });
});

// ---- round trips ----------------------------------------------------------------------------

describe('SOCKS5 round trips (serialize, then parse)', () => {
  it('greeting', () => {
    const bytes = serializeGreeting([0x00, 0x02, 0x01]);
    assert.deepStrictEqual(parseGreeting(bytes), {
      done: true,
      value: { methods: [0x00, 0x02, 0x01] },
      size: 5,
    });
  });
  it('method choice', () => {
    assert.deepStrictEqual(parseMethodChoice(serializeMethodChoice(0xff)), {
      done: true,
      value: 0xff,
      size: 2,
    });
  });
  it('username/password request and status', () => {
    const bytes = serializeUserPass('alice', 'pässwörd');
    assert.deepStrictEqual(parseUserPass(bytes), {
      done: true,
      value: { username: 'alice', password: 'pässwörd' },
      size: bytes.length,
    });
    assert.deepStrictEqual(parseUserPassStatus(serializeUserPassStatus(false)), {
      done: true,
      value: false,
      size: 2,
    });
  });
  for (const c of REQUESTS) {
    it(`request: ${c.name}`, () => {
      const bytes = serializeRequest(c.command, c.address);
      assert.deepStrictEqual(parseRequest(bytes), {
        done: true,
        value: { command: c.command, address: c.address },
        size: bytes.length,
      });
    });
    it(`reply and UDP header bound to the address of: ${c.name}`, () => {
      const reply = serializeReply(Rep.SUCCEEDED, c.address);
      assert.deepStrictEqual(parseReply(reply), {
        done: true,
        value: { rep: 0, address: c.address },
        size: reply.length,
      });
      const header = serializeUdpHeader(c.address);
      assert.deepStrictEqual(parseUdpDatagram(header), {
        frag: 0,
        address: c.address,
        dataOffset: header.length,
      });
    });
  }
});

// ---- addresses ------------------------------------------------------------------------------

describe('IP address text <-> bytes', () => {
  const ipv6: [string, number[], string][] = [
    // [canonical RFC 5952 text, bytes, a non-canonical spelling of the same address]
    ['2001:db8::1', [0x20, 0x01, 0x0d, 0xb8, ...repeat(0, 11), 0x01], '2001:0DB8:0:0:0:0:0:0001'],
    ['::1', [...repeat(0, 15), 0x01], '0:0:0:0:0:0:0:1'],
    ['::', repeat(0, 16), '0:0:0:0:0:0:0:0'],
    ['::ffff:1.2.3.4', [...repeat(0, 10), 0xff, 0xff, 1, 2, 3, 4], '::FFFF:0102:0304'],
    ['::ffff:127.0.0.1', [...repeat(0, 10), 0xff, 0xff, 127, 0, 0, 1], '0:0:0:0:0:ffff:7f00:1'],
    ['fe80::', [0xfe, 0x80, ...repeat(0, 14)], 'fe80:0:0:0:0:0:0:0'],
    // a single zero group is not compressed
    [
      '2001:db8:0:1:1:1:1:1',
      [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
      '2001:db8::1:1:1:1:1',
    ],
    // the longest zero run is compressed; on a tie, the first
    ['2001:0:0:1::1', [0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], '2001:0:0:1:0:0:0:1'],
    ['2001:db8::1:0:0:1', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], '2001:db8:0:0:1::1'],
    // only ::ffff:0:0/96 is written with a dotted quad
    ['::102:304', [...repeat(0, 12), 1, 2, 3, 4], '::1.2.3.4'],
    ['::ffff:0:102:304', [...repeat(0, 8), 0xff, 0xff, 0, 0, 1, 2, 3, 4], '::ffff:0:1.2.3.4'],
  ];
  for (const [text, bytes, other] of ipv6) {
    it(`writes ${JSON.stringify(bytes.map((b) => b.toString(16)).join(' '))} as ${text}`, () => {
      assert.equal(bytesToIpv6(Uint8Array.from(bytes), 0), text);
    });
    it(`reads both ${text} and ${other} as the same bytes`, () => {
      assert.deepStrictEqual(ipv6ToBytes(text), Uint8Array.from(bytes));
      assert.deepStrictEqual(ipv6ToBytes(other), Uint8Array.from(bytes));
    });
  }

  it('reads IPv6 bytes at an offset', () => {
    assert.equal(bytesToIpv6(Uint8Array.from([0xaa, 0xbb, ...repeat(0, 15), 0x01]), 2), '::1');
  });

  it('converts dotted quads both ways, also at an offset', () => {
    assert.deepStrictEqual(ipv4ToBytes('192.0.2.255'), Uint8Array.from([192, 0, 2, 255]));
    assert.equal(bytesToIpv4(Uint8Array.from([0xff, 10, 0, 0, 1]), 1), '10.0.0.1');
  });

  it('classifies host text and formats host:port with IPv6 in brackets', () => {
    assert.deepStrictEqual(addressOf('10.0.0.1', 80), v4('10.0.0.1', 80));
    assert.deepStrictEqual(addressOf('[::1]', 443), v6('::1', 443));
    assert.deepStrictEqual(addressOf('::1', 443), v6('::1', 443));
    assert.deepStrictEqual(addressOf('example.com', 8080), dn('example.com', 8080));
    assert.equal(formatAddress(v6('::1', 443)), '[::1]:443');
    assert.equal(formatAddress(v4('10.0.0.1', 80)), '10.0.0.1:80');
    assert.equal(formatAddress(dn('example.com', 8080)), 'example.com:8080');
  });
});

// ---- reply codes ----------------------------------------------------------------------------

describe('errno -> REP', () => {
  const cases: [string | undefined, number][] = [
    ['ECONNREFUSED', 5],
    ['ENETUNREACH', 3],
    ['ENETDOWN', 3],
    ['EHOSTUNREACH', 4],
    ['EHOSTDOWN', 4],
    ['ENOTFOUND', 4],
    ['EAI_AGAIN', 4],
    ['EAI_NONAME', 4],
    ['EAI_FAIL', 4],
    ['ENODATA', 4],
    ['ETIMEDOUT', 6],
    ['EAFNOSUPPORT', 8],
    ['ECONNRESET', 1],
    ['EPIPE', 1],
    ['EWHATEVER', 1],
    ['', 1],
    [undefined, 1],
    ['constructor', 1],
    ['__proto__', 1],
    ['toString', 1],
  ];
  for (const [code, rep] of cases) {
    it(`maps ${code === undefined ? 'no code' : JSON.stringify(code)} to REP ${rep}`, () => {
      assert.equal(repForErrno(code), rep);
    });
  }

  it('maps BAD_COMMAND to 7, BAD_ADDRESS_TYPE to 8 and every other codec error to 1', () => {
    const codes: [ProtocolErrorCode, number][] = [
      ['BAD_COMMAND', 7],
      ['BAD_ADDRESS_TYPE', 8],
      ['BAD_VERSION', 1],
      ['BAD_ADDRESS', 1],
      ['BAD_LENGTH', 1],
      ['TOO_LONG', 1],
      ['BAD_METHOD', 1],
      ['BAD_STATUS', 1],
      ['BAD_HEADER', 1],
    ];
    for (const [code, rep] of codes)
      assert.equal(repForProtocolError(new ProtocolError(code, 'x')), rep, code);
  });
});
