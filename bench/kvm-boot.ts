// Benchmark (issue 12): seconds from Vm.start() to the test guest's TCP service answering, per
// machine type and kernel format, on this machine's accelerator (TCG here). One namespace with a
// bridge, a TAP and dnsmasq (the lab kit's `vmhb-` prefix, removed afterwards); rounds alternate
// the order of the variants (forward, backward); each figure is the median of the rounds.
// Prints figures; asserts nothing.
// Run: npm run bench -- bench/kvm-boot.ts [--rounds=5] [--only=q35-bzimage,microvm-pvh]
//      [--compare-initrd=PATH] (adds q35-pvh with another initramfs, e.g. an older build of the guest)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, type VmOptions } from '@vmhost/kvm';
import { benchNamespace } from './helpers.js';
import { guest, guestVmOptions, killPid, makeBridge, startDnsmasq, waitForConsole, waitForHttp } from '../integration/kvm/helpers.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROUNDS = Number(opt('rounds') ?? 5);
const only = opt('only')?.split(',');
const tmp = mkdtempSync(join(tmpdir(), 'vmhost-bench-'));
const pids: number[] = [];
const IP = '198.51.100.40';

const g = guest();
const variants: { key: string; label: string; options: Partial<VmOptions> }[] = [
  { key: 'q35-bzimage', label: 'q35, bzImage (SeaBIOS, linuxboot)', options: { machine: 'q35', kernel: g.kernel } },
  { key: 'q35-pvh', label: 'q35, vmlinux (SeaBIOS, PVH entry)', options: { machine: 'q35', kernel: g.vmlinux } },
  { key: 'microvm-bzimage', label: 'microvm, bzImage (qboot)', options: { machine: 'microvm', kernel: g.kernel } },
  { key: 'microvm-pvh', label: 'microvm, vmlinux (qboot, PVH entry)', options: { machine: 'microvm', kernel: g.vmlinux } },
  // options that skip more work (not in the default set: --only=KEY)
  { key: 'q35-pvh-qboot', label: 'q35, vmlinux, -bios qboot.rom', options: { machine: 'q35', kernel: g.vmlinux, extraArgs: ['-bios', 'qboot.rom'] } },
  { key: 'q35-pvh-cpumax', label: 'q35, vmlinux, -cpu max', options: { machine: 'q35', kernel: g.vmlinux, extraArgs: ['-cpu', 'max'] } },
  { key: 'microvm-pvh-noroms', label: 'microvm, vmlinux, x-option-roms=off', options: { machine: 'microvm', kernel: g.vmlinux, extraArgs: ['-machine', 'x-option-roms=off'] } },
  { key: 'microvm-pvh-icount', label: 'microvm, vmlinux, -icount (no tsc hint)', options: { machine: 'microvm', kernel: g.vmlinux, append: `${g.append} tsc_early_khz=0`, extraArgs: ['-icount', 'shift=auto'] } },
].filter((v, i) => (only ? only.includes(v.key) : i < 4));
const other = opt('compare-initrd');
if (other) variants.push({ key: 'q35-pvh-other', label: `q35, vmlinux, initrd ${other.split('/').slice(-3).join('/')}`, options: { machine: 'q35', kernel: g.vmlinux, initrd: other } });

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const space = await benchNamespace('kvmboot');
const ns = space.name;
try {
  await makeBridge(ns, ['tap-bench']);
  const mk = (v: (typeof variants)[number], i: number): Vm =>
    new Vm(guestVmOptions('bench', join(tmp, `${v.key}-${i}`), { netns: ns, nics: [{ tap: 'tap-bench' }], ...v.options }));
  const first = mk(variants[0]!, 0);
  const dns = startDnsmasq(undefined, ns, tmp, { [first.options.nics[0]!.mac]: IP });
  pids.push(dns.pid!);
  console.log(`start() to the guest's TCP service (${first.accel.accel}: ${first.accel.reason}); ${ROUNDS} rounds, order alternated; median (min-max)`);
  const times = variants.map(() => ({ tcp: [] as number[], init: [] as number[], stop: [] as string[] }));
  for (let r = 0; r < ROUNDS; r++) {
    const order = variants.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      const vm = mk(variants[i]!, r);
      const t0 = performance.now();
      await vm.start({ timeoutMs: 60_000 });
      pids.push(vm.pid!);
      const init = waitForConsole(vm.options.console!.file, g.markers.init, 180_000, () => vm.running).then(() => performance.now() - t0);
      await waitForHttp(ns, `http://${IP}/`, 180_000);
      times[i]!.tcp.push(performance.now() - t0);
      times[i]!.init.push(await init);
      const stop = await vm.stop({ timeoutMs: 30_000 });
      times[i]!.stop.push(`${stop.step} ${(stop.durationMs / 1000).toFixed(2)} s`);
    }
  }
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  for (const [i, v] of variants.entries()) {
    const t = times[i]!;
    console.log(`  ${v.label.padEnd(38)} TCP ${s(median(t.tcp))} (${s(Math.min(...t.tcp))}-${s(Math.max(...t.tcp))})   /init ${s(median(t.init))}   stop: ${t.stop.join(', ')}`);
  }
} finally {
  await space.close(); // kills QEMU and dnsmasq if still inside, deletes the namespace
  for (const pid of pids) killPid(pid);
  rmSync(tmp, { recursive: true, force: true });
}
