/**
 * One step of apply or down, written ahead: the record of what a step will make is written
 * (status `intended`, with the identity it will have) before the step touches the system, and
 * confirmed (`done`) after; a removal drops the record after the thing is gone. So the state file
 * lists everything the system may hold: a crash at any point leaves at most an `intended` record
 * of something that may or may not exist, which the next run reconciles (reconcile.ts).
 *
 * Each write is one line appended to the state file's journal (journal.ts), so a step costs the
 * size of its record, not the size of the host.
 *
 * A step whose record cannot be written (ENOSPC, EROFS) fails: nothing of it stays. When the
 * intent cannot be written, the step does not touch the system; when the confirmation cannot be
 * written, what the step made is removed again. The caller then undoes the earlier steps; writes
 * of the state file during an undo are best effort (a record that outlives what it stands for is
 * harmless: the next run finds the thing gone).
 *
 * Consecutive removals of a kind that removes many at once (links: one link group deleted with
 * one request) run as one batch ({@link runRemovals}); each is still its own step, recorded,
 * reported and undone on its own.
 *
 * Every step calls `options.checkpoint` after each write and change, for fault injection.
 * @module
 */
import { VmhostError } from '@vmhost/net';
import type { Step } from '../types.js';
import type { Ctx } from './context.js';
import type { Entry } from './entries.js';
import { destroyMany, forEntry, forRecord, type Destroyed, type RecordOps, type Updated } from './kinds/index.js';
import type { StateRecord } from './records.js';
import type { Journal } from './state.js';

/** A step of a plan with what carrying it out needs. */
export interface PlannedStep extends Step {
  /** `create` (missing), `update` (differs), `remove` (recorded, no longer wanted), `adopt` (exists unmarked, the host file adopts it). */
  op: 'create' | 'update' | 'remove' | 'adopt';
  /** The desired entry (create, update). */
  entry: Entry | undefined;
  /** The state file's record of the same id. */
  recorded: StateRecord | undefined;
}

/** Where a step runs: the context, the record it updates (through its journal), which command, its index. */
export interface StepRun {
  ctx: Ctx;
  journal: Journal;
  command: 'apply' | 'down';
  index: number;
  /** Called once the step's change is recorded, with its undo. */
  onDone(undo: () => Promise<void>): void;
}

/** The public part of a planned step; `states`: with its before and after (a plan's steps). */
export function publicStep(s: Step, states = false): Step {
  const out: Step = { id: s.id, action: s.action, description: s.description };
  if (states) {
    if (s.before !== undefined) out.before = s.before;
    if (s.after !== undefined) out.after = s.after;
  }
  return out;
}

async function point(run: StepRun, phase: 'intended' | 'changed' | 'recorded', step: Step): Promise<void> {
  await run.ctx.options.checkpoint?.({ command: run.command, phase, step, index: run.index });
}

/** Tells the notice that the record could not be updated (during an undo: a record outliving its thing is harmless). */
function couldNotRecord(ctx: Ctx, err: unknown): void {
  ctx.notice(`could not update the state file (${err instanceof Error ? err.message : String(err)}): it may list things that are gone, which the next run finds and drops`);
}

/** Records `r` (at `at`) during an undo: a failure is told, not thrown. */
function putBestEffort(ctx: Ctx, j: Journal, r: StateRecord, at?: number): void {
  try {
    j.put(r, at);
  } catch (err) {
    couldNotRecord(ctx, err);
  }
}

/** Puts the record the state had before the step back (or drops the step's own), best effort. */
function restore(ctx: Ctx, j: Journal, id: string, recorded: StateRecord | undefined): void {
  try {
    if (recorded) j.put(recorded);
    else j.drop(id);
  } catch (err) {
    couldNotRecord(ctx, err);
  }
}

/**
 * After a step (or an undo) of a kind that does not keep the run's live view (kind.ts
 * `keepsLive`), the view is forgotten: it may have changed what the view holds.
 */
function afterChange(ctx: Ctx, keepsLive: boolean): void {
  if (!keepsLive) ctx.live.forget();
}

/** Removes what `made` stands for again, telling (not throwing) when it cannot. */
async function unmake(ctx: Ctx, made: StateRecord): Promise<void> {
  const ops = forRecord(made);
  try {
    const d = await ops.destroy(ctx);
    if (d.foreign) ctx.notice(d.foreign);
  } finally {
    afterChange(ctx, ops.keepsLive);
  }
}

/** Makes `entry` (or, `adopt`ing, takes over the object that exists), written ahead. */
async function createStep(run: StepRun, s: PlannedStep, step: Step, entry: Entry, adopt = false): Promise<void> {
  const { ctx, journal: j } = run;
  const ops = forEntry(entry);
  const intent = adopt ? await ops.adoptIntent(ctx) : await ops.intent(ctx);
  j.put(intent); // throws when it cannot be recorded: nothing is touched
  // an adoption changes the object without telling the run's view (kinds/*.ts adopt)
  const keepsLive = ops.keepsLive && !adopt;
  await point(run, 'intended', step);
  let made: StateRecord;
  try {
    made = adopt ? await ops.adopt(ctx, intent) : await ops.create(ctx, intent);
  } catch (err) {
    afterChange(ctx, keepsLive);
    restore(ctx, j, s.id, s.recorded);
    throw err;
  }
  afterChange(ctx, keepsLive);
  try {
    await point(run, 'changed', step);
    j.put(made);
  } catch (err) {
    // not recorded: the system must not keep it
    await unmake(ctx, made).catch((e: unknown) => ctx.notice(`could not remove ${s.id} again: ${e instanceof Error ? e.message : String(e)}`));
    restore(ctx, j, s.id, s.recorded);
    throw err;
  }
  run.onDone(async () => {
    await unmake(ctx, made);
    restore(ctx, j, s.id, s.recorded);
  });
}

