/**
 * The shared record of a network namespace: what the hosts (owners) applied in one namespace
 * share, kept in one file under a lock (docs/host-owners.md).
 *
 * - `owners`: every host that applied in the namespace, by its state directory (real path) and
 *   name: how one host finds what another one recorded (an address on the shared uplink, an
 *   adopted bridge; owners.ts).
 * - `settings`: the namespace-wide sysctls vmhost sets (`net.ipv4.ip_forward`,
 *   `net.ipv6.conf.all.forwarding`, the uplink's `accept_ra` and `proxy_ndp`), each with the value
 *   set, the value it had before the first holder set it (`original`) and its holders. The first
 *   holder saves the original; the last one to leave puts it back; the others leave it alone.
 *
 * An owner is alive while its state file exists (or, before its first write, while a live process
 * holds its state directory's lock); a holder while its state file records the setting (or cannot
 * be read: then it is kept, since a setting wrongly put back cuts a host's traffic). Every change under the lock first drops the owners and holders that are not alive
 * (a crashed host whose state directory is gone), and puts back the original of a setting that
 * no live holder is left for: a crash of one holder never strands the others, and never leaves
 * them without the setting.
 *
 * The record lives in `<namespace root>/.shared/shared.json` ({@link sharedDirFor}), keyed by the
 * namespace as the default state directories are (`/run/vmhost/.shared`,
 * `/run/vmhost/<netns>/.shared`, `/run/vmhost/nsfs/<dev>-<inode>/.shared`), whatever state
 * directory a host uses; the directory is checked and made as a state directory is (state-dir.ts),
 * the file read strictly, 0600, never through a symlink. The lock (`shared.lock`, the holder's
 * pid) is held for the few milliseconds of one change; others wait for it.
 * @module
 */
