/**
 * A minimal ISO 9660 image writer with Rock Ridge names, for cloud-init NoCloud seeds: one root
 * directory with a few small regular files. Pure (no I/O) and deterministic: the same input gives
 * the same bytes.
 *
 * Layout (2048-byte sectors): 0-15 system area (zeros), 16 primary volume descriptor, 17 set
 * terminator, 18 type-L path table, 19 type-M path table, 20.. the root directory, then each
 * file's data from a sector boundary. File identifiers are ISO 9660 level 1 (8.3, upper case,
 * `;1`), and each record carries Rock Ridge (RRIP 1.10, "RRIP_1991A") `NM` and `PX` entries with
 * the real lower-case name and mode; the root's `.` record holds the SUSP `SP` and `ER` entries.
 * Linux (isofs), blkid, isoinfo and cloud-init read it; see docs/host-cloud-init.md.
 * @module
 */
import { ValidationError } from '@vmhost/net';

/** One file of the image's root directory. */
export interface IsoFile {
  /** The Rock Ridge name: 1-64 of [A-Za-z0-9._-], unique in the image. */
  name: string;
  /** The contents. */
  data: Uint8Array;
}

/** What {@link buildIso} takes. */
export interface IsoOptions {
  /** Volume identifier (the file system label): 1-32 of [A-Z0-9_], e.g. `CIDATA`. */
  volumeId: string;
  /** The files of the root directory. */
  files: readonly IsoFile[];
  /** Recorded as every date of the image. Default 1970-01-01T00:00:00Z (deterministic output). */
  date?: Date;
}

/** Sector size. */
export const ISO_SECTOR = 2048;
const FIRST_DIR_SECTOR = 20;
/** Largest file {@link buildIso} accepts (the seed's files are a few KiB). */
export const ISO_MAX_FILE_BYTES = 64 * 1024 * 1024;

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const VOLUME_RE = /^[A-Z0-9_]{1,32}$/;

function both16(b: Buffer, off: number, v: number): void {
  b.writeUInt16LE(v, off);
  b.writeUInt16BE(v, off + 2);
}
function both32(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v, off);
  b.writeUInt32BE(v, off + 4);
}
function text(b: Buffer, off: number, len: number, s: string): void {
  b.fill(0x20, off, off + len);
  b.write(s, off, len, 'latin1');
}