async function updateStep(run: StepRun, s: PlannedStep, step: Step, entry: Entry): Promise<void> {
  const { ctx, journal: j } = run;
  const ops = forEntry(entry);
  let u: Updated<StateRecord>;
  try {
    u = await ops.update(ctx, s.recorded);
  } finally {
    afterChange(ctx, ops.keepsLive);
  }
  const undo = async (): Promise<void> => {
    try {
      await u.undo();
    } finally {
      afterChange(ctx, ops.keepsLive);
    }
  };
  try {
    await point(run, 'changed', step);
    if (u.record) j.put(u.record);
  } catch (err) {
    await undo().catch((e: unknown) => ctx.notice(`could not undo the update of ${s.id}: ${e instanceof Error ? e.message : String(e)}`));
    restore(ctx, j, s.id, s.recorded);
    throw err;
  }
  run.onDone(async () => {
    await undo();
    restore(ctx, j, s.id, s.recorded);
  });
}

/**
 * The second half of a removal: what `destroy` of `r` found (`d`) is told, the record dropped,
 * and the undo (apply) registered: it makes the thing again when the record and the host file
 * hold what it takes.
 */
async function recordRemoval(run: StepRun, s: Step, r: StateRecord, ops: RecordOps, d: Destroyed): Promise<void> {
  const { ctx, journal: j } = run;
  if (d.foreign) ctx.notice(d.foreign);
  await point(run, 'changed', s);
  const at = j.drop(r.id); // throws when it cannot be recorded: what it names is gone, a record too many is harmless
  run.onDone(async () => {
    if (!d.removed) {
      putBestEffort(ctx, j, r, at);
      return;
    }
    const e = ops.remake(ctx);
    if (!e) {
      throw new VmhostError('EHOST_NO_UNDO', `${ops.removalText()} cannot be made again: the state file holds no definition of it and the host file no longer has it`);
    }
    const eo = forEntry(e);
    const intent = await eo.intent(ctx);
    putBestEffort(ctx, j, intent, at);
    let made: StateRecord;
    try {
      made = await eo.create(ctx, intent);
    } finally {
      afterChange(ctx, eo.keepsLive);
    }
    putBestEffort(ctx, j, made);
  });
}

/** Removes the recorded `r`; with an undo that makes it again (apply) when the record and the host file hold what it takes. */
async function removeStep(run: StepRun, s: Step, r: StateRecord): Promise<void> {
  const ops = forRecord(r);
  let d: Destroyed;
  try {
    d = await ops.destroy(run.ctx);
  } finally {
    afterChange(run.ctx, ops.keepsLive);
  }
  await recordRemoval(run, s, r, ops, d);
}

/** Carries out step `s` of `run` (see the module). */
export async function runStep(run: StepRun, s: PlannedStep): Promise<void> {
  const step = publicStep(s);
  if (s.op === 'remove') {
    if (!s.recorded) throw new VmhostError('EHOST_INTERNAL', `removal step ${s.id} without a record`);
    await removeStep(run, step, s.recorded);
  } else {
    if (!s.entry) throw new VmhostError('EHOST_INTERNAL', `step ${s.id} without an entry`);
    if (s.op === 'create' || s.op === 'adopt') await createStep(run, s, step, s.entry, s.op === 'adopt');
    else await updateStep(run, s, step, s.entry);
  }
  await point(run, 'recorded', step);
}

/** Whether steps `a` and `b` can be carried out in one batch ({@link runRemovals}): removals of one kind that removes many at once. */
export function batchable(a: PlannedStep, b: PlannedStep): boolean {
  return a.op === 'remove' && b.op === 'remove' && a.recorded !== undefined && b.recorded?.kind === a.recorded.kind && forRecord(a.recorded).batches;
}

/**
 * Carries out the removal steps `ss` (consecutive, of one kind that removes many at once: see
 * {@link batchable}), `runs[k]` the run of `ss[k]`: the things of all are removed in one batch
 * (kind.ts `destroyMany`), then each step is finished in order as {@link runStep} finishes a
 * removal (its `changed` point, its record dropped, its undo, its `recorded` point). A step's
 * `changed` point thus comes after the whole batch changed the system: a run killed there
 * leaves records of things that are gone, which the next run finds gone and drops. Resolves to
 * the outcome of each step, in order: a step's failure is its own.
 */
export async function runRemovals(runs: StepRun[], ss: PlannedStep[]): Promise<Array<PromiseSettledResult<void>>> {
  const ctx = runs[0]!.ctx;
  const records = ss.map((s) => {
    if (!s.recorded || s.op !== 'remove') throw new VmhostError('EHOST_INTERNAL', `step ${s.id} in a batch of removals`);
    return s.recorded;
  });
  const ops = records.map((r) => forRecord(r));
  let ds: Array<PromiseSettledResult<Destroyed>>;
  try {
    ds = await destroyMany(ctx, records);
  } finally {
    afterChange(ctx, ops.every((o) => o.keepsLive));
  }
  const out: Array<PromiseSettledResult<void>> = [];
  for (const [k, d] of ds.entries()) {
    if (d.status === 'rejected') {
      out.push(d);
      continue;
    }
    const step = publicStep(ss[k]!);
    try {
      await recordRemoval(runs[k]!, step, records[k]!, ops[k]!, d.value);
      await point(runs[k]!, 'recorded', step);
      out.push({ status: 'fulfilled', value: undefined });
    } catch (reason) {
      out.push({ status: 'rejected', reason });
    }
  }
  return out;
}
