/**
 * The QMP client: JSON lines over a Unix socket, many commands in flight correlated by id, events
 * fanned out to subscribers, a precise error for every way it can fail, and never a hanging
 * promise once the connection is gone.
 *
 * Run states: `connecting` → `negotiating` → `running` → `closed`.
 * @module
 */
import { createConnection, type Socket } from 'node:net';
import pRetry, { AbortError } from 'p-retry';
import { ValidationError } from '@vmhost/net';
import {
  QmpAbortedError,
  QmpCommandError,
  QmpConnectError,
  QmpDisconnectedError,
  QmpError,
  QmpNegotiationError,
  QmpProtocolError,
  QmpTimeoutError,
} from '../errors.js';
import { EventHub, EventStream, matcher, type EventFilter, type EventStreamOptions, type QmpEvent, type TypedQmpEvent } from './events.js';
import type { QmpCommandMap, QmpCommandName, QmpEventName } from './generated.js';
import { DEFAULT_MAX_LINE_BYTES, LineSplitter } from './lines.js';

/** QEMU's version triple from the greeting. */
export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
}

/** The validated greeting. */
export interface QmpGreeting {
  version: { qemu: QemuVersion; package: string };
  /** Capabilities the server offered (e.g. `['oob']`). */
  capabilities: string[];
}

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

interface Pending {
  name: string;
  args: Record<string, unknown> | undefined;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

const RETRIABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

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
  readonly #pending = new Map<number, Pending>();
  readonly #hub = new EventHub();
  readonly #defaultTimeoutMs: number | undefined;
  readonly #stats: QmpStats = { sent: 0, replies: 0, events: 0, droppedReplies: 0 };
  #nextId = 1;
  #state: QmpState = 'running';
  #end: QmpCloseInfo | undefined;
  #resolveClosed!: (info: QmpCloseInfo) => void;

