/**
 * Traffic control on this host's links (docs/host-bandwidth.md): qdiscs (a tbf at the root of a
 * VM's TAP or ifb, the ingress qdisc of a TAP) and tc filters (a u32 match-all on a TAP's ingress
 * redirecting to its ifb). They carry no mark of their own: each is identified by its link (which
 * carries the owner mark: only a qdisc or filter on a link of this host is ever removed) and its
 * place (the root or the ingress, and a qdisc's handle or a filter's priority), and compared with
 * the kernel's own listing. A link that is gone took its qdiscs and filters with it. Each is made
 * in one request, so nothing is ever half-made.
 * @module
 */
import type { QdiscSpec, TcFilter, Qdisc } from '@vmhost/net';
import type { Ctx } from '../context.js';
import type { QdiscData, QdiscEntry, TcFilterData, TcFilterEntry } from '../entries.js';
import type { QdiscRecord, TcFilterRecord } from '../records.js';
import { done, hasCode, intended, type KindOps } from './kind.js';
import { onOwnLink } from './owned.js';

/**
 * Whether vmhost may remove what it put on `dev`: the link carries this host's owner mark, or it
 * is the TAP of a VM whose host file adopts it (an adopted TAP carries no mark; its qdiscs and
 * filter are still vmhost's, made and recorded by it).
 */
async function mayRemoveOn(ctx: Ctx, dev: string): Promise<boolean> {
  return (await onOwnLink(ctx, dev)) || ctx.host.vms.some((v) => v.adopt && v.tap === dev);
}

/** errno names of a qdisc or filter (or its link) already gone. */
const GONE = ['ENOENT', 'ENODEV', 'EINVAL'];

/** The request of `d`. */
function qdiscSpec(d: QdiscData): QdiscSpec {
  if (d.qdisc.kind === 'ingress') return { kind: 'ingress', dev: d.dev };
  return { kind: 'tbf', dev: d.dev, handle: d.handle, rate: d.qdisc.rate, burst: d.qdisc.burst, latency: d.qdisc.latency };
}

/** The qdisc at `d`'s place on its link (not the kernel's default one); undefined when there is none or the link is gone. */
async function liveQdisc(ctx: Ctx, d: QdiscData): Promise<Qdisc | undefined> {
  if (!(await ctx.h.links.find(d.dev))) return undefined;
  const list = await ctx.h.qdiscs.list({ dev: d.dev });
  return list.find((q) => (d.parent === 'ingress' ? q.parent === 'ffff:fff1' : q.parent === 'root') && q.handle !== '0:');
}

/** Whether the live `q` is `d`: handle, kind, and a tbf's rate, burst and queue as the kernel rounds them. */
function sameQdisc(d: QdiscData, q: Qdisc): boolean {
  if (q.handle !== d.handle || q.kind !== d.qdisc.kind) return false;
  if (d.qdisc.kind === 'ingress') return true;
  const t = q.tbf;
  // the kernel keeps the bucket in scheduler ticks and the queue in bytes: a few bytes and a few µs of rounding
  return t !== undefined && t.rate === d.qdisc.rate && Math.abs(t.burst - d.qdisc.burst) <= 16 && Math.abs(t.latency - d.qdisc.latency) < 0.001;
}

const qdiscText = (d: QdiscData): string => (d.qdisc.kind === 'ingress' ? `ingress qdisc on ${d.dev}` : `qdisc tbf ${d.handle} on ${d.dev}`);

async function deleteQdisc(ctx: Ctx, d: QdiscData): Promise<void> {
  try {
    await ctx.h.qdiscs.delete(d.parent === 'ingress' ? { dev: d.dev, parent: 'ingress' } : { dev: d.dev, parent: 'root', handle: d.handle });
  } catch (err) {
    if (!hasCode(err, ...GONE)) throw err;
  }
}

/** The qdisc kind. */
export const qdiscKind: KindOps<QdiscEntry, QdiscRecord> = {
  style: 'object',
  intent: async (_ctx, e) => ({ ...intended(e), data: e.data }),
  async inspect(ctx, e) {
    const q = await liveQdisc(ctx, e.data);
    if (!q) return 'missing';
    return sameQdisc(e.data, q) ? 'ok' : 'differs';
  },
  async create(ctx, e, intent) {
    await ctx.h.qdiscs.add(qdiscSpec(e.data));
    return done(intent);
  },
  async update(ctx, e, recorded) {
    await ctx.h.qdiscs.replace(qdiscSpec(e.data));
    return {
      record: { kind: 'qdisc', id: e.id, status: 'done', data: e.data },
      undo: async () => {
        if (recorded) await ctx.h.qdiscs.replace(qdiscSpec(recorded.data));
        else await deleteQdisc(ctx, e.data);
      },
    };
  },
  async destroy(ctx, r) {
    const q = await liveQdisc(ctx, r.data);
    if (!q) return { removed: false };
    if (!(await mayRemoveOn(ctx, r.data.dev))) return { removed: false, foreign: `${qdiscText(r.data)} left alone: ${r.data.dev} does not carry this host's owner mark (ifalias "${ctx.mark}") and is no TAP the host file adopts` };
    if (q.handle !== r.data.handle || q.kind !== r.data.qdisc.kind) return { removed: false, foreign: `${qdiscText(r.data)} left alone: the qdisc there is ${q.kind} ${q.handle}, not the one recorded` };
    await deleteQdisc(ctx, r.data);
    return { removed: true };
  },
  async reconcile(ctx, r) {
    const q = await liveQdisc(ctx, r.data);
    return q && q.handle === r.data.handle && q.kind === r.data.qdisc.kind ? done(r) : undefined;
  },
  remake: (_ctx, r) => ({ kind: 'qdisc', id: r.id, data: r.data }),
  removalText: (r) => qdiscText(r.data),
};

