/**
 * {@link LinkNames}: the names of a handle's links by index, for the list operations of addresses,
 * routes and neighbours (the kernel's messages carry only the index). Internal.
 *
 * Kept between calls and kept current by the kernel itself: a netlink socket subscribed to
 * RTNLGRP_LINK (opened at the first lookup, read only when names are needed) receives an
 * RTM_NEWLINK with the name for every new or renamed link and an RTM_DELLINK for every link that
 * goes, in order and before the call that made the change returns; a lookup first applies what
 * is queued, so what it knows is as current as the call. Indices it does not know are looked up
 * with SIOCGIFNAME (on a thread of libuv's pool) and remembered. Lost notifications (the queue
 * overflowed) empty it. Lookups run one at a time, so a name read by SIOCGIFNAME is always
 * followed by the notifications of any later change.
 * @module
 */
import { closeSync } from 'node:fs';
import { SystemError } from './errors.js';
import { native } from './sys/native.js';
import { NetlinkClosedError } from './transport/errors.js';

export class LinkNames {
  /** The RTNLGRP_LINK socket, or -1 (not opened yet, or it failed: then nothing is kept). */
  private watch = -1;
  private readonly known = new Map<number, string>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `nsFd`: the handle's namespace (-1: the caller's); it stays open until {@link close}. */
  constructor(private readonly nsFd: number) {}

  /**
   * Index → name of the links with these indices, as they are now; an index without a link is
   * left out.
   * @throws {NetlinkClosedError} when the handle was closed meanwhile.
   * @throws {SystemError} when the names cannot be read.
   */
  of(indices: Iterable<number>, op: string): Promise<Map<number, string>> {
    const wanted = [...new Set(indices)];
    const run = this.queue.then(() => this.lookup(wanted, op));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the notification socket; later lookups fail. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.known.clear();
    if (this.watch >= 0) closeSync(this.watch);
    this.watch = -1;
  }

  private async lookup(wanted: number[], op: string): Promise<Map<number, string>> {
    if (this.closed) throw new NetlinkClosedError(op);
    this.sync();
    const out = new Map<number, string>();
    const missing: number[] = [];
    for (const i of wanted) {
      const name = this.known.get(i);
      if (name !== undefined) out.set(i, name);
      else missing.push(i);
    }
    if (missing.length === 0) return out;
    let got: Array<string | null>;
    try {
      got = await native().ifNames(this.nsFd, Uint32Array.from(missing)); // the fd is used before this returns
    } catch (err) {
      throw SystemError.from(err, `${op}: reading link names`);
    }
    missing.forEach((index, k) => {
      const name = got[k];
      if (name === null || name === undefined) return;
      out.set(index, name);
      if (this.watch >= 0) this.known.set(index, name);
    });
    return out;
  }

  /** Applies the queued notifications (opening the socket the first time). */
  private sync(): void {
    if (this.watch < 0) {
      try {
        this.watch = native().linkWatchOpen(this.nsFd);
      } catch {
        return; // nothing is kept: every lookup asks the kernel
      }
    }
    let changes: Array<number | string | null>;
    try {
      changes = native().linkWatchRead(this.watch);
    } catch {
      this.known.clear(); // unknown what was missed: start again
      return;
    }
    for (let k = 0; k < changes.length; k += 2) {
      const index = changes[k] as number;
      const name = changes[k + 1] as string | null;
      if (index < 0) this.known.clear();
      else if (name === null) this.known.delete(index);
      else this.known.set(index, name);
    }
  }
}
