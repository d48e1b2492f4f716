/**
 * Snapshots of a VM's disks, as library functions (the CLI's `vmhost vm snapshot`, `snapshots`,
 * `rollback`, `commit`, `snapshot-delete`): each on every disk of the VM that has a chain (its
 * writable disks and those on a base image), live over QMP when the VM runs, with qemu-img when
 * it is stopped, each a write-ahead operation of the VM's chain record (docs/host-disks.md).
 * @module
 */
import { statSync } from 'node:fs';
import { ValidationError } from '@vmhost/net';
import { HostDiskLabelError } from '../errors.js';
import type { HostOptions, ResolvedHost } from '../types.js';
import { dataDirFor, emit, findVm, stateDirFor } from './context.js';
import { commit, defaultLabel, imageFile, images, labelIndex, topOf, vmLabels } from './disks/chain.js';
import { newOverlayName, verifyChain } from './disks/images.js';
import { emptyRecord, LABEL_RE, readChainRecord, type ChainRecord, type DiskIntent, type Tombstone } from './disks/record.js';
import { startIntent } from './disks/run-op.js';
import { chainDisks, checkDiskSources, ensureDisks, openDiskDir, withSession, type Session, type VmDisks } from './disks/session.js';
import { hostQemuIds } from './qemu-user.js';
import { startVm } from './vm-ops.js';

/** Options of the disk operations. */
export interface DiskOpOptions extends HostOptions {
  /** Time for each block job of a live commit. Default 300,000 ms. */
  timeoutMs?: number;
}

/** What {@link snapshotVm} did. */
export interface SnapshotResult {
  vm: string;
  label: string;
  /** Taken while the VM ran (QEMU pivoted to the new overlays). */
  live: boolean;
  takenAt: string;
  /** Per disk: the image frozen as the snapshot and the new top the VM writes. */
  disks: Array<{ index: number; frozen: string; top: string }>;
  ms: number;
}

/** One image of a disk's chain, as {@link listVmSnapshots} shows it. */
export interface ChainImageInfo {
  /** The image file (absolute). */
  file: string;
  /** The snapshot point it is, if any. */
  label: string | null;
  /** When the point was taken. */
  takenAt: string | null;
  /** When vmhost made it (null for the host file's own image). */
  createdAt: string | null;
  /** Bytes allocated on the host (null when it cannot be read). */
  bytes: number | null;
  /** The image the VM writes. */
  top: boolean;
}

/** What {@link listVmSnapshots} shows. */
export interface VmSnapshots {
  vm: string;
  /** The VM's disk directory (null when vmhost made nothing for it yet). */
  dir: string | null;
  /** The snapshots, oldest first: label, when, the disks that have it, bytes of their frozen images. */
  snapshots: Array<{ label: string; takenAt: string; disks: number[]; bytes: number }>;
  /**
   * Per disk with a chain: its images, root first (a disk on a base image: the base is `base`,
   * below them), and the top the VM writes (null for a disk on a base image before its first start).
   */
  disks: Array<{ index: number; mode: 'plain' | 'base'; base: string | null; top: string | null; images: ChainImageInfo[] }>;
  /** Labels that went, and how. */
  deleted: Tombstone[];
  /** An operation a kill interrupted (the next command on the VM finishes it), with the files it makes or removes. */
  pending: { op: DiskIntent['op']; label: string | null; files: string[] } | null;
}

function vmDisksOf(host: ResolvedHost, name: string, options: HostOptions): VmDisks {
  const vm = findVm(host, name);
  const v: VmDisks = { host, vm, vmIndex: host.vms.indexOf(vm), options, stateDir: stateDirFor(host, options), dataDir: dataDirFor(host, options), notice: (message) => emit(options, { type: 'notice', message }) };
  const ids = hostQemuIds(host);
  if (ids) v.owner = ids;
  return v;
}

