// The chain record of a VM's disks (engine/disks/record.ts) read strictly (every problem an
// EHOST_DISK_RECORD naming the file and the field; overlay names only bare names of the disk
// directory), written 0600 and atomically; the pure transitions (engine/disks/chain.ts): snapshot,
// rollback, commit (all, into a point), delete a point, abandon, with the overlays they remove
// and the labels that go; never the host file's image or a base; and the sweep of strays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostDiskError, HostStateError } from '../../packages/host/src/errors.js';
import {
  abandon, applyTransition, commit, damagedBy, defaultLabel, deletePoint, expectedChain, images, initDisk, labelIndex, plainDisk, rollback, snapshot, topOf, vmLabels, type Transition,
} from '../../packages/host/src/engine/disks/chain.js';
import { sweep } from '../../packages/host/src/engine/disks/images.js';
import { chainFile, emptyRecord, parseChainRecord, readChainRecord, writeChainRecord, type ChainRecord, type DiskChain } from '../../packages/host/src/engine/disks/record.js';

const DIR = '/var/lib/vmhost/h/disks/web';
const FILE = `${DIR}/chain.json`;
const T = (n: number): string => `2024-05-01T12:00:0${n}.000Z`;
const ov = (disk: number, n: number): string => `d${disk}-${String(n).repeat(12).slice(0, 12)}.qcow2`;

/** A record: disk 0 plain with s1 on its image and s2 on the first overlay; disk 1 on a base with s1. */
function sample(): ChainRecord {
  return {
    version: 1,
    vm: 'web',
    disks: [
      {
        index: 0,
        mode: 'plain',
        origin: '/srv/web.qcow2',
        originFormat: 'qcow2',
        originPoint: { label: 's1', takenAt: T(1) },
        overlays: [
          { file: ov(0, 1), createdAt: T(1), point: { label: 's2', takenAt: T(2) } },
          { file: ov(0, 2), createdAt: T(2), point: null },
        ],
      },
      {
        index: 1,
        mode: 'base',
        origin: '/srv/debian-12.raw',
        originFormat: 'raw',
        originPoint: null,
        overlays: [
          { file: ov(1, 1), createdAt: T(0), point: { label: 's1', takenAt: T(1) } },
          { file: ov(1, 2), createdAt: T(1), point: null },
        ],
      },
    ],
    deleted: [{ label: 'old', at: T(0), how: 'deleted' }],
    intent: null,
    updatedAt: T(3),
  };
}

const text = (r: unknown): string => JSON.stringify(r);

/** `parseChainRecord` of `r` (edited by `edit`) refuses it naming the file, with `why` in the message. */
function refused(edit: (r: Record<string, any>) => void, why: RegExp): void {
  const r = structuredClone(sample()) as unknown as Record<string, any>;
  edit(r);
  assert.throws(
    () => parseChainRecord(text(r), FILE, 'web'),
    (e: unknown) => {
      assert.ok(e instanceof HostDiskError, String(e));
      assert.equal(e.code, 'EHOST_DISK_RECORD');
      assert.equal(e.file, FILE);
      assert.ok(e.message.startsWith(`${FILE}: not a vmhost chain record: `), e.message);
      assert.match(e.message, why);
      return true;
    },
  );
}

test('a chain record reads back as written (plain and base disks, points, tombstones, an intent)', () => {
  const r = sample();
  assert.deepEqual(parseChainRecord(text(r), FILE, 'web'), r);
  const withIntent: ChainRecord = { ...r, intent: { op: 'snapshot', label: 's3', at: T(4), pending: [1], add: [{ disk: 0, file: ov(0, 2) }, { disk: 1, file: ov(1, 3) }], remove: [], resume: false } };
  assert.deepEqual(parseChainRecord(text(withIntent), FILE, 'web'), withIntent);
  // a base disk without overlay only while its first overlay is being made
  const init: ChainRecord = { ...emptyRecord('web'), disks: [{ ...initDisk(0, '/srv/b.qcow2', 'qcow2', '', T(0)), overlays: [] }], intent: { op: 'init', label: null, at: T(0), pending: [0], add: [{ disk: 0, file: ov(0, 1) }], remove: [], resume: false } };
  assert.deepEqual(parseChainRecord(text(init), FILE, 'web').intent?.op, 'init');
});

