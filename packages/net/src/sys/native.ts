/**
 * Typed loader of the native addon (`native/vmhost_net.c`; prebuilt in `prebuilds/`, else built
 * from source at install). Internal.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { VmhostError } from '../errors.js';

/** A netlink socket owned by the addon. The object owns the data callback; once collected, an unclosed socket is closed. */
export interface NativeSocket {
  readonly portId: number;
}

/** Called with every batch of datagrams read from a socket; `errno` is non-zero on a receive error (ENOBUFS). */
export type DatagramHandler = (errno: number, datagrams: Buffer[]) => void;

/**
 * What the addon calls with every batch read from a socket: `errno` (non-zero on a receive error,
 * e.g. ENOBUFS), and the datagrams read before it, one after another in `batch`, datagram i
 * ending at `ends[i]` (both undefined when nothing was read).
 */
export type NativeDataHandler = (errno: number, batch: Buffer | undefined, ends: Uint32Array | undefined) => void;

/** The datagrams of a batch the addon handed over, as views into it (no copy). */
export function datagramsOf(batch: Buffer | undefined, ends: Uint32Array | undefined): Buffer[] {
  const out: Buffer[] = [];
  if (batch === undefined || ends === undefined) return out;
  for (let i = 0, at = 0; i < ends.length; i++) {
    const end = ends[i] as number;
    out.push(batch.subarray(at, end));
    at = end;
  }
  return out;
}

export interface NativeAddon {
  socketOpen(protocol: number, netnsFd: number, rcvbuf: number, onData: NativeDataHandler): NativeSocket;
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
  /** getrlimit(RLIMIT_NOFILE); Infinity for RLIM_INFINITY. */
  noFileLimit(): { soft: number; hard: number };
  /** setrlimit(RLIMIT_NOFILE, soft, hard); Infinity for RLIM_INFINITY. */
  setNoFileLimit(soft: number, hard: number): void;
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
  /**
   * Watches process `pid` for its exit (a pidfd polled on the event loop): `onExit` is called once,
   * then the watch is closed. Keeps the event loop alive while it watches.
   * @throws with `code` `ESRCH` when there is no such process.
   */
  pidWatch(pid: number, onExit: () => void): object;
  /** Stops a {@link pidWatch} (its callback is not called). Idempotent. */
  pidWatchClose(handle: object): void;
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

/**
 * The package's root directory, resolved from its name: this module may run from `src/sys/`,
 * `dist/sys/`, or bundled into another file (the `vmhost` command).
 */
const PACKAGE_ROOT = dirname(createRequire(import.meta.url).resolve('@vmhost/net/package.json'));

/**
 * Loads the addon once, with node-gyp-build: a build from source in `build/Release` (the
 * repository's, or the one `npm install` made where no prebuild matched) wins over the prebuilt
 * binaries in `prebuilds/<platform>-<arch>/`.
 * @throws {VmhostError} `ENET_ADDON` when no build loads: the message says what to install and how to rebuild.
 */
export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    try {
      const load = require('node-gyp-build') as (dir: string) => unknown;
      addon = load(PACKAGE_ROOT) as NativeAddon;
    } catch (err) {
      throw new VmhostError('ENET_ADDON', addonLoadMessage(err), { cause: err });
    }
  }
  return addon;
}

/** What to do when the addon does not load, in the terms of whoever installed the package. */
export function addonLoadMessage(err: unknown): string {
  const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  return [
    `@vmhost/net: its native addon cannot be loaded on ${process.platform}-${process.arch} (${why}).`,
    'Prebuilt binaries ship for linux-x64 and linux-arm64 with glibc; anywhere else npm builds the addon from source when it installs the package, and that build needs a C compiler, make, python3 and the Node.js headers.',
    'Install them (Debian/Ubuntu: apt-get install build-essential python3); node-gyp downloads the headers, or, offline, set npm_config_nodedir to a Node.js installation whose include/node matches this Node.js (/usr with Debian\'s or NodeSource\'s nodejs package).',
    'Then rebuild it: npm rebuild @vmhost/net',
  ].join('\n');
}
