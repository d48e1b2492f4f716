// qemu.user: the host file's field, and the ids `auto` chooses (a stable, unused uid/gid of
// systemd's dynamic range per host), checked against passwd/group files written here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { autoQemuId, qemuIds, QEMU_ID_RANGE, usedIds } from '../../packages/host/src/engine/qemu-user.js';
import { vmOptions } from '../../packages/host/src/engine/desired.js';
import { HostSpecError } from '../../packages/host/src/errors.js';
import { resolveSpec } from '../../packages/host/src/spec/resolve.js';

const [FIRST, LAST] = QEMU_ID_RANGE;

function files(t: { after(fn: () => void): void }, passwd: string, group: string): { passwd: string; group: string; dynamicUids: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-qemu-user-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'passwd'), passwd);
  writeFileSync(join(dir, 'group'), group);
  mkdirSync(join(dir, 'dynamic'));
  return { passwd: join(dir, 'passwd'), group: join(dir, 'group'), dynamicUids: join(dir, 'dynamic') };
}

test('auto: a stable id of 61184-65519 per host, the same for uid and gid, not 65534', (t) => {
  const f = files(t, 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n', 'root:x:0:\nnogroup:x:65534:\n');
  const a = qemuIds('auto', 'lab', f)!;
  assert.ok(a.uid >= FIRST && a.uid <= LAST, `${a.uid} in the range`);
  assert.equal(a.gid, a.uid);
  assert.notEqual(a.uid, 65534);
  assert.deepEqual(qemuIds('auto', 'lab', f), a, 'the same on every call');
  // other hosts start elsewhere in the range
  const others = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((n) => qemuIds('auto', n, f)!.uid));
  assert.ok(others.size >= 7, `different hosts get different ids (${[...others].join(', ')})`);
});

test('auto: an id /etc/passwd, /etc/group or a systemd dynamic user has is skipped (the next one up, wrapping)', (t) => {
  const free = autoQemuId('lab', []);
  const f = files(t, `svc:x:${free}:100::/:/bin/false\n`, '');
  assert.equal(qemuIds('auto', 'lab', f)!.uid, free === LAST ? FIRST : free + 1, 'a uid in passwd is skipped');
  const g = files(t, '', `grp:x:${free}:\n`);
  assert.equal(qemuIds('auto', 'lab', g)!.uid, free === LAST ? FIRST : free + 1, 'a gid in group is skipped');
  const d = files(t, '', '');
  writeFileSync(join(d.dynamicUids, String(free)), '');
  assert.equal(qemuIds('auto', 'lab', d)!.uid, free === LAST ? FIRST : free + 1, 'a systemd dynamic user is skipped');
  // wrapping at the end of the range
  if (free !== FIRST) assert.equal(autoQemuId('lab', [new Set(Array.from({ length: LAST - free + 1 }, (_, k) => free + k))]), FIRST);
  // a full range is refused
  const all = new Set(Array.from({ length: LAST - FIRST + 1 }, (_, k) => FIRST + k));
  assert.throws(() => autoQemuId('lab', [all]), (e: unknown) => e instanceof ValidationError && e.field === 'qemu.user' && /61184-65519/.test(e.message));
});

test('usedIds reads the third field of passwd and group lines, skipping malformed ones', () => {
  assert.deepEqual([...usedIds('a:x:1:2::/:/bin/sh\n# comment\nb:x:notanumber:3\n\nc:x:61200:5::/:\n')], [1, 61200]);
});

test('root keeps root; a user name is looked up (uid 0 and unknown names refused); UID:GID is taken as it is', (t) => {
  const f = files(t, 'root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nqemu:x:64055:64055::/:/bin/false\n', '');
  assert.equal(qemuIds('root', 'lab', f), undefined);
  assert.deepEqual(qemuIds({ user: 'qemu' }, 'lab', f), { uid: 64055, gid: 64055 });
  assert.deepEqual(qemuIds({ uid: 1234, gid: 5678 }, 'lab', f), { uid: 1234, gid: 5678 });
  assert.throws(() => qemuIds({ user: 'toor' }, 'lab', f), (e: unknown) => e instanceof ValidationError && e.field === 'qemu.user' && /uid 0/.test(e.message));
  assert.throws(() => qemuIds({ user: 'ghost' }, 'lab', f), (e: unknown) => e instanceof ValidationError && e.field === 'qemu.user' && /no such user/.test(e.message));
});

const HOST = { uplink: 'eth0', bridge: { name: 'br0', ipv4: '192.168.0.1/24' }, vms: [{ name: 'web', ipv4: '192.168.0.10', kernel: '/boot/vmlinuz' }] };

test('the host file: qemu.user defaults to auto; root, names and UID:GID resolve; anything else is refused naming the field', () => {
  assert.deepEqual(resolveSpec(HOST, '/').qemu, { user: 'auto' });
  assert.deepEqual(resolveSpec({ ...HOST, qemu: {} }, '/').qemu, { user: 'auto' });
  assert.deepEqual(resolveSpec({ ...HOST, qemu: { user: 'root' } }, '/').qemu, { user: 'root' });
  assert.deepEqual(resolveSpec({ ...HOST, qemu: { user: 'libvirt-qemu' } }, '/').qemu, { user: { user: 'libvirt-qemu' } });
  assert.deepEqual(resolveSpec({ ...HOST, qemu: { user: '61300:61301' } }, '/').qemu, { user: { uid: 61300, gid: 61301 } });
  for (const bad of ['0:0', '-1', 'Root', 'a b', '1:', ':1', 'x'.repeat(40), 5, '99999999999:1']) {
    assert.throws(() => resolveSpec({ ...HOST, qemu: { user: bad } }, '/'), (e: unknown) => e instanceof HostSpecError && e.problems.some((p) => p.path === 'qemu.user'), String(bad));
  }
  assert.throws(() => resolveSpec({ ...HOST, qemu: { users: 'root' } }, '/'), (e: unknown) => e instanceof HostSpecError && e.problems.some((p) => p.path.startsWith('qemu')));
});

test('vmOptions: runAs UID:GID with the ids, none without', () => {
  const host = resolveSpec(HOST, '/');
  assert.deepEqual(vmOptions(host.vms[0]!, { dir: '/run/x', runAs: { uid: 61500, gid: 61500 } }).runAs, { uid: 61500, gid: 61500 });
  assert.equal(vmOptions(host.vms[0]!, { dir: '/run/x' }).runAs, undefined);
});
