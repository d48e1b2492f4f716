/**
 * Routes: in routed mode one /128 per VM address through the bridge (the host's own /64 on the
 * uplink would win otherwise).
 * @module
 */
import { ip } from '@vmhost/net';
import type { RouteEntry } from '../entries.js';
import { hasCode, type KindOps } from './kind.js';

/** The route kind. */
export const routeKind: KindOps<RouteEntry> = {
  style: 'object',
  async inspect(ctx, e) {
    const { to, dev } = e.data;
    if (!(await ctx.h.links.find(dev))) return 'missing';
    const list = await ctx.h.routes.list({ family: ip.toPrefix(to, 'to').family, dev });
    return list.some((r) => r.to === to) ? 'ok' : 'missing';
  },
  async create(ctx, e) {
    await ctx.h.routes.add({ to: e.data.to, dev: e.data.dev });
    return e;
  },
  async destroy(ctx, e) {
    try {
      await ctx.h.routes.delete({ to: e.data.to, dev: e.data.dev });
    } catch (err) {
      if (!hasCode(err, 'ESRCH', 'ENODEV', 'ENOENT')) throw err;
    }
  },
};