/** ECMA-119 9.1.5: 7-byte recording date (years since 1900, ..., GMT offset 0). */
function dirDate(d: Date): Buffer {
  return Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
}
/** ECMA-119 8.4.26.1: 17-byte volume date `YYYYMMDDHHMMSScc` + GMT offset 0. */
function volDate(d: Date): Buffer {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const s = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}00`;
  return Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]);
}

/** A level-1 identifier (`NAME.EXT;1`, d-characters) for `name`, unique among `taken`. */
function isoName(name: string, taken: Set<string>): string {
  const clean = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const dot = name.lastIndexOf('.');
  let base = clean(dot > 0 ? name.slice(0, dot) : name).slice(0, 8);
  const ext = dot > 0 ? clean(name.slice(dot + 1)).slice(0, 3) : '';
  let id = `${base}.${ext};1`;
  for (let i = 1; taken.has(id); i++) {
    const suffix = String(i);
    base = `${base.slice(0, 8 - suffix.length)}${suffix}`;
    id = `${base}.${ext};1`;
  }
  taken.add(id);
  return id;
}

/** SUSP entry: signature, length, version 1, payload. */
function susp(sig: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(sig, 'latin1'), Buffer.from([payload.length + 4, 1]), payload]);
}
/** RRIP 1.10 `PX`: mode, links, uid 0, gid 0 (both-endian 32 each). */
function px(mode: number, links: number): Buffer {
  const p = Buffer.alloc(32);
  both32(p, 0, mode);
  both32(p, 8, links);
  return susp('PX', p);
}
function nm(name: string): Buffer {
  return susp('NM', Buffer.concat([Buffer.from([0]), Buffer.from(name, 'latin1')]));
}
const SP = susp('SP', Buffer.from([0xbe, 0xef, 0]));
const ER_ID = 'RRIP_1991A';
const ER_DESC = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
const ER = susp('ER', Buffer.concat([Buffer.from([ER_ID.length, ER_DESC.length, 0, 1]), Buffer.from(ER_ID + ER_DESC, 'latin1')]));

/** A directory record (ECMA-119 9.1) with a system use area. */
function dirRecord(id: Buffer, extent: number, size: number, dir: boolean, date: Date, systemUse: Buffer): Buffer {
  const pad = id.length % 2 === 0 ? 1 : 0;
  let len = 33 + id.length + pad + systemUse.length;
  if (len % 2) len++;
  if (len > 255) throw new RangeError(`directory record of ${len} bytes`);
  const r = Buffer.alloc(len);
  r[0] = len;
  both32(r, 2, extent);
  both32(r, 10, size);
  dirDate(date).copy(r, 18);
  r[25] = dir ? 2 : 0;
  both16(r, 28, 1);
  r[32] = id.length;
  id.copy(r, 33);
  systemUse.copy(r, 33 + id.length + pad);
  return r;
}

/** Lays records into sectors: a record never crosses a sector boundary. */
function layDirectory(records: Buffer[]): Buffer {
  const sectors: Buffer[] = [];
  let cur = Buffer.alloc(ISO_SECTOR);
  let used = 0;
  for (const r of records) {
    if (used + r.length > ISO_SECTOR) {
      sectors.push(cur);
      cur = Buffer.alloc(ISO_SECTOR);
      used = 0;
    }
    r.copy(cur, used);
    used += r.length;
  }
  sectors.push(cur);
  return Buffer.concat(sectors);
}

/**
 * Validates `o`: the volume id, the file names (unique), the sizes.
 * @throws {ValidationError} naming the field (`volumeId`, `files[1].name`, ...).
 */
export function validateIsoOptions(o: IsoOptions): void {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (typeof o.volumeId !== 'string' || !VOLUME_RE.test(o.volumeId)) throw new ValidationError('volumeId', o.volumeId, 'expected 1-32 of [A-Z0-9_]');
  if (!Array.isArray(o.files)) throw new ValidationError('files', o.files, 'expected an array');
  if (o.files.length > 32) throw new ValidationError('files', o.files.length, 'at most 32 files');
  const seen = new Set<string>();
  o.files.forEach((f, i) => {
    if (!f || typeof f !== 'object') throw new ValidationError(`files[${i}]`, f, 'expected { name, data }');
    if (typeof f.name !== 'string' || !NAME_RE.test(f.name) || f.name === '.' || f.name === '..') {
      throw new ValidationError(`files[${i}].name`, f.name, 'expected 1-64 of [A-Za-z0-9._-]');
    }
    if (seen.has(f.name)) throw new ValidationError(`files[${i}].name`, f.name, 'duplicate file name');
    seen.add(f.name);
    if (!(f.data instanceof Uint8Array)) throw new ValidationError(`files[${i}].data`, f.data, 'expected a Uint8Array');
    if (f.data.length > ISO_MAX_FILE_BYTES) throw new ValidationError(`files[${i}].data`, f.data.length, `larger than ${ISO_MAX_FILE_BYTES} bytes`);
  });
  if (o.date !== undefined && (!(o.date instanceof Date) || Number.isNaN(o.date.getTime()) || o.date.getUTCFullYear() < 1970 || o.date.getUTCFullYear() > 2155)) {
    throw new ValidationError('date', o.date, 'expected a valid Date in 1970-2155');
  }
}

/**
 * Builds the image. Files are sorted by their ISO identifier (as ECMA-119 requires) and stored
 * each from a sector boundary, padded with zeros. The order of `files` does not matter.
 * @throws {ValidationError} for bad options.
 */
export function buildIso(o: IsoOptions): Buffer {
  validateIsoOptions(o);
  const date = o.date ?? new Date(0);
  const taken = new Set<string>();
  // Short names are given in the order of the real names, so the input order does not matter.
  const files = [...o.files]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => ({ ...f, iso: isoName(f.name, taken) }))
    .sort((a, b) => (a.iso < b.iso ? -1 : a.iso > b.iso ? 1 : 0));

  // The root directory's size depends only on its records, not on extents: lay it out once with
  // placeholder extents to know where the data starts.
  const records = (root: number, rootSize: number, extents: number[]): Buffer[] => [
    dirRecord(Buffer.from([0]), root, rootSize, true, date, Buffer.concat([SP, px(0o40555, 2), ER])),
    dirRecord(Buffer.from([1]), root, rootSize, true, date, px(0o40555, 2)),
    ...files.map((f, i) => dirRecord(Buffer.from(f.iso, 'latin1'), extents[i]!, f.data.length, false, date, Buffer.concat([px(0o100444, 1), nm(f.name)]))),
  ];
  const rootSize = layDirectory(records(0, 0, files.map(() => 0))).length;
  const rootSectors = rootSize / ISO_SECTOR;
  const extents: number[] = [];
  let next = FIRST_DIR_SECTOR + rootSectors;
  for (const f of files) {
    extents.push(f.data.length === 0 ? 0 : next);
    next += Math.ceil(f.data.length / ISO_SECTOR);
  }
  const total = next;
  const img = Buffer.alloc(total * ISO_SECTOR);

  // Primary volume descriptor (ECMA-119 8.4).
  const pvd = img.subarray(16 * ISO_SECTOR, 17 * ISO_SECTOR);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  text(pvd, 8, 32, 'LINUX');
  text(pvd, 40, 32, o.volumeId);
  both32(pvd, 80, total);
  both16(pvd, 120, 1);
  both16(pvd, 124, 1);
  both16(pvd, 128, ISO_SECTOR);
  both32(pvd, 132, 10);
  pvd.writeUInt32LE(18, 140);
  pvd.writeUInt32BE(19, 148);
  dirRecord(Buffer.from([0]), FIRST_DIR_SECTOR, rootSize, true, date, Buffer.alloc(0)).copy(pvd, 156);
  text(pvd, 190, 128, '');
  text(pvd, 318, 128, '');
  text(pvd, 446, 128, '');
  text(pvd, 574, 128, 'VMHOST');
  text(pvd, 702, 37 * 3, '');
  volDate(date).copy(pvd, 813);
  volDate(date).copy(pvd, 830);
  Buffer.concat([Buffer.from('0'.repeat(16), 'latin1'), Buffer.from([0])]).copy(pvd, 847);
  volDate(date).copy(pvd, 864);
  pvd[881] = 1;

  // Volume descriptor set terminator.
  const term = img.subarray(17 * ISO_SECTOR, 18 * ISO_SECTOR);
  term[0] = 255;
  term.write('CD001', 1, 'latin1');
  term[6] = 1;

  // Path tables: the root only (directory number 1, its own parent).
  const pathEntry = (le: boolean): Buffer => {
    const e = Buffer.alloc(10);
    e[0] = 1;
    if (le) {
      e.writeUInt32LE(FIRST_DIR_SECTOR, 2);
      e.writeUInt16LE(1, 6);
    } else {
      e.writeUInt32BE(FIRST_DIR_SECTOR, 2);
      e.writeUInt16BE(1, 6);
    }
    return e;
  };
  pathEntry(true).copy(img, 18 * ISO_SECTOR);
  pathEntry(false).copy(img, 19 * ISO_SECTOR);

  layDirectory(records(FIRST_DIR_SECTOR, rootSize, extents)).copy(img, FIRST_DIR_SECTOR * ISO_SECTOR);
  files.forEach((f, i) => {
    if (f.data.length) Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).copy(img, extents[i]! * ISO_SECTOR);
  });
  return img;
}
