/**
 * Sysctls: every sysctl vmhost sets is namespace-wide (forwarding, the shared uplink's accept_ra
 * and proxy_ndp), so each is held in the namespace's shared record (shared.ts): the first host
 * holding it saves the value it had, the last one to leave puts it back, the others leave it.
 * The state file's record names the key and the value set (`previous`: the value it goes back to
 * when the last holder leaves, for people and for recovery). A sysctl already at the wanted value
 * that no host holds and this host never set is left alone (recorded nowhere: it was so before).
 * The record's key is one of the few vmhost sets (records.ts), so a record can never name another
 * sysctl.
 * @module
 */
import { HostStateError } from '../../errors.js';
import type { Ctx } from '../context.js';
import type { SysctlEntry } from '../entries.js';
import type { SysctlRecord } from '../records.js';
import { acquireSetting, callerOf, ownerNames, readShared, releaseSetting, type SharedSetting } from '../shared.js';
import { done, intended, type KindOps } from './kind.js';

/** The shared record's entry of `key` as it is (none when the record cannot be read: apply and down replace a corrupt one). */
export function sharedSetting(ctx: Ctx, key: string): SharedSetting | undefined {
  try {
    return readShared(ctx.netns).settings[key];
  } catch (err) {
    if (err instanceof HostStateError && err.code === 'EHOST_STATE_CORRUPT') return undefined;
    throw err;
  }
}

/** ` (also held by host ha, hb)` when other hosts of the namespace hold `key` (for a step's description), else ''. */
export function heldByOthersText(ctx: Ctx, key: string): string {
  let others: string[] = [];
  try {
    const rec = readShared(ctx.netns);
    others = ownerNames(rec, rec.settings[key]?.holders ?? [], ctx.dir);
  } catch (err) {
    if (!(err instanceof HostStateError)) throw err;
  }
  return others.length > 0 ? ` (also held by host ${others.join(', ')})` : '';
}

/** The sysctl kind. */
export const sysctlKind: KindOps<SysctlEntry, SysctlRecord> = {
  style: 'setting',
  keepsLive: true, // touches nothing the live view holds
  async intent(ctx, e) {
    const s = sharedSetting(ctx, e.data.key);
    return { ...intended(e), data: { ...e.data }, previous: s?.original ?? (await ctx.h.sysctl.get(e.data.key)) };
  },
  async inspect(ctx, e, recorded) {
    if ((await ctx.h.sysctl.get(e.data.key)) !== e.data.value) return 'differs';
    const s = sharedSetting(ctx, e.data.key);
    if (s?.holders.includes(ctx.dir)) return 'ok';
    // at the value, not held: fine only when no host holds it and this one never set it
    return !recorded && (!s || s.holders.length === 0) ? 'ok' : 'differs';
  },
  async observe(ctx, e) {
    return { key: e.data.key, value: await ctx.h.sysctl.get(e.data.key) };
  },
  async create(ctx, e, intent) {
    const a = await acquireSetting(callerOf(ctx), e.data.key, e.data.value);
    return { ...done(intent), previous: a.original };
  },
  async update(ctx, e) {
    const a = await acquireSetting(callerOf(ctx), e.data.key, e.data.value);
    return {
      record: { kind: 'sysctl', id: e.id, status: 'done', data: { ...e.data }, previous: a.original },
      undo: async () => {
        if (!a.held) await releaseSetting(callerOf(ctx), e.data.key);
        else if (a.before !== e.data.value) await ctx.h.sysctl.set(e.data.key, a.before);
      },
    };
  },
  async destroy(ctx, r) {
    const rel = await releaseSetting(callerOf(ctx), r.data.key);
    if (rel.heldBy.length > 0) ctx.notice(`sysctl ${r.data.key} stays ${r.data.value}: host ${rel.heldBy.join(', ')} holds it too`);
    return { removed: true };
  },
  async reconcile(ctx, r) {
    const s = sharedSetting(ctx, r.data.key);
    return s?.holders.includes(ctx.dir) ? { ...done(r), previous: s.original } : undefined;
  },
  remake: (_ctx, r) => ({ kind: 'sysctl', id: r.id, data: { ...r.data } }),
  removalText: (r) => `sysctl ${r.data.key} back to ${r.previous} (unless another host holds it)`,
};
