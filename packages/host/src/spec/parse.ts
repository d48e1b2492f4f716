/**
 * Reading a host file: at most 1 MiB of UTF-8 (read with a bounded read: a bigger file is refused
 * after 1 MiB + 1 byte, never read whole), YAML (./yaml.ts) or JSON (./json.ts) text to data with
 * syntax errors as {@link HostSpecError} problems (path `''`, line and column), then resolved by
 * ./resolve.ts. Pure except for {@link loadHostFile}, which reads the file.
 * @module
 */
import { open } from 'node:fs/promises';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { SystemError } from '@vmhost/net';
import { HostSpecError } from '../errors.js';
import type { ResolvedHost } from '../types.js';
import { parseJson } from './json.js';
import { resolveSpec } from './resolve.js';
import { MAX_FILE_BYTES } from './schema.js';
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

const tooBig = (bytes: string, source: string | undefined): HostSpecError =>
  new HostSpecError([{ path: '', value: undefined, message: `the host file is larger than ${MAX_FILE_BYTES} bytes (1 MiB): ${bytes}` }], source);

/**
 * Parses a host file's text (at most 1 MiB as UTF-8; a leading byte-order mark is ignored) and
 * resolves it ({@link resolveHost}). Syntax errors are reported as problems with path `''` and
 * their line and column; a key given twice is a problem at its path.
 * @throws {HostSpecError} listing every syntax problem, or else every validation problem.
 */
export function parseHostFile(text: string, options: ParseHostFileOptions): ResolvedHost {
  if (typeof text !== 'string') throw new HostSpecError([{ path: '', value: typeof text, message: 'expected the text of a host file' }], options.source);
  // UTF-16 code units are at most 3 UTF-8 bytes each: count exactly only near the limit
  if (text.length > MAX_FILE_BYTES / 3 && Buffer.byteLength(text) > MAX_FILE_BYTES) throw tooBig(`${Buffer.byteLength(text)} bytes`, options.source);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const input = options.format === 'json' ? parseJson(body, options.source) : parseYaml(body, options.source);
  return resolveSpec(input, options.baseDir, options.source);
}

/**
 * Reads and resolves a host file. The format follows the extension (`.json`: JSON, anything else:
 * YAML); relative paths in it are resolved against the file's directory. At most 1 MiB is read
 * (a bigger file, or a device that never ends, is refused after 1 MiB + 1 byte); the bytes must
 * be UTF-8.
 * @throws {SystemError} (from @vmhost/net, with the errno code such as `ENOENT`) when the file cannot be read.
 * @throws {HostSpecError} when it is too big, not UTF-8, or does not parse or validate.
 */
export async function loadHostFile(path: string): Promise<ResolvedHost> {
  const abs = resolvePath(path);
  let bytes: Buffer;
  try {
    bytes = await readBounded(abs, MAX_FILE_BYTES + 1);
  } catch (err) {
    throw SystemError.from(err, `cannot read host file ${path}`);
  }
  if (bytes.length > MAX_FILE_BYTES) throw tooBig('stopped reading there', path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HostSpecError([{ path: '', value: undefined, message: 'the host file is not UTF-8 text' }], path);
  }
  const format = extname(abs).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseHostFile(text, { format, baseDir: dirname(abs), source: path });
}

/** At most `max` bytes of the file at `path` (fewer when it ends first). */
async function readBounded(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    let n = 0;
    while (n < max) {
      const { bytesRead } = await fh.read(buf, n, max - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}
