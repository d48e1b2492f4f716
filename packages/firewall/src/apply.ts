import { getPriority, setPriority } from 'node:os';
/**
 * The typed public operations: {@link plan} (pure), {@link apply}, {@link remove} and
 * {@link removeGroup}. Each reads the current state with iptables-save, plans the smallest change
 * of the owner's chains, checks every batch with `iptables-restore --test` and commits one
 * `--noflush` batch per family; if a later step fails, the families already changed are put back
 * as they were (all or nothing across IPv4 and IPv6).
 *
 * The commit is pipelined with the test: the committing iptables-restore programs (one per table)
 * start together with the `--test` ones and are given their batch without its COMMIT line; the
 * COMMIT lines are written only when every test passed, and the programs are killed when one did
 * not (nothing was committed: iptables-nft-restore commits a table when it reads its COMMIT).
 * @module
 */
import type { NetnsRef } from '@vmhost/net';
import { FirewallError, type FirewallStage } from './errors.js';
import type { Family, FirewallModel } from './model.js';
import { dropText, isEmptyPlan, planFamily, type FamilyPlan } from './render/plan.js';
import { buildRuleset, groupChain, type FamilySpec, type OwnedRuleset } from './render/ruleset.js';
import { ownedFamily, parseSave, type SavedState } from './render/save.js';
import { programs, starterFor, type ExecOptions, type RunOutput, type StartedProgram, type Starter } from './exec/runner.js';
import { validateGroup, validateModel, validateOwner } from './validate.js';

/** Plans for both families. */
export interface Plan {
  ipv4: FamilyPlan;
  ipv6: FamilyPlan;
}

/** What {@link apply}, {@link remove} and {@link removeGroup} did. */
export interface ApplyResult extends Plan {
  /** False when the rules were already as wanted and nothing was run but iptables-save. */
  changed: boolean;
}

/** Options of {@link apply}, {@link remove} and {@link removeGroup}. */
export interface ApplyOptions extends ExecOptions {
  /**
   * When to run `iptables-restore --test` before committing. `'always'` (default): every batch.
   * `'multi'`: only when the call commits more than one batch (two families, or a batch and a
   * table drop). `--test` does not catch what only the kernel refuses (see
   * docs/firewall-atomic-apply.md), and a late refusal is rolled back in any case. Since the test
   * runs alongside the committing programs (pipelined), skipping it saves little.
   */
  check?: 'always' | 'multi';
}

const FAMILIES: readonly Family[] = [4, 6];

/**
 * Plans applying `model` onto the state that iptables-save / ip6tables-save printed (`current`).
 * Pure: this is exactly what {@link apply} would run.
 * @throws {ValidationError} for a bad model.
 */
export function plan(model: FirewallModel, current: { ipv4: string; ipv6: string }): Plan {
  const m = validateModel(model);
  const rs = buildRuleset(m);
  return {
    ipv4: planFamily(m.owner, rs.ipv4, parseSave(current.ipv4)),
    ipv6: planFamily(m.owner, rs.ipv6, parseSave(current.ipv6)),
  };
}

// One change at a time per namespace within this process: a plan is only valid for the state it was made from.
const queues = new Map<string, Promise<unknown>>();
function serialize<T>(ref: NetnsRef | undefined, fn: () => Promise<T>): Promise<T> {
  const key = JSON.stringify(ref ?? null);
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return next;
}

async function readState(start: Starter, family: Family): Promise<SavedState> {
  const r = await start(programs(family).save, []).end('');
  if (r.code !== 0) throw new FirewallError('EFW_SAVE', { family, stage: 'save', exitCode: r.code, stderr: r.stderr });
  return parseSave(r.stdout);
}

function checkRun(r: RunOutput, family: Family, stage: FirewallStage, batch: string): void {
  if (r.code !== 0) throw new FirewallError('EFW_RESTORE', { family, stage, exitCode: r.code, stderr: r.signal ? `killed by ${r.signal}${r.stderr ? `: ${r.stderr}` : ''}` : r.stderr, batch });
}

async function restore(start: Starter, family: Family, stage: FirewallStage, args: string[], batch: string): Promise<void> {
  checkRun(await start(programs(family).restore, args).end(batch), family, stage, batch);
}

/**
 * Starts the `--test` runs of a plan, one per table section (a table is tested on its own by
 * iptables-restore anyway) and one for the table drops; they run in parallel.
 */
function testPlan(start: Starter, p: FamilyPlan): Array<Promise<void>> {
  const runs = p.batch ? tableSections(p.batch).map((section) => restore(start, p.family, 'test', ['--test', '--noflush'], section)) : [];
  if (p.drop.length) runs.push(restore(start, p.family, 'test', ['--test'], dropText(p.drop)));
  return runs;
}

