/**
 * The checker of the host file: collects every problem (path, value, message) instead of throwing
 * at the first one (at most {@link MAX_PROBLEMS}, then a count), with typed readers for the field
 * kinds of ./schema.ts: mappings (unknown keys, with "did you mean"), names, paths, command lines,
 * booleans, integers, enums, interface names, MACs, addresses and prefixes.
 * @module
 */
import { resolve as resolvePath } from 'node:path';
import { ip, parseMac, validateIfName, ValidationError, type Prefix } from '@vmhost/net';
import type { HostSpecProblem } from '../errors.js';
import {
  CMDLINE_RE, FORBIDDEN_PATH_TREES, FORBIDDEN_PATHS, formatRate, keysOf, MAX_PATH_BYTES, MAX_PROBLEMS, PATH_FORBIDDEN_RE, rateBps, RESERVED_IFNAMES, SIZE_RE, SPECIAL_KINDS,
  type BoolField, type SpecialKind, type TextField, type CmdlineField, type EnumField, type IntField, type NameField, type ObjectField, type RateField, type SizeField,
} from './schema.js';

// ---------------------------------------------------------------------------------------------
// Messages

/** The reason of a ValidationError thrown by @vmhost/net, without its `invalid FIELD: VALUE: ` head. */
function reasonOf(err: ValidationError): string {
  const head = new ValidationError(err.field, err.value, '').message;
  return err.message.startsWith(head) ? err.message.slice(head.length) : err.message;
}

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Keys longer than this get no suggestion (the distance is quadratic) and are cut in paths. */
const MAX_KEY_SHOWN = 64;

function suggest(key: string, allowed: readonly string[]): string {
  const k0 = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  if (key.length <= MAX_KEY_SHOWN) {
    for (const k of allowed) {
      // compare without the unit too: `memmory` is close to `memory`(MiB)
      const k1 = k.toLowerCase();
      const d = Math.min(distance(k0, k1), distance(k0, k.replace(/(MiB|Ms)$/, '').toLowerCase()));
      if (d < bestD) [best, bestD] = [k, d];
    }
  }
  if (best !== undefined && (bestD <= Math.max(2, Math.floor(key.length / 3)) || best.toLowerCase().startsWith(k0))) {
    return ` (did you mean '${best}'?)`;
  }
  return ` (expected one of: ${allowed.join(', ')})`;
}

/** A key as written in paths and messages: as is when it is a plain identifier, else quoted with every odd character escaped (and cut). */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;

/** `key` shown safely: `'key'`, or a JSON string with non-ASCII and invisible characters escaped. */
export function showKey(key: string): string {
  return PLAIN_KEY.test(key) ? `'${key}'` : quoteKey(key);
}

