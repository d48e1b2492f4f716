/**
 * The planner: from what an owner wants (a {@link FamilySpec}) and what iptables-save shows now,
 * the smallest `--noflush` batch that gets there, touching only that owner's chains and jumps:
 * unchanged chains are not rewritten, changed ones are flushed and refilled, stale ones deleted,
 * missing jumps inserted once at the top of their built-in chain. Tables that vmhost created and
 * that hold nothing else any more are dropped (a separate, flushing batch) so that iptables-save
 * reads exactly as it did before. Pure.
 * @module
 */
import type { TableFamily } from '../model.js';
import { DIALECTS, type Dialect } from './dialect.js';
import type { ChainSpec, FamilySpec, JumpSpec, TableName, TableSpec } from './ruleset.js';
import { builtinChains, isOwnerChain, type SavedState, type SavedTable } from './save.js';

/**
 * An empty user chain that marks a table as created by vmhost (it did not exist before the first
 * apply). It is removed with the table when the last vmhost rule there goes.
 */
export const TABLE_MARKER = 'VMHOST-NEWTABLE';

/** What to run for one family. */
export interface FamilyPlan {
  family: TableFamily;
  /** Text for `iptables-restore --noflush` (`ebtables-restore --noflush`); empty when nothing changes. */
  batch: string;
  /** Tables to delete whole (with a flushing restore of `*TABLE\nCOMMIT`, `*TABLE` for ebtables). */
  drop: TableName[];
  /** Private chains created or rewritten. */
  written: string[];
  /** Private chains deleted. */
  deleted: string[];
}

/** Whether a plan does nothing. */
export function isEmptyPlan(p: FamilyPlan): boolean {
  return p.batch === '' && p.drop.length === 0;
}

/**
 * The text of a flushing restore that deletes `tables` (iptables-nft and ebtables-nft delete a
 * table they are told to flush).
 */
export function dropText(tables: readonly TableName[], family: TableFamily = 4): string {
  const end = DIALECTS[family].end;
  return tables.map((t) => `*${t}\n${end}`).join('');
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/** Whether a saved chain equals a wanted one (rules, and the policy of an ebtables chain). */
function sameChain(cur: SavedTable, c: ChainSpec): boolean {
  const info = cur.chains.get(c.name);
  if (!info || (c.policy ?? 'RETURN') !== (info.userPolicy ?? 'RETURN')) return false;
  return sameRules(cur.rules.get(c.name) ?? [], c.rules);
}

/** Whether `t` holds nothing but `owner`'s rules, the marker and empty ACCEPT built-in chains. */
function onlyOursAndMarker(t: SavedTable, owner: string, d: Dialect): boolean {
  if (!t.chains.has(TABLE_MARKER) || (t.rules.get(TABLE_MARKER)?.length ?? 0) > 0) return false;
  for (const [name, info] of t.chains) {
    if (info.policy !== null) {
      if (info.policy !== 'ACCEPT') return false;
    } else if (name !== TABLE_MARKER && !isOwnerChain(name, owner)) {
      return false;
    }
  }
  for (const b of builtinChains(t)) {
    if ((t.rules.get(b) ?? []).some((spec) => !d.isOwnerJump(spec, owner))) return false;
  }
  return true;
}

/** The section of one table (`*name ... COMMIT\n`), or '' when nothing changes there. */
function planTable(d: Dialect, owner: string, name: TableName, want: TableSpec | undefined, cur: SavedTable | undefined, out: FamilyPlan): string {
  const wantChains = want?.chains ?? [];
  const wantJumps = want?.jumps ?? [];
  if (!want && cur && onlyOursAndMarker(cur, owner, d)) {
    const hasOurs = [...cur.chains.keys()].some((c) => isOwnerChain(c, owner)) ||
      builtinChains(cur).some((b) => (cur.rules.get(b) ?? []).some((s) => d.isOwnerJump(s, owner)));
    if (hasOurs) {
      out.drop.push(name);
      for (const c of cur.chains.keys()) if (isOwnerChain(c, owner)) out.deleted.push(c);
      return '';
    }
  }
  const decl: string[] = [];
  const dels: string[] = [];
  // one string per chain: `-A NAME rule` lines (10,000 rules are joined once, not concatenated one by one)
  const appends: string[] = [];
  const inserts: string[] = [];
  const xs: string[] = [];
  if (!cur && wantChains.length > 0) decl.push(d.declare(TABLE_MARKER));
  const wanted = new Set(wantChains.map((c) => c.name));
  for (const c of wantChains) {
    if (cur && sameChain(cur, c)) continue;
    decl.push(d.declare(c.name, c.policy));
    if (c.rules.length > 0) appends.push(`-A ${c.name} ${c.rules.join(`\n-A ${c.name} `)}`);
    out.written.push(c.name);
  }
  if (cur) {
    for (const [c, info] of cur.chains) {
      if (info.policy === null && isOwnerChain(c, owner) && !wanted.has(c)) {
        decl.push(d.declare(c, info.userPolicy));
        xs.push(`-X ${c}`);
        out.deleted.push(c);
      }
    }
  }
  // Jumps: keep one of each wanted jump that exists, delete the rest of ours, insert the missing.
  const pending: JumpSpec[] = [...wantJumps];
  if (cur) {
    for (const b of builtinChains(cur)) {
      for (const spec of cur.rules.get(b) ?? []) {
        if (!d.isOwnerJump(spec, owner)) continue;
        const i = pending.findIndex((j) => j.chain === b && j.spec === spec);
        if (i >= 0) pending.splice(i, 1);
        else dels.push(`-D ${b} ${spec}`);
      }
    }
  }
  for (const j of pending) inserts.push(`-I ${j.chain} 1 ${j.spec}`);
  if (decl.length + dels.length + appends.length + inserts.length + xs.length === 0) return '';
  return `${[`*${name}`, ...decl, ...dels, ...appends, ...inserts, ...xs].join('\n')}\n${d.end}`;
}

/**
 * Plans the transition of `owner`'s part of one family from `current` to `want`.
 * `want` with no tables plans the removal of everything the owner has.
 */
export function planFamily(owner: string, want: FamilySpec, current: SavedState): FamilyPlan {
  const d = DIALECTS[want.family];
  const out: FamilyPlan = { family: want.family, batch: '', drop: [], written: [], deleted: [] };
  let batch = '';
  for (const name of d.tables) {
    batch += planTable(d, owner, name, want.tables.find((t) => t.name === name), current.get(name), out);
  }
  out.batch = batch;
  return out;
}
