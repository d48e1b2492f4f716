/**
 * Carrying out a chain record's intent, write-ahead: the intent is in the record before this
 * runs; each disk's chain is switched in the record (one atomic write) right after its files or
 * QEMU changed; the overlays no chain names are deleted last, then the intent is cleared. The same
 * code finishes an operation a kill interrupted (the next command on the VM runs it again): every
 * step first looks whether it was done (QEMU's block graph when the VM runs, the images' headers
 * when it does not) and only does what is left, so running it twice is running it once.
 *
 * Live (the VM runs: `qmp`): snapshot = `liveSnapshot` (QEMU creates the overlay and pivots);
 * commit and delete = `liveCommit`; an active commit pauses the guest at READY, pivots, writes
 * the record and resumes it, so that no guest write lands in the merged image before the record
 * says the VM runs on it (a kill in between leaves the guest paused and the pivot checkable: the
 * next command resumes it). Offline: qemu-img (`create`, `commit -b`, `rebase -u`).
 *
 * Failures: a refusal before anything changed (a busy block job, a lock, a format) drops the
 * disks not yet done from the intent; a merge that failed part-way (a commit copies into the
 * target as it goes) leaves the files as they are, which still show the VM's current disk, and
 * removes the labels the partial merge may have changed (tombstones `interrupted`); anything else
 * (QEMU gone mid-command, a kill) leaves the intent for the next command.
 * @module
 */
import { chmodSync } from 'node:fs';
import { BlockJobBusyError, BlockJobError, blockChain, commitImage, DiskFormatError, ImageLockedError, liveCommit, liveSnapshot, QmpCommandError, QmpError, rebaseImage, VmError, type QmpClient, type QemuImgOptions } from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';
import { HostDiskError } from '../../errors.js';
import { abandon, applyTransition, commit, damagedBy, deletePoint, imageFile, imageFormat, images, labelIndex, rollback, snapshot, topOf, type Transition } from './chain.js';
import { isOverlayOf, makeOverlay, overlayPath, removeOverlay, syncFile } from './images.js';
import { writeChainRecord, type ChainRecord, type DiskChain, type DiskIntent } from './record.js';

/** Where an intent is carried out. */
export interface OpEnv {
  /** The VM's disk directory (real path). */
  dir: string;
  /** The VM's name. */
  vm: string;
  /** QMP of the running VM; undefined when it does not run. */
  qmp?: QmpClient;
  /** The size a base disk's first overlay is made with (from the host file). */
  sizeOf(disk: number): number | undefined;
  /** Something to know (an interrupted operation finished, labels lost). */
  notice(message: string): void;
  /** Time for each block job. Default 300,000 ms. */
  timeoutMs?: number;
  qemuImg?: QemuImgOptions;
  /**
   * The ids the running QEMU runs as, when not root: a live snapshot's overlay is then made here
   * and given to it (QEMU could not create a file in the root-owned disk directory).
   */
  owner?: { uid: number; gid: number };
  /** Called at each point of the operation (`HostOptions.checkpoint`: fault injection, tracing). */
  checkpoint?: (op: DiskIntent['op'], phase: 'intended' | 'changed' | 'recorded', disk: number) => Promise<void>;
}

/** Tells `env.checkpoint` that the intent's operation reached `phase` for `disk`. */
async function point(env: OpEnv, rec: ChainRecord, phase: 'intended' | 'changed' | 'recorded', disk: number): Promise<void> {
  if (rec.intent) await env.checkpoint?.(rec.intent.op, phase, disk);
}

/** The drive of disk `i` (the VM's drives are `drive<index>`). */
export const driveOf = (i: number): string => `drive${i}`;

const save = (env: OpEnv, rec: ChainRecord): void => writeChainRecord(env.dir, rec);

function disk(rec: ChainRecord, i: number): DiskChain {
  const d = rec.disks.find((x) => x.index === i);
  if (!d) throw new Error(`no disk ${i} in the record`);
  return d;
}

function addOf(it: DiskIntent, i: number): string {
  const a = it.add.find((x) => x.disk === i);
  if (!a) throw new Error(`no overlay for disk ${i} in the intent`);
  return a.file;
}

/** Switches disk `i` to `t` in the record (pending no more, its removed overlays to delete) and writes it. */
function switchDisk(env: OpEnv, rec: ChainRecord, t: Transition): void {
  const it = rec.intent!;
  applyTransition(rec, t, it.at);
  it.pending = it.pending.filter((p) => p !== t.disk.index);
  it.remove.push(...t.removed.map((file) => ({ disk: t.disk.index, file })));
  save(env, rec);
}

