/**
 * The engine's run: {@link plan}, {@link apply} and {@link down} of a resolved host file.
 *
 * `plan` compares the desired entries (desired.ts) with the live host (each kind's `inspect`) and
 * with the state file (what an earlier apply made). `apply` takes the lock, reconciles what an
 * interrupted run left (reconcile.ts), and carries the steps out in order, each written ahead in
 * the state file (steps.ts); on a failure, or when its `signal` is aborted, it undoes the steps
 * it did, in reverse. `down` removes exactly what the state file records, in reverse, each only
 * when it still carries this host's marks, puts the sysctls it changed back, and ends every
 * process of the state directory (recorded or not: a VM whose start was interrupted too). What
 * existed before apply never enters the state file and is never touched by `down`.
 * @module
 */
import { rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostAbortedError, HostApplyError, HostOwnerError, HostPreconditionError, HostStateError } from '../errors.js';
import { stopDnsmasq } from '../services/dnsmasq.js';
import { stopProxyService } from '../services/proxy6.js';
import type { Conflict, HostOptions, Plan, Report, ResolvedHost, Step } from '../types.js';
import { desiredOptions, emit, openCtx, type Ctx } from './context.js';
import { desiredState } from './desired.js';
import { forEntry, forRecord } from './kinds/index.js';
import { heldByOthersText } from './kinds/sysctl.js';
import { stopAllVms } from './kinds/vm.js';
import { loadForChange, reconcileIntents } from './reconcile.js';
import { checkStateDir, lock } from './state-dir.js';
import { findConflicts } from './owners.js';
import { callerOf, registerOwner, unregisterOwner } from './shared.js';
import { emptyState, isCorrupt, readState, type StateFile } from './state.js';
import { publicStep, runStep, type PlannedStep } from './steps.js';

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

/** Throws HostAbortedError when the run's signal is aborted (before anything was done). */
function checkAborted(ctx: Ctx, command: 'plan' | 'apply' | 'down'): void {
  const signal = ctx.options.signal;
  if (signal?.aborted) throw new HostAbortedError(command, [], [], [], signal.reason);
}

/** The removal step of the record `r`; `why` is appended to its description. */
function removalStep(r: StateFile['entries'][number], why: string): PlannedStep {
  const ops = forRecord(r);
  return { id: r.id, action: ops.removal, description: `${ops.removal} ${ops.removalText()}${why}`, op: 'remove', entry: undefined, recorded: r };
}

/**
 * The steps that make the host as the host file says, and the conflicts that keep apply from
 * taking them (owners.ts): what the host file wants that is another host's, or exists unmarked
 * and is not adopted, gets no step but a conflict; what the host file adopts, an `adopt` step.
 */
async function planSteps(ctx: Ctx, state: StateFile, command: 'plan' | 'apply'): Promise<{ steps: PlannedStep[]; conflicts: Conflict[] }> {
  const want = desiredState(ctx.host, desiredOptions(ctx));
  const recordedById = new Map(state.entries.map((e) => [e.id, e]));
  const wantedIds = new Set(want.map((w) => w.entry.id));
  const { conflicts, adopt } = await findConflicts(ctx, state, want);
  const blocked = new Set(conflicts.map((c) => c.id));
  const steps: PlannedStep[] = [];
  // Entries an earlier apply made that the spec no longer wants go first, newest first (a VM
  // stops before its TAP goes).
  for (const r of [...state.entries].reverse()) {
    if (!wantedIds.has(r.id)) steps.push(removalStep(r, ' (no longer in the host file)'));
  }
  for (const { entry, describe } of want) {
    checkAborted(ctx, command);
    if (blocked.has(entry.id)) continue;
    const recorded = recordedById.get(entry.id);
    if (adopt.has(entry.id)) {
      steps.push({ id: entry.id, action: 'adopt', description: `adopt ${describe}`, op: 'adopt', entry, recorded });
      continue;
    }
    const ops = forEntry(entry);
    const live = await ops.inspect(ctx, recorded);
    if (live === 'ok') continue;
    const action = ops.action(live);
    const op = live === 'missing' || (entry.kind === 'sysctl' && !recorded) ? 'create' : 'update';
    const shared = entry.kind === 'sysctl' ? heldByOthersText(ctx, entry.data.key) : '';
    steps.push({ id: entry.id, action, description: `${action} ${describe}${shared}`, op, entry, recorded });
  }
  return { steps, conflicts };
}

