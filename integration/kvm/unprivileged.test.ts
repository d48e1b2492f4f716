// QEMU without root: runAs 'nobody' and the seccomp sandbox, with the TAP opened by name inside
// a fresh namespace and a root-only disk image (both opened before QEMU drops root). Oracles:
// /proc/PID/status of QEMU (uids, capabilities, no_new_privs, seccomp), the guest's HTTP answers,
// and the stop ladder's result.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { blockChain, liveCommit, liveSnapshot, lookupUser, qemuHasSandbox, QmpCommandError, Vm } from '@vmhost/kvm';
import { freshNetns } from '../helpers/ns.js';
import { guest, guestVmOptions, httpGet, killPid, makeBridge, runDir, startDnsmasq, waitForConsole, waitForHttp } from './helpers.js';

const IP = '198.51.100.34';

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

test('runAs nobody with the sandbox: no root, no capabilities, seccomp; TAP, disk, console and powerdown still work', async (t) => {
  const nobody = lookupUser('nobody');
  assert.ok(nobody, 'this test needs the user nobody');
  assert.equal(qemuHasSandbox('qemu-system-x86_64'), true, "Debian's QEMU 7.2 is built with seccomp");
  const ns = await freshNetns(t, 'kvmnobody');
  const dir = runDir(t, 'kvmnobody');
  await makeBridge(ns, ['tap-nobody']);
  const disk = join(dir, 'disk.raw');
  const buf = Buffer.alloc(1024 * 1024);
  buf.write('ROOT-ONLY-v1');
  writeFileSync(disk, buf, { mode: 0o600 });

  const vm = new Vm(guestVmOptions('nobody', dir, { netns: ns, nics: [{ tap: 'tap-nobody' }], drives: [{ file: disk, format: 'raw' }], runAs: 'nobody', sandbox: true }));
  const args = vm.args();
  assert.equal(args[args.indexOf('-runas') + 1], 'nobody');
  assert.equal(args[args.indexOf('-sandbox') + 1], 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
  startDnsmasq(t, ns, dir, { [vm.options.nics[0]!.mac]: IP });
  await vm.start({ timeoutMs: 60_000 });
  t.after(() => killPid(vm.pid));

  const st = status(vm.pid!);
  const ids = (v: string | undefined): string[] => (v ?? '').split(/\s+/);
  assert.deepEqual(ids(st.Uid), Array(4).fill(String(nobody.uid)), 'real, effective, saved and fs uid are nobody');
  assert.deepEqual(ids(st.Gid), Array(4).fill(String(nobody.gid)));
  assert.equal(st.CapEff, '0000000000000000');
  assert.equal(st.CapPrm, '0000000000000000');
  assert.equal(st.NoNewPrivs, '1');
  assert.equal(st.Seccomp, '2', 'seccomp filter mode');

  await waitForConsole(vm.options.console!.file, guest().markers.ready, 180_000, () => vm.running);
  assert.match(await waitForHttp(ns, `http://${IP}/`, 60_000), /^vmhost-guest /);
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/disk`)).trim(), 'ROOT-ONLY-v1', 'the root-only image was opened before the drop');

  // What QEMU opens after the drop needs the user's rights: blockdev-snapshot-sync creates the
  // overlay and opens the current image by name again, which nobody may not.
  chmodSync(dir, 0o711); // every directory on the way searchable by nobody
  const nobodyDir = join(dir, 'nobody-disks');
  mkdirSync(nobodyDir, { mode: 0o700 });
  chownSync(nobodyDir, nobody.uid, nobody.gid);
  await assert.rejects(vm.snapshotDisk('drive0', join(vm.options.runDir, 'snap.qcow2')), (e: unknown) => e instanceof QmpCommandError && /Could not create .*Permission denied/.test(e.desc));
  await assert.rejects(vm.snapshotDisk('drive0', join(nobodyDir, 'snap.qcow2')), (e: unknown) => e instanceof QmpCommandError && /Could not open .*disk\.raw.*Permission denied/.test(e.desc));
  assert.equal(existsSync(join(nobodyDir, 'snap.qcow2')), false, 'the overlay QEMU created before failing is removed');
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/disk`)).trim(), 'ROOT-ONLY-v1', 'the VM runs on, on its image');
  const hostMade = join(nobodyDir, 'host.qcow2');
  await assert.rejects(liveSnapshot(vm.qmp, { device: 'drive0', overlay: hostMade, create: 'host', owner: { uid: nobody.uid, gid: nobody.gid } }), (e: unknown) => e instanceof QmpCommandError && /Could not open .*disk\.raw.*Permission denied/.test(e.desc), 'QEMU reopens the old top read-only by name');
  assert.equal(existsSync(hostMade), false);
  assert.deepEqual((await blockChain(vm.qmp, 'drive0')).map((l) => l.file), [disk], 'the chain is as it was');

  // The model that works: the VM's user owns its chain (libvirt's DAC model). Then a snapshot
  // (here host-made, given to nobody) and a commit back both work as nobody.
  chownSync(disk, nobody.uid, nobody.gid);
  const chain = await liveSnapshot(vm.qmp, { device: 'drive0', overlay: hostMade, create: 'host', owner: { uid: nobody.uid, gid: nobody.gid } });
  assert.deepEqual(chain.map((l) => l.file), [hostMade, disk]);
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/write?AFTER-SNAPSHOT`)).trim(), 'ok');
  assert.equal(readFileSync(disk).subarray(0, 12).toString(), 'ROOT-ONLY-v1', 'the frozen image is untouched');
  assert.deepEqual((await liveCommit(vm.qmp, { device: 'drive0' })).map((l) => l.file), [disk]);
  assert.equal((await httpGet(ns, `http://${IP}/cgi-bin/disk`)).trim(), 'AFTER-SNAPSHOT');

  const r = await vm.stop({ timeoutMs: 60_000 });
  assert.equal(r.step, 'powerdown');
  assert.equal(r.exitCode, 0);
  assert.equal(readFileSync(disk).subarray(0, 14).toString(), 'AFTER-SNAPSHOT', 'committed into the image');
  for (const f of [vm.files.pidfile, vm.files.qmp]) assert.equal(existsSync(f), false, `${f}: QEMU (nobody) could not remove it; the launcher did`);
});

test('the stop ladder ends an unprivileged, sandboxed QEMU that no longer answers: SIGKILL from root', async (t) => {
  const dir = runDir(t, 'kvmnobodykill');
  const vm = new Vm(guestVmOptions('nobodykill', dir, { runAs: 'nobody', sandbox: true, append: `${guest().append} rdinit=/bin/sh` }));
  await vm.start({ timeoutMs: 60_000 });
  t.after(() => killPid(vm.pid));
  assert.equal(status(vm.pid!).Uid!.split(/\s+/)[0], String(lookupUser('nobody')!.uid));
  process.kill(vm.pid!, 'SIGSTOP'); // QMP stops answering; SIGTERM waits for a continue; SIGKILL does not
  const r = await vm.stop({ timeoutMs: 500, stepTimeoutMs: 500 });
  assert.equal(r.step, 'sigkill');
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(vm.running, false);
});
