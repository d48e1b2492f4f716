// Vm.start against a stand-in for QEMU (no privilege, no real QEMU): a QEMU that fails during
// start closes its QMP socket a moment before it exits; the start error must still carry the exit
// code and what it wrote to stderr, and nothing may be left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, VmStartError } from '@vmhost/kvm';

/** An executable that listens on the QMP socket of its -chardev argument, drops the first client, then exits 1 after `delayMs`. */
function fakeQemu(dir: string, delayMs: number): string {
  const file = join(dir, 'qemu-system-fake');
  writeFileSync(
    file,
    `#!${process.execPath}
const net = require('node:net');
const spec = process.argv[process.argv.indexOf('-chardev') + 1];
const path = /path=([^,]+)/.exec(spec)[1];
const server = net.createServer((c) => {
  process.stderr.write('qemu-system-fake: Could not open missing.qcow2: No such file or directory\\n');
  c.destroy();
  server.close();
  setTimeout(() => process.exit(1), ${delayMs});
});
server.listen(path);
`,
  );
  chmodSync(file, 0o755);
  return file;
}

test('QMP closes before QEMU exits: the start error still has the exit code and stderr; nothing left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-fakeqemu-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const vm = new Vm({ name: 'fake', runDir: join(dir, 'run'), accel: 'tcg', qemuBinary: fakeQemu(dir, 300), memoryMiB: 64 });
  await assert.rejects(vm.start({ timeoutMs: 10_000 }), (e: unknown) => {
    assert.ok(e instanceof VmStartError, String(e));
    assert.equal(e.exitCode, 1, e.message);
    assert.match(e.stderr, /missing\.qcow2/);
    assert.match(e.message, /exited during start/);
    return true;
  });
  assert.equal(vm.running, false);
  assert.equal(existsSync(vm.files.qmp), false);
  assert.equal(existsSync(vm.files.pidfile), false);
});
