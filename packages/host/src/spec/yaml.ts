/**
 * YAML host files to data, strictly: YAML 1.2 with the core schema only (`%YAML 1.1` and its
 * `yes`/`no` booleans, octal `0755`, `<<` merge keys are refused), no tags but the core ones
 * (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`), every key a scalar and used
 * once per mapping (a duplicate is a problem at its path), at most 100 alias uses, and a nesting
 * depth estimated from the lexer's tokens before the parser runs: the parser and the composer of
 * the `yaml` package recurse, and a few thousand levels crashed the process outright (an
 * out-of-memory abort in the regular-expression compiler, not a catchable error).
 * @module
 */
import { Composer, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, YAMLParseError, type Document, type Node } from 'yaml';
import { formatValue, HostSpecError, type HostSpecProblem } from '../errors.js';
import { keyPath } from './checker.js';
import { MAX_DEPTH, MAX_PROBLEMS } from './schema.js';

/** Tags a host file may use: the YAML 1.2 core schema's. */
const CORE_TAGS: ReadonlySet<string> = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

/** The lexer's estimate is at least half the true depth (a sequence under a key at the key's own indentation counts once): twice the limit bounds what the parser sees. */
const ESTIMATE_LIMIT = 2 * MAX_DEPTH;

/** A syntax problem: path `''`, the line's text as the value. */
export function syntaxProblem(kind: string, reason: string, line: number, col: number, lineText: string | undefined): HostSpecProblem {
  const near = lineText === undefined || lineText.trim() === '' ? '' : `: ${formatValue(lineText.trim())}`;
  return { path: '', value: lineText, message: `${kind} syntax error at line ${line}, column ${col}: ${reason}${near}` };
}

/**
 * An estimate of the nesting depth of YAML text from its tokens, without parsing: flow brackets
 * exactly, block levels from the columns where `-` and `?` items and `key:` entries start (a
 * stack of columns, popped by a line indented less). Returns the 1-based line where the estimate
 * first passes `limit`, or 0.
 */
export function yamlTooDeep(text: string, limit: number): number {
  return tooDeep(new Lexer().lex(text), limit);
}

/** {@link yamlTooDeep} over the lexer's tokens of the text. */
function tooDeep(tokens: Iterable<string>, limit: number): number {
  const stack: number[] = [];
  let flow = 0;
  let col = 0;
  let line = 1;
  let lineStart = true;
  /** The next content token starts a key (at line start, or after `-` or `?`). */
  let keyNext = true;
  let keyCol = 0;
  const push = (c: number): void => {
    if (stack.length === 0 || stack[stack.length - 1]! < c) stack.push(c);
  };
  for (const tok of tokens) {
    if (tok === '\x02' || tok === '\x18' || tok === '\x1f' || tok === '\ufeff') continue; // document, flow end, scalar markers; BOM
    if (tok === '\n' || tok === '\r\n') {
      line++;
      [col, lineStart, keyNext] = [0, true, true];
      continue;
    }
    if ((tok.charCodeAt(0) === 32 || tok.charCodeAt(0) === 9) && /^[ \t]+$/.test(tok)) {
      col += tok.length;
      continue;
    }
    if (lineStart) {
      lineStart = false;
      if (flow === 0) while (stack.length > 0 && stack[stack.length - 1]! > col) stack.pop();
    }
    if (tok === '[' || tok === '{') flow++;
    else if (tok === ']' || tok === '}') flow = Math.max(0, flow - 1);
    else if (flow === 0 && (tok === '-' || tok === '?')) {
      push(col);
      keyNext = true;
    } else if (flow === 0 && tok === ':') push(keyCol);
    if (keyNext && tok !== '-' && tok !== '?') [keyNext, keyCol] = [false, col];
    if (stack.length + flow > limit) return line;
    const nl = tok.lastIndexOf('\n');
    if (nl < 0) col += tok.length;
    else {
      // a multi-line scalar (quoted, plain or block)
      for (let i = 0; i <= nl; i++) if (tok.charCodeAt(i) === 10) line++;
      col = tok.length - nl - 1;
      if (col === 0) [lineStart, keyNext] = [true, true];
    }
  }
  return 0;
}

