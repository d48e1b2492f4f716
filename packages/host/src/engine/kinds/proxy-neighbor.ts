/**
 * Proxy neighbours: in routed mode the host answers neighbour discovery on the uplink for each VM
 * address (proxy NDP), each entry with vmhost's protocol mark. One is deleted only when it is this
 * host's (owned.ts).
 * @module
 */
import type { Ctx } from '../context.js';
import type { ProxyNeighborEntry } from '../entries.js';
import { MARK_PROTOCOL } from '../marks.js';
import type { ProxyNeighborRecord } from '../records.js';
import { done, hasCode, intended, NOTHING_TO_UNDO, type KindOps } from './kind.js';
import { isOwned } from './owned.js';

/** The live proxy entry for `to` on `dev`, if any. */
async function live(ctx: Ctx, to: string, dev: string) {
  if (!(await ctx.h.links.find(dev))) return undefined;
  return (await ctx.h.neighbors.list({ family: 6, proxy: true, dev })).find((n) => n.to === to);
}

/** The proxy-neighbour kind. */
export const proxyNeighborKind: KindOps<ProxyNeighborEntry, ProxyNeighborRecord> = {
  style: 'object',
  intent: async (_ctx, e) => ({ ...intended(e), data: { ...e.data } }),
  async inspect(ctx, e) {
    return (await live(ctx, e.data.to, e.data.dev)) ? 'ok' : 'missing';
  },
  async create(ctx, e, intent) {
    await ctx.h.neighbors.add({ to: e.data.to, dev: e.data.dev, proxy: true, protocol: MARK_PROTOCOL });
    return done(intent);
  },
  update: async (_ctx, _e, recorded) => ({ record: recorded, undo: NOTHING_TO_UNDO }),
  async destroy(ctx, r) {
    const { to, dev } = r.data;
    const n = await live(ctx, to, dev);
    if (!n) return { removed: false };
    if (!(await isOwned(ctx, dev, n.protocol, to, true))) return { removed: false, foreign: `proxy neighbour ${to} on ${dev} left alone: it does not carry vmhost's protocol mark` };
    try {
      await ctx.h.neighbors.delete({ to, dev, proxy: true });
    } catch (err) {
      if (!hasCode(err, 'ENOENT', 'ENODEV')) throw err;
    }
    return { removed: true };
  },
  reconcile: async (ctx, r) => ((await live(ctx, r.data.to, r.data.dev)) ? done(r) : undefined),
  remake: (_ctx, r) => ({ kind: 'proxyNeighbor', id: r.id, data: { ...r.data } }),
  removalText: (r) => `proxy neighbour ${r.data.to} on ${r.data.dev}`,
};
