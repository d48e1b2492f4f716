// Removes what a crashed earlier test run left behind: network namespaces whose name starts with
// the test prefix, after killing (by pid) the processes still running inside them. Run by
// scripts/run-tests.mjs before the integration tests start.
import { netns } from '@vmhost/net';
import { TEST_PREFIX } from './ns.js';

export async function sweep(prefix = TEST_PREFIX): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await netns.list()) {
    if (!name.startsWith(prefix)) continue;
    for (const pid of await netns.pids(name).catch(() => [] as number[])) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await netns.delete(name).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const removed = await sweep();
  if (removed.length) console.error(`sweep: removed leftover namespaces ${removed.join(' ')}`);
}
