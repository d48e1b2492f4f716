/**
 * What one kind of entry knows: how to inspect it in the live host (ok, missing, differs), the
 * record of it written ahead of a change, how to create it, bring a differing one in line,
 * destroy it from its record (identity only, after checking the owner marks), reconcile an
 * intended record with the live host after an interrupted run, make a removed one again, and how
 * its steps are named.
 * @module
 */
import type { StepAction } from '../../types.js';
import type { Ctx } from '../context.js';
import type { Entry } from '../entries.js';
import type { StateRecord } from '../records.js';

/** How the live host compares with an entry. */
export type Live = 'ok' | 'missing' | 'differs';

/**
 * The verbs of a kind's steps: `object` (links, addresses, ...: create/update/delete), `setting`
 * (sysctls: set), `process` (VMs and services: start/restart/stop).
 */
export type KindStyle = 'object' | 'setting' | 'process';

/** What a destroy found: whether it removed something; `foreign` says why it left a thing alone. */
export interface Destroyed {
  removed: boolean;
  /** The thing is there but not this host's (no owner mark): left alone; the reason. */
  foreign?: string;
}

/** What an update did: the record to keep (undefined: the thing is not this host's) and its undo. */
export interface Updated<R> {
  record: R | undefined;
  undo(): Promise<void>;
}

/** The operations of the kind whose entries are `E` and records `R`. */
export interface KindOps<E extends Entry, R extends StateRecord> {
  readonly style: KindStyle;
  /**
   * Whether this kind reads the live host through the run's view (`ctx.live`, live.ts) and tells
   * the view what it makes and removes. After a step (or an undo) of a kind without it, the
   * engine forgets the view, so that the kinds reading it see what such a step changed; such a
   * kind reads the live host by itself, as before the view existed.
   */
  readonly keepsLive?: boolean;
  /** The record written before `e` is made (status `intended`), with the identity it will have. */
  intent(ctx: Ctx, e: E): Promise<R>;
  /** `recorded` is the state file's record of the same id, if any. */
  inspect(ctx: Ctx, e: E, recorded: R | undefined): Promise<Live>;
  /**
   * Optional: what the live host has of `e` now, in the entry's terms, for a plan step's `before`
   * (called only for an entry that differs). Kinds without it show their record's data.
   */
  observe?(ctx: Ctx, e: E): Promise<{ [key: string]: unknown } | null>;
  /** Makes `e` as `intent` says; resolves to its record (status `done`). Removes what it made when it fails. */
  create(ctx: Ctx, e: E, intent: R): Promise<R>;
  /** Brings a differing `e` in line; `recorded` is this host's record of it, if any. */
  update(ctx: Ctx, e: E, recorded: R | undefined): Promise<Updated<R>>;
  /** Removes what `r` stands for when it is there and carries this host's marks. */
  destroy(ctx: Ctx, r: R): Promise<Destroyed>;
  /**
   * Optional: removes what each of `rs` stands for at once (one batch for the kernel), each as
   * `destroy` would (the same checks, the same outcome, a failure of one its own). The engine
   * uses it for a run of consecutive removal steps of this kind.
   */
  destroyMany?(ctx: Ctx, rs: R[]): Promise<Array<PromiseSettledResult<Destroyed>>>;
  /**
   * An `intended` record found after an interrupted run: resolves to the record to keep (status
   * `done`) when what it stands for exists, else to undefined (anything half-made is removed).
   */
  reconcile(ctx: Ctx, r: R): Promise<R | undefined>;
  /** The entry that makes `r` again (the undo of its removal); undefined when it cannot be made from the record and the host file. */
  remake(ctx: Ctx, r: R): E | undefined;
  /** The words of a removal step after the verb: `sysctl KEY back to OLD`, `link br0`. */
  removalText(r: R): string;
  /**
   * Kinds whose objects may exist already, not made by vmhost, and be adopted (the host file's
   * `adopt`): `intent` is the record written ahead (marked adopted, with what down puts back),
   * `make` sets the object up as `e` wants and resolves to the record (done). An adopted record's
   * destroy never deletes: it puts back what was changed.
   */
  adopt?: {
    intent(ctx: Ctx, e: E): Promise<R>;
    make(ctx: Ctx, e: E, intent: R): Promise<R>;
  };
}

/** Whether a record stands for an adopted object (not made by vmhost: never deleted). */
export function isAdopted(r: StateRecord): boolean {
  return 'adopted' in r && r.adopted !== undefined;
}

/** The action of a step that makes `live` (missing or differing) match, in the kind's style. */
export function actionFor(style: KindStyle, live: Exclude<Live, 'ok'>): StepAction {
  if (style === 'setting') return 'set';
  if (style === 'process') return live === 'missing' ? 'start' : 'restart';
  return live === 'missing' ? 'create' : 'update';
}

/** The action of a step that removes an entry, in the kind's style. */
export function removalFor(style: KindStyle): StepAction {
  return style === 'setting' ? 'set' : style === 'process' ? 'stop' : 'delete';
}

/** Whether `err` carries one of `codes` (errno names: a thing already gone). */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && codes.includes(err.code);
}

/** JSON of `v` with the keys of every object sorted (so equal options compare equal in any key order). */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

/** Whether the options of a recorded entry are those wanted now (a service's or VM's definition). */
export function sameOptions(recorded: unknown, wanted: unknown): boolean {
  return stableJson(recorded) === stableJson(wanted);
}

/** The record `r` as done. */
export function done<R extends StateRecord>(r: R): R {
  return { ...r, status: 'done' };
}

/** An update that changes nothing in the record and has nothing to undo. */
export const NOTHING_TO_UNDO = async (): Promise<void> => undefined;

/** The first fields of a record of `e`, status intended. */
export function intended<E extends Entry>(e: E): { kind: E['kind']; id: string; status: 'intended' } {
  return { kind: e.kind, id: e.id, status: 'intended' };
}

/**
 * Runs `fn` on each of `items`, at most `limit` at a time; the outcome of each, in order (one
 * failing does not stop the others).
 */
export async function settledPool<T, U>(items: readonly T[], limit: number, fn: (item: T) => Promise<U>): Promise<Array<PromiseSettledResult<U>>> {
  const out: Array<PromiseSettledResult<U>> = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i]!) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
