/**
 * The low-level driver under {@link NetlinkSocket}: opens a netlink socket, sends datagrams and
 * delivers received ones. The default is the native addon; tests inject a fake.
 * @module
 */
import { closeSync } from 'node:fs';
import { SystemError } from '../errors.js';
import { openNetns, type NetnsRef } from '../netns.js';
import { datagramsOf, native, type DatagramHandler } from '../sys/native.js';

export type { DatagramHandler };

/** One open netlink socket, as the transport sees it. */
export interface NetlinkDriver {
  /** The socket's port id (nl_pid), assigned by the kernel at bind time. */
  readonly portId: number;
  /** Sends one datagram (one or more netlink messages) to the kernel. Throws an Error with `errno`/`code` on failure. */
  send(datagram: Buffer): void;
  /** Joins a multicast group (NETLINK_ADD_MEMBERSHIP). */
  addMembership(group: number): void;
  /** Whether the socket keeps the event loop alive. */
  ref(on: boolean): void;
  /** Closes the socket; no more data is delivered. Idempotent. */
  close(): void;
}

/** What a driver is opened with. */
export interface DriverOptions {
  /** Netlink protocol (NETLINK_ROUTE = 0). */
  protocol: number;
  /** Namespace the socket lives in (default: the caller's). */
  netns?: NetnsRef;
  /** SO_RCVBUF(FORCE) in bytes. */
  rcvbuf: number;
}

/**
 * Opens a driver. `onData(errno, datagrams)` is called with every batch of received datagrams;
 * `errno` is non-zero after a receive error (ENOBUFS: the receive queue overflowed and something was lost).
 */
export type NetlinkDriverFactory = (options: DriverOptions, onData: DatagramHandler) => NetlinkDriver;

/** The driver backed by the native addon (packages/net/native/vmhost_net.c). */
export const nativeDriver: NetlinkDriverFactory = (options, onData) => {
  const addon = native();
  const nsFd = options.netns === undefined ? -1 : openNetns(options.netns);
  let handle;
  try {
    handle = addon.socketOpen(options.protocol, nsFd, options.rcvbuf, (errno, batch, ends) => onData(errno, datagramsOf(batch, ends)));
  } catch (err) {
    throw SystemError.from(err, 'netlink socket');
  } finally {
    if (nsFd >= 0) closeSync(nsFd);
  }
  const h = handle;
  let closed = false;
  return {
    portId: h.portId,
    send(datagram) {
      addon.socketSend(h, datagram);
    },
    addMembership(group) {
      try {
        addon.socketAddMembership(h, group);
      } catch (err) {
        throw SystemError.from(err, `netlink multicast group ${group}`);
      }
    },
    ref(on) {
      if (!closed) addon.socketRef(h, on);
    },
    close() {
      if (closed) return;
      closed = true;
      addon.socketClose(h);
    },
  };
};