async function commitPlan(start: Starter, p: FamilyPlan): Promise<void> {
  if (p.batch) await restore(start, p.family, 'commit', ['--noflush'], p.batch);
  if (p.drop.length) await restore(start, p.family, 'drop', [], dropText(p.drop));
}

/** Puts `owner`'s part of `family` back to what it was in `before`. */
async function putBack(start: Starter, owner: string, family: Family, before: SavedState): Promise<void> {
  const now = await readState(start, family);
  const p = planFamily(owner, ownedFamily(before, owner, family), now);
  if (!isEmptyPlan(p)) await commitPlan(start, p);
}

const COMMIT = 'COMMIT\n';

/**
 * The table sections of a batch (`*filter ... COMMIT`, `*nat ... COMMIT`). iptables-nft-restore
 * commits each table as one transaction when it reads that table's COMMIT line.
 */
export function tableSections(batch: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (;;) {
    const i = batch.indexOf(`\n${COMMIT}`, from);
    if (i < 0) break;
    out.push(batch.slice(from, i + 1 + COMMIT.length));
    from = i + 1 + COMMIT.length;
  }
  if (from !== batch.length) throw new Error(`internal: batch does not end with COMMIT: ${batch.slice(from, from + 80)}`);
  return out;
}

/** A committing iptables-restore that has been given one table section without its COMMIT line. */
interface HeldCommit {
  family: Family;
  section: string;
  program: StartedProgram;
  settled: boolean;
}

/**
 * Starts one `iptables-restore --noflush` per table section of `batch` and writes it everything
 * but the COMMIT line: the program parses the rules (the bulk of its user-space work) and then
 * waits, having committed nothing (iptables-nft-restore commits a table only when it reads COMMIT).
 */
function startHeld(start: Starter, family: Family, batch: string, into: HeldCommit[]): void {
  for (const section of tableSections(batch)) {
    const program = start(programs(family).restore, ['--noflush']);
    into.push({ family, section, program, settled: false });
    program.write(section.slice(0, section.length - COMMIT.length));
  }
}

/** Kills every held program that has not been released (nothing of theirs was committed) and waits for them. */
async function killHeld(held: HeldCommit[]): Promise<void> {
  await Promise.allSettled(
    held.filter((h) => !h.settled).map(async (h) => {
      h.settled = true;
      await h.program.kill();
    }),
  );
}

/**
 * Niceness of the held programs while the tests run: the tests are on the critical path (nothing
 * commits before they end) and the held programs have slack (they only parse), so on a busy or
 * small machine the tests get the CPU first. Put back before the COMMIT lines are written.
 */
const HELD_NICENESS = 10;

function renice(held: readonly HeldCommit[], niceness: number): void {
  for (const h of held) {
    if (h.program.pid === undefined || h.settled) continue;
    try {
      setPriority(h.program.pid, niceness);
    } catch {
      // raising the priority back needs CAP_SYS_NICE; without it the commit runs niced (only slower)
    }
  }
}

type Want = (family: Family, current: SavedState) => FamilySpec;

async function transition(owner: string, want: Want, options: ApplyOptions, whileSaving?: () => void): Promise<ApplyResult> {
  const start = starterFor(options);
  return serialize(options.netns, async () => {
    // The saves run as child processes while this thread does the work that does not need them.
    const saves = Promise.all([readState(start, 4), readState(start, 6)]);
    saves.catch(() => undefined);
    whileSaving?.();
    const [s4, s6] = await saves;
    const before: Record<Family, SavedState> = { 4: s4, 6: s6 };
    const plans: Record<Family, FamilyPlan> = { 4: planFamily(owner, want(4, s4), s4), 6: planFamily(owner, want(6, s6), s6) };
    const result: ApplyResult = { ipv4: plans[4], ipv6: plans[6], changed: !isEmptyPlan(plans[4]) || !isEmptyPlan(plans[6]) };
    if (!result.changed) return result;
    const batches = FAMILIES.reduce((n, f) => n + (plans[f].batch ? 1 : 0) + (plans[f].drop.length ? 1 : 0), 0);
    const check = (options.check ?? 'always') === 'always' || batches > 1;
    // Pipelined: the `--test` programs start, then the committing ones, which parse their batches
    // while the tests run; their COMMIT lines are written only once every test passed.
    const tests = check ? FAMILIES.flatMap((f) => testPlan(start, plans[f])) : [];
    const held: HeldCommit[] = [];
    try {
      for (const f of FAMILIES) if (plans[f].batch) startHeld(start, f, plans[f].batch, held);
      if (tests.length > 0) renice(held, Math.min(19, getPriority() + HELD_NICENESS));
      const failed = (await Promise.allSettled(tests)).find((t): t is PromiseRejectedResult => t.status === 'rejected');
      if (failed) throw failed.reason;
      if (tests.length > 0) renice(held, getPriority());
    } catch (err) {
      await Promise.allSettled(tests);
      await killHeld(held);
      throw err;
    }
    const touched: Family[] = [];
    for (const f of FAMILIES) {
      if (isEmptyPlan(plans[f])) continue;
      touched.push(f);
      try {
        // The tables of a family are committed together: separate nft transactions anyway, and
        // the kernel serialises them; their user-space work overlaps.
        const mine = held.filter((h) => h.family === f);
        for (const h of mine) h.settled = true;
        const outcomes = await Promise.all(mine.map((h) => h.program.end(COMMIT)));
        outcomes.forEach((r, i) => checkRun(r, f, 'commit', (mine[i] as HeldCommit).section));
        if (plans[f].drop.length) await restore(start, f, 'drop', [], dropText(plans[f].drop));
      } catch (err) {
        await killHeld(held);
        // All or nothing: put back every family this call changed (the failed one may be half
        // done: one table committed, or its batch went in and dropping a table did not).
        try {
          for (const g of touched) await putBack(start, owner, g, before[g]);
        } catch (rbErr) {
          const e = err as FirewallError;
          throw new FirewallError(
            'EFW_ROLLBACK',
            { family: e.family ?? f, stage: 'rollback', exitCode: e.exitCode ?? null, stderr: e.stderr ?? String(err), rollbackError: rbErr },
            { cause: err },
          );
        }
        throw err;
      }
    }
    return result;
  });
}

