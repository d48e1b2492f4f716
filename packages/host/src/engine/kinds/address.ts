/**
 * Addresses: the bridge's IPv4 and IPv6 addresses, and in plan B the VMs' /128s on the uplink
 * (IPv6 ones without duplicate address detection), all with vmhost's protocol mark. One is deleted
 * only when it is this host's (owned.ts).
 * @module
 */
import { isIpv6Text } from '../../ip.js';
import type { Ctx } from '../context.js';
import type { AddressEntry } from '../entries.js';
import { MARK_PROTOCOL } from '../marks.js';
import type { AddressRecord } from '../records.js';
import { done, hasCode, intended, NOTHING_TO_UNDO, type KindOps } from './kind.js';
import { isOwned } from './owned.js';

/** The live address of `cidr` on `dev`, if any. */
async function live(ctx: Ctx, dev: string, cidr: string) {
  if (!(await ctx.h.links.find(dev))) return undefined;
  return (await ctx.h.addresses.list({ link: dev })).find((a) => `${a.address}/${a.prefixLength}` === cidr);
}

/** The address kind. */
export const addressKind: KindOps<AddressEntry, AddressRecord> = {
  style: 'object',
  intent: async (_ctx, e) => ({ ...intended(e), data: { ...e.data } }),
  async inspect(ctx, e) {
    return (await live(ctx, e.data.dev, e.data.cidr)) ? 'ok' : 'missing';
  },
  async create(ctx, e, intent) {
    const { dev, cidr } = e.data;
    await ctx.h.addresses.add(dev, cidr, { protocol: MARK_PROTOCOL, ...(isIpv6Text(cidr) ? { nodad: true } : {}) });
    return done(intent);
  },
  update: async (_ctx, _e, recorded) => ({ record: recorded, undo: NOTHING_TO_UNDO }),
  async destroy(ctx, r) {
    const { dev, cidr } = r.data;
    const a = await live(ctx, dev, cidr);
    if (!a) return { removed: false };
    if (!(await isOwned(ctx, dev, a.protocol, a.address, a.prefixLength === 128))) return { removed: false, foreign: `address ${cidr} on ${dev} left alone: it is not on a link of this host and does not carry vmhost's protocol mark` };
    try {
      await ctx.h.addresses.delete(dev, cidr);
    } catch (err) {
      if (!hasCode(err, 'ENODEV', 'EADDRNOTAVAIL', 'ENOENT')) throw err;
    }
    return { removed: true };
  },
  reconcile: async (ctx, r) => ((await live(ctx, r.data.dev, r.data.cidr)) ? done(r) : undefined),
  remake: (_ctx, r) => ({ kind: 'address', id: r.id, data: { ...r.data } }),
  removalText: (r) => `address ${r.data.cidr} on ${r.data.dev}`,
};
