/**
 * {@link NetlinkSocket}: requests over one netlink socket, many in flight at once, answers routed
 * by sequence number, requests made in the same turn of the event loop corked into one datagram,
 * dumps collected whole and serialised per socket; and {@link NetlinkSocket.monitor}, an async
 * iterator of multicast notifications.
 * @module
 */
import { constants as osConstants } from 'node:os';
import { ValidationError } from '../errors.js';
import type { NetnsRef } from '../netns.js';
import { nativeDriver, type NetlinkDriver, type NetlinkDriverFactory } from './driver.js';
import {
  NetlinkClosedError,
  NetlinkDecodeError,
  NetlinkDumpInterruptedError,
  NetlinkError,
  NetlinkTimeoutError,
} from './errors.js';
import {
  decodeNlMsgs,
  NETLINK_ROUTE,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  parseNlmsgDone,
  parseNlmsgerr,
  writeHeader,
  type NlMsg,
} from './message.js';

const ENOBUFS = osConstants.errno.ENOBUFS;

/** Largest datagram the socket builds when it corks several requests (the kernel takes up to the send buffer). */
export const MAX_DATAGRAM = 64 * 1024;
/** Default bound on requests sent and not yet answered. */
export const DEFAULT_MAX_IN_FLIGHT = 256;
/** Default receive buffer (SO_RCVBUFFORCE). */
export const DEFAULT_RCVBUF = 4 * 1024 * 1024;
/** How many times an interrupted dump (NLM_F_DUMP_INTR) is tried before it fails. */
export const DEFAULT_DUMP_ATTEMPTS = 5;

/** Options of {@link NetlinkSocket.open}. */
export interface NetlinkSocketOptions {
  /** Network namespace the socket lives in for its whole life (default: the caller's). */
  netns?: NetnsRef;
  /** Netlink protocol; default NETLINK_ROUTE (0). */
  protocol?: number;
  /** Receive buffer in bytes (SO_RCVBUFFORCE); default 4 MiB. */
  rcvbuf?: number;
  /** Most requests sent and not yet answered; more wait in a queue. Default 256. */
  maxInFlight?: number;
  /** Default timeout of every request in ms (none by default). */
  timeoutMs?: number;
  /** How many times a dump interrupted by a concurrent change is tried; default 5. */
  dumpAttempts?: number;
  /** Low-level driver (tests inject a fake); default: the native addon. */
  driver?: NetlinkDriverFactory;
}

/** Options of one {@link NetlinkSocket.request}. */
export interface RequestOptions {
  /** What the request does, for error messages, e.g. `'links.add veth0'`. Default: the message type's name. */
  op?: string;
  /** Aborts the request: it rejects with `signal.reason`; a late answer is dropped. */
  signal?: AbortSignal;
  /** Rejects with {@link NetlinkTimeoutError} after this many ms; a late answer is dropped. */
  timeoutMs?: number;
  /** Whether this is a dump; default: a GET-kind rtnetlink type with NLM_F_DUMP bits, or both NLM_F_DUMP bits for other protocols. */
  dump?: boolean;
}

/** Counters of a socket, for diagnostics and tests. */
export interface NetlinkSocketStats {
  /** Requests handed to the kernel (retried dumps count again). */
  requestsSent: number;
  /** Datagrams sent (several requests each when corked). */
  datagramsSent: number;
  /** Datagrams received. */
  datagramsReceived: number;
  /** Messages received. */
  messagesReceived: number;
  /** Messages whose sequence number matched no request: dropped. */
  unknownSeq: number;
  /** Answers to requests that had timed out or been aborted: dropped (counted once per request). */
  lateReplies: number;
  /** Datagrams that did not decode: dropped. */
  malformed: number;
  /** Receive-queue overruns (ENOBUFS). */
  overruns: number;
  /** Dumps started again after NLM_F_DUMP_INTR. */
  dumpRetries: number;
  /** Requests queued (not yet sent) right now. */
  queued: number;
  /** Requests sent and not yet answered right now (including abandoned ones). */
  inFlight: number;
}

/** A multicast notification stream's signal that notifications were lost: re-read the state. */
export interface Overrun {
  overrun: true;
}

type State = 'queued' | 'dump-waiting' | 'sent' | 'done';

