// Benchmark (issue 16): time of a live snapshot and of a live (active) commit of a running VM's
// 1 GiB qcow2 disk with 256 MiB written, on this machine (TCG guest, the test guest idling).
// Each round: 256 MiB written into the disk; then twice (a QEMU-created overlay and a host-created
// one, their order alternated by round): live snapshot, 256 MiB written into the overlay, active
// commit back into the disk. Host page cache, cache=writeback: the figures include QEMU's flush at
// the snapshot, not the disk's own write-back.
// The writes go through the running QEMU's block layer (HMP `qemu-io drive0 "write -P ..."`),
// not through the guest, so they take seconds, not minutes, under TCG. Median of the rounds.
// Prints figures; asserts nothing.
// Run: npm run bench -- bench/kvm-disk.ts [--rounds=3] [--dir=/var/tmp]
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { median, timed as ms } from './compare/stats.js';
import { createImage, liveCommit, liveSnapshot, Vm } from '@vmhost/kvm';
import { guest, guestVmOptions, killPid, waitForConsole } from '../integration/kvm/helpers.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROUNDS = Number(opt('rounds') ?? 3);
const GiB = 1024 ** 3;
// on disk, not tmpfs: /tmp may be memory here and would flatter the figures
const tmp = mkdtempSync(join(opt('dir') ?? '/var/tmp', 'vmhost-bench-disk-'));

const times = { write: [] as number[], snapQemu: [] as number[], snapHost: [] as number[], commit: [] as number[] };
let vm: Vm | undefined;
try {
  for (let r = 0; r < ROUNDS; r++) {
    const dir = join(tmp, `r${r}`);
    const disk = join(dir, 'disk.qcow2');
    await import('node:fs').then((fs) => fs.mkdirSync(dir));
    await createImage({ file: disk, format: 'qcow2', sizeBytes: GiB });
    vm = new Vm(guestVmOptions('benchdisk', dir, { drives: [{ file: disk, format: 'qcow2' }] }));
    await vm.start({ timeoutMs: 60_000 });
    await waitForConsole(vm.options.console!.file, guest().markers.ready, 180_000, () => vm!.running);
    const write = (pattern: number): Promise<number> => ms(() => vm!.qmp.hmp(`qemu-io drive0 "write -P ${pattern} 0 256M"`, { timeoutMs: 300_000 }));
    times.write.push(await write(0x11));
    for (const mode of r % 2 ? (['host', 'qemu'] as const) : (['qemu', 'host'] as const)) {
      const overlay = join(dir, `snap-${mode}.qcow2`);
      (mode === 'qemu' ? times.snapQemu : times.snapHost).push(await ms(() => liveSnapshot(vm!.qmp, { device: 'drive0', overlay, create: mode })));
      times.write.push(await write(mode === 'qemu' ? 0x22 : 0x33));
      times.commit.push(await ms(() => liveCommit(vm!.qmp, { device: 'drive0', timeoutMs: 600_000 })));
    }
    await vm.stop({ force: true });
    vm = undefined;
    rmSync(dir, { recursive: true, force: true });
  }
  const s = (x: number): string => `${(x / 1000).toFixed(3)} s`;
  const spread = (xs: number[]): string => `${s(Math.min(...xs))}-${s(Math.max(...xs))}`;
  console.log(`Live disk operations, 1 GiB qcow2 with 256 MiB written, ${ROUNDS} rounds (median, min-max), images in ${tmp.replace(/\/vmhost-bench-disk-.*/, '')}`);
  console.log(`  live snapshot, QEMU creates the overlay (blockdev-snapshot-sync)  ${s(median(times.snapQemu))} (${spread(times.snapQemu)})`);
  console.log(`  live snapshot, host creates it (qemu-img -u, blockdev-add+snapshot) ${s(median(times.snapHost))} (${spread(times.snapHost)})`);
  console.log(`  live commit of the overlay holding 256 MiB into the disk            ${s(median(times.commit))} (${spread(times.commit)})`);
  console.log(`  (writing 256 MiB through QEMU's block layer: ${s(median(times.write))})`);
} finally {
  if (vm?.pid) killPid(vm.pid);
  rmSync(tmp, { recursive: true, force: true });
}
