/**
 * The kinds of entries and the one place that picks a kind's operations: for a desired entry
 * ({@link forEntry}) and for a record of the state file ({@link forRecord}); a switch on `kind`,
 * so each kind gets its own entry and record types without casts.
 * @module
 */
import { VmhostError } from '@vmhost/net';
import type { StepAction } from '../../types.js';
import type { Ctx } from '../context.js';
import type { Entry } from '../entries.js';
import type { LinkRecord, StateRecord, VmRecord } from '../records.js';
import { addressKind } from './address.js';
import { dnsmasqKind } from './dnsmasq.js';
import { firewallKind } from './firewall.js';
import { actionFor, isAdopted, removalFor, type Destroyed, type KindOps, type Live, type Updated } from './kind.js';
import { linkKind } from './link.js';
import { proxyNeighborKind } from './proxy-neighbor.js';
import { proxy6Kind } from './proxy6.js';
import { qdiscKind, tcFilterKind } from './qdisc.js';
import { routeKind } from './route.js';
import { sysctlKind } from './sysctl.js';
import { vmKind } from './vm.js';

export type { Destroyed, Live, Updated } from './kind.js';
export { isAdopted } from './kind.js';

/** The operations of the kind of one desired entry, bound to it. */
export interface EntryOps {
  readonly entry: Entry;
  /** The record written before it is made. */
  intent(ctx: Ctx): Promise<StateRecord>;
  /** The live host against the entry; `recorded` is the state file's record of the same id. */
  inspect(ctx: Ctx, recorded: StateRecord | undefined): Promise<Live>;
  /** What the live host has of it now (kind.ts `observe`); undefined when the kind does not say. */
  observe(ctx: Ctx): Promise<{ [key: string]: unknown } | null | undefined>;
  /** Makes it as `intent` says; resolves to its record. */
  create(ctx: Ctx, intent: StateRecord): Promise<StateRecord>;
  /** Brings a differing one in line. */
  update(ctx: Ctx, recorded: StateRecord | undefined): Promise<Updated<StateRecord>>;
  /** The action of a step that makes it (`live`: how it differs). */
  action(live: Exclude<Live, 'ok'>): StepAction;
  /** Whether its kind keeps the run's live view (kind.ts `keepsLive`). */
  readonly keepsLive: boolean;
  /** The record written before an existing object is adopted. @throws when the kind adopts nothing. */
  adoptIntent(ctx: Ctx): Promise<StateRecord>;
  /** Adopts the existing object as `intent` says; resolves to its record. */
  adopt(ctx: Ctx, intent: StateRecord): Promise<StateRecord>;
}

/** The operations of the kind of one record, bound to it. */
export interface RecordOps {
  readonly record: StateRecord;
  destroy(ctx: Ctx): Promise<Destroyed>;
  reconcile(ctx: Ctx): Promise<StateRecord | undefined>;
  /** The entry that makes it again, if the record and the host file hold what it takes. */
  remake(ctx: Ctx): Entry | undefined;
  /** The action of a step that removes it. */
  readonly removal: StepAction;
  /** The words of its removal step after the verb. */
  removalText(): string;
  /** Whether its kind keeps the run's live view (kind.ts `keepsLive`). */
  readonly keepsLive: boolean;
  /** Whether its kind removes many at once ({@link destroyMany}). */
  readonly batches: boolean;
}

/** A guard for records of `kind`. */
function ofKind<R extends StateRecord>(kind: R['kind']): (x: StateRecord | undefined) => x is R {
  return (x): x is R => x?.kind === kind;
}

function bindEntry<E extends Entry, R extends StateRecord>(ops: KindOps<E, R>, e: E, same: (x: StateRecord | undefined) => x is R): EntryOps {
  const adoptOps = (): NonNullable<KindOps<E, R>['adopt']> => {
    if (!ops.adopt) throw new VmhostError('EHOST_INTERNAL', `a ${e.kind} entry (${e.id}) cannot be adopted`);
    return ops.adopt;
  };
  const own = (r: StateRecord): R => {
    if (!same(r)) throw new VmhostError('EHOST_INTERNAL', `a ${r.kind} record for the ${e.kind} entry ${e.id}`);
    return r;
  };
  return {
    entry: e,
    intent: (ctx) => ops.intent(ctx, e),
    inspect: (ctx, recorded) => ops.inspect(ctx, e, same(recorded) ? recorded : undefined),
    observe: async (ctx) => (ops.observe ? ops.observe(ctx, e) : undefined),
    create: (ctx, intent) => ops.create(ctx, e, own(intent)),
    update: (ctx, recorded) => ops.update(ctx, e, same(recorded) ? recorded : undefined),
    action: (live) => actionFor(ops.style, live),
    keepsLive: ops.keepsLive === true,
    adoptIntent: (ctx) => adoptOps().intent(ctx, e),
    adopt: (ctx, intent) => adoptOps().make(ctx, e, own(intent)),
  };
}

