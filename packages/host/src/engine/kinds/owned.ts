/**
 * Whether an address, route or proxy neighbour that a record names may be removed: it must be on
 * one of this host's links (they carry the owner mark), or carry vmhost's protocol mark
 * (marks.ts). Kernels before 6.3 keep no protocol for addresses: there an unmarked /128 inside
 * the host's IPv6 prefix on the uplink (what plan B adds) is taken as vmhost's.
 * @module
 */
import type { Ctx } from '../context.js';
import { isMarkedProtocol } from '../marks.js';

/** Whether the link `dev` carries this host's owner mark. */
export async function onOwnLink(ctx: Ctx, dev: string): Promise<boolean> {
  const l = await ctx.h.links.find(dev);
  return l !== undefined && l.alias === ctx.mark && l.name !== ctx.host.uplink;
}

/** Whether the address (or /128 prefix) `cidr` is a single address inside the host's IPv6 prefix. */
export function inHostPrefix(ctx: Ctx, address: string): boolean {
  const p = ctx.host.ipv6?.prefix;
  if (!p || !address.includes(':')) return false;
  const words = (a: string): number[] => {
    const [head = '', tail = ''] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const full = a.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
    return full.map((x) => parseInt(x || '0', 16));
  };
  const a = words(address);
  const n = words(p.address);
  let bits = p.prefixLength;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if (((a[i] ?? 0) & mask) !== ((n[i] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Whether a live address, route or proxy neighbour of a record is this host's: on an own link, or
 * carrying the protocol mark, or (no protocol at all, on the uplink) a single address inside the
 * host's IPv6 prefix.
 */
export async function isOwned(ctx: Ctx, dev: string, protocol: string | number | null, address: string, single: boolean): Promise<boolean> {
  if (await onOwnLink(ctx, dev)) return true;
  if (isMarkedProtocol(protocol)) return true;
  return (protocol === null || protocol === 0) && single && inHostPrefix(ctx, address);
}
