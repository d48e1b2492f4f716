/**
 * The firewall: the host's model applied by @vmhost/firewall (atomic iptables-restore and
 * ebtables-restore batches) in the owner's chains `VMHOST-<owner>-*`: NAT, forwards and the VMs'
 * ports (anti-spoofing). Its plan is empty when the owner's chains are as wanted, and its apply
 * swaps only the chains that differ, so one VM's forwards and port (one group) change alone. The
 * record holds the model applied (validated as any model), so that the undo of an update can put
 * it back. After an update is committed, the conntrack entries of the forwards whose mapping
 * changed or went are deleted (firewall-flows.ts). Destroy stops the VMs of the state directory
 * that still run first (no VM runs without its port's rules), then removes the owner's chains and
 * nothing else.
 * @module
 */
import { apply as fwApply, isNoop, planAgainst as fwPlanAgainst, remove as fwRemove, save as fwSave, type FirewallModel } from '@vmhost/firewall';
import { readdirSync } from 'node:fs';
import type { Ctx } from '../context.js';
import { normalizedModel, vmDir } from '../desired.js';
import type { FirewallEntry } from '../entries.js';
import type { FirewallRecord } from '../records.js';
import { clearStaleFlows, staleMappings } from './firewall-flows.js';
import { done, intended, type KindOps } from './kind.js';
import { liveQemuPid, stopVmIn } from './vm.js';

const where = (ctx: Ctx): { netns?: NonNullable<Ctx['netns']> } => (ctx.netns !== undefined ? { netns: ctx.netns } : {});

/** Whether iptables-save or ip6tables-save shows a chain of `owner`. */
export async function ownerHasChains(ctx: Ctx, owner: string): Promise<boolean> {
  const s = await fwSave(where(ctx));
  const chain = new RegExp(`^:VMHOST-${owner}-\\S+ `, 'm');
  return chain.test(s.ipv4) || chain.test(s.ipv6);
}

/** Applies `next` over `before` (the model the chains hold), then clears the flows of the forwards it changed. */
async function change(ctx: Ctx, before: FirewallModel | undefined, next: FirewallModel): Promise<void> {
  ctx.live.forget('firewall');
  await fwApply(normalizedModel(next), where(ctx));
  if (before) await clearStaleFlows(staleMappings(before, next), ctx.netns);
}

/** Removes the owner's chains (the run's view of the firewall's tables is forgotten first). */
async function removeChains(ctx: Ctx, owner: string): Promise<void> {
  ctx.live.forget('firewall');
  await fwRemove(owner, where(ctx));
}

/** Stops the VMs of the state directory that run (their ports' rules are about to go). */
async function stopRunningVms(ctx: Ctx): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(`${ctx.dir}/vms`);
  } catch {
    return;
  }
  for (const name of names) {
    if (liveQemuPid(vmDir(ctx.dir, name)) === undefined) continue;
    await stopVmIn(vmDir(ctx.dir, name), name);
    ctx.notice(`VM ${name} was still running when the firewall of owner ${ctx.host.name} was removed: stopped first (a VM never runs without its port's rules)`);
  }
}

/** The firewall kind (one entry per host: its owner's chains). */
export const firewallKind: KindOps<FirewallEntry, FirewallRecord> = {
  style: 'object',
  keepsLive: true, // forgets the view's firewall tables itself when it changes the rules
  intent: async (_ctx, e) => ({ ...intended(e), data: { model: e.data.model } }),
  async inspect(ctx, e, recorded) {
    // what the model wants is built while the save programs (started early) are still running
    const p = await fwPlanAgainst(normalizedModel(e.data.model), ctx.live.firewall());
    if (isNoop(p)) return 'ok';
    return recorded ? 'differs' : 'missing';
  },
  async create(ctx, e, intent) {
    await change(ctx, undefined, e.data.model);
    return done(intent);
  },
  async update(ctx, e, recorded) {
    await change(ctx, recorded?.data.model, e.data.model);
    return {
      record: { kind: 'firewall', id: e.id, status: 'done', data: { model: e.data.model } },
      undo: async () => {
        if (recorded) await change(ctx, e.data.model, recorded.data.model);
        else {
          await stopRunningVms(ctx);
          await removeChains(ctx, e.data.model.owner);
        }
      },
    };
  },
  async destroy(ctx, r) {
    await stopRunningVms(ctx);
    await removeChains(ctx, r.data.model.owner);
    return { removed: true };
  },
  reconcile: async (ctx, r) => ((await ownerHasChains(ctx, r.data.model.owner)) ? done(r) : undefined),
  remake: (_ctx, r) => ({ kind: 'firewall', id: 'firewall', data: { model: r.data.model } }),
  removalText: (r) => `firewall of owner ${r.data.model.owner}`,
};