import { lstatSync, renameSync, rmSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { isAlive, type NetnsRef } from '@vmhost/net';
import { HostBusyError, HostOwnerError, HostStateError } from '../errors.js';
import { HOST_NAME_RE } from '../spec/schema.js';
import { namespaceRoot, removeIfEmptyUnderNamespace, type Ctx } from './context.js';
import { isVmhostSysctl, type StateFile } from './records.js';
import { checkStateDir, lockFile, readPrivateFile, writePrivateFile } from './state-dir.js';
import { emptyState, readState } from './state.js';

/** The version of the shared record this module reads and writes. */
export const SHARED_VERSION = 1;
/** The largest shared record read. */
export const MAX_SHARED_BYTES = 1024 * 1024;
/** At most this many hosts in one namespace's record. */
export const MAX_OWNERS = 1024;
/** How long a change waits for another host's lock (held for milliseconds each time). */
const LOCK_WAIT_MS = 30_000;

/** One shared setting. */
export interface SharedSetting {
  /** The value its holders set. */
  value: string;
  /** Its value before the first holder set it: put back when the last one leaves. */
  original: string;
  /** The state directories of the hosts holding it, first holder first. */
  holders: string[];
}

/** The content of the shared record. */
export interface SharedRecord {
  version: 1;
  /** The hosts applied in the namespace: state directory (real path) → host name. */
  owners: Record<string, string>;
  /** The shared settings by sysctl key. */
  settings: Record<string, SharedSetting>;
}

/** The directory of the shared record of the namespace `netns` (see the module). */
export function sharedDirFor(netns: NetnsRef | undefined): string {
  return join(namespaceRoot(netns), '.shared');
}

const recordFile = (dir: string): string => join(dir, 'shared.json');

/** An empty record. */
export function emptyShared(): SharedRecord {
  return { version: SHARED_VERSION, owners: {}, settings: {} };
}

// ------------------------------------------------------------------------------- parsing

type Obj = Record<string, unknown>;

function obj(v: unknown, at: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at}: expected an object`);
  return v as Obj;
}

function exactly(o: Obj, at: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Error(`${at}: unknown field ${JSON.stringify(k)}`);
  for (const k of keys) if (!(k in o)) throw new Error(`${at}: missing field ${JSON.stringify(k)}`);
}

/** Whether `p` is a state directory as the record names one: absolute, normalised, printable. */
function isDirPath(p: string): boolean {
  return p.length <= 4095 && isAbsolute(p) && normalize(p) === p && !/[\0-\x1f\x7f]/.test(p) && (p === '/' || !p.endsWith('/'));
}

const VALUE = /^[0-9]{1,3}$/;

/**
 * Parses the shared record `file` strictly: exact shape, owners named by absolute state
 * directories and host names, settings only of the sysctls vmhost sets, holders among the owners.
 * @throws {HostStateError} `EHOST_STATE_CORRUPT` naming the file and the problem.
 */
export function parseShared(text: string, file: string): SharedRecord {
  try {
    const top = obj(JSON.parse(text) as unknown, 'the file');
    if (top.version !== SHARED_VERSION) throw new Error(`version: expected ${SHARED_VERSION}`);
    exactly(top, 'the file', ['version', 'owners', 'settings']);
    const owners = obj(top.owners, 'owners');
    if (Object.keys(owners).length > MAX_OWNERS) throw new Error(`owners: more than ${MAX_OWNERS}`);
    const out = emptyShared();
    for (const [dir, name] of Object.entries(owners)) {
      if (!isDirPath(dir)) throw new Error(`owners: ${JSON.stringify(dir.slice(0, 80))} is not an absolute, normalised path`);
      if (typeof name !== 'string' || !HOST_NAME_RE.test(name)) throw new Error(`owners[${JSON.stringify(dir)}]: expected a host name`);
      out.owners[dir] = name;
    }
    for (const [key, v] of Object.entries(obj(top.settings, 'settings'))) {
      const at = `settings[${JSON.stringify(key.slice(0, 80))}]`;
      if (!isVmhostSysctl(key)) throw new Error(`${at}: not a sysctl vmhost sets`);
      const s = obj(v, at);
      exactly(s, at, ['value', 'original', 'holders']);
      for (const f of ['value', 'original'] as const) if (typeof s[f] !== 'string' || !VALUE.test(s[f])) throw new Error(`${at}.${f}: expected a small number`);
      if (!Array.isArray(s.holders) || s.holders.length > MAX_OWNERS) throw new Error(`${at}.holders: expected a list of state directories`);
      const holders = s.holders.map((h: unknown, i) => {
        if (typeof h !== 'string' || !(h in out.owners)) throw new Error(`${at}.holders[${i}]: not one of the owners`);
        return h;
      });
      if (new Set(holders).size !== holders.length) throw new Error(`${at}.holders: a holder twice`);
      out.settings[key] = { value: s.value as string, original: s.original as string, holders };
    }
    return out;
  } catch (err) {
    const why = err instanceof SyntaxError ? `not JSON (${err.message})` : err instanceof Error ? err.message : String(err);
    throw new HostStateError(file, `not a vmhost shared record: ${why}`, { cause: err });
  }
}

/**
 * The shared record of the namespace `netns` as it is, without the lock (for plan and status);
 * an empty one when there is none.
 * @throws {HostStateError} for an unsafe directory or file, or a corrupt record.
 */
export function readShared(netns: NetnsRef | undefined): SharedRecord {
  const dir = checkStateDir(sharedDirFor(netns), false);
  if (dir === undefined) return emptyShared();
  const text = readPrivateFile(recordFile(dir), MAX_SHARED_BYTES);
  return text === undefined ? emptyShared() : parseShared(text, recordFile(dir));
}

// ------------------------------------------------------------------------------- liveness

/** What another owner's state directory holds: its state, `gone` (no state file), or `unknown` (it cannot be read). */
export type OwnerState = StateFile | 'gone' | 'unknown';

/** The state of the owner `name` whose state directory is `dir` (read strictly, with the trust checks). */
export function ownerState(dir: string, name: string): OwnerState {
  let real: string | undefined;
  try {
    real = checkStateDir(dir, false);
    if (real === undefined) return 'gone';
    lstatSync(join(real, 'state.json'));
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) return 'unknown';
    // no state file yet: alive while a live process holds its lock (its first apply)
    return real !== undefined && lockedByLiveProcess(real) ? emptyState(name) : 'gone';
  }
  try {
    return readState(real, name);
  } catch {
    return 'unknown';
  }
}

/** Whether a live process holds the lock of the state directory `dir` (an apply or down under way). */
function lockedByLiveProcess(dir: string): boolean {
  try {
    const text = readPrivateFile(join(dir, 'lock'), 64);
    return text !== undefined && /^\d+\n?$/.test(text) && isAlive(Number(text));
  } catch {
    return false;
  }
}

/** Whether the owner with state `st` holds `key`: it records the sysctl, or its state cannot be read. */
function holds(st: OwnerState, key: string): boolean {
  return st === 'unknown' || (st !== 'gone' && st.entries.some((r) => r.id === `sysctl:${key}`));
}

// ------------------------------------------------------------------------------- changes

/** Where a change of the record runs: the caller's namespace, state directory and name. */
export interface SharedCaller {
  netns: NetnsRef | undefined;
  /** The caller's state directory (real path). */
  dir: string;
  name: string;
  /** Reads and writes the namespace's sysctls. */
  sysctl: { get(key: string): Promise<string>; set(key: string, value: string): Promise<void> };
  notice(message: string): void;
}

/** The caller of a context. */
export function callerOf(ctx: Ctx): SharedCaller {
  return { netns: ctx.netns, dir: ctx.dir, name: ctx.host.name, sysctl: ctx.h.sysctl, notice: ctx.notice };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Takes the lock of the shared directory `dir`, waiting while another host holds it. */
async function takeLock(dir: string): Promise<() => void> {
  const deadline = performance.now() + LOCK_WAIT_MS;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      return lockFile(join(dir, 'shared.lock'));
    } catch (err) {
      if (!(err instanceof HostBusyError) || performance.now() > deadline) throw err;
    }
    await sleep(wait);
  }
}

/**
 * Drops the owners that are gone and the holders that no longer record their setting (never the
 * caller), and puts back the original of each setting no live holder is left for.
 */
async function prune(rec: SharedRecord, c: SharedCaller): Promise<void> {
  const states = new Map<string, OwnerState>();
  for (const [dir, name] of Object.entries(rec.owners)) {
    if (dir === c.dir) continue;
    const st = ownerState(dir, name);
    states.set(dir, st);
    if (st === 'gone') {
      delete rec.owners[dir];
      c.notice(`host ${name} (${dir}) has no state file any more: it is no longer counted in this namespace's shared record`);
    }
  }
  for (const [key, s] of Object.entries(rec.settings)) {
    const live = s.holders.filter((h) => h === c.dir || (h in rec.owners && holds(states.get(h) ?? 'unknown', key)));
    if (live.length === s.holders.length) continue;
    s.holders = live;
    if (live.length > 0) continue;
    await c.sysctl.set(key, s.original);
    delete rec.settings[key];
    c.notice(`sysctl ${key} back to ${s.original}: no host that set it is left`);
  }
}

