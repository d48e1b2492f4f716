// machine: 'microvm' with the test guest's uncompressed kernel (PVH entry) in a fresh namespace:
// NIC by TAP on a bridge (virtio-net-device over virtio-mmio), a virtio-mmio disk, the serial
// console, the guest's TCP service and disk endpoints, and the stop ladder ending at
// system_powerdown (microvm's ACPI power button). Oracles: QEMU's QOM (machine type), the guest's
// HTTP answers, qemu-img reading the image offline.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { qemuImg, Vm } from '@vmhost/kvm';
import { freshNetns } from '../helpers/ns.js';
import { guest, guestVmOptions, httpGet, killPid, makeBridge, runDir, startDnsmasq, waitForConsole, waitForHttp } from './helpers.js';

const IP = '198.51.100.33';

test('microvm boots a PVH kernel with a TAP NIC, a virtio-mmio disk and a serial console; stops by powerdown', async (t) => {
  const ns = await freshNetns(t, 'kvmmicro');
  const dir = runDir(t, 'kvmmicro');
  await makeBridge(ns, ['tap-micro']);
  const disk = join(dir, 'disk.raw');
  const buf = Buffer.alloc(1024 * 1024);
  buf.write('MICRO-v1');
  writeFileSync(disk, buf);

  const g = guest();
  const vm = new Vm(guestVmOptions('micro', dir, { machine: 'microvm', kernel: g.vmlinux, netns: ns, nics: [{ tap: 'tap-micro' }], drives: [{ file: disk, format: 'raw' }] }));
  const mac = vm.options.nics[0]!.mac;
  startDnsmasq(t, ns, dir, { [mac]: IP });
  const args = vm.args();
  assert.ok(args.includes(`virtio-net-device,netdev=net0,mac=${mac}`));
  assert.ok(args.includes('virtio-blk-device,drive=drive0'));
  assert.match(args[args.indexOf('-append') + 1]!, / tsc_early_khz=\d+$/, 'the TSC hint under TCG');

  await vm.start({ timeoutMs: 60_000 });
  t.after(() => killPid(vm.pid));
  assert.equal(await vm.qmp.execute('qom-get', { path: '/machine', property: 'type' }), 'microvm-machine');
  const text = await waitForConsole(vm.options.console!.file, g.markers.ready, 180_000, () => vm.running);
  assert.match(text, new RegExp(`VMHOST-GUEST: ip ${IP.replace(/\./g, '\\.')}`));
  assert.equal((await waitForHttp(ns, `http://${IP}/`, 60_000)).trim(), `vmhost-guest ${mac}`);

  // the disk over virtio-mmio: read, written by the guest, seen by qemu-img
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/disk`)).trim(), 'MICRO-v1');
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/write?MICRO-v2`)).trim(), 'ok');
  const blocks = await vm.qmp.execute('query-block');
  assert.equal(blocks.find((b) => b.device === 'drive0')?.inserted?.file, disk);

  const r = await vm.stop({ timeoutMs: 60_000 });
  assert.equal(r.step, 'powerdown');
  assert.equal(r.exitCode, 0);
  assert.match(readFileSync(vm.options.console!.file, 'utf8'), /VMHOST-GUEST: powerdown/);
  const out = join(dir, 'check.raw');
  await qemuImg(['convert', '-O', 'raw', disk, out]);
  assert.equal(readFileSync(out).subarray(0, 8).toString(), 'MICRO-v2');
});
