/**
 * Live disk operations of a running VM over QMP: an external snapshot (the running VM continues
 * on a new qcow2 overlay; the old image is frozen and kept) and an active commit (the overlay's
 * changes are merged back into its backing image and the VM pivots to it).
 * @module
 */
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { QmpError } from '../errors.js';
import type { QmpClient } from '../qmp/client.js';

/** Options of {@link liveSnapshot}. */
export interface LiveSnapshotOptions {
  /** The drive id (BlockBackend name), e.g. 'drive0'. */
  device: string;
  /** The new overlay (absolute path; created by QEMU, must not exist). */
  overlay: string;
  timeoutMs?: number;
}

/**
 * `blockdev-snapshot-sync`: QEMU creates `overlay` (qcow2, backed by the drive's current image,
 * absolute paths), flushes, and switches the running VM's writes to it.
 */
export async function liveSnapshot(qmp: QmpClient, options: LiveSnapshotOptions): Promise<void> {
  if (typeof options.device !== 'string' || !options.device) throw new ValidationError('device', options.device, 'expected a drive id');
  if (typeof options.overlay !== 'string' || !isAbsolute(options.overlay)) throw new ValidationError('overlay', options.overlay, 'expected an absolute path');
  if (existsSync(options.overlay)) throw new ValidationError('overlay', options.overlay, 'already exists');
  await qmp.execute(
    'blockdev-snapshot-sync',
    { device: options.device, 'snapshot-file': options.overlay, format: 'qcow2', mode: 'absolute-paths' },
    { timeoutMs: options.timeoutMs ?? 60_000 },
  );
}

/** Options of {@link liveCommit}. */
export interface LiveCommitOptions {
  /** The drive id. */
  device: string;
  /**
   * The image to commit into (absolute path of an image in the drive's backing chain). Default:
   * the top overlay's immediate backing image. (QEMU's own default would be the deepest image of
   * the chain, which would change a shared base image.)
   */
  base?: string;
  /** Job id. Default `commit-<device>`. */
  jobId?: string;
  /** Time for the whole job. Default 300,000 ms. */
  timeoutMs?: number;
}

/** A block job ended with an error or was cancelled. */
export class BlockJobError extends QmpError {
  constructor(jobId: string, message: string) {
    super('EQMP_BLOCK_JOB', `block job ${jobId}: ${message}`);
  }
}

/**
 * Active commit of the drive's top overlay into its backing image: `block-commit`, wait for
 * BLOCK_JOB_READY, `block-job-complete`, wait for BLOCK_JOB_COMPLETED. The events are subscribed
 * to before the job starts, so none is missed. Afterwards the VM runs on the backing image and
 * the overlay is no longer used (the caller may delete it).
 * @throws {BlockJobError} when the job fails or is cancelled; QMP errors.
 */
export async function liveCommit(qmp: QmpClient, options: LiveCommitOptions): Promise<void> {
  if (typeof options.device !== 'string' || !options.device) throw new ValidationError('device', options.device, 'expected a drive id');
  const jobId = options.jobId ?? `commit-${options.device}`;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const baseNode = await findBaseNode(qmp, options.device, options.base, timeoutMs);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const events = qmp.events({
    name: ['BLOCK_JOB_READY', 'BLOCK_JOB_COMPLETED', 'BLOCK_JOB_ERROR', 'BLOCK_JOB_CANCELLED'],
    predicate: (e) => (e.data as { device?: string } | undefined)?.device === jobId,
    signal: ac.signal,
  });
  try {
    await qmp.execute('block-commit', { device: options.device, 'job-id': jobId, 'base-node': baseNode }, { timeoutMs });
    for await (const e of events) {
      const data = e.data as { error?: string; operation?: string; action?: string };
      if (e.event === 'BLOCK_JOB_READY') {
        await qmp.execute('block-job-complete', { device: jobId }, { timeoutMs });
      } else if (e.event === 'BLOCK_JOB_COMPLETED') {
        if (data.error) throw new BlockJobError(jobId, data.error);
        return;
      } else if (e.event === 'BLOCK_JOB_CANCELLED') {
        throw new BlockJobError(jobId, 'cancelled');
      } else if (e.event === 'BLOCK_JOB_ERROR' && data.action === 'report') {
        throw new BlockJobError(jobId, `I/O error during ${data.operation ?? 'the job'}`);
      }
    }
    throw new BlockJobError(jobId, `did not complete within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    events.close();
  }
}

/** The node name of the format node of `base` (default: the top image's backing) in `device`'s chain. */
async function findBaseNode(qmp: QmpClient, device: string, base: string | undefined, timeoutMs: number): Promise<string> {
  const blocks = await qmp.execute('query-block', {}, { timeoutMs });
  const top = blocks.find((b) => b.device === device)?.inserted;
  if (!top) throw new ValidationError('device', device, 'no such drive with a medium');
  const want = base ?? top.image['backing-image']?.filename;
  if (!want) throw new ValidationError('device', device, `${top.file} has no backing image to commit into`);
  const nodes = await qmp.execute('query-named-block-nodes', { flat: true }, { timeoutMs });
  const node = nodes.find((n) => n.file === want && n.drv !== 'file' && n['node-name'] !== top['node-name']);
  if (!node?.['node-name']) throw new ValidationError('base', want, `not an image in the backing chain of ${device}`);
  return node['node-name'];
}
