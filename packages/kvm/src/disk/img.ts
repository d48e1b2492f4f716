/**
 * qemu-img, spawned with argument arrays: images, qcow2 overlays on a backing file, their info
 * and backing chain, offline rebase, commit into a chosen base, and check. Every function
 * validates its input before it runs anything. Image locking stays on: an image a running QEMU
 * uses is refused ({@link ImageLockedError}); only `shared` reads (`-U`) look at one.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { netns, ValidationError } from '@vmhost/net';
import { DiskFormatError, ImageLockedError, QemuImgError } from '../errors.js';

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

/** Runs qemu-img with `args`; resolves its exit code and output (any exit code). */
async function run(args: string[], options: QemuImgOptions = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const bin = options.qemuImg ?? 'qemu-img';
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return await netns.collect(child, { timeoutMs: options.timeoutMs ?? 120_000 }).catch((err: Error) => {
    throw new QemuImgError(args, null, `cannot run ${bin}: ${err.message}`);
  });
}

/**
 * Runs qemu-img with `args`; resolves its stdout.
 * @throws {ImageLockedError} when it could not take an image's lock (a running QEMU uses it).
 *   {@link QemuImgError} for any other failure.
 */
export async function qemuImg(args: string[], options: QemuImgOptions = {}): Promise<string> {
  const r = await run(args, options);
  if (r.code !== 0) throw failure(args, r);
  return r.stdout;
}

function failure(args: string[], r: { code: number | null; signal: string | null; stderr: string }): QemuImgError {
  const stderr = r.stderr || `killed by ${r.signal}`;
  return /Failed to get .*lock/.test(stderr) ? new ImageLockedError(args, r.code, stderr) : new QemuImgError(args, r.code, stderr);
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
  await assertFormat(backing, backingFormat, { ...options, shared: true });
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', backing, '-F', backingFormat, file], options);
}

/**
 * Checks that `file` is in `format` (a raw image named qcow2, or a qcow2 named raw, would be read
 * wrong: a raw guest disk that starts with a qcow2 header is even taken for one by a probe).
 * `shared` reads an image in use.
 * @throws {DiskFormatError}
 */
