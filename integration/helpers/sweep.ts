// Removes what a crashed earlier test run left behind, before the integration tests start (run
// by scripts/run-tests.mjs): every namespace of the tests is made with the lab kit (@vmhost/lab)
// under one prefix, so one sweep does it: namespaces whose owner process is gone (or
// that have no owner record) are removed after killing, by pid, what runs inside them. Those of a
// live process — a test run going on in parallel — are left alone.
//
// Until every branch has moved to the lab kit, runs of older code make `vmht-` namespaces
// recorded as a bare pid in /run/vmhost-tests: those are swept here only when that recorded pid
// is dead (never when there is no record, which a live older run may be about to write).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { isAlive, netns, terminate } from '@vmhost/net';
import { TEST_PREFIX } from './ns.js';

const LEGACY_PREFIX = 'vmht-';
const LEGACY_OWNER_DIR = '/run/vmhost-tests';

/** The older runs' leftovers: `prefix` namespaces whose pid recorded in `dir` is dead. */
export async function sweepLegacy(prefix = LEGACY_PREFIX, dir = LEGACY_OWNER_DIR): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await netns.list()) {
    if (!name.startsWith(prefix)) continue;
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, name), 'utf8').trim());
    } catch {
      continue; // no record: cannot tell
    }
    if (!Number.isSafeInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    for (const p of await netns.pids(name).catch(() => [] as number[])) {
      if (p !== process.pid) await terminate(p, { signal: 'SIGKILL', waitMs: 2_000 });
    }
    await netns.delete(name).catch(() => undefined);
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Sweeps the tests' prefix (and the older runs' `vmht-`); returns the names removed. */
export async function sweep(): Promise<string[]> {
  return [...(await Lab.sweep(TEST_PREFIX)), ...(await sweepLegacy())];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const removed = await sweep();
  if (removed.length) console.error(`sweep: removed leftover namespaces ${removed.join(' ')}`);
}
