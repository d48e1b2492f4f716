/**
 * Saved plans (`vmhost plan --out FILE`, `vmhost apply FILE`): a plan written to a file, applied
 * later only if the host and the host file are still as they were when it was made, as terraform
 * does with a saved plan.
 *
 * A saved plan is data, never instructions: it names the host file (absolute path and the sha256
 * of its bytes), the namespace and state directory it was made for, and the steps with their
 * before and after. Applying it re-reads that host file (refused when its bytes changed), refuses
 * other `--netns`/`--state-dir` options than the plan's, and makes apply plan again under its lock
 * and refuse (`EHOST_PLAN_STALE`, nothing changed) unless the steps come out equal — so what runs
 * is always what the host file says, and only when that is what the saved plan showed.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { ValidationError } from '@vmhost/net';
import { HostPlanStaleError, HostStateError } from '../errors.js';
import { writePrivateFile } from '../services/files.js';
import type { HostOptions, Plan, Step, StepAction } from '../types.js';

/** The `format` of a saved plan file. */
export const SAVED_PLAN_FORMAT = 'vmhost-plan';
/** Largest saved plan file read (a 1,000-VM host's plan is about 3 MiB). */
export const MAX_SAVED_PLAN_BYTES = 64 * 1024 * 1024;

const ACTIONS: readonly StepAction[] = ['create', 'update', 'delete', 'set', 'release', 'start', 'restart', 'stop', 'adopt'];

/** A plan saved by `vmhost plan --out` ({@link savePlan}). */
export interface SavedPlan {
  format: typeof SAVED_PLAN_FORMAT;
  version: 1;
  /** When it was made (ISO 8601). */
  created: string;
  /** The host file's `name`. */
  host: string;
  /** The host file: its absolute path and the sha256 (hex) of its bytes when the plan was made. */
  hostFile: { path: string; sha256: string };
  /** The `--netns` (name or path) the plan was made for; null for none. */
  netns: string | null;
  /** The `--state-dir` given (absolute); null for the default. */
  stateDir: string | null;
  /** The plan's steps with their before and after. */
  steps: Step[];
}

/** The `netns` option as a saved plan records it: a name, a path, `pid:N`; null for none. */
export function netnsText(netns: HostOptions['netns']): string | null {
  if (netns === undefined) return null;
  if (typeof netns === 'string') return netns;
  if ('name' in netns) return netns.name;
  if ('path' in netns) return netns.path;
  return `pid:${netns.pid}`;
}

/** The sha256 (hex) of the file `path`'s bytes. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Writes `plan` to `path` as a saved plan (JSON, mode 0600 whatever the umask, replaced
 * atomically, never through a symbolic link planted at `path`).
 * @throws {HostStateError} when `path` cannot be written safely.
 */
export function savePlan(path: string, saved: Omit<SavedPlan, 'format' | 'version' | 'steps'>, plan: Plan): SavedPlan {
  const out: SavedPlan = { format: SAVED_PLAN_FORMAT, version: 1, ...saved, steps: plan.steps };
  writePrivateFile(path, `${JSON.stringify(out, null, 2)}\n`, (file, reason, cause) => new HostStateError(file, reason, cause !== undefined ? { cause } : undefined));
  return out;
}

/**
 * Whether the file `path` looks like a saved plan (a JSON object whose `format` is
 * `vmhost-plan`), from its first bytes; false for a host file or anything unreadable.
 */