interface Pending {
  type: number;
  flags: number;
  payload: Buffer;
  dump: boolean;
  op: string;
  seq: number;
  order: number;
  state: State;
  /** Timed out or aborted while sent: the answer is awaited only to be dropped. */
  abandoned: boolean;
  /** Internal (barrier): not counted as live, settles nobody. */
  internal: boolean;
  replies: NlMsg[];
  interrupted: boolean;
  attempts: number;
  resolve: (msgs: NlMsg[]) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const RTM_NAMES: Record<number, string> = {
  16: 'RTM_NEWLINK', 17: 'RTM_DELLINK', 18: 'RTM_GETLINK', 19: 'RTM_SETLINK',
  20: 'RTM_NEWADDR', 21: 'RTM_DELADDR', 22: 'RTM_GETADDR',
  24: 'RTM_NEWROUTE', 25: 'RTM_DELROUTE', 26: 'RTM_GETROUTE',
  28: 'RTM_NEWNEIGH', 29: 'RTM_DELNEIGH', 30: 'RTM_GETNEIGH',
  32: 'RTM_NEWRULE', 33: 'RTM_DELRULE', 34: 'RTM_GETRULE',
  36: 'RTM_NEWQDISC', 37: 'RTM_DELQDISC', 38: 'RTM_GETQDISC',
  64: 'RTM_NEWNETCONF', 66: 'RTM_GETNETCONF',
  68: 'RTM_NEWMDB', 69: 'RTM_DELMDB', 70: 'RTM_GETMDB',
  88: 'RTM_NEWNSID', 89: 'RTM_DELNSID', 90: 'RTM_GETNSID',
};

function typeName(protocol: number, type: number): string {
  if (type === NLMSG_NOOP) return 'NLMSG_NOOP';
  return (protocol === NETLINK_ROUTE && RTM_NAMES[type]) || `netlink message type ${type}`;
}

function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(field, v, `expected an integer ${min}..${max}`);
  }
  return v;
}

/** A FIFO with O(1) push/shift and removal by identity. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: T): void {
    this.items.push(v);
  }
  unshift(v: T): void {
    if (this.head > 0) this.items[--this.head] = v;
    else this.items.unshift(v);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  remove(v: T): boolean {
    const i = this.items.indexOf(v, this.head);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}

/**
 * A netlink socket for requests (rtnetlink by default), bound to one network namespace.
 *
 * - Every request gets a sequence number; answers are routed by it, in any order.
 * - Requests made in the same turn of the event loop go out corked in one datagram (up to
 *   {@link MAX_DATAGRAM} bytes), at most `maxInFlight` unanswered at a time; the kernel processes
 *   them in order.
 * - Dumps are collected whole; one dump at a time runs per socket (others wait), while plain
 *   requests keep flowing; a dump interrupted by a concurrent change is run again.
 * - The socket keeps the process alive only while a request is pending.
 *
 * Requests are sent in the order they were made, except that a dump waits while another dump runs.
 *
 * @example
 * ```ts
 * const sock = NetlinkSocket.open({ netns: 'blue' });
 * const links = await sock.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16)); // ifinfomsg
 * sock.close();
 * ```
 */
export class NetlinkSocket {
  /** The port id the kernel gave this socket. */
  readonly portId: number;
  /** The netlink protocol. */
  readonly protocol: number;
  private readonly driver: NetlinkDriver;
  private readonly maxInFlight: number;
  private readonly defaultTimeoutMs: number | undefined;
  private readonly dumpAttempts: number;
  private readonly sendQueue = new Fifo<Pending>();
  private readonly dumpQueue = new Fifo<Pending>();
  private readonly inflight = new Map<number, Pending>();
  private activeDump: Pending | undefined;
  private nextSeq: number;
  private order = 0;
  private live = 0;
  private refed = false;
  private flushScheduled = false;
  private barrierPending = false;
  private closed = false;
  private scratch: Buffer | undefined;
  private readonly counters = {
    requestsSent: 0,
    datagramsSent: 0,
    datagramsReceived: 0,
    messagesReceived: 0,
    unknownSeq: 0,
    lateReplies: 0,
    malformed: 0,
    overruns: 0,
    dumpRetries: 0,
  };

