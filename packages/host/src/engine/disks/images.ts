/**
 * The files of a disk chain: overlays made in the VM's disk directory (created exclusively, 0600,
 * never through a symlink, then given their qcow2 header by qemu-img with an argument array),
 * their removal (bare names only), the check that the files are the recorded chain (`qemu-img info
 * --backing-chain`, the oracle QEMU itself follows), and the sweep of files no record names.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, constants, fchmodSync, fsyncSync, lchownSync, lstatSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { imageChain, imageInfo, qemuImg, type ImageChainLink, type QemuImgOptions } from '@vmhost/kvm';
import { SystemError } from '@vmhost/net';
import { HostDiskError } from '../../errors.js';
import { expectedChain, topOf } from './chain.js';
import { OVERLAY_RE, type ChainRecord, type DiskChain } from './record.js';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/** A new overlay name of disk `disk`: `d<disk>-<12 hex>.qcow2`. */
export function newOverlayName(disk: number): string {
  return `d${disk}-${randomBytes(6).toString('hex')}.qcow2`;
}

/** The path of the overlay `name` in `dir`, after checking that it is a bare overlay name. */
export function overlayPath(dir: string, name: string): string {
  if (!OVERLAY_RE.test(name)) throw new Error(`not an overlay name: ${name}`);
  return join(dir, name);
}

/**
 * Makes the overlay `name` in `dir` on `backing` (in `backingFormat`): the file is created
 * exclusively (`O_EXCL|O_NOFOLLOW`, 0600 whatever the umask), then `qemu-img create -f qcow2 -b
 * BACKING -F FORMAT FILE [SIZE]` writes its header (the backing image is opened read-only for its
 * size). On failure the file is removed.
 */
