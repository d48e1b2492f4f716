// The public API of every package (the workspaces) must match its reviewed report in api/:
// a change of exports fails here until `npm run api` has written the report and it is committed.
// scripts/api.mjs builds the declarations first (tsc -b, incremental) and runs API Extractor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('each package\'s public API matches api/<package>.api.md (API Extractor)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const r = spawnSync(process.execPath, ['scripts/api.mjs'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /package reports up to date/);
});
