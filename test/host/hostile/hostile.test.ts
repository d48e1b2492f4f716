// Every hostile host file of generate.ts, written to a temporary directory and read with
// loadHostFile (the CLI's way: bounded read, UTF-8, YAML or JSON by extension): each is refused
// with a HostSpecError (code EVALIDATION) one of whose problems names the expected field path;
// nothing else is thrown (no RangeError, no TypeError, no crash). Prints counts per class and the
// time taken (no timed assertion).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostSpecError } from '../../../packages/host/src/errors.js';
import { loadHostFile } from '../../../packages/host/src/spec/load.js';
import { baseHost, hostileCases, writeCases } from './generate.js';
import { stringify } from 'yaml';
import { writeFileSync } from 'node:fs';

test('the base of the hostile files is a valid host file (so each case fails for its one change)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-hostile-'));
  try {
    writeFileSync(join(dir, 'base.yaml'), stringify(baseHost()));
    writeFileSync(join(dir, 'base.json'), JSON.stringify(baseHost()));
    assert.equal((await loadHostFile(join(dir, 'base.yaml'))).vms.length, 2);
    assert.equal((await loadHostFile(join(dir, 'base.json'))).name, 'hostile');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every hostile host file is refused with a HostSpecError naming the expected path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-hostile-'));
  const byClass = new Map<string, number>();
  const t0 = performance.now();
  try {
    const cases = writeCases(dir, hostileCases());
    assert.ok(cases.length >= 200, `${cases.length} cases`);
    for (const c of cases) {
      let err: unknown;
      try {
        await loadHostFile(c.file);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof HostSpecError, `${c.name}: expected a HostSpecError, got ${err instanceof Error ? `${err.name}: ${err.message.slice(0, 300)}` : String(err)}`);
      assert.equal(err.code, 'EVALIDATION');
      assert.ok(
        err.problems.some((p) => p.path === c.path),
        `${c.name}: no problem at ${JSON.stringify(c.path)}; got ${JSON.stringify(err.problems.map((p) => [p.path, p.message.slice(0, 120)]))}`,
      );
      assert.ok(err.message.length < 20_000, `${c.name}: the message is ${err.message.length} characters`);
      byClass.set(c.cls, (byClass.get(c.cls) ?? 0) + 1);
    }
    const ms = performance.now() - t0;
    console.log(`hostile: ${cases.length} files refused in ${ms.toFixed(0)} ms (${[...byClass].map(([k, n]) => `${k} ${n}`).join(', ')})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');
});
