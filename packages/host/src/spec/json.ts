/**
 * JSON host files to data, strictly: `JSON.parse` (V8's parser does not recurse, so depth cannot
 * overflow it), then one pass over the text that `JSON.parse` silently accepts too much of: a key
 * given twice in one object (`JSON.parse` keeps the last) is a problem at its path, and nesting
 * deeper than 32 levels is refused.
 * @module
 */
import { HostSpecError, type HostSpecProblem } from '../errors.js';
import { keyPath } from './checker.js';
import { MAX_DEPTH, MAX_PROBLEMS } from './schema.js';
import { syntaxProblem } from './yaml.js';

/** Line and column (1-based) of offset `at` in `text`. */
function linePos(text: string, at: number): { line: number; col: number } {
  const before = text.slice(0, at).split(/\r?\n/);
  return { line: before.length, col: (before[before.length - 1]?.length ?? 0) + 1 };
}

/** `line L, column C` of offsets of one text, by binary search over its line starts (made once). */
function positions(text: string): (at: number) => string {
  let starts: number[] | undefined;
  return (at) => {
    if (!starts) {
      starts = [0];
      for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
    }
    let [lo, hi] = [0, starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return `line ${lo + 1}, column ${at - starts[lo]! + 1}`;
  };
}

interface Frame {
  obj: boolean;
  path: string;
  /** Objects: keys seen, to their offset. */
  keys: Map<string, number>;
  /** Objects: the next string is a key. */
  expectKey: boolean;
  key: string;
  /** Arrays: the index of the current element. */
  index: number;
}

/**
 * Duplicate keys (each at its path) and too deep nesting of well-formed JSON `text` (it has
 * passed `JSON.parse`).
 */
export function scanJson(text: string): HostSpecProblem[] {
  const problems: HostSpecProblem[] = [];
  const stack: Frame[] = [];
  const pos = positions(text);
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.obj && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const first = top.keys.get(key);
        if (first !== undefined) {
          problems.push({ path: keyPath(top.path, key), value: undefined, message: `duplicate key: given twice in one object (${pos(i)}; first at ${pos(first)})` });
          if (problems.length >= MAX_PROBLEMS) return problems;
        } else top.keys.set(key, i);
        [top.key, top.expectKey] = [key, false];
      }
      i = j;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      const top = stack[stack.length - 1];
      const path = !top ? '' : top.obj ? keyPath(top.path, top.key) : `${top.path}[${top.index}]`;
      stack.push({ obj: ch === 0x7b, path, keys: new Map(), expectKey: true, key: '', index: 0 });
      if (stack.length > MAX_DEPTH) {
        problems.push({ path: '', value: undefined, message: `the host file nests objects and arrays deeper than ${MAX_DEPTH} levels (${pos(i)})` });
        return problems;
      }
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      const top = stack[stack.length - 1]!;
      if (top.obj) top.expectKey = true;
      else top.index++;
    }
  }
  return problems;
}

/** Parses JSON text (at most 1 MiB, checked by the caller) to data, or throws every problem. */
export function parseJson(text: string, source: string | undefined): unknown {
  let data: unknown;
  try {
    data = JSON.parse(text) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = /at position (\d+)/.exec(message);
    if (!at) throw new HostSpecError([{ path: '', value: undefined, message: `JSON syntax error: ${message}` }], source);
    const { line, col } = linePos(text, Number(at[1]));
    const reason = message.replace(/ in JSON at position \d+.*$/, '');
    throw new HostSpecError([syntaxProblem('JSON', reason, line, col, text.split(/\r?\n/)[line - 1])], source);
  }
  const problems = scanJson(text);
  if (problems.length > 0) throw new HostSpecError(problems, source);
  return data;
}