  private constructor(socket: Socket, splitter: LineSplitter, greeting: QmpGreeting, capabilities: string[], defaultTimeoutMs: number | undefined) {
    this.#socket = socket;
    this.#splitter = splitter;
    this.greeting = greeting;
    this.capabilities = Object.freeze([...capabilities]);
    this.#defaultTimeoutMs = defaultTimeoutMs;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }

  /**
   * Connects to QEMU's QMP socket, reads and validates the greeting and negotiates capabilities
   * (enabling `oob` when offered, unless `oob: false`). While QEMU is starting, connection attempts
   * are retried (p-retry, exponential backoff from 20 ms to 250 ms) within `timeoutMs` and only
   * while `isAlive()` holds.
   * @throws {ValidationError} bad options. {@link QmpConnectError}, {@link QmpNegotiationError}, {@link QmpAbortedError}.
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
    const isAlive = options.isAlive ?? (() => true);
    const signal = options.signal;
    if (signal?.aborted) throw new QmpAbortedError(`QMP connect ${path}`, signal.reason);

    let socket: Socket;
    try {
      socket = await pRetry(
        async () => {
          if (!isAlive()) throw new AbortError(new QmpConnectError(path, 'the QEMU process exited before QMP answered'));
          return await connectOnce(path, signal);
        },
        {
          retries: 1_000,
          factor: 1.5,
          minTimeout: 20,
          maxTimeout: 250,
          maxRetryTime: timeoutMs,
          signal,
          shouldRetry: ({ error }) => RETRIABLE.has((error as { code?: string }).code ?? '') && performance.now() < deadline && isAlive(),
        },
      );
    } catch (err) {
      if (signal?.aborted) throw new QmpAbortedError(`QMP connect ${path}`, signal.reason);
      if (err instanceof QmpError) throw err;
      if (!isAlive()) throw new QmpConnectError(path, 'the QEMU process exited before QMP answered', { cause: err });
      throw new QmpConnectError(path, `cannot connect within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
    }
    try {
      return await QmpClient.#handshake(socket, options, deadline);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  static async #handshake(socket: Socket, options: QmpConnectOptions, deadline: number): Promise<QmpClient> {
    const splitter = new LineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    const lines: string[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    const onData = (chunk: Buffer): void => {
      try {
        for (const item of splitter.push(chunk)) {
          if ('line' in item) lines.push(item.line);
          else failure ??= new QmpProtocolError(`QMP line of ${item.overflow} bytes exceeds the cap`, item.head);
        }
      } finally {
        wake?.();
      }
    };
    const onEnd = (): void => {
      failure ??= new QmpNegotiationError('QMP connection closed during negotiation');
      wake?.();
    };
    const onError = (err: Error): void => {
      failure ??= new QmpNegotiationError(`QMP socket error during negotiation: ${err.message}`, { cause: err });
      wake?.();
    };
    socket.on('data', onData);
    socket.on('close', onEnd);
    socket.on('error', onError);
    const signal = options.signal;
    const onAbort = (): void => {
      failure ??= new QmpAbortedError('QMP negotiation', signal?.reason);
      wake?.();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const nextLine = async (what: string): Promise<Record<string, unknown>> => {
      for (;;) {
        if (lines.length) {
          const line = lines.shift()!;
          let msg: unknown;
          try {
            msg = JSON.parse(line);
          } catch (err) {
            throw new QmpProtocolError(`bad JSON while waiting for ${what}`, line, { cause: err });
          }
          if (!isObject(msg)) throw new QmpProtocolError(`not a JSON object while waiting for ${what}`, line);
          return msg;
        }
        if (failure) throw failure;
        const left = deadline - performance.now();
        if (left <= 0) throw new QmpNegotiationError(`no ${what} within the connect time limit`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          };
        });
      }
    };

    try {
      const greetingMsg = await nextLine('the QMP greeting');
      const greeting = parseGreeting(greetingMsg);
      const wantOob = (options.oob ?? true) && greeting.capabilities.includes('oob');
      const enable = wantOob ? ['oob'] : [];
      socket.write(`${JSON.stringify({ execute: 'qmp_capabilities', arguments: { enable }, id: 'negotiate' })}\n`);
      for (;;) {
        const msg = await nextLine('the reply to qmp_capabilities');
        if ('event' in msg) continue; // not expected before negotiation; harmless
        if (isObject(msg.error)) {
          throw new QmpNegotiationError(`qmp_capabilities refused: ${String(msg.error.class)}: ${String(msg.error.desc)}`);
        }
        if ('return' in msg) break;
        throw new QmpNegotiationError(`unexpected message during negotiation: ${JSON.stringify(msg).slice(0, 200)}`);
      }
      const client = new QmpClient(socket, splitter, greeting, enable, options.defaultTimeoutMs);
      socket.off('data', onData);
      socket.off('close', onEnd);
      socket.off('error', onError);
      client.#attach();
      for (const line of lines.splice(0)) client.#onLine(line);
      return client;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #attach(): void {
    const s = this.#socket;
    s.on('data', (chunk: Buffer) => {
      if (this.#state !== 'running') return;
      for (const item of this.#splitter.push(chunk)) {
        if (this.#state !== 'running') return;
        if ('line' in item) this.#onLine(item.line);
        else this.#fail(new QmpProtocolError(`QMP line of ${item.overflow} bytes exceeds the cap`, item.head));
      }
    });
    s.on('error', (err) => this.#fail(new QmpDisconnectedError(`QMP socket error: ${err.message}`, { cause: err })));
    s.on('close', () => this.#finish({ reason: 'eof' }, new QmpDisconnectedError('QMP connection closed by QEMU')));
  }

  #onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (err) {
      this.#fail(new QmpProtocolError('bad JSON from QMP server', line, { cause: err }));
      return;
    }
    if (!isObject(msg)) {
      this.#fail(new QmpProtocolError('QMP message is not a JSON object', line));
      return;
    }
    if (typeof msg.event === 'string') {
      this.#stats.events++;
      const ts = isObject(msg.timestamp) ? msg.timestamp : {};
      const ev: QmpEvent = {
        event: msg.event,
        timestamp: { seconds: Number(ts.seconds ?? 0), microseconds: Number(ts.microseconds ?? 0) },
      };
      if ('data' in msg) ev.data = msg.data;
      this.#hub.dispatch(ev);
      return;
    }
    if ('return' in msg || 'error' in msg) {
      const id = msg.id;
      const p = typeof id === 'number' ? this.#pending.get(id) : undefined;
      if (!p) {
        this.#stats.droppedReplies++;
        return;
      }
      this.#pending.delete(id as number);
      p.cleanup();
      this.#stats.replies++;
      if ('error' in msg) {
        const e = isObject(msg.error) ? msg.error : {};
        p.reject(new QmpCommandError(p.name, p.args, String(e.class ?? 'GenericError'), String(e.desc ?? JSON.stringify(msg.error))));
      } else {
        p.resolve(msg.return);
      }
      return;
    }
    // Unknown message kinds are tolerated (a newer QEMU may add some) but counted.
    this.#stats.droppedReplies++;
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
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.cleanup();
      p.reject(pendingError);
    }
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
    return this.#pending.size;
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
   * Many commands may be in flight; replies are matched by id.
   */
  executeRaw(name: string, args?: Record<string, unknown>, options: ExecuteOptions = {}): Promise<unknown> {
    try {
      if (typeof name !== 'string' || name.length === 0) throw new ValidationError('name', name, 'expected a QMP command name');
      if (args !== undefined && !isObject(args)) throw new ValidationError('args', args, 'expected an object of arguments');
      const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
      if (timeoutMs !== undefined) checkPositive(timeoutMs, 'options.timeoutMs');
      if (options.oob && !this.oob) throw new ValidationError('options.oob', true, 'out-of-band execution was not negotiated');
      if (this.#state !== 'running') {
        throw this.#end?.error ?? new QmpDisconnectedError(`QMP ${name}: the connection is closed`);
      }
      if (options.signal?.aborted) throw new QmpAbortedError(`QMP ${name}`, options.signal.reason);
      const id = this.#nextId++;
      const msg: Record<string, unknown> = options.oob ? { 'exec-oob': name } : { execute: name };
      if (args !== undefined) msg.arguments = args;
      msg.id = id;
      const text = `${JSON.stringify(msg)}\n`;
      return new Promise<unknown>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const signal = options.signal;
        const onAbort = (): void => {
          if (this.#pending.delete(id)) {
            cleanup();
            reject(new QmpAbortedError(`QMP ${name}`, signal?.reason));
          }
        };
        const cleanup = (): void => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            if (this.#pending.delete(id)) {
              cleanup();
              reject(new QmpTimeoutError(`QMP ${name}`, timeoutMs));
            }
          }, timeoutMs);
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#pending.set(id, { name, args, resolve, reject, cleanup });
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

function connectOnce(path: string, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    const onAbort = (): void => {
      s.destroy();
      reject(new AbortError(new QmpAbortedError(`QMP connect ${path}`, signal?.reason)));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      reject(err);
    });
  });
}

function parseGreeting(msg: Record<string, unknown>): QmpGreeting {
  const bad = (why: string): QmpNegotiationError =>
    new QmpNegotiationError(`not a QMP greeting (${why}): ${JSON.stringify(msg).slice(0, 200)}`);
  const q = msg.QMP;
  if (!isObject(q)) throw bad('no QMP object');
  const v = q.version;
  if (!isObject(v) || !isObject(v.qemu)) throw bad('no version.qemu');
  const { major, minor, micro } = v.qemu;
  if (![major, minor, micro].every((n) => Number.isInteger(n) && (n as number) >= 0)) throw bad('version.qemu is not a version triple');
  const caps = q.capabilities;
  if (!Array.isArray(caps) || caps.some((c) => typeof c !== 'string')) throw bad('capabilities is not a list of strings');
  return {
    version: { qemu: { major: major as number, minor: minor as number, micro: micro as number }, package: typeof v.package === 'string' ? v.package : '' },
    capabilities: caps as string[],
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkPositive(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ValidationError(field, v, 'expected a positive number of milliseconds');
}
