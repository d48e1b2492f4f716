/**
 * Proxy neighbours: in routed mode the host answers neighbour discovery on the uplink for each VM
 * address (proxy NDP), each entry with vmhost's protocol mark; one is deleted only when it is this
 * host's (owned.ts).
 * @module
 */
import type { ProxyNeighborEntry } from '../entries.js';
import type { ProxyNeighborRecord } from '../records.js';
import { MARK_PROTOCOL } from '../marks.js';
import { liveKey } from '../live.js';
import { isOwned, markedKind } from './owned.js';

/** The proxy-neighbour kind. */
export const proxyNeighborKind = markedKind<ProxyNeighborEntry, ProxyNeighborRecord, 'proxyNeighbors'>({
  record: (e) => ({ kind: e.kind, id: e.id, status: 'intended', data: { ...e.data } }),
  entry: (r) => ({ kind: r.kind, id: r.id, data: { ...r.data } }),
  table: 'proxyNeighbors',
  key: ({ to, dev }) => liveKey(dev, to),
  made: ({ to }) => ({ to, protocol: MARK_PROTOCOL }),
  add: (ctx, { to, dev }) => ctx.h.neighbors.add({ to, dev, proxy: true, protocol: MARK_PROTOCOL }),
  delete: (ctx, { to, dev }) => ctx.h.neighbors.delete({ to, dev, proxy: true }),
  gone: ['ENOENT', 'ENODEV'],
  owned: (ctx, { to, dev }, n) => isOwned(ctx, dev, n.protocol, to, true),
  text: ({ to, dev }) => `proxy neighbour ${to} on ${dev}`,
});
