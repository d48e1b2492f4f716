/**
 * Whether two port forwards of a model take the same public port, and which pair to report
 * (validate.ts refuses such a model). Pure.
 * @module
 */
import type { NormalizedForward } from './validate.js';

function overlaps(a: NormalizedForward, b: NormalizedForward): boolean {
  if (a.family !== b.family || a.protocol !== b.protocol) return false;
  if (a.port[1] < b.port[0] || b.port[1] < a.port[0]) return false;
  if (a.destination !== undefined && b.destination !== undefined && a.destination !== b.destination) return false;
  if (a.inInterface !== undefined && b.inInterface !== undefined && a.inInterface !== b.inInterface) return false;
  return true;
}

/**
 * Whether two forwards take the same public port (same family and protocol, overlapping ports,
 * and destinations and input interfaces equal or unset on one side). O(n log n): forwards are
 * swept in port order and, per class of what they would clash with, only the highest port end so
 * far is kept (a forward clashes with an earlier one exactly when such an end reaches its start).
 */
function anyClash(forwards: readonly NormalizedForward[]): boolean {
  const sorted = [...forwards].sort((x, y) => x.port[0] - y.port[0]);
  // highest end per key: `k|dest|if` (exact), `d|dest` (any if), `i|if` (any dest), `a` (all); '' = unset
  const maxEnd = new Map<string, number>();
  const reaches = (key: string, start: number): boolean => (maxEnd.get(key) ?? 0) >= start;
  const raise = (key: string, end: number): void => {
    if ((maxEnd.get(key) ?? 0) < end) maxEnd.set(key, end);
  };
  for (const f of sorted) {
    const c = `${f.family}${f.protocol}`;
    const d = f.destination ?? '';
    const i = f.inInterface ?? '';
    const start = f.port[0];
    let hit: boolean;
    if (d !== '' && i !== '') {
      hit = reaches(`${c}k|${d}|${i}`, start) || reaches(`${c}k|${d}|`, start) || reaches(`${c}k||${i}`, start) || reaches(`${c}k||`, start);
    } else if (d !== '') {
      hit = reaches(`${c}d|${d}`, start) || reaches(`${c}d|`, start);
    } else if (i !== '') {
      hit = reaches(`${c}i|${i}`, start) || reaches(`${c}i|`, start);
    } else {
      hit = reaches(`${c}a`, start);
    }
    if (hit) return true;
    const end = f.port[1];
    raise(`${c}k|${d}|${i}`, end);
    raise(`${c}d|${d}`, end);
    raise(`${c}i|${i}`, end);
    raise(`${c}a`, end);
  }
  return false;
}

/**
 * The clash to report: of all clashing pairs, the one whose later forward comes first in the
 * model. Only run when {@link anyClash} found one (this search may be quadratic).
 */
export function findClash(forwards: readonly NormalizedForward[]): [NormalizedForward, NormalizedForward] | undefined {
  if (!anyClash(forwards)) return undefined;
  let clash: [NormalizedForward, NormalizedForward] | undefined;
  const sorted = [...forwards].sort((x, y) => x.port[0] - y.port[0] || x.index - y.index);
  let active: NormalizedForward[] = [];
  for (const f of sorted) {
    active = active.filter((a) => a.port[1] >= f.port[0]);
    for (const a of active) {
      if (!overlaps(a, f)) continue;
      const [first, second] = a.index < f.index ? [a, f] : [f, a];
      if (!clash || second.index < clash[1].index) clash = [first, second];
    }
    active.push(f);
  }
  return clash;
}
