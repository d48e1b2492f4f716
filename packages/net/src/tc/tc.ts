/**
 * What qdiscs and classes share: the public {@link Qdisc} / {@link TrafficClass} from a decoded
 * message (stats included) and the checks of `dev`. Pure.
 * @module
 */
import type { TcMessage, TcStats2Attrs } from '../codec/tc.js';
import { ValidationError } from '../errors.js';
import { formatHandle } from './handle.js';
import { tcKindOf } from './kinds/index.js';
import type { Psched } from './rate.js';
import type { Qdisc, TcStats, TrafficClass } from './types.js';

function toStats(s: TcStats2Attrs | undefined): TcStats | null {
  if (!s?.basic && !s?.queue) return null;
  return {
    bytes: Number(s.basic?.bytes ?? 0n),
    packets: s.pkt64 !== undefined ? Number(s.pkt64) : (s.basic?.packets ?? 0),
    drops: s.queue?.drops ?? 0,
    overlimits: s.queue?.overlimits ?? 0,
    requeues: s.queue?.requeues ?? 0,
    qlen: s.queue?.qlen ?? 0,
    backlog: s.queue?.backlog ?? 0,
  };
}

const optionsOf = (m: TcMessage): unknown => (Buffer.isBuffer(m.attrs.options) ? undefined : m.attrs.options);

/** Converts a decoded qdisc message to the public {@link Qdisc}. */
export function toQdisc(m: TcMessage, names: ReadonlyMap<number, string>, ps: Psched): Qdisc {
  const kind = m.attrs.kind ?? '';
  const q: Qdisc = {
    dev: names.get(m.header.index) ?? null,
    index: m.header.index,
    kind,
    handle: m.header.handle === 0 ? '0:' : formatHandle(m.header.handle),
    parent: formatHandle(m.header.parent),
    stats: toStats(m.attrs.stats2),
  };
  const k = tcKindOf(kind);
  if (k) Object.assign(q, k.qdisc.decode(optionsOf(m), m.header.handle, ps));
  return q;
}

/** Converts a decoded class message to the public {@link TrafficClass}. */
export function toClass(m: TcMessage, names: ReadonlyMap<number, string>, ps: Psched): TrafficClass {
  const kind = m.attrs.kind ?? '';
  const c: TrafficClass = {
    dev: names.get(m.header.index) ?? null,
    index: m.header.index,
    kind,
    classid: formatHandle(m.header.handle),
    parent: formatHandle(m.header.parent),
    leaf: m.header.info === 0 ? null : formatHandle(m.header.info),
    stats: toStats(m.attrs.stats2),
  };
  const k = tcKindOf(kind)?.class;
  if (k) Object.assign(c, k.decode(optionsOf(m), ps));
  return c;
}

/** A spec must be an object with a string `kind` the typed API knows. */
export function checkKind(spec: unknown, what: string, known: readonly string[]): asserts spec is { kind: string; dev: string } {
  if (spec === null || typeof spec !== 'object') throw new ValidationError(what, spec, 'expected an object');
  const kind = (spec as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !known.includes(kind)) throw new ValidationError('kind', kind, `expected one of ${known.join(', ')}`);
}