/** The state for plan and status: read only (a missing directory is an empty state). */
export function readStateForView(ctx: Ctx): StateFile {
  const real = checkStateDir(ctx.dir, false);
  if (real === undefined) return emptyState(ctx.host.name);
  ctx.dir = real;
  try {
    return readState(ctx.dir, ctx.host.name);
  } catch (err) {
    if (isCorrupt(err)) throw new HostStateError(err.file, `${err.message.slice(err.file.length + 2)} (vmhost apply, down and recover move it aside and rebuild the record from the live system's owner marks)`, { cause: err });
    throw err;
  }
}

/**
 * What {@link apply} would do, as a list of steps; empty when the host is as `host` says; and the
 * conflicts that would make apply refuse (what the host file wants that is another host's, or
 * exists without being vmhost's and is not adopted), each naming its owner. Reads the live state
 * (links, addresses, routes, proxy neighbours, sysctls, iptables-save, dnsmasq, the proxy, VMs),
 * the state file and the namespace's shared record; changes nothing.
 * @throws {HostPreconditionError} the uplink or a VM's file is missing. {@link HostStateError}
 *   for a state file that cannot be read or an unsafe state directory. {@link HostAbortedError}.
 */
export async function plan(host: ResolvedHost, options: HostOptions = {}): Promise<Plan> {
  const ctx = await openCtx(host, options);
  try {
    checkAborted(ctx, 'plan');
    await preconditions(ctx);
    const { steps, conflicts } = await planSteps(ctx, readStateForView(ctx), 'plan');
    return { steps: steps.map(publicStep), conflicts };
  } finally {
    ctx.h.close();
  }
}

/** Locks the state directory (made safe first) and reads and reconciles its state. */
async function prepare(ctx: Ctx): Promise<{ state: StateFile; unlock: () => void }> {
  ctx.dir = checkStateDir(ctx.dir, true) ?? ctx.dir;
  const unlock = lock(ctx.dir);
  try {
    const state = await loadForChange(ctx);
    await reconcileIntents(ctx, state);
    return { state, unlock };
  } catch (err) {
    unlock();
    throw err;
  }
}

/** Undoes `done` in reverse, with progress; what was undone and what failed. */
async function undoAll(ctx: Ctx, done: Array<{ step: Step; undo: () => Promise<void> }>): Promise<{ undone: Step[]; undoErrors: Array<{ step: Step; error: unknown }> }> {
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
  return { undone, undoErrors };
}

async function execute(ctx: Ctx, state: StateFile, steps: PlannedStep[]): Promise<Report> {
  const t0 = performance.now();
  const done: Array<{ step: Step; undo: () => Promise<void> }> = [];
  const report: Report = { steps: [], changed: steps.length > 0, ms: 0 };
  const signal = ctx.options.signal;
  const aborted = async (): Promise<never> => {
    const { undone, undoErrors } = await undoAll(ctx, done);
    throw new HostAbortedError('apply', done.map((d) => d.step), undone, undoErrors, signal?.reason);
  };
  for (const [i, s] of steps.entries()) {
    if (signal?.aborted) await aborted();
    const step = publicStep(s);
    emit(ctx.options, { type: 'step-start', step, index: i, total: steps.length });
    const ts = performance.now();
    try {
      await ctx.options.beforeStep?.(step, i);
      await runStep({ ctx, state, command: 'apply', index: i, onDone: (undo) => done.push({ step, undo }) }, s);
    } catch (err) {
      emit(ctx.options, { type: 'step-failed', step, index: i, total: steps.length, error: err instanceof Error ? err : new Error(String(err)) });
      const { undone, undoErrors } = await undoAll(ctx, done);
      throw new HostApplyError(step, err, undone, undoErrors);
    }
    const ms = performance.now() - ts;
    report.steps.push({ ...step, ms: Math.round(ms) });
    emit(ctx.options, { type: 'step-done', step, index: i, total: steps.length, ms });
  }
  if (signal?.aborted) await aborted();
  report.ms = Math.round(performance.now() - t0);
  return report;
}

/**
 * Makes the host as `host` says: carries out {@link plan}'s steps in order, each written ahead in
 * the state file, with progress (`options.onProgress`). On a failure the steps already done are
 * undone in reverse and a {@link HostApplyError} names the failing step; when `options.signal` is
 * aborted, the step under way is finished, the steps done are undone and a
 * {@link HostAbortedError} is thrown. Re-applying an unchanged host does nothing.
 * Refuses, before it changes anything, when something the host file wants belongs to another host
 * or exists without being vmhost's and is not adopted ({@link plan}'s `conflicts`).
 * @throws {HostPreconditionError} before anything is changed. {@link HostOwnerError} before
 *   anything is changed, naming each conflict's owner. {@link HostApplyError},
 *   {@link HostAbortedError}, {@link HostStateError} (unsafe state directory), `HostBusyError`.
 */
