/**
 * Links: the bridge (up), the veth pair on it (first end promiscuous, both up), the VMs' TAPs
 * on it (up) and their ifbs (up; `bandwidth.fromVm`), each marked with this host's owner mark (marks.ts): made under a temporary name,
 * then renamed and marked in one request. A link is deleted only when it carries the mark (and is
 * not the uplink); a recorded link without it is left alone with a notice. A link that exists but
 * is not up or not on its bridge differs, and is set so.
 * @module
 */
import type { Link } from '@vmhost/net';
import type { Ctx } from '../context.js';
import type { LinkEntry } from '../entries.js';
import { newTempToken, tempNames } from '../marks.js';
import type { LinkRecord } from '../records.js';
import { done, hasCode, intended, NOTHING_TO_UNDO, type KindOps } from './kind.js';

/** Deletes `link` (by index: the one looked at); one already gone is fine. */
async function deleteLink(ctx: Ctx, link: Link): Promise<void> {
  try {
    await ctx.h.links.delete(link.index);
  } catch (err) {
    if (!hasCode(err, 'ENODEV')) throw err;
  }
}

/** Deletes the temporary links of `token` that are not someone else's (unmarked, or marked by this host). */
async function deleteTemps(ctx: Ctx, token: string): Promise<void> {
  for (const n of tempNames(token)) {
    const l = await ctx.h.links.find(n);
    if (l && (l.alias === null || l.alias === ctx.mark)) await deleteLink(ctx, l);
  }
}

/** Runs `fn` on a link just made under the temporary names of `token`; removes what it made when `fn` fails. */
async function orDelete(ctx: Ctx, token: string, name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    await deleteTemps(ctx, token).catch(() => undefined);
    const l = await ctx.h.links.find(name).catch(() => undefined);
    if (l && l.alias === ctx.mark) await deleteLink(ctx, l).catch(() => undefined);
    throw err;
  }
}

/** Whether the live link `l` is this host's. */
const ours = (ctx: Ctx, l: Link): boolean => l.alias === ctx.mark && l.name !== ctx.host.uplink;

