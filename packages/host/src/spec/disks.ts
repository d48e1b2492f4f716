/**
 * A VM's `disk`: a path, a mapping ({@link DiskSpec}: file, format, cache, readOnly), a disk made
 * from a base image ({@link BaseDiskSpec}: base, size, format, cache) or a list of them, paths
 * resolved against the host file's directory; a writable image may be used once only (a base
 * image is never written: VMs may share it, but no VM may write it as its own disk).
 * @module
 */
import type { BaseDiskSpec, DiskSpec, ResolvedDisk } from '../types.js';
import { absent, at, isObj, type Checker, type Obj } from './checker.js';
import { BASE_DISK, DISK, VM } from './schema.js';

const F = DISK.keys;
const B = BASE_DISK.keys;

/** `disk: { base, size, format, cache }` at `p`; undefined after a problem. */
function resolveBase(c: Checker, d: Obj, p: string, baseDir: string): ResolvedDisk | undefined {
  if (Object.hasOwn(d, 'file')) return c.add(p, d, 'give file (the disk itself) or base (a disk made from a base image), not both');
  const o = c.obj(d, p, BASE_DISK)!;
  const file = c.path(at(o, 'base'), `${p}.base`, baseDir);
  const sizeV = at(o, 'size');
  const sizeBytes = c.size(sizeV, `${p}.size`, B.size);
  const format = c.oneOf(at(o, 'format'), `${p}.format`, B.format);
  const cache = c.oneOf(at(o, 'cache'), `${p}.cache`, B.cache);
  if (file === undefined || !format || !cache || (!absent(sizeV) && sizeBytes === undefined)) return undefined;
  return { file, format, cache, readOnly: false, base: sizeBytes !== undefined ? { sizeBytes } : {} };
}

/** Whether `d` is the mapping of a disk made from a base image. */
const isBase = (d: Obj): boolean => Object.hasOwn(d, 'base');

/** Where each disk file is used so far (the first path using it, and whether read-only). */
export type DiskUses = Map<string, { path: string; readOnly: boolean }>;

/** `disk`: a path, a {@link DiskSpec}, or a list of them. Returns undefined after a problem. */
export function resolveDisks(
  c: Checker,
  v: unknown,
  path: string,
  baseDir: string,
  uses: DiskUses,
): ResolvedDisk[] | undefined {
  if (absent(v)) return [];
  if (Array.isArray(v) && v.length > VM.keys.disk.maxItems) {
    c.add(path, v, `at most ${VM.keys.disk.maxItems} disks`);
    return undefined;
  }
  const items: Array<[unknown, string]> = Array.isArray(v) ? v.map((d, i) => [d, `${path}[${i}]`]) : [[v, path]];
  const out: ResolvedDisk[] = [];
  let ok = true;
  for (const [d, p] of items) {
    let disk: ResolvedDisk | undefined;
    let filePath = p;
    if (typeof d === 'string') {
      const file = c.path(d, p, baseDir);
      if (file !== undefined) disk = { file, format: F.format.default, cache: F.cache.default, readOnly: F.readOnly.default };
    } else if (isObj(d) && isBase(d)) {
      filePath = `${p}.base`;
      disk = resolveBase(c, d, p, baseDir);
      if (!disk) ok = false;
    } else if (isObj(d)) {
      const o = c.obj(d, p, DISK)!;
      filePath = `${p}.file`;
      const file = c.path(at(o, 'file'), filePath, baseDir);
      const format = c.oneOf(at(o, 'format'), `${p}.format`, F.format);
      const cache = c.oneOf(at(o, 'cache'), `${p}.cache`, F.cache);
      const readOnly = c.bool(at(o, 'readOnly'), `${p}.readOnly`, F.readOnly);
      if (file !== undefined && format && cache && readOnly !== undefined) disk = { file, format, cache, readOnly };
      else ok = false;
    } else {
      c.add(p, d, 'expected a path, a mapping with file (and format, cache, readOnly), or a mapping with base (and size, format, cache)');
    }
    if (!disk) {
      ok = false;
      continue;
    }
    // A writable image used twice (by two VMs, or twice by one) would be corrupted; a base image
    // is only read (each VM writes its own overlay).
    const shared = disk.readOnly || disk.base !== undefined;
    const other = uses.get(disk.file);
    if (other !== undefined && !(other.readOnly && shared)) {
      c.add(filePath, disk.file, `disk ${disk.file} is already used by ${other.path}; only read-only disks and base images can be shared`);
      ok = false;
    } else if (other === undefined) uses.set(disk.file, { path: filePath, readOnly: shared });
    out.push(disk);
  }
  return ok ? out : undefined;
}
