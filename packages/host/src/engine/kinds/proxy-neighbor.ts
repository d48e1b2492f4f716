/**
 * Proxy neighbours: in routed mode the host answers neighbour discovery on the uplink for each VM
 * address (proxy NDP).
 * @module
 */
import type { ProxyNeighborEntry } from '../entries.js';
import { hasCode, type KindOps } from './kind.js';

/** The proxy-neighbour kind. */
export const proxyNeighborKind: KindOps<ProxyNeighborEntry> = {
  style: 'object',
  async inspect(ctx, e) {
    const list = await ctx.h.neighbors.list({ family: 6, proxy: true, dev: e.data.dev });
    return list.some((n) => n.to === e.data.to) ? 'ok' : 'missing';
  },
  async create(ctx, e) {
    await ctx.h.neighbors.add({ to: e.data.to, dev: e.data.dev, proxy: true });
    return e;
  },
  async destroy(ctx, e) {
    try {
      await ctx.h.neighbors.delete({ to: e.data.to, dev: e.data.dev, proxy: true });
    } catch (err) {
      if (!hasCode(err, 'ENOENT', 'ENODEV')) throw err;
    }
  },
};
