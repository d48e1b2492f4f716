// The pure parts of the launcher: option validation, the argument array, MACs, the accel rule.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildArgs, detectAccel, hostTscKhz, lookupUser, qemuEscape, resolveVmOptions, stableMac, Vm, type VmOptions } from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';

const base: VmOptions = { name: 'web', runDir: '/run/vmhost/web' };

test('the argument array of a full VM', () => {
  const r = resolveVmOptions({
    ...base,
    memoryMiB: 1024,
    cpus: 2,
    kernel: '/boot/vmlinuz',
    initrd: '/boot/initrd.img',
    append: 'console=ttyS0 root=/dev/vda',
    drives: [{ file: '/var/lib/vm/web,root.qcow2', format: 'qcow2', interface: 'virtio', cache: 'writeback' }],
    nics: [{ tap: 'tap-web', mac: '52:54:00:AA:bb:01' }, { fd: 17 }],
    console: { file: '/run/vmhost/web/console.log' },
  });
  assert.deepEqual(buildArgs(r, 'tcg'), [
    '-name', 'guest=web',
    '-machine', 'q35,accel=tcg',
    '-m', '1024',
    '-smp', '2',
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-chardev', 'socket,id=vmhost-qmp,path=/run/vmhost/web/qmp.sock,server=on,wait=off',
    '-mon', 'chardev=vmhost-qmp,mode=control',
    '-chardev', 'socket,id=vmhost-events,path=/run/vmhost/web/evt.sock,server=on,wait=off',
    '-mon', 'chardev=vmhost-events,mode=control',
    '-pidfile', '/run/vmhost/web/qemu.pid',
    '-chardev', 'file,id=vmhost-console,path=/run/vmhost/web/console.log',
    '-serial', 'chardev:vmhost-console',
    '-kernel', '/boot/vmlinuz',
    '-initrd', '/boot/initrd.img',
    '-append', 'console=ttyS0 root=/dev/vda',
    '-drive', 'file=/var/lib/vm/web,,root.qcow2,format=qcow2,if=virtio,id=drive0,cache=writeback',
    '-netdev', 'tap,id=net0,ifname=tap-web,script=no,downscript=no',
    '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:01',
    '-netdev', 'tap,id=net1,fd=3',
    '-device', `virtio-net-pci,netdev=net1,mac=${stableMac('web', 1)}`,
  ]);
  const kvm = buildArgs(r, 'kvm');
  assert.deepEqual(kvm.slice(2, 6), ['-machine', 'q35,accel=kvm', '-cpu', 'host']);
  assert.equal(qemuEscape('a,b,,c'), 'a,,b,,,,c');
});

