/**
 * The QMP client: JSON lines over a Unix socket, many commands in flight correlated by id, events
 * fanned out to subscribers, a precise error for every way it can fail, and never a hanging
 * promise once the connection is gone.
 *
 * Run states: `connecting` → `negotiating` → `running` → `closed`.
 * @module
 */
import type { Socket } from 'node:net';
import { ValidationError } from '@vmhost/net';
import {
  QmpAbortedError,
  QmpCommandError,
  QmpDisconnectedError,
  QmpProtocolError,
  QmpTimeoutError,
} from '../errors.js';
import { decodeMessage, encodeCommand, isObject, type QmpGreeting } from './decode.js';
import { EventHub, EventStream, matcher, type EventFilter, type EventStreamOptions, type QmpEvent, type TypedQmpEvent } from './events.js';
import type { QmpCommandMap, QmpCommandName, QmpEventName } from './generated.js';
import { connectSocket, itemError, negotiate, type Negotiated } from './handshake.js';
import { DEFAULT_MAX_LINE_BYTES, type LineSplitter } from './lines.js';

export type { QmpGreeting, QemuVersion } from './decode.js';

/** Options of {@link QmpClient.connect}. */
export interface QmpConnectOptions {
  /** Path of QMP's Unix socket. */
  path: string;
  /**
   * Total time for connecting, greeting and negotiation, retries included. Default 10,000 ms.
   * While QEMU starts the socket may not exist yet (ENOENT) or refuse (ECONNREFUSED): those are
   * retried with backoff, within this time.
   */
  timeoutMs?: number;
  /** Called before each retry: when it returns false (e.g. QEMU has exited) connecting stops at once. */
  isAlive?: () => boolean;
  /** Abort connecting. */
  signal?: AbortSignal;
  /** Enable out-of-band execution when the server offers it. Default true. */
  oob?: boolean;
  /** Cap on one received line; a longer one is a fatal {@link QmpProtocolError}. Default 10 MiB. */
  maxLineBytes?: number;
  /** Time limit of every command that gives none. Default: none. */
  defaultTimeoutMs?: number;
}

/** Options of one command. */
export interface ExecuteOptions {
  /** Reject with {@link QmpTimeoutError} after this long (the late reply is then dropped and counted). */
  timeoutMs?: number;
  /** Reject with {@link QmpAbortedError} when aborted (QEMU may still run the command). */
  signal?: AbortSignal;
  /** Send as `exec-oob` (needs the oob capability; for the few commands QEMU allows out of band). */
  oob?: boolean;
}

/** Options of {@link QmpClient.waitForEvent}. */
export interface WaitForEventOptions {
  /** Reject with {@link QmpTimeoutError} after this long. */
  timeoutMs?: number;
  /** Reject with {@link QmpAbortedError} when aborted. */
  signal?: AbortSignal;
  /** Further test on the event. */
  predicate?: (event: QmpEvent) => boolean;
}

/** Counters of a connection. */
export interface QmpStats {
  /** Commands written. */
  sent: number;
  /** Replies delivered to a caller. */
  replies: number;
  /** Events received. */
  events: number;
  /** Replies whose id matched no pending command (late after a timeout/abort, or unknown): dropped. */
  droppedReplies: number;
}

/** Why and how a connection ended. */
export interface QmpCloseInfo {
  /** `'closed'`: by {@link QmpClient.close}; `'eof'`: the peer closed; `'error'`: socket or protocol error. */
  reason: 'closed' | 'eof' | 'error';
  error?: Error;
}

/** The run state of a client. */
export type QmpState = 'connecting' | 'negotiating' | 'running' | 'closed';

