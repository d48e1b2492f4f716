/**
 * The IPv6 proxy's admission rule, pure: connections grouped by source ({@link SourceGroups},
 * the biggest holder in O(1)) and {@link admit}, which decides whether a new connection is
 * refused, accepted, or accepted in the place of another one (eviction).
 *
 * The rule, per scope (a route, or the whole proxy):
 * 1. a source at the per-source limit (over all routes) is refused;
 * 2. while neither the route nor the proxy is full, a connection is accepted;
 * 3. when full, a source that already holds as many connections there as the biggest holder is
 *    refused; any other source takes the place of the least recently active connection among
 *    the biggest holders (the first {@link EVICTION_SCAN} of them, longest at that count first).
 *
 * So a flood from one source or a few cannot starve the others: whoever holds the most loses a
 * connection to whoever holds fewer, and a busy connection outlives an idle (or slowly
 * trickling) one of the same holder.
 * @module
 */

/** How many of the biggest holders {@link admit} looks at for the least recently active connection (bounded work per accept). */
export const EVICTION_SCAN = 16;

/** Connections grouped by source; the number of connections of the biggest holder in O(1). */
export class SourceGroups<C> {
  readonly #bySource = new Map<string, Set<C>>();
  /** `#buckets[n]`: the sources holding n connections, in the order they reached n. */
  readonly #buckets: Array<Set<string> | undefined> = [];
  #max = 0;
  #size = 0;

  /** Connections held. */
  get size(): number {
    return this.#size;
  }

  /** Sources holding at least one connection. */
  get sources(): number {
    return this.#bySource.size;
  }

  /** Connections of the biggest holder (0 when empty). */
  get maxCount(): number {
    return this.#max;
  }

  /** Connections held by `source`. */
  count(source: string): number {
    return this.#bySource.get(source)?.size ?? 0;
  }

  /** Adds connection `c` of `source` (no effect when already there). */
  add(source: string, c: C): void {
    let set = this.#bySource.get(source);
    if (!set) this.#bySource.set(source, (set = new Set()));
    if (set.has(c)) return;
    const n = set.size;
    if (n > 0) this.#buckets[n]!.delete(source);
    set.add(c);
    (this.#buckets[n + 1] ??= new Set()).add(source);
    if (n + 1 > this.#max) this.#max = n + 1;
    this.#size++;
  }

  /** Removes connection `c` of `source` (no effect when not there). */
  delete(source: string, c: C): void {
    const set = this.#bySource.get(source);
    if (!set?.delete(c)) return;
    const n = set.size + 1;
    this.#buckets[n]!.delete(source);
    if (n > 1) this.#buckets[n - 1]!.add(source);
    else this.#bySource.delete(source);
    while (this.#max > 0 && !this.#buckets[this.#max]?.size) this.#max--;
    this.#size--;
  }

  /** The biggest holders and their connections, longest at that count first. */
  *top(): Generator<[string, ReadonlySet<C>]> {
    for (const source of this.#buckets[this.#max] ?? []) yield [source, this.#bySource.get(source)!];
  }

  /** Every connection. */
  *all(): Generator<C> {
    for (const set of this.#bySource.values()) yield* set;
  }
}

/** What {@link admit} decides. */
export type Admission<C> =
  | { ok: true; evict?: C; scope?: 'route' | 'total' }
  | { ok: false; reason: 'source' | 'route' | 'total' };

/** The input of {@link admit}. */
export interface AdmitInput<C extends { last: number }> {
  /** The new connection's source. */
  source: string;
  /** Every connection of the proxy. */
  all: SourceGroups<C>;
  /** The connections of the route it arrived on. */
  route: SourceGroups<C>;
  perSource: number;
  routeCap: number;
  totalCap: number;
}

/**
 * Whether a connection from `source` may open, and which connection it replaces when the route
 * (checked first) or the proxy is full. `last` of a connection is when a byte last moved on it
 * (or when it was accepted). See the module comment for the rule.
 */
export function admit<C extends { last: number }>(i: AdmitInput<C>): Admission<C> {
  if (i.all.count(i.source) >= i.perSource) return { ok: false, reason: 'source' };
  const scope: 'route' | 'total' | undefined = i.route.size >= i.routeCap ? 'route' : i.all.size >= i.totalCap ? 'total' : undefined;
  if (scope === undefined) return { ok: true };
  const g = scope === 'route' ? i.route : i.all;
  if (g.count(i.source) >= g.maxCount) return { ok: false, reason: scope };
  let victim: C | undefined;
  let seen = 0;
  for (const [, conns] of g.top()) {
    for (const c of conns) if (victim === undefined || c.last < victim.last) victim = c;
    if (++seen >= EVICTION_SCAN) break;
  }
  return victim === undefined ? { ok: false, reason: scope } : { ok: true, evict: victim, scope };
}
