/**
 * A parser of `iptables-save` and `ebtables-save` output (the state we read back) and the
 * extraction of one owner's part of it, in the same shape the generator produces. Pure.
 * @module
 */
import type { TableFamily } from '../model.js';
import { CHAIN_PREFIX } from '../validate.js';
import { DIALECTS } from './dialect.js';
import { HOOKS, TABLES, type ChainSpec, type FamilySpec, type JumpSpec, type TableSpec } from './ruleset.js';

/** A chain as a save output shows it. */
export interface SavedChain {
  /** The policy of a built-in chain; null for a user-defined chain. */
  policy: string | null;
  /** ebtables only: the policy of a user-defined chain (`RETURN`, `DROP`, `ACCEPT`). */
  userPolicy?: string;
}

/** One table as iptables-save (or ebtables-save) shows it. */
export interface SavedTable {
  name: string;
  /** Chains in the order printed. */
  chains: Map<string, SavedChain>;
  /** Rules per chain, each the text after `-A CHAIN `, in order. */
  rules: Map<string, string[]>;
}

/** Every table of one family as iptables-save shows it. */
export type SavedState = Map<string, SavedTable>;

/**
 * Parses iptables-save (or ip6tables-save) output; with `family` `'bridge'`, ebtables-save output
 * (where user-defined chains have a policy too). Comment lines and counters are ignored.
 * @throws {Error} on a line it does not understand (it never guesses).
 */
export function parseSave(text: string, family: TableFamily = 4): SavedState {
  const builtins = DIALECTS[family].builtins;
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
      const [, name, policy] = m as unknown as [string, string, string];
      if (!builtins) cur.chains.set(name, { policy: policy === '-' ? null : policy });
      else if ((builtins[cur.name as keyof typeof builtins] ?? []).includes(name)) cur.chains.set(name, { policy });
      else cur.chains.set(name, { policy: null, userPolicy: policy });
      cur.rules.set(name, []);
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

/**
 * Whether a rule in a built-in chain is `owner`'s jump: it carries the ownership comment
 * (iptables), or targets one of the owner's chains (ebtables, which has no comments).
 */
export function isOwnerJump(spec: string, owner: string, family: TableFamily = 4): boolean {
  return DIALECTS[family].isOwnerJump(spec, owner);
}

/** The built-in chains of a saved table (those with a policy). */
export function builtinChains(t: SavedTable): string[] {
  return [...t.chains].filter(([, v]) => v.policy !== null).map(([k]) => k);
}

/** `owner`'s chains and jumps in one saved table, or undefined when it has none there. */
export function ownedTable(t: SavedTable | undefined, owner: string, family: TableFamily = 4): TableSpec | undefined {
  if (!t) return undefined;
  const chains: ChainSpec[] = [];
  const jumps: JumpSpec[] = [];
  for (const [name, info] of t.chains) {
    if (info.policy !== null || !isOwnerChain(name, owner)) continue;
    const c: ChainSpec = { name, rules: [...(t.rules.get(name) ?? [])] };
    if (info.userPolicy !== undefined) c.policy = info.userPolicy;
    chains.push(c);
  }
  for (const b of builtinChains(t)) {
    for (const spec of t.rules.get(b) ?? []) if (isOwnerJump(spec, owner, family)) jumps.push({ chain: b, spec });
  }
  if (chains.length === 0 && jumps.length === 0) return undefined;
  return { name: t.name as TableSpec['name'], chains, jumps };
}

/** `owner`'s part of a saved family state, in the generator's shape (used to roll back). */
export function ownedFamily(state: SavedState, owner: string, family: TableFamily): FamilySpec {
  const tables: TableSpec[] = [];
  for (const name of DIALECTS[family].tables) {
    const t = ownedTable(state.get(name), owner, family);
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