function checkLabel(label: unknown): string {
  if (typeof label !== 'string' || !LABEL_RE.test(label)) throw new HostDiskLabelError(label, 'expected 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  return label;
}

/** The refusal of a label `rec` has no point of: when and how it went, or the labels there are. */
function unknownLabel(rec: ChainRecord, label: string): HostDiskLabelError {
  const t = rec.deleted.find((x) => x.label === label);
  const how = { deleted: 'deleted (vm snapshot-delete)', committed: 'merged away by a commit', 'rolled-back': 'discarded by a rollback to an earlier snapshot', interrupted: 'lost when a merge failed part-way' } as const;
  if (t) return new HostDiskLabelError(label, `snapshot ${label} of VM ${rec.vm} was ${how[t.how]} at ${t.at}; nothing was changed`);
  const have = vmLabels(rec).map((l) => l.label);
  return new HostDiskLabelError(label, `VM ${rec.vm} has no snapshot ${label} (snapshots: ${have.join(', ') || 'none'}); nothing was changed`);
}

function needsChain(v: VmDisks): number[] {
  const disks = chainDisks(v.vm);
  if (disks.length === 0) throw new ValidationError('name', v.vm.name, 'the VM has no writable disk (nothing to snapshot)');
  return disks;
}

/** Checks the chains on disk (offline; live, QEMU's graph is checked by each step) of `disks`. */
async function verifyOffline(s: Session, disks: number[]): Promise<void> {
  if (s.env.qmp) return;
  for (const j of disks) await verifyChain(s.rec.disks.find((d) => d.index === j)!, s.dir, {}, s.v.owner?.uid);
}

/** Writes `intent` into the record and carries it out. */
const run = (s: Session, intent: DiskIntent): Promise<void> => startIntent(s.env, s.rec, intent);

/**
 * `vmhost vm snapshot`: a snapshot point `label` (default `snap-<UTC time>`) of every disk of the
 * VM that has a chain: its top is frozen and kept, and the VM writes a new overlay on it (in the
 * data directory). Live (QEMU pivots; no pause) when the VM runs, with qemu-img when it is stopped.
 * @throws {HostDiskLabelError} a label that is not one or that the VM has. `ValidationError`: no
 *   such VM, or no writable disk. {@link HostDiskError}, `BlockJobBusyError`, `HostBusyError`.
 */
export async function snapshotVm(host: ResolvedHost, name: string, options: DiskOpOptions & { label?: string } = {}): Promise<SnapshotResult> {
  const t0 = performance.now();
  const v = vmDisksOf(host, name, options);
  const disks = needsChain(v);
  if (options.label !== undefined) checkLabel(options.label);
  await checkDiskSources(host, [v.vm]);
  const dir = openDiskDir(v, true)!;
  return await withSession(v, dir, async (s) => {
    await ensureDisks(s);
    const at = new Date().toISOString();
    const label = options.label ?? defaultLabel(s.rec, at);
    if (vmLabels(s.rec).some((l) => l.label === label)) throw new HostDiskLabelError(label, `VM ${name} has a snapshot ${label} already (vmhost vm snapshots ${name}); nothing was changed`);
    await verifyOffline(s, disks);
    const live = s.env.qmp !== undefined;
    await run(s, { op: 'snapshot', label, at, pending: disks, add: disks.map((j) => ({ disk: j, file: newOverlayName(j) })), remove: [], resume: false });
    const out = disks.flatMap((j) => {
      const d = s.rec.disks.find((x) => x.index === j)!;
      const img = images(d)[labelIndex(d, label)];
      return img ? [{ index: j, frozen: imageFile(d, img, dir), top: topOf(d, dir).file }] : [];
    });
    return { vm: name, label, live, takenAt: at, disks: out, ms: Math.round(performance.now() - t0) };
  });
}

function allocated(file: string): number | null {
  try {
    return statSync(file).blocks * 512;
  } catch {
    return null;
  }
}

/**
 * `vmhost vm snapshots`: the VM's snapshots (label, time, the disks that have it, bytes of their
 * frozen images) and every image of each chain (so that every overlay file of the disk directory
 * is accounted for). Reads only (the record is replaced atomically: no lock needed).
 */
export async function listVmSnapshots(host: ResolvedHost, name: string, options: HostOptions = {}): Promise<VmSnapshots> {
  const v = vmDisksOf(host, name, options);
  const dir = openDiskDir(v, false);
  const rec = (dir !== undefined ? readChainRecord(dir, name) : undefined) ?? emptyRecord(name);
  const out: VmSnapshots = { vm: name, dir: dir ?? null, snapshots: [], disks: [], deleted: rec.deleted, pending: null };
  const bytesOf = new Map<string, number>();
  for (const j of chainDisks(v.vm)) {
    const d = rec.disks.find((x) => x.index === j);
    const spec = v.vm.disks[j]!;
    if (!d || dir === undefined) {
      out.disks.push({ index: j, mode: spec.base ? 'base' : 'plain', base: spec.base ? spec.file : null, top: spec.base ? null : spec.file, images: spec.base ? [] : [{ file: spec.file, label: null, takenAt: null, createdAt: null, bytes: allocated(spec.file), top: true }] });
      continue;
    }
    const imgs = images(d);
    const shown = imgs.map((img, k): ChainImageInfo => {
      const file = imageFile(d, img, dir);
      const bytes = allocated(file);
      if (img.point) bytesOf.set(img.point.label, (bytesOf.get(img.point.label) ?? 0) + (bytes ?? 0));
      return { file, label: img.point?.label ?? null, takenAt: img.point?.takenAt ?? null, createdAt: img.createdAt, bytes, top: k === imgs.length - 1 };
    });
    out.disks.push({ index: j, mode: d.mode, base: d.mode === 'base' ? d.origin : null, top: topOf(d, dir).file, images: shown });
  }
  out.snapshots = vmLabels(rec).map((l) => ({ ...l, bytes: bytesOf.get(l.label) ?? 0 }));
  if (rec.intent && dir !== undefined) {
    out.pending = { op: rec.intent.op, label: rec.intent.label, files: [...rec.intent.add, ...rec.intent.remove].map((f) => `${dir}/${f.file}`) };
  }
  return out;
}

/** The VM's disks and disk directory for an operation on point `label` (checked; an unknown VM, a VM without a chain or a missing directory refused). */
function labelledDisks(host: ResolvedHost, name: string, label: string, options: DiskOpOptions): { v: ReturnType<typeof vmDisksOf>; dir: string } {
  const v = vmDisksOf(host, name, options);
  needsChain(v);
  checkLabel(label);
  const dir = openDiskDir(v, false);
  if (dir === undefined) throw unknownLabel(emptyRecord(name), label);
  return { v, dir };
}

/**
 * `vmhost vm rollback`: every disk that has the point `label` returns to it: the VM is stopped
 * (the shutdown ladder) when it runs, the images above the point are deleted (their snapshots
 * go), a new empty overlay on the point becomes the top (the point stays frozen: it can be
 * returned to again), and the VM is started again when it ran. One record write switches every
 * disk: never half rolled back.
 * @throws {HostDiskLabelError} an unknown or deleted label (nothing is stopped or changed).
 */
export async function rollbackVm(host: ResolvedHost, name: string, label: string, options: DiskOpOptions = {}): Promise<{ vm: string; label: string; restarted: boolean; discarded: string[]; ms: number }> {
  const t0 = performance.now();
  const { v, dir } = labelledDisks(host, name, label, options);
  const r = await withSession(v, dir, async (s) => {
    const disks = s.rec.disks.filter((d) => labelIndex(d, label) >= 0).map((d) => d.index);
    if (disks.length === 0) throw unknownLabel(s.rec, label);
    await ensureDisks(s);
    const running = s.vm !== undefined;
    if (s.vm) {
      await s.vm.stop({ timeoutMs: 20_000 });
      delete s.env.qmp;
    }
    await verifyOffline(s, disks);
    const discarded = s.rec.disks.filter((d) => disks.includes(d.index)).flatMap((d) => images(d).slice(labelIndex(d, label) + 1).map((img) => imageFile(d, img, dir)));
    await run(s, { op: 'rollback', label, at: new Date().toISOString(), pending: disks, add: disks.map((j) => ({ disk: j, file: newOverlayName(j) })), remove: [], resume: false });
    return { running, discarded };
  });
  if (r.running) await startVm(host, name, options);
  return { vm: name, label, restarted: r.running, discarded: r.discarded, ms: Math.round(performance.now() - t0) };
}

/**
 * `vmhost vm commit`: the overlays of every disk are merged into its root (the plain disk's own
 * image, or the VM's own overlay on its base image: a base is never written), or, with `label`,
 * into that point; the chain then ends there, and the points merged (the target's too) go. Live
 * (`block-commit`; an active commit pauses the guest for the pivot) when the VM runs, `qemu-img
 * commit` when it is stopped.
 * @throws {HostDiskLabelError}, `BlockJobBusyError` (another block job runs on the VM: nothing
 *   changed), `BlockJobError` (the job failed: the disk shows what it did before).
 */
export async function commitVm(host: ResolvedHost, name: string, options: DiskOpOptions & { label?: string } = {}): Promise<{ vm: string; label: string | null; live: boolean; disks: Array<{ index: number; into: string; merged: number }>; ms: number }> {
  const t0 = performance.now();
  const v = vmDisksOf(host, name, options);
  needsChain(v);
  const label = options.label !== undefined ? checkLabel(options.label) : null;
  const dir = openDiskDir(v, false);
  if (dir === undefined) {
    if (label !== null) throw unknownLabel(emptyRecord(name), label);
    return { vm: name, label, live: false, disks: [], ms: 0 };
  }
  return await withSession(v, dir, async (s) => {
    if (label !== null && !s.rec.disks.some((d) => labelIndex(d, label) >= 0)) throw unknownLabel(s.rec, label);
    await ensureDisks(s);
    if (options.timeoutMs !== undefined) s.env.timeoutMs = options.timeoutMs;
    const plan = s.rec.disks.flatMap((d) => {
      if (label !== null && labelIndex(d, label) < 0) return [];
      const t = commit(d, label);
      return t ? [{ index: d.index, into: imageFile(d, images(d)[label === null ? 0 : labelIndex(d, label)]!, dir), merged: t.removed.length }] : [];
    });
    const live = s.env.qmp !== undefined;
    if (plan.length) {
      await verifyOffline(s, plan.map((p) => p.index));
      await run(s, { op: 'commit', label, at: new Date().toISOString(), pending: plan.map((p) => p.index), add: [], remove: [], resume: false });
    }
    return { vm: name, label, live, disks: plan, ms: Math.round(performance.now() - t0) };
  });
}

/**
 * `vmhost vm snapshot-delete`: the point `label` goes from every disk that has it; the image
 * above it is merged into it (a commit, live or offline), so the points above keep their data.
 * @throws {HostDiskLabelError}, `BlockJobBusyError`, `BlockJobError` (as {@link commitVm}).
 */
export async function deleteVmSnapshot(host: ResolvedHost, name: string, label: string, options: DiskOpOptions = {}): Promise<{ vm: string; label: string; live: boolean; ms: number }> {
  const t0 = performance.now();
  const { v, dir } = labelledDisks(host, name, label, options);
  return await withSession(v, dir, async (s) => {
    const disks = s.rec.disks.filter((d) => labelIndex(d, label) >= 0).map((d) => d.index);
    if (disks.length === 0) throw unknownLabel(s.rec, label);
    await ensureDisks(s);
    if (options.timeoutMs !== undefined) s.env.timeoutMs = options.timeoutMs;
    const live = s.env.qmp !== undefined;
    await verifyOffline(s, disks);
    await run(s, { op: 'delete', label, at: new Date().toISOString(), pending: disks, add: [], remove: [], resume: false });
    return { vm: name, label, live, ms: Math.round(performance.now() - t0) };
  });
}
