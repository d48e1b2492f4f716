/**
 * The chain record of a VM's disks (`<dataDir>/disks/<vm>/chain.json`, version 1): per writable
 * disk, where its chain starts (the host file's image: the `plain` disk itself, or the `base`
 * the VM's own overlay is made on), the overlays vmhost made above it in the disk directory,
 * bottom to top, and the snapshot points (labels) on the frozen images; the labels that went
 * (tombstones, so that a rollback to one says when and how); and the intent of an operation under
 * way (write-ahead: written before a file or QEMU is touched, cleared when done).
 *
 * {@link parseChainRecord} reads it strictly: exact shape, no unknown field; an overlay is a bare
 * file name `d<disk>-<12 hex>.qcow2` (so every file vmhost opens, writes or deletes lies inside the
 * VM's disk directory), the host file's image an absolute normal path (compared with the host
 * file, never taken from the record to act on alone); labels, times and the intent checked
 * against the chains. Anything else is a {@link HostDiskError} `EHOST_DISK_RECORD` naming the file.
 * The record is written atomically and durably (a new 0600 file, `O_EXCL|O_NOFOLLOW`, fsync'd,
 * renamed over the old, the directory fsync'd).
 * @module
 */
import { join, normalize } from 'node:path';
import { HostDiskError } from '../../errors.js';
import { PATH_FORBIDDEN_RE } from '../../spec/schema.js';
import { VM_NAME } from '../records.js';
import { readPrivateFile, writePrivateFile } from '../state-dir.js';

/** The version of the chain record this module reads and writes. */
export const CHAIN_VERSION = 1;
/** A chain record larger than this is refused. */
export const MAX_CHAIN_BYTES = 1024 * 1024;
/** At most this many overlays per disk (a snapshot each; QEMU opens the whole chain). */
export const MAX_OVERLAYS = 64;
/** Tombstones kept (the newest). */
export const MAX_TOMBSTONES = 64;
/** The most disks a VM has (spec/schema.ts). */
const MAX_DISKS = 16;

/** Snapshot labels: a letter or digit, then letters, digits, `.`, `_`, `-` (at most 64). */
export const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** An overlay's file name in the disk directory: `d<disk>-<12 hex>.qcow2`. */
export const OVERLAY_RE = /^d([0-9]{1,2})-[0-9a-f]{12}\.qcow2$/;
const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z$/;

/** A snapshot point: the label of a frozen image and when it was frozen. */
export interface SnapshotPoint {
  label: string;
  takenAt: string;
}

/** An overlay vmhost made in the disk directory. */
export interface Overlay {
  /** Its file name in the disk directory. */
  file: string;
  createdAt: string;
  /** The snapshot point this image is (frozen), or null (the active top, or a frozen image whose label went). */
  point: SnapshotPoint | null;
}

/** One writable disk of the VM. */
export interface DiskChain {
  /** The disk's index in the VM's `disk` list (its drive is `drive<index>`). */
  index: number;
  /**
   * `plain`: the host file's image is the chain's root (written while no overlay is above it);
   * `base`: it is the never-written base of the VM's own overlay (the first overlay, the root).
   */
  mode: 'plain' | 'base';
  /** The host file's image (absolute). */
  origin: string;
  originFormat: 'qcow2' | 'raw';
  /** `plain`: the snapshot point of the image itself (taken while it was the top). */
  originPoint: SnapshotPoint | null;
  /** Bottom to top. */
  overlays: Overlay[];
}

/** How a label went. */
export type TombstoneHow = 'deleted' | 'committed' | 'rolled-back' | 'interrupted';

/** A label that went. */
export interface Tombstone {
  label: string;
  at: string;
  how: TombstoneHow;
}

/** The operations on a chain. */
export type DiskOp = 'init' | 'snapshot' | 'rollback' | 'commit' | 'delete';

/** A file of one disk. */
export interface DiskFile {
  disk: number;
  file: string;
}

