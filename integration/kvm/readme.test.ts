// Runs every example of packages/kvm/README.md (the ```ts blocks starting with "// example: NAME")
// as its own Node process, and checks what it prints.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { test, type TestContext } from 'node:test';
import { freshNetns } from '../helpers/ns.js';
import { readmeExamples } from '../helpers/readme.js';
import { killPid, runDir } from './helpers.js';

const root = resolve(new URL('../..', import.meta.url).pathname);

function examples(): Map<string, string> {
  return new Map(readmeExamples('kvm').map((e) => [e.name, e.code]));
}

/** Runs one example with the package imports pointed at the sources; returns its stdout. */
async function runExample(t: TestContext, name: string, env: Record<string, string>): Promise<string> {
  const code = examples().get(name);
  assert.ok(code, `README example ${name}`);
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-readme-src-'));
  t.after(() => import('node:fs').then((fs) => fs.rmSync(dir, { recursive: true, force: true })));
  const file = join(dir, `${name}.mts`); // .mts: ESM (top-level await) outside the workspace
  writeFileSync(
    file,
    code
      .replaceAll("from '@vmhost/kvm'", `from '${join(root, 'packages/kvm/src/index.ts')}'`)
      .replaceAll("from '@vmhost/net'", `from '${join(root, 'packages/net/src/index.ts')}'`),
  );
  try {
    const r = await promisify(execFile)(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, ...env },
      timeout: 300_000,
    });
    return r.stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`README example ${name} failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

/** Kills a QEMU an example left behind (it should not), found by its pidfile. */
function reapFrom(t: TestContext, pidfile: string): void {
  t.after(() => {
    try {
      killPid(Number(readFileSync(pidfile, 'utf8').trim()) || undefined);
    } catch {
      /* none */
    }
  });
}

test('the README lists the examples this test runs', () => {
  assert.deepEqual([...examples().keys()], ['boot', 'disk', 'tap-fd', 'unprivileged', 'proc']);
});

test('README example: boot, QMP, events, stop by the ladder', async (t) => {
  const dir = runDir(t, 'readme-boot');
  reapFrom(t, join(dir, 'qemu.pid'));
  const out = await runExample(t, 'boot', { RUN_DIR: dir });
  assert.match(out, /^accel tcg - \/dev\/kvm is PVM/m);
  assert.match(out, /^args -name guest=readme -machine q35,accel=tcg$/m);
  assert.match(out, /^status running true$/m);
  assert.match(out, /^hmp VM status: running$/m);
  assert.match(out, /^events STOP RESUME$/m);
  assert.match(out, /^raw \{ name: 'readme' \}$/m);
  assert.match(out, /^shutdown by guest true$/m);
  assert.match(out, /^stopped by powerdown exit code 0$/m);
});

test('README example: overlay, live snapshot, commit, rollback', async (t) => {
  const dir = runDir(t, 'readme-disk');
  reapFrom(t, join(dir, 'run/qemu.pid'));
  const out = await runExample(t, 'disk', { RUN_DIR: dir });
  assert.match(out, /^frozen true$/m);
  assert.match(out, /^chain upgrade\.qcow2 <- root\.qcow2 <- base\.qcow2$/m);
  assert.match(out, /^committed into true$/m);
  assert.match(out, /^rolled back to true next start uses true$/m);
});

test('README example: NIC by TAP fd in a namespace', async (t) => {
  const ns = await freshNetns(t, 'readme');
  const dir = runDir(t, 'readme-web');
  reapFrom(t, join(dir, 'qemu.pid'));
  const out = await runExample(t, 'tap-fd', { RUN_DIR: dir, NETNS: ns });
  assert.match(out, /^mac [0-9a-f]{2}(:[0-9a-f]{2}){5}$/m);
  assert.match(out, /^\\ net0: index=0,type=tap,fd=3$/m); // HMP draws the tree with a backslash
  assert.match(out, /^stopped by quit$/m);
});

test('README example: unprivileged QEMU in a sandbox', async (t) => {
  const dir = runDir(t, 'readme-jail');
  reapFrom(t, join(dir, 'qemu.pid'));
  const out = await runExample(t, 'unprivileged', { RUN_DIR: dir });
  assert.match(out, /^-runas nobody -sandbox on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny$/m);
  assert.match(out, /^uid 65534 seccomp 2$/m);
  assert.match(out, /^stopped by quit$/m);
});

test('README example: process facts from /proc', async (t) => {
  const out = await runExample(t, 'proc', {});
  assert.match(out, /^alive true parent true$/m);
});
