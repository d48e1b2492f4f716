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
import { Fifo } from './fifo.js';
import { checkNlMsgs, nextNlMsg } from './framing.js';
import { DEFAULT_RCVBUF, openMonitor, type MonitorOptions, type NetlinkMonitor } from './monitor.js';
import { checkInt, validateCommon } from './options.js';
import { answerOf, newPending, typeName, type BarrierReason, type Pending } from './pending.js';
import type { DriverSocketOptions, InternalRequestOptions, NetlinkSocketOptions, NetlinkSocketStats, RequestOptions } from './socket-options.js';

export type { DriverSocketOptions, NetlinkSocketOptions, NetlinkSocketStats, RequestOptions };
import { NetlinkClosedError, NetlinkDecodeError, NetlinkDumpInterruptedError, NetlinkError, NetlinkTimeoutError } from './errors.js';
import { NETLINK_ROUTE, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, writeHeader, type NlMsg } from './message.js';

const { ENOBUFS, EBADMSG } = osConstants.errno;

/** Largest datagram the socket builds when it corks several requests (the kernel takes up to the send buffer). */
export const MAX_DATAGRAM = 64 * 1024;
/** Default bound on requests sent and not yet answered. */
export const DEFAULT_MAX_IN_FLIGHT = 256;
/** How many times an interrupted dump (NLM_F_DUMP_INTR) is tried before it fails. */
export const DEFAULT_DUMP_ATTEMPTS = 5;

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
  /** The barrier queued and not yet sent, if any: a new loss needs no other. */
  private queuedBarrier: Pending | undefined;
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

  private constructor(options: DriverSocketOptions) {
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
    const o: DriverSocketOptions = options;
    validateCommon(options);
    if (options.maxInFlight !== undefined) checkInt('maxInFlight', options.maxInFlight, 1, 65536);
    if (options.timeoutMs !== undefined) checkInt('timeoutMs', options.timeoutMs, 1, 2 ** 31 - 1);
    if (options.dumpAttempts !== undefined) checkInt('dumpAttempts', options.dumpAttempts, 1, 1000);
    return new NetlinkSocket(o);
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
      const p = newPending({ type, flags: wireFlags, payload, dump, op, barrier: undefined, resolve, reject, signal }, (options as InternalRequestOptions).inPlace);
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
      const wasLive = !p.abandoned && p.barrier === undefined;
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
    return openMonitor(groups, options);
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
      if (p.barrier === undefined && this.inflight.size >= this.maxInFlight) break;
      this.sendQueue.shift();
      const len = NLMSG_HDRLEN + p.payload.length;
      const size = (len + 3) & ~3;
      p.seq = this.allocSeq();
      p.order = ++this.order;
      p.state = 'sent';
      p.attempts++;
      if (p === this.queuedBarrier) this.queuedBarrier = undefined;
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
        if (p.abandoned || p.barrier !== undefined) continue;
        p.reject(errno === undefined ? err : new NetlinkError(errno, p.op, undefined, { cause: err, detail: 'sendto failed' }));
      }
    }
  }

  private onData(errno: number, datagrams: Buffer[]): void {
    if (this.closed) return;
    let malformed = false;
    for (const dg of datagrams) {
      this.counters.datagramsReceived++;
      try {
        checkNlMsgs(dg);
      } catch (err) {
        if (!(err instanceof NetlinkDecodeError)) throw err;
        this.counters.malformed++;
        malformed = true;
        continue;
      }
      for (let off = 0; off < dg.length; off = nextNlMsg(dg, off)) {
        this.counters.messagesReceived++;
        this.onMessage(dg, off);
        if (this.closed) return;
      }
    }
    if (errno === ENOBUFS) {
      this.counters.overruns++;
      this.onLoss('overrun');
    } else if (errno !== 0) {
      this.onFatal(errno);
    } else if (malformed) {
      this.onLoss('malformed');
    }
    if (this.sendQueue.length > 0) this.scheduleFlush();
  }

  /** Any other receive error leaves the socket unusable: every pending request fails with it. */
  private onFatal(errno: number): void {
    const victims: Pending[] = [...this.sendQueue.drain(), ...this.dumpQueue.drain(), ...this.inflight.values()];
    for (const p of victims) {
      const wasLive = p.state !== 'done' && !p.abandoned && p.barrier === undefined;
      p.state = 'done';
      this.cleanup(p);
      if (wasLive) p.reject(new NetlinkError(errno, p.op, undefined, { detail: 'receiving from the netlink socket failed; the socket is closed' }));
    }
    this.inflight.clear();
    this.close();
  }

  /** The message at `off` of the checked datagram `dg`. */
  private onMessage(dg: Buffer, off: number): void {
    const p = this.inflight.get(dg.readUInt32LE(off + 8));
    if (!p) {
      this.counters.unknownSeq++;
      return;
    }
    if (p.barrier !== undefined) {
      // Whatever it says (even malformed), the barrier's answer came: everything before it did too.
      this.finish(p);
      this.onBarrier(p);
      return;
    }
    const type = dg.readUInt16LE(off + 4);
    const terminal = type === NLMSG_ERROR || type === NLMSG_DONE || type === NLMSG_OVERRUN;
    if (p.abandoned) {
      if (terminal) {
        this.counters.lateReplies++;
        this.finish(p);
      }
      return;
    }
    const outcome = answerOf(p, dg, off);
    if (outcome === undefined) return;
    if (outcome.interrupted && p.attempts < this.dumpAttempts) {
      // Run the dump again, first in line; it stays the socket's active dump.
      this.inflight.delete(p.seq);
      p.replies = [];
      p.inPlace?.clear();
      p.interrupted = false;
      p.state = 'queued';
      this.counters.dumpRetries++;
      this.sendQueue.unshift(p);
      this.scheduleFlush();
      return;
    }
    this.finish(p);
    if (outcome.interrupted) this.settle(p, new NetlinkDumpInterruptedError(p.op, p.attempts));
    else if (outcome.error !== undefined) this.settle(p, outcome.error);
    else this.settle(p, undefined, p.replies);
  }

  /** Removes a sent request from the in-flight table and frees its dump slot. */
  private finish(p: Pending): void {
    if (this.inflight.get(p.seq) === p) this.inflight.delete(p.seq);
    const wasLive = !p.abandoned && p.barrier === undefined && p.state !== 'done';
    p.state = 'done';
    this.cleanup(p);
    if (wasLive) this.live--;
    if (p.dump && this.activeDump === p) this.nextDump();
    this.updateRef();
    if (this.sendQueue.length > 0) this.scheduleFlush();
  }

  private settle(p: Pending, err: unknown, value?: NlMsg[]): void {
    if (p.barrier !== undefined || p.abandoned) return;
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
   * Answers may have been lost: the kernel dropped some in a receive-queue overrun (ENOBUFS), or
   * a datagram did not decode. Which ones cannot be told from here, so a barrier (NLMSG_NOOP with
   * NLM_F_ACK) is sent: answers come in order, so every plain request sent before the barrier and
   * still unanswered when the barrier's answer arrives lost its answer. Dumps are not affected
   * (the kernel fills them only as room frees up).
   *
   * Barrier generations: each loss reported after the last barrier went out sends a new one, since
   * that barrier's own ack may be among the lost answers. A barrier still queued covers the loss.
   * The answer of any barrier settles everything before it, older barriers included.
   */
  private onLoss(reason: BarrierReason): void {
    if (this.queuedBarrier) return; // not sent yet: it goes out after this loss, so it covers it
    let plain = false;
    for (const p of this.inflight.values()) if (!p.dump && p.barrier === undefined) plain = true;
    if (!plain) return;
    const barrier = newPending({
      type: NLMSG_NOOP,
      flags: NLM_F_REQUEST | NLM_F_ACK,
      payload: Buffer.alloc(0),
      dump: false,
      op: 'barrier',
      barrier: reason,
      resolve: () => undefined,
      reject: () => undefined,
      signal: undefined,
    });
    this.queuedBarrier = barrier;
    this.sendQueue.unshift(barrier);
    this.scheduleFlush();
  }

  private onBarrier(barrier: Pending): void {
    const detail =
      barrier.barrier === 'overrun'
        ? 'the answer was lost in a receive-queue overrun; the request may or may not have been applied'
        : 'the answer was in a datagram that did not decode; the request may or may not have been applied';
    const errno = barrier.barrier === 'overrun' ? ENOBUFS : EBADMSG;
    for (const p of [...this.inflight.values()]) {
      if (p.dump || p.order > barrier.order) continue;
      const lost = !p.abandoned && p.barrier === undefined;
      if (p.abandoned) this.counters.lateReplies++;
      this.finish(p);
      if (lost) p.reject(new NetlinkError(errno, p.op, undefined, { detail }));
    }
  }
}