/**
 * An operation under way. `pending`: the disks whose chain in the record is still the one
 * before the operation (the others were switched to the chain after it). `add`: the overlays it
 * makes; `remove`: overlays no chain names any more, deleted last. `resume`: the operation paused
 * the guest (an active commit's pivot) and the guest must be resumed.
 */
export interface DiskIntent {
  op: DiskOp;
  label: string | null;
  at: string;
  pending: number[];
  add: DiskFile[];
  remove: DiskFile[];
  resume: boolean;
}

/** The chain record of one VM. */
export interface ChainRecord {
  version: 1;
  vm: string;
  disks: DiskChain[];
  deleted: Tombstone[];
  intent: DiskIntent | null;
  updatedAt: string;
}

/** The chain record file of a disk directory. */
export const chainFile = (diskDir: string): string => join(diskDir, 'chain.json');

/** An empty record of `vm`. */
export function emptyRecord(vm: string): ChainRecord {
  return { version: CHAIN_VERSION, vm, disks: [], deleted: [], intent: null, updatedAt: new Date(0).toISOString() };
}

// ------------------------------------------------------------------------------- parsing

/** A problem at a path of the record (converted to a HostDiskError naming the file). */
class Bad extends Error {}

type Obj = Record<string, unknown>;

function shape(v: unknown, at: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad(`${at}: expected an object`);
  const o = v as Obj;
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Bad(`${at}: unknown field ${JSON.stringify(k).slice(0, 40)}`);
  for (const k of keys) if (!(k in o)) throw new Bad(`${at}: missing field ${JSON.stringify(k)}`);
  return o;
}

function list(v: unknown, at: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) throw new Bad(`${at}: expected a list of at most ${max}`);
  return v;
}

function time(v: unknown, at: string): string {
  if (typeof v !== 'string' || !TIME_RE.test(v) || Number.isNaN(Date.parse(v))) throw new Bad(`${at}: expected an ISO time (UTC)`);
  return v;
}

function label(v: unknown, at: string): string {
  if (typeof v !== 'string' || !LABEL_RE.test(v)) throw new Bad(`${at}: ${JSON.stringify(v)?.slice(0, 70)} is not a snapshot label`);
  return v;
}

function int(v: unknown, at: string, max: number): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max) throw new Bad(`${at}: expected an integer from 0 to ${max}`);
  return v as number;
}

/** An overlay's file name of disk `disk` (a bare name: it lies in the disk directory). */
function overlayName(v: unknown, at: string, disk: number): string {
  const m = typeof v === 'string' ? OVERLAY_RE.exec(v) : null;
  if (!m || Number(m[1]) !== disk) throw new Bad(`${at}: ${JSON.stringify(v)?.slice(0, 70)} is not an overlay of disk ${disk} (d${disk}-<12 hex>.qcow2 in the disk directory)`);
  return v as string;
}

function point(v: unknown, at: string): SnapshotPoint | null {
  if (v === null) return null;
  const o = shape(v, at, ['label', 'takenAt']);
  return { label: label(o.label, `${at}.label`), takenAt: time(o.takenAt, `${at}.takenAt`) };
}

function origin(v: unknown, at: string): string {
  if (typeof v !== 'string' || !v.startsWith('/') || v.length > 4095 || normalize(v) !== v || PATH_FORBIDDEN_RE.test(v)) throw new Bad(`${at}: expected an absolute normal path`);
  return v;
}

