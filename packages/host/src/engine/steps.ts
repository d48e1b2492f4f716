/**
 * One step of apply or down, written ahead: the record of what a step will make is written
 * (status `intended`, with the identity it will have) before the step touches the system, and
 * confirmed (`done`) after; a removal drops the record after the thing is gone. So the state file
 * lists everything the system may hold: a crash at any point leaves at most an `intended` record
 * of something that may or may not exist, which the next run reconciles (reconcile.ts).
 *
 * A step whose record cannot be written (ENOSPC, EROFS) fails: nothing of it stays. When the
 * intent cannot be written, the step does not touch the system; when the confirmation cannot be
 * written, what the step made is removed again. The caller then undoes the earlier steps; writes
 * of the state file during an undo are best effort (a record that outlives what it stands for is
 * harmless: the next run finds the thing gone).
 *
 * Every step calls `options.checkpoint` after each write and change, for fault injection.
 * @module
 */
import { VmhostError } from '@vmhost/net';
import type { Step } from '../types.js';
import type { Ctx } from './context.js';
import type { Entry } from './entries.js';
import { forEntry, forRecord } from './kinds/index.js';
import type { StateRecord } from './records.js';
import { dropRecord, putRecord, stateFile, writeState, type StateFile } from './state.js';

/** A step of a plan with what carrying it out needs. */
export interface PlannedStep extends Step {
  /** `create` (missing), `update` (differs), `remove` (recorded, no longer wanted), `adopt` (exists unmarked, the host file adopts it). */
  op: 'create' | 'update' | 'remove' | 'adopt';
  /** The desired entry (create, update). */
  entry: Entry | undefined;
  /** The state file's record of the same id. */
  recorded: StateRecord | undefined;
}

/** Where a step runs: the context, the state it updates, which command, its index. */
export interface StepRun {
  ctx: Ctx;
  state: StateFile;
  command: 'apply' | 'down';
  index: number;
  /** Called once the step's change is recorded, with its undo. */
  onDone(undo: () => Promise<void>): void;
}

/** The public part of a planned step. */
export function publicStep(s: Step): Step {
  return { id: s.id, action: s.action, description: s.description };
}

async function point(run: StepRun, phase: 'intended' | 'changed' | 'recorded', step: Step): Promise<void> {
  await run.ctx.options.checkpoint?.({ command: run.command, phase, step, index: run.index });
}

/** Writes the state; a failure fails the step. */
function save(run: StepRun): void {
  writeState(run.ctx.dir, run.state);
}

/** Writes the state during an undo: a failure is told, not thrown (the record then lists more than there is, which is harmless). */
export function saveBestEffort(ctx: Ctx, state: StateFile): void {
  try {
    writeState(ctx.dir, state);
  } catch (err) {
    ctx.notice(`could not update ${stateFile(ctx.dir)} (${err instanceof Error ? err.message : String(err)}): it may list things that are gone, which the next run finds and drops`);
  }
}

/** Puts the record the state had before the step back (or drops the step's own). */
function restore(state: StateFile, id: string, recorded: StateRecord | undefined): void {
  if (recorded) putRecord(state, recorded);
  else dropRecord(state, id);
}

/** Removes what `made` stands for again, telling (not throwing) when it cannot. */
async function unmake(ctx: Ctx, made: StateRecord): Promise<void> {
  const d = await forRecord(made).destroy(ctx);
  if (d.foreign) ctx.notice(d.foreign);
}

/** Makes `entry` (or, `adopt`ing, takes over the object that exists), written ahead. */
async function createStep(run: StepRun, s: PlannedStep, step: Step, entry: Entry, adopt = false): Promise<void> {
  const { ctx, state } = run;
  const ops = forEntry(entry);
  const intent = adopt ? await ops.adoptIntent(ctx) : await ops.intent(ctx);
  putRecord(state, intent);
  try {
    save(run);
  } catch (err) {
    restore(state, s.id, s.recorded);
    throw err;
  }
  await point(run, 'intended', step);
  let made: StateRecord;
  try {
    made = adopt ? await ops.adopt(ctx, intent) : await ops.create(ctx, intent);
  } catch (err) {
    restore(state, s.id, s.recorded);
    saveBestEffort(ctx, state);
    throw err;
  }
  try {
    await point(run, 'changed', step);
    putRecord(state, made);
    save(run);
  } catch (err) {
    // not recorded: the system must not keep it
    await unmake(ctx, made).catch((e: unknown) => ctx.notice(`could not remove ${s.id} again: ${e instanceof Error ? e.message : String(e)}`));
    restore(state, s.id, s.recorded);
    saveBestEffort(ctx, state);
    throw err;
  }
  run.onDone(async () => {
    await unmake(ctx, made);
    restore(state, s.id, s.recorded);
    saveBestEffort(ctx, state);
  });
}

async function updateStep(run: StepRun, s: PlannedStep, step: Step, entry: Entry): Promise<void> {
  const { ctx, state } = run;
  const u = await forEntry(entry).update(ctx, s.recorded);
  try {
    await point(run, 'changed', step);
    if (u.record) putRecord(state, u.record);
    save(run);
  } catch (err) {
    await u.undo().catch((e: unknown) => ctx.notice(`could not undo the update of ${s.id}: ${e instanceof Error ? e.message : String(e)}`));
    restore(state, s.id, s.recorded);
    saveBestEffort(ctx, state);
    throw err;
  }
  run.onDone(async () => {
    await u.undo();
    restore(state, s.id, s.recorded);
    saveBestEffort(ctx, state);
  });
}

/** Removes the recorded `r`; with an undo that makes it again (apply) when the record and the host file hold what it takes. */
async function removeStep(run: StepRun, s: Step, r: StateRecord): Promise<void> {
  const { ctx, state } = run;
  const ops = forRecord(r);
  const d = await ops.destroy(ctx);
  if (d.foreign) ctx.notice(d.foreign);
  await point(run, 'changed', s);
  const at = dropRecord(state, r.id);
  try {
    save(run);
  } catch (err) {
    putRecord(state, r, at); // what it names is gone: a record too many is harmless
    throw err;
  }
  run.onDone(async () => {
    if (!d.removed) {
      putRecord(state, r, at);
      saveBestEffort(ctx, state);
      return;
    }
    const e = ops.remake(ctx);
    if (!e) {
      throw new VmhostError('EHOST_NO_UNDO', `${ops.removalText()} cannot be made again: the state file holds no definition of it and the host file no longer has it`);
    }
    const eo = forEntry(e);
    const intent = await eo.intent(ctx);
    putRecord(state, intent, at);
    saveBestEffort(ctx, state);
    putRecord(state, await eo.create(ctx, intent));
    saveBestEffort(ctx, state);
  });
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
