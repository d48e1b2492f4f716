// The seed's disk workflow with a real guest: a qcow2 overlay on a base image, a live external
// snapshot before an "upgrade" (the old image is frozen and kept), then either a live commit
// (keep the upgrade) or a rollback (drop it and boot the old image again). The guest reads and
// writes its disk through its HTTP service; qemu-img is the offline oracle.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { backingFile, createOverlay, imageInfo, liveCommit, liveSnapshot, qemuImg, Vm, VmError } from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';
import { freshNetns } from '../helpers/ns.js';
import { guest, guestVmOptions, httpGet, killPid, makeBridge, runDir, startDnsmasq, waitForConsole, waitForHttp } from './helpers.js';

const IP = '198.51.100.31';
const URL_ = `http://${IP}`;

/** The first bytes of an image's guest-visible content, read offline with qemu-img convert. */
async function headOf(image: string, dir: string): Promise<string> {
  const out = join(dir, `head-${Math.random().toString(36).slice(2)}.raw`);
  await qemuImg(['convert', '-U', '-O', 'raw', image, out]);
  return readFileSync(out).subarray(0, 64).toString('latin1').replace(/\0+$/, '');
}

async function bootAndWait(vm: Vm, ns: string): Promise<void> {
  await vm.start({ timeoutMs: 60_000 });
  await waitForConsole(vm.options.console!.file, guest().markers.ready, 180_000, () => vm.running);
  await waitForHttp(ns, `${URL_}/`, 60_000);
}