function parseDisk(v: unknown, at: string): DiskChain {
  const o = shape(v, at, ['index', 'mode', 'origin', 'originFormat', 'originPoint', 'overlays']);
  const index = int(o.index, `${at}.index`, MAX_DISKS - 1);
  if (o.mode !== 'plain' && o.mode !== 'base') throw new Bad(`${at}.mode: expected "plain" or "base"`);
  if (o.originFormat !== 'qcow2' && o.originFormat !== 'raw') throw new Bad(`${at}.originFormat: expected "qcow2" or "raw"`);
  const overlays = list(o.overlays, `${at}.overlays`, MAX_OVERLAYS).map((x, i) => {
    const p = `${at}.overlays[${i}]`;
    const ov = shape(x, p, ['file', 'createdAt', 'point']);
    return { file: overlayName(ov.file, `${p}.file`, index), createdAt: time(ov.createdAt, `${p}.createdAt`), point: point(ov.point, `${p}.point`) };
  });
  const d: DiskChain = { index, mode: o.mode, origin: origin(o.origin, `${at}.origin`), originFormat: o.originFormat, originPoint: point(o.originPoint, `${at}.originPoint`), overlays };
  if (d.mode === 'base' && d.originPoint) throw new Bad(`${at}.originPoint: a base image is never a snapshot point (it is never written)`);
  const top = overlays.at(-1);
  if (top?.point) throw new Bad(`${at}.overlays[${overlays.length - 1}].point: the top (the image the VM writes) cannot be a snapshot point`);
  if (d.mode === 'plain' && overlays.length === 0 && d.originPoint) throw new Bad(`${at}.originPoint: the image is the top (no overlay above it): it cannot be a snapshot point`);
  const labels = [d.originPoint, ...overlays.map((x) => x.point)].filter((x): x is SnapshotPoint => x !== null).map((x) => x.label);
  const twice = labels.find((l, i) => labels.indexOf(l) !== i);
  if (twice !== undefined) throw new Bad(`${at}: the label ${JSON.stringify(twice)} twice`);
  return d;
}

function files(v: unknown, at: string, disks: Set<number>): DiskFile[] {
  return list(v, at, MAX_DISKS * (MAX_OVERLAYS + 1)).map((x, i) => {
    const o = shape(x, `${at}[${i}]`, ['disk', 'file']);
    const disk = int(o.disk, `${at}[${i}].disk`, MAX_DISKS - 1);
    if (!disks.has(disk)) throw new Bad(`${at}[${i}].disk: no disk ${disk} in the record`);
    return { disk, file: overlayName(o.file, `${at}[${i}].file`, disk) };
  });
}

function parseIntent(v: unknown, rec: Omit<ChainRecord, 'intent'>): DiskIntent | null {
  if (v === null) return null;
  const o = shape(v, 'intent', ['op', 'label', 'at', 'pending', 'add', 'remove', 'resume']);
  const ops: readonly DiskOp[] = ['init', 'snapshot', 'rollback', 'commit', 'delete'];
  if (!ops.includes(o.op as DiskOp)) throw new Bad(`intent.op: expected one of ${ops.join(', ')}`);
  const indices = new Set(rec.disks.map((d) => d.index));
  const pending = list(o.pending, 'intent.pending', MAX_DISKS).map((x, i) => int(x, `intent.pending[${i}]`, MAX_DISKS - 1));
  for (const p of pending) if (!indices.has(p)) throw new Bad(`intent.pending: no disk ${p} in the record`);
  if (new Set(pending).size !== pending.length) throw new Bad('intent.pending: a disk twice');
  if (typeof o.resume !== 'boolean') throw new Bad('intent.resume: expected true or false');
  const intent: DiskIntent = {
    op: o.op as DiskOp,
    label: o.label === null ? null : label(o.label, 'intent.label'),
    at: time(o.at, 'intent.at'),
    pending,
    add: files(o.add, 'intent.add', indices),
    remove: files(o.remove, 'intent.remove', indices),
    resume: o.resume,
  };
  const inChain = new Set(rec.disks.flatMap((d) => d.overlays.map((x) => x.file)));
  for (const r of intent.remove) if (inChain.has(r.file)) throw new Bad(`intent.remove: ${r.file} is still in a chain`);
  for (const a of intent.add) {
    const want = !pending.includes(a.disk);
    if (inChain.has(a.file) !== want) throw new Bad(`intent.add: ${a.file} ${want ? 'is not in the chain of its switched disk' : 'is in the chain of a pending disk'}`);
  }
  return intent;
}

