// Attach after a restart of the Node process: one Node process starts the VM and exits, this one
// re-attaches through the run dir, controls it over QMP and stops it through the ladder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { isAlive, Vm, VmAlreadyRunningError, VmError } from '@vmhost/kvm';
import { guest, guestVmOptions, killPid, runDir, waitForConsole } from './helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/start-and-leave.ts', import.meta.url));

test('a VM started by a process that has exited is re-attached, refused a second start, and stopped', async (t) => {
  const dir = runDir(t, 'kvmattach');
  const opts = guestVmOptions('attach', dir);
  const out = await promisify(execFile)(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', fixture, JSON.stringify(opts)], { timeout: 180_000 });
  const { pid } = JSON.parse(out.stdout.trim()) as { pid: number };
  t.after(() => killPid(pid));
  assert.ok(isAlive(pid), 'QEMU outlived the Node process that started it');

  await assert.rejects(new Vm(opts).start(), (e: unknown) => e instanceof VmAlreadyRunningError && e.pid === pid);

  const vm = await Vm.attach(opts.runDir);
  assert.equal(vm.pid, pid);
  assert.equal(vm.name, 'attach');
  assert.deepEqual(await vm.status(), { running: true, pid, status: 'running' });
  assert.deepEqual(vm.args(), new Vm(opts).args());

  await waitForConsole(opts.console!.file, guest().markers.ready, 180_000, () => vm.running);
  const r = await vm.stop({ timeoutMs: 60_000 });
  assert.equal(r.step, 'powerdown');
  assert.equal(isAlive(pid), false);
  assert.equal(existsSync(vm.files.state), false);
  await assert.rejects(Vm.attach(opts.runDir), (e: unknown) => e instanceof VmError && e.code === 'EVM_NOT_RUNNING');
});
