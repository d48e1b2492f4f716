// The API reference builds and every public export is documented: scripts/docs.mjs --check runs
// TypeDoc's conversion and validation (notDocumented, notExported, invalidLink; warnings are
// errors) without writing HTML. Time-boxed: TypeDoc takes ~15 s on a quiet machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

test('TypeDoc: every public export documented, every link resolved', async () => {
  const child = spawn(process.execPath, [join(root, 'scripts/docs.mjs'), '--check'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  clearTimeout(timer);
  assert.equal(code, 0, `scripts/docs.mjs --check failed (or ran over 300 s):\n${out}`);
  assert.match(out, /^docs: \d+ exports .* in 5 packages/m);
});