/**
 * Parses the text of the chain record `file` of the VM `vm` strictly (as the module says).
 * @throws {HostDiskError} `EHOST_DISK_RECORD` naming the file and the field.
 */
export function parseChainRecord(text: string, file: string, vm: string): ChainRecord {
  try {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Bad(text.trim() === '' ? 'empty' : `not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    const o = shape(json, 'the file', ['version', 'vm', 'disks', 'deleted', 'intent', 'updatedAt']);
    if (o.version !== CHAIN_VERSION) throw new Bad(`version: expected ${CHAIN_VERSION}`);
    if (typeof o.vm !== 'string' || !VM_NAME.test(o.vm)) throw new Bad('vm: expected a VM name');
    if (o.vm !== vm) throw new Bad(`vm: ${JSON.stringify(o.vm)}, but the record is in the directory of ${JSON.stringify(vm)}`);
    const disks = list(o.disks, 'disks', MAX_DISKS).map((d, i) => parseDisk(d, `disks[${i}]`));
    disks.forEach((d, i) => {
      if (i > 0 && d.index <= disks[i - 1]!.index) throw new Bad(`disks[${i}].index: expected the disks in increasing order, each once`);
    });
    const names = disks.flatMap((d) => d.overlays.map((x) => x.file));
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new Bad(`disks: the overlay ${dup} twice`);
    const deleted = list(o.deleted, 'deleted', MAX_TOMBSTONES).map((x, i) => {
      const t = shape(x, `deleted[${i}]`, ['label', 'at', 'how']);
      const hows: readonly TombstoneHow[] = ['deleted', 'committed', 'rolled-back', 'interrupted'];
      if (!hows.includes(t.how as TombstoneHow)) throw new Bad(`deleted[${i}].how: expected one of ${hows.join(', ')}`);
      return { label: label(t.label, `deleted[${i}].label`), at: time(t.at, `deleted[${i}].at`), how: t.how as TombstoneHow };
    });
    const base = { version: CHAIN_VERSION, vm, disks, deleted, updatedAt: typeof o.updatedAt === 'string' && o.updatedAt.length <= 64 ? o.updatedAt : '' } as const;
    const intent = parseIntent(o.intent, base);
    for (const d of disks) {
      if (d.mode === 'base' && d.overlays.length === 0 && !(intent?.op === 'init' && intent.pending.includes(d.index))) {
        throw new Bad(`disks[${disks.indexOf(d)}].overlays: a disk on a base image has its own overlay`);
      }
    }
    return { ...base, intent };
  } catch (err) {
    if (err instanceof Bad) throw new HostDiskError('EHOST_DISK_RECORD', file, `${file}: not a vmhost chain record: ${err.message}`);
    throw err;
  }
}

/**
 * Reads the chain record of the disk directory `diskDir` (checked by the caller); undefined when
 * there is none.
 * @throws {HostDiskError} `EHOST_DISK_RECORD`. {@link HostStateError} `EHOST_STATE_UNSAFE` (a
 *   symlink, another user's file, writable by others).
 */
export function readChainRecord(diskDir: string, vm: string): ChainRecord | undefined {
  const file = chainFile(diskDir);
  const text = readPrivateFile(file, MAX_CHAIN_BYTES);
  return text === undefined ? undefined : parseChainRecord(text, file, vm);
}

/**
 * Writes the chain record atomically and durably (0600, a new file fsync'd and renamed over the
 * old, the directory fsync'd: the record maps data that outlives a power loss).
 * @throws {SystemError} naming the file (ENOSPC, ...): the old record is then unchanged.
 */
export function writeChainRecord(diskDir: string, rec: ChainRecord): void {
  rec.updatedAt = new Date().toISOString();
  writePrivateFile(chainFile(diskDir), `${JSON.stringify(rec, null, 1)}\n`, { durable: true });
}
