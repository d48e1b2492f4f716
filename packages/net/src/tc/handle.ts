/**
 * Traffic-control handles (u32 `major:minor`, written in hex as tc does: `1:`, `1:10`, `root`,
 * `none`, `ffff:fff1`). Pure.
 * @module
 */
import * as T from '../codec/tc-constants.js';
import { ValidationError } from '../errors.js';

/** The text tc prints for a handle (print_tc_classid): `root`, `none`, `1:`, `:10`, `1:10`. */
export function formatHandle(h: number): string {
  const v = h >>> 0;
  if (v === T.TC_H_ROOT) return 'root';
  if (v === T.TC_H_UNSPEC) return 'none';
  const maj = v >>> 16;
  const min = v & 0xffff;
  if (maj === 0) return `:${min.toString(16)}`;
  if (min === 0) return `${maj.toString(16)}:`;
  return `${maj.toString(16)}:${min.toString(16)}`;
}

/**
 * Parses a handle given as tc text (`'1:'`, `'1:0'`, `'1:10'`, `'ffff:'`; hex numbers, as tc reads
 * them) or as its u32 value. `kind` says what it names: a qdisc handle must have minor 0, a class
 * id a non-zero major and minor.
 */
export function parseHandle(v: unknown, field: string, kind: 'qdisc' | 'class' | 'any' = 'any'): number {
  let h: number;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) h = v;
  else if (typeof v === 'string') {
    const m = /^([0-9a-f]{1,4})?:([0-9a-f]{1,4})?$/i.exec(v);
    if (!m || m[1] === undefined) throw new ValidationError(field, v, "expected a handle such as '1:' or '1:10' (hex, as tc writes them)");
    h = ((parseInt(m[1], 16) << 16) | (m[2] === undefined ? 0 : parseInt(m[2], 16))) >>> 0;
  } else {
    throw new ValidationError(field, v, "expected a handle such as '1:' or '1:10'");
  }
  const maj = h >>> 16;
  const min = h & 0xffff;
  if (kind === 'qdisc' && (min !== 0 || maj === 0 || maj === 0xffff)) {
    throw new ValidationError(field, v, "a qdisc handle is 'MAJOR:' with a major from 1 to fffe");
  }
  if (kind === 'class' && (maj === 0 || min === 0 || maj === 0xffff)) {
    throw new ValidationError(field, v, "a class id is 'MAJOR:MINOR', both non-zero (e.g. '1:10')");
  }
  return h;
}

/** A qdisc's parent: `'root'` (the default), or the class it is attached to (`'1:10'`). */
export function parseParent(v: unknown, field: string): number {
  if (v === undefined || v === 'root') return T.TC_H_ROOT;
  return parseHandle(v, field, 'class');
}

/** The major number of a handle. */
export const majorOf = (h: number): number => h >>> 16;
/** The minor number of a handle. */
export const minorOf = (h: number): number => h & 0xffff;

/**
 * A u32 filter handle as tc prints it: `HT:` (a hash table), `HT:HASH:NODE` with an empty hash
 * when it is 0 (`800::800`), `''` for 0. Its bits: table 12, bucket 8, node 12.
 */
export function formatU32Handle(h: number): string {
  const v = h >>> 0;
  const ht = v >>> 20;
  const hash = (v >>> 12) & 0xff;
  const node = v & 0xfff;
  let s = ht ? `${ht.toString(16)}:` : '';
  if (hash) s += hash.toString(16);
  if (node) s += `:${node.toString(16)}`;
  return s;
}

/** Parses a u32 node handle (`'800::800'`, `'800:0:1'`; hex, as tc reads it). */
export function parseU32Handle(v: unknown, field: string): number {
  const m = typeof v === 'string' ? /^([0-9a-f]{1,3}):([0-9a-f]{0,2}):([0-9a-f]{1,3})$/i.exec(v) : null;
  if (!m) throw new ValidationError(field, v, "expected a u32 node handle TABLE:BUCKET:NODE such as '800::800' (hex; table 1-fff, bucket 0-ff, node 1-fff)");
  const ht = parseInt(m[1]!, 16);
  const hash = m[2] ? parseInt(m[2], 16) : 0;
  const node = parseInt(m[3]!, 16);
  if (ht === 0 || node === 0) throw new ValidationError(field, v, 'the table and the node of a u32 handle are not 0');
  return ((ht << 20) | (hash << 12) | node) >>> 0;
}
