/**
 * Sysctls: set to the wanted value, the old value recorded (`previous`) and put back by destroy.
 * @module
 */
import type { SysctlEntry } from '../entries.js';
import type { KindOps } from './kind.js';

/** The sysctl kind. */
export const sysctlKind: KindOps<SysctlEntry> = {
  style: 'setting',
  async inspect(ctx, e) {
    return (await ctx.h.sysctl.get(e.data.key)) === e.data.value ? 'ok' : 'differs';
  },
  async create(ctx, e) {
    const previous = await ctx.h.sysctl.exchange(e.data.key, e.data.value);
    return { ...e, previous };
  },
  async update(ctx, e) {
    // keeps the value recorded by the first apply as `previous`
    await ctx.h.sysctl.set(e.data.key, e.data.value);
  },
  async destroy(ctx, e) {
    if (e.previous !== undefined) await ctx.h.sysctl.set(e.data.key, e.previous);
  },
  removalText: (e) => `sysctl ${e.data.key} back to ${String(e.previous)}`,
};