test('overlay names are bare names of the disk directory, of their own disk: paths, dot-dots, other disks are refused', () => {
  for (const bad of ['../d0-111111111111.qcow2', '/etc/shadow', 'd0-111111111111.qcow2/..', 'sub/d0-111111111111.qcow2', 'd1-111111111111.qcow2', 'd0-11111111111G.qcow2', 'd0-111111111111.raw', '', 'chain.json']) {
    refused((r) => (r.disks[0].overlays[0].file = bad), /disks\[0\]\.overlays\[0\]\.file: .* is not an overlay of disk 0/);
  }
  refused((r) => (r.disks[0].origin = 'srv/web.qcow2'), /disks\[0\]\.origin: expected an absolute normal path/);
  refused((r) => (r.disks[0].origin = '/srv/../etc/web.qcow2'), /origin: expected an absolute normal path/);
  refused((r) => (r.disks[0].origin = '/srv/web\n.qcow2'), /origin: expected an absolute normal path/);
  refused((r) => (r.disks[0].overlays[1].file = ov(0, 1)), /the overlay d0-111111111111\.qcow2 twice/);
});

test('the record refuses what does not fit the chains: the top as a point, a label twice, a base as a point, an intent that lies', () => {
  refused((r) => (r.version = 2), /version: expected 1/);
  refused((r) => (r.vm = 'mail'), /vm: "mail", but the record is in the directory of "web"/);
  refused((r) => (r.extra = 1), /the file: unknown field "extra"/);
  refused((r) => delete r.deleted, /missing field "deleted"/);
  refused((r) => (r.disks[0].overlays[1].point = { label: 'top', takenAt: T(1) }), /the top .* cannot be a snapshot point/);
  refused((r) => (r.disks[0].overlays[0].point.label = 's1'), /the label "s1" twice/);
  refused((r) => (r.disks[0].overlays[0].point.label = 'bad label'), /is not a snapshot label/);
  refused((r) => (r.disks[0].overlays[0].point.takenAt = 'yesterday'), /takenAt: expected an ISO time/);
  refused((r) => (r.disks[1].originPoint = { label: 'b', takenAt: T(1) }), /a base image is never a snapshot point/);
  refused((r) => (r.disks[1].overlays = []), /a disk on a base image has its own overlay/);
  refused((r) => (r.disks[0].overlays = []), /the image is the top .* cannot be a snapshot point/);
  refused((r) => (r.disks = [r.disks[1], r.disks[0]]), /increasing order/);
  refused((r) => (r.disks[0].mode = 'copy'), /mode: expected "plain" or "base"/);
  refused((r) => (r.intent = { op: 'format', label: null, at: T(1), pending: [], add: [], remove: [], resume: false }), /intent\.op: expected one of/);
  refused((r) => (r.intent = { op: 'commit', label: null, at: T(1), pending: [3], add: [], remove: [], resume: false }), /intent\.pending: no disk 3/);
  refused((r) => (r.intent = { op: 'commit', label: null, at: T(1), pending: [], add: [], remove: [{ disk: 0, file: ov(0, 1) }], resume: false }), /intent\.remove: .* is still in a chain/);
  refused((r) => (r.intent = { op: 'snapshot', label: 's3', at: T(1), pending: [0], add: [{ disk: 0, file: ov(0, 2) }], remove: [], resume: false }), /intent\.add: .* is in the chain of a pending disk/);
  refused((r) => (r.intent = { op: 'snapshot', label: 's3', at: T(1), pending: [], add: [{ disk: 0, file: ov(0, 9) }], remove: [], resume: false }), /intent\.add: .* is not in the chain of its switched disk/);
  refused((r) => (r.intent = { op: 'delete', label: 's1', at: T(1), pending: [], add: [], remove: [{ disk: 0, file: '../x' }], resume: false }), /intent\.remove\[0\]\.file/);
  for (const t of ['', '{', 'null', '[]', '"x"', '{"version":1}']) {
    assert.throws(() => parseChainRecord(t, FILE, 'web'), (e: unknown) => e instanceof HostDiskError && e.code === 'EHOST_DISK_RECORD' && e.file === FILE);
  }
});