/**
 * Runs `fn` on the namespace's shared record under its lock, after {@link prune}; `commit` writes
 * the record at once (before a change it stands for), and it is written at the end when it
 * changed since (and removed, with its directory, once it holds nothing). A corrupt record is
 * moved aside (`shared.json.corrupt-<time>`) and replaced with an empty one, with a notice: the
 * originals it kept are then lost, and the settings stay as they are.
 * @throws {HostStateError} for an unsafe directory or file. {@link HostBusyError} when another
 *   host holds the lock for more than 30 s.
 */
export async function withShared<T>(c: SharedCaller, fn: (rec: SharedRecord, commit: () => void) => Promise<T>): Promise<T> {
  const dir = checkStateDir(sharedDirFor(c.netns), true)!;
  const unlock = await takeLock(dir);
  try {
    const file = recordFile(dir);
    let rec: SharedRecord;
    const text = readPrivateFile(file, MAX_SHARED_BYTES);
    try {
      rec = text === undefined ? emptyShared() : parseShared(text, file);
    } catch (err) {
      if (!(err instanceof HostStateError)) throw err;
      const to = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(file, to);
      c.notice(`${err.message}: moved to ${to}; the shared settings' original values it kept are lost (they stay as they are)`);
      rec = emptyShared();
    }
    let saved = JSON.stringify(rec);
    const commit = (): void => {
      const now = JSON.stringify(rec);
      if (now === saved) return;
      save(dir, rec);
      saved = now;
    };
    await prune(rec, c);
    try {
      return await fn(rec, commit);
    } finally {
      commit();
    }
  } finally {
    unlock();
    removeIfEmptyUnderNamespace(dir);
  }
}

