/**
 * QMP framing: one JSON value per line (QEMU ends each with CRLF). Pure code, no I/O.
 * @module
 */
import { isUtf8 } from 'node:buffer';

/** Default cap on one line: 10 MiB (query-qmp-schema of QEMU 7.2 is ~200 KiB). */
export const DEFAULT_MAX_LINE_BYTES = 10 * 1024 * 1024;

/**
 * What {@link LineSplitter.push} found: a line; a line over the cap (`overflow`: the bytes seen
 * when it was cut, `head`: its first bytes); or a line that is not valid UTF-8 (`invalidUtf8`).
 */
export type LineItem = { line: string } | { overflow: number; head: string } | { invalidUtf8: true; head: string };

const HEAD = 200;

/**
 * Splits a byte stream into lines. A line longer than `maxLineBytes` is reported once as
 * `{ overflow }` (with its first bytes) and its remaining bytes are skipped up to the next newline;
 * the splitter never holds more than `maxLineBytes` buffered. A line that is not valid UTF-8 is
 * reported as `{ invalidUtf8 }` instead of being decoded with replacement characters.
 */
export class LineSplitter {
  readonly #max: number;
  #parts: Buffer[] = [];
  #size = 0;
  #skipping = false;

  constructor(maxLineBytes: number = DEFAULT_MAX_LINE_BYTES) {
    this.#max = maxLineBytes;
  }

  /** Feeds a chunk; returns the complete lines (without CR/LF; empty lines skipped) and the bad ones. */
  push(chunk: Buffer): LineItem[] {
    const out: LineItem[] = [];
    const n = chunk.length;
    let start = 0;
    while (start < n) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? n : nl;
      if (this.#skipping) {
        // the rest of an over-cap line: dropped
      } else if (this.#size + (end - start) > this.#max) {
        const head = Buffer.concat([...this.#parts, chunk.subarray(start, start + HEAD)]).toString('utf8', 0, HEAD);
        out.push({ overflow: this.#size + (end - start), head });
        this.#parts = [];
        this.#size = 0;
        this.#skipping = true;
      } else if (nl >= 0 && this.#size === 0) {
        // the common case: a whole line inside this chunk, decoded in place
        this.#emit(out, chunk, start, end);
      } else if (end > start) {
        this.#parts.push(chunk.subarray(start, end));
        this.#size += end - start;
      }
      if (nl < 0) break;
      if (this.#skipping) {
        this.#skipping = false;
      } else if (this.#size > 0) {
        const line = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size);
        this.#parts = [];
        this.#size = 0;
        this.#emit(out, line, 0, line.length);
      }
      start = nl + 1;
    }
    return out;
  }

  #emit(out: LineItem[], buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === 0x0d) end--;
    if (end === start) return;
    const line = buf.toString('utf8', start, end);
    // Invalid sequences decode to U+FFFD: only then look at the bytes (a real U+FFFD is valid).
    if (line.includes('\ufffd') && !isUtf8(buf.subarray(start, end))) {
      out.push({ invalidUtf8: true, head: line.slice(0, HEAD) });
      return;
    }
    if (line.trim().length) out.push({ line });
  }

  /** Bytes of an unfinished line held. */
  get buffered(): number {
    return this.#size;
  }
}
