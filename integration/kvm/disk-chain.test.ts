// Disk chain primitives against a real QEMU holding the drive (`-machine none -S -drive if=none`,
// no guest) and qemu-img offline: the block graph read over QMP, live snapshots (QEMU-created and
// host-created overlays), commits into a chosen point (active and intermediate), their refusals
// (unknown node or file, another block job, a timeout that cancels), and the offline helpers
// (chain, commit into a chosen base, safe and unsafe rebase, check, format mismatch, image locks).
// Oracles: qemu-img info/compare and qemu-io reading the images, the files' own bytes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test, type TestContext } from 'node:test';
import {
  assertFormat, blockChain, BlockJobBusyError, BlockJobError, checkImage, commitImage, createOverlay, DiskFormatError, imageChain,
  ImageLockedError, liveCommit, liveSnapshot, qemuImg, QmpClient, rebaseImage,
} from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';
import { killPid, runDir } from './helpers.js';
import { spawn } from 'node:child_process';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** qemu-io on an image that nothing holds: writes `pattern` (a byte) at `offset`. */
async function write(file: string, format: string, pattern: number, offset: number, len = 65536): Promise<void> {
  await run('qemu-io', ['-f', format, file, '-c', `write -P ${pattern} ${offset} ${len}`]);
}

/** Whether the guest-visible content of `file` at `offset` is `pattern` (qemu-io, read-only, shared). */
async function reads(file: string, format: string, pattern: number, offset: number, len = 65536): Promise<boolean> {
  const r = await run('qemu-io', ['-r', '-U', '-f', format, file, '-c', `read -P ${pattern} ${offset} ${len}`]);
  return !/Pattern verification failed/.test(r.stdout);
}

/** A raw base with pattern 0x01 at 0, and qcow2 overlays on it, each written at its own offset. */
async function chainOf(dir: string, names: string[]): Promise<string[]> {
  const base = join(dir, 'base.raw');
  writeFileSync(base, Buffer.alloc(16 * MiB));
  await write(base, 'raw', 0x01, 0);
  const files = [base];
  for (const [i, n] of names.entries()) {
    const f = join(dir, `${n}.qcow2`);
    await createOverlay({ file: f, backing: files[files.length - 1]!, backingFormat: i === 0 ? 'raw' : 'qcow2' });
    await write(f, 'qcow2', 0x10 + i, (i + 1) * MiB);
    files.push(f);
  }
  return files;
}

