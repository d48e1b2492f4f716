// One way to make and sweep test namespaces: bare namespaces (bareNamespace) and labs are owned
// by their process through the same records, so Lab.sweep(prefix) removes those of a crashed
// process (killing, by pid, what runs inside) and of nobody, but never those of a live one; and
// the test runner's sweep (integration/helpers/sweep.ts) also removes an older run's `vmht-`
// leftovers only when their recorded pid is dead.
// The prefixes here (`vmhsw-`, `vmhsl-`) are outside the runner's `vmhl-`, so that a test run
// starting in parallel cannot sweep the crashed and orphaned namespaces before this test does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bareNamespace, Lab, LAB_OWNER_DIR } from '@vmhost/lab';
import { isAlive, netns } from '@vmhost/net';
import { sweepLegacy } from '../helpers/sweep.js';

const LAB_INDEX = new URL('../../packages/lab/src/index.ts', import.meta.url).pathname;

/** Deletes `names` after the test if they still exist (the sweep under test should have). */
function cleanup(t: { after(fn: () => Promise<void>): void }, names: string[]): void {
  t.after(async () => {
    for (const n of names) if (await netns.exists(n)) await netns.delete(n).catch(() => undefined);
  });
}

test('Lab.sweep removes the bare namespace of a crashed process and an unrecorded one, kills what ran inside, keeps the live ones', async (t) => {
  const prefix = 'vmhsw-';
  // A child process makes a bare namespace with a process inside, reports them, and is SIGKILLed.
  const code = `
    import { bareNamespace } from ${JSON.stringify(LAB_INDEX)};
    import { netns } from '@vmhost/net';
    const ns = await bareNamespace({ prefix: ${JSON.stringify(prefix)}, tag: 'crash' });
    const s = netns.spawn(ns.name, 'sleep', ['600'], { stdio: 'ignore', detached: true });
    process.stdout.write(JSON.stringify({ name: ns.name, sleeper: s.pid }) + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const crashed = await new Promise<{ name: string; sleeper: number }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out));
    });
    child.once('exit', (c) => reject(new Error(`child exited ${String(c)}`)));
  });
  cleanup(t, [crashed.name]);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(await netns.exists(crashed.name), 'left behind by the crash');
  assert.ok(isAlive(crashed.sleeper), 'with a process inside');

  // Namespaces of this (live) process: a bare one, a reserved name that "someone" then creates, a lab.
  const live = await bareNamespace({ prefix, tag: 'live', test: t });
  const reserved = await bareNamespace({ prefix, tag: 'resv', create: false, test: t });
  await netns.add(reserved.name);
  const lab = await Lab.create({ prefix, namespaces: { a: {} }, sweep: false });
  t.after(() => lab.close());
  // And one without any owner record (made behind the kit's back).
  const orphan = `${prefix}000000-orphan`;
  cleanup(t, [orphan]);
  await netns.add(orphan);

  const removed = await Lab.sweep(prefix);
  assert.deepEqual(removed.sort(), [crashed.name, orphan].sort());
  assert.equal(await netns.exists(crashed.name), false);
  assert.ok(!existsSync(join(LAB_OWNER_DIR, crashed.name)), 'its owner record dropped');
  for (let i = 0; i < 200 && isAlive(crashed.sleeper); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(isAlive(crashed.sleeper), false, 'the process inside was killed');
  for (const n of [live.name, reserved.name, lab.ns('a')]) assert.ok(await netns.exists(n), `${n} kept`);
  assert.deepEqual(await Lab.sweep(prefix), [], 'a second sweep finds nothing');

  // remove() deletes what the reservation's owner created, and the record.
  await reserved.remove();
  assert.equal(await netns.exists(reserved.name), false);
  assert.ok(!existsSync(join(LAB_OWNER_DIR, reserved.name)));
});

test("the runner's sweep of older runs' namespaces: one goes only when its recorded pid is dead", async (t) => {
  const dead = spawn('true');
  const deadPid = dead.pid!;
  await new Promise((r) => dead.once('exit', r));
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-legacy-owners-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = `vmhsl-${Math.random().toString(16).slice(2, 8)}-`;
  const [gone, kept, unrecorded] = ['dead', 'live', 'none'].map((w) => `${prefix}${w}`) as [string, string, string];
  cleanup(t, [gone, kept, unrecorded]);
  for (const n of [gone, kept, unrecorded]) await netns.add(n);
  writeFileSync(join(dir, gone), `${deadPid}\n`);
  writeFileSync(join(dir, kept), `${process.pid}\n`);

  assert.deepEqual(await sweepLegacy(prefix, dir), [gone]);
  assert.equal(await netns.exists(gone), false);
  assert.ok(!existsSync(join(dir, gone)), 'its record dropped');
  assert.ok(await netns.exists(kept), 'its recorded pid lives');
  assert.ok(await netns.exists(unrecorded), 'no record: left for its (older) owner');
});
