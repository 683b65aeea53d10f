import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AddressClass,
  classifyAddress,
  isRestrictedDestination,
  looksLikeNumericHost,
  parseNumericHost,
} from '../../native-host/src/policy/address-ranges.ts';

describe('classifyAddress', () => {
  const cases: [string, AddressClass][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['192.168.1.1', 'private'],
    ['192.169.0.1', 'public'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::fb', 'multicast'],
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['2606:4700::1111', 'public'],
    ['::2', 'public'],
    // IPv4-mapped IPv6 is the IPv4 address it carries, in either spelling.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['[::1]', 'loopback'],
    ['fe80::1%eth0', 'link-local'],
    ['::1%lo', 'loopback'],
    // NAT64 well-known prefix: judged by the embedded IPv4 address.
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::808:808', 'public'],
    // Spellings getaddrinfo reads as 127.0.0.1 and friends.
    ['127.1', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['2130706433', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['127.0.1', 'loopback'],
    ['10.1', 'private'],
    ['0', 'unspecified'],
    ['127.0.0.1.', 'loopback'],
  ];
  for (const [ip, expected] of cases) {
    test(`${ip} is ${expected}`, () => assert.equal(classifyAddress(ip), expected));
  }

  test('a host name has no class', () => {
    assert.throws(() => classifyAddress('localhost'), RangeError);
    assert.throws(() => classifyAddress('1.2.3.256'), RangeError);
  });
});

describe('isRestrictedDestination', () => {
  test('everything but public addresses is restricted', () => {
    for (const ip of ['127.0.0.1', '::1', '10.0.0.1', 'fc00::1', '169.254.0.1', 'fe80::1', '0.0.0.0', '::']) {
      assert.equal(isRestrictedDestination(ip), true, ip);
    }
    for (const ip of ['224.0.0.1', 'ff02::1', '::ffff:192.168.0.1', '127.1', '0x7f000001', '2130706433']) {
      assert.equal(isRestrictedDestination(ip), true, ip);
    }
    for (const ip of ['8.8.8.8', '2001:4860:4860::8888', '::ffff:1.1.1.1']) {
      assert.equal(isRestrictedDestination(ip), false, ip);
    }
  });

  test('a name passed by mistake fails closed', () => {
    assert.equal(isRestrictedDestination('example.com'), true);
    assert.equal(isRestrictedDestination(''), true);
  });
});

describe('parseNumericHost', () => {
  test('reads inet_aton forms as the resolver does', () => {
    const cases: [string, string][] = [
      ['127.1', '127.0.0.1'],
      ['0x7f000001', '127.0.0.1'],
      ['0X7F000001', '127.0.0.1'],
      ['2130706433', '127.0.0.1'],
      ['0177.0.0.1', '127.0.0.1'],
      ['010.0.0.1', '8.0.0.1'],
      ['192.168.257', '192.168.1.1'],
      ['10.65536', '10.1.0.0'],
      ['0x', '0.0.0.0'],
      ['4294967295', '255.255.255.255'],
      ['1.2.3.4.', '1.2.3.4'],
    ];
    for (const [name, text] of cases) {
      const parsed = parseNumericHost(name);
      assert.equal(parsed?.text, text, name);
      assert.equal(parsed?.canonical, false, name);
    }
  });

  test('canonical literals are marked so; IPv6 with brackets or mapped too', () => {
    assert.deepEqual(
      ['10.0.0.1', '::1', '[::1]', '::ffff:127.0.0.1', 'FE80::1'].map((h) => parseNumericHost(h)?.canonical),
      [true, true, true, true, true],
    );
    assert.equal(parseNumericHost('::ffff:127.0.0.1')?.text, '127.0.0.1');
    assert.equal(parseNumericHost('fe80::1%eth0')?.canonical, false);
  });

  test('rejects names and out-of-range numbers', () => {
    for (const name of [
      'example.com',
      '1.2.3.256',
      '256.1',
      '1.16777216',
      '4294967296',
      '08',
      '1..2',
      '.1',
      '1.2.3.4.5',
      '0x1ffffffff',
      '',
      '[1.2.3.4]',
    ]) {
      assert.equal(parseNumericHost(name), undefined, name);
    }
  });
});

describe('looksLikeNumericHost', () => {
  test('addresses in any spelling, and numeric shapes a resolver would hand to DNS', () => {
    for (const name of [
      '127.1',
      '0x7f000001',
      '2130706433',
      '::ffff:127.0.0.1',
      '10.0.0.1',
      '1.2.3.256',
      '08',
    ]) {
      assert.equal(looksLikeNumericHost(name), true, name);
    }
  });

  test('host names do not', () => {
    for (const name of ['example.com', 'localhost', '1.example', 'x1.2', '0xfoo.com', '']) {
      assert.equal(looksLikeNumericHost(name), false, name);
    }
  });
});