export async function makeOverlay(dir: string, name: string, backing: string, backingFormat: 'qcow2' | 'raw', sizeBytes?: number, options: QemuImgOptions = {}): Promise<string> {
  const file = overlayPath(dir, name);
  let fd: number;
  try {
    fd = openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    throw SystemError.from(err, `creating ${file}`);
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  try {
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', backing, '-F', backingFormat, file, ...(sizeBytes !== undefined ? [String(sizeBytes)] : [])], options);
    syncFile(file);
  } catch (err) {
    rmSync(file, { force: true });
    throw err;
  }
  return file;
}

/**
 * fsync of an image qemu-img or QEMU just wrote, before the record names it (the record is
 * fsync'd: after a power loss it must not name a file whose header never reached the disk).
 * `follow` for the host file's own image (its path may be a symlink of the user's).
 */
export function syncFile(file: string, options: { follow?: boolean } = {}): void {
  // the host file's own image may be reached through a symlink; overlays vmhost made never are
  const fd = openSync(file, O_RDONLY | (options.follow ? 0 : O_NOFOLLOW));
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes the overlay `name` of `dir` (one that is gone already is fine). */
export function removeOverlay(dir: string, name: string): void {
  rmSync(overlayPath(dir, name), { force: true });
}

/**
 * Gives the images of disk `d` that QEMU writes or reopens by name to the user QEMU runs as
 * (`ids`; undefined: root): every overlay vmhost made (never through a symlink: lchown; 0600),
 * and the host file's own image of a plain disk (its path may be a symlink of the user's, so
 * followed). A base image is left alone: QEMU opens it read-only at start and never again.
 */
export function chownChain(d: DiskChain, dir: string, ids: { uid: number; gid: number } | undefined): void {
  const uid = ids?.uid ?? (process.getuid?.() ?? 0);
  const gid = ids?.gid ?? (process.getgid?.() ?? 0);
  for (const o of d.overlays) {
    const file = overlayPath(dir, o.file);
    try {
      if (!lstatSync(file).isFile()) continue; // verifyChain refuses it next
      lchownSync(file, uid, gid);
      chmodSync(file, 0o600);
    } catch (err) {
      if (err instanceof Error && 'code' in err && err.code === 'ENOENT') continue; // verifyChain names it
      throw SystemError.from(err, `giving ${file} to uid ${uid}`);
    }
  }
  if (d.mode === 'plain' && ids) {
    try {
      chownSync(d.origin, uid, gid);
    } catch (err) {
      throw SystemError.from(err, `giving ${d.origin} to uid ${uid}`);
    }
  }
}

/** Whether `file` is an overlay whose header names `backing` (in `backingFormat`) as its backing image. */
export async function isOverlayOf(file: string, backing: string, backingFormat: string, options: QemuImgOptions = {}): Promise<boolean> {
  try {
    const [info] = await imageInfo(file, { ...options, shared: true });
    return info?.format === 'qcow2' && (info['full-backing-filename'] ?? info['backing-filename']) === backing && info['backing-filename-format'] === backingFormat;
  } catch {
    return false; // missing, empty (a creation cut short), or not an image
  }
}

/** Refuses an overlay that is not a regular file of ours or of QEMU's user `owner` (a symlink, a directory, another user's). */
function checkOverlayFile(file: string, owner: number | undefined): void {
  let st;
  try {
    st = lstatSync(file);
  } catch {
    throw new HostDiskError('EHOST_DISK_MISMATCH', file, `${file} is in the chain record but not on disk`);
  }
  if (!st.isFile() || (st.uid !== (process.getuid?.() ?? 0) && st.uid !== owner)) throw new HostDiskError('EHOST_DISK_MISMATCH', file, `${file} is not a regular file of this user (a symlink, a directory, or planted): refused`);
}

/**
 * Checks that the files of disk `d` are the recorded chain: every overlay a regular file of ours,
 * and `qemu-img info --backing-chain` of the top shows the recorded images, formats and backing
 * formats, down to a base disk's base. A plain disk without overlays is its own image: nothing
 * to check here (its format was checked against the host file). Resolves with what qemu-img
 * showed (top first).
 * `owner`: the uid QEMU runs as (`qemu.user`), whose overlays are accepted too.
 * @throws {HostDiskError} `EHOST_DISK_MISMATCH` naming the image that differs.
 */
export async function verifyChain(d: DiskChain, dir: string, options: QemuImgOptions = {}, owner?: number): Promise<ImageChainLink[]> {
  if (d.overlays.length === 0) return [];
  for (const o of d.overlays) checkOverlayFile(overlayPath(dir, o.file), owner);
  const top = topOf(d, dir).file;
  const seen = await imageChain(top, { ...options, shared: true });
  const want = expectedChain(d, dir);
  want.forEach((w, k) => {
    const s = seen[k];
    const what = s === undefined ? 'nothing' : `${s.file} (${s.format}${s.backingFormat ? `, backing format ${s.backingFormat}` : ''})`;
    if (!s || s.file !== w.file || s.format !== w.format || (w.backingFormat !== undefined && s.backingFormat !== w.backingFormat)) {
      throw new HostDiskError(
        'EHOST_DISK_MISMATCH',
        w.file,
        `disk ${d.index}: the chain on disk is not the recorded one: image ${k} from the top is ${what}, recorded ${w.file} (${w.format}${w.backingFormat ? `, backing format ${w.backingFormat}` : ''}); nothing was started or changed`,
      );
    }
  });
  return seen;
}

/** A temp file of an interrupted record write (`chain.json.<pid>.<hex>.tmp`). */
const TEMP_RE = /^chain\.json\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the files of `dir` that vmhost made and no record names: overlays neither in a chain
 * nor in the intent (an operation killed between making a file and writing its intent cannot
 * leave one: the intent is written first; this is the backstop), and temp files of record writes
 * cut short. Other files are left alone. Returns what it removed.
 */
export function sweep(dir: string, rec: ChainRecord): string[] {
  const named = new Set([...rec.disks.flatMap((d) => d.overlays.map((o) => o.file)), ...(rec.intent ? [...rec.intent.add, ...rec.intent.remove].map((f) => f.file) : [])]);
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    if ((OVERLAY_RE.test(name) && !named.has(name)) || TEMP_RE.test(name)) {
      const st = lstatSync(join(dir, name));
      if (!st.isFile() && !st.isSymbolicLink()) continue;
      rmSync(join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}