  private constructor(options: NetlinkSocketOptions) {
    this.protocol = options.protocol ?? NETLINK_ROUTE;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.defaultTimeoutMs = options.timeoutMs;
    this.dumpAttempts = options.dumpAttempts ?? DEFAULT_DUMP_ATTEMPTS;
    this.nextSeq = 1 + Math.floor(Math.random() * 0x7fffffff);
    const factory = options.driver ?? nativeDriver;
    const driverOptions: { protocol: number; rcvbuf: number; netns?: NetnsRef } = {
      protocol: this.protocol,
      rcvbuf: options.rcvbuf ?? DEFAULT_RCVBUF,
    };
    if (options.netns !== undefined) driverOptions.netns = options.netns;
    this.driver = factory(driverOptions, (errno, datagrams) => this.onData(errno, datagrams));
    this.portId = this.driver.portId;
  }

  /**
   * Opens a socket. With `netns`, the socket is created inside that namespace and stays there.
   * @throws {ValidationError} on bad options (before anything is opened).
   * @throws {SystemError} when the namespace or the socket cannot be opened.
   */
  static open(options: NetlinkSocketOptions = {}): NetlinkSocket {
    validateCommon(options);
    if (options.maxInFlight !== undefined) checkInt('maxInFlight', options.maxInFlight, 1, 65536);
    if (options.timeoutMs !== undefined) checkInt('timeoutMs', options.timeoutMs, 1, 2 ** 31 - 1);
    if (options.dumpAttempts !== undefined) checkInt('dumpAttempts', options.dumpAttempts, 1, 1000);
    return new NetlinkSocket(options);
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Counters: sent, received, dropped answers (unknown sequence numbers, late), overruns, dump retries. */
  get stats(): NetlinkSocketStats {
    return { ...this.counters, queued: this.sendQueue.length + this.dumpQueue.length, inFlight: this.inflight.size };
  }

  /**
   * Sends one request and resolves with its answer: every part of a dump, the echoed message
   * with NLM_F_ECHO, the reply of a GET, or `[]` for a plain acknowledgement. NLM_F_REQUEST is
   * added, and NLM_F_ACK unless it is a dump (from which NLM_F_ACK is removed).
   *
   * @param type message type, e.g. RTM_NEWLINK.
   * @param flags NLM_F_* flags, e.g. `NLM_F_CREATE | NLM_F_EXCL`, or NLM_F_DUMP.
   * @param payload the message body after the nlmsghdr (e.g. ifinfomsg + attributes).
   * @returns the answer's messages (without the final ack or NLMSG_DONE).
   * @throws {NetlinkError} the kernel refused (errno, code and extended-ack message).
   * @throws {NetlinkClosedError} the socket was closed before the answer came.
   * @throws {NetlinkTimeoutError} `timeoutMs` passed.
   * @throws {NetlinkDumpInterruptedError} a dump kept being interrupted.
   * @throws {ValidationError} bad type, flags or payload.
   * Aborting `signal` rejects with `signal.reason`.
   */
  request(type: number, flags: number, payload: Buffer, options: RequestOptions = {}): Promise<NlMsg[]> {
    const op = options.op ?? typeName(this.protocol, type);
    if (this.closed) return Promise.reject(new NetlinkClosedError(op));
    try {
      checkInt('type', type, NLMSG_NOOP, 0xffff);
      checkInt('flags', flags, 0, 0xffff);
      if (!Buffer.isBuffer(payload)) throw new ValidationError('payload', payload, 'expected a Buffer');
      if (payload.length + NLMSG_HDRLEN > 0xffffffff) throw new ValidationError('payload', payload.length, 'too long');
      if (options.timeoutMs !== undefined) checkInt('timeoutMs', options.timeoutMs, 1, 2 ** 31 - 1);
    } catch (err) {
      return Promise.reject(err);
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const dump = options.dump ?? this.isDump(type, flags);
    const wireFlags = dump ? (flags | NLM_F_REQUEST) & ~NLM_F_ACK : flags | NLM_F_REQUEST | NLM_F_ACK;
    return new Promise<NlMsg[]>((resolve, reject) => {
      const p: Pending = {
        type,
        flags: wireFlags,
        payload,
        dump,
        op,
        seq: 0,
        order: 0,
        state: 'queued',
        abandoned: false,
        internal: false,
        replies: [],
        interrupted: false,
        attempts: 0,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
      if (timeoutMs !== undefined) {
        p.timer = setTimeout(() => this.abandon(p, new NetlinkTimeoutError(op, timeoutMs)), timeoutMs);
      }
      if (signal) {
        p.onAbort = () => this.abandon(p, signal.reason);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.live++;
      this.updateRef();
      if (dump) {
        if (this.activeDump || this.dumpQueue.length > 0) {
          p.state = 'dump-waiting';
          this.dumpQueue.push(p);
          return;
        }
        this.activeDump = p;
      }
      this.sendQueue.push(p);
      this.scheduleFlush();
    });
  }

  /**
   * Closes the socket. Every pending request rejects with {@link NetlinkClosedError}. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const victims: Pending[] = [...this.sendQueue.drain(), ...this.dumpQueue.drain(), ...this.inflight.values()];
    this.inflight.clear();
    this.activeDump = undefined;
    for (const p of victims) {
      if (p.state === 'done') continue;
      const wasLive = !p.abandoned && !p.internal;
      p.state = 'done';
      this.cleanup(p);
      if (wasLive) p.reject(new NetlinkClosedError(p.op));
    }
    this.live = 0;
    if (this.refed) {
      this.refed = false;
      this.driver.ref(false);
    }
    this.driver.close();
  }

  /**
   * Opens a new socket subscribed to multicast `groups` (RTNLGRP_* numbers) and iterates its
   * notifications. When the kernel had to drop notifications (ENOBUFS) an `{ overrun: true }`
   * item says so: re-read the state with a dump. `break` (or `return()`) closes the socket;
   * aborting `signal` closes it and makes the iteration throw `signal.reason`.
   * The monitor keeps the process alive while someone waits on `next()`.
   * @throws {ValidationError} on bad groups or options.
   * @throws {SystemError} when the namespace or the socket cannot be opened or a group joined.
   */
  static monitor(groups: number[], options: MonitorOptions = {}): NetlinkMonitor {
    return new NetlinkMonitor(groups, options);
  }

  // ------------------------------------------------------------------ internals

  private isDump(type: number, flags: number): boolean {
    if (this.protocol === NETLINK_ROUTE && type >= 16) return (type & 3) === 2 && (flags & NLM_F_DUMP) !== 0;
    return (flags & NLM_F_DUMP) === NLM_F_DUMP;
  }

  private updateRef(): void {
    const want = this.live > 0 && !this.closed;
    if (want !== this.refed) {
      this.refed = want;
      this.driver.ref(want);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private allocSeq(): number {
    for (;;) {
      const seq = this.nextSeq;
      this.nextSeq = seq >= 0xffffffff ? 1 : seq + 1;
      if (!this.inflight.has(seq)) return seq;
    }
  }

  /** Sends queued requests, corked into datagrams of at most MAX_DATAGRAM bytes. */
  private flush(): void {
    if (this.closed) return;
    let batch: Pending[] = [];
    let used = 0;
    const scratch = (this.scratch ??= Buffer.allocUnsafe(MAX_DATAGRAM));
    const sendBatch = (): void => {
      if (batch.length === 0) return;
      const b = batch;
      const bytes = used;
      batch = [];
      used = 0;
      this.sendDatagram(b, scratch.subarray(0, bytes));
    };
    while (this.sendQueue.length > 0) {
      const p = this.sendQueue.peek() as Pending;
      if (!p.internal && this.inflight.size >= this.maxInFlight) break;
      this.sendQueue.shift();
      const len = NLMSG_HDRLEN + p.payload.length;
      const size = (len + 3) & ~3;
      p.seq = this.allocSeq();
      p.order = ++this.order;
      p.state = 'sent';
      p.attempts++;
      this.inflight.set(p.seq, p);
      if (size > MAX_DATAGRAM) {
        sendBatch();
        const big = Buffer.alloc(size);
        writeHeader(big, 0, len, p.type, p.flags, p.seq, 0);
        p.payload.copy(big, NLMSG_HDRLEN);
        this.sendDatagram([p], big);
        continue;
      }
      if (used + size > MAX_DATAGRAM) sendBatch();
      writeHeader(scratch, used, len, p.type, p.flags, p.seq, 0);
      p.payload.copy(scratch, used + NLMSG_HDRLEN);
      scratch.fill(0, used + len, used + size);
      used += size;
      batch.push(p);
    }
    sendBatch();
  }

  private sendDatagram(batch: Pending[], datagram: Buffer): void {
    try {
      this.driver.send(datagram);
      this.counters.datagramsSent++;
      this.counters.requestsSent += batch.length;
    } catch (err) {
      const e = err as { errno?: unknown; code?: unknown };
      const errno = typeof e?.errno === 'number' ? Math.abs(e.errno) : undefined;
      for (const p of batch) {
        if (p.state !== 'sent' || this.inflight.get(p.seq) !== p) continue;
        this.finish(p);
        if (p.abandoned || p.internal) continue;
        p.reject(errno === undefined ? err : new NetlinkError(errno, p.op, undefined, { cause: err, detail: 'sendto failed' }));
      }
    }
  }

  private onData(errno: number, datagrams: Buffer[]): void {
    if (this.closed) return;
    for (const dg of datagrams) {
      this.counters.datagramsReceived++;
      let msgs: NlMsg[];
      try {
        msgs = decodeNlMsgs(dg);
      } catch (err) {
        if (!(err instanceof NetlinkDecodeError)) throw err;
        this.counters.malformed++;
        continue;
      }
      for (const m of msgs) {
        this.counters.messagesReceived++;
        this.onMessage(m);
        if (this.closed) return;
      }
    }
    if (errno === ENOBUFS) this.onOverrun();
    else if (errno !== 0) this.onFatal(errno);
    if (this.sendQueue.length > 0) this.scheduleFlush();
  }

  /** Any other receive error leaves the socket unusable: every pending request fails with it. */
  private onFatal(errno: number): void {
    const victims: Pending[] = [...this.sendQueue.drain(), ...this.dumpQueue.drain(), ...this.inflight.values()];
    for (const p of victims) {
      const wasLive = p.state !== 'done' && !p.abandoned && !p.internal;
      p.state = 'done';
      this.cleanup(p);
      if (wasLive) p.reject(new NetlinkError(errno, p.op, undefined, { detail: 'receiving from the netlink socket failed; the socket is closed' }));
    }
    this.inflight.clear();
    this.close();
  }

  private onMessage(m: NlMsg): void {
    const p = this.inflight.get(m.seq);
    if (!p) {
      this.counters.unknownSeq++;
      return;
    }
    const terminal = m.type === NLMSG_ERROR || m.type === NLMSG_DONE || m.type === NLMSG_OVERRUN;
    if (p.abandoned) {
      if (terminal) {
        this.counters.lateReplies++;
        this.finish(p);
      }
      return;
    }
    switch (m.type) {
      case NLMSG_NOOP:
        return;
      case NLMSG_ERROR: {
        let parsed;
        try {
          parsed = parseNlmsgerr(m.payload, m.flags);
        } catch (err) {
          this.finish(p);
          this.settle(p, err);
          return;
        }
        if (p.internal) {
          this.finish(p);
          this.onBarrier(p);
          return;
        }
        this.finish(p);
        if (parsed.error !== 0) this.settle(p, new NetlinkError(parsed.error, p.op, parsed.extack));
        else this.settle(p, undefined, p.replies);
        return;
      }
      case NLMSG_DONE: {
        if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
        let parsed;
        try {
          parsed = parseNlmsgDone(m.payload, m.flags);
        } catch (err) {
          this.finish(p);
          this.settle(p, err);
          return;
        }
        if (parsed.error !== 0) {
          this.finish(p);
          this.settle(p, new NetlinkError(parsed.error, p.op, parsed.extack));
          return;
        }
        if (p.interrupted) {
          if (p.attempts >= this.dumpAttempts) {
            this.finish(p);
            this.settle(p, new NetlinkDumpInterruptedError(p.op, p.attempts));
            return;
          }
          // Run the dump again, first in line; it stays the socket's active dump.
          this.inflight.delete(p.seq);
          p.replies = [];
          p.interrupted = false;
          p.state = 'queued';
          this.counters.dumpRetries++;
          this.sendQueue.unshift(p);
          this.scheduleFlush();
          return;
        }
        this.finish(p);
        this.settle(p, undefined, p.replies);
        return;
      }
      case NLMSG_OVERRUN:
        this.finish(p);
        this.settle(p, new NetlinkError(ENOBUFS, p.op, { message: 'NLMSG_OVERRUN: data lost' }));
        return;
      default:
        if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
        p.replies.push(m);
    }
  }

  /** Removes a sent request from the in-flight table and frees its dump slot. */
  private finish(p: Pending): void {
    if (this.inflight.get(p.seq) === p) this.inflight.delete(p.seq);
    const wasLive = !p.abandoned && !p.internal && p.state !== 'done';
    p.state = 'done';
    this.cleanup(p);
    if (wasLive) this.live--;
    if (p.dump && this.activeDump === p) this.nextDump();
    this.updateRef();
    if (this.sendQueue.length > 0) this.scheduleFlush();
  }

  private settle(p: Pending, err: unknown, value?: NlMsg[]): void {
    if (p.internal || p.abandoned) return;
    if (err !== undefined) p.reject(err);
    else p.resolve(value ?? []);
  }

  private cleanup(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    p.onAbort = undefined;
  }

  private nextDump(): void {
    this.activeDump = undefined;
    const next = this.dumpQueue.shift();
    if (!next) return;
    this.activeDump = next;
    next.state = 'queued';
    this.sendQueue.push(next);
    this.scheduleFlush();
  }

  /** Timeout or abort: reject now; a sent request's answer is still awaited, then dropped. */
  private abandon(p: Pending, reason: unknown): void {
    if (p.state === 'done' || p.abandoned) return;
    this.cleanup(p);
    this.live--;
    if (p.state === 'queued') {
      this.sendQueue.remove(p);
      p.state = 'done';
      if (p.dump && this.activeDump === p) this.nextDump();
    } else if (p.state === 'dump-waiting') {
      this.dumpQueue.remove(p);
      p.state = 'done';
    } else {
      p.abandoned = true; // stays in flight (and keeps the dump slot) until its answer comes
    }
    this.updateRef();
    p.reject(reason);
  }

  /**
   * ENOBUFS: answers were dropped by the kernel. Which ones cannot be told from here, so a
   * barrier (NLMSG_NOOP with NLM_F_ACK) is sent: answers come in order, so every plain request
   * sent before the barrier and still unanswered when the barrier's ack arrives lost its answer.
   * Dumps are not affected (the kernel fills them only as room frees up).
   */
  private onOverrun(): void {
    this.counters.overruns++;
    if (this.barrierPending) return; // the pending barrier will settle everything sent before it
    let plain = false;
    for (const p of this.inflight.values()) if (!p.dump) plain = true;
    if (!plain) return;
    this.barrierPending = true;
    const barrier: Pending = {
      type: NLMSG_NOOP,
      flags: NLM_F_REQUEST | NLM_F_ACK,
      payload: Buffer.alloc(0),
      dump: false,
      op: 'barrier',
      seq: 0,
      order: 0,
      state: 'queued',
      abandoned: false,
      internal: true,
      replies: [],
      interrupted: false,
      attempts: 0,
      resolve: () => undefined,
      reject: () => undefined,
      timer: undefined,
      signal: undefined,
      onAbort: undefined,
    };
    this.sendQueue.unshift(barrier);
    this.scheduleFlush();
  }

  private onBarrier(barrier: Pending): void {
    this.barrierPending = false;
    for (const p of [...this.inflight.values()]) {
      if (p.dump || p.order > barrier.order) continue;
      const lost = !p.abandoned && !p.internal;
      this.finish(p);
      if (lost) {
        p.reject(
          new NetlinkError(ENOBUFS, p.op, undefined, {
            detail: 'the answer was lost in a receive-queue overrun; the request may or may not have been applied',
          }),
        );
      } else {
        this.counters.lateReplies++;
      }
    }
  }
}

function validateCommon(options: { protocol?: number; rcvbuf?: number }): void {
  if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
  if (options.protocol !== undefined) checkInt('protocol', options.protocol, 0, 31);
  if (options.rcvbuf !== undefined) checkInt('rcvbuf', options.rcvbuf, 4096, 2 ** 31 - 1);
}

/** Options of {@link NetlinkSocket.monitor}. */
export interface MonitorOptions {
  /** Network namespace to watch (default: the caller's). */
  netns?: NetnsRef;
  /** Netlink protocol; default NETLINK_ROUTE (0). */
  protocol?: number;
  /** Receive buffer in bytes; default 4 MiB. */
  rcvbuf?: number;
  /** Stops the monitor; the iteration then throws `signal.reason`. */
  signal?: AbortSignal;
  /** Most notifications buffered while nobody reads; beyond, they are dropped for one `{ overrun: true }`. Default 100,000. */
  highWaterMark?: number;
  /** Low-level driver (tests inject a fake); default: the native addon. */
  driver?: NetlinkDriverFactory;
}

/**
 * An async iterator of multicast notifications, from {@link NetlinkSocket.monitor}.
 * Items are netlink messages (e.g. RTM_NEWLINK) or `{ overrun: true }` after lost notifications.
 */
export class NetlinkMonitor implements AsyncIterableIterator<NlMsg | Overrun> {
  /** The monitor socket's port id. */
  readonly portId: number;
  private readonly driver: NetlinkDriver;
  private readonly items = new Fifo<NlMsg | Overrun>();
  private readonly waiters: Array<{ resolve: (r: IteratorResult<NlMsg | Overrun>) => void; reject: (e: unknown) => void }> = [];
  private readonly highWaterMark: number;
  private closed = false;
  private failure: { error: unknown } | undefined;
  private refed = false;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: (() => void) | undefined;
  /** Overruns signalled (kernel ENOBUFS, or the high-water mark reached). */
  overruns = 0;
  /** Notifications dropped here because nobody read them (high-water mark); the kernel's drops are not countable. */
  dropped = 0;
  /** Datagrams that did not decode. */
  malformed = 0;

  /** Use {@link NetlinkSocket.monitor}. */
  constructor(groups: number[], options: MonitorOptions = {}) {
    validateCommon(options);
    if (!Array.isArray(groups) || groups.length === 0) throw new ValidationError('groups', groups, 'expected a non-empty array of group numbers');
    groups.forEach((g, i) => checkInt(`groups[${i}]`, g, 1, 1023));
    this.highWaterMark =
      options.highWaterMark === undefined ? 100_000 : checkInt('highWaterMark', options.highWaterMark, 1, 2 ** 31 - 1);
    this.signal = options.signal;
    if (this.signal?.aborted) throw this.signal.reason;
    const driverOptions: { protocol: number; rcvbuf: number; netns?: NetnsRef } = {
      protocol: options.protocol ?? NETLINK_ROUTE,
      rcvbuf: options.rcvbuf ?? DEFAULT_RCVBUF,
    };
    if (options.netns !== undefined) driverOptions.netns = options.netns;
    this.driver = (options.driver ?? nativeDriver)(driverOptions, (errno, dgs) => this.onData(errno, dgs));
    this.portId = this.driver.portId;
    try {
      for (const g of groups) this.driver.addMembership(g);
    } catch (err) {
      this.driver.close();
      throw err;
    }
    if (this.signal) {
      const signal = this.signal;
      this.onAbort = () => this.fail(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next notification; waits for one. */
  next(): Promise<IteratorResult<NlMsg | Overrun>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.updateRef();
    });
  }

  /** Stops the monitor and closes its socket (what `break` in `for await` calls). */
  return(): Promise<IteratorResult<NlMsg | Overrun>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Same as {@link return}. */
  throw(err?: unknown): Promise<IteratorResult<NlMsg | Overrun>> {
    this.close();
    return err === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(err);
  }

  /** Closes the socket; a waiting `next()` ends the iteration. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.items.drain();
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
    this.updateRef();
    this.driver.close();
  }

  /** Notifications buffered and not yet read. */
  get buffered(): number {
    return this.items.length;
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    const waiters = this.waiters.splice(0);
    this.close();
    if (waiters.length > 0) for (const w of waiters) w.reject(error);
    else this.failure = { error };
  }

  private push(item: NlMsg | Overrun): void {
    const w = this.waiters.shift();
    if (w) {
      w.resolve({ value: item, done: false });
      this.updateRef();
      return;
    }
    if (this.items.length >= this.highWaterMark) {
      // The consumer is too slow: drop what is buffered (it must resync anyway) and say so.
      this.overruns++;
      this.dropped += this.items.length;
      this.items.drain();
      this.items.push({ overrun: true });
    }
    this.items.push(item);
  }

  private onData(errno: number, datagrams: Buffer[]): void {
    if (this.closed) return;
    for (const dg of datagrams) {
      let msgs: NlMsg[];
      try {
        msgs = decodeNlMsgs(dg);
      } catch (err) {
        if (!(err instanceof NetlinkDecodeError)) throw err;
        this.malformed++;
        continue;
      }
      for (const m of msgs) {
        if (m.type === NLMSG_NOOP) continue;
        this.push(m);
        if (this.closed) return;
      }
    }
    if (errno === ENOBUFS) {
      this.overruns++;
      this.push({ overrun: true });
    } else if (errno !== 0) {
      this.fail(new NetlinkError(errno, 'netlink monitor', undefined, { detail: 'recv failed' }));
    }
  }

  private updateRef(): void {
    const want = !this.closed && this.waiters.length > 0;
    if (want !== this.refed) {
      this.refed = want;
      if (!this.closed || !want) this.driver.ref(want);
    }
  }
}
