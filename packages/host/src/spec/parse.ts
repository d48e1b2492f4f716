/**
 * Reading a host file: YAML (or JSON) text to data, with syntax errors as {@link HostSpecError}
 * problems (path `''`, line and column), then resolved by ./resolve.ts. Pure except for
 * {@link loadHostFile}, which reads the file.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { SystemError } from '@vmhost/net';
import { formatValue, HostSpecError, type HostSpecProblem } from '../errors.js';
import type { ResolvedHost } from '../types.js';
import { resolveSpec } from './resolve.js';

/** Options of {@link parseHostFile}. */
export interface ParseHostFileOptions {
  /**
   * `yaml` (the default; YAML 1.2 is a superset of JSON, so JSON text parses too) or `json`
   * (strict `JSON.parse`).
   */
  format?: 'yaml' | 'json';
  /** Directory that relative paths (kernel, initrd, disks) are resolved against. */
  baseDir: string;
  /** Where the text came from (a path), named in error messages. */
  source?: string;
}

/**
 * Parses a host file's text and resolves it ({@link resolveHost}).
 * Syntax errors are reported as problems with path `''` and their line and column.
 * @throws {HostSpecError} listing every syntax problem, or else every validation problem.
 */
export function parseHostFile(text: string, options: ParseHostFileOptions): ResolvedHost {
  const input = options.format === 'json' ? parseJson(text, options.source) : parseYaml(text, options.source);
  return resolveSpec(input, options.baseDir, options.source);
}

/**
 * Reads and resolves a host file. The format follows the extension (`.json`: JSON, anything else:
 * YAML); relative paths in it are resolved against the file's directory.
 * @throws {SystemError} (from @vmhost/net, with the errno code such as `ENOENT`) when the file cannot be read.
 * @throws {HostSpecError} when it does not parse or validate.
 */
export async function loadHostFile(path: string): Promise<ResolvedHost> {
  const abs = resolvePath(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw SystemError.from(err, `cannot read host file ${path}`);
  }
  const format = extname(abs).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseHostFile(text, { format, baseDir: dirname(abs), source: path });
}

// ---------------------------------------------------------------------------------------------
// Parsing

function parseYaml(text: string, source: string | undefined): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const lines = text.split(/\r?\n/);
    throw new HostSpecError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return syntaxProblem('YAML', e.message, line, col, lines[line - 1]);
      }),
      source,
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // unresolved or excessive aliases
    const message = err instanceof Error ? err.message : String(err);
    throw new HostSpecError([{ path: '', value: undefined, message: `YAML error: ${message}` }], source);
  }
}

function parseJson(text: string, source: string | undefined): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = /at position (\d+)/.exec(message);
    if (!at) throw new HostSpecError([{ path: '', value: undefined, message: `JSON syntax error: ${message}` }], source);
    const before = text.slice(0, Number(at[1])).split(/\r?\n/);
    const line = before.length;
    const col = (before[before.length - 1]?.length ?? 0) + 1;
    const reason = message.replace(/ in JSON at position \d+.*$/, '');
    throw new HostSpecError([syntaxProblem('JSON', reason, line, col, text.split(/\r?\n/)[line - 1])], source);
  }
}

function syntaxProblem(kind: string, reason: string, line: number, col: number, lineText: string | undefined): HostSpecProblem {
  const near = lineText === undefined || lineText.trim() === '' ? '' : `: ${formatValue(lineText.trim())}`;
  return { path: '', value: lineText, message: `${kind} syntax error at line ${line}, column ${col}: ${reason}${near}` };
}
