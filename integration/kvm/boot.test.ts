// A real boot of the test guest (TCG) in a fresh network namespace: its TAP on a bridge made with
// @vmhost/net, DHCP from dnsmasq, the guest's HTTP service reached from the namespace, a second
// start refused, and a stop through the ladder that ends at system_powerdown.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { closeSync, readFileSync } from 'node:fs';

/** uid of a user from /etc/passwd. */
function userInfoOf(name: string): number {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  return Number(line?.split(':')[2]);
}
import { openTap } from '@vmhost/net';
import { Vm, VmAlreadyRunningError, VmStartError } from '@vmhost/kvm';
import { freshNetns } from '../helpers/ns.js';
import { enslave, guest, guestVmOptions, httpGet, killPid, makeBridge, runDir, startDnsmasq, waitForConsole, waitForHttp } from './helpers.js';

test('boots the guest (bzImage) on a bridge by TAP name; DHCP, TCP service, second start refused, stop by powerdown', async (t) => {
  const ns = await freshNetns(t, 'kvmboot');
  const dir = runDir(t, 'kvmboot');
  await makeBridge(ns, ['tap-boot']);
  const opts = guestVmOptions('boot', dir, { netns: ns, nics: [{ tap: 'tap-boot' }], kernel: guest().kernel });
  const vm = new Vm(opts);
  const mac = vm.options.nics[0]!.mac;
  startDnsmasq(t, ns, dir, { [mac]: '198.51.100.23' });

  assert.equal(vm.accel.accel, 'tcg', `this machine's /dev/kvm is PVM: auto must pick TCG (${vm.accel.reason})`);
  const args = vm.args();
  assert.ok(args.includes('-netdev') && args.includes('tap,id=net0,ifname=tap-boot,script=no,downscript=no'));
  assert.ok(args.includes(`virtio-net-pci,netdev=net0,mac=${mac}`));

  await vm.start({ timeoutMs: 60_000 });
  t.after(() => killPid(vm.pid));
  const status = await vm.status();
  assert.equal(status.running, true);
  assert.equal(status.status, 'running');
  assert.ok(existsSync(vm.files.pidfile) && existsSync(vm.files.qmp));

  // A second launcher on the same run dir is refused while this one runs.
  await assert.rejects(new Vm(opts).start(), (e: unknown) => e instanceof VmAlreadyRunningError && e.pid === vm.pid);

  const g = guest();
  const consoleFile = opts.console!.file;
  const text = await waitForConsole(consoleFile, g.markers.ready, 180_000, () => vm.running);
  assert.match(text, /VMHOST-GUEST: ip 198\.51\.100\.23/);
  const body = await waitForHttp(ns, 'http://198.51.100.23/', 60_000);
  assert.equal(body.trim(), `vmhost-guest ${mac}`);

  const r = await vm.stop({ timeoutMs: 60_000 });
  assert.equal(r.step, 'powerdown');
  assert.equal(r.exitCode, 0);
  assert.match(await waitForConsole(consoleFile, g.markers.powerdown, 1_000), /powerdown/);
  assert.equal(vm.running, false);
  for (const f of [vm.files.pidfile, vm.files.qmp, vm.files.state]) assert.equal(existsSync(f), false, `${f} removed`);
  await assert.rejects(httpGet(ns, 'http://198.51.100.23/', 1));
  assert.equal((await vm.stop()).step, 'not-running');
});

test('NIC by TAP fd opened by the parent; a guest that ignores the power button ends at quit', async (t) => {
  const ns = await freshNetns(t, 'kvmfd');
  const dir = runDir(t, 'kvmfd');
  await makeBridge(ns);
  const tap = openTap({ name: 'tap-fd', netns: ns, vnetHdr: true });
  let fdOpen = true;
  t.after(() => fdOpen && closeSync(tap.fd));
  await enslave(ns, 'tap-fd');
  // QEMU runs in the root namespace here: it needs no access to the namespace, only the fd; and
  // it drops root for 'nobody' once started (-runas).
  const opts = guestVmOptions('fdnic', dir, { nics: [{ fd: tap.fd }], append: `${guest().append} rdinit=/bin/sh`, runAs: 'nobody' });
  const vm = new Vm(opts);
  assert.ok(vm.args().includes('tap,id=net0,fd=3'));
  await vm.start({ timeoutMs: 60_000 });
  t.after(() => killPid(vm.pid));
  closeSync(tap.fd); // QEMU holds its own copy
  fdOpen = false;
  const info = await vm.qmp.hmp('info network');
  assert.match(info, /net0: index=0,type=tap,fd=3/);
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${vm.pid}/status`, 'utf8'))?.[1];
  assert.equal(uid, String(userInfoOf('nobody')), 'QEMU runs as nobody');
  // rdinit=/bin/sh: no /init, nothing handles the ACPI button, so the ladder goes on to quit.
  const r = await vm.stop({ timeoutMs: 3_000 });
  assert.equal(r.step, 'quit');
  assert.equal(vm.running, false);
});

test('early exit: QEMU\'s stderr is in the start error; nothing is left behind', async (t) => {
  const dir = runDir(t, 'kvmbad');
  const vm = new Vm(guestVmOptions('bad', dir, { drives: [{ file: join(dir, 'missing.qcow2') }] }));
  await assert.rejects(vm.start({ timeoutMs: 60_000 }), (e: unknown) => {
    assert.ok(e instanceof VmStartError, String(e));
    assert.match(e.stderr, /missing\.qcow2/);
    assert.match(e.message, /missing\.qcow2/);
    assert.equal(e.exitCode, 1);
    return true;
  });
  assert.equal(vm.running, false);
  assert.equal(existsSync(vm.files.qmp), false);
  assert.equal(existsSync(vm.files.pidfile), false);
});

test('a stale pidfile and socket are recognised and cleaned at start', async (t) => {
  const dir = runDir(t, 'kvmstale');
  const opts = guestVmOptions('stale', dir, { extraArgs: ['-S'] });
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { createServer } = await import('node:net');
  mkdirSync(opts.runDir, { recursive: true });
  const vm = new Vm(opts);
  writeFileSync(vm.files.pidfile, `${process.pid}\n`); // alive, but not a QEMU
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(vm.files.qmp, () => r()));
  await new Promise<void>((r) => srv.close(() => r())); // Node unlinks on close: leave a dead socket file
  writeFileSync(vm.files.qmp, '');
  await vm.start({ timeoutMs: 60_000 });
  t.after(() => killPid(vm.pid));
  assert.equal((await vm.status()).status, 'prelaunch');
  const r = await vm.stop({ force: true });
  assert.equal(r.step, 'quit');
});
