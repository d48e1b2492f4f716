/**
 * Links: the bridge (up), the veth pair on it (first end promiscuous, both up) and the VMs' TAPs
 * on it (up). A link that exists but is not up or not on its bridge differs, and is set so.
 * @module
 */
import type { Ctx } from '../context.js';
import type { LinkEntry } from '../entries.js';
import { hasCode, type KindOps } from './kind.js';

/** Runs `fn` on a link just made; deletes the link again when it fails. */
async function orDelete(ctx: Ctx, name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    await ctx.h.links.delete(name).catch(() => undefined);
    throw err;
  }
}

/** The link kind (bridge, veth, TAP). */
export const linkKind: KindOps<LinkEntry> = {
  style: 'object',
  async inspect(ctx, e) {
    const w = e.data;
    const l = await ctx.h.links.find(w.name);
    if (!l) return 'missing';
    if (w.kind !== 'bridge' && (l.master !== w.master || !l.flags.up)) return 'differs';
    if (w.kind === 'bridge' && !l.flags.up) return 'differs';
    return 'ok';
  },
  async create(ctx, e) {
    const w = e.data;
    switch (w.kind) {
      case 'bridge':
        await ctx.h.links.add({ kind: 'bridge', name: w.name, ...(w.mac ? { mac: w.mac } : {}), stp: w.stp, up: true });
        break;
      case 'veth':
        await ctx.h.links.add({ kind: 'veth', name: w.name, ...(w.mac ? { mac: w.mac } : {}), peer: { name: w.peer } });
        await orDelete(ctx, w.name, async () => {
          await ctx.h.links.set(w.name, { master: w.master, promisc: w.promisc, up: true });
          await ctx.h.links.set(w.peer, { up: true });
        });
        break;
      case 'tap':
        await ctx.h.links.add({ kind: 'tap', name: w.name });
        await orDelete(ctx, w.name, () => ctx.h.links.set(w.name, { master: w.master, up: true }));
        break;
    }
    return e;
  },
  async update(ctx, e) {
    const w = e.data;
    await ctx.h.links.set(w.name, { ...(w.kind !== 'bridge' ? { master: w.master } : {}), up: true });
  },
  async destroy(ctx, e) {
    try {
      await ctx.h.links.delete(e.data.name);
    } catch (err) {
      if (!hasCode(err, 'ENODEV')) throw err;
    }
  },
};
