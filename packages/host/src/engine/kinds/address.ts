/**
 * Addresses: the bridge's IPv4 and IPv6 addresses, and in plan B the VMs' /128s on the uplink
 * (IPv6 ones without duplicate address detection), all with vmhost's protocol mark; one is deleted
 * only when it is this host's (owned.ts).
 * @module
 */
import { ip } from '@vmhost/net';
import type { AddressEntry } from '../entries.js';
import type { AddressRecord } from '../records.js';
import { MARK_PROTOCOL } from '../marks.js';
import { liveKey } from '../live.js';
import { isOwned, markedKind } from './owned.js';

/** The address kind. */
export const addressKind = markedKind<AddressEntry, AddressRecord, 'addresses'>({
  record: (e) => ({ kind: e.kind, id: e.id, status: 'intended', data: { ...e.data } }),
  entry: (r) => ({ kind: r.kind, id: r.id, data: { ...r.data } }),
  table: 'addresses',
  key: ({ dev, cidr }) => liveKey(dev, cidr),
  made: ({ cidr }) => {
    const p = ip.toPrefix(cidr, 'cidr');
    return { address: p.address, prefixLength: p.prefixLength, protocol: MARK_PROTOCOL };
  },
  add: (ctx, { dev, cidr }) => ctx.h.addresses.add(dev, cidr, { protocol: MARK_PROTOCOL, ...(ip.toPrefix(cidr, 'cidr').family === 6 ? { nodad: true } : {}) }),
  delete: (ctx, { dev, cidr }) => ctx.h.addresses.delete(dev, cidr),
  gone: ['ENODEV', 'EADDRNOTAVAIL', 'ENOENT'],
  owned: (ctx, { dev }, a) => isOwned(ctx, dev, a.protocol, a.address, a.prefixLength === 128),
  text: ({ dev, cidr }) => `address ${cidr} on ${dev}`,
});
