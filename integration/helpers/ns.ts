// Fresh network namespaces for integration tests, always removed afterwards.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { netns } from '@vmhost/net';

/** Every namespace a test makes starts with this; leftovers are swept at the next run. */
export const TEST_PREFIX = 'vmht-';

/** A unique namespace name with the test prefix, e.g. `vmht-link-3fa9c1`. */
export function uniqueName(tag: string): string {
  return `${TEST_PREFIX}${tag}-${randomBytes(3).toString('hex')}`;
}

/**
 * Each test namespace is recorded here with the pid of the process that made it, so that the
 * sweep of a later run removes only namespaces whose creator is gone (and never those of a test
 * run going on in parallel).
 */
export const OWNER_DIR = '/run/vmhost-tests';

/** Records this process as the owner of the test namespace `name`. */
export function recordOwner(name: string): void {
  mkdirSync(OWNER_DIR, { recursive: true });
  writeFileSync(join(OWNER_DIR, name), `${process.pid}\n`);
}

/** The pid recorded as owner of `name`, if any. */
export function ownerOf(name: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(OWNER_DIR, name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (a zombie counts as dead): @vmhost/kvm's. */
export { isAlive } from '@vmhost/kvm';

/**
 * Creates a fresh namespace and registers its removal (and the killing, by pid, of processes left
 * inside it) with `t.after`, so it goes also when the test fails.
 */
export async function freshNetns(t: TestContext, tag: string): Promise<string> {
  const name = uniqueName(tag);
  recordOwner(name);
  await netns.add(name);
  t.after(() => removeNetns(name));
  return name;
}

/** Kills what runs inside `name` (by pid) and deletes the namespace; ignores a missing one. */
export async function removeNetns(name: string): Promise<void> {
  if (!(await netns.exists(name))) return;
  for (const pid of await netns.pids(name).catch(() => [] as number[])) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await netns.delete(name);
  rmSync(join(OWNER_DIR, name), { force: true });
}

/** Runs a command inside `name` and returns its stdout; throws with stderr on a non-zero exit. */
export async function sh(name: string, cmd: string, args: string[], input?: string): Promise<string> {
  const r = await netns.run(name, cmd, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${name}) exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `ip -j ARGS` inside `name`, parsed: the independent oracle. */
export async function ipJson<T = unknown>(name: string, args: string[]): Promise<T> {
  const out = await sh(name, 'ip', ['-j', ...args]);
  return JSON.parse(out.trim() || '[]') as T;
}
