import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fdLimitWarning, openFileLimit } from '../../native-host/src/cli/fd-limit.ts';

test('the open-file limit is read from /proc/self/limits', () => {
  const limit = openFileLimit();
  assert.ok(limit !== undefined && limit > 0, `got ${limit}`);
});

test('no warning when two descriptors per allowed connection fit the limit', () => {
  assert.equal(fdLimitWarning(4096, 65536), undefined);
  assert.equal(fdLimitWarning(100, 264), undefined);
});

test('a warning naming the numbers and the fix when they do not fit', () => {
  assert.equal(
    fdLimitWarning(4096, 1024),
    'limits.maxConnections is 4096, which needs about 8256 open files, but this process may open 1024: ' +
      'past about 480 tunnels new clients are refused without a log line. ' +
      'Raise the limit (ulimit -n 8256) or lower limits.maxConnections.',
  );
});

test('no warning where the limit cannot be read', () => {
  assert.equal(fdLimitWarning(4096, undefined), undefined);
});
