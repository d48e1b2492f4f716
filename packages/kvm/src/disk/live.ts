/**
 * Live disk operations of a running VM over QMP: an external snapshot (the running VM continues
 * on a new qcow2 overlay; the old image is frozen and kept) and a commit (the changes of the
 * images above a chosen point of the chain are merged into it; for the active top the VM pivots
 * to it). Image locking stays on: nothing here opens an image QEMU uses for writing.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, unlinkSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { BlockJobBusyError, BlockJobError, QmpCommandError } from '../errors.js';
import type { QmpClient } from '../qmp/client.js';
import { blockChain, describeChain, findLink, refuseIfHeld, type ChainLink } from './chain.js';
import { qemuImg, type QemuImgOptions } from './img.js';

export { BlockJobError } from '../errors.js';

/** Options of {@link liveSnapshot}. */
export interface LiveSnapshotOptions {
  /** The drive id (BlockBackend name), e.g. 'drive0'. */
  device: string;
  /** The new overlay (absolute path; must not exist). */
  overlay: string;
  /**
   * Who creates the overlay file. `'qemu'` (default): `blockdev-snapshot-sync`, QEMU creates it
   * and opens the current top again by name, so a QEMU running as another user (`runAs`) needs
   * rights on both. `'host'`: qemu-img creates it here (`-u`: the in-use top is not opened), then
   * `blockdev-add` + `blockdev-snapshot`: QEMU opens only the overlay (give it to the QEMU user
   * with `owner`).
   */
  create?: 'qemu' | 'host';
  /** `create: 'host'`: chown the overlay to these ids before QEMU opens it. */
  owner?: { uid: number; gid: number };
  timeoutMs?: number;
  /** qemu-img options for `create: 'host'`. */
  qemuImg?: QemuImgOptions;
}

/**
 * Live external snapshot: `overlay` (qcow2, backed by the drive's current top, absolute paths)
 * becomes the active top; the old top is frozen. Resolves with the new chain (top first).
 * Nothing changes when it fails (a host-created overlay is removed again).
 * @throws {ValidationError} bad options, an existing overlay, an unknown drive. {@link BlockJobBusyError}
 *   when a block job holds the drive. QMP errors.
 */
export async function liveSnapshot(qmp: QmpClient, options: LiveSnapshotOptions): Promise<ChainLink[]> {
  if (typeof options.device !== 'string' || !options.device) throw new ValidationError('device', options.device, 'expected a drive id');
  if (typeof options.overlay !== 'string' || !isAbsolute(options.overlay) || options.overlay.includes('\0')) {
    throw new ValidationError('overlay', options.overlay, 'expected an absolute path');
  }
  const create = options.create ?? 'qemu';
  if (create !== 'qemu' && create !== 'host') throw new ValidationError('create', create, "expected 'qemu' or 'host'");
  if (options.owner !== undefined && create !== 'host') throw new ValidationError('owner', options.owner, "only with create: 'host'");
  if (existsSync(options.overlay)) throw new ValidationError('overlay', options.overlay, 'already exists');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { device, overlay } = options;
  const chain = await blockChain(qmp, device, { timeoutMs });
  refuseIfHeld(chain, device);
  if (create === 'qemu') {
    try {
      await busyAware(device, qmp.execute('blockdev-snapshot-sync', { device, 'snapshot-file': overlay, format: 'qcow2', mode: 'absolute-paths' }, { timeoutMs }));
    } catch (err) {
      removeQuietly(overlay); // QEMU may have created it before failing to open the current top
      throw err;
    }
    return await blockChain(qmp, device, { timeoutMs });
  }
  const top = chain[0];
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', top!.file, '-F', top!.format, '-u', overlay, String(top!.virtualSize)], options.qemuImg);
  const nodeName = `vmhost-${randomBytes(6).toString('hex')}`;
  let added = false;
  try {
    if (options.owner) chownSync(overlay, options.owner.uid, options.owner.gid);
    await qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': nodeName, file: { driver: 'file', filename: overlay }, backing: null } as never, { timeoutMs });
    added = true;
    await busyAware(device, qmp.execute('blockdev-snapshot', { node: top!.nodeName, overlay: nodeName }, { timeoutMs }));
  } catch (err) {
    if (added) await qmp.execute('blockdev-del', { 'node-name': nodeName }, { timeoutMs }).catch(() => undefined);
    removeQuietly(overlay);
    throw err;
  }
  return await blockChain(qmp, device, { timeoutMs });
}

/** Options of {@link liveCommit}. */
export interface LiveCommitOptions {
  /** The drive id. */
  device: string;
  /**
   * The image to commit into, by file: an image of the chain below `top`. Default: the one right
   * below `top`. (QEMU's own default would be the base of the chain, which may be shared.)
   */
  base?: string;
  /** The same by node name ({@link ChainLink.nodeName}). */
  baseNode?: string;
  /**
   * The highest image whose changes are committed, by file. Default: the active top (an active
   * commit: READY, then `block-job-complete`, and the VM continues on `base`). An image below the
   * top commits it and everything between it and `base`; the image above it is then backed by
   * `base`, and the VM never notices.
   */
  top?: string;
  /** The same by node name. */
  topNode?: string;
  /** Job id. Default `commit-<device>`. */
  jobId?: string;
  /** Rate limit in bytes per second. Default none. */
  speed?: number;
  /** Time for the whole job. Default 300,000 ms; on expiry the job is cancelled. */
  timeoutMs?: number;
  /**
   * An active commit (the top is the active image): called when the job is READY, before
   * `block-job-complete` pivots the VM to `base`. A caller that must record the pivot can pause
   * the guest here (QMP `stop`), so that no guest write lands in `base` before its record says
   * the VM runs on it. When it throws, the job is cancelled and the chain is as it was.
   */
  beforeComplete?: () => Promise<void> | void;
}

