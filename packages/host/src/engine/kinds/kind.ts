/**
 * What one kind of entry knows: how to inspect it in the live host (ok, missing, differs), create
 * it, bring a differing one in line, and destroy it; and how its steps are named.
 * @module
 */
import type { StepAction } from '../../types.js';
import type { Ctx } from '../context.js';
import type { Entry } from '../entries.js';

/** How the live host compares with an entry. */
export type Live = 'ok' | 'missing' | 'differs';

/**
 * The verbs of a kind's steps: `object` (links, addresses, ...: create/update/delete), `setting`
 * (sysctls: set), `process` (VMs and services: start/restart/stop).
 */
export type KindStyle = 'object' | 'setting' | 'process';

/** The operations of the kind of entry `E`. */
export interface KindOps<E extends Entry> {
  readonly style: KindStyle;
  /** `recorded` is the state file's entry of the same id, if any. */
  inspect(ctx: Ctx, e: E, recorded: E | undefined): Promise<Live>;
  /** Creates; resolves to the entry to record (a sysctl's with its previous value). */
  create(ctx: Ctx, e: E): Promise<E>;
  /** Brings a differing entry in line. Without it: the recorded one is destroyed and `e` created. */
  update?(ctx: Ctx, e: E, recorded: E | undefined): Promise<void>;
  destroy(ctx: Ctx, e: E): Promise<void>;
  /** The words of a removal step (`sysctl KEY back to OLD`); default the id (`link br0`). */
  removalText?(e: E): string;
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
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

/** Whether the options of a recorded entry are those wanted now (a service's or VM's definition). */
export function sameOptions(recorded: unknown, wanted: unknown): boolean {
  return stableJson(recorded) === stableJson(wanted);
}
