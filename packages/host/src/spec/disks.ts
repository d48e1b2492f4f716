/**
 * A VM's `disk`: a path, a mapping ({@link DiskSpec}: file, format, cache, readOnly) or a list of
 * them, paths resolved against the host file's directory; a writable image may be used once only.
 * @module
 */
import type { DiskSpec, ResolvedDisk } from '../types.js';
import { absent, at, isObj, type Checker } from './checker.js';
import { DISK, VM } from './schema.js';

const F = DISK.keys;

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
      c.add(p, d, 'expected a path or a mapping with file (and format, cache, readOnly)');
    }
    if (!disk) {
      ok = false;
      continue;
    }
    // A writable image used twice (by two VMs, or twice by one) would be corrupted.
    const other = uses.get(disk.file);
    if (other !== undefined && !(other.readOnly && disk.readOnly)) {
      c.add(filePath, disk.file, `disk ${disk.file} is already used by ${other.path}; only read-only disks can be shared`);
      ok = false;
    } else if (other === undefined) uses.set(disk.file, { path: filePath, readOnly: disk.readOnly });
    out.push(disk);
  }
  return ok ? out : undefined;
}