/**
 * Commits part of a running drive's chain (`block-commit` with `base-node`/`top-node`) and waits
 * for the job to end: for the active top READY, `block-job-complete`, COMPLETED; otherwise
 * COMPLETED. Events are subscribed to before the job starts, so none is missed. A job that fails
 * or runs out of time is cancelled: before completion the chain is as it was. Resolves with the
 * new chain. The committed-away images are no longer used (the caller may delete them).
 * @throws {ValidationError} an unknown drive, or `base`/`top` not in its chain (or not in that
 *   order). {@link BlockJobBusyError} when another block job holds the drive. {@link BlockJobError}
 *   when the job fails, is cancelled or does not complete in time.
 */
export async function liveCommit(qmp: QmpClient, options: LiveCommitOptions): Promise<ChainLink[]> {
  if (typeof options.device !== 'string' || !options.device) throw new ValidationError('device', options.device, 'expected a drive id');
  if (options.base !== undefined && options.baseNode !== undefined) throw new ValidationError('baseNode', options.baseNode, 'give base or baseNode, not both');
  if (options.top !== undefined && options.topNode !== undefined) throw new ValidationError('topNode', options.topNode, 'give top or topNode, not both');
  if (options.speed !== undefined && !(Number.isSafeInteger(options.speed) && options.speed > 0)) throw new ValidationError('speed', options.speed, 'expected a positive integer');
  const device = options.device;
  const jobId = options.jobId ?? `commit-${device}`;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const chain = await blockChain(qmp, device, { timeoutMs });
  const t = options.top !== undefined || options.topNode !== undefined ? findLink(chain, device, options.topNode !== undefined ? 'topNode' : 'top', { file: options.top, node: options.topNode }) : 0;
  let b = t + 1;
  if (options.base !== undefined || options.baseNode !== undefined) {
    b = findLink(chain, device, options.baseNode !== undefined ? 'baseNode' : 'base', { file: options.base, node: options.baseNode });
  }
  if (b >= chain.length) throw new ValidationError(options.top !== undefined ? 'top' : 'device', chain[t]!.file, `has no backing image to commit into (${describeChain(chain)})`);
  if (b <= t) throw new ValidationError(options.baseNode !== undefined ? 'baseNode' : 'base', chain[b]!.file, `is not below ${chain[t]!.file} in ${describeChain(chain)}`);
  refuseIfHeld(chain, device);
  const jobs = await qmp.execute('query-block-jobs', {}, { timeoutMs });
  if (jobs.some((j) => j.device === jobId)) throw new BlockJobBusyError(device, `a block job '${jobId}' is already running`);

  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const events = qmp.events({
    name: ['BLOCK_JOB_READY', 'BLOCK_JOB_COMPLETED', 'BLOCK_JOB_ERROR', 'BLOCK_JOB_CANCELLED'],
    predicate: (e) => (e.data as { device?: string } | undefined)?.device === jobId,
    signal: ac.signal,
  });
  let started = false;
  let done = false;
  try {
    const args: Record<string, unknown> = { device, 'job-id': jobId, 'base-node': chain[b]!.nodeName };
    if (t > 0) args['top-node'] = chain[t]!.nodeName;
    if (options.speed !== undefined) args.speed = options.speed;
    await busyAware(device, qmp.execute('block-commit', args as never, { timeoutMs }));
    started = true;
    for await (const e of events) {
      const data = e.data as { error?: string; operation?: string; action?: string };
      if (e.event === 'BLOCK_JOB_READY') {
        await options.beforeComplete?.();
        await qmp.execute('block-job-complete', { device: jobId }, { timeoutMs });
      } else if (e.event === 'BLOCK_JOB_COMPLETED') {
        done = true;
        if (data.error) throw new BlockJobError(jobId, data.error);
        // Nodes added by blockdev-add (a host-made snapshot) outlive their removal from the
        // chain and would still hold the base as their backing image: delete them.
        for (const gone of chain.slice(t, b)) {
          if (!gone.nodeName.startsWith('#')) await qmp.execute('blockdev-del', { 'node-name': gone.nodeName }, { timeoutMs }).catch(() => undefined);
        }
        return await blockChain(qmp, device, { timeoutMs });
      } else if (e.event === 'BLOCK_JOB_CANCELLED') {
        done = true;
        throw new BlockJobError(jobId, 'cancelled');
      } else if (e.event === 'BLOCK_JOB_ERROR' && data.action === 'report') {
        throw new BlockJobError(jobId, `I/O error during ${data.operation ?? 'the job'}`);
      }
    }
    throw new BlockJobError(jobId, `did not complete within ${timeoutMs} ms`);
  } catch (err) {
    if (started && !done) await qmp.execute('block-job-cancel', { device: jobId, force: true }, { timeoutMs: 10_000 }).catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
    events.close();
  }
}

/** QEMU's "in use by a block job" refusals as {@link BlockJobBusyError}; other errors unchanged. */
async function busyAware<T>(device: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof QmpCommandError && /is busy|in use by block job|Job ID '.*' already in use|block job .* in progress/i.test(err.desc)) {
      throw new BlockJobBusyError(device, err.desc, { cause: err });
    }
    throw err;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}
