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
 * existed before apply never enters the state file and is never touched by `down`. The VMs'
 * disk chains live in the data directory and outlive `down` (unless `deleteDisks`).
 * @module
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostAbortedError, HostApplyError, HostOwnerError, HostPreconditionError, HostStateError } from '../errors.js';
import { stopDnsmasq } from '../services/dnsmasq.js';
import { stopProxyService } from '../services/proxy6.js';
import type { Conflict, DownOptions, HostOptions, Plan, Report, ResolvedHost, Step, StepState } from '../types.js';
import { desiredOptions, emit, openCtx, removeIfEmptyUnderNamespace, type Ctx } from './context.js';
import { desiredState } from './desired.js';
import type { Desired } from './entries.js';
import type { Known } from './records.js';
import { forEntry, forRecord } from './kinds/index.js';
import { heldByOthersText } from './kinds/sysctl.js';
import { stopAllVms } from './kinds/vm.js';
import { deleteDiskChains, finishDiskIntents } from './disks/lifecycle.js';
import { checkDiskSources } from './disks/session.js';
import { loadForChange, reconcileIntents } from './reconcile.js';
import { readSeeds } from './seeds.js';
import { checkStateDir, lock } from './state-dir.js';
import { findConflicts } from './owners.js';
import { callerOf, registerOwner, unregisterOwner } from './shared.js';
import { emptyState, isCorrupt, Journal, readState, writeState, type StateFile } from './state.js';
import { checkSteps } from './saved-plan.js';
import { batchable, publicStep, runRemovals, runStep, type PlannedStep, type StepRun } from './steps.js';

