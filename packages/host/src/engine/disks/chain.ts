/**
 * The disk chain's transitions, pure: a disk's images bottom to top, where a label is, and what
 * each operation makes of a chain (snapshot, rollback, commit, delete a point, abandon points an
 * interrupted merge damaged), with the overlays it removes and the labels that go. No I/O: the
 * executor (run-op.ts) does the files and QEMU and writes the record; unit-tested alone.
 *
 * A disk's *images* are what vmhost may label or write: a plain disk's own image and the overlays
 * above it; for a disk on a base image, its overlays only (the base below them is never written,
 * never labelled). The first image is the *root* (a commit merges into it), the last the *top*
 * (the VM writes it; never a snapshot point).
 * @module
 */
import { join } from 'node:path';
import type { ChainRecord, DiskChain, SnapshotPoint, Tombstone, TombstoneHow } from './record.js';
import { MAX_TOMBSTONES } from './record.js';

/** One image of a disk's chain. */
export interface ChainImage {
  /** The overlay's file name in the disk directory; null for the host file's own image (plain). */
  name: string | null;
  point: SnapshotPoint | null;
  createdAt: string | null;
}

/** The images of `d`, root first. */
export function images(d: DiskChain): ChainImage[] {
  const overlays = d.overlays.map((o) => ({ name: o.file, point: o.point, createdAt: o.createdAt }));
  return d.mode === 'plain' ? [{ name: null, point: d.originPoint, createdAt: null }, ...overlays] : overlays;
}

/** The absolute file of an image of `d` in the disk directory `dir`. */
export function imageFile(d: DiskChain, img: Pick<ChainImage, 'name'>, dir: string): string {
  return img.name === null ? d.origin : join(dir, img.name);
}

/** The format of an image (overlays are qcow2). */
export function imageFormat(d: DiskChain, img: Pick<ChainImage, 'name'>): 'qcow2' | 'raw' {
  return img.name === null ? d.originFormat : 'qcow2';
}

/** The top of `d` (the image the VM writes): its file and format. */
export function topOf(d: DiskChain, dir: string): { file: string; format: 'qcow2' | 'raw' } {
  const top = images(d).at(-1);
  if (!top) return { file: d.origin, format: d.originFormat }; // a base disk before its first overlay (never started so)
  return { file: imageFile(d, top, dir), format: imageFormat(d, top) };
}

/** The index of the image of `d` labelled `label`, or -1. */
export function labelIndex(d: DiskChain, label: string): number {
  return images(d).findIndex((i) => i.point?.label === label);
}

/**
 * The chain `qemu-img info --backing-chain` of the top must show, top first: each image's file,
 * format and the format its header gives its backing image; a base disk's base last.
 */
export function expectedChain(d: DiskChain, dir: string): Array<{ file: string; format: string; backingFormat?: string }> {
  const imgs = images(d);
  const out: Array<{ file: string; format: string; backingFormat?: string }> = imgs.map((img, i) => {
    const below = i > 0 ? imgs[i - 1]! : undefined;
    const e: { file: string; format: string; backingFormat?: string } = { file: imageFile(d, img, dir), format: imageFormat(d, img) };
    if (below) e.backingFormat = imageFormat(d, below);
    else if (d.mode === 'base') e.backingFormat = d.originFormat;
    return e;
  });
  if (d.mode === 'base') out.unshift({ file: d.origin, format: d.originFormat });
  return out.reverse();
}

/** What an operation makes of one disk. */
export interface Transition {
  disk: DiskChain;
  /** Overlays (file names) the new chain no longer has. */
  removed: string[];
  /** Points that went, and how. */
  dropped: Array<{ point: SnapshotPoint; how: TombstoneHow }>;
}

/** Copies `d` deeply (transitions never change their input). */
function copy(d: DiskChain): DiskChain {
  return { ...d, originPoint: d.originPoint ? { ...d.originPoint } : null, overlays: d.overlays.map((o) => ({ ...o, point: o.point ? { ...o.point } : null })) };
}

/** Sets the point of image `i` of `d` (a copy). */
function setPoint(d: DiskChain, i: number, p: SnapshotPoint | null): void {
  if (d.mode === 'plain' && i === 0) d.originPoint = p;
  else d.overlays[d.mode === 'plain' ? i - 1 : i]!.point = p;
}

/** Keeps the images of `d` up to `i` (a copy); the overlay names removed. */
function keepUpTo(d: DiskChain, i: number): string[] {
  const keep = d.mode === 'plain' ? i : i + 1;
  return d.overlays.splice(keep).map((o) => o.file);
}

/** A disk on a base image: its first overlay `name` on `origin`. */
export function initDisk(index: number, origin: string, originFormat: 'qcow2' | 'raw', name: string, at: string): DiskChain {
  return { index, mode: 'base', origin, originFormat, originPoint: null, overlays: [{ file: name, createdAt: at, point: null }] };
}

/** A plain disk with no overlay yet. */
export function plainDisk(index: number, origin: string, originFormat: 'qcow2' | 'raw'): DiskChain {
  return { index, mode: 'plain', origin, originFormat, originPoint: null, overlays: [] };
}

/** Snapshot: the top is frozen as point `label`; the new overlay `name` on it becomes the top. */
export function snapshot(d0: DiskChain, label: string, at: string, name: string): Transition {
  const d = copy(d0);
  setPoint(d, images(d).length - 1, { label, takenAt: at });
  d.overlays.push({ file: name, createdAt: at, point: null });
  return { disk: d, removed: [], dropped: [] };
}

