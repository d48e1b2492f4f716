// Runs every ```ts block of packages/lab/README.md as its own Node process, with the example's
// prefix `myapp-test-` replaced by one the test runner sweeps, and checks that it exits 0, prints
// what the comments say, and leaves no namespace behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { TEST_PREFIX } from '../helpers/ns.js';
import { readmeExamples, withNames } from '../helpers/readme.js';

const root = new URL('../../', import.meta.url).pathname;
const blocks = readmeExamples('lab').map((e) => e.code);

test('the README has its two examples', () => {
  assert.equal(blocks.length, 2);
});

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs and cleans up`, async (t) => {
    const prefix = `${TEST_PREFIX}readme${i}-`;
    // A directory inside the repo, so that '@vmhost/lab' resolves through node_modules.
    const dir = mkdtempSync(join(root, 'integration/lab/.readme-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, `example${i + 1}.ts`);
    writeFileSync(file, withNames(code, { prefix }));
    const child = await import('node:child_process').then(({ spawn }) =>
      spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const r = await netns.collect(child, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `example ${i + 1} failed:\n${r.stderr}\n${r.stdout}`);
    const lines = r.stdout.trim().split('\n');
    if (i === 0) {
      assert.match(lines[0]!, new RegExp(`^${prefix}[0-9a-f]{6}-server$`));
      assert.equal(lines[1], '0', 'ping over IPv6 across the router');
      assert.equal(lines.at(-1), '0', 'ping from the added namespace');
    } else {
      assert.deepEqual(lines, ['lo br0']);
    }
    assert.deepEqual((await netns.list()).filter((n) => n.startsWith(prefix)), [], 'nothing left');
  });
});
