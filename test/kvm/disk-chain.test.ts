// The block graph read and the commit's refusals against a fake QMP server answering with what
// QEMU 7.2 answers (query-block, query-named-block-nodes): no QEMU, no privilege. Nothing is
// started when the input is wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockChain, BlockJobBusyError, liveCommit, liveSnapshot, QmpClient } from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';
import { FakeQmpServer, type FakeConn, type QmpMessage } from './fake-qmp.js';

const image = {
  filename: '/d/c.qcow2', format: 'qcow2', 'virtual-size': 1 << 30, 'backing-filename': '/d/b.qcow2', 'full-backing-filename': '/d/b.qcow2', 'backing-filename-format': 'qcow2',
  'backing-image': {
    filename: '/d/b.qcow2', format: 'qcow2', 'virtual-size': 1 << 30, 'full-backing-filename': '/d/a.raw', 'backing-filename-format': 'raw',
    'backing-image': { filename: '/d/a.raw', format: 'raw', 'virtual-size': 1 << 30 },
  },
};
const nodes = (held = false): unknown[] => [
  { 'node-name': '#block1', drv: 'raw', file: '/d/a.raw' },
  { 'node-name': '#block2', drv: 'file', file: '/d/a.raw' },
  { 'node-name': '#block3', drv: 'qcow2', file: '/d/b.qcow2' },
  { 'node-name': '#block4', drv: 'file', file: '/d/b.qcow2' },
  { 'node-name': '#block5', drv: 'qcow2', file: '/d/c.qcow2' },
  ...(held ? [{ 'node-name': '#block9', drv: 'commit_top', file: '/d/b.qcow2' }] : []),
];

async function fake(t: import('node:test').TestContext, held = false): Promise<{ qmp: QmpClient; sent: () => string[] }> {
  const onCommand = (m: QmpMessage, c: FakeConn): void => {
    if (m.execute === 'query-block') c.reply(m, [{ device: 'drive0', inserted: { 'node-name': '#block5', file: '/d/c.qcow2', image } }, { device: 'cd0' }]);
    else if (m.execute === 'query-named-block-nodes') c.reply(m, nodes(held));
    else if (m.execute === 'query-block-jobs') c.reply(m, []);
    else c.error(m, 'GenericError', 'not expected here');
  };
  const srv = await FakeQmpServer.start({ onCommand });
  t.after(() => srv.close());
  const connP = srv.nextConnection();
  const qmp = await QmpClient.connect({ path: srv.path });
  t.after(() => qmp.close());
  const conn = await connP;
  return { qmp, sent: () => conn.received.map((m) => String(m.execute)) };
}

test('blockChain: the images top first with their format nodes, backing names and job holds', async (t) => {
  const { qmp } = await fake(t);
  assert.deepEqual(await blockChain(qmp, 'drive0'), [
    { file: '/d/c.qcow2', format: 'qcow2', nodeName: '#block5', virtualSize: 1 << 30, backingFile: '/d/b.qcow2', backingFormat: 'qcow2' },
    { file: '/d/b.qcow2', format: 'qcow2', nodeName: '#block3', virtualSize: 1 << 30, backingFile: '/d/a.raw', backingFormat: 'raw' },
    { file: '/d/a.raw', format: 'raw', nodeName: '#block1', virtualSize: 1 << 30 },
  ]);
  await assert.rejects(blockChain(qmp, 'cd0'), (e: unknown) => e instanceof ValidationError && e.field === 'device' && /drive0, cd0/.test(e.message));
  const { qmp: q2 } = await fake(t, true);
  assert.equal((await blockChain(q2, 'drive0'))[1]!.heldBy, 'commit_top');
});

test('liveCommit refuses unknown or misplaced points and held chains before starting anything', async (t) => {
  const { qmp, sent } = await fake(t);
  const cases: [Parameters<typeof liveCommit>[1], string, RegExp][] = [
    [{ device: 'drive0', base: '/d/zzz.qcow2' }, 'base', /not in the chain of drive0 \(\/d\/a\.raw ← \/d\/b\.qcow2 ← \/d\/c\.qcow2\)/],
    [{ device: 'drive0', baseNode: '#block4' }, 'baseNode', /node #block4 is not in the chain/],
    [{ device: 'drive0', top: '/d/b.qcow2', base: '/d/c.qcow2' }, 'base', /is not below \/d\/b\.qcow2/],
    [{ device: 'drive0', top: '/d/a.raw' }, 'top', /no backing image to commit into/],
    [{ device: 'drive0', speed: 0 }, 'speed', /positive/],
    [{ device: '' }, 'device', /drive id/],
  ];
  for (const [o, field, why] of cases) {
    await assert.rejects(liveCommit(qmp, o), (e: unknown) => e instanceof ValidationError && e.field === field && why.test(e.message), JSON.stringify(o));
  }
  assert.equal(sent().filter((c) => !c.startsWith('query-')).length, 0, 'no job was started');
  const { qmp: held, sent: heldSent } = await fake(t, true);
  await assert.rejects(liveCommit(held, { device: 'drive0' }), (e: unknown) => e instanceof BlockJobBusyError && /b\.qcow2 \(commit_top\)/.test(e.message));
  await assert.rejects(liveSnapshot(held, { device: 'drive0', overlay: '/d/new.qcow2' }), BlockJobBusyError);
  assert.equal(heldSent().filter((c) => !c.startsWith('query-')).length, 0);
});
