/**
 * Who owns a lab namespace, and the sweep of namespaces whose owner is gone.
 *
 * Before a namespace is made, `LAB_OWNER_DIR/NAME` is created (O_EXCL, so never through a
 * symlink) holding the owner record of this process (`PID STARTTIME`, @vmhost/net's owner
 * records). A namespace with a prefix whose owner is dead, or that has no record, cannot belong to
 * a live lab (the record comes first): {@link sweepNamespaces} kills what runs inside (SIGKILL, by
 * pid) and deletes it. Namespaces of a live process (a test run going on in parallel) are never
 * touched.
 * @module
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatOwnerRecord, isOwnerAlive, netns, parseOwnerRecord, sendSignal, terminate, ValidationError, VmhostError } from '@vmhost/net';

/**
 * Where each lab namespace is recorded with its creating process (`PID STARTTIME`), so that
 * {@link Lab.sweep} removes only namespaces whose creator is gone.
 */
export const LAB_OWNER_DIR = '/run/vmhost-labs';

/** Checks a name prefix of lab namespaces. */
export function validatePrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(prefix)) {
    throw new ValidationError('prefix', prefix, 'expected 1-32 characters from [A-Za-z0-9_.-], starting with a letter or digit');
  }
}

/** The owner directory, created if missing; refused when it is not a real directory of ours that only we can write. */
function ownerDir(): string {
  mkdirSync(LAB_OWNER_DIR, { recursive: true, mode: 0o755 });
  const st = lstatSync(LAB_OWNER_DIR);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (st.mode & 0o022) !== 0 || (uid !== undefined && st.uid !== uid)) {
    throw new VmhostError('ELAB_OWNER_DIR', `${LAB_OWNER_DIR} is not a directory owned by this user and writable by it alone: refusing to keep owner records there`);
  }
  return LAB_OWNER_DIR;
}

const recordPath = (name: string): string => join(LAB_OWNER_DIR, name);

/** Whether the process recorded as owner of the namespace `name` still runs (same pid and start time). */
export function ownerAlive(name: string): boolean {
  try {
    return isOwnerAlive(parseOwnerRecord(readFileSync(recordPath(name), 'utf8')));
  } catch {
    return false;
  }
}

/**
 * Records this process as the owner of the namespace `name` before it is made. Refuses (EEXIST)
 * when a live process owns that name already, or the namespace exists: a lab never takes over
 * another's namespace. A stale record (dead owner, no namespace) is replaced.
 */
export function claimOwner(name: string): void {
  const path = join(ownerDir(), name);
  try {
    writeFileSync(path, formatOwnerRecord(), { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST') || ownerAlive(name) || existsSync(join(netns.NETNS_RUN_DIR, name))) throw err;
    rmSync(path, { force: true });
    writeFileSync(path, formatOwnerRecord(), { flag: 'wx', mode: 0o644 });
  }
}

/** Drops the owner record of `name`. */
export function releaseOwner(name: string): void {
  rmSync(recordPath(name), { force: true });
}

/** Pids whose network namespace is the named one (synchronous; usable in an 'exit' handler); [] when it is gone. */
export function pidsInSync(name: string): number[] {
  try {
    return netns.pidsSync({ path: join(netns.NETNS_RUN_DIR, name) }).filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}

/**
 * Synchronous best-effort removal (for a process 'exit' hook): SIGKILL to what runs inside, the
 * namespace unmounted and deleted (netns.delete does its syscalls before its promise), the owner
 * record dropped. Waits for nothing.
 */
export function removeNamespaceSync(name: string): void {
  for (const p of pidsInSync(name)) sendSignal(p, 'SIGKILL');
  netns.delete(name).catch(() => undefined);
  releaseOwner(name);
}

/** Kills (SIGKILL, by pid) every process in the namespace until none is left (bounded). */
async function emptyNamespace(name: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const pids = pidsInSync(name);
    if (pids.length === 0) return;
    await Promise.all(pids.map((p) => terminate(p, { signal: 'SIGKILL', waitMs: 2_000 })));
  }
  const left = pidsInSync(name);
  if (left.length) throw new VmhostError('ELAB_SURVIVOR', `processes ${left.join(' ')} survive SIGKILL in namespace '${name}'`);
}

/** Empties and deletes a namespace and drops its owner record; deletes it even if a process survives. */
export async function removeNamespace(name: string): Promise<void> {
  let survivor: unknown;
  try {
    await emptyNamespace(name);
  } catch (err) {
    survivor = err;
  }
  if (await netns.exists(name)) await netns.delete(name);
  releaseOwner(name);
  if (survivor !== undefined) throw survivor;
}

/**
 * Removes leftover namespaces: those whose name starts with `prefix` and whose owner is gone (or
 * was never recorded), after killing what runs inside; then drops records of dead owners whose
 * namespace is gone. Returns the names removed.
 */
export async function sweepNamespaces(prefix: string): Promise<string[]> {
  validatePrefix(prefix);
  const removed: string[] = [];
  for (const name of await netns.list()) {
    if (!name.startsWith(prefix) || ownerAlive(name)) continue;
    try {
      await removeNamespace(name);
      removed.push(name);
    } catch {
      /* try again at the next sweep */
    }
  }
  let records: string[] = [];
  try {
    records = readdirSync(LAB_OWNER_DIR);
  } catch {
    /* none yet */
  }
  const present = new Set(await netns.list());
  for (const r of records) {
    // a live owner may be between recording and creating its namespace
    if (r.startsWith(prefix) && !present.has(r) && !ownerAlive(r)) releaseOwner(r);
  }
  return removed;
}