test('overlay, live snapshot, live commit, then snapshot and rollback', async (t) => {
  const ns = await freshNetns(t, 'kvmdisk');
  const dir = runDir(t, 'kvmdisk');
  await makeBridge(ns, ['tap-disk']);

  // Base image (raw, 1 MiB) holding "BASE-v1"; the VM's disk is a qcow2 overlay on it.
  const base = join(dir, 'base.raw');
  const buf = Buffer.alloc(1024 * 1024);
  buf.write('BASE-v1');
  writeFileSync(base, buf);
  const disk = join(dir, 'disk.qcow2');
  await createOverlay({ file: disk, backing: base, backingFormat: 'raw' });
  await assert.rejects(createOverlay({ file: disk, backing: base, backingFormat: 'raw' }), ValidationError);
  assert.equal(await backingFile(disk), base);

  const vm = new Vm(guestVmOptions('disk', dir, { netns: ns, nics: [{ tap: 'tap-disk' }], drives: [{ file: disk, format: 'qcow2', cache: 'writeback' }] }));
  startDnsmasq(t, ns, dir, { [vm.options.nics[0]!.mac]: IP });
  t.after(() => killPid(vm.pid));
  await bootAndWait(vm, ns);
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim(), 'BASE-v1');

  // Through the overlay the guest writes v2; the base file is untouched.
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/write?DISK-v2`)).trim(), 'ok');
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim(), 'DISK-v2');
  assert.equal(readFileSync(base).subarray(0, 7).toString(), 'BASE-v1');

  // Before the "upgrade": live snapshot. disk.qcow2 is frozen (kept), writes go to upgrade.qcow2.
  const upgrade = join(dir, 'upgrade.qcow2');
  const snap = await vm.snapshotDisk('drive0', upgrade);
  assert.equal(snap.frozen, disk);
  const chain = await imageInfo(upgrade, { chain: true, shared: true });
  assert.deepEqual(chain.map((i) => i.filename), [upgrade, disk, base]);
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/write?UPGRADED-v3`)).trim(), 'ok');
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim(), 'UPGRADED-v3');
  assert.equal(await headOf(disk, dir), 'DISK-v2', 'the pre-upgrade image is kept as it was');

  // The upgrade is good: live commit into disk.qcow2; the VM goes on, on disk.qcow2.
  const c = await vm.commitDisk('drive0');
  assert.equal(c.committedTo, disk);
  assert.equal(existsSync(upgrade), false);
  assert.equal(vm.options.drives[0]!.file, disk);
  const blocks = (await vm.qmp.execute('query-block')).find((b) => b.device === 'drive0');
  assert.equal(blocks?.inserted?.file, disk);
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim(), 'UPGRADED-v3');

  // A second upgrade goes wrong: snapshot, write, stop, roll back, boot the kept image.
  const upgrade2 = join(dir, 'upgrade2.qcow2');
  await vm.snapshotDisk('drive0', upgrade2);
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/write?BROKEN-v4`)).trim(), 'ok');
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim(), 'BROKEN-v4');
  await assert.rejects(vm.rollbackDisk('drive0'), (e: unknown) => e instanceof VmError && e.code === 'EVM_NOT_STOPPED');
  assert.equal((await vm.stop({ timeoutMs: 60_000 })).step, 'powerdown');
  assert.equal(await headOf(disk, dir), 'UPGRADED-v3', 'the committed upgrade is in disk.qcow2');
  const rb = await vm.rollbackDisk('drive0');
  assert.deepEqual(rb, { restored: disk, removed: upgrade2 });
  assert.equal(existsSync(upgrade2), false);
  await bootAndWait(vm, ns);
  assert.equal((await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim(), 'UPGRADED-v3');
  assert.equal((await vm.stop({ timeoutMs: 60_000 })).step, 'powerdown');
  assert.equal(readFileSync(base).subarray(0, 7).toString(), 'BASE-v1', 'the base image never changed');
});

test('the guest writes through a chain of snapshots; intermediate and active commits keep every write', async (t) => {
  const ns = await freshNetns(t, 'kvmchain');
  const dir = runDir(t, 'kvmchain');
  await makeBridge(ns, ['tap-chain']);
  const base = join(dir, 'base.raw');
  writeFileSync(base, Buffer.alloc(1024 * 1024));
  const disk = join(dir, 'disk.qcow2');
  await createOverlay({ file: disk, backing: base, backingFormat: 'raw' });
  const vm = new Vm(guestVmOptions('chain', dir, { netns: ns, nics: [{ tap: 'tap-chain' }], drives: [{ file: disk, format: 'qcow2' }] }));
  startDnsmasq(t, ns, dir, { [vm.options.nics[0]!.mac]: IP });
  t.after(() => killPid(vm.pid));
  await bootAndWait(vm, ns);
  const write = async (text: string): Promise<void> => assert.equal((await httpGet(ns, `${URL_}/cgi-bin/write?${text}`)).trim(), 'ok');
  const read = async (): Promise<string> => (await httpGet(ns, `${URL_}/cgi-bin/disk`)).trim();

  await write('WRITE-A');
  const s1 = join(dir, 's1.qcow2');
  await liveSnapshot(vm.qmp, { device: 'drive0', overlay: s1, create: 'host' });
  await write('WRITE-B');
  const s2 = join(dir, 's2.qcow2');
  const chain = await liveSnapshot(vm.qmp, { device: 'drive0', overlay: s2 });
  assert.deepEqual(chain.map((l) => l.file), [s2, s1, disk, base]);
  await write('WRITE-C');
  assert.equal(await headOf(s1, dir), 'WRITE-B', 's1 froze B');
  assert.equal(await headOf(disk, dir), 'WRITE-A', 'disk.qcow2 froze A');

  // intermediate: s1 into disk.qcow2 while the guest runs on s2
  assert.deepEqual((await liveCommit(vm.qmp, { device: 'drive0', top: s1, base: disk })).map((l) => l.file), [s2, disk, base]);
  assert.equal(await read(), 'WRITE-C');
  assert.equal(await headOf(disk, dir), 'WRITE-B');
  // active: everything into the raw base; the guest continues on base.raw alone
  assert.deepEqual((await liveCommit(vm.qmp, { device: 'drive0', base })).map((l) => l.file), [base]);
  assert.equal(await read(), 'WRITE-C');
  await write('WRITE-D');
  assert.equal((await vm.stop({ timeoutMs: 60_000 })).step, 'powerdown');
  assert.equal(readFileSync(base).subarray(0, 7).toString(), 'WRITE-D', 'base.raw alone holds the disk');
});
