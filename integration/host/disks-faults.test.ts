// Crash consistency of the disk chain (issue 16): the CLI is killed (SIGKILL, at its exact
// checkpoint through VMHOST_TEST_FAULT, no timing) between the QEMU or qemu-img step of a disk
// operation and its record write, or right after the intent was written; sometimes QEMU is killed
// too. Each time the record still says what the files are (an intent `vm snapshots` shows), the
// next command (apply, vm start) finishes the operation with a note, the guest reads what it
// wrote last, a paused guest runs again, and no overlay file is left that no record names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { qemuImg, Vm } from '@vmhost/kvm';
import { vmhost, type CliResult } from '../helpers/cli.js';
import { guest, httpGet, waitForConsole, waitForHttp } from '../kvm/helpers.js';
import { cleanUp, killAndWait } from '../helpers/cleanup.js';

const IP = '192.168.0.100';

interface Listing {
  snapshots: Array<{ label: string }>;
  disks: Array<{ images: Array<{ file: string; label: string | null }> }>;
  pending: { op: string; label: string | null; files: string[] } | null;
}

test('kill -9 of the CLI between a disk step and its record (and of QEMU too): the next command finishes the operation; the guest reads its last write', async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-diskf-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-diskf-'));
  chmodSync(dir, 0o711); // QEMU's user (qemu.user auto) reopens its images by name: it passes through
  const ns = lab.ns('host');
  const state = join(dir, 'state');
  const data = join(dir, 'data');
  const file = join(dir, 'host.yaml');
  const g = ['--netns', ns, '--state-dir', state, '--data-dir', data];
  cleanUp(t, lab, dir).downFirst(() => vmhost([...g, 'down', file]));
  const gu = guest();
  const image = join(dir, 'web.qcow2');
  await qemuImg(['create', '-q', '-f', 'qcow2', image, '16M']);
  writeFileSync(file, `name: dfault
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
vms:
  - name: web
    ipv4: ${IP}
    memoryMiB: 128
    kernel: ${gu.vmlinux}
    initrd: ${gu.initrd}
    append: "${gu.append}"
    disk: ${image}
`);
  const vm = ['-f', file];
  const runDir = join(state, 'vms', 'web');
  const disks = join(data, 'disks', 'web');

  const ok = async (args: string[]): Promise<CliResult> => {
    const r = await vmhost([...g, ...args]);
    assert.equal(r.code, 0, `vmhost ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r;
  };
  const killedAt = async (fault: string, args: string[]): Promise<void> => {
    const r = await vmhost([...g, ...args], { VMHOST_TEST_FAULT: fault });
    assert.equal(r.signal, 'SIGKILL', `${fault}: ${r.stderr}${r.stdout}`);
  };
  const up = async (): Promise<void> => {
    await waitForConsole(join(runDir, 'console.log'), gu.markers.ready, 120_000);
    await waitForHttp(ns, `http://${IP}/`, 60_000);
  };
  const write = async (text: string): Promise<void> => assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/write?${text}`)).trim(), 'ok');
  const read = async (): Promise<string> => (await httpGet(ns, `http://${IP}/cgi-bin/disk`)).trim();
  const listing = async (): Promise<Listing> => JSON.parse((await ok(['vm', 'snapshots', 'web', ...vm, '--json'])).stdout) as Listing;
  /** No interrupted operation, and every file of the disk directory a listed image (or the record). */
  const settled = async (why: string): Promise<Listing> => {
    const l = await listing();
    assert.equal(l.pending, null, `${why}: finished`);
    const listed = new Set(l.disks.flatMap((d) => d.images.map((i) => i.file)));
    for (const f of readdirSync(disks)) if (f !== 'chain.json') assert.ok(listed.has(join(disks, f)), `${why}: ${f} is an orphan`);
    return l;
  };
  const qmpStatus = async (): Promise<string> => {
    const v = await Vm.attach(runDir);
    try {
      return (await v.qmp.execute('query-status')).status;
    } finally {
      await v.detach();
    }
  };
  const killQemu = async (): Promise<void> => {
    const pid = Number(readFileSync(join(runDir, 'qemu.pid'), 'utf8'));
    await killAndWait(pid, `QEMU ${pid}`);
  };

  await ok(['apply', file]);
  await up();

  await t.test('snapshot: killed after QEMU switched to the new overlay, before the record: apply records it (live)', async () => {
    await write('WRITE-A');
    await killedAt('SIGKILL@snapshot:changed:0', ['vm', 'snapshot', 'web', '--name', 's1', ...vm]);
    await write('WRITE-B'); // into the overlay the record does not name yet
    const l = await listing();
    assert.deepEqual([l.pending?.op, l.pending?.label], ['snapshot', 's1'], 'the intent says what is under way');
    assert.equal(l.pending!.files.length, 1);
    const a = await ok(['apply', file]);
    assert.match(a.stderr, /note: VM web: finishing the interrupted snapshot s1 of its disks/);
    assert.deepEqual((await settled('snapshot finished')).snapshots.map((s) => s.label), ['s1']);
    await ok(['vm', 'stop', 'web', ...vm]);
    await ok(['vm', 'start', 'web', ...vm]);
    await up();
    assert.equal(await read(), 'WRITE-B');
  });

  await t.test('snapshot: killed right after its intent, then the VM stopped: vm start finishes it offline', async () => {
    await write('WRITE-C');
    await killedAt('SIGKILL@snapshot:intended:0', ['vm', 'snapshot', 'web', '--name', 's2', ...vm]);
    await ok(['vm', 'stop', 'web', ...vm]);
    const s = await ok(['vm', 'start', 'web', ...vm]);
    assert.match(s.stderr, /finishing the interrupted snapshot s2/);
    await up();
    assert.equal(await read(), 'WRITE-C');
    assert.deepEqual((await settled('offline snapshot finished')).snapshots.map((x) => x.label), ['s1', 's2']);
  });

  await t.test('live commit: killed after the pivot (the guest paused), before the record: apply records it and resumes the guest', async () => {
    await write('WRITE-D');
    await killedAt('SIGKILL@commit:changed:0', ['vm', 'commit', 'web', ...vm]);
    assert.equal(await qmpStatus(), 'paused', 'no guest write before the record says where it goes');
    const a = await ok(['apply', file]);
    assert.match(a.stderr, /finishing the interrupted commit/);
    assert.equal(await qmpStatus(), 'running');
    assert.equal(await read(), 'WRITE-D');
    const l = await settled('commit finished');
    assert.deepEqual(l.disks[0]!.images.map((i) => i.file), [image]);
  });

  await t.test('live commit: the CLI and QEMU both killed after the pivot: apply merges again offline and starts the VM on the image', async () => {
    await ok(['vm', 'snapshot', 'web', '--name', 's3', ...vm]);
    await write('WRITE-E');
    await killedAt('SIGKILL@commit:changed:0', ['vm', 'commit', 'web', ...vm]);
    await killQemu();
    await ok(['apply', file]);
    await up();
    assert.equal(await read(), 'WRITE-E');
    assert.deepEqual((await settled('offline commit finished')).disks[0]!.images.map((i) => i.file), [image]);
  });

  await t.test('rollback: killed after the new overlay was made, before the record (the VM stopped): apply finishes it and starts the VM', async () => {
    await write('WRITE-F');
    await ok(['vm', 'snapshot', 'web', '--name', 's4', ...vm]);
    await write('WRITE-G');
    await killedAt('SIGKILL@rollback:changed:0', ['vm', 'rollback', 'web', 's4', ...vm]);
    const a = await ok(['apply', file]);
    assert.match(a.stderr, /finishing the interrupted rollback s4/);
    await up();
    assert.equal(await read(), 'WRITE-F');
    const l = await settled('rollback finished');
    assert.deepEqual(l.disks[0]!.images.map((i) => i.label), ['s4', null]);
  });

  await t.test('delete: killed after QEMU merged the point (its header rewritten), before the record; QEMU stopped: vm start sees the merge offline', async () => {
    await ok(['vm', 'snapshot', 'web', '--name', 's5', ...vm]);
    await write('WRITE-H');
    await ok(['vm', 'snapshot', 'web', '--name', 's6', ...vm]);
    await write('WRITE-I');
    await killedAt('SIGKILL@delete:changed:0', ['vm', 'snapshot-delete', 'web', 's5', ...vm]);
    await ok(['vm', 'stop', 'web', ...vm]);
    const s = await ok(['vm', 'start', 'web', ...vm]);
    assert.match(s.stderr, /finishing the interrupted delete s5/);
    await up();
    assert.equal(await read(), 'WRITE-I');
    const l = await settled('delete finished');
    assert.deepEqual(l.snapshots.map((x) => x.label), ['s4', 's6']);
    await ok(['vm', 'rollback', 'web', 's6', ...vm]);
    await up();
    assert.equal(await read(), 'WRITE-H', "s6 kept its data when s5 was merged into the image below it");
  });

  for (const f of readdirSync(disks)) assert.equal(statSync(join(disks, f)).mode & 0o777, 0o600, f);
});

