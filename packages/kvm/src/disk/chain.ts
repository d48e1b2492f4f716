/**
 * The block graph of a running VM's drive, read over QMP: its chain of images from the active top
 * down to the base, with the node names block jobs take.
 * @module
 */
import { ValidationError } from '@vmhost/net';
import { BlockJobBusyError } from '../errors.js';
import type { QmpClient } from '../qmp/client.js';

/** One image of a drive's chain. */
export interface ChainLink {
  /** The image file (absolute, as QEMU opened it). */
  file: string;
  /** Its format ('qcow2', 'raw', ...). */
  format: string;
  /** QEMU's node name of the image's format node (what `block-commit` and `blockdev-snapshot` take). */
  nodeName: string;
  /** Guest-visible size in bytes. */
  virtualSize: number;
  /** The image below, as this image's header names it (undefined for the base). */
  backingFile?: string;
  /** The format this image's header gives its backing image. */
  backingFormat?: string;
  /**
   * When a block job holds this image: the driver of the filter node the job put above it
   * (`commit_top`, `mirror_top`, `copy-on-read`, `copy-before-write`).
   */
  heldBy?: string;
}

/** Filter drivers QEMU's block jobs insert into a chain while they run. */
const JOB_FILTERS = new Set(['commit_top', 'mirror_top', 'copy-on-read', 'copy-before-write']);

interface ImageNode {
  filename: string;
  format: string;
  'virtual-size': number;
  'full-backing-filename'?: string;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'backing-image'?: ImageNode;
}

/**
 * The chain of `device` (a drive id), active top first, base last: `query-block` gives the images
 * and `query-named-block-nodes` their format nodes.
 * @throws {ValidationError} `device` when there is no such drive or it has no medium.
 */
export async function blockChain(qmp: QmpClient, device: string, options: { timeoutMs?: number } = {}): Promise<ChainLink[]> {
  if (typeof device !== 'string' || !device) throw new ValidationError('device', device, 'expected a drive id');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const blocks = await qmp.execute('query-block', {}, { timeoutMs });
  const inserted = blocks.find((b) => b.device === device)?.inserted;
  if (!inserted) {
    throw new ValidationError('device', device, `no such drive with a medium (drives: ${blocks.map((b) => b.device).filter(Boolean).join(', ') || 'none'})`);
  }
  const nodes = await qmp.execute('query-named-block-nodes', { flat: true }, { timeoutMs });
  const links: ChainLink[] = [];
  let img: ImageNode | undefined = inserted.image as unknown as ImageNode;
  let topNode: string | undefined = inserted['node-name'];
  while (img) {
    const file = img.filename;
    const format = img.format;
    // the top's node is known; below it, the format node of that file (not its protocol node)
    const nodeName = topNode ?? nodes.find((n) => n.file === file && n.drv === format && !links.some((l) => l.nodeName === n['node-name']))?.['node-name'];
    if (!nodeName) throw new ValidationError('device', device, `no block node found for ${file} in the chain`);
    const link: ChainLink = { file, format, nodeName, virtualSize: img['virtual-size'] };
    const backing = img['full-backing-filename'] ?? img['backing-filename'];
    if (backing) link.backingFile = backing;
    if (img['backing-filename-format']) link.backingFormat = img['backing-filename-format'];
    const filter = nodes.find((n) => n.file === file && JOB_FILTERS.has(n.drv));
    if (filter) link.heldBy = filter.drv;
    links.push(link);
    img = img['backing-image'];
    topNode = undefined;
  }
  return links;
}

/** Finds an image of `chain` by file or node name; throws naming `field` and the chain when absent. */
export function findLink(chain: ChainLink[], device: string, field: string, ref: { file?: string; node?: string }): number {
  const i = chain.findIndex((l) => (ref.node !== undefined ? l.nodeName === ref.node : l.file === ref.file));
  if (i < 0) {
    const what = ref.node !== undefined ? `node ${ref.node}` : ref.file;
    throw new ValidationError(field, ref.node ?? ref.file, `${what} is not in the chain of ${device} (${describeChain(chain)})`);
  }
  return i;
}

/** `base ← ... ← top` as files (QEMU's notation: each image backs the next), for messages. */
export function describeChain(chain: ChainLink[]): string {
  return [...chain].reverse().map((l) => l.file).join(' ← ') || 'empty';
}

/** Throws {@link BlockJobBusyError} when a block job holds an image of `chain`. */
export function refuseIfHeld(chain: ChainLink[], device: string): void {
  const held = chain.filter((l) => l.heldBy);
  if (held.length) throw new BlockJobBusyError(device, `a block job holds ${held.map((l) => `${l.file} (${l.heldBy})`).join(', ')}`);
}
