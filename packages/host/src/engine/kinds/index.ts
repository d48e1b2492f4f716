/**
 * The kinds of entries and the one place that picks a kind's operations for an entry: a switch
 * on `kind`, so each kind gets its own entry type without casts.
 * @module
 */
import type { StepAction } from '../../types.js';
import type { Ctx } from '../context.js';
import type { Entry } from '../entries.js';
import { addressKind } from './address.js';
import { dnsmasqKind } from './dnsmasq.js';
import { firewallKind } from './firewall.js';
import { actionFor, removalFor, type KindOps, type Live } from './kind.js';
import { linkKind } from './link.js';
import { proxyNeighborKind } from './proxy-neighbor.js';
import { proxy6Kind } from './proxy6.js';
import { routeKind } from './route.js';
import { sysctlKind } from './sysctl.js';
import { vmKind } from './vm.js';

export type { Live } from './kind.js';

/** The operations of the kind of one entry, bound to it. */
export interface Applier {
  readonly entry: Entry;
  /** The live host against the entry; `recorded` is the state file's entry of the same id. */
  inspect(ctx: Ctx, recorded: Entry | undefined): Promise<Live>;
  /** Creates it; resolves to the entry to record. */
  create(ctx: Ctx): Promise<Entry>;
  /** Brings a differing one in line (from `recorded`, when there is one). */
  update(ctx: Ctx, recorded: Entry | undefined): Promise<void>;
  destroy(ctx: Ctx): Promise<void>;
  /** The action of a step that makes it (`live`: how it differs). */
  action(live: Exclude<Live, 'ok'>): StepAction;
  /** The action of a step that removes it. */
  readonly removal: StepAction;
  /** The words of its removal step: `sysctl KEY back to OLD`, `link br0`. */
  removalText(): string;
}

/** A guard for entries of `e`'s kind (the state file's entry of the same id is of the same kind). */
function sameKind<E extends Entry>(e: E): (x: Entry | undefined) => x is E {
  return (x): x is E => x?.kind === e.kind;
}

/** Binds `ops` to `e`; `same` tells an entry of the same kind (for `recorded`). */
function bind<E extends Entry>(ops: KindOps<E>, e: E, same: (x: Entry | undefined) => x is E): Applier {
  const rec = (r: Entry | undefined): E | undefined => (same(r) ? r : undefined);
  return {
    entry: e,
    inspect: (ctx, recorded) => ops.inspect(ctx, e, rec(recorded)),
    create: (ctx) => ops.create(ctx, e),
    async update(ctx, recorded) {
      const r = rec(recorded);
      if (ops.update) return ops.update(ctx, e, r);
      if (r) await ops.destroy(ctx, r);
      await ops.create(ctx, e);
    },
    destroy: (ctx) => ops.destroy(ctx, e),
    action: (live) => actionFor(ops.style, live),
    removal: removalFor(ops.style),
    removalText: () => ops.removalText?.(e) ?? e.id.replace(':', ' '),
  };
}

/** The operations of `e`'s kind, bound to `e`. */
export function applier(e: Entry): Applier {
  switch (e.kind) {
    case 'sysctl':
      return bind(sysctlKind, e, sameKind(e));
    case 'link':
      return bind(linkKind, e, sameKind(e));
    case 'address':
      return bind(addressKind, e, sameKind(e));
    case 'route':
      return bind(routeKind, e, sameKind(e));
    case 'proxyNeighbor':
      return bind(proxyNeighborKind, e, sameKind(e));
    case 'firewall':
      return bind(firewallKind, e, sameKind(e));
    case 'dnsmasq':
      return bind(dnsmasqKind, e, sameKind(e));
    case 'vm':
      return bind(vmKind, e, sameKind(e));
    case 'proxy6':
      return bind(proxy6Kind, e, sameKind(e));
  }
}