/** Writes the record of `dir`, or removes it when it holds nothing. */
function save(dir: string, rec: SharedRecord): void {
  if (Object.keys(rec.owners).length === 0 && Object.keys(rec.settings).length === 0) rmSync(recordFile(dir), { force: true });
  else writePrivateFile(recordFile(dir), `${JSON.stringify(rec, null, 1)}\n`);
}


/** The names of the hosts of `dirs` (the caller's own left out). */
export function ownerNames(rec: SharedRecord, dirs: readonly string[], self: string): string[] {
  return dirs.filter((d) => d !== self).map((d) => rec.owners[d] ?? d);
}

/** Records the caller as an owner in the namespace (apply, before it changes anything). */
export async function registerOwner(c: SharedCaller): Promise<void> {
  await withShared(c, async (rec) => void (rec.owners[c.dir] = c.name));
}

/**
 * Removes the caller from the namespace's owners (down, once everything it made is gone); a
 * setting it still held is released as {@link releaseSetting} does.
 */
export async function unregisterOwner(c: SharedCaller): Promise<void> {
  await withShared(c, async (rec) => {
    for (const key of Object.keys(rec.settings)) await release(rec, c, key);
    delete rec.owners[c.dir];
  });
}

/** What {@link acquireSetting} found and did. */
export interface Acquired {
  /** The value to put back when the last holder leaves. */
  original: string;
  /** The live value before. */
  before: string;
  /** Whether the caller held it already. */
  held: boolean;
  /** The other hosts holding it. */
  others: string[];
}

/**
 * The caller holds `key` at `value`: the first holder saves the live value as the original; the
 * record is written before the value is set (a crash in between leaves a holder whose value the
 * next apply sets). When setting it fails, the caller's hold is taken back.
 * @throws {HostOwnerError} when other hosts hold it at another value.
 */
export async function acquireSetting(c: SharedCaller, key: string, value: string): Promise<Acquired> {
  return withShared(c, async (rec, commit) => {
    rec.owners[c.dir] = c.name;
    const live = await c.sysctl.get(key);
    let s = rec.settings[key];
    if (s && s.value !== value && s.holders.some((h) => h !== c.dir)) {
      const who = ownerNames(rec, s.holders, c.dir).join(', ');
      throw new HostOwnerError([{ id: `sysctl:${key}`, object: `sysctl ${key}`, owner: who, message: `sysctl ${key} is held at ${s.value} by host ${who}; this host wants ${value}` }]);
    }
    if (!s) s = rec.settings[key] = { value, original: live, holders: [] };
    s.value = value;
    const held = s.holders.includes(c.dir);
    if (!held) s.holders.push(c.dir);
    const others = ownerNames(rec, s.holders, c.dir);
    commit();
    if (live !== value) {
      try {
        await c.sysctl.set(key, value);
      } catch (err) {
        if (!held) await release(rec, c, key);
        throw err;
      }
    }
    return { original: s.original, before: live, held, others };
  });
}

/** What {@link releaseSetting} did: whether it put the original back, and who still holds the setting. */
export interface Released {
  /** The original put back (the caller was the last holder). */
  restored?: string;
  /** The other hosts still holding it. */
  heldBy: string[];
}

async function release(rec: SharedRecord, c: SharedCaller, key: string): Promise<Released> {
  const s = rec.settings[key];
  if (!s) return { heldBy: [] };
  const others = s.holders.filter((h) => h !== c.dir);
  if (others.length === s.holders.length) return { heldBy: ownerNames(rec, others, c.dir) };
  if (others.length > 0) {
    s.holders = others;
    return { heldBy: ownerNames(rec, others, c.dir) };
  }
  // the original first: a crash before the record is written leaves the hold, released again
  if ((await c.sysctl.get(key)) !== s.original) await c.sysctl.set(key, s.original);
  delete rec.settings[key];
  return { restored: s.original, heldBy: [] };
}

/**
 * The caller leaves `key`: the last holder puts the original back (before the record is written,
 * so a crash in between leaves a hold that the next down releases again); otherwise the value
 * stays for the others. A caller that does not hold it changes nothing.
 */
export async function releaseSetting(c: SharedCaller, key: string): Promise<Released> {
  return withShared(c, (rec) => release(rec, c, key));
}
