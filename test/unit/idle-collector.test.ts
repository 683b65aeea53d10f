import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startIdleCollector } from '../../native-host/src/service/idle-collector.ts';
import { SERVICE_NODE_FLAGS, withServiceFlags } from '../../native-host/src/service/node-flags.ts';

/** A counter standing in for accepted connections, and a collector that counts its runs. */
function harness(options: { idleCpuShare: number; minGrowthBytes?: number }) {
  let accepted = 0;
  let runs = 0;
  const collector = startIdleCollector({
    activity: () => accepted,
    tickMs: 20,
    minGrowthBytes: options.minGrowthBytes ?? 0,
    idleCpuShare: options.idleCpuShare,
    collect: () => {
      runs++;
    },
  });
  return {
    connect: () => {
      accepted++;
    },
    runs: () => runs,
    collector,
  };
}

describe('idle collector', () => {
  test('collects once after a burst of connections, when a tick passes quietly', async () => {
    const h = harness({ idleCpuShare: 1 });
    try {
      await sleep(80);
      assert.equal(h.runs(), 0, 'nothing happened yet: nothing to collect');
      for (let i = 0; i < 100; i++) h.connect();
      await sleep(120);
      assert.equal(h.runs(), 1);
      await sleep(120);
      assert.equal(h.runs(), 1, 'once per burst, not once per quiet tick');
      h.connect();
      await sleep(120);
      assert.equal(h.runs(), 2, 'the next burst earns the next collection');
      assert.equal(h.collector.collections, 2);
    } finally {
      h.collector.stop();
    }
  });

  test('never collects while the process is busy, however quiet the listener is', async () => {
    const h = harness({ idleCpuShare: 0 });
    try {
      h.connect();
      await sleep(150);
      assert.equal(h.runs(), 0);
    } finally {
      h.collector.stop();
    }
  });

  test('skips the collection when the heap has not grown by the threshold', async () => {
    const h = harness({ idleCpuShare: 1, minGrowthBytes: 1024 * 1024 * 1024 });
    try {
      h.connect();
      await sleep(120);
      assert.equal(h.runs(), 0);
    } finally {
      h.collector.stop();
    }
  });

  test('does nothing without a collector to call (node started without --expose-gc)', async () => {
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'this test process has no gc()');
    let accepted = 0;
    const collector = startIdleCollector({
      activity: () => accepted,
      tickMs: 20,
      minGrowthBytes: 0,
      idleCpuShare: 1,
    });
    accepted++;
    await sleep(100);
    assert.equal(collector.collections, 0);
    collector.stop();
  });
});

describe('service node flags', () => {
  test('are added to the node options a service is started with', () => {
    assert.deepEqual(withServiceFlags(['--enable-source-maps']), [
      '--enable-source-maps',
      ...SERVICE_NODE_FLAGS,
    ]);
  });

  test('leave alone a flag the user set, however V8 spelling it', () => {
    const out = withServiceFlags(['--max_semi_space_size=8', '--initial-old-space-size=128']);
    assert.deepEqual(out, [
      '--max_semi_space_size=8',
      '--initial-old-space-size=128',
      ...SERVICE_NODE_FLAGS.filter(
        (f) => !f.startsWith('--max-semi-space-size') && !f.startsWith('--initial-old-space-size'),
      ),
    ]);
  });

  test('include --expose-gc, which the idle collector needs', () => {
    assert.ok(SERVICE_NODE_FLAGS.includes('--expose-gc'));
  });
});
