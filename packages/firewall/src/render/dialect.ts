/**
 * The two restore languages vmhost writes: iptables-restore/ip6tables-restore (`:CHAIN - [0:0]`,
 * a `COMMIT` per table, ownership of a jump by its `vmhost:<owner>` comment) and
 * ebtables-restore (`:CHAIN POLICY`, no `COMMIT`: a table is committed at the next `*table` line or
 * at the end of the input, and ebtables has no comment match, so a jump is the owner's when it
 * targets one of the owner's chains). Pure.
 * @module
 */
import type { TableFamily } from '../model.js';
import { CHAIN_PREFIX } from '../validate.js';
import type { FamilySpec, TableName } from './ruleset.js';

/** The comment that marks a rule outside our chains as the owner's (iptables). */
export function ownerComment(owner: string): string {
  return `vmhost:${owner}`;
}

/**
 * Quotes a string as iptables-save does (xtables_save_string): bare when it consists only of
 * letters, digits, `_` and `-`, else in double quotes.
 */
export function saveString(s: string): string {
  return /^[A-Za-z0-9_-]+$/.test(s) ? s : `"${s.replace(/(["\\'])/g, '\\$1')}"`;
}

/** How one family's restore text is written and its save output read. */
export interface Dialect {
  family: TableFamily;
  /** The tables vmhost writes to, in the order written. */
  tables: readonly TableName[];
  /** The declaration line of a user chain (which, with --noflush, also flushes it). */
  declare(name: string, policy?: string): string;
  /** What ends a table section: `COMMIT\n`, or nothing (ebtables). */
  end: string;
  /** Whether a rule in a built-in chain is `owner`'s jump. */
  isOwnerJump(spec: string, owner: string): boolean;
  /** The built-in chains of each table (ebtables-save prints a policy for user chains too). */
  builtins?: Partial<Record<TableName, readonly string[]>>;
}

const IP: Omit<Dialect, 'family'> = {
  tables: ['filter', 'nat', 'raw'],
  declare: (name) => `:${name} - [0:0]`,
  end: 'COMMIT\n',
  isOwnerJump: (spec, owner) => ` ${spec} `.includes(` --comment ${saveString(ownerComment(owner))} `),
};

/** The dialect of a family. */
export const DIALECTS: Record<TableFamily, Dialect> = {
  4: { ...IP, family: 4 },
  6: { ...IP, family: 6 },
  bridge: {
    family: 'bridge',
    tables: ['nat'],
    declare: (name, policy) => `:${name} ${policy ?? 'RETURN'}`,
    end: '',
    isOwnerJump: (spec, owner) => new RegExp(`(^| )-j ${CHAIN_PREFIX}${owner}-\\S+$`).test(spec),
    builtins: { filter: ['INPUT', 'FORWARD', 'OUTPUT'], nat: ['PREROUTING', 'OUTPUT', 'POSTROUTING'] },
  },
};

/**
 * The restore text (for `--noflush`) that installs `spec` into tables where the owner has nothing
 * yet: chains declared, rules appended, one jump inserted at the top of each built-in chain.
 * Empty string when the family has no rules.
 */
export function restoreText(spec: FamilySpec): string {
  const d = DIALECTS[spec.family];
  const lines: string[] = [];
  for (const t of spec.tables) {
    lines.push(`*${t.name}`);
    for (const c of t.chains) lines.push(d.declare(c.name, c.policy));
    for (const c of t.chains) if (c.rules.length > 0) lines.push(`-A ${c.name} ${c.rules.join(`\n-A ${c.name} `)}`);
    for (const j of t.jumps) lines.push(`-I ${j.chain} 1 ${j.spec}`);
    if (d.end) lines.push(d.end.trimEnd());
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
