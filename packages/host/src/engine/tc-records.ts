/**
 * The data of the traffic-control records of the state file (qdiscs and tc filters on this host's
 * links), read strictly: exactly these keys, interface names as @vmhost/net takes them, a tbf's
 * rate within the host file's limits, a place and handle vmhost uses. Throws ValidationError
 * naming the field (records.ts reports it at the record's path).
 * @module
 */
import { validateIfName, ValidationError } from '@vmhost/net';
import { MAX_RATE_BPS, MIN_RATE_BPS } from '../spec/schema.js';
import type { QdiscData, TcFilterData } from './entries.js';

type Obj = Record<string, unknown>;

function exactly(v: unknown, field: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ValidationError(field || 'data', v, 'expected an object');
  const o = v as Obj;
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ValidationError(field ? `${field}.${k}` : k, o[k], 'unknown field');
  for (const k of keys) if (!(k in o)) throw new ValidationError(field ? `${field}.${k}` : k, undefined, 'missing');
  return o;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ValidationError(field, v, `expected an integer from ${min} to ${max}`);
  return v;
}

/** A qdisc record's data. */
export function parseQdiscData(v: unknown): QdiscData {
  const o = exactly(v, '', ['dev', 'parent', 'handle', 'qdisc']);
  validateIfName(o.dev, 'dev');
  if (o.parent !== 'root' && o.parent !== 'ingress') throw new ValidationError('parent', o.parent, "expected 'root' or 'ingress'");
  const q = o.qdisc as { kind?: unknown } | null;
  if (o.parent === 'ingress') {
    if (o.handle !== 'ffff:') throw new ValidationError('handle', o.handle, "the ingress qdisc's handle is 'ffff:'");
    exactly(q, 'qdisc', ['kind']);
    if (q!.kind !== 'ingress') throw new ValidationError('qdisc.kind', q!.kind, "expected 'ingress' at the ingress");
    return { dev: o.dev, parent: 'ingress', handle: 'ffff:', qdisc: { kind: 'ingress' } };
  }
  if (typeof o.handle !== 'string' || !/^[1-9a-f][0-9a-f]{0,3}:$/.test(o.handle) || o.handle === 'ffff:') throw new ValidationError('handle', o.handle, "expected a qdisc handle such as '1:'");
  const t = exactly(q, 'qdisc', ['kind', 'rate', 'burst', 'latency']);
  if (t.kind !== 'tbf') throw new ValidationError('qdisc.kind', t.kind, "expected 'tbf' at the root");
  const rate = int(t.rate, 'qdisc.rate', MIN_RATE_BPS, MAX_RATE_BPS);
  const burst = int(t.burst, 'qdisc.burst', 1, 0xffffffff);
  if (typeof t.latency !== 'number' || !(t.latency > 0 && t.latency <= 4294)) throw new ValidationError('qdisc.latency', t.latency, 'expected seconds, more than 0 and at most 4294');
  return { dev: o.dev, parent: 'root', handle: o.handle, qdisc: { kind: 'tbf', rate, burst, latency: t.latency } };
}

/** A tc filter record's data. */
export function parseTcFilterData(v: unknown): TcFilterData {
  const o = exactly(v, '', ['dev', 'parent', 'prio', 'redirect']);
  validateIfName(o.dev, 'dev');
  if (o.parent !== 'ingress') throw new ValidationError('parent', o.parent, "expected 'ingress'");
  const prio = int(o.prio, 'prio', 1, 0xffff);
  validateIfName(o.redirect, 'redirect');
  return { dev: o.dev, parent: 'ingress', prio, redirect: o.redirect };
}
