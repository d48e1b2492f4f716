/**
 * The firewall: the host's model applied by @vmhost/firewall (atomic iptables-restore batches).
 * Its plan is empty when the owner's chains are as wanted, and its apply swaps only the chains
 * that differ, so one VM's forwards (one group) change alone.
 * @module
 */
import { apply as fwApply, isNoop, plan as fwPlan, remove as fwRemove, save as fwSave } from '@vmhost/firewall';
import type { Ctx } from '../context.js';
import type { FirewallEntry } from '../entries.js';
import type { KindOps } from './kind.js';

const where = (ctx: Ctx): { netns?: NonNullable<Ctx['netns']> } => (ctx.netns !== undefined ? { netns: ctx.netns } : {});

/** The firewall kind (one entry per host: its owner's chains). */
export const firewallKind: KindOps<FirewallEntry> = {
  style: 'object',
  async inspect(ctx, e, recorded) {
    const p = fwPlan(e.data.model, await fwSave(where(ctx)));
    if (isNoop(p)) return 'ok';
    return recorded ? 'differs' : 'missing';
  },
  async create(ctx, e) {
    await fwApply(e.data.model, where(ctx));
    return e;
  },
  async update(ctx, e) {
    await fwApply(e.data.model, where(ctx));
  },
  async destroy(ctx, e) {
    await fwRemove(e.data.model.owner, where(ctx));
  },
};
