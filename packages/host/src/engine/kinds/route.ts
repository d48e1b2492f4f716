/**
 * Routes: in routed mode one /128 per VM address through the bridge (the host's own /64 on the
 * uplink would win otherwise), with vmhost's protocol mark; one is deleted only when it is this
 * host's (owned.ts).
 * @module
 */
import type { RouteEntry } from '../entries.js';
import type { RouteRecord } from '../records.js';
import { MARK_PROTOCOL } from '../marks.js';
import { liveKey } from '../live.js';
import { isOwned, markedKind } from './owned.js';

/** The route kind. */
export const routeKind = markedKind<RouteEntry, RouteRecord, 'routes'>({
  record: (e) => ({ kind: e.kind, id: e.id, status: 'intended', data: { ...e.data } }),
  entry: (r) => ({ kind: r.kind, id: r.id, data: { ...r.data } }),
  table: 'routes',
  key: ({ to, dev }) => liveKey(dev, to),
  made: ({ to }) => ({ to, protocol: String(MARK_PROTOCOL) }),
  add: (ctx, { to, dev }) => ctx.h.routes.add({ to, dev, protocol: MARK_PROTOCOL }),
  delete: (ctx, { to, dev }) => ctx.h.routes.delete({ to, dev }),
  gone: ['ESRCH', 'ENODEV', 'ENOENT'],
  owned: (ctx, { to, dev }, r) => isOwned(ctx, dev, r.protocol, to.split('/')[0]!, to.endsWith('/128')),
  text: ({ to, dev }) => `route ${to} dev ${dev}`,
});