test('images, tops, labels and the chain qemu-img must show', () => {
  const [plain, base] = sample().disks as [DiskChain, DiskChain];
  assert.deepEqual(images(plain).map((i) => [i.name, i.point?.label ?? null]), [[null, 's1'], [ov(0, 1), 's2'], [ov(0, 2), null]]);
  assert.deepEqual(images(base).map((i) => i.name), [ov(1, 1), ov(1, 2)], 'a base is not an image of the chain: never labelled, never written');
  assert.deepEqual(topOf(plain, DIR), { file: `${DIR}/${ov(0, 2)}`, format: 'qcow2' });
  assert.deepEqual(topOf(plainDisk(0, '/srv/a.raw', 'raw'), DIR), { file: '/srv/a.raw', format: 'raw' });
  assert.equal(labelIndex(plain, 's2'), 1);
  assert.equal(labelIndex(base, 's2'), -1);
  assert.deepEqual(expectedChain(base, DIR), [
    { file: `${DIR}/${ov(1, 2)}`, format: 'qcow2', backingFormat: 'qcow2' },
    { file: `${DIR}/${ov(1, 1)}`, format: 'qcow2', backingFormat: 'raw' },
    { file: '/srv/debian-12.raw', format: 'raw' },
  ]);
  assert.deepEqual(expectedChain(plain, DIR).at(-1), { file: '/srv/web.qcow2', format: 'qcow2' });
  assert.deepEqual(vmLabels(sample()), [{ label: 's1', takenAt: T(1), disks: [0, 1] }, { label: 's2', takenAt: T(2), disks: [0] }]);
  assert.equal(defaultLabel(sample(), '2024-05-01T12:00:00.000Z'), 'snap-20240501-120000');
  const taken = sample();
  taken.disks[0]!.originPoint!.label = 'snap-20240501-120000';
  assert.equal(defaultLabel(taken, '2024-05-01T12:00:00.000Z'), 'snap-20240501-120000-2');
});

test('snapshot freezes the top as the point and puts a new overlay on it', () => {
  const fresh = snapshot(plainDisk(0, '/srv/a.qcow2', 'qcow2'), 'a', T(1), ov(0, 1));
  assert.deepEqual(fresh.disk.originPoint, { label: 'a', takenAt: T(1) }, "a plain disk's own image is the first point");
  assert.deepEqual(fresh.disk.overlays, [{ file: ov(0, 1), createdAt: T(1), point: null }]);
  const [, base] = sample().disks as [DiskChain, DiskChain];
  const t = snapshot(base, 's3', T(4), ov(1, 3));
  assert.deepEqual(images(t.disk).map((i) => [i.name, i.point?.label ?? null]), [[ov(1, 1), 's1'], [ov(1, 2), 's3'], [ov(1, 3), null]]);
  assert.deepEqual([t.removed, t.dropped], [[], []]);
  assert.equal(base.overlays.length, 2, 'the input is not changed');
});

test('rollback drops the images above the point (and their points) and puts a new overlay on it; the point stays', () => {
  const [plain] = sample().disks as [DiskChain];
  const t = rollback(plain, 's1', T(5), ov(0, 3));
  assert.deepEqual(images(t.disk).map((i) => [i.name, i.point?.label ?? null]), [[null, 's1'], [ov(0, 3), null]]);
  assert.deepEqual(t.removed, [ov(0, 1), ov(0, 2)]);
  assert.deepEqual(t.dropped.map((d) => [d.point.label, d.how]), [['s2', 'rolled-back']]);
  const again = rollback(plain, 's2', T(5), ov(0, 3));
  assert.deepEqual(again.removed, [ov(0, 2)]);
  assert.deepEqual(images(again.disk).map((i) => i.point?.label ?? null), ['s1', 's2', null]);
});

test('commit merges into the root (a plain disk: its image; a base disk: its own overlay, never the base) or into a point', () => {
  const [plain, base] = sample().disks as [DiskChain, DiskChain];
  const all = commit(plain, null)!;
  assert.deepEqual(images(all.disk).map((i) => [i.name, i.point]), [[null, null]], 'one file: the image');
  assert.deepEqual(all.removed, [ov(0, 1), ov(0, 2)]);
  assert.deepEqual(all.dropped.map((d) => [d.point.label, d.how]), [['s1', 'committed'], ['s2', 'committed']]);
  const b = commit(base, null)!;
  assert.deepEqual(images(b.disk).map((i) => [i.name, i.point]), [[ov(1, 1), null]]);
  assert.deepEqual(b.removed, [ov(1, 2)]);
  assert.equal(b.disk.origin, '/srv/debian-12.raw');
  const into = commit(plain, 's2')!;
  assert.deepEqual(images(into.disk).map((i) => [i.name, i.point?.label ?? null]), [[null, 's1'], [ov(0, 1), null]]);
  assert.deepEqual(into.removed, [ov(0, 2)]);
  assert.deepEqual(into.dropped.map((d) => d.point.label), ['s2']);
  assert.equal(commit(b.disk, null), undefined, 'nothing above the root: nothing to commit');
  assert.equal(commit(plainDisk(0, '/srv/a.qcow2', 'qcow2'), null), undefined);
});

