// settledPool (engine/kinds/kind.ts), which stops a batch of VMs and asks their QMP sockets side by
// side: every item's outcome in input order, a failure confined to its item, never more than
// `limit` running at once (and the limit reached when there is work for it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { settledPool } from '../../packages/host/src/engine/kinds/kind.js';

test('settledPool: outcomes in input order, failures confined, at most `limit` at once', async () => {
  const items = Array.from({ length: 23 }, (_, i) => i);
  let now = 0;
  let peak = 0;
  const out = await settledPool(items, 4, async (i) => {
    now++;
    peak = Math.max(peak, now);
    // uneven durations so that the items finish out of order
    for (let k = 0; k < (i * 7) % 5; k++) await tick();
    now--;
    if (i % 6 === 5) throw new Error(`item ${i}`);
    return i * 10;
  });
  assert.equal(peak, 4);
  assert.equal(out.length, items.length);
  for (const i of items) {
    if (i % 6 === 5) assert.deepEqual(out[i], { status: 'rejected', reason: new Error(`item ${i}`) });
    else assert.deepEqual(out[i], { status: 'fulfilled', value: i * 10 });
  }
});

test('settledPool: no items, fewer items than the limit', async () => {
  assert.deepEqual(await settledPool([], 16, async () => 1), []);
  let peak = 0;
  let now = 0;
  const out = await settledPool(['a', 'b'], 16, async (s) => {
    peak = Math.max(peak, ++now);
    await tick();
    now--;
    return s.toUpperCase();
  });
  assert.equal(peak, 2);
  assert.deepEqual(out, [{ status: 'fulfilled', value: 'A' }, { status: 'fulfilled', value: 'B' }]);
});