/** Deletes the overlays the intent removed, then clears it. */
function finish(env: OpEnv, rec: ChainRecord): void {
  for (const r of rec.intent?.remove ?? []) removeOverlay(env.dir, r.file);
  rec.intent = null;
  save(env, rec);
}

/** Refused before anything changed: a ValidationError, a busy job, a lock, a format, a mismatch. */
function refusedBefore(err: unknown): boolean {
  return err instanceof ValidationError || err instanceof BlockJobBusyError || err instanceof ImageLockedError || err instanceof DiskFormatError || (err instanceof HostDiskError && err.code === 'EHOST_DISK_MISMATCH');
}

/** Gives up the pending disks (nothing of theirs was changed): their new overlays go, the rest is finished. */
function dropPending(env: OpEnv, rec: ChainRecord): void {
  const it = rec.intent!;
  for (const a of it.add.filter((x) => it.pending.includes(x.disk))) removeOverlay(env.dir, a.file);
  it.add = it.add.filter((x) => !it.pending.includes(x.disk));
  it.pending = [];
  finish(env, rec);
}

/** QEMU's chain of disk `i` must be the recorded one (or, mid-operation, the one after it). */
function checkLive(d: DiskChain, dir: string, files: string[], also: string[] = []): void {
  const want = images(d).map((img) => imageFile(d, img, dir)).reverse();
  const got = files.slice(0, want.length);
  if (got.join('\n') !== want.join('\n') && !also.includes(files[0]!)) {
    throw new HostDiskError('EHOST_DISK_MISMATCH', want[0]!, `disk ${d.index}: QEMU runs on ${files.join(' ← ')}, not on the recorded chain ${want.join(' ← ')}; nothing was changed`);
  }
}

// ------------------------------------------------------------------------------- init, snapshot

async function runInit(env: OpEnv, rec: ChainRecord): Promise<void> {
  const it = rec.intent!;
  try {
    for (const i of [...it.pending]) {
      const d = disk(rec, i);
      const name = addOf(it, i);
      const file = overlayPath(env.dir, name);
      if (!(await isOverlayOf(file, d.origin, d.originFormat, env.qemuImg))) {
        removeOverlay(env.dir, name);
        await makeOverlay(env.dir, name, d.origin, d.originFormat, env.sizeOf(i), env.qemuImg);
      }
      await point(env, rec, 'changed', i);
      switchDisk(env, rec, { disk: { ...d, overlays: [{ file: name, createdAt: it.at, point: null }] }, removed: [], dropped: [] });
      await point(env, rec, 'recorded', i);
    }
  } catch (err) {
    // a first overlay holds nothing yet: undo it, and drop the disks that have none from the record
    for (const a of it.add) removeOverlay(env.dir, a.file);
    rec.disks = rec.disks.filter((d) => !(d.mode === 'base' && (it.pending.includes(d.index) || d.overlays.every((o) => it.add.some((a) => a.file === o.file)))));
    rec.intent = null;
    save(env, rec);
    throw err;
  }
  finish(env, rec);
}

async function runSnapshot(env: OpEnv, rec: ChainRecord): Promise<void> {
  const it = rec.intent!;
  for (const i of [...it.pending]) {
    const d = disk(rec, i);
    const name = addOf(it, i);
    const file = overlayPath(env.dir, name);
    const top = topOf(d, env.dir);
    try {
      if (env.qmp) {
        const live = (await blockChain(env.qmp, driveOf(i))).map((l) => l.file);
        checkLive(d, env.dir, live, [file]);
        if (live[0] !== file) {
          removeOverlay(env.dir, name);
          await liveSnapshot(env.qmp, { device: driveOf(i), overlay: file, timeoutMs: 60_000, ...(env.owner ? { create: 'host' as const, owner: env.owner } : {}) });
        }
        chmodSync(file, 0o600); // QEMU made it with its umask; the directory (0700) hid it meanwhile
        syncFile(file);
      } else if (!(await isOverlayOf(file, top.file, top.format, env.qemuImg))) {
        removeOverlay(env.dir, name);
        await makeOverlay(env.dir, name, top.file, top.format, undefined, env.qemuImg);
      }
    } catch (err) {
      if (!isUnknownState(err)) dropPending(env, rec);
      throw err;
    }
    // a failed write here leaves the intent: the next command finds the overlay and switches
    await point(env, rec, 'changed', i);
    switchDisk(env, rec, snapshot(d, it.label!, it.at, name));
    await point(env, rec, 'recorded', i);
  }
  finish(env, rec);
}

/**
 * An error after which QEMU's state is not known (the connection went, a command timed out):
 * the intent stays for the next command, which looks at QEMU's graph again.
 */
function isUnknownState(err: unknown): boolean {
  return err instanceof QmpError && !(err instanceof QmpCommandError || err instanceof BlockJobError || err instanceof BlockJobBusyError);
}

