/**
 * A host file's text: at most 1 MiB of UTF-8, YAML (./yaml.ts) or JSON (./json.ts) text to data
 * with syntax errors as {@link HostSpecError} problems (path `''`, line and column), then resolved
 * by ./resolve.ts. Pure. Reading the file is ./load.ts.
 * @module
 */
import { HostSpecError } from '../errors.js';
import type { ResolvedHost } from '../types.js';
import { parseJson } from './json.js';
import { resolveSpec } from './resolve.js';
import { MAX_FILE_BYTES, tooBig } from './schema.js';
import { parseYaml } from './yaml.js';

/** Options of {@link parseHostFile}. */
export interface ParseHostFileOptions {
  /**
   * `yaml` (the default; YAML 1.2 is a superset of JSON, so JSON text parses too) or `json`
   * (`JSON.parse`, with duplicate keys refused).
   */
  format?: 'yaml' | 'json';
  /** Directory that relative paths (kernel, initrd, disks) are resolved against. */
  baseDir: string;
  /** Where the text came from (a path), named in error messages. */
  source?: string;
}

/**
 * The syntax step: a host file's text (at most 1 MiB as UTF-8; a leading byte-order mark is
 * ignored) to data, as YAML or JSON.
 * @throws {HostSpecError} listing every syntax problem.
 */
export function parseText(text: string, format: 'yaml' | 'json', source: string | undefined): unknown {
  // UTF-16 code units are at most 3 UTF-8 bytes each: count exactly only near the limit
  if (text.length > MAX_FILE_BYTES / 3 && Buffer.byteLength(text) > MAX_FILE_BYTES) throw tooBig(`${Buffer.byteLength(text)} bytes`, source);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return format === 'json' ? parseJson(body, source) : parseYaml(body, source);
}

/**
 * Parses a host file's text (at most 1 MiB as UTF-8; a leading byte-order mark is ignored) and
 * resolves it ({@link resolveHost}). Syntax errors are reported as problems with path `''` and
 * their line and column; a key given twice is a problem at its path.
 * @throws {HostSpecError} listing every syntax problem, or else every validation problem.
 */
export function parseHostFile(text: string, options: ParseHostFileOptions): ResolvedHost {
  if (typeof text !== 'string') throw new HostSpecError([{ path: '', value: typeof text, message: 'expected the text of a host file' }], options.source);
  return resolveSpec(parseText(text, options.format === 'json' ? 'json' : 'yaml', options.source), options.baseDir, options.source);
}
