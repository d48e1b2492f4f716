// Shaping works (issue 15 §3): an htb class of 10 Mbit/s on a veth limits a bulk TCP transfer
// through it. Functional only (the rate is clearly limited: between half and one and a half
// times the configured rate, over ~2.5 s); the precise figures are the benchmark's
// (bench/net-tc-shaping.ts, docs/net-tc.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '@vmhost/lab';
import { bulkTransfer } from '../../test/helpers/bulk-tcp.js';

test('an htb class of 10 Mbit/s limits a bulk TCP transfer to about 10 Mbit/s', async (t) => {
  const lab = await Lab.create({
    prefix: 'vmhl-shape-',
    namespaces: { a: {}, b: {} },
    links: [{ a: { ns: 'a', name: 'eth0' }, b: { ns: 'b', name: 'eth0' }, addresses: { a: ['192.168.77.1/24'], b: ['192.168.77.2/24'] } }],
  });
  t.after(() => lab.close());
  const h = await lab.rtnl('a');
  await h.qdiscs.add({ kind: 'htb', dev: 'eth0', handle: '1:', defaultClass: '1:10' });
  await h.classes.add({ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10', rate: '10mbit' });
  const r = await bulkTransfer(lab.ns('a'), lab.ns('b'), '192.168.77.2', 5001, 3 * 1024 * 1024);
  assert.equal(r.bytes, 3 * 1024 * 1024);
  assert.ok(r.mbit > 5 && r.mbit < 15, `${r.mbit.toFixed(2)} Mbit/s over ${r.seconds.toFixed(2)} s`);
  const [cls] = await h.classes.list({ dev: 'eth0' });
  assert.ok(cls!.stats!.bytes >= 3 * 1024 * 1024 && cls!.stats!.overlimits > 0, JSON.stringify(cls!.stats)); // it went through the class, held back
});