test('stable MACs: locally administered unicast, per name and index, distinct across VMs', () => {
  const macs = new Set<string>();
  for (const name of ['web', 'db', 'cache', 'web2']) {
    for (let i = 0; i < 4; i++) {
      const m = stableMac(name, i);
      assert.match(m, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const first = parseInt(m.slice(0, 2), 16);
      assert.equal(first & 1, 0, 'unicast');
      assert.equal(first & 2, 2, 'locally administered');
      assert.equal(stableMac(name, i), m, 'stable');
      macs.add(m);
    }
  }
  assert.equal(macs.size, 16);
  const r = resolveVmOptions({ ...base, nics: [{ tap: 't0' }, { tap: 't1' }] });
  assert.deepEqual(r.nics.map((n) => n.mac), [stableMac('web', 0), stableMac('web', 1)]);
});

test('invalid options are rejected with the field named, before anything runs', () => {
  const bad: [Partial<VmOptions>, string][] = [
    [{ name: 'has space' }, 'name'],
    [{ name: '' }, 'name'],
    [{ runDir: 'relative/dir' }, 'runDir'],
    [{ runDir: `/${'x'.repeat(120)}` }, 'runDir'],
    [{ memoryMiB: 0 }, 'memoryMiB'],
    [{ cpus: 1.5 }, 'cpus'],
    [{ accel: 'hvf' as never }, 'accel'],
    [{ initrd: '/boot/initrd' }, 'initrd'],
    [{ kernel: 'vmlinuz' }, 'kernel'],
    [{ drives: [{ file: '/d.img', format: 'vmdk' as never }] }, 'drives[0].format'],
    [{ drives: [{ file: '/d.img', cache: 'fast' as never }] }, 'drives[0].cache'],
    [{ drives: [{ file: 'd.img' }] }, 'drives[0].file'],
    [{ drives: [{ file: '/a', id: 'x' }, { file: '/b', id: 'x' }] }, 'drives[1].id'],
    [{ nics: [{ tap: 'tap0', mac: '01:00:5e:00:00:01' }] }, 'nics[0].mac'],
    [{ nics: [{ tap: 'tap0', mac: 'zz:00:00:00:00:01' }] }, 'nics[0].mac'],
    [{ nics: [{ tap: 'tap0', mac: '02:00:00:00:00:01' }, { tap: 'tap1', mac: '02:00:00:00:00:01' }] }, 'nics[1].mac'],
    [{ nics: [{ tap: 'a-name-much-too-long' }] }, 'nics[0].tap'],
    [{ nics: [{}] }, 'nics[0]'],
    [{ nics: [{ tap: 't', fd: 3 }] }, 'nics[0]'],
    [{ nics: [{ fd: -1 }] }, 'nics[0].fd'],
    [{ nics: [{ tap: 't', model: 'pcnet' as never }] }, 'nics[0].model'],
    [{ console: { file: 'console.log' } }, 'console.file'],
    [{ extraArgs: '-S' as never }, 'extraArgs'],
    [{ runAs: 'root; rm -rf /' }, 'runAs'],
  ];
  for (const [patch, field] of bad) {
    assert.throws(() => new Vm({ ...base, ...patch } as VmOptions), (e: unknown) => {
      assert.ok(e instanceof ValidationError, `${JSON.stringify(patch)}: ${String(e)}`);
      assert.equal(e.field, field, JSON.stringify(patch));
      return true;
    });
  }
});

test('accel auto: KVM only on a hardware KVM, never on PVM', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-accel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dev = join(dir, 'kvm');
  const mods = join(dir, 'module');
  mkdirSync(mods);
  assert.equal(detectAccel({ devKvm: dev, sysModule: mods }).accel, 'tcg');
  writeFileSync(dev, '');
  assert.deepEqual(detectAccel({ devKvm: dev, sysModule: mods }), { accel: 'tcg', reason: 'neither kvm_intel nor kvm_amd is loaded: not a hardware KVM' });
  mkdirSync(join(mods, 'kvm_intel'));
  assert.equal(detectAccel({ devKvm: dev, sysModule: mods }).accel, 'kvm');
  mkdirSync(join(mods, 'kvm_pvm'));
  const pvm = detectAccel({ devKvm: dev, sysModule: mods });
  assert.equal(pvm.accel, 'tcg');
  assert.match(pvm.reason, /PVM/);
  const vm = new Vm({ ...base, accel: 'tcg' });
  assert.deepEqual(vm.accel, { accel: 'tcg', reason: 'chosen by the caller' });
});

test('microvm: virtio-mmio devices, a TSC hint under TCG, and what it cannot have is refused', () => {
  const r = resolveVmOptions({
    ...base,
    machine: 'microvm',
    kernel: '/boot/vmlinux',
    append: 'console=ttyS0',
    drives: [{ file: '/var/lib/vm/web.qcow2' }],
    nics: [{ tap: 'tap-web', mac: '02:00:00:00:00:01' }],
  });
  const a = buildArgs(r, 'tcg', { tscKhz: 2_596_122 });
  assert.deepEqual(a.slice(2, 4), ['-machine', 'microvm,accel=tcg']);
  assert.deepEqual(a.slice(a.indexOf('-append'), a.indexOf('-append') + 2), ['-append', 'console=ttyS0 tsc_early_khz=2596122']);
  assert.ok(a.join(' ').includes('-drive file=/var/lib/vm/web.qcow2,format=qcow2,if=none,id=drive0,cache=writeback -device virtio-blk-device,drive=drive0'));
  assert.ok(a.join(' ').includes('-device virtio-net-device,netdev=net0,mac=02:00:00:00:00:01'));
  // the caller's own figure wins; one already in the command line is left alone; KVM needs none
  assert.ok(buildArgs(resolveVmOptions({ ...base, machine: 'microvm', kernel: '/k', tscKhz: 2_000_000 }), 'tcg', { tscKhz: 1 }).includes('tsc_early_khz=2000000'));
  assert.ok(buildArgs(resolveVmOptions({ ...base, machine: 'microvm', kernel: '/k', append: 'tsc_early_khz=5' }), 'tcg', { tscKhz: 1 }).includes('tsc_early_khz=5'));
  assert.equal(buildArgs(resolveVmOptions({ ...base, machine: 'microvm', kernel: '/k' }), 'kvm').includes('-append'), false);
  assert.throws(() => buildArgs(resolveVmOptions({ ...base, machine: 'microvm', kernel: '/k' }), 'tcg'), (e: unknown) => e instanceof ValidationError && e.field === 'tscKhz');
  const bad: [Partial<VmOptions>, string][] = [
    [{ machine: 'microvm' }, 'kernel'],
    [{ machine: 'microvm', kernel: '/k', drives: [{ file: '/d', interface: 'ide' }] }, 'drives[0].interface'],
    [{ machine: 'microvm', kernel: '/k', nics: [{ tap: 't', model: 'e1000' }] }, 'nics[0].model'],
    [{ machine: 'microvm', kernel: '/k', nics: [{ tap: 't', model: 'virtio-net-pci' }] }, 'nics[0].model'],
    [{ nics: [{ tap: 't', model: 'virtio-net-device' }] }, 'nics[0].model'],
    [{ machine: 'microvm', kernel: '/k', tscKhz: 12.5 }, 'tscKhz'],
    [{ machine: 'q35,accel=kvm' }, 'machine'],
  ];
  for (const [patch, field] of bad) {
    assert.throws(() => resolveVmOptions({ ...base, ...patch } as VmOptions), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(patch));
  }
});

