/**
 * Options and counters of {@link NetlinkSocket}.
 * @module
 */
import type { NetnsRef } from '../netns.js';
import type { NetlinkDriverFactory } from './driver.js';
import type { InPlaceReplies } from './pending.js';

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
}

/**
 * {@link NetlinkSocketOptions} with the low-level driver, the seam through which unit tests put
 * a fake kernel under the socket. Not exported from the package root.
 */
export interface DriverSocketOptions extends NetlinkSocketOptions {
  /** Default: the native addon. */
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

/**
 * {@link RequestOptions} with `inPlace`: the answer's reply messages are collected there, left in
 * their datagrams, instead of as NlMsg objects (the request then resolves with `[]`). For the
 * rtnetlink lists, which decode the messages in place. Not exported from the package root.
 */
export interface InternalRequestOptions extends RequestOptions {
  inPlace?: InPlaceReplies;
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
