/**
 * The engine's run: {@link plan}, {@link apply} and {@link down} of a resolved host file.
 *
 * `plan` compares the desired entries (desired.ts) with the live host (each kind's `inspect`) and
 * with the state file (what an earlier apply made). `apply` carries the steps out in order,
 * writes the state file after every step, and on a failure undoes the steps already done, in
 * reverse. `down` destroys exactly the entries in the state file, in reverse, and puts the
 * sysctls it changed back. What existed before apply never enters the state file and is never
 * touched by `down`.
 * @module
 */
import { rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostApplyError, HostPreconditionError } from '../errors.js';
import type { HostOptions, Plan, ProgressEvent, Report, ResolvedHost, Step } from '../types.js';
import { desiredOptions, openCtx, type Ctx } from './context.js';
import { desiredState } from './desired.js';
import type { Entry } from './entries.js';
import { applier } from './kinds/index.js';
import { lock, readState, writeState, type StateFile } from './state.js';

/** A planned step with what carrying it out needs. */
interface PlannedStep extends Step {
  entry: Entry;
  recorded: Entry | undefined;
  /** The entry is in the state file but no longer wanted. */
  removal: boolean;
}

async function preconditions(ctx: Ctx): Promise<void> {
  const { host } = ctx;
  if (!(await ctx.h.links.find(host.uplink))) {
    throw new HostPreconditionError('uplink', host.uplink, `no interface ${host.uplink} in ${ctx.netns !== undefined ? `namespace ${JSON.stringify(ctx.netns)}` : 'this namespace'}`);
  }
  host.vms.forEach((vm, i) => {
    for (const [field, file] of [['kernel', vm.kernel], ['initrd', vm.initrd]] as const) {
      if (file !== undefined && !isFile(file)) throw new HostPreconditionError(`vms[${i}].${field}`, file, 'no such file');
    }
    vm.disks.forEach((dk, j) => {
      if (!isFile(dk.file)) throw new HostPreconditionError(`vms[${i}].disk[${j}].file`, dk.file, 'no such file');
    });
  });
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The step that removes the recorded entry `e`; `why` is appended to its description. */
function removalStep(e: Entry, why: string): Step {
  const a = applier(e);
  return { id: e.id, action: a.removal, description: `${a.removal} ${a.removalText()}${why}` };
}

async function planSteps(ctx: Ctx, state: StateFile): Promise<PlannedStep[]> {
  const want = desiredState(ctx.host, desiredOptions(ctx));
  const recordedById = new Map(state.entries.map((e) => [e.id, e]));
  const wantedIds = new Set(want.map((w) => w.entry.id));
  const steps: PlannedStep[] = [];
  // Entries an earlier apply made that the spec no longer wants go first, newest first (a VM
  // stops before its TAP goes).
  for (const e of [...state.entries].reverse()) {
    if (wantedIds.has(e.id)) continue;
    steps.push({ ...removalStep(e, ' (no longer in the host file)'), entry: e, recorded: e, removal: true });
  }
  for (const { entry, describe } of want) {
    const recorded = recordedById.get(entry.id);
    const a = applier(entry);
    const live = await a.inspect(ctx, recorded);
    if (live === 'ok') continue;
    const action = a.action(live);
    steps.push({ id: entry.id, action, description: `${action} ${describe}`, entry, recorded, removal: false });
  }
  return steps;
}

/**
 * What {@link apply} would do, as a list of steps; empty when the host is as `host` says. Reads the
 * live state (links, addresses, routes, proxy neighbours, sysctls, iptables-save, dnsmasq, the
 * proxy, VMs) and the state file; changes nothing.
 * @throws {HostPreconditionError} the uplink or a VM's file is missing.
 */
export async function plan(host: ResolvedHost, options: HostOptions = {}): Promise<Plan> {
  const ctx = await openCtx(host, options);
  try {
    await preconditions(ctx);
    const steps = await planSteps(ctx, readState(ctx.dir, host.name));
    return { steps: steps.map(({ id, action, description }) => ({ id, action, description })) };
  } finally {
    ctx.h.close();
  }
}

function emit(options: HostOptions, ev: ProgressEvent): void {
  try {
    options.onProgress?.(ev);
  } catch {
    /* a progress callback must not break apply */
  }
}

/** Puts `entry` in the state at `index` (replacing), or appends it. */
function record(state: StateFile, index: number, entry: Entry): void {
  if (index >= 0) state.entries[index] = entry;
  else state.entries.push(entry);
}

/** Removes the entry of `id` from the state, if there. */
function forget(state: StateFile, id: string): void {
  const i = state.entries.findIndex((e) => e.id === id);
  if (i >= 0) state.entries.splice(i, 1);
}

/** `entry` with the old value `recorded` kept of a sysctl (the first apply's). */
function keepPrevious(entry: Entry, recorded: Entry | undefined): Entry {
  return entry.kind === 'sysctl' && recorded?.kind === 'sysctl' && recorded.previous !== undefined ? { ...entry, previous: recorded.previous } : entry;
}

/** Carries out one step; returns how to undo it. Updates `state` (and writes it). */
async function runStep(ctx: Ctx, state: StateFile, s: PlannedStep): Promise<() => Promise<void>> {
  const a = applier(s.entry);
  const save = (): void => writeState(ctx.dir, state);
  const index = state.entries.findIndex((e) => e.id === s.id);
  if (s.removal) {
    // removal of an entry the spec no longer wants
    await a.destroy(ctx);
    const [removed] = index >= 0 ? state.entries.splice(index, 1) : [];
    save();
    return async () => {
      const made = await a.create(ctx);
      state.entries.splice(Math.max(0, index), 0, removed ?? made);
      save();
    };
  }
  if (s.action === 'create' || s.action === 'start' || (s.action === 'set' && !s.recorded)) {
    const made = await a.create(ctx);
    record(state, index, keepPrevious(made, s.recorded));
    save();
    return async () => {
      await applier(made).destroy(ctx);
      if (index >= 0 && s.recorded) record(state, state.entries.findIndex((e) => e.id === s.id), s.recorded);
      else forget(state, s.id);
      save();
    };
  }
  // update of an entry that exists
  await a.update(ctx, s.recorded);
  record(state, index, keepPrevious(s.entry, s.recorded));
  save();
  return async () => {
    if (s.recorded) {
      await applier(s.recorded).update(ctx, s.entry);
      record(state, state.entries.findIndex((e) => e.id === s.id), s.recorded);
    } else {
      // it was there before apply but not ours (e.g. a link we only enslaved): nothing to record
      forget(state, s.id);
    }
    save();
  };
}

async function execute(ctx: Ctx, state: StateFile, steps: PlannedStep[]): Promise<Report> {
  const t0 = performance.now();
  const done: Array<{ step: Step; undo: () => Promise<void> }> = [];
  const report: Report = { steps: [], changed: steps.length > 0, ms: 0 };
  for (const [i, s] of steps.entries()) {
    const step: Step = { id: s.id, action: s.action, description: s.description };
    emit(ctx.options, { type: 'step-start', step, index: i, total: steps.length });
    const ts = performance.now();
    try {
      await ctx.options.beforeStep?.(step, i);
      done.push({ step, undo: await runStep(ctx, state, s) });
    } catch (err) {
      emit(ctx.options, { type: 'step-failed', step, index: i, total: steps.length, error: err instanceof Error ? err : new Error(String(err)) });
      const undone: Step[] = [];
      const undoErrors: Array<{ step: Step; error: unknown }> = [];
      for (const u of [...done].reverse()) {
        emit(ctx.options, { type: 'undo-start', step: u.step });
        try {
          await u.undo();
          undone.push(u.step);
          emit(ctx.options, { type: 'undo-done', step: u.step });
        } catch (uerr) {
          undoErrors.push({ step: u.step, error: uerr });
          emit(ctx.options, { type: 'undo-failed', step: u.step, error: uerr instanceof Error ? uerr : new Error(String(uerr)) });
        }
      }
      throw new HostApplyError(step, err, undone, undoErrors);
    }
    const ms = performance.now() - ts;
    report.steps.push({ ...step, ms: Math.round(ms) });
    emit(ctx.options, { type: 'step-done', step, index: i, total: steps.length, ms });
  }
  report.ms = Math.round(performance.now() - t0);
  return report;
}

/**
 * Makes the host as `host` says: carries out {@link plan}'s steps in order, with progress
 * (`options.onProgress`). On a failure the steps already done are undone in reverse and a
 * {@link HostApplyError} names the failing step. Re-applying an unchanged host does nothing.
 * @throws {HostPreconditionError} before anything is changed. {@link HostApplyError}.
 */
export async function apply(host: ResolvedHost, options: HostOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    await preconditions(ctx);
    const unlock = lock(ctx.dir);
    try {
      const state = readState(ctx.dir, host.name);
      return await execute(ctx, state, await planSteps(ctx, state));
    } finally {
      unlock();
    }
  } finally {
    ctx.h.close();
  }
}