/**
 * Applies `model` atomically and idempotently: only the owner's private chains and the jumps into
 * them change. Re-applying the same model runs nothing but iptables-save (`changed: false`); a
 * changed model rewrites only the chains whose rules differ.
 * @throws {ValidationError} before anything is touched, for a bad model.
 * @throws {FirewallError} `EFW_RESTORE` when a batch is refused (nothing stays applied), `EFW_ROLLBACK`
 *   if putting the previous state back failed as well.
 */
export async function apply(model: FirewallModel, options: ApplyOptions = {}): Promise<ApplyResult> {
  const m = validateModel(model);
  let rs: OwnedRuleset | undefined;
  const build = (): OwnedRuleset => (rs ??= buildRuleset(m));
  // The rule set is built while iptables-save runs.
  return transition(m.owner, (f) => (f === 4 ? build().ipv4 : build().ipv6), options, build);
}

/**
 * Removes everything `owner` has (its chains and jumps, in both families) and nothing else;
 * tables that vmhost created and that are empty again are deleted, so iptables-save reads as it
 * did before the first apply.
 * @throws {ValidationError} for a bad owner name. {@link FirewallError} as {@link apply}.
 */
export async function remove(owner: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  validateOwner(owner);
  return transition(owner, (family) => ({ family, tables: [] }), options);
}

/**
 * Removes one group of `owner`'s port forwards (its chains and the jumps to them) and leaves the
 * rest of the owner's rules as they are. Works from the current state; no model needed.
 * @throws {ValidationError} for a bad owner or group name. {@link FirewallError} as {@link apply}.
 */
export async function removeGroup(owner: string, group: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  validateOwner(owner);
  validateGroup(group, owner);
  const gone = new Set((['D', 'L', 'F', 'H'] as const).map((k) => groupChain(owner, group, k)));
  const target = (spec: string): string | undefined => / -j (\S+)$/.exec(` ${spec}`)?.[1];
  return transition(
    owner,
    (family, current) => {
      const owned = ownedFamily(current, owner, family);
      const tables = owned.tables.map((t) => {
        const chains = t.chains
          .filter((c) => !gone.has(c.name))
          .map((c) => ({ name: c.name, rules: c.rules.filter((r) => !gone.has(target(r) ?? '')) }))
          .filter((c) => c.rules.length > 0);
        const kept = new Set(chains.map((c) => c.name));
        return { ...t, chains, jumps: t.jumps.filter((j) => kept.has(target(j.spec) ?? '')) };
      });
      return { family, tables: tables.filter((t) => t.chains.length > 0) };
    },
    options,
  );
}

/**
 * Reads the current rules of both families as iptables-save prints them (for inspection and tests).
 * @throws {FirewallError} `EFW_SAVE`.
 */
export async function save(options: ExecOptions = {}): Promise<{ ipv4: string; ipv6: string }> {
  const start = starterFor(options);
  const out = await Promise.all(
    FAMILIES.map(async (f) => {
      const r = await start(programs(f).save, []).end('');
      if (r.code !== 0) throw new FirewallError('EFW_SAVE', { family: f, stage: 'save', exitCode: r.code, stderr: r.stderr });
      return r.stdout;
    }),
  );
  return { ipv4: out[0] as string, ipv6: out[1] as string };
}
