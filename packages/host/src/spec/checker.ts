/**
 * The checker of the host file: collects every problem (path, value, message) instead of throwing
 * at the first one, with typed readers for mappings (unknown keys, with "did you mean"), strings,
 * paths, booleans, integers, enums, interface names, MACs, addresses and prefixes.
 * @module
 */
import { resolve as resolvePath } from 'node:path';
import { ip, parseMac, validateIfName, ValidationError, type Prefix } from '@vmhost/net';
import type { HostSpecProblem } from '../errors.js';

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

function suggest(key: string, allowed: readonly string[]): string {
  const k0 = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of allowed) {
    // compare without the unit too: `memmory` is close to `memory`(MiB)
    const k1 = k.toLowerCase();
    const d = Math.min(distance(k0, k1), distance(k0, k.replace(/(MiB|Ms)$/, '').toLowerCase()));
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best !== undefined && (bestD <= Math.max(2, Math.floor(key.length / 3)) || best.toLowerCase().startsWith(k0))) {
    return ` (did you mean '${best}'?)`;
  }
  return ` (expected one of: ${allowed.join(', ')})`;
}

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
const join = (base: string, key: string): string => (base === '' ? key : `${base}.${key}`);

/** Collects the problems of a host file. */
export class Checker {
  readonly problems: HostSpecProblem[] = [];

  add(path: string, value: unknown, message: string): undefined {
    this.problems.push({ path, value, message });
    return undefined;
  }

  /** A mapping with only `allowed` keys (each unknown key is a problem; the known ones are still checked). */
  obj(v: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    if (!isObj(v)) return this.add(path, v, 'expected a mapping');
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key)) this.add(join(path, key), v[key], `unknown key '${key}'${suggest(key, allowed)}`);
    }
    return v;
  }

  str(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return this.add(path, undefined, 'required');
    if (typeof v !== 'string') return this.add(path, v, 'expected a string');
    return v;
  }

  /** A non-empty path without NUL, resolved against `baseDir`. */
  path(v: unknown, path: string, baseDir: string): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    if (s === '' || s.includes('\0')) return this.add(path, v, 'expected a non-empty path without NUL');
    return resolvePath(baseDir, s);
  }

  bool(v: unknown, path: string, dflt: boolean): boolean {
    if (absent(v)) return dflt;
    if (typeof v !== 'boolean') return this.add(path, v, 'expected true or false') ?? dflt;
    return v;
  }

  int(v: unknown, path: string, min: number, max: number, dflt?: number): number | undefined {
    if (absent(v)) return dflt ?? this.add(path, undefined, 'required');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.add(path, v, `expected an integer from ${min} to ${max}`);
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, values: readonly T[], dflt?: T): T | undefined {
    if (absent(v)) return dflt ?? this.add(path, undefined, `required: one of ${values.map((x) => `'${x}'`).join(', ')}`);
    if (!values.includes(v as T)) return this.add(path, v, `expected one of ${values.map((x) => `'${x}'`).join(', ')}`);
    return v as T;
  }

  /** An interface name (@vmhost/net's validateIfName). */
  ifName(v: unknown, path: string): string | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    try {
      validateIfName(v, path);
      return v;
    } catch (err) {
      if (err instanceof ValidationError) return this.add(path, v, reasonOf(err));
      throw err;
    }
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
}
