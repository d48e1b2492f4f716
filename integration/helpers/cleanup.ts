// A test's clean-up as one after-hook, in the one order that works. Node runs after-hooks in the
// order they were registered, so a down registered after the lab's close would run in a namespace
// already gone (failing quietly, and leaving the namespace's shared record under /run/vmhost).
import type { TestContext } from 'node:test';
import { rmSync } from 'node:fs';
import { isAlive } from '@vmhost/net';

/**
 * When `t` ends: the test's down (given to `downFirst`, once there is something to take down; its
 * failure is ignored: the lab's close ends what it would have stopped), then the lab's close (what
 * runs in its namespaces is killed), then `paths` removed (state and work directories, which hold
 * nothing real any more).
 */
export function cleanUp(t: TestContext, lab: { close(): Promise<unknown> }, ...paths: string[]): { downFirst(fn: () => Promise<unknown>): void } {
  let first: (() => Promise<unknown>) | undefined;
  t.after(async () => {
    await first?.().catch(() => undefined);
    await lab.close();
    for (const p of paths) rmSync(p, { recursive: true, force: true });
  });
  return { downFirst: (fn) => void (first = fn) };
}

/** kill -9 of `pid` (a process of the test's own), then waits until it is no live process (a zombie re-parented to init counts as gone). */
export async function killAndWait(pid: number, what = `process ${pid}`, ms = 10_000): Promise<void> {
  process.kill(pid, 'SIGKILL');
  const deadline = performance.now() + ms;
  while (isAlive(pid)) {
    if (performance.now() > deadline) throw new Error(`${what} survived SIGKILL`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
