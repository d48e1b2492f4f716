/**
 * Links: the bridge (up), the veth pair on it (first end promiscuous, both up), the VMs' TAPs
 * on it (up) and their ifbs (up; `bandwidth.fromVm`), each marked with this host's owner mark (marks.ts): made under a temporary name,
 * then renamed and marked in one request. A link is deleted only when it carries the mark (and is
 * not the uplink); a recorded link without it is left alone with a notice. A link that exists but
 * is not up or not on its bridge differs, and is set so.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Link } from '@vmhost/net';
import type { Ctx } from '../context.js';
import type { LinkEntry } from '../entries.js';
import { newTempToken, tempNames } from '../marks.js';
import type { LinkRecord } from '../records.js';
import { done, hasCode, intended, NOTHING_TO_UNDO, type Destroyed, type KindOps } from './kind.js';

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

/** Why a recorded link `l` is left alone (undefined: it is this host's). */
function foreign(ctx: Ctx, l: Link): string | undefined {
  if (ours(ctx, l)) return undefined;
  const why = l.name === ctx.host.uplink ? 'it is the uplink' : `it does not carry this host's owner mark (ifalias "${ctx.mark}"${l.alias !== null ? `; it has "${l.alias}"` : ''})`;
  return `link ${l.name} left alone: ${why}`;
}

/** The names a link record stands for (a veth pair: both ends). */
const namesOf = (r: LinkRecord): string[] => (r.data.kind === 'veth' ? [r.data.name, r.data.peer] : [r.data.name]);

/** Reads the links `names` as made now and tells the run's view. */
async function noteMade(ctx: Ctx, names: string[]): Promise<Link> {
  const made = await Promise.all(names.map((n) => ctx.h.links.get(n)));
  made.forEach((l, i) => ctx.live.set('links', names[i]!, l));
  return made[0]!;
}

/**
 * Deletes the links `found` (this host's, by index) in one batch of the kernel: each is put in a
 * group no link of the namespace is in (a random one, checked in a fresh dump), the group is
 * checked to hold exactly these links, and deleted with one request (links.deleteGroup): the
 * kernel then waits for its RCU grace periods once, not once per link (~20 ms each here).
 * Resolves false (and puts them back in their groups) when that cannot be done safely: the
 * caller then deletes them one by one.
 */
async function deleteAsGroup(ctx: Ctx, found: Link[]): Promise<boolean> {
  const used = new Set((await ctx.h.links.list()).map((l) => l.group));
  let group = 0;
  while (group === 0 || used.has(group)) group = randomBytes(4).readUInt32BE(0);
  let moved: Link[] = [];
  const back = async (): Promise<void> => {
    await Promise.allSettled(moved.map((l) => ctx.h.links.set(l.index, { group: l.group })));
  };
  try {
    // the requests in flight together (the socket matches the answers)
    const set = await Promise.allSettled(found.map((l) => ctx.h.links.set(l.index, { group })));
    moved = found.filter((_, i) => set[i]!.status === 'fulfilled');
    if (moved.length !== found.length) {
      await back();
      return false;
    }
    // exactly ours in it (no other link took the group meanwhile, every one is still marked)
    const inGroup = (await ctx.h.links.list()).filter((l) => l.group === group);
    const want = new Set(found.map((l) => l.index));
    if (inGroup.length !== found.length || inGroup.some((l) => !want.has(l.index) || !ours(ctx, l))) {
      await back();
      return false;
    }
    await ctx.h.links.deleteGroup(group);
    return true;
  } catch {
    await back();
    return false;
  }
}

/** The link kind (bridge, veth, TAP). */
export const linkKind: KindOps<LinkEntry, LinkRecord> = {
  style: 'object',
  keepsLive: true,
  async intent(_ctx, e) {
    return { ...intended(e), data: { ...e.data }, ifindex: null, temp: newTempToken() };
  },
  async inspect(ctx, e) {
    const w = e.data;
    const l = await ctx.live.link(w.name);
    if (!l) return 'missing';
    if ((w.kind === 'veth' || w.kind === 'tap') && l.master !== w.master) return 'differs';
    return l.flags.up ? 'ok' : 'differs';
  },
  async observe(ctx, e) {
    const l = await ctx.live.link(e.data.name);
    return l ? { kind: l.kind, name: l.name, master: l.master, up: l.flags.up, mac: l.mac, alias: l.alias } : null;
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
    const l = await noteMade(ctx, w.kind === 'veth' ? [w.name, w.peer] : [w.name]);
    return { ...done(intent), ifindex: l.index, temp: null };
  },
  async update(ctx, e, recorded) {
    const w = e.data;
    await ctx.h.links.set(w.name, { ...(w.kind === 'veth' || w.kind === 'tap' ? { master: w.master } : {}), up: true });
    await noteMade(ctx, [w.name]);
    return { record: recorded && done(recorded), undo: NOTHING_TO_UNDO };
  },
  async destroy(ctx, r) {
    if (r.temp !== null) await deleteTemps(ctx, r.temp);
    const l = await ctx.live.link(r.data.name);
    if (!l) return { removed: false };
    if (r.adopted) {
      // an adopted link is put back as it was (its bridge, up or down), never deleted
      const released = await release(ctx, r, l);
      ctx.live.forget('links');
      return released;
    }
    const why = foreign(ctx, l);
    if (why !== undefined) return { removed: false, foreign: why };
    await deleteLink(ctx, l);
    ctx.live.linksGone(namesOf(r));
    return { removed: true };
  },
  async destroyMany(ctx, rs) {
    const out: Array<PromiseSettledResult<Destroyed> | undefined> = rs.map(() => undefined);
    const batch: Array<{ i: number; l: Link }> = [];
    for (const [i, r] of rs.entries()) {
      try {
        if (r.temp !== null) await deleteTemps(ctx, r.temp);
        const l = await ctx.live.link(r.data.name);
        const why = l && !r.adopted ? foreign(ctx, l) : undefined;
        if (!l) out[i] = { status: 'fulfilled', value: { removed: false } };
        else if (r.adopted) out[i] = { status: 'fulfilled', value: await linkKind.destroy(ctx, r) };
        else if (why !== undefined) out[i] = { status: 'fulfilled', value: { removed: false, foreign: why } };
        else batch.push({ i, l });
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
    if (batch.length > 1 && (await deleteAsGroup(ctx, batch.map((b) => b.l)))) {
      for (const b of batch) out[b.i] = { status: 'fulfilled', value: { removed: true } };
    } else {
      for (const b of batch) {
        try {
          await deleteLink(ctx, b.l);
          out[b.i] = { status: 'fulfilled', value: { removed: true } };
        } catch (reason) {
          out[b.i] = { status: 'rejected', reason };
        }
      }
    }
    ctx.live.linksGone(batch.flatMap((b) => namesOf(rs[b.i]!)));
    return out.map((o) => o!);
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
