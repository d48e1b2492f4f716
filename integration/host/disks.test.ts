// Issue 16: a VM's disk chain is part of its recorded, persistent state. Through the real `vmhost`
// CLI in a lab namespace, with the test guest writing and reading its disk (/cgi-bin/write,
// /cgi-bin/disk: the first bytes of /dev/vda): write A, `vm snapshot --name s1`, write B, then
// each of `vm stop` + `vm start`, a restart by apply after a change of the VM's memory, down +
// apply, kill -9 of QEMU + apply: the guest reads B every time; `vm rollback s1` → A; `vm commit`
// → the disk's image alone holds B (qemu-img, offline oracle) and the chain is one file. After
// every step each overlay file of the disk directory is one `vm snapshots --json` lists. The same
// for a `disk: { base, size }` VM (the base's sha256 unchanged after everything, the overlay
// removed by down --delete-disks). Then the refusals (nothing changed) and offline operations.
import { execFile } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { imageChain, qemuImg, Vm } from '@vmhost/kvm';
import { vmhost, type CliResult } from '../helpers/cli.js';
import { guest, httpGet, waitForConsole, waitForHttp } from '../kvm/helpers.js';
import { cleanUp, killAndWait } from '../helpers/cleanup.js';

const IP = '192.168.0.100';

interface Env {
  ns: string;
  dir: string;
  file: string;
  g: string[];
  state: string;
  data: string;
  text: (o?: { memoryMiB?: number; disk?: string }) => string;
}

/** A lab namespace with an uplink, and a host file of one test guest `web` with the disk `disk` (YAML). */
async function makeEnv(t: TestContext, tag: string, disk: (dir: string) => string): Promise<Env> {
  const lab = await Lab.create({ prefix: `vmhl-disk${tag}-`, namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), `vmhost-disks-${tag}-`));
  // QEMU runs as its own user (qemu.user auto) and reopens its images by name: it must pass through
  chmodSync(dir, 0o711);
  const ns = lab.ns('host');
  const state = join(dir, 'state');
  const data = join(dir, 'data');
  const g = ['--netns', ns, '--state-dir', state, '--data-dir', data];
  cleanUp(t, lab, dir).downFirst(() => vmhost([...g, 'down', join(dir, 'host.yaml')]));
  const gu = guest();
  const text = (o: { memoryMiB?: number; disk?: string } = {}): string => `name: d${tag}
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
vms:
  - name: web
    ipv4: ${IP}
    memoryMiB: ${o.memoryMiB ?? 128}
    kernel: ${gu.vmlinux}
    initrd: ${gu.initrd}
    append: "${gu.append}"
    disk: ${o.disk ?? disk(dir)}
`;
  const file = join(dir, 'host.yaml');
  writeFileSync(file, text());
  return { ns, dir, file, g, state, data, text };
}

async function ok(args: string[], e: Env): Promise<CliResult> {
  const r = await vmhost([...e.g, ...args]);
  assert.equal(r.code, 0, `vmhost ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r;
}

/** The guest is up (its console says ready, its HTTP service answers). */
async function up(e: Env): Promise<void> {
  await waitForConsole(join(e.state, 'vms', 'web', 'console.log'), guest().markers.ready, 120_000);
  await waitForHttp(e.ns, `http://${IP}/`, 60_000);
}

const write = async (e: Env, text: string): Promise<void> => assert.equal((await httpGet(e.ns, `http://${IP}/cgi-bin/write?${text}`)).trim(), 'ok');
const read = async (e: Env): Promise<string> => (await httpGet(e.ns, `http://${IP}/cgi-bin/disk`)).trim();

/** The first bytes an image shows (its whole chain), read offline with qemu-img convert (-U: the VM may run). */
async function headOf(image: string, dir: string): Promise<string> {
  const out = join(dir, `head-${process.hrtime.bigint()}.raw`);
  await qemuImg(['convert', '-U', '-O', 'raw', image, out]);
  try {
    return readFileSync(out).subarray(0, 64).toString('latin1').replace(/\0+$/, '');
  } finally {
    rmSync(out, { force: true });
  }
}

interface Listing {
  dir: string | null;
  snapshots: Array<{ label: string; takenAt: string; bytes: number }>;
  disks: Array<{ index: number; mode: string; base: string | null; top: string; images: Array<{ file: string; label: string | null; top: boolean }> }>;
  deleted: Array<{ label: string; how: string }>;
  pending: unknown;
}

async function listing(e: Env): Promise<Listing> {
  return JSON.parse((await ok(['vm', 'snapshots', 'web', '-f', e.file, '--json'], e)).stdout) as Listing;
}

/** Every file of the disk directory is the record or an image `vm snapshots` lists (no orphans), and each is 0600. */
async function noOrphans(e: Env, why: string): Promise<Listing> {
  const l = await listing(e);
  assert.equal(l.pending, null, `${why}: no interrupted operation`);
  const dir = join(e.data, 'disks', 'web');
  const listed = new Set(l.disks.flatMap((d) => d.images.map((i) => i.file)));
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    assert.equal(statSync(p).mode & 0o777, 0o600, `${why}: ${f} is 0600`);
    if (f !== 'chain.json') assert.ok(listed.has(p), `${why}: ${f} in the disk directory is not listed by vm snapshots (${[...listed].join(', ')})`);
  }
  // 0711: QEMU's user (qemu.user auto) passes through to its images, lists nothing
  assert.equal(statSync(dir).mode & 0o777, 0o711);
  return l;
}