async function preconditions(ctx: Ctx): Promise<void> {
  const { host } = ctx;
  if (!(await ctx.live.link(host.uplink))) {
    throw new HostPreconditionError('uplink', host.uplink, `no interface ${host.uplink} in ${ctx.netns !== undefined ? `namespace ${JSON.stringify(ctx.netns)}` : 'this namespace'}`);
  }
  host.vms.forEach((vm, i) => {
    for (const [field, file] of [['kernel', vm.kernel], ['initrd', vm.initrd]] as const) {
      if (file !== undefined && !isFile(file)) throw new HostPreconditionError(`vms[${i}].${field}`, file, 'no such file');
    }
    vm.disks.forEach((dk, j) => {
      if (!isFile(dk.file)) throw new HostPreconditionError(`vms[${i}].disk[${j}].${dk.base ? 'base' : 'file'}`, dk.file, 'no such file');
    });
  });
  await checkDiskSources(host);
  // the user-data files, read and checked; the seeds rendered
  readSeeds(ctx);
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

/** The removal step of the record `r`; `why` is appended to its description; `states`: with its before and after. */
function removalStep(r: StateFile['entries'][number], why: string, states = false): PlannedStep {
  const ops = forRecord(r);
  const step: PlannedStep = { id: r.id, action: ops.removal, description: `${ops.removal} ${ops.removalText()}${why}`, op: 'remove', entry: undefined, recorded: r };
  return states ? { ...step, before: dataOf(r), after: null } : step;
}

/** An entry's or record's data as a step's before/after (JSON data, copied). */
function dataOf(x: { data: object }): StepState {
  return JSON.parse(JSON.stringify(x.data)) as StepState;
}

/** What the desired entries `want` hold that records hold too (records.ts `Known`: not validated again when equal). */
export function knownOf(want: readonly Desired[]): Known {
  const known: Known = {};
  for (const { entry: e } of want) {
    if (e.kind === 'firewall') known.firewall = e.data.model;
    else if (e.kind === 'dnsmasq') {
      const { dir: _dir, netns: _netns, ...rest } = e.data.options;
      known.dnsmasq = rest;
    } else if (e.kind === 'proxy6') {
      const { dir: _dir, ...rest } = e.data.options;
      known.proxy6 = rest;
    }
  }
  return known;
}

/** The entries the host file wants (desired.ts). */
const wanted = (ctx: Ctx): Desired[] => desiredState(ctx.host, desiredOptions(ctx));

/** Which entries a run looks at, by id ({@link applyEntries}); undefined: all. */
type Selection = ((id: string) => boolean) | undefined;

/**
 * The steps that make the host as the host file says (`want`: its entries), and the conflicts that
 * keep apply from taking them (owners.ts): what the host file wants that is another host's, or
 * exists unmarked and is not adopted, gets no step but a conflict; what the host file adopts, an
 * `adopt` step. With `select`, only the selected entries are looked at (and only their conflicts
 * reported). `states`: each step also gets its before and after (a plan shown or compared with a
 * saved one; the live reads and copies they take are left out of every other run).
 */
async function planSteps(ctx: Ctx, state: StateFile, want: readonly Desired[], command: 'plan' | 'apply', states: boolean, select?: Selection): Promise<{ steps: PlannedStep[]; conflicts: Conflict[] }> {
  const recordedById = new Map(state.entries.map((e) => [e.id, e]));
  const wantedIds = new Set(want.map((w) => w.entry.id));
  const found = await findConflicts(ctx, state, select === undefined ? want : want.filter((w) => select(w.entry.id)));
  const { adopt } = found;
  const conflicts = found.conflicts;
  const blocked = new Set(conflicts.map((c) => c.id));
  const steps: PlannedStep[] = [];
  // Entries an earlier apply made that the spec no longer wants go first, newest first (a VM
  // stops before its TAP goes).
  for (const r of [...state.entries].reverse()) {
    if (!wantedIds.has(r.id) && (select === undefined || select(r.id))) steps.push(removalStep(r, ' (no longer in the host file)', states));
  }
  for (const { entry, describe } of want) {
    if (select !== undefined && !select(entry.id)) continue;
    checkAborted(ctx, command);
    if (blocked.has(entry.id)) continue;
    const recorded = recordedById.get(entry.id);
    if (adopt.has(entry.id)) {
      const step: PlannedStep = { id: entry.id, action: 'adopt', description: `adopt ${('adopt' in entry && entry.adopt?.describe) || describe}`, op: 'adopt', entry, recorded };
      steps.push(states ? { ...step, before: null, after: dataOf(entry) } : step);
      continue;
    }
    const ops = forEntry(entry);
    const live = await ops.inspect(ctx, recorded);
    if (live === 'ok') continue;
    const action = ops.action(live);
    const op = live === 'missing' || (entry.kind === 'sysctl' && !recorded) ? 'create' : 'update';
    const shared = entry.kind === 'sysctl' ? heldByOthersText(ctx, entry.data.key) : '';
    const step: PlannedStep = { id: entry.id, action, description: `${action} ${describe}${shared}`, op, entry, recorded };
    if (states) {
      step.before = live === 'missing' ? null : ((await ops.observe(ctx)) ?? (recorded ? dataOf(recorded) : null));
      step.after = dataOf(entry);
    }
    steps.push(step);
  }
  return { steps, conflicts };
}

/** The state for plan and status: read only (a missing directory is an empty state). `known`: what the run wants ({@link knownOf}). */
export function readStateForView(ctx: Ctx, known: Known = {}): StateFile {
  const real = checkStateDir(ctx.dir, false);
  if (real === undefined) return emptyState(ctx.host.name);
  ctx.dir = real;
  try {
    return readState(ctx.dir, ctx.host.name, known);
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
    // iptables-save and the others run while the entries are computed and the state read
    ctx.live.prefetchFirewall();
    // the entries name the state directory by its real path (VM run directories, dnsmasq's)
    ctx.dir = checkStateDir(ctx.dir, false) ?? ctx.dir;
    const want = wanted(ctx);
    const { steps, conflicts } = await planSteps(ctx, readStateForView(ctx, knownOf(want)), want, 'plan', true);
    return { steps: steps.map((s) => publicStep(s, true)), conflicts };
  } finally {
    ctx.h.close();
  }
}

/**
 * Locks the state directory (made safe first; `ctx.dir` becomes its real path), reads and
 * reconciles its state, and opens its journal. `known`: what the run wants ({@link knownOf}).
 */
async function prepare(ctx: Ctx, known: Known): Promise<{ journal: Journal; unlock: () => void }> {
  ctx.dir = checkStateDir(ctx.dir, true) ?? ctx.dir;
  const unlock = lock(ctx.dir);
  try {
    const { state, base } = await reconcileIntents(ctx, await loadForChange(ctx, known));
    const dir = ctx.dir;
    return { journal: new Journal(dir, state, base, (s) => writeState(dir, s)), unlock };
  } catch (err) {
    unlock();
    throw err;
  }
}

/** Writes the record whole once the run is over (the journal stays when it cannot: it holds every change). */
function compact(ctx: Ctx, journal: Journal): void {
  try {
    journal.compact();
  } catch (err) {
    ctx.notice(`could not write the state file whole (${err instanceof Error ? err.message : String(err)}); its journal ${join(ctx.dir, 'state.log')} holds the record`);
  } finally {
    journal.close();
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

/** One run of steps (apply's or down's): what it does, and what it did. */
interface Exec {
  ctx: Ctx;
  journal: Journal;
  command: 'apply' | 'down';
  steps: PlannedStep[];
  report: Report;
  /** The steps done, with their undos. */
  done: Array<{ step: Step; undo: () => Promise<void> }>;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/**
 * Carries out `x.steps[i]`, or the batch of removals that starts there (steps.ts `batchable`), with
 * progress and apply's `beforeStep`; a failure is given to `failed` (the batch then goes on with
 * its other steps: each is its own). Returns the index of the next step.
 */
async function carryOut(x: Exec, i: number, failed: (step: Step, index: number, err: unknown) => void): Promise<number> {
  const { ctx, steps } = x;
  const options = ctx.options;
  let end = i + 1;
  while (end < steps.length && batchable(steps[i]!, steps[end]!)) end++;
  const run = (k: number): StepRun => ({ ctx, journal: x.journal, command: x.command, index: k, onDone: (undo) => x.done.push({ step: publicStep(steps[k]!), undo }) });
  const ts = performance.now();
  // apply's beforeStep of each step first: the batch ends before one that refuses
  let refused: { k: number; err: unknown } | undefined;
  for (let k = i; k < end; k++) {
    emit(options, { type: 'step-start', step: publicStep(steps[k]!), index: k, total: steps.length });
    if (x.command !== 'apply') continue;
    try {
      await options.beforeStep?.(publicStep(steps[k]!), k);
    } catch (err) {
      refused = { k, err };
      end = k;
    }
  }
  const ks = Array.from({ length: end - i }, (_, n) => i + n);
  let outcomes: Array<PromiseSettledResult<void>>;
  if (ks.length > 1) outcomes = await runRemovals(ks.map(run), ks.map((k) => steps[k]!));
  else outcomes = await Promise.allSettled(ks.map((k) => runStep(run(k), steps[k]!)));
  // a step of a batch is reported with its share of the batch's time
  const ms = (performance.now() - ts) / Math.max(1, ks.length);
  for (const [n, o] of outcomes.entries()) {
    const k = ks[n]!;
    const step = publicStep(steps[k]!);
    if (o.status === 'rejected') {
      emit(options, { type: 'step-failed', step, index: k, total: steps.length, error: asError(o.reason) });
      failed(step, k, o.reason);
    } else {
      x.report.steps.push({ ...step, ms: Math.round(ms) });
      emit(options, { type: 'step-done', step, index: k, total: steps.length, ms });
    }
  }
  if (refused) {
    const step = publicStep(steps[refused.k]!);
    emit(options, { type: 'step-failed', step, index: refused.k, total: steps.length, error: asError(refused.err) });
    failed(step, refused.k, refused.err);
    return refused.k + 1;
  }
  return end;
}

async function execute(ctx: Ctx, journal: Journal, steps: PlannedStep[]): Promise<Report> {
  const t0 = performance.now();
  const x: Exec = { ctx, journal, command: 'apply', steps, report: { steps: [], changed: steps.length > 0, ms: 0 }, done: [] };
  const signal = ctx.options.signal;
  const aborted = async (): Promise<never> => {
    const { undone, undoErrors } = await undoAll(ctx, x.done);
    throw new HostAbortedError('apply', x.done.map((d) => d.step), undone, undoErrors, signal?.reason);
  };
  for (let i = 0; i < steps.length; ) {
    if (signal?.aborted) await aborted();
    let failure: { step: Step; err: unknown } | undefined;
    i = await carryOut(x, i, (step, _k, err) => void (failure ??= { step, err }));
    if (failure) {
      const { undone, undoErrors } = await undoAll(ctx, x.done);
      throw new HostApplyError(failure.step, failure.err, undone, undoErrors);
    }
  }
  if (signal?.aborted) await aborted();
  x.report.ms = Math.round(performance.now() - t0);
  return x.report;
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
  return applySelected(host, options, undefined);
}

/**
 * {@link apply} restricted to the entries whose ids `select` takes (a set of ids, or a test of an
 * id): the others are neither inspected nor touched, and a recorded entry the host file no longer
 * wants is removed only when its id is selected. The same lock, reconciliation, write-ahead steps,
 * undo and errors as apply. For a supervisor that repairs what it saw change (`vmhost run`: a
 * deleted bridge is `['link:br0']`, a dead dnsmasq `['dnsmasq']`) or re-plans everything but the
 * VMs it leaves down; ids are those of {@link Step.id}.
 * @throws as {@link apply}.
 */
export async function applyEntries(host: ResolvedHost, select: ReadonlySet<string> | ((id: string) => boolean), options: HostOptions = {}): Promise<Report> {
  return applySelected(host, options, typeof select === 'function' ? select : (id) => select.has(id));
}

async function applySelected(host: ResolvedHost, options: HostOptions, select: Selection): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    checkAborted(ctx, 'apply');
    await preconditions(ctx);
    ctx.dir = checkStateDir(ctx.dir, true) ?? ctx.dir;
    const want = wanted(ctx);
    const { journal, unlock } = await prepare(ctx, knownOf(want));
    try {
      // under the lock, and only when the firewall is among the entries looked at (a repair of one
      // route does not read it): read while the other entries are
      if (select === undefined || select('firewall')) ctx.live.prefetchFirewall();
      // a disk operation a kill interrupted is finished before any VM is started or stopped
      await finishDiskIntents(ctx);
      const { steps, conflicts } = await planSteps(ctx, journal.state, want, 'apply', options.expectSteps !== undefined, select);
      if (options.expectSteps) checkSteps(options.expectSteps, steps.map((s) => publicStep(s, true)));
      if (conflicts.length > 0) throw new HostOwnerError(conflicts);
      // counted among the namespace's hosts before anything is made (others find its records so)
      if (steps.length > 0) await registerOwner(callerOf(ctx));
      return await execute(ctx, journal, steps);
    } finally {
      compact(ctx, journal);
      unlock();
    }
  } finally {
    ctx.h.close();
  }
}

/** Ends the processes of the state directory that no record named (a VM started by `vm start`, or whose start was interrupted). */
async function endStrays(ctx: Ctx): Promise<void> {
  for (const name of await stopAllVms(ctx.dir, ctx.live)) ctx.notice(`VM ${name} was running from ${ctx.dir} without a record: stopped`);
  if (await stopDnsmasq(join(ctx.dir, 'dnsmasq'))) ctx.notice('dnsmasq was running without a record: stopped');
  if (await stopProxyService(join(ctx.dir, 'proxy6'))) ctx.notice('the IPv6 proxy was running without a record: stopped');
}

/**
 * Removes exactly what apply created, newest first: VMs stopped through the shutdown ladder, the
 * proxy and dnsmasq stopped, the firewall owner's rules removed, proxy neighbours, routes,
 * addresses and links deleted (each only when it carries this host's marks; a recorded one
 * without them is left alone with a notice), and the sysctls apply changed put back to their old
 * values. Then every process still running from the state directory is ended. Things that
 * existed before apply are left alone. Idempotent. The VMs' disk chains (the overlays in the data
 * directory, their snapshots) are kept, so that the next apply starts each VM on its disk as it
 * was; with `deleteDisks` they are deleted too (never the host file's own images). When `options.signal` is aborted, the step
 * under way is finished and down stops ({@link HostAbortedError}); the state file records what
 * is left.
 * @throws {HostApplyError} when a removal fails (the rest is still attempted first; the state
 * file keeps what could not be removed).
 */
export async function down(host: ResolvedHost, options: DownOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    checkAborted(ctx, 'down');
    if (checkStateDir(ctx.dir, false) === undefined) {
      const deleted = options.deleteDisks ? deleteDiskChains(ctx) : [];
      for (const vm of deleted) ctx.notice(`deleted the disk chain of VM ${vm} (--delete-disks)`);
      return { steps: [], changed: deleted.length > 0, ms: 0 };
    }
    const { journal, unlock } = await prepare(ctx, knownOf(wanted(ctx)));
    let finished = false;
    try {
      const t0 = performance.now();
      const steps = [...journal.state.entries].reverse().map((r) => removalStep(r, ''));
      const x: Exec = { ctx, journal, command: 'down', steps, report: { steps: [], changed: steps.length > 0, ms: 0 }, done: [] };
      const failures: Array<{ step: Step; error: unknown }> = [];
      for (let i = 0; i < steps.length; ) {
        if (options.signal?.aborted) throw new HostAbortedError('down', x.report.steps.map((s) => publicStep(s)), [], [], options.signal.reason);
        i = await carryOut(x, i, (step, _k, error) => void failures.push({ step, error }));
      }
      const [first, ...rest] = failures;
      if (first) throw new HostApplyError(first.step, first.error, [], rest);
      await endStrays(ctx);
      // The runtime files apply made (dnsmasq's config, pid and lease files, the proxy's, the
      // VMs' run dirs) go too; the journal is removed after the state file (a journal whose state
      // file is gone names another base and is ignored).
      journal.close();
      for (const f of ['state.json', 'state.log', 'dnsmasq', 'proxy6', 'vms']) rmSync(join(ctx.dir, f), { recursive: true, force: true });
      finished = true;
      if (options.deleteDisks) for (const vm of deleteDiskChains(ctx)) ctx.notice(`deleted the disk chain of VM ${vm} (--delete-disks)`);
      await unregisterOwner(callerOf(ctx));
      x.report.ms = Math.round(performance.now() - t0);
      return x.report;
    } finally {
      if (!finished) compact(ctx, journal);
      unlock();
      // and, after the namespace's last host, its directory under /run/vmhost
      removeIfEmptyUnderNamespace(ctx.dir);
    }
  } finally {
    ctx.h.close();
  }
}

