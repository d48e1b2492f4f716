import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { OWNER_DIR, recordOwner, removeNetns, uniqueName } from '../helpers/ns.js';
import { sweep } from '../helpers/sweep.js';

test('the sweep removes test namespaces of dead creators (and kills what runs inside) but keeps those of live ones', async (t) => {
  // A creator that has exited: its pid is recorded, then it is gone.
  const dead = spawn('true');
  const deadPid = dead.pid as number;
  await new Promise((r) => dead.once('exit', r));

  const orphan = uniqueName('sweep-orphan');
  const alive = uniqueName('sweep-alive');
  t.after(() => Promise.all([removeNetns(orphan), removeNetns(alive)]));
  await netns.add(orphan);
  writeFileSync(join(OWNER_DIR, orphan), `${deadPid}\n`);
  await netns.add(alive);
  recordOwner(alive); // this process: alive

  const sleeper = netns.spawn(orphan, 'sleep', ['60']);
  await new Promise((r) => sleeper.once('spawn', r));
  const exited = new Promise((r) => sleeper.once('exit', (_c, sig) => r(sig)));

  const removed = await sweep();
  assert.ok(removed.includes(orphan), `removed ${removed.join(' ')}`);
  assert.ok(!removed.includes(alive));
  assert.equal(await exited, 'SIGKILL');
  const names = await netns.list();
  assert.ok(!names.includes(orphan));
  assert.ok(names.includes(alive));
});