/**
 * Image locking stays on: while the VM runs, no image of its chain (the top it writes, the frozen
 * points, the root, a base) can be opened for writing by another process — qemu-io opening each read-write
 * is refused with QEMU's lock error (it would only read if the open succeeded).
 */
async function lockedWhileRunning(l: Listing, why: string): Promise<void> {
  const files = l.disks.flatMap((d) => [...(d.base === null ? [] : [d.base]), ...d.images.map((i) => i.file)]);
  assert.ok(files.length > 0);
  for (const f of files) {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile('qemu-io', ['-f', 'qcow2', f, '-c', 'read 0 512'], (err, _out, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }));
    });
    assert.notEqual(r.code, 0, `${why}: ${f} could be opened for writing while the VM runs`);
    assert.match(r.stderr, /Failed to get .*lock/, `${why}: ${f}`);
  }
}

async function qemuPid(e: Env): Promise<number> {
  const s = JSON.parse((await ok(['status', e.file, '--json'], e)).stdout) as { vms: Array<{ name: string; running: boolean; pid?: number }> };
  const vm = s.vms.find((v) => v.name === 'web');
  assert.ok(vm?.running && vm.pid, 'web runs');
  return vm.pid;
}

/** kill -9 of QEMU; waits until it is no live process any more (a zombie re-parented to init counts as gone). */
async function killQemu(e: Env): Promise<void> {
  const pid = await qemuPid(e);
  await killAndWait(pid, `QEMU ${pid}`);
}