function quoteKey(key: string): string {
  const cut = key.length > MAX_KEY_SHOWN ? `${key.slice(0, MAX_KEY_SHOWN)}...` : key;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The path of `key` under `base`: `base.key`, or `base["odd key"]`. */
export function keyPath(base: string, key: string): string {
  if (PLAIN_KEY.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${quoteKey(key)}]`;
}

/** Whether a string holds a lone surrogate (not valid Unicode: it cannot be written as UTF-8). */
const hasLoneSurrogate = (s: string): boolean => /\p{Cs}/u.test(s);

// ---------------------------------------------------------------------------------------------
// The checker: collects problems instead of throwing at the first one

/** A mapping of the host file. */
export type Obj = Record<string, unknown>;

/** Whether `v` is a mapping. */
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `o[key]` when `o` has it as its own key. */
export const at = (o: Obj, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined);
/** Left out: missing, `undefined` or `null` (an empty YAML value). */
export const absent = (v: unknown): v is undefined | null => v === undefined || v === null;

/** Collects the problems of a host file. */
export class Checker {
  readonly problems: HostSpecProblem[] = [];
  /** Problems found beyond {@link MAX_PROBLEMS} (not listed). */
  dropped = 0;

  /** Records a problem; returns undefined (so that a reader can `return this.add(...)`). */
  add(path: string, value: unknown, message: string): undefined {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ path, value, message });
    else this.dropped++;
    return undefined;
  }

  /** Whether any problem was found. */
  get failed(): boolean {
    return this.problems.length > 0;
  }

  /** A mapping with only the keys of `f` (each unknown key is a problem; the known ones are still checked). */
  obj(v: unknown, path: string, f: ObjectField): Obj | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    if (!isObj(v)) return this.add(path, v, 'expected a mapping');
    const allowed = keysOf(f);
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key)) this.add(keyPath(path, key), v[key], `unknown key ${showKey(key)}${suggest(key, allowed)}`);
    }
    return v;
  }

  str(v: unknown, path: string): string | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    if (typeof v !== 'string') return this.add(path, v, 'expected a string');
    return v;
  }

  /** A name matching the field's pattern. */
  name(v: unknown, path: string, f: NameField): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    if (s.length > f.maxLength || !f.pattern.test(s)) return this.add(path, v, `expected ${f.hint}`);
    return s;
  }

  /**
   * A non-empty file path of at most 4095 bytes without control, invisible-format or lone
   * surrogate characters, resolved against `baseDir`; not under /proc or /sys, not /dev/mem,
   * /dev/kmem or /dev/port.
   */
  path(v: unknown, path: string, baseDir: string): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    if (s === '') return this.add(path, v, 'expected a non-empty path');
    if (PATH_FORBIDDEN_RE.test(s) || hasLoneSurrogate(s)) return this.add(path, v, 'a path must not hold control characters (newline, NUL, ...), invisible format characters or lone surrogates');
    const abs = resolvePath(baseDir, s);
    if (Buffer.byteLength(abs) > MAX_PATH_BYTES) return this.add(path, v, `longer than ${MAX_PATH_BYTES} bytes (PATH_MAX) once made absolute`);
    const tree = FORBIDDEN_PATH_TREES.find((t) => abs === t || abs.startsWith(`${t}/`));
    if (tree !== undefined) return this.add(path, v, `is under ${tree}: a kernel interface, not an image`);
    if (FORBIDDEN_PATHS.includes(abs)) return this.add(path, v, 'is a device exposing physical memory or I/O ports');
    return abs;
  }

  /** Printable ASCII text of at most `f.maxBytes`. */
  text(v: unknown, path: string, f: TextField): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    if (!CMDLINE_RE.test(s) || s.length > f.maxBytes) return this.add(path, v, `expected printable ASCII of at most ${f.maxBytes} bytes`);
    return s;
  }

  /** A kernel command line: printable ASCII, at most `f.maxBytes`. */
  cmdline(v: unknown, path: string, f: CmdlineField): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    if (!CMDLINE_RE.test(s)) return this.add(path, v, 'expected printable ASCII (no newline, tab or other control characters)');
    if (s.length > f.maxBytes) return this.add(path, v, `longer than ${f.maxBytes} bytes (${s.length}): the kernel keeps at most ${f.maxBytes} (COMMAND_LINE_SIZE)`);
    return s;
  }

  bool(v: unknown, path: string, f: BoolField): boolean | undefined {
    if (absent(v)) return f.default ?? (f.required ? this.add(path, undefined, 'required') : undefined);
    if (typeof v !== 'boolean') return this.add(path, v, 'expected true or false');
    return v;
  }

  int(v: unknown, path: string, f: IntField): number | undefined {
    if (absent(v)) return f.default ?? (f.required ? this.add(path, undefined, 'required') : undefined);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) {
      return this.add(path, v, `expected an integer from ${f.min} to ${f.max}`);
    }
    return v;
  }

  /** A rate (`100mbit`: kbit, mbit or gbit) within the field's limits, in bits per second. */
  rate(v: unknown, path: string, f: RateField): number | undefined {
    if (absent(v)) return f.required ? this.add(path, undefined, 'required') : undefined;
    const bps = typeof v === 'string' ? rateBps(v) : undefined;
    if (bps === undefined) return this.add(path, v, "expected a rate: a whole number and kbit, mbit or gbit, such as '100mbit'");
    if (bps < f.minBps || bps > f.maxBps) return this.add(path, v, `expected ${formatRate(f.minBps)} to ${formatRate(f.maxBps)}`);
    return bps;
  }

  /** A size in bytes: an integer (a multiple of 512), or `N` with K, M, G or T (binary); from `f.min` to `f.max`; undefined when left out. */
  size(v: unknown, path: string, f: SizeField): number | undefined {
    if (absent(v)) return f.required ? this.add(path, undefined, 'required') : undefined;
    const hint = `expected bytes (a multiple of 512) or a number with K, M, G or T (binary units, e.g. 8G), from ${f.min} to ${f.max} bytes`;
    let n: number;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v % 512 !== 0) return this.add(path, v, hint);
      n = v;
    } else if (typeof v === 'string' && SIZE_RE.test(v)) {
      const unit = v.at(-1)!;
      const exp = 'KMGT'.indexOf(unit) + 1;
      n = Number(exp ? v.slice(0, -1) : v) * 1024 ** exp;
      if (!exp && n % 512 !== 0) return this.add(path, v, hint);
    } else {
      return this.add(path, v, hint);
    }
    if (!(n >= f.min && n <= f.max)) return this.add(path, v, hint);
    return n;
  }

  oneOf<T extends string>(v: unknown, path: string, f: EnumField<T>): T | undefined {
    const list = f.values.map((x) => `'${x}'`).join(', ');
    if (absent(v)) return f.default ?? this.add(path, undefined, `required: one of ${list}`);
    if (typeof v !== 'string' || !(f.values as readonly string[]).includes(v)) return this.add(path, v, `expected one of ${list}`);
    return v as T;
  }

  /** An interface name (@vmhost/net's validateIfName), not `lo`, `all` or `default`. */
  ifName(v: unknown, path: string): string | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    try {
      validateIfName(v, path);
    } catch (err) {
      if (err instanceof ValidationError) return this.add(path, v, reasonOf(err));
      throw err;
    }
    if (RESERVED_IFNAMES.includes(v)) return this.add(path, v, `'${v}' is the loopback or a name the kernel reserves (net.*.conf.${v})`);
    return v;
  }

  /** A unicast MAC, normalised (@vmhost/net's parseMac). */
  mac(v: unknown, path: string): string | undefined {
    try {
      return parseMac(v, path, { unicast: true });
    } catch (err) {
      if (err instanceof ValidationError) return this.add(path, v, reasonOf(err));
      throw err;
    }
  }

  /** A bare address of `family` (no prefix length, no zone index), in canonical text. */
  addr(v: unknown, path: string, family: 4 | 6): string | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    try {
      return ip.formatAddress(ip.parseAddress(v, path, family));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const hint = typeof v === 'string' && v.includes('/') ? ' without a prefix length' : '';
      return this.add(path, v, `expected an IPv${family} address${hint}`);
    }
  }

  /** `ADDRESS/LEN` of `family`. */
  prefix(v: unknown, path: string, family: 4 | 6): Prefix | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    try {
      return ip.parsePrefix(v, { field: path, family });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return this.add(path, v, `expected an IPv${family} address with a prefix length 0-${family === 4 ? 32 : 128}, such as ${family === 4 ? '192.168.0.1/24' : '2001:db8::1/64'}`);
    }
  }

  /**
   * Checks that an address or prefix is clear of the special-purpose ranges (@vmhost/net's
   * `ip.specialRange`) of the kinds in `refuse` (default: all); a problem naming the range otherwise.
   */
  ordinary(a: string | Prefix, path: string, value: unknown, refuse: readonly SpecialKind[] = SPECIAL_KINDS): boolean {
    const r = ip.specialRange(a);
    if (!r || !refuse.includes(r.kind)) return true;
    const an = /^[aeiu]/.test(r.kind) ? 'an' : 'a';
    const why = typeof a === 'string' ? `is ${an} ${r.kind} address (${r.range})` : `overlaps the ${r.kind} range ${r.range}`;
    return !this.add(path, value, why);
  }
}

/** A summary of problems not listed, or undefined. */
export function droppedProblem(c: Checker): HostSpecProblem | undefined {
  return c.dropped > 0 ? { path: '', value: undefined, message: `... and ${c.dropped} more problem(s) not listed` } : undefined;
}
