/**
 * The typed public operations: {@link plan} (pure), {@link apply}, {@link remove} and
 * {@link removeGroup}. Each reads the current state with iptables-save, ip6tables-save and
 * ebtables-save, plans the smallest change of the owner's chains, has every table section parsed by
 * the program that will commit it before any of them commits (see exec/commit.ts), and commits
 * ebtables, then IPv4, then IPv6; if a later step fails, the families already changed are put back
 * as they were (all or nothing across the three).
 * @module
 */
import type { NetnsRef } from '@vmhost/net';
import { FirewallError } from './errors.js';
import type { FirewallModel, TableFamily } from './model.js';
import { isEmptyPlan, planFamily, type FamilyPlan } from './render/plan.js';
import { buildRuleset, groupChain, GROUP_KINDS, ownerChain, type FamilySpec, type OwnedRuleset } from './render/ruleset.js';
import { ownedFamily, parseSave, type SavedState } from './render/save.js';
import { programs, starterFor, type ExecOptions, type Starter } from './exec/runner.js';
import { confirm, feed, killHeld, releaseFamily, restore, unitsOf, type CheckMode, type Unit } from './exec/commit.js';
import { backendOf } from './exec/backend.js';
import { validateGroup, validateModel, validateOwner, type NormalizedModel } from './validate.js';

export { tableSections } from './exec/commit.js';
export type { CheckMode } from './exec/commit.js';

/** Plans for the three families. */
export interface Plan {
  ipv4: FamilyPlan;
  ipv6: FamilyPlan;
  /** ebtables (the VM ports). */
  bridge: FamilyPlan;
}

/** What {@link apply}, {@link remove} and {@link removeGroup} did. */
export interface ApplyResult extends Plan {
  /** False when the rules were already as wanted and nothing was run but the save programs. */
  changed: boolean;
}

/** Options of {@link apply}, {@link remove} and {@link removeGroup}. */
export interface ApplyOptions extends ExecOptions {
  /**
   * How every table section is checked before any commits. `'parse'` (default): by the program
   * that commits it, which must have read and parsed its whole section before any COMMIT is
   * written: the checks of `iptables-restore --test`, without a second parse. `'test'`: a separate
   * `iptables-restore --test` per section as well (ebtables has no `--test`). Neither catches
   * what only the kernel refuses (see docs/firewall-atomic-apply.md); a late refusal is rolled back.
   */
  check?: CheckMode;
}

/** The order families are committed in: ebtables first (it has no `--test` of its own). */
const FAMILIES: readonly TableFamily[] = ['bridge', 4, 6];
const KEY: Record<TableFamily, keyof Plan> = { 4: 'ipv4', 6: 'ipv6', bridge: 'bridge' };

/**
 * Plans applying `model` onto the state that iptables-save, ip6tables-save and ebtables-save
 * printed (`current`; `bridge` may be left out when the owner has no ports anywhere). Pure: this is
 * exactly what {@link apply} would run.
 * @throws {ValidationError} for a bad model.
 */
export function plan(model: FirewallModel | NormalizedModel, current: SavedText): Plan {
  const m = validateModel(model);
  return planFrom(m, buildRuleset(m), current);
}

/**
 * {@link plan} against saves that are still being read (`current`, e.g. {@link save}'s promise):
 * builds what `model` wants while they are read (at a few thousand rules, about half of a plan's
 * work), and plans once they are there. Resolves to what `plan(model, await current)` returns.
 * @throws {ValidationError} for a bad model (before `current` settles); rejects as `current` does.
 */
export async function planAgainst(model: FirewallModel | NormalizedModel, current: PromiseLike<SavedText>): Promise<Plan> {
  const m = validateModel(model);
  const rs = buildRuleset(m);
  return planFrom(m, rs, await current);
}

/** What the save programs printed, as {@link save} returns it. */
export interface SavedText {
  /** iptables-save. */
  ipv4: string;
  /** ip6tables-save. */
  ipv6: string;
  /** ebtables-nft-save; may be left out when the owner has no ports anywhere. */
  bridge?: string;
}

function planFrom(m: NormalizedModel, rs: ReturnType<typeof buildRuleset>, current: SavedText): Plan {
  return {
    ipv4: planFamily(m.owner, rs.ipv4, parseSave(current.ipv4, 4)),
    ipv6: planFamily(m.owner, rs.ipv6, parseSave(current.ipv6, 6)),
    bridge: planFamily(m.owner, rs.bridge, parseSave(current.bridge ?? '', 'bridge')),
  };
}