/** Write A, snapshot s1, write B; B survives every kind of restart; rollback s1 shows A. */
async function lifeCycle(e: Env): Promise<void> {
  await ok(['apply', e.file], e);
  await up(e);
  await write(e, 'WRITE-A');
  const snap = await ok(['vm', 'snapshot', 'web', '--name', 's1', '-f', e.file], e);
  assert.match(snap.stdout, /^Snapshot s1 of vm web \(live/);
  await write(e, 'WRITE-B');
  assert.equal(await read(e), 'WRITE-B');
  let l = await noOrphans(e, 'after the snapshot');
  assert.deepEqual(l.snapshots.map((s) => s.label), ['s1']);
  await lockedWhileRunning(l, 'after the snapshot');

  await ok(['vm', 'stop', 'web', '-f', e.file], e);
  await ok(['vm', 'start', 'web', '-f', e.file], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-B', 'vm stop + vm start: the guest reads what it wrote after the snapshot');

  writeFileSync(e.file, e.text({ memoryMiB: 160 }));
  const re = await ok(['apply', e.file], e);
  assert.match(re.stderr, /restart VM web/);
  await up(e);
  assert.equal(await read(e), 'WRITE-B', 'a restart by apply (memory changed)');

  await ok(['down', e.file], e);
  await noOrphans(e, 'after down (the chain is kept)');
  await ok(['apply', e.file], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-B', 'down + apply');

  await killQemu(e);
  await ok(['apply', e.file], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-B', 'kill -9 of QEMU + apply');
  await noOrphans(e, 'after the restarts');

  const rb = await ok(['vm', 'rollback', 'web', 's1', '-f', e.file], e);
  assert.match(rb.stdout, /^Rolled vm web back to s1 \(1 image\(s\) discarded, started again\)/);
  await up(e);
  assert.equal(await read(e), 'WRITE-A', 'rollback s1');
  l = await noOrphans(e, 'after the rollback');
  assert.deepEqual(l.snapshots.map((s) => s.label), ['s1'], 'the point stays: it can be returned to again');
}

test('a plain disk: B survives stop/start, a restart by apply, down + apply, kill -9 + apply; rollback s1 → A; commit → the image alone holds B', async (t) => {
  const e = await makeEnv(t, 'p', (dir) => join(dir, 'web.qcow2'));
  const image = join(e.dir, 'web.qcow2');
  await qemuImg(['create', '-q', '-f', 'qcow2', image, '16M']);
  await lifeCycle(e);

  await write(e, 'WRITE-B');
  const c = await ok(['vm', 'commit', 'web', '-f', e.file], e);
  assert.match(c.stdout, new RegExp(`^Committed 1 image\\(s\\) of vm web disk 0 into ${image.replace(/[.]/g, '\\.')} \\(live`));
  assert.equal(await read(e), 'WRITE-B');
  const l = await noOrphans(e, 'after the commit');
  assert.deepEqual(l.disks[0]!.images.map((i) => i.file), [image], 'the chain is one file');
  assert.deepEqual(l.snapshots, []);
  assert.deepEqual(l.deleted.map((d) => [d.label, d.how]), [['s1', 'committed']]);
  assert.equal(await headOf(image, e.dir), 'WRITE-B', 'the image alone holds B');
  assert.deepEqual((await imageChain(image, { shared: true })).map((i) => i.file), [image]);
  assert.deepEqual(readdirSync(join(e.data, 'disks', 'web')), ['chain.json']);

  // the VM runs on the image alone from now on, across a restart too
  await ok(['vm', 'stop', 'web', '-f', e.file], e);
  await ok(['vm', 'start', 'web', '-f', e.file], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-B');
});

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** `vmhost --json ARGS` fails with the error code `code`; the error's field and message. */
async function refused(e: Env, args: string[], code: string): Promise<{ field?: string; message: string }> {
  const r = await vmhost([...e.g, ...args, '--json']);
  assert.equal(r.code, 1, `vmhost ${args.join(' ')} should fail: ${r.stdout}${r.stderr}`);
  const { error } = JSON.parse(r.stdout) as { error: { code: string; field?: string; message: string } };
  assert.equal(error.code, code, error.message);
  return error;
}

test('disk: { base, size }: refusals name the field before anything is made; the VM writes its own overlay, the base never changes; down --delete-disks', async (t) => {
  const e = await makeEnv(t, 'b', (dir) => `{ base: ${join(dir, 'base.qcow2')}, size: 64M }`);
  const base = join(e.dir, 'base.qcow2');
  const raw = join(e.dir, 'base.raw');
  const buf = Buffer.alloc(4 * 1024 * 1024);
  buf.write('BASE-IMAGE');
  writeFileSync(raw, buf);
  await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, base]);
  const hash = sha256(base);

  // refused before anything is touched: no link, no data directory
  const small = await refused(e, ['apply', writeHost(e, 'small', `{ base: ${base}, size: 1M }`)], 'EHOST_PRECONDITION');
  assert.equal(small.field, 'vms[0].disk[0].size');
  assert.match(small.message, /smaller than the virtual size of the base image .* \(4194304 bytes\)/);
  const missing = await refused(e, ['apply', writeHost(e, 'missing', `{ base: ${join(e.dir, 'nope.qcow2')}, size: 64M }`)], 'EHOST_PRECONDITION');
  assert.equal(missing.field, 'vms[0].disk[0].base');
  const format = await refused(e, ['apply', writeHost(e, 'format', `{ base: ${base}, format: raw, size: 64M }`)], 'EHOST_PRECONDITION');
  assert.equal(format.field, 'vms[0].disk[0].format');
  assert.match(format.message, /is a qcow2 image, not raw/);
  const plainRaw = await refused(e, ['apply', writeHost(e, 'plainraw', `{ file: ${raw}, format: qcow2 }`)], 'EHOST_PRECONDITION');
  assert.equal(plainRaw.field, 'vms[0].disk[0].format');
  assert.equal(existsSync(e.data), false, 'no data directory was made');
  assert.equal(existsSync(e.state), false, 'nothing was applied');

  await ok(['apply', e.file], e);
  await up(e);
  assert.equal(await read(e), 'BASE-IMAGE', 'the VM sees the base through its own overlay');
  let l = await noOrphans(e, 'after the first apply');
  const root = l.disks[0]!.images[0]!.file;
  assert.deepEqual([l.disks[0]!.mode, l.disks[0]!.base, l.disks[0]!.images.length], ['base', base, 1]);
  assert.equal((await imageChain(root, { shared: true }))[0]!.virtualSize, 64 * 1024 * 1024, 'resized to size');

  await lifeCycle(e);
  await write(e, 'WRITE-B');
  await ok(['vm', 'commit', 'web', '-f', e.file], e);
  assert.equal(await read(e), 'WRITE-B');
  l = await noOrphans(e, 'after the commit');
  assert.deepEqual(l.disks[0]!.images.map((i) => i.file), [root], 'one file: the VM\'s own overlay (on the base)');
  assert.equal(await headOf(root, e.dir), 'WRITE-B');
  assert.deepEqual((await imageChain(root, { shared: true })).map((i) => i.file), [root, base]);
  assert.equal(sha256(base), hash, 'the base never changed');

  await ok(['down', e.file, '--delete-disks'], e);
  assert.equal(existsSync(join(e.data, 'disks', 'web')), false, 'the overlays are gone');
  assert.equal(sha256(base), hash, 'the base is kept, unchanged');
  await ok(['apply', e.file], e);
  await up(e);
  assert.equal(await read(e), 'BASE-IMAGE', 'a new overlay on the base');
  assert.equal(sha256(base), hash);
});

/** Writes a variant of the env's host file with another disk; its path. */
function writeHost(e: Env, name: string, disk: string): string {
  const file = join(e.dir, `${name}.yaml`);
  writeFileSync(file, e.text({ disk }));
  return file;
}

test('snapshot-delete keeps the later points; bad labels, a rollback to a deleted or discarded point, a commit while a block job runs: refused, nothing changed; the same operations offline', async (t) => {
  const e = await makeEnv(t, 'o', (dir) => join(dir, 'web.qcow2'));
  await qemuImg(['create', '-q', '-f', 'qcow2', join(e.dir, 'web.qcow2'), '16M']);
  await ok(['apply', e.file], e);
  await up(e);
  const vm = ['-f', e.file];
  const t0 = Date.now() - 1000; // takenAt has second or millisecond precision
  for (const [text, label] of [['WRITE-A', 's1'], ['WRITE-B', 's2'], ['WRITE-C', 's3']] as const) {
    await write(e, text);
    await ok(['vm', 'snapshot', 'web', '--name', label, ...vm], e);
  }
  await write(e, 'WRITE-D');
  const before = await noOrphans(e, 'three snapshots');
  assert.deepEqual(before.snapshots.map((s) => s.label), ['s1', 's2', 's3']);
  // times: in order, while the test ran; sizes: what du says the frozen image of each occupies
  const times = before.snapshots.map((s) => Date.parse(s.takenAt));
  assert.ok(times.every((x, i) => x >= t0 && x <= Date.now() && (i === 0 || x >= times[i - 1]!)), `snapshot times ${before.snapshots.map((s) => s.takenAt).join(', ')}`);
  for (const s of before.snapshots) {
    const frozen = before.disks[0]!.images.find((i) => i.label === s.label)!.file;
    const du = await new Promise<string>((resolve, reject) => execFile('du', ['--block-size=1', frozen], (err, out) => (err ? reject(err) : resolve(out))));
    assert.ok(s.bytes > 0);
    assert.equal(s.bytes, Number(du.split('\t')[0]), `${s.label}: bytes of ${frozen}`);
  }

  // refusals: nothing changes
  assert.match((await refused(e, ['vm', 'rollback', 'web', 'nope', ...vm], 'EHOST_DISK_LABEL')).message, /VM web has no snapshot nope \(snapshots: s1, s2, s3\)/);
  assert.match((await refused(e, ['vm', 'snapshot', 'web', '--name', 's2', ...vm], 'EHOST_DISK_LABEL')).message, /has a snapshot s2 already/);
  await refused(e, ['vm', 'snapshot', 'web', '--name', '../x', ...vm], 'EHOST_DISK_LABEL');
  await refused(e, ['vm', 'commit', 'web', 'nope', ...vm], 'EHOST_DISK_LABEL');
  await refused(e, ['vm', 'snapshot-delete', 'web', 'nope', ...vm], 'EHOST_DISK_LABEL');
  assert.deepEqual(await listing(e), before);
  assert.equal(await read(e), 'WRITE-D');

  // live delete of s2 (its image gets s3's data): s3 and s1 still show what they froze
  const del = await ok(['vm', 'snapshot-delete', 'web', 's2', ...vm], e);
  assert.match(del.stdout, /^Deleted snapshot s2 of vm web \(live/);
  assert.equal(await read(e), 'WRITE-D');
  let l = await noOrphans(e, 'after deleting s2');
  assert.deepEqual(l.snapshots.map((s) => s.label), ['s1', 's3']);
  assert.equal(l.disks[0]!.images.length, 3, 'one image fewer');
  assert.match((await refused(e, ['vm', 'rollback', 'web', 's2', ...vm], 'EHOST_DISK_LABEL')).message, /snapshot s2 of VM web was deleted \(vm snapshot-delete\) at /);
  await ok(['vm', 'rollback', 'web', 's3', ...vm], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-C', 'rollback s3 (after s2 was merged into the image below it)');
  await ok(['vm', 'rollback', 'web', 's1', ...vm], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-A', 'rollback s1, past the deleted s2');
  assert.match((await refused(e, ['vm', 'rollback', 'web', 's3', ...vm], 'EHOST_DISK_LABEL')).message, /snapshot s3 of VM web was discarded by a rollback to an earlier snapshot at /);

  // a block job someone else started holds the drive: commit is refused, nothing changed
  await write(e, 'WRITE-E');
  const runDir = join(e.state, 'vms', 'web');
  let other = await Vm.attach(runDir);
  const ready = other.qmp.waitForEvent('BLOCK_JOB_READY', { timeoutMs: 60_000 });
  await other.qmp.execute('block-commit', { device: 'drive0', 'job-id': 'other' });
  await ready;
  await other.detach();
  const held = await listing(e);
  const busy = await refused(e, ['vm', 'commit', 'web', ...vm], 'EQMP_BLOCK_BUSY');
  assert.match(busy.message, /commit_top|block job/);
  assert.deepEqual(await listing(e), held, 'nothing changed');
  other = await Vm.attach(runDir);
  const gone = other.qmp.waitForEvent('BLOCK_JOB_COMPLETED', { timeoutMs: 30_000 });
  await other.qmp.execute('block-job-cancel', { device: 'other' });
  await gone;
  await other.detach();
  assert.equal(await read(e), 'WRITE-E');

  // offline (the VM stopped): snapshot, delete the point below the top, commit
  await ok(['vm', 'stop', 'web', ...vm], e);
  const off = await ok(['vm', 'snapshot', 'web', '--name', 's4', ...vm], e);
  assert.match(off.stdout, /^Snapshot s4 of vm web \(stopped/);
  await ok(['vm', 'start', 'web', ...vm], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-E');
  await write(e, 'WRITE-F');
  await ok(['vm', 'stop', 'web', ...vm], e);
  assert.match((await ok(['vm', 'snapshot-delete', 'web', 's4', ...vm], e)).stdout, /\(stopped/);
  l = await noOrphans(e, 'after the offline delete');
  assert.deepEqual(l.snapshots.map((s) => s.label), ['s1']);
  assert.match((await ok(['vm', 'commit', 'web', ...vm], e)).stdout, /\(stopped/);
  l = await noOrphans(e, 'after the offline commit');
  assert.deepEqual(l.disks[0]!.images.map((i) => i.file), [join(e.dir, 'web.qcow2')]);
  assert.equal(await headOf(join(e.dir, 'web.qcow2'), e.dir), 'WRITE-F');
  await ok(['vm', 'start', 'web', ...vm], e);
  await up(e);
  assert.equal(await read(e), 'WRITE-F');
});