/** Arguments of a typed command (the generated schema of the installed QEMU). */
export type QmpArgs<K extends QmpCommandName> = QmpCommandMap[K]['args'];
/** Return value of a typed command. */
export type QmpReturn<K extends QmpCommandName> = QmpCommandMap[K]['ret'];
/** `[args?, options?]` when every argument is optional, `[args, options?]` otherwise. */
export type QmpArgsParam<K extends QmpCommandName> = Record<string, never> extends QmpArgs<K>
  ? [args?: QmpArgs<K>, options?: ExecuteOptions]
  : [args: QmpArgs<K>, options?: ExecuteOptions];

/** A command sent and not yet answered (or given up on by a timeout or abort, waiting for its late reply). */
interface Pending {
  name: string;
  args: Record<string, unknown> | undefined;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** Settled (answered, timed out, aborted, or the connection ended). */
  done: boolean;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * A connected QMP session. Make one with {@link QmpClient.connect}.
 *
 * ```ts
 * const qmp = await QmpClient.connect({ path: '/run/vm/web/qmp.sock', timeoutMs: 10_000 });
 * const st = await qmp.execute('query-status');           // typed: StatusInfo-like object
 * const raw = await qmp.executeRaw('x-new-thing', { a: 1 }); // anything the types don't know
 * await qmp.close();
 * ```
 */
export class QmpClient {
  /** The server's greeting. */
  readonly greeting: QmpGreeting;
  /** Capabilities enabled by negotiation. */
  readonly capabilities: readonly string[];
  /** Resolves (never rejects) when the connection has ended. */
  readonly closed: Promise<QmpCloseInfo>;

  readonly #socket: Socket;
  readonly #splitter: LineSplitter;
  /** In-band commands in the order sent: QEMU answers them in that order (they carry no id). */
  #inband: Pending[] = [];
  #head = 0;
  /** Out-of-band commands by id (their replies may overtake in-band ones). */
  readonly #oob = new Map<number, Pending>();
  /** Commands not yet settled. */
  #open = 0;
  readonly #hub = new EventHub();
  readonly #defaultTimeoutMs: number | undefined;
  readonly #stats: QmpStats = { sent: 0, replies: 0, events: 0, droppedReplies: 0 };
  #nextId = 1;
  #state: QmpState = 'running';
  #end: QmpCloseInfo | undefined;
  #resolveClosed!: (info: QmpCloseInfo) => void;