test('hostTscKhz reads cpu MHz of /proc/cpuinfo', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-cpuinfo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'cpuinfo');
  writeFileSync(f, 'processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.122\nbogomips\t: 5192.24\n');
  assert.equal(hostTscKhz(f), 2_596_122);
  writeFileSync(f, 'processor\t: 0\n');
  assert.equal(hostTscKhz(f), undefined);
  assert.equal(hostTscKhz(join(dir, 'missing')), undefined);
});

test('runAs and sandbox: -runas by name or uid:gid, the sandbox with elevateprivileges allowed only when QEMU must drop root itself', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-passwd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\nbroken line\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\ntoor:x:0:0::/:/bin/sh\nweird:x:1x:2:::\n');
  assert.deepEqual(lookupUser('nobody', passwd), { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' });
  assert.equal(lookupUser('weird', passwd), undefined, 'a malformed line is no user');
  assert.equal(lookupUser('ghost', passwd), undefined);
  assert.equal(lookupUser('nobody', join(dir, 'missing')), undefined);

  const args = (o: Partial<VmOptions>, host = {}): string[] => buildArgs(resolveVmOptions({ ...base, ...o }), 'tcg', host);
  const tail = (a: string[], flag: string): string | undefined => (a.includes(flag) ? a[a.indexOf(flag) + 1] : undefined);
  assert.equal(tail(args({ runAs: 'nobody' }), '-runas'), 'nobody');
  assert.equal(tail(args({ runAs: { user: 'nobody' } }), '-runas'), 'nobody');
  assert.equal(tail(args({ runAs: { uid: 4242, gid: 4243 } }), '-runas'), '4242:4243');
  assert.equal(tail(args({}), '-runas'), undefined);
  assert.equal(tail(args({ sandbox: true }), '-sandbox'), 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  assert.equal(tail(args({ sandbox: true, runAs: 'nobody' }), '-sandbox'), 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
  assert.equal(tail(args({ sandbox: 'auto' }, { sandbox: true }), '-sandbox'), 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  assert.equal(tail(args({ sandbox: 'auto' }, { sandbox: false }), '-sandbox'), undefined);
  assert.equal(tail(args({ sandbox: false }, { sandbox: true }), '-sandbox'), undefined);

  const bad: [Partial<VmOptions>, string][] = [
    [{ runAs: 'root' }, 'runAs'],
    [{ runAs: { user: 'a b' } }, 'runAs.user'],
    [{ runAs: { uid: 0, gid: 0 } }, 'runAs.uid'],
    [{ runAs: { uid: 1000 } as never }, 'runAs'],
    [{ runAs: { uid: 1000, gid: -1 } }, 'runAs.gid'],
    [{ runAs: 7 as never }, 'runAs'],
    [{ sandbox: 'yes' as never }, 'sandbox'],
  ];
  for (const [patch, field] of bad) {
    assert.throws(() => resolveVmOptions({ ...base, ...patch } as VmOptions), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(patch));
  }
  // the name is checked against /etc/passwd when the Vm is made
  assert.throws(() => new Vm({ ...base, runAs: 'no-such-user-here' }), (e: unknown) => e instanceof ValidationError && e.field === 'runAs' && /no such user/.test(e.message));
});
