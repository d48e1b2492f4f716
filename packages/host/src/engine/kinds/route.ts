/**
 * Routes: in routed mode one /128 per VM address through the bridge (the host's own /64 on the
 * uplink would win otherwise), with vmhost's protocol mark. One is deleted only when it is this
 * host's (owned.ts).
 * @module
 */
import { isIpv6Text } from '../../ip.js';
import type { Ctx } from '../context.js';
import type { RouteEntry } from '../entries.js';
import { MARK_PROTOCOL } from '../marks.js';
import type { RouteRecord } from '../records.js';
import { done, hasCode, intended, NOTHING_TO_UNDO, type KindOps } from './kind.js';
import { isOwned } from './owned.js';

/** The live route to `to` through `dev`, if any. */
async function live(ctx: Ctx, to: string, dev: string) {
  if (!(await ctx.h.links.find(dev))) return undefined;
  return (await ctx.h.routes.list({ family: isIpv6Text(to) ? 6 : 4, dev })).find((r) => r.to === to);
}

/** The route kind. */
export const routeKind: KindOps<RouteEntry, RouteRecord> = {
  style: 'object',
  intent: async (_ctx, e) => ({ ...intended(e), data: { ...e.data } }),
  async inspect(ctx, e) {
    return (await live(ctx, e.data.to, e.data.dev)) ? 'ok' : 'missing';
  },
  async create(ctx, e, intent) {
    await ctx.h.routes.add({ to: e.data.to, dev: e.data.dev, protocol: MARK_PROTOCOL });
    return done(intent);
  },
  update: async (_ctx, _e, recorded) => ({ record: recorded, undo: NOTHING_TO_UNDO }),
  async destroy(ctx, r) {
    const { to, dev } = r.data;
    const rt = await live(ctx, to, dev);
    if (!rt) return { removed: false };
    if (!(await isOwned(ctx, dev, rt.protocol, to.split('/')[0]!, to.endsWith('/128')))) return { removed: false, foreign: `route ${to} dev ${dev} left alone: it is not on a link of this host and does not carry vmhost's protocol mark` };
    try {
      await ctx.h.routes.delete({ to, dev });
    } catch (err) {
      if (!hasCode(err, 'ESRCH', 'ENODEV', 'ENOENT')) throw err;
    }
    return { removed: true };
  },
  reconcile: async (ctx, r) => ((await live(ctx, r.data.to, r.data.dev)) ? done(r) : undefined),
  remake: (_ctx, r) => ({ kind: 'route', id: r.id, data: { ...r.data } }),
  removalText: (r) => `route ${r.data.to} dev ${r.data.dev}`,
};