test("disk: { base }: apply killed after the VM's first overlay was made, before the record: the next apply adopts it", async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-diski-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-diski-'));
  chmodSync(dir, 0o711); // QEMU's user (qemu.user auto) reopens its images by name: it passes through
  const ns = lab.ns('host');
  const file = join(dir, 'host.yaml');
  const g = ['--netns', ns, '--state-dir', join(dir, 'state'), '--data-dir', join(dir, 'data')];
  cleanUp(t, lab, dir).downFirst(() => vmhost([...g, 'down', file]));
  const gu = guest();
  const raw = join(dir, 'base.raw');
  const buf = Buffer.alloc(1024 * 1024);
  buf.write('BASE-IMAGE');
  writeFileSync(raw, buf);
  writeFileSync(file, `name: dinit
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
vms:
  - name: web
    ipv4: ${IP}
    memoryMiB: 128
    kernel: ${gu.vmlinux}
    initrd: ${gu.initrd}
    append: "${gu.append}"
    disk: { base: ${raw}, format: raw, size: 8M }
`);
  const r = await vmhost([...g, 'apply', file], { VMHOST_TEST_FAULT: 'SIGKILL@init:changed:0' });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const disks = join(dir, 'data', 'disks', 'web');
  const made = readdirSync(disks).filter((f) => f.endsWith('.qcow2'));
  assert.equal(made.length, 1, 'the overlay was made');
  const pending = JSON.parse((await vmhost([...g, 'vm', 'snapshots', 'web', '-f', file, '--json'])).stdout) as Listing;
  assert.deepEqual([pending.pending?.op, pending.pending?.files], ['init', [join(disks, made[0]!)]]);
  const a = await vmhost([...g, 'apply', file]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /finishing the interrupted init/);
  await waitForConsole(join(dir, 'state', 'vms', 'web', 'console.log'), gu.markers.ready, 120_000);
  await waitForHttp(ns, `http://${IP}/`, 60_000);
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/disk`)).trim(), 'BASE-IMAGE');
  const l = JSON.parse((await vmhost([...g, 'vm', 'snapshots', 'web', '-f', file, '--json'])).stdout) as Listing;
  assert.equal(l.pending, null);
  assert.deepEqual(l.disks[0]!.images.map((i) => i.file), [join(disks, made[0]!)], 'the overlay made before the kill is the one used');
  assert.deepEqual(readdirSync(disks).sort(), ['chain.json', made[0]!].sort());
  assert.equal(readFileSync(raw).subarray(0, 10).toString(), 'BASE-IMAGE');
});