// ------------------------------------------------------------------------------- rollback

async function runRollback(env: OpEnv, rec: ChainRecord): Promise<void> {
  const it = rec.intent!;
  if (env.qmp) throw new VmError('EVM_NOT_STOPPED', `VM '${env.vm}' runs: a rollback needs it stopped (vmhost vm rollback stops it first)`);
  const ts: Transition[] = [];
  try {
    for (const i of it.pending) {
      const d = disk(rec, i);
      const img = images(d)[labelIndex(d, it.label!)];
      if (!img) throw new Error(`rollback: no ${it.label} on disk ${i}`);
      const name = addOf(it, i);
      const target = imageFile(d, img, env.dir);
      if (!(await isOverlayOf(overlayPath(env.dir, name), target, imageFormat(d, img), env.qemuImg))) {
        removeOverlay(env.dir, name);
        await makeOverlay(env.dir, name, target, imageFormat(d, img), undefined, env.qemuImg);
      }
      ts.push(rollback(d, it.label!, it.at, name));
      await point(env, rec, 'changed', i);
    }
  } catch (err) {
    dropPending(env, rec); // nothing was discarded yet: the chains are as they were
    throw err;
  }
  // one write switches every disk: a rollback is never half done
  for (const t of ts) {
    applyTransition(rec, t, it.at);
    it.remove.push(...t.removed.map((file) => ({ disk: t.disk.index, file })));
  }
  it.pending = [];
  save(env, rec);
  for (const t of ts) await point(env, rec, 'recorded', t.disk.index);
  finish(env, rec);
}

// ------------------------------------------------------------------------------- commit, delete

/** The merge of disk `d` for the intent: the target image, the highest image merged, and the transition. */
function mergeOf(d: DiskChain, it: DiskIntent): { target: number; top: number; t: Transition } | undefined {
  if (it.op === 'commit') {
    const t = commit(d, it.label);
    const target = it.label === null ? 0 : labelIndex(d, it.label);
    return t ? { target, top: images(d).length - 1, t } : undefined;
  }
  const p = labelIndex(d, it.label!);
  return { target: p, top: p + 1, t: deletePoint(d, it.label!) };
}