export async function assertFormat(file: string, format: string, options: { shared?: boolean } & QemuImgOptions = {}): Promise<void> {
  const [info] = await imageInfo(file, options);
  if (info?.format !== format) throw new DiskFormatError(file, format, String(info?.format));
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

/** One image of an offline chain (as `qemu-img info --backing-chain` gives it). */
export interface ImageChainLink {
  file: string;
  format: string;
  virtualSize: number;
  backingFile?: string;
  backingFormat?: string;
}

/**
 * The backing chain of `file`, top first (`qemu-img info --backing-chain --output=json`).
 * `shared` (-U) reads images a running QEMU holds.
 */
export async function imageChain(file: string, options: { shared?: boolean } & QemuImgOptions = {}): Promise<ImageChainLink[]> {
  return (await imageInfo(file, { ...options, chain: true })).map((i) => {
    const l: ImageChainLink = { file: i.filename, format: i.format, virtualSize: i['virtual-size'] };
    const b = i['full-backing-filename'] ?? i['backing-filename'];
    if (b) l.backingFile = b;
    if (i['backing-filename-format']) l.backingFormat = i['backing-filename-format'];
    return l;
  });
}

/**
 * Offline commit (`qemu-img commit`): writes the changes of `file` into `base` (default: its
 * backing image), also those of every image between them; afterwards `base` alone holds the
 * disk (the images between are invalid: drop them and `file`). Without `base`, `file` is emptied
 * unless `drop` (-d: skip emptying, for a file about to be deleted); with `base`, qemu-img implies
 * -d. No VM may use the images ({@link ImageLockedError}).
 * @throws {ValidationError} `base` not below `file` in its chain, or `file` without backing image.
 */
export async function commitImage(file: string, options: { base?: string; drop?: boolean } & QemuImgOptions = {}): Promise<void> {
  abs(file, 'file');
  const args = ['commit', '-q'];
  if (options.base !== undefined) {
    const base = abs(options.base, 'base');
    const chain = await imageChain(file, options);
    if (!chain.slice(1).some((l) => l.file === base)) {
      throw new ValidationError('base', base, `is not below ${file} in its chain (${chain.map((l) => l.file).reverse().join(' ← ')})`);
    }
    args.push('-b', base);
  } else if (!(await backingFile(file, options))) {
    throw new ValidationError('file', file, 'has no backing image to commit into');
  }
  if (options.drop) args.push('-d');
  args.push(file);
  await qemuImg(args, options);
}

/**
 * Offline rebase (`qemu-img rebase`): `file`'s backing image becomes `backing` (in
 * `backingFormat`, checked against the image itself), or none when `backing` is null. Safe mode
 * (default) copies what differs between the old and the new backing into `file`, so the guest sees
 * the same disk; `unsafe` (-u) only rewrites the header (for a moved or renamed backing file with
 * the same content). No VM may use `file` ({@link ImageLockedError}).
 * @throws {DiskFormatError} `backingFormat` is not the format of `backing`.
 */
export async function rebaseImage(options: { file: string; backing: string | null; backingFormat?: 'qcow2' | 'raw'; unsafe?: boolean } & QemuImgOptions): Promise<void> {
  const file = abs(options.file, 'file');
  const args = ['rebase', '-q', '-f', 'qcow2'];
  if (options.unsafe) args.push('-u');
  if (options.backing === null) {
    if (options.unsafe) throw new ValidationError('unsafe', true, 'dropping the backing image needs the safe mode (its data is copied in)');
    args.push('-b', '');
  } else {
    const backing = abs(options.backing, 'backing');
    if (backing === file) throw new ValidationError('backing', backing, 'is the image itself');
    if (!existsSync(backing)) throw new ValidationError('backing', backing, 'does not exist');
    const backingFormat = fmt(options.backingFormat ?? 'qcow2', 'backingFormat');
    await assertFormat(backing, backingFormat, { ...options, shared: true });
    args.push('-b', backing, '-F', backingFormat);
  }
  await assertFormat(file, 'qcow2', { ...options, shared: true });
  args.push(file);
  await qemuImg(args, options);
}

/** What `qemu-img check --output=json` found. */
export interface ImageCheck {
  filename: string;
  format: string;
  /** Corruptions (0 for a sound image). */
  corruptions: number;
  /** Leaked clusters (harmless, wasted space). */
  leaks: number;
  /** Errors while checking. */
  checkErrors: number;
  /** The whole answer. */
  raw: Record<string, unknown>;
}

/**
 * Checks an image's metadata (`qemu-img check --output=json`; qcow2 has some, raw none). Corrupt
 * or leaking images resolve (see the counts); only a failure to check rejects. Read-only: no
 * repair.
 */
export async function checkImage(file: string, options: { format?: 'qcow2' | 'raw'; shared?: boolean } & QemuImgOptions = {}): Promise<ImageCheck> {
  abs(file, 'file');
  const args = ['check', '--output=json', '-f', fmt(options.format ?? 'qcow2', 'format')];
  if (options.shared) args.push('-U');
  args.push(file);
  const r = await run(args, options);
  // exit 0: sound; 2: corruptions; 3: leaks; 1 and 63 (format without checks): no usable answer
  if (r.code !== 0 && r.code !== 2 && r.code !== 3) throw failure(args, r);
  const raw = JSON.parse(r.stdout) as Record<string, unknown>;
  const n = (k: string): number => (typeof raw[k] === 'number' ? (raw[k] as number) : 0);
  return { filename: String(raw.filename ?? file), format: String(raw.format ?? ''), corruptions: n('corruptions'), leaks: n('leaks'), checkErrors: n('check-errors'), raw };
}