function bindRecord<E extends Entry, R extends StateRecord>(ops: KindOps<E, R>, r: R): RecordOps {
  return {
    record: r,
    destroy: (ctx) => ops.destroy(ctx, r),
    reconcile: (ctx) => ops.reconcile(ctx, r),
    remake: (ctx) => ops.remake(ctx, r),
    removal: isAdopted(r) ? 'release' : removalFor(ops.style),
    removalText: () => ops.removalText(r),
    keepsLive: ops.keepsLive === true,
    batches: ops.destroyMany !== undefined,
  };
}

/** The operations of `e`'s kind, bound to `e`. */
export function forEntry(e: Entry): EntryOps {
  switch (e.kind) {
    case 'sysctl':
      return bindEntry(sysctlKind, e, ofKind('sysctl'));
    case 'link':
      return bindEntry(linkKind, e, ofKind('link'));
    case 'address':
      return bindEntry(addressKind, e, ofKind('address'));
    case 'route':
      return bindEntry(routeKind, e, ofKind('route'));
    case 'proxyNeighbor':
      return bindEntry(proxyNeighborKind, e, ofKind('proxyNeighbor'));
    case 'firewall':
      return bindEntry(firewallKind, e, ofKind('firewall'));
    case 'qdisc':
      return bindEntry(qdiscKind, e, ofKind('qdisc'));
    case 'tcFilter':
      return bindEntry(tcFilterKind, e, ofKind('tcFilter'));
    case 'dnsmasq':
      return bindEntry(dnsmasqKind, e, ofKind('dnsmasq'));
    case 'vm':
      return bindEntry(vmKind, e, ofKind('vm'));
    case 'proxy6':
      return bindEntry(proxy6Kind, e, ofKind('proxy6'));
  }
}

/** The operations of `r`'s kind, bound to `r`. */
export function forRecord(r: StateRecord): RecordOps {
  switch (r.kind) {
    case 'sysctl':
      return bindRecord(sysctlKind, r);
    case 'link':
      return bindRecord(linkKind, r);
    case 'address':
      return bindRecord(addressKind, r);
    case 'route':
      return bindRecord(routeKind, r);
    case 'proxyNeighbor':
      return bindRecord(proxyNeighborKind, r);
    case 'firewall':
      return bindRecord(firewallKind, r);
    case 'qdisc':
      return bindRecord(qdiscKind, r);
    case 'tcFilter':
      return bindRecord(tcFilterKind, r);
    case 'dnsmasq':
      return bindRecord(dnsmasqKind, r);
    case 'vm':
      return bindRecord(vmKind, r);
    case 'proxy6':
      return bindRecord(proxy6Kind, r);
  }
}

/**
 * Removes what the records `rs` stand for at once when their kind can ({@link RecordOps.batches};
 * all of one kind), else one by one: the outcome of each, in order.
 */
export async function destroyMany(ctx: Ctx, rs: StateRecord[]): Promise<Array<PromiseSettledResult<Destroyed>>> {
  const links = rs.filter(ofKind<LinkRecord>('link'));
  if (links.length === rs.length && linkKind.destroyMany) return linkKind.destroyMany(ctx, links);
  const vms = rs.filter(ofKind<VmRecord>('vm'));
  if (vms.length === rs.length && vmKind.destroyMany) return vmKind.destroyMany(ctx, vms);
  const out: Array<PromiseSettledResult<Destroyed>> = [];
  for (const r of rs) {
    try {
      out.push({ status: 'fulfilled', value: await forRecord(r).destroy(ctx) });
    } catch (reason) {
      out.push({ status: 'rejected', reason });
    }
  }
  return out;
}
