// Runs the ```ts examples of packages/host/README.md that act on a live host (`// example: NAME`)
// as their own Node process against the sources: `disks` (snapshot, rollback, commit of a running
// test guest's disk).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { readmeExamples } from '../helpers/readme.js';
import { checkDisksExample, disksExampleEnv } from '../helpers/readme-disks.js';

const root = resolve(new URL('../..', import.meta.url).pathname);

test('README example disks: a live snapshot, a rollback and a commit of a running VM', async (t) => {
  const code = readmeExamples('host').find((e) => e.name === 'disks')?.code;
  assert.ok(code, 'README example disks');
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-readme-host-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = await disksExampleEnv(t, dir, 'rdisk');
  const file = join(dir, 'disks.mts'); // .mts: ESM (top-level await) outside the workspace
  writeFileSync(file, code.replaceAll("from '@vmhost/host'", `from '${join(root, 'packages/host/src/index.ts')}'`));
  const r = await promisify(execFile)(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', file], { cwd: root, env: { ...process.env, ...env }, timeout: 300_000 });
  checkDisksExample(r.stdout);
});
