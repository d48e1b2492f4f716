/**
 * Typed loader of the native addon (packages/net/native/vmhost_net.c). Internal.
 * @module
 */
import { createRequire } from 'node:module';

/** A netlink socket owned by the addon. The object owns the data callback; once collected, an unclosed socket is closed. */
export interface NativeSocket {
  readonly portId: number;
}

/** Called with every batch of datagrams read from a socket; `errno` is non-zero on a receive error (ENOBUFS). */
export type DatagramHandler = (errno: number, datagrams: Buffer[]) => void;

export interface NativeAddon {
  socketOpen(protocol: number, netnsFd: number, rcvbuf: number, onData: DatagramHandler): NativeSocket;
  /** Sends one datagram to the kernel, or to another netlink socket's `portId` (root only). */
  socketSend(sock: NativeSocket, buf: Buffer, portId?: number): number;
  socketAddMembership(sock: NativeSocket, group: number): void;
  /** Whether the socket keeps the event loop, and its handle object, alive. */
  socketRef(sock: NativeSocket, on: boolean): void;
  socketClose(sock: NativeSocket): void;
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  tunOpen(name: string, flags: number): { fd: number; name: string };
  tunIoctl(fd: number, which: TunIoctl, value: number): void;
  /**
   * The name of each link index in the namespace `netnsFd` (-1: the current one), null for an
   * index without a link: SIOCGIFNAME on a socket made there (synchronously, so a bad fd throws),
   * the lookups on a thread of libuv's pool.
   */
  ifNames(netnsFd: number, indices: Uint32Array): Promise<Array<string | null>>;
  /** A non-blocking netlink socket in `netnsFd` (-1: the current one) subscribed to RTNLGRP_LINK, not polled; the caller closes it. */
  linkWatchOpen(netnsFd: number): number;
  /**
   * The queued notifications of a {@link linkWatchOpen} socket, in order, as pairs: `index, name`
   * (RTM_NEWLINK), `index, null` (RTM_DELLINK), `-1, null` (notifications lost or damaged).
   */
  linkWatchRead(fd: number): Array<number | string | null>;
  /** The addon's errno name of `errno` (the `code` of its errors), or null. */
  errnoName(errno: number): string | null;
}

/** Requests of `tunIoctl`. */
export const enum TunIoctl {
  SetPersist = 0,
  SetOwner = 1,
  SetGroup = 2,
}

export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;

let addon: NativeAddon | undefined;

/** Loads the addon once (from `build/Release`, relative to this file in `src/` or `dist/`). */
export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    try {
      addon = require('../../build/Release/vmhost_net.node') as NativeAddon;
    } catch (err) {
      throw new Error(
        '@vmhost/net: the native addon is not built (run `npm run setup`, or node-gyp rebuild in packages/net)',
        { cause: err },
      );
    }
  }
  return addon;
}