/** Whether a plan of all three families does nothing. */
export function isNoop(p: Plan): boolean {
  return isEmptyPlan(p.ipv4) && isEmptyPlan(p.ipv6) && isEmptyPlan(p.bridge);
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

async function readState(start: Starter, family: TableFamily): Promise<SavedState> {
  const r = await start(programs(family).save, []).end('');
  if (r.code !== 0) throw new FirewallError('EFW_SAVE', { family, stage: 'save', exitCode: r.code, stderr: r.stderr });
  return parseSave(r.stdout, family);
}

/** Puts `owner`'s part of `family` back to what it was in `before` (one program per step, no holding). */
async function putBack(start: Starter, owner: string, family: TableFamily, before: SavedState): Promise<void> {
  const now = await readState(start, family);
  const p = planFamily(owner, ownedFamily(before, owner, family), now);
  for (const u of unitsOf(p)) await restore(start, family, u.stage, u.args, u.body + u.tail);
}

type Want = (family: TableFamily, current: SavedState) => FamilySpec;

/** What the caller knows before the saves are read, and work to do meanwhile. */
interface Prepare {
  /** Build the rule set (run while the saves run). */
  whileSaving(): void;
  /**
   * Whether the model has isolated ports. If not, ebtables-save is read only when the owner's
   * ip6tables raw chains show that it has some: every isolated port has both an ebtables chain
   * and an ip6tables `-N` chain, written and removed together.
   */
  ports: boolean;
}

/** Whether `owner` has port chains in an ip6tables state (its raw `-RAW` chain). */
function hasPorts(state6: SavedState, owner: string): boolean {
  return state6.get('raw')?.chains.has(ownerChain(owner, 'RAW')) ?? false;
}

async function transition(owner: string, want: Want, options: ApplyOptions, prepare?: Prepare): Promise<ApplyResult> {
  const start = starterFor(options);
  const mode: CheckMode = options.check ?? 'parse';
  return serialize(options.netns, async () => {
    // The saves run as child processes while this thread builds the rule set. Each family is
    // planned as soon as its state is read, and its committing programs are started and fed
    // then: they parse while the other families' states are still being read.
    const s4 = readState(start, 4);
    const s6 = readState(start, 6);
    const backend = { 4: backendOf(start, 4), 6: backendOf(start, 6), bridge: backendOf(start, 'bridge') };
    const sb = prepare && !prepare.ports ? s6.then((st) => (hasPorts(st, owner) ? readState(start, 'bridge') : new Map())) : readState(start, 'bridge');
    const states: Record<TableFamily, Promise<SavedState>> = { 4: s4, 6: s6, bridge: sb };
    for (const p of [s4, s6, sb]) p.catch(() => undefined);
    prepare?.whileSaving();
    const units: Unit[] = [];
    const staged = await Promise.allSettled(
      FAMILIES.map(async (f) => {
        const before = await states[f];
        const p = planFamily(owner, want(f, before), before);
        const mine = unitsOf(p, (await backend[f]) === 'legacy');
        units.push(...mine);
        feed(start, mine, mode);
        return { family: f, before, plan: p };
      }),
    );
    const failed = staged.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await killHeld(units);
      throw failed.reason;
    }
    const done = staged.map((r) => (r as PromiseFulfilledResult<{ family: TableFamily; before: SavedState; plan: FamilyPlan }>).value);
    const before = new Map(done.map((d) => [d.family, d.before]));
    const plans = new Map(done.map((d) => [d.family, d.plan]));
    const result = { ipv4: plans.get(4), ipv6: plans.get(6), bridge: plans.get('bridge'), changed: false } as ApplyResult;
    result.changed = !isNoop(result);
    if (!result.changed) return result;
    await confirm(start, units, mode);
    const touched: TableFamily[] = [];
    for (const f of FAMILIES) {
      if (isEmptyPlan(plans.get(f) as FamilyPlan)) continue;
      touched.push(f);
      try {
        // The tables of a family are committed together: separate nft transactions anyway (the
        // kernel serialises them); their user-space work overlaps.
        await releaseFamily(start, units.filter((u) => u.family === f));
      } catch (err) {
        await killHeld(units);
        // All or nothing: put back every family this call changed (the failed one may be half
        // done: one table committed, or its batch went in and dropping a table did not).
        try {
          for (const g of touched) await putBack(start, owner, g, before.get(g) as SavedState);
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
export async function apply(model: FirewallModel | NormalizedModel, options: ApplyOptions = {}): Promise<ApplyResult> {
  const m = validateModel(model);
  let rs: OwnedRuleset | undefined;
  const build = (): OwnedRuleset => (rs ??= buildRuleset(m));
  const spec = (f: TableFamily): FamilySpec => build()[KEY[f] as 'ipv4' | 'ipv6' | 'bridge'];
  // The rule set is built while the saves run.
  return transition(m.owner, (f) => spec(f), options, {
    whileSaving: () => void build(),
    ports: m.ports.some((p) => p.isolation),
  });
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
  const gone = new Set((Object.keys(GROUP_KINDS) as Array<keyof typeof GROUP_KINDS>).map((k) => groupChain(owner, group, k)));
  const target = (spec: string): string | undefined => / -j (\S+)$/.exec(` ${spec}`)?.[1];
  return transition(
    owner,
    (family, current) => {
      const owned = ownedFamily(current, owner, family);
      const tables = owned.tables.map((t) => {
        const chains = t.chains
          .filter((c) => !gone.has(c.name))
          .map((c) => ({ ...c, rules: c.rules.filter((r) => !gone.has(target(r) ?? '')) }))
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
 * Reads the current rules of the three families as iptables-save, ip6tables-save and
 * ebtables-save print them (for {@link plan}, inspection and tests).
 * @throws {FirewallError} `EFW_SAVE`.
 */
export async function save(options: ExecOptions = {}): Promise<Required<SavedText>> {
  const start = starterFor(options);
  const out = await Promise.all(
    FAMILIES.map(async (f) => {
      const r = await start(programs(f).save, []).end('');
      if (r.code !== 0) throw new FirewallError('EFW_SAVE', { family: f, stage: 'save', exitCode: r.code, stderr: r.stderr });
      return r.stdout;
    }),
  );
  return { bridge: out[0] as string, ipv4: out[1] as string, ipv6: out[2] as string };
}