/**
 * Rollback to `label`: the images above it go (their points too), and the new overlay `name` on
 * the point becomes the top (the point itself stays frozen, so it can be returned to again).
 */
export function rollback(d0: DiskChain, label: string, at: string, name: string): Transition {
  const d = copy(d0);
  const p = labelIndex(d, label);
  if (p < 0) throw new Error(`rollback: no ${label} on disk ${d.index}`);
  const dropped = images(d).slice(p + 1).flatMap((i) => (i.point ? [{ point: i.point, how: 'rolled-back' as const }] : []));
  const removed = keepUpTo(d, p);
  d.overlays.push({ file: name, createdAt: at, point: null });
  return { disk: d, removed, dropped };
}

/**
 * Commit into `label` (null: the root): the images above it are merged into it and go; it becomes
 * the top, so its point and those above it go (none of them is what it was). Undefined when there
 * is nothing above it.
 */
export function commit(d0: DiskChain, label: string | null): Transition | undefined {
  const d = copy(d0);
  const p = label === null ? 0 : labelIndex(d, label);
  if (p < 0) throw new Error(`commit: no ${label} on disk ${d.index}`);
  const imgs = images(d);
  if (p >= imgs.length - 1) return undefined;
  const dropped = imgs.slice(p, -1).flatMap((i) => (i.point ? [{ point: i.point, how: 'committed' as const }] : []));
  const removed = keepUpTo(d, p);
  setPoint(d, p, null);
  return { disk: d, removed, dropped };
}

/**
 * Delete the point `label`: the image above it is merged into it (commit), so the image keeps the
 * content, role and point of the one above; that one goes. The points above keep their data.
 */
export function deletePoint(d0: DiskChain, label: string): Transition {
  const d = copy(d0);
  const imgs = images(d);
  const p = labelIndex(d, label);
  if (p < 0 || p >= imgs.length - 1) throw new Error(`delete: no ${label} below the top of disk ${d.index}`);
  const above = imgs[p + 1]!;
  setPoint(d, p, above.point);
  const k = d.mode === 'plain' ? p : p + 1; // index in overlays of the image above p
  const [gone] = d.overlays.splice(k, 1);
  return { disk: d, removed: [gone!.file], dropped: [{ point: imgs[p]!.point!, how: 'deleted' }] };
}

/**
 * The images of `label`'s merge that an interrupted merge may have changed lose their points
 * (`labels`): the files stay as they are (the top's view is intact), the labels go.
 */
export function abandon(d0: DiskChain, labels: readonly string[]): Transition {
  const d = copy(d0);
  const dropped: Transition['dropped'] = [];
  images(d).forEach((img, i) => {
    if (img.point && labels.includes(img.point.label)) {
      dropped.push({ point: img.point, how: 'interrupted' });
      setPoint(d, i, null);
    }
  });
  return { disk: d, removed: [], dropped };
}

/**
 * The labels an interrupted merge into `target` (image index) may have damaged: the target's and
 * those between it and the top (a partial commit changes what the target shows, and so what every
 * point above it that does not hide the changed blocks shows).
 */
export function damagedBy(d: DiskChain, target: number, upTo = images(d).length - 1): string[] {
  return images(d).slice(target, upTo).flatMap((i) => (i.point ? [i.point.label] : []));
}

/** Puts the transition of disk `t.disk.index` into `rec` and its dropped points into the tombstones. */
export function applyTransition(rec: ChainRecord, t: Transition, at: string): void {
  const i = rec.disks.findIndex((d) => d.index === t.disk.index);
  if (i >= 0) rec.disks[i] = t.disk;
  else {
    rec.disks.push(t.disk);
    rec.disks.sort((a, b) => a.index - b.index);
  }
  bury(rec, t.dropped.map((x) => ({ label: x.point.label, at, how: x.how })));
}

/** Adds tombstones for labels no disk has any more (the newest {@link MAX_TOMBSTONES} kept). */
export function bury(rec: ChainRecord, stones: Tombstone[]): void {
  const live = new Set(vmLabels(rec).map((l) => l.label));
  for (const s of stones) {
    if (live.has(s.label)) continue;
    rec.deleted = rec.deleted.filter((t) => t.label !== s.label);
    rec.deleted.push(s);
  }
  if (rec.deleted.length > MAX_TOMBSTONES) rec.deleted = rec.deleted.slice(-MAX_TOMBSTONES);
}

/** The VM's snapshot points: each label once, with the disks that have it, oldest first. */
export function vmLabels(rec: ChainRecord): Array<{ label: string; takenAt: string; disks: number[] }> {
  const by = new Map<string, { label: string; takenAt: string; disks: number[] }>();
  for (const d of rec.disks) {
    for (const img of images(d)) {
      if (!img.point) continue;
      const e = by.get(img.point.label) ?? { label: img.point.label, takenAt: img.point.takenAt, disks: [] };
      e.disks.push(d.index);
      by.set(img.point.label, e);
    }
  }
  return [...by.values()].sort((a, b) => (a.takenAt < b.takenAt ? -1 : a.takenAt > b.takenAt ? 1 : 0));
}

/** A label for a snapshot taken at `at` that the VM does not have: `snap-YYYYMMDD-HHMMSS` (`-2`, ... when taken). */
export function defaultLabel(rec: ChainRecord, at: string): string {
  const base = `snap-${at.slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
  const taken = new Set(vmLabels(rec).map((l) => l.label));
  let label = base;
  for (let n = 2; taken.has(label); n++) label = `${base}-${n}`;
  return label;
}