export async function apply(host: ResolvedHost, options: HostOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    checkAborted(ctx, 'apply');
    await preconditions(ctx);
    const { state, unlock } = await prepare(ctx);
    try {
      const { steps, conflicts } = await planSteps(ctx, state, 'apply');
      if (conflicts.length > 0) throw new HostOwnerError(conflicts);
      // counted among the namespace's hosts before anything is made (others find its records so)
      if (steps.length > 0) await registerOwner(callerOf(ctx));
      return await execute(ctx, state, steps);
    } finally {
      unlock();
    }
  } finally {
    ctx.h.close();
  }
}

/** Ends the processes of the state directory that no record named (a VM started by `vm start`, or whose start was interrupted). */
async function endStrays(ctx: Ctx): Promise<void> {
  for (const name of await stopAllVms(ctx.dir)) ctx.notice(`VM ${name} was running from ${ctx.dir} without a record: stopped`);
  if (await stopDnsmasq(join(ctx.dir, 'dnsmasq'))) ctx.notice('dnsmasq was running without a record: stopped');
  if (await stopProxyService(join(ctx.dir, 'proxy6'))) ctx.notice('the IPv6 proxy was running without a record: stopped');
}

/**
 * Removes exactly what apply created, newest first: VMs stopped through the shutdown ladder, the
 * proxy and dnsmasq stopped, the firewall owner's rules removed, proxy neighbours, routes,
 * addresses and links deleted (each only when it carries this host's marks; a recorded one
 * without them is left alone with a notice), and the sysctls apply changed put back to their old
 * values. Then every process still running from the state directory is ended. Things that
 * existed before apply are left alone. Idempotent. When `options.signal` is aborted, the step
 * under way is finished and down stops ({@link HostAbortedError}); the state file records what
 * is left.
 * @throws {HostApplyError} when a removal fails (the rest is still attempted first; the state
 * file keeps what could not be removed).
 */
export async function down(host: ResolvedHost, options: HostOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    checkAborted(ctx, 'down');
    if (checkStateDir(ctx.dir, false) === undefined) return { steps: [], changed: false, ms: 0 };
    const { state, unlock } = await prepare(ctx);
    try {
      const t0 = performance.now();
      const records = [...state.entries].reverse();
      const report: Report = { steps: [], changed: records.length > 0, ms: 0 };
      const failures: Array<{ step: Step; error: unknown }> = [];
      for (const [i, r] of records.entries()) {
        if (options.signal?.aborted) throw new HostAbortedError('down', report.steps.map(publicStep), [], [], options.signal.reason);
        const s = removalStep(r, '');
        const step = publicStep(s);
        emit(options, { type: 'step-start', step, index: i, total: records.length });
        const ts = performance.now();
        try {
          await runStep({ ctx, state, command: 'down', index: i, onDone: () => undefined }, s);
          const ms = performance.now() - ts;
          report.steps.push({ ...step, ms: Math.round(ms) });
          emit(options, { type: 'step-done', step, index: i, total: records.length, ms });
        } catch (err) {
          failures.push({ step, error: err });
          emit(options, { type: 'step-failed', step, index: i, total: records.length, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
      const [first, ...rest] = failures;
      if (first) throw new HostApplyError(first.step, first.error, [], rest);
      await endStrays(ctx);
      // The runtime files apply made (dnsmasq's config, pid and lease files, the proxy's, the
      // VMs' run dirs) go too.
      for (const f of ['state.json', 'dnsmasq', 'proxy6', 'vms']) rmSync(join(ctx.dir, f), { recursive: true, force: true });
      await unregisterOwner(callerOf(ctx));
      report.ms = Math.round(performance.now() - t0);
      return report;
    } finally {
      unlock();
      removeDirIfEmpty(ctx.dir);
    }
  } finally {
    ctx.h.close();
  }
}

function removeDirIfEmpty(dir: string): void {
  try {
    // rmdir fails on a directory that is not empty (a failed down keeps its state)
    rmdirSync(dir);
  } catch {
    /* not empty, or gone */
  }
}
