// Runs every ```ts block of packages/net/README.md, each in its own fresh namespace (the name
// 'lab' and 'lab-peer' in the block are replaced by names reserved for this test), and checks it exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { reserveNetns } from '../helpers/ns.js';
import { readmeExamples, withNames } from '../helpers/readme.js';

const root = new URL('../../', import.meta.url).pathname;
const blocks = readmeExamples('net').map((e) => e.code);

test('the README has runnable examples', () => {
  assert.ok(blocks.length >= 5, `found ${blocks.length} ts blocks`);
});

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, async (t) => {
    // The example creates (and deletes) these itself; the reservations keep sweeps away meanwhile.
    const ns = await reserveNetns(t, `readme${i}`);
    const peer = await reserveNetns(t, `readme${i}-peer`);
    // A directory inside the repo, so that '@vmhost/net' resolves through node_modules.
    const dir = mkdtempSync(join(root, 'integration/net/.readme-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, `example${i + 1}.ts`);
    writeFileSync(file, withNames(code, { netns: ns, peer }));
    const child = await import('node:child_process').then(({ spawn }) =>
      spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const r = await netns.collect(child, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `example ${i + 1} failed:\n${r.stderr}\n${r.stdout}`);
    assert.ok(!(await netns.exists(ns)), 'the example removed its namespace');
  });
});
