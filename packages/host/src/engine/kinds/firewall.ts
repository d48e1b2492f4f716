/**
 * The firewall: the host's model applied by @vmhost/firewall (atomic iptables-restore batches)
 * in the owner's chains `VMHOST-<owner>-*`. Its plan is empty when the owner's chains are as
 * wanted, and its apply swaps only the chains that differ, so one VM's forwards (one group)
 * change alone. The record holds the model applied (validated as any model), so that the undo of
 * an update can put it back; destroy removes the owner's chains and nothing else.
 * @module
 */
import { apply as fwApply, isNoop, plan as fwPlan, remove as fwRemove, save as fwSave } from '@vmhost/firewall';
import type { Ctx } from '../context.js';
import type { FirewallEntry } from '../entries.js';
import type { FirewallRecord } from '../records.js';
import { done, intended, type KindOps } from './kind.js';

const where = (ctx: Ctx): { netns?: NonNullable<Ctx['netns']> } => (ctx.netns !== undefined ? { netns: ctx.netns } : {});

/** Whether iptables-save or ip6tables-save shows a chain of `owner`. */
export async function ownerHasChains(ctx: Ctx, owner: string): Promise<boolean> {
  const s = await fwSave(where(ctx));
  const chain = new RegExp(`^:VMHOST-${owner}-\\S+ `, 'm');
  return chain.test(s.ipv4) || chain.test(s.ipv6);
}

/** The firewall kind (one entry per host: its owner's chains). */
export const firewallKind: KindOps<FirewallEntry, FirewallRecord> = {
  style: 'object',
  keepsLive: true, // touches nothing the live view holds
  intent: async (_ctx, e) => ({ ...intended(e), data: { model: e.data.model } }),
  async inspect(ctx, e, recorded) {
    const p = fwPlan(e.data.model, await fwSave(where(ctx)));
    if (isNoop(p)) return 'ok';
    return recorded ? 'differs' : 'missing';
  },
  async create(ctx, e, intent) {
    await fwApply(e.data.model, where(ctx));
    return done(intent);
  },
  async update(ctx, e, recorded) {
    await fwApply(e.data.model, where(ctx));
    return {
      record: { kind: 'firewall', id: e.id, status: 'done', data: { model: e.data.model } },
      undo: async () => {
        if (recorded) await fwApply(recorded.data.model, where(ctx));
        else await fwRemove(e.data.model.owner, where(ctx));
      },
    };
  },
  async destroy(ctx, r) {
    await fwRemove(r.data.model.owner, where(ctx));
    return { removed: true };
  },
  reconcile: async (ctx, r) => ((await ownerHasChains(ctx, r.data.model.owner)) ? done(r) : undefined),
  remake: (_ctx, r) => ({ kind: 'firewall', id: 'firewall', data: { model: r.data.model } }),
  removalText: (r) => `firewall of owner ${r.data.model.owner}`,
};
