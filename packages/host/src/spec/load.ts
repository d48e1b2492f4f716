/**
 * Reading a host file: at most 1 MiB of UTF-8 (read with a bounded read: a bigger file is refused
 * after 1 MiB + 1 byte, never read whole), parsed (./parse.ts, loaded only when needed) or, with a
 * cache directory, taken from the kept parse of the same text (./parse-cache.ts), then resolved
 * (./resolve.ts) every time.
 * @module
 */
import { open } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve as resolvePath } from 'node:path';
import { SystemError, ValidationError } from '@vmhost/net';
import { HostSpecError } from '../errors.js';
import type { ResolvedHost } from '../types.js';
import { cachedParse, keepParse } from './parse-cache.js';
import { resolveSpec } from './resolve.js';
import { MAX_FILE_BYTES, tooBig } from './schema.js';

export { PARSE_CACHE_DIR } from './parse-cache.js';

/** Options of {@link loadHostFile}. */
export interface LoadHostFileOptions {
  /**
   * Keep the parse of the host file in this directory, and take it from there while the file's
   * text is unchanged (the CLI uses `/run/vmhost/cache`): parsing YAML is most of the time it
   * takes to load a large host file. The directory must be safe as a state directory is (the
   * running user's, 0700; made when missing); the parse is only the syntax step, resolution and
   * its checks run every time, and what the cache gives is what parsing the same text gives. A
   * cache that cannot be read or written is passed over. Default: no cache.
   */
  cacheDir?: string;
}

/**
 * Reads and resolves a host file. The format follows the extension (`.json`: JSON, anything else:
 * YAML); relative paths in it are resolved against the file's directory. At most 1 MiB is read
 * (a bigger file, or a device that never ends, is refused after 1 MiB + 1 byte); the bytes must
 * be UTF-8.
 * @throws {SystemError} (from @vmhost/net, with the errno code such as `ENOENT`) when the file cannot be read.
 * @throws {HostSpecError} when it is too big, not UTF-8, or does not parse or validate.
 * @throws {ValidationError} for a `cacheDir` that is not an absolute path.
 */
export async function loadHostFile(path: string, options: LoadHostFileOptions = {}): Promise<ResolvedHost> {
  const cacheDir = options.cacheDir;
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || !isAbsolute(cacheDir))) throw new ValidationError('cacheDir', cacheDir, 'expected an absolute path');
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
  let data: unknown;
  const kept = cacheDir !== undefined ? cachedParse(cacheDir, abs, format, text) : undefined;
  if (kept) data = kept.data;
  else {
    data = (await import('./parse.js')).parseText(text, format, path);
    if (cacheDir !== undefined) keepParse(cacheDir, abs, format, text, data);
  }
  return resolveSpec(data, dirname(abs), path);
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
