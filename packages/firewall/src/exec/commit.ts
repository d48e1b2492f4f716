/**
 * Committing a plan with held programs: every table section (and every table drop) of every family
 * gets a restore program of its own, which is written the section without its ending (`COMMIT`, or
 * for ebtables the end of its input) and so parses it and waits, having committed nothing. Only
 * when every program has accepted its whole section are the endings written, family by family.
 * A family's programs are fed as soon as its state has been read and planned.
 *
 * How "accepted" is known (the `check` of {@link CheckMode}):
 * - `'parse'` (default): the program itself is the test. It has parsed its section once it is
 *   blocked reading its standard input with everything written ({@link StartedProgram.parked}); a
 *   section it refuses makes it exit instead. `iptables-restore --test` runs exactly this parse (it
 *   also never asks the kernel: see docs/firewall-atomic-apply.md), so the guarantee is the same
 *   without parsing every batch twice.
 * - `'test'`: a separate `iptables-restore --test` of each section, run alongside the held programs
 *   (which are niced meanwhile); ebtables-restore has no `--test`, its sections are only parsed.
 *   Used as well when a program's state cannot be observed (a custom runner, another platform).
 * @module
 */
import { getPriority, setPriority } from 'node:os';
import { FirewallError, type FirewallStage } from '../errors.js';
import type { TableFamily } from '../model.js';
import { DIALECTS } from '../render/dialect.js';
import { dropText, type FamilyPlan } from '../render/plan.js';
import { programs, type RunOutput, type StartedProgram, type Starter } from './runner.js';

/** How every section is checked before anything is committed (see the module description). */
export type CheckMode = 'parse' | 'test';

/** One table section or table drop, committed by a program of its own. */
export interface Unit {
  family: TableFamily;
  stage: 'commit' | 'drop';
  args: string[];
  /** What the program is given first: the section without its ending. */
  body: string;
  /** What commits it: `COMMIT\n`, or '' (ebtables commits at the end of its input). */
  tail: string;
  program?: StartedProgram;
  /** Check `'test'`: the `--test` run of the section. */
  test?: Promise<void>;
  settled: boolean;
  /**
   * Legacy iptables (exec/backend.ts): never held. Its `--test` runs in {@link confirm} and its
   * commit in {@link releaseFamily}, each program to completion, one at a time.
   */
  sequential: boolean;
}

/**
 * The table sections of a batch (`*filter ... COMMIT`, `*nat ... COMMIT`; for ebtables, from one
 * `*table` line to the next). iptables-nft-restore commits each table as one transaction when it
 * reads that table's COMMIT line; ebtables-nft-restore when it reads the next `*table` or its input ends.
 */
export function tableSections(batch: string, family: TableFamily = 4): string[] {
  const out: string[] = [];
  let from = 0;
  if (DIALECTS[family].end === '') {
    while (from < batch.length) {
      const next = batch.indexOf('\n*', from);
      const end = next < 0 ? batch.length : next + 1;
      out.push(batch.slice(from, end));
      from = end;
    }
    return out;
  }
  const COMMIT = 'COMMIT\n';
  for (;;) {
    const i = batch.indexOf(`\n${COMMIT}`, from);
    if (i < 0) break;
    out.push(batch.slice(from, i + 1 + COMMIT.length));
    from = i + 1 + COMMIT.length;
  }
  if (from !== batch.length) throw new Error(`internal: batch does not end with COMMIT: ${batch.slice(from, from + 80)}`);
  return out;
}

/** The units of a family's plan: its table sections, then its table drops (`sequential` for legacy iptables). */
export function unitsOf(p: FamilyPlan, sequential = false): Unit[] {
  const end = DIALECTS[p.family].end;
  const units: Unit[] = tableSections(p.batch, p.family).map((section) => ({
    family: p.family,
    stage: 'commit',
    args: ['--noflush'],
    body: section.slice(0, section.length - end.length),
    tail: end,
    settled: false,
    sequential,
  }));
  for (const t of p.drop) {
    const text = dropText([t], p.family);
    units.push({ family: p.family, stage: 'drop', args: [], body: text.slice(0, text.length - end.length), tail: end, settled: false, sequential });
  }
  return units;
}

/** Throws the {@link FirewallError} for a failed run. */
export function checkRun(r: RunOutput, family: TableFamily, stage: FirewallStage, batch: string): void {
  if (r.code !== 0) throw new FirewallError('EFW_RESTORE', { family, stage, exitCode: r.code, stderr: r.signal ? `killed by ${r.signal}${r.stderr ? `: ${r.stderr}` : ''}` : r.stderr, batch });
}

