// Removes what a crashed earlier test run left behind: network namespaces whose name starts with
// the test prefix and whose creating process is gone, after killing (by pid) the processes still
// running inside them. Namespaces of a test process that is still alive (a run going on in
// parallel) are left alone. Run by scripts/run-tests.mjs before the integration tests start.
// Tests built on the lab kit (@vmhost/lab's Lab) name their namespaces with LAB_TEST_PREFIX
// (e.g. `vmhl-t-…`, `vmhl-fw-…`); their leftovers are removed by Lab.sweep with that prefix.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { isAlive, OWNER_DIR, ownerOf, TEST_PREFIX } from './ns.js';

export async function sweep(prefix = TEST_PREFIX): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await netns.list()) {
    if (!name.startsWith(prefix)) continue;
    const owner = ownerOf(name);
    if (owner !== undefined && isAlive(owner)) continue;
    for (const pid of await netns.pids(name).catch(() => [] as number[])) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await netns.delete(name).catch(() => undefined);
    rmSync(join(OWNER_DIR, name), { force: true });
    removed.push(name);
  }
  // Owner records of namespaces that no longer exist and whose owner is gone (a live owner may be
  // between recording and creating its namespace).
  let records: string[] = [];
  try {
    records = readdirSync(OWNER_DIR);
  } catch {
    /* none yet */
  }
  const present = new Set(await netns.list());
  for (const r of records) {
    const owner = ownerOf(r);
    if (!present.has(r) && (owner === undefined || !isAlive(owner))) rmSync(join(OWNER_DIR, r), { force: true });
  }
  return removed;
}

/** The prefix of every lab namespace the integration tests make (a prefix of each test's own). */
export const LAB_TEST_PREFIX = 'vmhl-';

if (import.meta.url === `file://${process.argv[1]}`) {
  const removed = [...(await sweep()), ...(await Lab.sweep(LAB_TEST_PREFIX))];
  if (removed.length) console.error(`sweep: removed leftover namespaces ${removed.join(' ')}`);
}
