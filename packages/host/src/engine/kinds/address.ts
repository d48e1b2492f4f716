/**
 * Addresses: the bridge's IPv4 and IPv6 addresses, and in plan B the VMs' /128s on the uplink
 * (IPv6 ones without duplicate address detection).
 * @module
 */
import { ip } from '@vmhost/net';
import type { AddressEntry } from '../entries.js';
import { hasCode, type KindOps } from './kind.js';

/** The address kind. */
export const addressKind: KindOps<AddressEntry> = {
  style: 'object',
  async inspect(ctx, e) {
    const { dev, cidr } = e.data;
    if (!(await ctx.h.links.find(dev))) return 'missing';
    const list = await ctx.h.addresses.list({ link: dev });
    return list.some((a) => `${a.address}/${a.prefixLength}` === cidr) ? 'ok' : 'missing';
  },
  async create(ctx, e) {
    const { dev, cidr } = e.data;
    await ctx.h.addresses.add(dev, cidr, ip.toPrefix(cidr, 'cidr').family === 6 ? { nodad: true } : {});
    return e;
  },
  async destroy(ctx, e) {
    try {
      await ctx.h.addresses.delete(e.data.dev, e.data.cidr);
    } catch (err) {
      if (!hasCode(err, 'ENODEV', 'EADDRNOTAVAIL', 'ENOENT')) throw err;
    }
  },
};
