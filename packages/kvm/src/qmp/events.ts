/**
 * QMP events as async iterators. Each subscription has its own queue, so a slow consumer never
 * steals or delays events from another, and a subscription made before a command is sent sees
 * every event that command causes.
 *
 * ```ts
 * const powerdown = qmp.waitForEvent('SHUTDOWN', { timeoutMs: 30_000 }); // subscribed now
 * await qmp.execute('system_powerdown');
 * const ev = await powerdown;                                            // no race
 *
 * for await (const ev of qmp.events({ name: ['BLOCK_JOB_COMPLETED', 'BLOCK_JOB_ERROR'] })) { ... }
 * ```
 * @module
 */
import type { QmpDisconnectedError } from '../errors.js';
import type { QmpEventMap, QmpEventName } from './generated.js';

/** When QEMU emitted an event. */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

/** One event as QEMU sends it. `data` is absent for events without data. */
export interface QmpEvent<D = unknown> {
  event: string;
  data?: D;
  timestamp: QmpTimestamp;
}

/** An event whose name is known to the generated schema, with typed data. */
export type TypedQmpEvent<K extends QmpEventName> = { event: K; timestamp: QmpTimestamp } & (QmpEventMap[K] extends undefined
  ? { data?: undefined }
  : { data: QmpEventMap[K] });

/** Which events a subscription receives. */
export interface EventFilter {
  /** One event name or several; default every event. */
  name?: string | readonly string[];
  /** Further test on the event (e.g. on `data.device`); exceptions count as "no match". */
  predicate?: (event: QmpEvent) => boolean;
}

/** Options of {@link QmpClient.events}. */
export interface EventStreamOptions extends EventFilter {
  /** Ends the iteration (it returns done) when aborted. */
  signal?: AbortSignal;
  /** Most events held for this subscriber; when full the oldest is dropped and counted. Default 10,000. */
  maxQueue?: number;
}

/** Builds the matching function of a filter. */
export function matcher(filter: EventFilter): (e: QmpEvent) => boolean {
  const names = filter.name === undefined ? undefined : new Set(typeof filter.name === 'string' ? [filter.name] : filter.name);
  const pred = filter.predicate;
  return (e) => {
    if (names && !names.has(e.event)) return false;
    if (!pred) return true;
    try {
      return pred(e) === true;
    } catch {
      return false;
    }
  };
}

/** What the hub needs of a subscription. */
interface Subscriber {
  _offer(e: QmpEvent): void;
  _finish(error?: Error): void;
}

/** Where events are fanned out; owned by the client. */
export class EventHub {
  readonly #subs = new Set<Subscriber>();

  /** Hands `e` to every matching subscription. */
  dispatch(e: QmpEvent): void {
    for (const s of this.#subs) s._offer(e);
  }

  /** Ends every subscription: done when `error` is undefined, else each rejects its next read with it. */
  end(error?: Error): void {
    for (const s of [...this.#subs]) s._finish(error);
    this.#subs.clear();
  }

  /** @internal */
  _add(s: Subscriber): void {
    this.#subs.add(s);
  }

  /** @internal */
  _remove(s: Subscriber): void {
    this.#subs.delete(s);
  }

  /** Number of live subscriptions. */
  get size(): number {
    return this.#subs.size;
  }
}

/**
 * A subscription to events: an async iterator with its own queue. Stop it with `close()` or by
 * leaving a `for await` loop. It ends (done) when the client is closed, and throws
 * {@link QmpDisconnectedError} when the connection is lost.
 */
export class EventStream<E extends QmpEvent = QmpEvent> implements AsyncIterableIterator<E> {
  readonly #hub: EventHub;
  readonly #match: (e: QmpEvent) => boolean;
  readonly #max: number;
  #queue: E[] = [];
  #waiters: { resolve: (r: IteratorResult<E>) => void; reject: (e: Error) => void }[] = [];
  #done = false;
  #error: Error | undefined;
  #dropped = 0;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this._finish();

  /** @internal Use {@link QmpClient.events}. */
  constructor(hub: EventHub, options: EventStreamOptions = {}, ended?: { error?: Error }) {
    this.#hub = hub;
    this.#match = matcher(options);
    this.#max = options.maxQueue ?? 10_000;
    this.#signal = options.signal;
    if (ended !== undefined || options.signal?.aborted) {
      this.#done = true;
      this.#error = ended?.error;
      return;
    }
    hub._add(this);
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Events dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Events queued and not yet read. */
  get pending(): number {
    return this.#queue.length;
  }

  /** @internal */
  _offer(e: QmpEvent): void {
    if (this.#done || !this.#match(e)) return;
    const w = this.#waiters.shift();
    if (w) {
      w.resolve({ value: e as E, done: false });
      return;
    }
    if (this.#queue.length >= this.#max) {
      this.#queue.shift();
      this.#dropped++;
    }
    this.#queue.push(e as E);
  }

  /** @internal */
  _finish(error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#hub._remove(this);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const w of this.#waiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  /** The next matching event (queued ones first). */
  next(): Promise<IteratorResult<E>> {
    const e = this.#queue.shift();
    if (e !== undefined) return Promise.resolve({ value: e, done: false });
    if (this.#done) {
      if (this.#error) {
        const err = this.#error;
        this.#error = undefined; // report the loss once, then plain done
        return Promise.reject(err);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Ends the subscription (called by `break` in a `for await`). Queued events are discarded. */
  return(): Promise<IteratorResult<E>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the subscription; pending reads resolve done. */
  close(): void {
    this.#queue = [];
    this._finish();
    this.#error = undefined;
  }

  /** The stream is its own async iterator: `for await (const ev of stream)`. */
  [Symbol.asyncIterator](): this {
    return this;
  }
}