/** The entries of `d`'s classifier instance on its link's ingress (its own entry, table and nodes); [] when none or the link is gone. */
async function liveFilter(ctx: Ctx, d: TcFilterData): Promise<TcFilter[]> {
  if (!(await ctx.h.links.find(d.dev))) return [];
  try {
    return (await ctx.h.filters.list({ dev: d.dev, parent: 'ingress' })).filter((f) => f.prio === d.prio);
  } catch (err) {
    if (hasCode(err, ...GONE)) return []; // no ingress qdisc
    throw err;
  }
}

/** Whether the live instance is `d`: one u32 node matching everything that redirects to the egress of `d.redirect`. */
function sameFilter(d: TcFilterData, live: readonly TcFilter[]): boolean {
  const nodes = live.filter((f) => f.u32 && f.u32.divisor === null);
  const n = nodes[0]?.u32;
  const a = n?.actions[0]?.mirred;
  return (
    nodes.length === 1 && live.every((f) => f.kind === 'u32' && f.protocol === 'all') &&
    n!.match.length === 1 && n!.match[0]!.mask === 0 && n!.actions.length === 1 &&
    a?.action === 'redirect' && a.direction === 'egress' && a.dev === d.redirect
  );
}

function redirectSpec(d: TcFilterData): Parameters<Ctx['h']['filters']['add']>[0] {
  return { kind: 'u32', dev: d.dev, parent: 'ingress', protocol: 'all', prio: d.prio, actions: [{ kind: 'mirred', action: 'redirect', direction: 'egress', dev: d.redirect }] };
}

async function deleteFilter(ctx: Ctx, d: TcFilterData): Promise<void> {
  try {
    await ctx.h.filters.delete({ dev: d.dev, parent: 'ingress', prio: d.prio });
  } catch (err) {
    if (!hasCode(err, ...GONE)) throw err;
  }
}

const filterText = (d: TcFilterData): string => `tc filter ${d.dev} ingress prio ${d.prio} (to ${d.redirect})`;

/** The tc filter kind. */
export const tcFilterKind: KindOps<TcFilterEntry, TcFilterRecord> = {
  style: 'object',
  intent: async (_ctx, e) => ({ ...intended(e), data: e.data }),
  async inspect(ctx, e) {
    const live = await liveFilter(ctx, e.data);
    if (live.length === 0) return 'missing';
    return sameFilter(e.data, live) ? 'ok' : 'differs';
  },
  async create(ctx, e, intent) {
    await ctx.h.filters.add(redirectSpec(e.data));
    return done(intent);
  },
  async update(ctx, e, recorded) {
    // u32 has no replace of a whole instance: delete it and add ours; put the recorded one back when the add fails
    await deleteFilter(ctx, e.data);
    try {
      await ctx.h.filters.add(redirectSpec(e.data));
    } catch (err) {
      if (recorded) await ctx.h.filters.add(redirectSpec(recorded.data)).catch(() => undefined);
      throw err;
    }
    return {
      record: { kind: 'tcFilter', id: e.id, status: 'done', data: e.data },
      undo: async () => {
        await deleteFilter(ctx, e.data);
        if (recorded) await ctx.h.filters.add(redirectSpec(recorded.data));
      },
    };
  },
  async destroy(ctx, r) {
    const live = await liveFilter(ctx, r.data);
    if (live.length === 0) return { removed: false };
    if (!(await mayRemoveOn(ctx, r.data.dev))) return { removed: false, foreign: `${filterText(r.data)} left alone: ${r.data.dev} does not carry this host's owner mark (ifalias "${ctx.mark}") and is no TAP the host file adopts` };
    if (!live.every((f) => f.kind === 'u32')) return { removed: false, foreign: `${filterText(r.data)} left alone: the filter there is not vmhost's u32` };
    await deleteFilter(ctx, r.data);
    return { removed: true };
  },
  reconcile: async (ctx, r) => ((await liveFilter(ctx, r.data)).length > 0 ? done(r) : undefined),
  remake: (_ctx, r) => ({ kind: 'tcFilter', id: r.id, data: r.data }),
  removalText: (r) => filterText(r.data),
};