/** Checks tags and keys of a parsed document; its problems (path of the key or the tagged node). */
function checkNodes(doc: Document, lines: LineCounter): HostSpecProblem[] {
  const problems: HostSpecProblem[] = [];
  const pos = (n: Node | null | undefined): string => {
    if (!n?.range) return '?';
    const { line, col } = lines.linePos(n.range[0]);
    return `line ${line}, column ${col}`;
  };
  const where = (n: Node | null | undefined): string => (n?.range ? ` (${pos(n)})` : '');
  const stack: Array<[unknown, string]> = [[doc.contents, '']];
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const [n, path] = stack.pop()!;
    if (!n || isAlias(n)) continue;
    const node = n as Node;
    if (node.tag !== undefined && !CORE_TAGS.has(node.tag)) {
      problems.push({ path, value: node.tag, message: `a tag${where(node)}: a host file is plain YAML 1.2, with the core schema's tags only` });
      continue;
    }
    if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
    } else if (isMap(node)) {
      const seen = new Map<string, Node | null>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = pair.key as Node | null;
        if (k !== null && !isScalar(k)) {
          problems.push({ path: `${path}[?]`, value: undefined, message: `a key must be a plain scalar, not a mapping, list or alias${where(k)}` });
          continue;
        }
        if (k?.tag !== undefined && !CORE_TAGS.has(k.tag)) {
          problems.push({ path, value: k.tag, message: `a tag on a key${where(k)}: a host file is plain YAML 1.2, with the core schema's tags only` });
          continue;
        }
        const key = String(k?.value ?? '');
        const p = keyPath(path, key);
        if (seen.has(key)) problems.push({ path: p, value: undefined, message: `duplicate key: given twice in one mapping (${pos(k)}; first at ${pos(seen.get(key))})` });
        else seen.set(key, k);
        stack.push([pair.value, p]);
      }
    }
  }
  return problems;
}

/**
 * The document of `text` from its lexer tokens, as the `yaml` package's `parseDocument` makes it
 * (its parser and composer, fed the tokens instead of lexing the text again); a second document
 * in the stream is an error.
 */
function composeDocument(text: string, tokens: readonly string[], lineCounter: LineCounter): Document {
  const options = { lineCounter, version: '1.2', schema: 'core', merge: false, uniqueKeys: false, prettyErrors: false } as const;
  const parser = new Parser(lineCounter.addNewLine);
  const composer = new Composer(options);
  function* cst(): Generator<ReturnType<Parser['next']> extends Generator<infer T> ? T : never> {
    lineCounter.addNewLine(0);
    for (const t of tokens) yield* parser.next(t);
    yield* parser.end();
  }
  let doc: Document | undefined;
  for (const d of composer.compose(cst(), true, text.length)) {
    if (!doc) doc = d;
    else {
      doc.errors.push(new YAMLParseError([d.range[0], d.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents; please use YAML.parseAllDocuments()'));
      break;
    }
  }
  return doc!;
}

/** Parses YAML text (at most 1 MiB, checked by the caller) to data, or throws every problem. */
export function parseYaml(text: string, source: string | undefined): unknown {
  // lexed once: the depth estimate and the parser read the same tokens
  const tokens = Array.from(new Lexer().lex(text));
  const deepAt = tooDeep(tokens, ESTIMATE_LIMIT);
  if (deepAt > 0) {
    throw new HostSpecError([{ path: '', value: undefined, message: `the host file nests mappings and lists deeper than ${MAX_DEPTH} levels (line ${deepAt})` }], source);
  }
  const lineCounter = new LineCounter();
  const doc = composeDocument(text, tokens, lineCounter);
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
  const v = doc.directives?.yaml;
  if (v?.explicit && v.version !== '1.2') {
    throw new HostSpecError([{ path: '', value: `%YAML ${v.version}`, message: `%YAML ${v.version} is not supported: a host file is YAML 1.2 (no yes/no booleans, octal 0755 or << merges)` }], source);
  }
  const problems = checkNodes(doc, lineCounter);
  if (problems.length > 0) throw new HostSpecError(problems, source);
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // unresolved or excessive aliases
    const message = err instanceof Error ? err.message : String(err);
    throw new HostSpecError([{ path: '', value: undefined, message: `YAML error: ${message}` }], source);
  }
}