test('deleting a point merges the image above into it: the later points keep their data and labels', () => {
  const [plain, base] = sample().disks as [DiskChain, DiskChain];
  const t = deletePoint(plain, 's1');
  assert.deepEqual(images(t.disk).map((i) => [i.name, i.point?.label ?? null]), [[null, 's2'], [ov(0, 2), null]], "the image holds s2's data, and its label");
  assert.deepEqual(t.removed, [ov(0, 1)]);
  assert.deepEqual(t.dropped.map((d) => [d.point.label, d.how]), [['s1', 'deleted']]);
  const top = deletePoint(plain, 's2');
  assert.deepEqual(images(top.disk).map((i) => [i.name, i.point?.label ?? null]), [[null, 's1'], [ov(0, 1), null]], 'the image above was the top: the point becomes the top');
  assert.deepEqual(top.removed, [ov(0, 2)]);
  const b = deletePoint(base, 's1');
  assert.deepEqual(images(b.disk).map((i) => [i.name, i.point]), [[ov(1, 1), null]]);
  assert.deepEqual(b.removed, [ov(1, 2)]);
  assert.throws(() => deletePoint(plain, 'nope'));
});

test('an interrupted merge: the labels it may have damaged go, the files stay', () => {
  const [plain] = sample().disks as [DiskChain];
  assert.deepEqual(damagedBy(plain, 0), ['s1', 's2'], 'a merge into the root: the root and every point above it');
  assert.deepEqual(damagedBy(plain, 0, 1), ['s1'], "deleting s1: only s1 (s2's image hides what changed below it)");
  const t = abandon(plain, ['s1', 's2']);
  assert.deepEqual(images(t.disk).map((i) => [i.name, i.point]), [[null, null], [ov(0, 1), null], [ov(0, 2), null]]);
  assert.deepEqual(t.removed, []);
  assert.deepEqual(t.dropped.map((d) => [d.point.label, d.how]), [['s1', 'interrupted'], ['s2', 'interrupted']]);
});

test('tombstones: a label goes when no disk has it any more; a new snapshot of that label clears it', () => {
  const rec = sample();
  const t: Transition = commit(rec.disks[0]!, null)!;
  applyTransition(rec, t, T(6));
  assert.deepEqual(rec.deleted.map((d) => [d.label, d.how]), [['old', 'deleted'], ['s2', 'committed']], 's1 lives on in disk 1');
  applyTransition(rec, commit(rec.disks[1]!, null)!, T(7));
  assert.deepEqual(rec.deleted.map((d) => [d.label, d.how]), [['old', 'deleted'], ['s2', 'committed'], ['s1', 'committed']]);
  assert.deepEqual(parseChainRecord(text(rec), FILE, 'web'), rec, 'what the transitions make reads back');
});

test('the record file: 0600 whatever the umask, atomic, never read through a symlink; strays are swept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-chain-'));
  const old = process.umask(0);
  try {
    assert.equal(readChainRecord(dir, 'web'), undefined);
    const rec = sample();
    writeChainRecord(dir, rec);
    assert.equal(statSync(chainFile(dir)).mode & 0o777, 0o600);
    assert.deepEqual(readChainRecord(dir, 'web'), rec);
    assert.deepEqual(readdirSync(dir), ['chain.json'], 'no temp file left');

    for (const f of [ov(0, 1), ov(0, 2), ov(0, 7), 'chain.json.123.0badc0de.tmp', 'notes.txt', ov(1, 1), ov(1, 2)]) writeFileSync(join(dir, f), '');
    assert.deepEqual(sweep(dir, rec).sort(), [ov(0, 7), 'chain.json.123.0badc0de.tmp'].sort());
    assert.deepEqual(readdirSync(dir).sort(), ['chain.json', ov(0, 1), ov(0, 2), ov(1, 1), ov(1, 2), 'notes.txt'].sort());
    // the files an intent makes or removes are not strays
    writeFileSync(join(dir, ov(0, 8)), '');
    assert.deepEqual(sweep(dir, { ...rec, intent: { op: 'commit', label: null, at: T(1), pending: [], add: [], remove: [{ disk: 0, file: ov(0, 8) }], resume: false } }), []);

    rmSync(chainFile(dir));
    symlinkSync(join(dir, 'notes.txt'), chainFile(dir));
    assert.throws(() => readChainRecord(dir, 'web'), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_UNSAFE');
    rmSync(chainFile(dir));
    writeFileSync(chainFile(dir), '{"version":1,', { mode: 0o600 });
    assert.throws(() => readChainRecord(dir, 'web'), (e: unknown) => e instanceof HostDiskError && e.code === 'EHOST_DISK_RECORD' && /not JSON/.test(e.message));
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});
