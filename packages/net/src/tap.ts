/**
 * TUN/TAP devices through /dev/net/tun and its ioctls (what `tunctl` and `ip tuntap` do).
 * @module
 */
import { closeSync } from 'node:fs';
import { SystemError, ValidationError } from './errors.js';
import { runIn, type NetnsRef } from './netns.js';
import { native, TunIoctl } from './sys/native.js';
import { validateIfName, validateInt } from './validate.js';

const IFF_TUN = 0x0001;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFF_MULTI_QUEUE = 0x0100;

/** Options of {@link openTap}. */
export interface OpenTapOptions {
  /** Interface name (created if missing, attached to if it exists and is a compatible TAP). */
  name: string;
  /** Namespace to create it in; default the caller's. */
  netns?: NetnsRef;
  /** 'tap' (Ethernet frames, default) or 'tun' (IP packets). */
  mode?: 'tap' | 'tun';
  /** IFF_VNET_HDR: frames carry a virtio-net header (what QEMU's virtio-net wants for offloads). */
  vnetHdr?: boolean;
  /** IFF_MULTI_QUEUE: several queues, one fd each. */
  multiQueue?: boolean;
  /** Keep the interface after the fd closes (TUNSETPERSIST). Default false. */
  persist?: boolean;
  /** uid allowed to attach to it (TUNSETOWNER). */
  owner?: number;
  /** gid allowed to attach to it (TUNSETGROUP). */
  group?: number;
}

/** An open TAP queue: its file descriptor (the caller owns it and must close it) and the name. */
export interface TapFd {
  fd: number;
  name: string;
}

/**
 * Opens (creating if needed) a TAP or TUN interface and returns the file descriptor of its queue,
 * e.g. to hand to QEMU as `-netdev tap,fd=N`. The interface goes away when the last fd closes
 * unless `persist` is set. On failure nothing is left behind.
 */
export function openTap(options: OpenTapOptions): TapFd {
  validateIfName(options.name, 'name');
  if (options.owner !== undefined) validateInt(options.owner, 'owner', 0, 0xfffffffe);
  if (options.group !== undefined) validateInt(options.group, 'group', 0, 0xfffffffe);
  const mode = options.mode ?? 'tap';
  if (mode !== 'tap' && mode !== 'tun') throw new ValidationError('mode', mode, "expected 'tap' or 'tun'");
  let flags = (mode === 'tap' ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
  if (options.vnetHdr) flags |= IFF_VNET_HDR;
  if (options.multiQueue) flags |= IFF_MULTI_QUEUE;
  const n = native();
  const open = () => n.tunOpen(options.name, flags);
  let tap: TapFd;
  try {
    tap = options.netns === undefined ? open() : runIn(options.netns, open);
  } catch (err) {
    throw SystemError.from(err, `opening ${mode} '${options.name}'`);
  }
  try {
    if (options.owner !== undefined) n.tunIoctl(tap.fd, TunIoctl.SetOwner, options.owner);
    if (options.group !== undefined) n.tunIoctl(tap.fd, TunIoctl.SetGroup, options.group);
    if (options.persist) n.tunIoctl(tap.fd, TunIoctl.SetPersist, 1);
  } catch (err) {
    closeSync(tap.fd); // not yet persistent: the interface goes with the fd
    throw SystemError.from(err, `configuring ${mode} '${options.name}'`);
  }
  return tap;
}

/**
 * Creates a persistent TAP (like `ip tuntap add mode tap NAME`): the fd is closed, the interface
 * stays until deleted (RTM_DELLINK, or {@link setTapPersist} false).
 */
export function createPersistentTap(options: Omit<OpenTapOptions, 'persist'>): void {
  const tap = openTap({ ...options, persist: true });
  closeSync(tap.fd);
}

/** Clears or sets TUNSETPERSIST on an existing TAP, e.g. to make it vanish when its last fd closes. */
export function setTapPersist(options: Pick<OpenTapOptions, 'name' | 'netns' | 'mode' | 'vnetHdr' | 'multiQueue'>, persist: boolean): void {
  const tap = openTap(options);
  try {
    native().tunIoctl(tap.fd, TunIoctl.SetPersist, persist ? 1 : 0);
  } catch (err) {
    throw SystemError.from(err, `TUNSETPERSIST on '${options.name}'`);
  } finally {
    closeSync(tap.fd);
  }
}
