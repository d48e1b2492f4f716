/**
 * qemu-img, spawned with argument arrays: images, qcow2 overlays on a backing file, their info,
 * and offline commit. Every function validates its input before it runs anything.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { netns, ValidationError } from '@vmhost/net';
import { QemuImgError } from '../errors.js';

/** Options shared by the qemu-img helpers. */
export interface QemuImgOptions {
  /** The qemu-img binary. Default 'qemu-img'. */
  qemuImg?: string;
  /** Give up after this long (SIGKILL). Default 120,000 ms. */
  timeoutMs?: number;
}

/** What `qemu-img info --output=json` says of one image (the fields vmhost reads; others kept). */
export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  [key: string]: unknown;
}

function abs(v: unknown, field: string): string {
  if (typeof v !== 'string' || !isAbsolute(v) || v.includes('\0')) throw new ValidationError(field, v, 'expected an absolute path');
  return v;
}

function fmt(v: unknown, field: string): 'qcow2' | 'raw' {
  if (v !== 'qcow2' && v !== 'raw') throw new ValidationError(field, v, "expected 'qcow2' or 'raw'");
  return v;
}

/** Runs qemu-img with `args`; resolves its stdout, rejects with {@link QemuImgError}. */
export async function qemuImg(args: string[], options: QemuImgOptions = {}): Promise<string> {
  const bin = options.qemuImg ?? 'qemu-img';
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await netns.collect(child, { timeoutMs: options.timeoutMs ?? 120_000 }).catch((err: Error) => {
    throw new QemuImgError(args, null, `cannot run ${bin}: ${err.message}`);
  });
  if (r.code !== 0) throw new QemuImgError(args, r.code, r.stderr || `killed by ${r.signal}`);
  return r.stdout;
}

/** Creates an empty image of `sizeBytes`. Refuses to overwrite. */
export async function createImage(options: { file: string; format?: 'qcow2' | 'raw'; sizeBytes: number } & QemuImgOptions): Promise<void> {
  const file = abs(options.file, 'file');
  const format = fmt(options.format ?? 'qcow2', 'format');
  if (!Number.isSafeInteger(options.sizeBytes) || options.sizeBytes <= 0) throw new ValidationError('sizeBytes', options.sizeBytes, 'expected a positive integer');
  if (existsSync(file)) throw new ValidationError('file', file, 'already exists');
  await qemuImg(['create', '-q', '-f', format, file, String(options.sizeBytes)], options);
}

/**
 * Creates a qcow2 overlay `file` on `backing` (`qemu-img create -f qcow2 -b BACKING -F FORMAT`):
 * the overlay takes every write, the backing file stays as it was. Refuses to overwrite.
 */
export async function createOverlay(options: { file: string; backing: string; backingFormat?: 'qcow2' | 'raw' } & QemuImgOptions): Promise<void> {
  const file = abs(options.file, 'file');
  const backing = abs(options.backing, 'backing');
  const backingFormat = fmt(options.backingFormat ?? 'qcow2', 'backingFormat');
  if (existsSync(file)) throw new ValidationError('file', file, 'already exists');
  if (!existsSync(backing)) throw new ValidationError('backing', backing, 'does not exist');
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', backing, '-F', backingFormat, file], options);
}

/**
 * `qemu-img info --output=json` of `file`; with `chain`, the whole backing chain (top first).
 * `shared` (-U) reads an image a running QEMU holds (its data may be mid-update).
 */
export async function imageInfo(file: string, options: { chain?: boolean; shared?: boolean } & QemuImgOptions = {}): Promise<ImageInfo[]> {
  abs(file, 'file');
  const args = ['info', '--output=json'];
  if (options.chain) args.push('--backing-chain');
  if (options.shared) args.push('-U');
  args.push(file);
  const parsed = JSON.parse(await qemuImg(args, options)) as ImageInfo | ImageInfo[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The backing file of `file` (absolute), or undefined when it has none. */
export async function backingFile(file: string, options: QemuImgOptions & { shared?: boolean } = {}): Promise<string | undefined> {
  const [info] = await imageInfo(file, options);
  return info?.['full-backing-filename'] ?? info?.['backing-filename'];
}

/** Offline commit: writes the overlay's changes into its backing file (`qemu-img commit`). No VM may use either. */
export async function commitImage(file: string, options: QemuImgOptions = {}): Promise<void> {
  abs(file, 'file');
  await qemuImg(['commit', '-q', file], options);
}
