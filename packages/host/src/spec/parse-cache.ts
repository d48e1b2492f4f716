/**
 * The parse of an unchanged host file, kept. Turning YAML text into data (./yaml.ts, the `yaml`
 * package's lexer, parser and composer) is the slowest part of loading a large host file: ~150 ms
 * for 300 VMs in a fresh, JIT-cold CLI process, more than all of a no-op plan's own work. And a
 * host file is read again and again unchanged: plan, apply, plan; status; `vmhost run`'s reloads.
 *
 * What is kept is only the syntax step's result, the data, in a private file per host file path
 * in the cache directory (`/run/vmhost/cache` for the CLI; volatile, emptied at boot), with the
 * sha256 of the text it came from and the identity of the parser (the sha256 of the parsing
 * modules' own source and of the `yaml` package's version). {@link cachedParse} returns it only
 * when both match, so what it returns is what parsing the same text gives again; everything after
 * the syntax step (./resolve.ts: defaults, checks, the files the host file names) runs every time.
 * Data that JSON would not give back exactly (±Infinity, NaN, -0, other objects than plain ones
 * and arrays) is never kept.
 *
 * The directory is checked as a state directory is (engine/state-dir.ts: owned by the running
 * user, 0700, no directory others can write on the way); its files are written without
 * following symlinks (`O_EXCL|O_NOFOLLOW`, renamed into place) and read only when they are the
 * running user's regular files that nobody else can write. A cache never decides anything: every
 * failure to read, check or write it is a miss, and the host file is parsed.
 * @module
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { checkStateDir, readPrivateFile, writePrivateFile } from '../engine/state-dir.js';
import { moduleFile } from '../package-root.js';

/** Where the CLI keeps parses (volatile: /run is emptied at boot). */
export const PARSE_CACHE_DIR = '/run/vmhost/cache';

/** At most this many host files' parses are kept; the oldest go first. */
export const PARSE_CACHE_ENTRIES = 64;

/** A kept parse is at most this big (a host file is at most 1 MiB; its data as JSON a few times that at worst). */
const MAX_ENTRY_BYTES = 8 * 1024 * 1024;

const ENTRY = /^[0-9a-f]{32}\.json$/;

/** The format of a kept parse. */
interface Entry {
  v: 1;
  parser: string;
  sha256: string;
  data: unknown;
}

let parserId: string | undefined;

/** The identity of the parser: its modules' source and the `yaml` package's version (read once). */
function parser(): string {
  if (parserId === undefined) {
    const h = createHash('sha256');
    // the built modules (of which the `vmhost` bundle is made), or the sources when run from source
    for (const m of ['spec/yaml', 'spec/json', 'spec/parse']) h.update(m).update('\0').update(readFileSync(moduleFile(m))).update('\0');
    h.update(readFileSync(createRequire(import.meta.url).resolve('yaml/package.json')));
    parserId = h.digest('hex');
  }
  return parserId;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The file of `path`'s parse in `dir`. */
const entryFile = (dir: string, path: string, format: string): string => join(dir, `${sha256(`${format}\n${path}`).slice(0, 32)}.json`);

/** Whether `v` comes back from JSON exactly as it is. */
export function jsonExact(v: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.every((x) => jsonExact(x, depth + 1));
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k of Object.keys(v)) if (!jsonExact((v as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}

/**
 * The data the host file at `path` (absolute) parsed to, if `dir` keeps a parse of exactly
 * `text` in `format` by this parser; undefined otherwise (never throws).
 */
export function cachedParse(dir: string, path: string, format: 'yaml' | 'json', text: string): { data: unknown } | undefined {
  try {
    const real = checkStateDir(dir, false);
    if (real === undefined) return undefined;
    const raw = readPrivateFile(entryFile(real, path, format), MAX_ENTRY_BYTES);
    if (raw === undefined) return undefined;
    const e = JSON.parse(raw) as Partial<Entry>;
    if (e.v !== 1 || e.parser !== parser() || e.sha256 !== sha256(text) || !('data' in e)) return undefined;
    return { data: e.data };
  } catch {
    return undefined;
  }
}

/**
 * Keeps `data`, what `text` (the host file at `path`, absolute) parsed to in `format`, in `dir`
 * (made 0700 when missing), and drops the oldest parses beyond {@link PARSE_CACHE_ENTRIES}.
 * Data JSON would not give back exactly is not kept. Never throws.
 */
export function keepParse(dir: string, path: string, format: 'yaml' | 'json', text: string, data: unknown): void {
  try {
    if (!jsonExact(data)) return;
    const real = checkStateDir(dir, true);
    if (real === undefined) return;
    const entry: Entry = { v: 1, parser: parser(), sha256: sha256(text), data };
    const file = entryFile(real, path, format);
    writePrivateFile(file, JSON.stringify(entry));
    prune(real, basename(file));
  } catch {
    /* a cache that cannot be written is only slower */
  }
}

/**
 * Removes the oldest entries of `dir` beyond {@link PARSE_CACHE_ENTRIES} (never `keep`, the one
 * just written), and temp files a killed writer left (older than a minute).
 */
function prune(dir: string, keep: string): void {
  const all = readdirSync(dir);
  for (const n of all.filter((x) => x.endsWith('.tmp'))) {
    try {
      if (Date.now() - statSync(join(dir, n)).mtimeMs > 60_000) rmSync(join(dir, n), { force: true });
    } catch {
      /* gone meanwhile */
    }
  }
  const names = all.filter((n) => ENTRY.test(n) && n !== keep);
  if (names.length < PARSE_CACHE_ENTRIES) return;
  const aged = names.map((n) => {
    try {
      return { n, t: statSync(join(dir, n)).mtimeMs };
    } catch {
      return { n, t: 0 };
    }
  });
  aged.sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, aged.length - (PARSE_CACHE_ENTRIES - 1))) rmSync(join(dir, n), { force: true });
}