  private constructor(n: Negotiated, defaultTimeoutMs: number | undefined) {
    this.#socket = n.socket;
    this.#splitter = n.splitter;
    this.greeting = n.greeting;
    this.capabilities = Object.freeze([...n.capabilities]);
    this.#defaultTimeoutMs = defaultTimeoutMs;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }

  /**
   * Connects to QEMU's QMP socket, reads and validates the greeting and negotiates capabilities
   * (enabling `oob` when offered, unless `oob: false`). While QEMU is starting, connection attempts
   * are retried (p-retry, exponential backoff from 20 ms to 250 ms) within `timeoutMs` and only
   * while `isAlive()` holds.
   * @throws {ValidationError} bad options. {@link QmpConnectError}, {@link QmpNegotiationError},
   *   {@link QmpProtocolError} (a greeting that is not JSON, too deep, not UTF-8, over the cap),
   *   {@link QmpAbortedError}.
   */
  static async connect(options: QmpConnectOptions): Promise<QmpClient> {
    if (!options || typeof options.path !== 'string' || options.path.length === 0) {
      throw new ValidationError('path', options?.path, 'expected the path of the QMP Unix socket');
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    checkPositive(timeoutMs, 'timeoutMs');
    if (options.maxLineBytes !== undefined) checkPositive(options.maxLineBytes, 'maxLineBytes');
    if (options.defaultTimeoutMs !== undefined) checkPositive(options.defaultTimeoutMs, 'defaultTimeoutMs');
    const path = options.path;
    const deadline = performance.now() + timeoutMs;
    const signal = options.signal;
    if (signal?.aborted) throw new QmpAbortedError(`QMP connect ${path}`, signal.reason);
    const socket = await connectSocket(path, timeoutMs, deadline, options.isAlive ?? (() => true), signal);
    let n: Negotiated;
    try {
      n = await negotiate(socket, { maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, oob: options.oob ?? true, signal }, deadline);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    const client = new QmpClient(n, options.defaultTimeoutMs);
    client.#attach();
    for (const line of n.rest) if (client.#state === 'running') client.#guarded(line);
    return client;
  }

  #attach(): void {
    const s = this.#socket;
    s.on('data', (chunk: Buffer) => {
      if (this.#state !== 'running') return;
      let items;
      try {
        items = this.#splitter.push(chunk);
      } catch (err) {
        this.#fail(new QmpProtocolError(`cannot read the QMP stream: ${(err as Error).message}`, '', { cause: err }));
        return;
      }
      for (const item of items) {
        if (this.#state !== 'running') return;
        if ('line' in item) this.#guarded(item.line);
        else this.#fail(itemError(item));
      }
    });
    s.on('error', (err) => this.#fail(new QmpDisconnectedError(`QMP socket error: ${err.message}`, { cause: err })));
    s.on('close', () => this.#finish({ reason: 'eof' }, new QmpDisconnectedError('QMP connection closed by QEMU')));
  }

  /** Handles one line; whatever goes wrong becomes a fatal protocol error, never an exception out of the data handler. */
  #guarded(line: string): void {
    try {
      this.#onLine(line);
    } catch (err) {
      this.#fail(err instanceof QmpProtocolError ? err : new QmpProtocolError(`cannot handle a QMP message: ${(err as Error)?.message}`, line, { cause: err }));
    }
  }

  #onLine(line: string): void {
    const m = decodeMessage(line);
    if (m.kind === 'event') {
      this.#stats.events++;
      this.#hub.dispatch(m.event);
      return;
    }
    if (m.kind === 'other') {
      // Unknown message kinds are tolerated (a newer QEMU may add some) but counted.
      this.#stats.droppedReplies++;
      return;
    }
    let p: Pending | undefined;
    if (!m.hasId) {
      // an in-band reply: the oldest in-band command's
      if (this.#head < this.#inband.length) {
        p = this.#inband[this.#head]!;
        this.#inband[this.#head++] = undefined as never;
        if (this.#head === this.#inband.length) {
          this.#inband = [];
          this.#head = 0;
        } else if (this.#head >= 1024 && this.#head * 2 >= this.#inband.length) {
          this.#inband = this.#inband.slice(this.#head);
          this.#head = 0;
        }
      }
    } else if (typeof m.id === 'number') {
      p = this.#oob.get(m.id);
      this.#oob.delete(m.id);
    }
    if (!p || !this.#settle(p)) {
      // no such command, or one given up on (timeout, abort): dropped
      this.#stats.droppedReplies++;
      return;
    }
    this.#stats.replies++;
    if (m.kind === 'error') p.reject(new QmpCommandError(p.name, p.args, m.errorClass, m.desc));
    else p.resolve(m.value);
  }

  /** Marks `p` settled and drops its timer and abort listener; false when it already was. */
  #settle(p: Pending): boolean {
    if (p.done) return false;
    p.done = true;
    this.#open--;
    if (p.timer) clearTimeout(p.timer);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
    return true;
  }

  /** Fatal error: the connection is closed and everything pending rejected with `err`. */
  #fail(err: Error): void {
    this.#finish({ reason: 'error', error: err }, err);
  }

  #finish(info: QmpCloseInfo, pendingError: Error): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#end = info;
    this.#socket.destroy();
    const all = [...this.#inband.slice(this.#head), ...this.#oob.values()];
    this.#inband = [];
    this.#head = 0;
    this.#oob.clear();
    for (const p of all) if (this.#settle(p)) p.reject(pendingError);
    this.#hub.end(info.reason === 'closed' ? undefined : pendingError);
    this.#resolveClosed(info);
  }

  /** The run state: `running` until the connection ends, then `closed`. */
  get state(): QmpState {
    return this.#state;
  }

  /** Counters (a snapshot). */
  get stats(): QmpStats {
    return { ...this.#stats };
  }

  /** Commands sent and not yet answered. */
  get inFlight(): number {
    return this.#open;
  }

  /** Whether out-of-band execution was enabled. */
  get oob(): boolean {
    return this.capabilities.includes('oob');
  }

  /**
   * Runs a command known to the generated schema, with typed arguments and result.
   * For commands the types do not know, use {@link executeRaw}.
   * @throws {QmpCommandError} QEMU's error (class, desc, what was sent). {@link QmpTimeoutError},
   *   {@link QmpAbortedError}, {@link QmpDisconnectedError}, {@link QmpProtocolError}.
   */
  execute<K extends QmpCommandName>(name: K, ...rest: QmpArgsParam<K>): Promise<QmpReturn<K>> {
    const [args, options] = rest as [Record<string, unknown> | undefined, ExecuteOptions | undefined];
    return this.executeRaw(name, args, options) as Promise<QmpReturn<K>>;
  }

  /**
   * Runs any command by name with untyped arguments; resolves with QEMU's `return` value.
   * Many commands may be in flight: in-band ones are answered in the order sent (QMP spec 2.3.1),
   * out-of-band ones (`oob: true`) carry an id and are matched by it.
   * @throws {ValidationError} a bad name, arguments that are not a JSON object, nest deeper than
   *   QEMU accepts or exceed `MAX_COMMAND_BYTES`; bad options. The errors of {@link execute}.
   */
  executeRaw(name: string, args?: Record<string, unknown>, options?: ExecuteOptions): Promise<unknown> {
    try {
      if (typeof name !== 'string' || name.length === 0) throw new ValidationError('name', name, 'expected a QMP command name');
      if (args !== undefined && !isObject(args)) throw new ValidationError('args', args, 'expected an object of arguments');
      const timeoutMs = options?.timeoutMs ?? this.#defaultTimeoutMs;
      if (timeoutMs !== undefined) checkPositive(timeoutMs, 'options.timeoutMs');
      const oob = options?.oob === true;
      if (oob && !this.oob) throw new ValidationError('options.oob', true, 'out-of-band execution was not negotiated');
      if (this.#state !== 'running') {
        throw this.#end?.error ?? new QmpDisconnectedError(`QMP ${name}: the connection is closed`);
      }
      const signal = options?.signal;
      if (signal?.aborted) throw new QmpAbortedError(`QMP ${name}`, signal.reason);
      const id = oob ? this.#nextId++ : undefined;
      const text = encodeCommand(name, args, id);
      return new Promise<unknown>((resolve, reject) => {
        const p: Pending = { name, args, resolve, reject, done: false, timer: undefined, signal: undefined, onAbort: undefined };
        if (timeoutMs !== undefined) {
          p.timer = setTimeout(() => {
            if (this.#settle(p)) {
              if (id !== undefined) this.#oob.delete(id);
              reject(new QmpTimeoutError(`QMP ${name}`, timeoutMs));
            }
          }, timeoutMs);
        }
        if (signal) {
          p.signal = signal;
          p.onAbort = () => {
            if (this.#settle(p)) {
              if (id !== undefined) this.#oob.delete(id);
              reject(new QmpAbortedError(`QMP ${name}`, signal.reason));
            }
          };
          signal.addEventListener('abort', p.onAbort, { once: true });
        }
        if (id === undefined) this.#inband.push(p);
        else this.#oob.set(id, p);
        this.#open++;
        this.#stats.sent++;
        this.#socket.write(text);
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Runs a human monitor (HMP) command line and returns its output text,
   * e.g. `await qmp.hmp('info block')`.
   */
  async hmp(commandLine: string, options?: ExecuteOptions): Promise<string> {
    if (typeof commandLine !== 'string' || commandLine.length === 0) throw new ValidationError('commandLine', commandLine, 'expected an HMP command line');
    const out = await this.executeRaw('human-monitor-command', { 'command-line': commandLine }, options);
    return typeof out === 'string' ? out : String(out ?? '');
  }

  /**
   * Subscribes to events: an async iterator with its own queue. Filter by `name` (one or several)
   * and `predicate`. The subscription starts now, so events caused by a command sent afterwards
   * are never missed.
   */
  events<K extends QmpEventName>(options: EventStreamOptions & { name: K | readonly K[] }): EventStream<TypedQmpEvent<K>>;
  events(options?: EventStreamOptions): EventStream;
  events(options: EventStreamOptions = {}): EventStream {
    return new EventStream(this.#hub, options, this.#state === 'closed' ? (this.#end?.reason === 'closed' ? {} : { error: this.#end?.error }) : undefined);
  }

  /**
   * The first event matching `name` (and `options.predicate`) from now on. The subscription is made
   * synchronously when called: call it before sending the command that triggers the event, then
   * await it. If you end up not awaiting it, its rejection does not crash the process.
   * @throws {QmpTimeoutError} {@link QmpAbortedError} {@link QmpDisconnectedError}.
   */
  waitForEvent<K extends QmpEventName>(name: K, options?: WaitForEventOptions): Promise<TypedQmpEvent<K>>;
  waitForEvent(name: string | readonly string[] | EventFilter, options?: WaitForEventOptions): Promise<QmpEvent>;
  waitForEvent(name: string | readonly string[] | EventFilter, options: WaitForEventOptions = {}): Promise<QmpEvent> {
    const filter: EventFilter = typeof name === 'string' || Array.isArray(name) ? { name: name as string | string[] } : { ...(name as EventFilter) };
    if (options.predicate) {
      const inner = filter.predicate;
      const outer = options.predicate;
      filter.predicate = inner ? (e) => inner(e) && outer(e) : outer;
    }
    const what = `waiting for event ${JSON.stringify(filter.name ?? '*')}`;
    const p = (async () => {
      if (options.timeoutMs !== undefined) checkPositive(options.timeoutMs, 'options.timeoutMs');
      if (options.signal?.aborted) throw new QmpAbortedError(what, options.signal.reason);
      if (this.#state === 'closed') throw this.#end?.error ?? new QmpDisconnectedError(`${what}: the connection is closed`);
      const stream = new EventStream(this.#hub, { ...filter, maxQueue: 1 });
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      try {
        const stop = new Promise<never>((_, reject) => {
          if (options.timeoutMs !== undefined) timer = setTimeout(() => reject(new QmpTimeoutError(what, options.timeoutMs!)), options.timeoutMs);
          if (options.signal) {
            onAbort = () => reject(new QmpAbortedError(what, options.signal?.reason));
            options.signal.addEventListener('abort', onAbort, { once: true });
          }
        });
        const r = await Promise.race([stream.next(), stop]);
        if (r.done) throw new QmpDisconnectedError(`${what}: the connection was closed`);
        return r.value;
      } finally {
        if (timer) clearTimeout(timer);
        if (onAbort) options.signal?.removeEventListener('abort', onAbort);
        stream.close();
      }
    })();
    p.catch(() => undefined); // handled by whoever awaits; never an unhandled rejection
    return p;
  }

  /** Tests whether an event matches a filter (the same rules as subscriptions). */
  static matches(event: QmpEvent, filter: EventFilter): boolean {
    return matcher(filter)(event);
  }

  /**
   * Closes the connection cleanly: pending commands reject with {@link QmpDisconnectedError},
   * event iterators end. Resolves when the socket is closed. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state !== 'closed') {
      const s = this.#socket;
      const gone = new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
      this.#finish({ reason: 'closed' }, new QmpDisconnectedError('QMP connection closed by the client'));
      await gone;
    }
    await this.closed;
  }

  /** {@link close} for `await using qmp = await QmpClient.connect(...)` (Node >= 20.4). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function checkPositive(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ValidationError(field, v, 'expected a positive number of milliseconds');
}
