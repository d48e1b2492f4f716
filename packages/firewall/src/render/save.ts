/**
 * A parser of `iptables-save` output (the state we read back) and the extraction of one owner's
 * part of it, in the same shape the generator produces. Pure.
 * @module
 */
import type { Family } from '../model.js';
import { CHAIN_PREFIX } from '../validate.js';
import { HOOKS, TABLES, ownerComment, saveString, type ChainSpec, type FamilySpec, type JumpSpec, type TableSpec } from './ruleset.js';

/** One table as iptables-save shows it. */
export interface SavedTable {
  name: string;
  /** Chains in the order printed; `policy` is null for user-defined chains. */
  chains: Map<string, { policy: string | null }>;
  /** Rules per chain, each the text after `-A CHAIN `, in order. */
  rules: Map<string, string[]>;
}

/** Every table of one family as iptables-save shows it. */
export type SavedState = Map<string, SavedTable>;

/**
 * Parses iptables-save (or ip6tables-save) output. Comment lines and counters are ignored.
 * @throws {Error} on a line it does not understand (it never guesses).
 */
export function parseSave(text: string): SavedState {
  const state: SavedState = new Map();
  let cur: SavedTable | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      cur = { name: line.slice(1), chains: new Map(), rules: new Map() };
      state.set(cur.name, cur);
    } else if (line === 'COMMIT') {
      cur = undefined;
    } else if (cur && line.startsWith(':')) {
      const m = /^:(\S+) (\S+)/.exec(line);
      if (!m) throw new Error(`iptables-save line ${i + 1}: cannot parse chain line: ${line}`);
      cur.chains.set(m[1] as string, { policy: m[2] === '-' ? null : (m[2] as string) });
      cur.rules.set(m[1] as string, []);
    } else if (cur && line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const chain = sp < 0 ? line.slice(3) : line.slice(3, sp);
      const spec = sp < 0 ? '' : line.slice(sp + 1);
      let list = cur.rules.get(chain);
      if (!list) {
        list = [];
        cur.rules.set(chain, list);
      }
      list.push(spec);
    } else {
      throw new Error(`iptables-save line ${i + 1}: unexpected: ${line}`);
    }
  }
  return state;
}

/** Whether a chain name belongs to `owner` (`VMHOST-<owner>-...`). */
export function isOwnerChain(name: string, owner: string): boolean {
  return name.startsWith(`${CHAIN_PREFIX}${owner}-`);
}

/** Whether a rule in a built-in chain carries `owner`'s ownership comment. */
export function isOwnerJump(spec: string, owner: string): boolean {
  const c = ` --comment ${saveString(ownerComment(owner))} `;
  return ` ${spec} `.includes(c);
}

/** The built-in chains of a saved table (those with a policy). */
export function builtinChains(t: SavedTable): string[] {
  return [...t.chains].filter(([, v]) => v.policy !== null).map(([k]) => k);
}

/** `owner`'s chains and jumps in one saved table, or undefined when it has none there. */
export function ownedTable(t: SavedTable | undefined, owner: string): TableSpec | undefined {
  if (!t) return undefined;
  const chains: ChainSpec[] = [];
  const jumps: JumpSpec[] = [];
  for (const [name, info] of t.chains) {
    if (info.policy === null && isOwnerChain(name, owner)) chains.push({ name, rules: [...(t.rules.get(name) ?? [])] });
  }
  for (const b of builtinChains(t)) {
    for (const spec of t.rules.get(b) ?? []) if (isOwnerJump(spec, owner)) jumps.push({ chain: b, spec });
  }
  if (chains.length === 0 && jumps.length === 0) return undefined;
  return { name: t.name as TableSpec['name'], chains, jumps };
}

/** `owner`'s part of a saved family state, in the generator's shape (used to roll back). */
export function ownedFamily(state: SavedState, owner: string, family: Family): FamilySpec {
  const tables: TableSpec[] = [];
  for (const name of TABLES) {
    const t = ownedTable(state.get(name), owner);
    if (t) tables.push(t);
  }
  return { family, tables };
}

/** Owners that have jumps in a saved state (from the `vmhost:<owner>` comments). */
export function ownersIn(state: SavedState): string[] {
  const owners = new Set<string>();
  for (const name of TABLES) {
    const t = state.get(name);
    if (!t) continue;
    for (const [b] of HOOKS[name as keyof typeof HOOKS]) {
      for (const spec of t.rules.get(b) ?? []) {
        const m = / --comment "vmhost:([A-Za-z0-9_]+)" /.exec(` ${spec} `);
        if (m) owners.add(m[1] as string);
      }
    }
  }
  return [...owners].sort();
}