/** Cancels block jobs vmhost started on the pending drives and left behind (a killed commit), and waits until they are gone. */
async function cancelLeftovers(qmp: QmpClient, pending: number[]): Promise<void> {
  const ids = new Set(pending.map((i) => `commit-${driveOf(i)}`));
  const mine = async (): Promise<string[]> => (await qmp.execute('query-block-jobs', {}, { timeoutMs: 10_000 })).map((j) => j.device).filter((id) => ids.has(id));
  const left = await mine();
  for (const id of left) await qmp.execute('block-job-cancel', { device: id, force: true }, { timeoutMs: 10_000 }).catch(() => undefined);
  const deadline = performance.now() + 30_000;
  while (left.length && (await mine()).length) {
    if (performance.now() > deadline) throw new HostDiskError('EHOST_DISK_QMP', '', `block jobs ${left.join(', ')} of VM did not end after block-job-cancel`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether the merge of disk `d` is done (QEMU's graph live; the headers offline). */
async function mergeDone(env: OpEnv, d: DiskChain, m: { target: number; top: number }): Promise<boolean> {
  const imgs = images(d);
  if (env.qmp) {
    const live = (await blockChain(env.qmp, driveOf(d.index))).map((l) => l.file);
    return !live.includes(imageFile(d, imgs[m.top]!, env.dir));
  }
  // offline, only a merge below the top leaves a mark: the image above it is backed by the target
  const above = imgs[m.top + 1];
  if (!above) return false;
  return await isOverlayOf(imageFile(d, above, env.dir), imageFile(d, imgs[m.target]!, env.dir), imageFormat(d, imgs[m.target]!), env.qemuImg);
}

/** Merges the images of `d` above `m.target` up to `m.top` into the target. */
async function merge(env: OpEnv, rec: ChainRecord, d: DiskChain, m: { target: number; top: number }): Promise<void> {
  const imgs = images(d);
  const target = imageFile(d, imgs[m.target]!, env.dir);
  const top = imageFile(d, imgs[m.top]!, env.dir);
  const active = m.top === imgs.length - 1;
  if (env.qmp) {
    const qmp = env.qmp;
    const chain = await blockChain(qmp, driveOf(d.index));
    checkLive(d, env.dir, chain.map((l) => l.file));
    if (chain.some((l) => l.heldBy)) throw new BlockJobBusyError(driveOf(d.index), `a block job holds ${chain.filter((l) => l.heldBy).map((l) => `${l.file} (${l.heldBy})`).join(', ')}`);
    const jobs = await qmp.execute('query-block-jobs', {}, { timeoutMs: 10_000 });
    if (jobs.length) throw new BlockJobBusyError(driveOf(d.index), `block jobs run on the VM: ${jobs.map((j) => `${j.device} (${j.type}, ${j.status})`).join(', ')}`);
    await liveCommit(qmp, {
      device: driveOf(d.index),
      base: target,
      ...(active ? {} : { top }),
      timeoutMs: env.timeoutMs ?? 300_000,
      beforeComplete: async () => {
        // the pivot: pause the guest and say so in the record before QEMU switches
        await qmp.execute('stop', {}, { timeoutMs: 10_000 });
        rec.intent!.resume = true;
        save(env, rec);
      },
    });
    return;
  }
  await commitImage(top, { ...env.qemuImg, base: target });
  syncFile(target, { follow: imgs[m.target]!.name === null });
  const above = imgs[m.top + 1];
  if (above) {
    await rebaseImage({ ...env.qemuImg, file: imageFile(d, above, env.dir), backing: target, backingFormat: imageFormat(d, imgs[m.target]!), unsafe: true });
    syncFile(imageFile(d, above, env.dir));
  }
}

/** Resumes the guest the intent paused (once its pivot is in the record). */
async function resume(env: OpEnv, rec: ChainRecord): Promise<void> {
  if (!rec.intent?.resume) return;
  if (env.qmp) await env.qmp.execute('cont', {}, { timeoutMs: 10_000 });
  rec.intent.resume = false;
  save(env, rec);
}

async function runMerge(env: OpEnv, rec: ChainRecord): Promise<void> {
  const it = rec.intent!;
  if (env.qmp) await cancelLeftovers(env.qmp, it.pending);
  // what a killed run did already (a pivot, a rewritten header) is switched first, before the guest runs on
  for (const i of [...it.pending]) {
    const d = disk(rec, i);
    const m = mergeOf(d, it);
    if (!m) switchDisk(env, rec, { disk: d, removed: [], dropped: [] });
    else if (await mergeDone(env, d, m)) switchDisk(env, rec, m.t);
  }
  await resume(env, rec);
  for (const i of [...it.pending]) {
    const d = disk(rec, i);
    const m = mergeOf(d, it)!;
    try {
      await merge(env, rec, d, m);
    } catch (err) {
      if (isUnknownState(err)) throw err; // a pivot may have happened: the guest stays paused until the next command looks
      await resume(env, rec).catch(() => undefined); // the job was cancelled or never started: QEMU is on the old top
      if (refusedBefore(err)) {
        dropPending(env, rec);
      } else {
        const lost = damagedBy(d, m.target, m.top);
        switchDisk(env, rec, abandon(d, lost));
        dropPending(env, rec);
        if (lost.length) env.notice(`VM ${env.vm} disk ${i}: the merge into ${imageFile(d, images(d)[m.target]!, env.dir)} failed part-way; the disk shows what it showed before, but the snapshot(s) ${lost.join(', ')} may have changed and were removed`);
      }
      throw err;
    }
    // a failed write here leaves the guest paused and the intent: the next command sees the pivot
    await point(env, rec, 'changed', i);
    switchDisk(env, rec, m.t);
    await point(env, rec, 'recorded', i);
    await resume(env, rec);
  }
  finish(env, rec);
}

/**
 * Writes `intent` into the record (the write-ahead step: nothing is touched before it is there)
 * and carries it out.
 */
export async function startIntent(env: OpEnv, rec: ChainRecord, intent: DiskIntent): Promise<void> {
  rec.intent = intent;
  save(env, rec);
  await point(env, rec, 'intended', 0);
  await runIntent(env, rec);
}

/**
 * Carries out (or finishes) the intent of `rec` (written already), as the module says. With
 * `env.qmp` the VM runs and the live operations are used; without, it must not run (QEMU's image
 * locks refuse qemu-img otherwise: {@link ImageLockedError}).
 */
export async function runIntent(env: OpEnv, rec: ChainRecord): Promise<void> {
  const it = rec.intent;
  if (!it) return;
  if (it.pending.length === 0) {
    await resume(env, rec);
    finish(env, rec);
    return;
  }
  switch (it.op) {
    case 'init':
      if (env.qmp) throw new HostDiskError('EHOST_DISK_MISMATCH', env.dir, `VM ${env.vm} runs while its first overlay is being made`);
      return await runInit(env, rec);
    case 'snapshot':
      return await runSnapshot(env, rec);
    case 'rollback':
      return await runRollback(env, rec);
    case 'commit':
    case 'delete':
      return await runMerge(env, rec);
  }
}
