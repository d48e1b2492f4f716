/**
 * Sysctls: set to the wanted value; the old value is read and recorded before the change
 * (`previous`) and put back by destroy. The record's key is one of the few vmhost sets
 * (records.ts), so a record can never name another sysctl.
 * @module
 */
import type { SysctlEntry } from '../entries.js';
import type { SysctlRecord } from '../records.js';
import { done, intended, type KindOps } from './kind.js';

/** The sysctl kind. */
export const sysctlKind: KindOps<SysctlEntry, SysctlRecord> = {
  style: 'setting',
  keepsLive: true, // touches nothing the live view holds
  async intent(ctx, e) {
    return { ...intended(e), data: { ...e.data }, previous: await ctx.h.sysctl.get(e.data.key) };
  },
  async inspect(ctx, e) {
    return (await ctx.h.sysctl.get(e.data.key)) === e.data.value ? 'ok' : 'differs';
  },
  async create(ctx, e, intent) {
    const previous = await ctx.h.sysctl.exchange(e.data.key, e.data.value);
    return { ...done(intent), previous };
  },
  async update(ctx, e, recorded) {
    // keeps the value recorded by the first apply as `previous`
    const before = await ctx.h.sysctl.exchange(e.data.key, e.data.value);
    return {
      record: recorded && { ...done(recorded), data: { ...e.data } },
      undo: async () => void (await ctx.h.sysctl.set(e.data.key, before)),
    };
  },
  async destroy(ctx, r) {
    await ctx.h.sysctl.set(r.data.key, r.previous);
    return { removed: true };
  },
  async reconcile(ctx, r) {
    return (await ctx.h.sysctl.get(r.data.key)) === r.data.value ? done(r) : undefined;
  },
  remake: (_ctx, r) => ({ kind: 'sysctl', id: r.id, data: { ...r.data } }),
  removalText: (r) => `sysctl ${r.data.key} back to ${r.previous}`,
};