/** The link kind (bridge, veth, TAP). */
export const linkKind: KindOps<LinkEntry, LinkRecord> = {
  style: 'object',
  async intent(_ctx, e) {
    return { ...intended(e), data: { ...e.data }, ifindex: null, temp: newTempToken() };
  },
  async inspect(ctx, e) {
    const w = e.data;
    const l = await ctx.h.links.find(w.name);
    if (!l) return 'missing';
    if ((w.kind === 'veth' || w.kind === 'tap') && l.master !== w.master) return 'differs';
    return l.flags.up ? 'ok' : 'differs';
  },
  async create(ctx, e, intent) {
    const w = e.data;
    const token = intent.temp ?? newTempToken();
    const [tmp, tmpPeer] = tempNames(token);
    const mark = { alias: ctx.mark };
    switch (w.kind) {
      case 'bridge':
        await ctx.h.links.add({ kind: 'bridge', name: tmp, ...(w.mac ? { mac: w.mac } : {}), stp: w.stp }, { result: false });
        await orDelete(ctx, token, w.name, async () => {
          await ctx.h.links.set(tmp, { name: w.name, ...mark });
          await ctx.h.links.set(w.name, { up: true });
        });
        break;
      case 'veth':
        await ctx.h.links.add({ kind: 'veth', name: tmp, ...(w.mac ? { mac: w.mac } : {}), peer: { name: tmpPeer } }, { result: false });
        await orDelete(ctx, token, w.name, async () => {
          await ctx.h.links.set(tmp, { name: w.name, ...mark });
          await ctx.h.links.set(tmpPeer, { name: w.peer, ...mark });
          await ctx.h.links.set(w.name, { master: w.master, promisc: w.promisc, up: true });
          await ctx.h.links.set(w.peer, { up: true });
        });
        break;
      case 'tap':
        await ctx.h.links.add({ kind: 'tap', name: tmp });
        await orDelete(ctx, token, w.name, async () => {
          await ctx.h.links.set(tmp, { name: w.name, ...mark });
          await ctx.h.links.set(w.name, { master: w.master, up: true });
        });
        break;
      case 'ifb':
        await ctx.h.links.add({ kind: 'ifb', name: tmp });
        await orDelete(ctx, token, w.name, async () => {
          await ctx.h.links.set(tmp, { name: w.name, ...mark });
          await ctx.h.links.set(w.name, { up: true });
        });
        break;
    }
    const l = await ctx.h.links.get(w.name);
    return { ...done(intent), ifindex: l.index, temp: null };
  },
  async update(ctx, e, recorded) {
    const w = e.data;
    await ctx.h.links.set(w.name, { ...(w.kind === 'veth' || w.kind === 'tap' ? { master: w.master } : {}), up: true });
    return { record: recorded && done(recorded), undo: NOTHING_TO_UNDO };
  },
  async destroy(ctx, r) {
    if (r.temp !== null) await deleteTemps(ctx, r.temp);
    const l = await ctx.h.links.find(r.data.name);
    if (!l) return { removed: false };
    if (r.adopted) return release(ctx, r, l);
    if (!ours(ctx, l)) {
      const why = l.name === ctx.host.uplink ? 'it is the uplink' : `it does not carry this host's owner mark (ifalias "${ctx.mark}"${l.alias !== null ? `; it has "${l.alias}"` : ''})`;
      return { removed: false, foreign: `link ${l.name} left alone: ${why}` };
    }
    await deleteLink(ctx, l);
    return { removed: true };
  },
  async reconcile(ctx, r) {
    const l = await ctx.h.links.find(r.data.name);
    if (r.adopted) return l && (l.alias === null || l.alias === '') ? { ...done(r), ifindex: l.index } : undefined;
    if (l && ours(ctx, l)) {
      if (r.data.kind === 'veth' && r.temp !== null) {
        // stopped between renaming the two ends: name and mark the peer too
        const [, tmpPeer] = tempNames(r.temp);
        if (await ctx.h.links.find(tmpPeer)) await ctx.h.links.set(tmpPeer, { name: r.data.peer, alias: ctx.mark });
      }
      return { ...done(r), ifindex: l.index, temp: null };
    }
    if (r.temp !== null) await deleteTemps(ctx, r.temp);
    return undefined;
  },
  remake: (_ctx, r) => ({ kind: 'link', id: r.id, data: { ...r.data } }),
  removalText: (r) => (r.adopted ? `link ${r.data.name} (adopted: left in place${releaseText(r)})` : `link ${r.data.name}`),
  adopt: {
    async intent(ctx, e) {
      const l = await ctx.h.links.get(e.data.name);
      return { ...intended(e), data: { ...e.data }, ifindex: l.index, temp: null, adopted: { up: l.flags.up, master: l.master } };
    },
    async make(ctx, e, intent) {
      const w = e.data;
      await ctx.h.links.set(w.name, { ...(w.kind === 'veth' || w.kind === 'tap' ? { master: w.master } : {}), up: true });
      return done(intent);
    },
  },
};

/** What down puts back on an adopted link, for people. */
function releaseText(r: LinkRecord): string {
  const a = r.adopted!;
  const parts = [...(r.data.kind === 'veth' || r.data.kind === 'tap' ? [a.master === null ? 'off the bridge' : `back on ${a.master}`] : []), ...(a.up ? [] : ['down'])];
  return parts.length > 0 ? `, ${parts.join(' and ')} again` : '';
}

/**
 * An adopted link (no mark, never deleted): down puts back what apply changed (its bridge, up or
 * down), when it is still the link adopted (same index, still unmarked).
 */
async function release(ctx: Ctx, r: LinkRecord, l: Link): Promise<{ removed: false; foreign?: string }> {
  const a = r.adopted!;
  if ((r.ifindex !== null && l.index !== r.ifindex) || (l.alias !== null && l.alias !== '')) {
    return { removed: false, foreign: `link ${l.name} left alone: it is not the link adopted (index ${l.index}${l.alias ? `, ifalias "${l.alias}"` : ''})` };
  }
  const changes: { master?: string | null; up?: boolean } = {};
  if ((r.data.kind === 'veth' || r.data.kind === 'tap') && l.master !== a.master) changes.master = a.master;
  if (l.flags.up !== a.up) changes.up = a.up;
  if (Object.keys(changes).length > 0) await ctx.h.links.set(l.name, changes);
  return { removed: false };
}
