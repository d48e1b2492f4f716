/**
 * The registry of qdisc kinds: one file per kind, one line here. Kinds not listed are listed
 * with their options kept raw, and cannot be created through the typed API. Internal.
 * @module
 */
import { fifo } from './fifo.js';
import { htb } from './htb.js';
import { ingress } from './ingress.js';
import type { TcKind } from './kind.js';
import { tbf } from './tbf.js';

export type { TcKind } from './kind.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const KINDS: readonly TcKind<any>[] = [htb, tbf, ingress, fifo];

const byName = new Map(KINDS.flatMap((k) => k.kinds.map((n) => [n, k as TcKind] as const)));

/** The kind of a TCA_KIND value (or a spec's `kind`), or undefined for kinds not typed here. */
export function tcKindOf(kind: string | undefined): TcKind | undefined {
  return kind === undefined ? undefined : byName.get(kind);
}

/** The TCA_KIND values the typed API can create. */
export const TC_KINDS: readonly string[] = KINDS.flatMap((k) => k.kinds);
