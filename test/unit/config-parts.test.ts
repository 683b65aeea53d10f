import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigPartsError, readConfigInParts } from '../../shared/messages/config-parts.ts';
import type { ConfigPartResult } from '../../shared/messages/protocol.ts';

class Changed extends Error {}

/** Serves `text` in parts of `size` characters, as revision `revision()` (which may move). */
function partsOf(text: string, size: number, revision: () => number) {
  const asked: string[] = [];
  const read = async (offset: number, rev: number | undefined): Promise<ConfigPartResult> => {
    asked.push(`${offset}@${rev ?? '-'}`);
    if (rev !== undefined && rev !== revision()) throw new Changed();
    return { revision: revision(), offset, total: text.length, text: text.slice(offset, offset + size) };
  };
  return { read, asked };
}

const answer = {
  config: { version: 1, hosts: { 'a.example': ['10.0.0.1'] } },
  passwordSaved: {},
  revision: 4,
};
const text = JSON.stringify(answer);

describe('readConfigInParts', () => {
  test('joins the parts of one revision and parses the whole', async () => {
    const { read, asked } = partsOf(text, 7, () => 4);
    assert.deepEqual(await readConfigInParts(read, (e) => e instanceof Changed), answer);
    assert.equal(asked[0], '0@-');
    assert.ok(
      asked.slice(1).every((a) => a.endsWith('@4')),
      asked.join(' '),
    );
    assert.equal(asked.length, Math.ceil(text.length / 7));
  });

  test('starts over when the config changed between parts, and gives up after the last attempt', async () => {
    let revision = 4;
    const { read, asked } = partsOf(text, 7, () => revision);
    const flaky = async (offset: number, rev: number | undefined) => {
      if (offset === 14 && revision === 4) revision = 5;
      return read(offset, rev);
    };
    await readConfigInParts(flaky, (e) => e instanceof Changed);
    assert.equal(asked.filter((a) => a.startsWith('0@')).length, 2, 'read from 0 twice');

    const always = async (offset: number, rev: number | undefined) => {
      if (offset > 0) throw new Changed();
      return read(offset, rev);
    };
    await assert.rejects(
      readConfigInParts(always, (e) => e instanceof Changed, 3),
      Changed,
    );
  });

  test('an answer for another offset, or an empty part before the end, is an error', async () => {
    const wrongOffset = async (offset: number): Promise<ConfigPartResult> => ({
      revision: 1,
      offset: offset === 0 ? 0 : offset + 1,
      total: text.length,
      text: text.slice(0, 5),
    });
    await assert.rejects(
      readConfigInParts(wrongOffset, () => false),
      ConfigPartsError,
    );
    const empty = async (offset: number): Promise<ConfigPartResult> => ({
      revision: 1,
      offset,
      total: text.length,
      text: offset === 0 ? text.slice(0, 5) : '',
    });
    await assert.rejects(
      readConfigInParts(empty, () => false),
      /returned nothing at offset 5/,
    );
  });
});