export function isSavedPlanFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fstatSync(fd).isFile()) return false;
    const head = Buffer.alloc(256);
    const n = readSync(fd, head, 0, head.length, 0);
    return /^\s*\{\s*"format"\s*:\s*"vmhost-plan"/.test(head.subarray(0, n).toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and checks the saved plan `path`. vmhost runs as root: the file must be a regular file
 * owned by the caller (or root) and writable by nobody else, or it is refused.
 * @throws {ValidationError} `plan` naming what is wrong with the file or its content.
 */
export function readSavedPlan(path: string): SavedPlan {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new ValidationError('plan', path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ValidationError('plan', path, 'is not a regular file');
    const uid = process.getuid?.() ?? 0;
    if (st.uid !== uid && st.uid !== 0) throw new ValidationError('plan', path, `is owned by uid ${st.uid}, not by this user or root; refusing to act on it`);
    if ((st.mode & 0o022) !== 0) throw new ValidationError('plan', path, `is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); refusing to act on it`);
    if (st.size > MAX_SAVED_PLAN_BYTES) throw new ValidationError('plan', path, `is larger than ${MAX_SAVED_PLAN_BYTES} bytes`);
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ValidationError('plan', path, `is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return checkSavedPlan(v, path);
}

/** Checks the shape of a parsed saved plan strictly (unknown keys refused). */
export function checkSavedPlan(v: unknown, path: string): SavedPlan {
  const bad = (what: string, value: unknown): never => {
    throw new ValidationError(`plan.${what}`, value, `in ${path}: not a saved plan of this vmhost`);
  };
  const obj = (x: unknown, what: string, keys: readonly string[]): Record<string, unknown> => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return bad(what, x);
    for (const k of Object.keys(x)) if (!keys.includes(k)) bad(`${what}.${k}`, k);
    return x as Record<string, unknown>;
  };
  const str = (x: unknown, what: string): string => (typeof x === 'string' && x.length > 0 ? x : bad(what, x));
  const p = obj(v, 'top', ['format', 'version', 'created', 'host', 'hostFile', 'netns', 'stateDir', 'steps']);
  if (p.format !== SAVED_PLAN_FORMAT) bad('format', p.format);
  if (p.version !== 1) bad('version', p.version);
  const hf = obj(p.hostFile, 'hostFile', ['path', 'sha256']);
  const hostFile = { path: str(hf.path, 'hostFile.path'), sha256: str(hf.sha256, 'hostFile.sha256') };
  if (!hostFile.path.startsWith('/')) bad('hostFile.path', hostFile.path);
  if (!/^[0-9a-f]{64}$/.test(hostFile.sha256)) bad('hostFile.sha256', hostFile.sha256);
  const orNull = (x: unknown, what: string): string | null => (x === null ? null : str(x, what));
  if (!Array.isArray(p.steps)) return bad('steps', p.steps);
  const steps = p.steps.map((s: unknown, i: number): Step => {
    const o = obj(s, `steps[${i}]`, ['id', 'action', 'description', 'before', 'after']);
    const action = o.action as StepAction;
    if (!ACTIONS.includes(action)) bad(`steps[${i}].action`, o.action);
    const step: Step = { id: str(o.id, `steps[${i}].id`), action, description: str(o.description, `steps[${i}].description`) };
    for (const k of ['before', 'after'] as const) {
      const x = o[k];
      if (x === undefined) continue;
      if (x !== null && (typeof x !== 'object' || Array.isArray(x))) bad(`steps[${i}].${k}`, x);
      step[k] = x as Step['before'];
    }
    return step;
  });
  return {
    format: SAVED_PLAN_FORMAT,
    version: 1,
    created: str(p.created, 'created'),
    host: str(p.host, 'host'),
    hostFile,
    netns: orNull(p.netns, 'netns'),
    stateDir: orNull(p.stateDir, 'stateDir'),
    steps,
  };
}

/** JSON with object keys sorted: equal for equal data whatever the key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Compares the steps a run planned now with the saved ones.
 * @throws {HostPlanStaleError} naming each step that appeared, went away or changed.
 */
export function checkSteps(expected: readonly Step[], now: readonly Step[]): void {
  const key = (s: Step): string => canonical({ id: s.id, action: s.action, description: s.description, before: s.before ?? null, after: s.after ?? null });
  const was = new Map(expected.map((s) => [s.id, s]));
  const is = new Map(now.map((s) => [s.id, s]));
  const differences: string[] = [];
  for (const s of now) {
    const e = was.get(s.id);
    if (!e) differences.push(`new step: ${s.description}`);
    else if (key(e) !== key(s)) differences.push(`changed: ${e.description}${e.description === s.description ? ' (what the host has now differs)' : ` → ${s.description}`}`);
  }
  for (const e of expected) if (!is.has(e.id)) differences.push(`no longer needed: ${e.description}`);
  if (differences.length === 0 && expected.map((s) => s.id).join('\n') !== now.map((s) => s.id).join('\n')) differences.push('the steps come in another order');
  if (differences.length > 0) throw new HostPlanStaleError(differences);
}
