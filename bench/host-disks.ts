// Benchmark (issue 16, closing figures): a VM's disk operations through @vmhost/host's functions
// (snapshotVm, commitVm: the lock, the chain record written ahead and switched, QMP attached, the
// live block operation, the record's checks), on a host applied in a lab namespace with one test
// guest (TCG, idling) on a 1 GiB qcow2 disk with 256 MiB written. Each round: 256 MiB written into
// the disk, a live snapshot, 256 MiB written into the new overlay, a live commit of it back into
// the disk (an active commit: the guest paused for the pivot and its record write). Then the same
// offline (the VM stopped: qemu-img create, qemu-img commit). Images on disk (/var/tmp), host page
// cache (cache=writeback). The writes go through the running QEMU's block layer (HMP `qemu-io`),
// or qemu-io offline, not through the guest. Median of the rounds (min-max). Prints figures;
// asserts nothing.
// Run: npm run bench -- bench/host-disks.ts [--rounds=5] [--dir=/var/tmp]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { median, timed as ms } from './compare/stats.js';
import { Lab } from '@vmhost/lab';
import { createImage, Vm } from '@vmhost/kvm';
import { apply, commitVm, down, parseHostFile, snapshotVm, startVm, stopVm } from '@vmhost/host';
import { guest, waitForConsole } from '../integration/kvm/helpers.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROUNDS = Number(opt('rounds') ?? 5);
const GiB = 1024 ** 3;
// on disk, not tmpfs: /tmp may be memory here and would flatter the figures
const tmp = mkdtempSync(join(opt('dir') ?? '/var/tmp', 'vmhost-bench-hdisk-'));

const lab = await Lab.create({ prefix: 'vmhb-disk-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' } }] });
const ns = lab.ns('host');
const g = guest();
const disk = join(tmp, 'web.qcow2');
const host = parseHostFile(`name: benchdisk
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
vms:
  - name: web
    ipv4: 192.168.0.100
    memoryMiB: 128
    kernel: ${g.vmlinux}
    initrd: ${g.initrd}
    append: "${g.append}"
    disk: ${disk}
`, { baseDir: tmp });
const opts = { netns: ns, stateDir: join(tmp, 'state'), dataDir: join(tmp, 'data') };
const runDir = join(opts.stateDir, 'vms', 'web');

/** 256 MiB of `pattern` into the running VM's disk, through QEMU's block layer. */
async function writeLive(pattern: number): Promise<void> {
  const vm = await Vm.attach(runDir);
  try {
    await vm.qmp.hmp(`qemu-io drive0 "write -P ${pattern} 0 256M"`, { timeoutMs: 300_000 });
  } finally {
    await vm.detach();
  }
}

/** 256 MiB of `pattern` into an image offline (qemu-io, argument array). */
function writeOffline(file: string, pattern: number): void {
  const r = spawnSync('qemu-io', ['-f', 'qcow2', '-c', `write -P ${pattern} 0 256M`, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-io: ${r.stderr}`);
}

const t = { snapLive: [] as number[], commitLive: [] as number[], snapOff: [] as number[], commitOff: [] as number[] };
try {
  await createImage({ file: disk, format: 'qcow2', sizeBytes: GiB });
  await apply(host, opts);
  await waitForConsole(join(runDir, 'console.log'), g.markers.ready, 180_000);
  for (let r = 0; r < ROUNDS; r++) {
    await writeLive(0x11 + r);
    t.snapLive.push(await ms(() => snapshotVm(host, 'web', { ...opts, label: `live${r}` })));
    await writeLive(0x21 + r);
    t.commitLive.push(await ms(() => commitVm(host, 'web', { ...opts, timeoutMs: 600_000 })));
  }
  await stopVm(host, 'web', opts);
  for (let r = 0; r < ROUNDS; r++) {
    writeOffline(disk, 0x31 + r);
    let top = '';
    t.snapOff.push(await ms(async () => (top = (await snapshotVm(host, 'web', { ...opts, label: `off${r}` })).disks[0]!.top)));
    writeOffline(top, 0x41 + r);
    t.commitOff.push(await ms(() => commitVm(host, 'web', opts)));
  }
  await startVm(host, 'web', opts);
  const s = (x: number): string => `${(x / 1000).toFixed(3)} s`;
  const line = (what: string, xs: number[]): void => console.log(`  ${what.padEnd(62)} ${s(median(xs))} (${s(Math.min(...xs))}-${s(Math.max(...xs))})`);
  console.log(`VM disk operations through @vmhost/host, 1 GiB qcow2 with 256 MiB written, ${ROUNDS} rounds (median, min-max), images in ${tmp.replace(/\/vmhost-bench-hdisk-.*/, '')}`);
  line('live snapshot (snapshotVm, the VM running)', t.snapLive);
  line('live commit of an overlay holding 256 MiB (commitVm, active)', t.commitLive);
  line('offline snapshot (snapshotVm, the VM stopped: qemu-img create)', t.snapOff);
  line('offline commit of 256 MiB (commitVm, the VM stopped: qemu-img)', t.commitOff);
} finally {
  await down(host, { ...opts, deleteDisks: true }).catch((err: unknown) => console.error(`down: ${String(err)}`));
  await lab.close();
  rmSync(tmp, { recursive: true, force: true });
}
