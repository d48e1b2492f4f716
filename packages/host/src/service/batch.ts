/**
 * The repair batch of `vmhost run`: the entry ids notifications named, with what set them off,
 * gathered until none came for `debounceMs` (but no longer than `maxDebounceMs` after the first),
 * then handed over at once (a burst such as a deleted bridge's dozen notifications is one repair).
 * @module
 */
import type { ServiceTuning } from './types.js';

/** What a batch hands over. */
export interface Batch {
  /** The entries to repair. */
  ids: Set<string>;
  /** Everything is to be compared (notifications were lost, the uplink appeared). */
  full: boolean;
  /** What set it off, `; `-joined. */
  trigger: string;
}

/** Gathers repairs and calls `fire` once a burst is over. */
export class RepairBatch {
  #ids = new Set<string>();
  #full = false;
  #triggers: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #firstAt: number | undefined;

  constructor(
    private readonly tuning: Pick<ServiceTuning, 'debounceMs' | 'maxDebounceMs'>,
    private readonly fire: () => void,
  ) {}

  /** Adds entries (and, with `full`, a comparison of everything) set off by `trigger`. */
  add(ids: readonly string[], trigger: string, full = false): void {
    for (const id of ids) this.#ids.add(id);
    if (full) this.#full = true;
    if (!this.#triggers.includes(trigger)) this.#triggers.push(trigger);
    const now = performance.now();
    this.#firstAt ??= now;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.tuning.debounceMs, this.tuning.maxDebounceMs - (now - this.#firstAt)));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#firstAt = undefined;
      this.fire();
    }, wait);
  }

  /** Whether `id` waits in the batch. */
  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /** What was gathered; the batch is empty afterwards. */
  take(): Batch {
    const b = { ids: this.#ids, full: this.#full, trigger: this.#triggers.join('; ') };
    this.#ids = new Set();
    this.#full = false;
    this.#triggers = [];
    return b;
  }

  /** Drops the timer (stopping). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