/** Runs one restore to completion with `text` (no holding): rollbacks and `--test`. */
export async function restore(start: Starter, family: TableFamily, stage: FirewallStage, args: string[], text: string): Promise<void> {
  checkRun(await start(programs(family).restore, args).end(text), family, stage, text);
}

/** Kills every held program that has not been released (nothing of theirs was committed) and waits for them. */
export async function killHeld(units: readonly Unit[]): Promise<void> {
  await Promise.allSettled(
    units.filter((u) => u.program && !u.settled).map(async (u) => {
      u.settled = true;
      await u.program?.kill();
    }),
  );
}

/**
 * Niceness of the held programs while `--test` runs (check `'test'` only): the tests are on the
 * critical path and the held programs have slack, so on a small machine the tests get the CPU.
 */
const HELD_NICENESS = 10;

function renice(units: readonly Unit[], niceness: number): void {
  for (const u of units) {
    if (u.program?.pid === undefined || u.settled) continue;
    try {
      setPriority(u.program.pid, niceness);
    } catch {
      // raising the priority back needs CAP_SYS_NICE; without it the commit runs niced (only slower)
    }
  }
}

/**
 * Starts the committing program of each unit and writes it its body (and with check `'test'`
 * starts the unit's `--test` run). Called per family as soon as its plan is known, so that its
 * programs parse while the other families' states are still being read.
 */
export function feed(start: Starter, units: readonly Unit[], mode: CheckMode): void {
  for (const u of units) {
    if (u.sequential) continue;
    if (mode === 'test' && u.family !== 'bridge') {
      u.test = restore(start, u.family, 'test', ['--test', ...u.args], u.body + u.tail);
      u.test.catch(() => undefined);
    }
    u.program = start(programs(u.family).restore, u.args);
    u.program.write(u.body);
  }
}

/**
 * Resolves once every fed section has been accepted (see {@link CheckMode}; `'parse'` falls back
 * to `'test'` when a program's state cannot be observed); on a refusal every held program is
 * killed, nothing having been committed, and the {@link FirewallError} (stage `parse` or `test`)
 * is thrown.
 */
export async function confirm(start: Starter, units: readonly Unit[], mode: CheckMode): Promise<void> {
  const held = units.filter((u) => !u.sequential);
  try {
    // legacy iptables: each section's --test to completion, one at a time (each takes the lock)
    for (const u of units) if (u.sequential) await restore(start, u.family, 'test', ['--test', ...u.args], u.body + u.tail);
    if (mode === 'parse' && held.every((u) => u.program?.parked !== undefined)) {
      // the first refusal ends the wait: the others are killed without waiting for their parse
      await Promise.all(
        held.map(async (u) => {
          if ((await (u.program as Required<StartedProgram>).parked()) || u.settled) return; // settled: killed after another's refusal
          u.settled = true;
          const r = await (u.program as StartedProgram).end();
          checkRun(r.code === 0 ? { ...r, code: -1, stderr: `exited before its ending was written${r.stderr ? `: ${r.stderr}` : ''}` } : r, u.family, 'parse', u.body);
        }),
      );
      return;
    }
    for (const u of held) {
      if (!u.test && u.family !== 'bridge') {
        u.test = restore(start, u.family, 'test', ['--test', ...u.args], u.body + u.tail);
        u.test.catch(() => undefined);
      }
    }
    const tests = held.flatMap((u) => (u.test ? [u.test] : []));
    if (tests.length === 0) return;
    renice(held, Math.min(19, getPriority() + HELD_NICENESS));
    const failed = (await Promise.allSettled(tests)).find((t): t is PromiseRejectedResult => t.status === 'rejected');
    if (failed) throw failed.reason;
    renice(held, getPriority());
  } catch (err) {
    await Promise.allSettled(units.flatMap((u) => (u.test ? [u.test] : [])));
    await killHeld(units);
    throw err;
  }
}

/**
 * Releases (commits) the held units of one family together and checks their outcome; a family of
 * legacy iptables commits its units one after the other instead.
 */
export async function releaseFamily(start: Starter, units: readonly Unit[]): Promise<void> {
  const mine = units.filter((u) => !u.settled);
  for (const u of mine) u.settled = true;
  const held = mine.filter((u) => !u.sequential);
  const outcomes = await Promise.all(held.map((u) => (u.program as StartedProgram).end(u.tail)));
  outcomes.forEach((r, i) => {
    const u = held[i] as Unit;
    checkRun(r, u.family, u.stage, u.body + u.tail);
  });
  for (const u of mine) if (u.sequential) await restore(start, u.family, u.stage, u.args, u.body + u.tail);
}
