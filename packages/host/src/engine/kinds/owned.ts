/**
 * The kinds of the objects that hang off a link (addresses, routes, proxy neighbours), made with
 * vmhost's protocol mark; and whether one that a record names may be removed: it must be on one of
 * this host's links (they carry the owner mark), or carry the protocol mark (marks.ts). Kernels
 * before 6.3 keep no protocol for addresses: there an unmarked /128 inside the host's IPv6 prefix
 * on the uplink (what plan B adds) is taken as vmhost's.
 * @module
 */
import type { Ctx } from '../context.js';
import type { LiveTables } from '../live.js';
import type { AddressEntry, ProxyNeighborEntry, RouteEntry } from '../entries.js';
import { isMarkedProtocol } from '../marks.js';
import type { AddressRecord, ProxyNeighborRecord, RouteRecord } from '../records.js';
import { done, hasCode, NOTHING_TO_UNDO, type KindOps } from './kind.js';

/** Whether the link `dev` carries this host's owner mark. */
export async function onOwnLink(ctx: Ctx, dev: string): Promise<boolean> {
  const l = await ctx.live.link(dev);
  return l !== undefined && l.alias === ctx.mark && l.name !== ctx.host.uplink;
}

/** Whether the address (or /128 prefix) `cidr` is a single address inside the host's IPv6 prefix. */
export function inHostPrefix(ctx: Ctx, address: string): boolean {
  const p = ctx.host.ipv6?.prefix;
  if (!p || !address.includes(':')) return false;
  const words = (a: string): number[] => {
    const [head = '', tail = ''] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const full = a.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
    return full.map((x) => parseInt(x || '0', 16));
  };
  const a = words(address);
  const n = words(p.address);
  let bits = p.prefixLength;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if (((a[i] ?? 0) & mask) !== ((n[i] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Whether a live address, route or proxy neighbour of a record is this host's: on an own link, or
 * carrying the protocol mark, or (no protocol at all, on the uplink) a single address inside the
 * host's IPv6 prefix.
 */
export async function isOwned(ctx: Ctx, dev: string, protocol: string | number | null, address: string, single: boolean): Promise<boolean> {
  if (await onOwnLink(ctx, dev)) return true;
  if (isMarkedProtocol(protocol)) return true;
  return (protocol === null || protocol === 0) && single && inHostPrefix(ctx, address);
}

/** What one kind of marked object is: where the run's live view has it, how to add and delete it, and say it. */
export interface MarkedObject<D, T extends MarkedTable> {
  /** The table of the live view (live.ts) it is in. */
  table: T;
  /** Its key in that table. */
  key(d: D): string;
  /** What the live view holds once `add` made it. */
  made(d: D): LiveTables[T];
  /** Adds it, with the protocol mark. */
  add(ctx: Ctx, d: D): Promise<void>;
  delete(ctx: Ctx, d: D): Promise<void>;
  /** errno names of a delete that mean "already gone". */
  gone: readonly string[];
  /** Whether the live `l` is this host's. */
  owned(ctx: Ctx, d: D, l: LiveTables[T]): Promise<boolean>;
  /** `address 192.168.0.1/24 on br0`. */
  text(d: D): string;
}

/** The tables of the live view that hold marked objects. */
export type MarkedTable = 'addresses' | 'routes' | 'proxyNeighbors';

/**
 * The kind of a marked object (`E` its entry, `R` its record, `T` its table in the run's live
 * view): made when missing, never differing, removed only when owned. `record` and `entry`
 * convert between the entry and the record (the same data). Each is looked up in the live view
 * (one dump of its table per run), which the kind keeps up to date.
 */
export function markedKind<E extends AddressEntry | RouteEntry | ProxyNeighborEntry, R extends AddressRecord | RouteRecord | ProxyNeighborRecord, T extends MarkedTable>(
  o: MarkedObject<E['data'] & R['data'], T> & { record(e: E): R; entry(r: R): E },
): KindOps<E, R> {
  const live = (ctx: Ctx, d: E['data'] & R['data']): Promise<LiveTables[T] | undefined> => ctx.live.get(o.table, o.key(d));
  return {
    style: 'object',
    keepsLive: true,
    intent: async (_ctx, e) => o.record(e),
    inspect: async (ctx, e) => ((await live(ctx, e.data)) ? 'ok' : 'missing'),
    async create(ctx, e, intent) {
      await o.add(ctx, e.data);
      ctx.live.set(o.table, o.key(e.data), o.made(e.data));
      return done(intent);
    },
    update: async (_ctx, _e, recorded) => ({ record: recorded, undo: NOTHING_TO_UNDO }),
    async destroy(ctx, r) {
      if (r.adopted) return { removed: false }; // adopted: never deleted
      const l = await live(ctx, r.data);
      if (!l) return { removed: false };
      if (!(await o.owned(ctx, r.data, l))) return { removed: false, foreign: `${o.text(r.data)} left alone: it is not on a link of this host and does not carry vmhost's protocol mark` };
      try {
        await o.delete(ctx, r.data);
      } catch (err) {
        if (!hasCode(err, ...o.gone)) throw err;
      }
      ctx.live.set(o.table, o.key(r.data), undefined);
      return { removed: true };
    },
    reconcile: async (ctx, r) => ((await live(ctx, r.data)) ? done(r) : undefined),
    remake: (_ctx, r) => o.entry(r),
    removalText: (r) => (r.adopted ? `${o.text(r.data)} (adopted: left in place)` : o.text(r.data)),
    adopt: {
      intent: async (_ctx, e) => ({ ...o.record(e), adopted: true }),
      make: async (_ctx, _e, intent) => done(intent),
    },
  };
}
