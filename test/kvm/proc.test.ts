// /proc facts used to supervise QEMU and the host's services: state, parent, process group (also
// for a command name with spaces and parentheses), liveness, and the members of a process group.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupMembers, isAlive, procStat } from '@vmhost/kvm';

test('procStat: this process; undefined for a pid that does not exist', () => {
  const me = procStat(process.pid);
  assert.ok(me && /^[RS]$/.test(me.state), JSON.stringify(me));
  assert.equal(me.ppid, process.ppid);
  assert.equal(procStat(2 ** 22 + 1), undefined); // above pid_max's ceiling
  assert.equal(isAlive(2 ** 22 + 1), false);
});

test('procStat and groupMembers: a detached child leads its own group, also with a command name like "a) b (c"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-proc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const odd = join(dir, 'a) b (c');
  symlinkSync('/bin/sleep', odd);
  const child = spawn(odd, ['30'], { detached: true, stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  t.after(() => child.kill('SIGKILL'));
  const pid = child.pid!;
  const st = procStat(pid);
  assert.deepEqual({ ppid: st?.ppid, pgid: st?.pgid }, { ppid: process.pid, pgid: pid });
  assert.deepEqual(groupMembers(pid), [pid]);
  assert.ok(!groupMembers(pid).includes(process.pid));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.deepEqual(groupMembers(pid), []);
  assert.equal(isAlive(pid), false);
});
