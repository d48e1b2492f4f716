/**
 * QMP framing: one JSON value per line (QEMU ends each with CRLF). Pure code, no I/O.
 * @module
 */

/** Default cap on one line: 10 MiB (query-qmp-schema of QEMU 7.2 is ~200 KiB). */
export const DEFAULT_MAX_LINE_BYTES = 10 * 1024 * 1024;

/** What {@link LineSplitter.push} found. */
export type LineItem = { line: string } | { overflow: number; head: string };

/**
 * Splits a byte stream into lines. A line longer than `maxLineBytes` is reported once as
 * `{ overflow }` (with its first bytes) and its remaining bytes are skipped up to the next newline;
 * the splitter never holds more than `maxLineBytes` buffered.
 */
export class LineSplitter {
  readonly #max: number;
  #parts: Buffer[] = [];
  #size = 0;
  #skipping = false;

  constructor(maxLineBytes: number = DEFAULT_MAX_LINE_BYTES) {
    this.#max = maxLineBytes;
  }

  /** Feeds a chunk; returns the complete lines (without CR/LF; empty lines skipped) and overflows. */
  push(chunk: Buffer): LineItem[] {
    const out: LineItem[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.#skipping) {
        if (this.#size + piece.length > this.#max) {
          const head = Buffer.concat([...this.#parts, piece.subarray(0, 200)]).subarray(0, 200).toString('utf8');
          out.push({ overflow: this.#size + piece.length, head });
          this.#parts = [];
          this.#size = 0;
          this.#skipping = nl < 0;
        } else if (piece.length) {
          this.#parts.push(piece);
          this.#size += piece.length;
        }
      }
      if (nl < 0) break;
      if (this.#skipping) {
        this.#skipping = false;
      } else if (this.#size > 0 || this.#parts.length) {
        let line = this.#parts.length === 1 ? this.#parts[0]!.toString('utf8') : Buffer.concat(this.#parts).toString('utf8');
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line.trim().length) out.push({ line });
      }
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    return out;
  }

  /** Bytes of an unfinished line held. */
  get buffered(): number {
    return this.#size;
  }
}