/** QEMU holding `top` as drive0; its QMP session. */
async function holding(t: TestContext, dir: string, top: string): Promise<QmpClient> {
  const sock = join(dir, 'qmp.sock');
  const child = spawn('qemu-system-x86_64', ['-machine', 'none', '-S', '-display', 'none', '-nodefaults', '-no-user-config', '-qmp', `unix:${sock},server=on,wait=off`, '-drive', `file=${top},format=qcow2,if=none,id=drive0`], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.resume();
  let exited = false;
  child.on('exit', () => (exited = true));
  t.after(() => killPid(child.pid));
  const qmp = await QmpClient.connect({ path: sock, timeoutMs: 30_000, isAlive: () => !exited });
  t.after(() => qmp.close());
  return qmp;
}

const files = (chain: { file: string }[], dir: string): string[] => chain.map((l) => l.file.slice(dir.length + 1));

test('the block graph of a running drive; snapshots by QEMU and by the host; unknown drives and existing overlays refused', async (t) => {
  const dir = runDir(t, 'chain-snap');
  const [, a, b] = await chainOf(dir, ['a', 'b']);
  const qmp = await holding(t, dir, b!);
  const chain = await blockChain(qmp, 'drive0');
  assert.deepEqual(files(chain, dir), ['b.qcow2', 'a.qcow2', 'base.raw']);
  assert.deepEqual(chain.map((l) => l.format), ['qcow2', 'qcow2', 'raw']);
  assert.equal(new Set(chain.map((l) => l.nodeName)).size, 3);
  assert.equal(chain[0]!.backingFile, a);
  assert.equal(chain[1]!.backingFormat, 'raw');
  assert.equal(chain[2]!.backingFile, undefined);
  assert.equal(chain[0]!.virtualSize, 16 * MiB);
  await assert.rejects(blockChain(qmp, 'drive9'), (e: unknown) => e instanceof ValidationError && e.field === 'device');

  const s1 = join(dir, 's1.qcow2');
  assert.deepEqual(files(await liveSnapshot(qmp, { device: 'drive0', overlay: s1 }), dir), ['s1.qcow2', 'b.qcow2', 'a.qcow2', 'base.raw']);
  const s2 = join(dir, 's2.qcow2');
  const after = await liveSnapshot(qmp, { device: 'drive0', overlay: s2, create: 'host' });
  assert.deepEqual(files(after, dir), ['s2.qcow2', 's1.qcow2', 'b.qcow2', 'a.qcow2', 'base.raw']);
  // the host-made overlay names its backing image in its header, for the next start
  assert.deepEqual((await imageChain(s2, { shared: true })).map((l) => l.file), after.map((l) => l.file));
  await assert.rejects(liveSnapshot(qmp, { device: 'drive0', overlay: s2, create: 'host' }), (e: unknown) => e instanceof ValidationError && e.field === 'overlay');
  // committing the host-made overlay away also deletes its node, so the next snapshot may take its place
  assert.deepEqual(files(await liveCommit(qmp, { device: 'drive0' }), dir), ['s1.qcow2', 'b.qcow2', 'a.qcow2', 'base.raw']);
  assert.equal((await qmp.execute('query-named-block-nodes', { flat: true })).some((n) => n['node-name']?.startsWith('vmhost-')), false);
  const s3 = join(dir, 's3.qcow2');
  assert.deepEqual(files(await liveSnapshot(qmp, { device: 'drive0', overlay: s3 }), dir), ['s3.qcow2', 's1.qcow2', 'b.qcow2', 'a.qcow2', 'base.raw']);
  await assert.rejects(liveSnapshot(qmp, { device: 'nope', overlay: join(dir, 'x.qcow2'), create: 'host' }), (e: unknown) => e instanceof ValidationError && e.field === 'device');
  assert.equal(existsSync(join(dir, 'x.qcow2')), false);
  await assert.rejects(liveSnapshot(qmp, { device: 'drive0', overlay: 'rel.qcow2' }), (e: unknown) => e instanceof ValidationError && e.field === 'overlay');
  // image locking is on: the running QEMU's images cannot be opened for writing, nor read unshared
  await assert.rejects(qemuImg(['info', s3]), ImageLockedError);
  await assert.rejects(commitImage(s3), ImageLockedError);
  await assert.rejects(rebaseImage({ file: s3, backing: a!, unsafe: true }), ImageLockedError);
});

test('live commit into a chosen point: intermediate and active; the data stays; bad points refused', async (t) => {
  const dir = runDir(t, 'chain-commit');
  const [base, a, b, c] = await chainOf(dir, ['a', 'b', 'c']);
  const qmp = await holding(t, dir, c!);
  const bad: [Parameters<typeof liveCommit>[1], string][] = [
    [{ device: 'drive0', base: join(dir, 'ghost.qcow2') }, 'base'],
    [{ device: 'drive0', baseNode: 'no-such-node' }, 'baseNode'],
    [{ device: 'drive0', top: a!, base: b! }, 'base'], // base above top
    [{ device: 'drive0', top: base! }, 'top'], // nothing below the base
    [{ device: 'drive0', base: a!, baseNode: 'x' }, 'baseNode'],
    [{ device: 'drive9' }, 'device'],
  ];
  for (const [o, field] of bad) await assert.rejects(liveCommit(qmp, o), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(o));
  assert.deepEqual(files(await blockChain(qmp, 'drive0'), dir), ['c.qcow2', 'b.qcow2', 'a.qcow2', 'base.raw'], 'nothing changed');

  // intermediate: b into a (by node name); c is then backed by a
  const chain = await blockChain(qmp, 'drive0');
  const mid = await liveCommit(qmp, { device: 'drive0', topNode: chain[1]!.nodeName, baseNode: chain[2]!.nodeName });
  assert.deepEqual(files(mid, dir), ['c.qcow2', 'a.qcow2', 'base.raw']);
  // active: c (and a) into the raw base; the drive now runs on base.raw alone
  const active = await liveCommit(qmp, { device: 'drive0', base: base! });
  assert.deepEqual(files(active, dir), ['base.raw']);
  assert.equal((await qmp.execute('query-block-jobs')).length, 0);
  await qmp.execute('quit');
  await qmp.closed;
  for (const [pattern, mib] of [[0x01, 0], [0x10, 1], [0x11, 2], [0x12, 3]] as const) {
    assert.ok(await reads(base!, 'raw', pattern, mib * MiB), `base.raw holds 0x${pattern.toString(16)} at ${mib} MiB`);
  }
});

test('a commit while another block job holds the drive is refused (BlockJobBusyError); a timeout cancels and changes nothing', async (t) => {
  const dir = runDir(t, 'chain-busy');
  const [, a, b] = await chainOf(dir, ['a', 'b']);
  await write(a!, 'qcow2', 0x33, 4 * MiB, 8 * MiB); // enough data that a 1 B/s job stays busy
  const qmp = await holding(t, dir, b!);
  const slow = liveCommit(qmp, { device: 'drive0', top: a!, speed: 1, jobId: 'slow' });
  slow.catch(() => undefined);
  for (;;) {
    if ((await qmp.execute('query-block-jobs')).some((j) => j.device === 'slow')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await assert.rejects(liveCommit(qmp, { device: 'drive0' }), (e: unknown) => e instanceof BlockJobBusyError && e.device === 'drive0' && e.code === 'EQMP_BLOCK_BUSY');
  await assert.rejects(liveCommit(qmp, { device: 'drive0', top: a!, jobId: 'slow' }), BlockJobBusyError);
  await assert.rejects(liveSnapshot(qmp, { device: 'drive0', overlay: join(dir, 'busy.qcow2') }), BlockJobBusyError);
  assert.equal((await blockChain(qmp, 'drive0')).find((l) => l.file === a)?.heldBy, 'commit_top');
  await qmp.execute('block-job-cancel', { device: 'slow', force: true });
  await assert.rejects(slow, (e: unknown) => e instanceof BlockJobError && /cancelled/.test(e.message));

  const before = files(await blockChain(qmp, 'drive0'), dir);
  await assert.rejects(liveCommit(qmp, { device: 'drive0', top: a!, speed: 1, timeoutMs: 500 }), (e: unknown) => e instanceof BlockJobError && /did not complete within 500 ms/.test(e.message));
  for (let i = 0; (await qmp.execute('query-block-jobs')).length > 0; i++) {
    assert.ok(i < 250, 'the timed-out job was cancelled');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(files(await blockChain(qmp, 'drive0'), dir), before);
});

test('offline: chain, commit into a chosen base, safe and unsafe rebase, check, format mismatches refused', async (t) => {
  const dir = runDir(t, 'chain-offline');
  const [base, a, b, c] = await chainOf(dir, ['a', 'b', 'c']);
  assert.deepEqual((await imageChain(c!)).map((l) => [l.file.slice(dir.length + 1), l.format, l.backingFormat]), [
    ['c.qcow2', 'qcow2', 'qcow2'], ['b.qcow2', 'qcow2', 'qcow2'], ['a.qcow2', 'qcow2', 'raw'], ['base.raw', 'raw', undefined],
  ]);

  // format mismatches: refused, nothing written
  await assert.rejects(createOverlay({ file: join(dir, 'x.qcow2'), backing: a!, backingFormat: 'raw' }), (e: unknown) => e instanceof DiskFormatError && e.expected === 'raw' && e.actual === 'qcow2');
  assert.equal(existsSync(join(dir, 'x.qcow2')), false);
  const header = readFileSync(c!).subarray(0, 512);
  await assert.rejects(rebaseImage({ file: c!, backing: base!, backingFormat: 'qcow2' }), DiskFormatError);
  await assert.rejects(rebaseImage({ file: base!, backing: a! }), (e: unknown) => e instanceof DiskFormatError && e.file === base);
  assert.deepEqual(readFileSync(c!).subarray(0, 512), header);
  await assert.rejects(assertFormat(a!, 'raw'), DiskFormatError);

  // safe rebase of c onto a: b's data is copied into c, the guest view is the same
  const view = join(dir, 'view-before.raw');
  await qemuImg(['convert', '-O', 'raw', c!, view]);
  await rebaseImage({ file: c!, backing: a! });
  assert.deepEqual((await imageChain(c!)).map((l) => l.file), [c, a, base]);
  await qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', c!, view]); // exits non-zero when they differ

  // unsafe rebase rewrites only the header: point c at a copy of a
  const a2 = join(dir, 'a2.qcow2');
  await qemuImg(['convert', '-O', 'qcow2', '-B', base!, '-F', 'raw', a!, a2]);
  await rebaseImage({ file: c!, backing: a2, unsafe: true });
  assert.equal((await imageChain(c!))[1]!.file, a2);
  await qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', c!, view]);
  await assert.rejects(rebaseImage({ file: c!, backing: null, unsafe: true }), (e: unknown) => e instanceof ValidationError && e.field === 'unsafe');

  // commit c into the raw base, skipping a2: base alone holds the disk
  await assert.rejects(commitImage(c!, { base: b! }), (e: unknown) => e instanceof ValidationError && e.field === 'base', 'b is no longer in c\'s chain');
  await commitImage(c!, { base: base! });
  await qemuImg(['compare', '-f', 'raw', '-F', 'raw', base!, view]);
  await assert.rejects(commitImage(base!), (e: unknown) => e instanceof ValidationError && e.field === 'file');

  // check: a sound image, then one whose refcount block was overwritten
  const sound = await checkImage(a!);
  assert.deepEqual([sound.corruptions, sound.leaks, sound.checkErrors, sound.format], [0, 0, 0, 'qcow2']);
  const buf = readFileSync(a!);
  const refblock = Number(buf.readBigUInt64BE(Number(buf.readBigUInt64BE(48))));
  for (let i = 0; i < 8; i++) buf.writeUInt16BE(5, refblock + 2 * i);
  writeFileSync(a!, buf);
  const broken = await checkImage(a!);
  assert.ok(broken.corruptions > 0, JSON.stringify(broken.raw));
});