/**
 * Removes exactly what apply created, newest first: VMs stopped through the shutdown ladder, the
 * proxy and dnsmasq stopped, the firewall owner's rules removed, proxy neighbours, routes,
 * addresses and links deleted, and the sysctls apply changed put back to their old values. Things
 * that existed before apply are left alone. Idempotent.
 * @throws {HostApplyError} when a removal fails (the rest is still attempted first; the state
 * file keeps what could not be removed).
 */
export async function down(host: ResolvedHost, options: HostOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    const unlock = lock(ctx.dir);
    try {
      const state = readState(ctx.dir, host.name);
      const t0 = performance.now();
      const entries = [...state.entries].reverse();
      const report: Report = { steps: [], changed: entries.length > 0, ms: 0 };
      const failures: Array<{ step: Step; error: unknown }> = [];
      for (const [i, e] of entries.entries()) {
        const step = removalStep(e, '');
        emit(options, { type: 'step-start', step, index: i, total: entries.length });
        const ts = performance.now();
        try {
          await applier(e).destroy(ctx);
          state.entries.splice(state.entries.indexOf(e), 1);
          writeState(ctx.dir, state);
          const ms = performance.now() - ts;
          report.steps.push({ ...step, ms: Math.round(ms) });
          emit(options, { type: 'step-done', step, index: i, total: entries.length, ms });
        } catch (err) {
          failures.push({ step, error: err });
          emit(options, { type: 'step-failed', step, index: i, total: entries.length, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
      const [first, ...rest] = failures;
      if (first) throw new HostApplyError(first.step, first.error, [], rest);
      // The runtime files apply made (dnsmasq's config, pid and lease files, the proxy's, the VMs'
      // run dirs) go too; the state directory itself when nothing else is in it.
      for (const f of ['state.json', 'dnsmasq', 'proxy6', 'vms']) rmSync(join(ctx.dir, f), { recursive: true, force: true });
      report.ms = Math.round(performance.now() - t0);
      return report;
    } finally {
      unlock();
      try {
        rmdirSync(ctx.dir);
      } catch {
        /* not empty (a failed down keeps its state), or gone */
      }
    }
  } finally {
    ctx.h.close();
  }
}
