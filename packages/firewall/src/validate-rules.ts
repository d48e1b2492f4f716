/**
 * Validation of a model's filter rules (`forward`, `input`, `output`). A host file of 300 VMs
 * gives ~1,200 forward rules (each VM's published ports on its IPv6 address), checked in every
 * run: the common valid case builds no field names (each failure still names its field by the
 * dotted path), checks each interface, group and address text once per model, and shares the
 * arrays every rule would otherwise repeat (its families, its connection states). Pure.
 * @module
 */
import { ValidationError, ip, parseCidr, validateIfName } from '@vmhost/net';
import type { Action, CtState, Family } from './model.js';
import type { NormalizedRule } from './validate.js';
import { isComment, isObject, comment, portSpec, validateGroup, type Seen } from './validate-fields.js';

/** The connection states in the order a normalized rule lists them. */
const CT_ORDER: readonly CtState[] = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const ACTIONS: readonly Action[] = ['accept', 'drop', 'reject', 'return'];
const RULE_KEYS: ReadonlySet<string> = new Set(['family', 'inInterface', 'outInterface', 'source', 'destination', 'protocol', 'port', 'sourcePort', 'state', 'action', 'comment', 'group']);

/** The chains a model's filter rules go to. */
export type RuleChain = 'input' | 'forward' | 'output';

/** What one model's rules share: names found valid, the canonical text of each address seen. */
export interface RuleSeen extends Seen {
  /** Source or destination text → its family and iptables text. */
  prefixes: Map<string, { family: Family; text: string }>;
}

/** The families of a rule: frozen and shared, as a normalized model is frozen as a whole. */
const FAMILIES: Readonly<Record<'4' | '6' | 'both', Family[]>> = {
  4: Object.freeze([4]) as Family[],
  6: Object.freeze([6]) as Family[],
  both: Object.freeze([4, 6]) as Family[],
};

/** The frozen, shared list of the states in `mask` (bit i: CT_ORDER[i]), in CT_ORDER's order. */
const stateLists = new Map<number, CtState[]>();
function statesOf(mask: number): CtState[] {
  let s = stateLists.get(mask);
  if (s === undefined) {
    s = Object.freeze(CT_ORDER.filter((_, k) => (mask & (1 << k)) !== 0)) as CtState[];
    stateLists.set(mask, s);
  }
  return s;
}

/** `chain[i]` or `chain[i].key`, built only when an error needs it. */
function ruleField(chain: RuleChain, i: number, key?: string): string {
  return key === undefined ? `${chain}[${i}]` : `${chain}[${i}].${key}`;
}

/** The family and iptables text of rule `i`'s `key` (a prefix, or an address as a host prefix). */
function rulePrefix(v: unknown, chain: RuleChain, i: number, key: 'source' | 'destination', fam: Family | undefined, seen: RuleSeen): { family: Family; text: string } {
  const hit = typeof v === 'string' ? seen.prefixes.get(v) : undefined;
  if (hit !== undefined && (fam === undefined || hit.family === fam)) return hit;
  // the long way: a text not seen yet, or one of another family than the rule's (for the error)
  const parsed = parseCidr(v, ruleField(chain, i, key), fam ? { family: fam, defaultFull: true } : { defaultFull: true });
  const out = { family: parsed.family, text: ip.iptablesText(parsed) };
  seen.prefixes.set(v as string, out);
  return out;
}

/**
 * Validates rule `i` of `chain` (`owner`: the model's, for its group) and returns it normalized.
 * @throws {ValidationError} naming the first bad field, e.g. `forward[3].port`.
 */
export function validateRule(v: unknown, chain: RuleChain, i: number, owner: string, seen: RuleSeen): NormalizedRule {
  if (!isObject(v)) throw new ValidationError(ruleField(chain, i), v, 'expected a rule object');
  for (const k of Object.keys(v)) if (!RULE_KEYS.has(k)) throw new ValidationError(ruleField(chain, i, k), v[k], 'unknown field');
  if (!ACTIONS.includes(v.action as Action)) throw new ValidationError(ruleField(chain, i, 'action'), v.action, `expected one of ${ACTIONS.join(', ')}`);
  const out: NormalizedRule = { families: FAMILIES.both, action: v.action as Action };
  let fam: Family | undefined;
  if (v.family !== undefined) {
    if (v.family !== 4 && v.family !== 6) throw new ValidationError(ruleField(chain, i, 'family'), v.family, 'expected 4 or 6');
    fam = v.family;
  }
  let sourceFamily: Family | undefined;
  if (v.source !== undefined) {
    const p = rulePrefix(v.source, chain, i, 'source', fam, seen);
    fam = sourceFamily = p.family;
    out.source = p.text;
  }
  if (v.destination !== undefined) {
    const p = rulePrefix(v.destination, chain, i, 'destination', fam, seen);
    fam = p.family;
    out.destination = p.text;
  }
  if (out.source && out.destination && sourceFamily !== fam) {
    throw new ValidationError(ruleField(chain, i, 'destination'), v.destination, 'source and destination are of different families');
  }
  for (const key of ['inInterface', 'outInterface'] as const) {
    const name = v[key];
    if (name !== undefined && (typeof name !== 'string' || !seen.ifNames.has(name))) {
      validateIfName(name, ruleField(chain, i, key));
      seen.ifNames.add(name);
    }
  }
  if (v.inInterface !== undefined) {
    if (chain === 'output') throw new ValidationError(ruleField(chain, i, 'inInterface'), v.inInterface, 'output rules have no input interface');
    out.inInterface = v.inInterface as string;
  }
  if (v.outInterface !== undefined) {
    if (chain === 'input') throw new ValidationError(ruleField(chain, i, 'outInterface'), v.outInterface, 'input rules have no output interface');
    out.outInterface = v.outInterface as string;
  }
  if (v.protocol !== undefined) {
    const p = v.protocol;
    if (p !== 'tcp' && p !== 'udp' && p !== 'icmp' && p !== 'ipv6-icmp') {
      throw new ValidationError(ruleField(chain, i, 'protocol'), p, 'expected tcp, udp, icmp or ipv6-icmp');
    }
    const pf: Family | undefined = p === 'icmp' ? 4 : p === 'ipv6-icmp' ? 6 : undefined;
    if (pf !== undefined) {
      if (fam !== undefined && fam !== pf) throw new ValidationError(ruleField(chain, i, 'protocol'), p, `is an IPv${pf} protocol in an IPv${fam} rule`);
      fam = pf;
    }
    out.protocol = p;
  }
  for (const key of ['port', 'sourcePort'] as const) {
    const p = v[key];
    if (p === undefined) continue;
    if (out.protocol !== 'tcp' && out.protocol !== 'udp') {
      throw new ValidationError(ruleField(chain, i, key), p, 'ports need protocol tcp or udp');
    }
    out[key] = typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535 ? [p, p] : portSpec(p, ruleField(chain, i, key));
  }
  if (v.state !== undefined) {
    const states = v.state;
    if (!Array.isArray(states)) throw new ValidationError(ruleField(chain, i, 'state'), states, 'expected an array');
    if (states.length === 0) throw new ValidationError(ruleField(chain, i, 'state'), states, 'expected at least one state');
    let mask = 0;
    for (let k = 0; k < states.length; k++) {
      const at = CT_ORDER.indexOf(states[k] as CtState);
      if (at < 0) throw new ValidationError(`${ruleField(chain, i, 'state')}[${k}]`, states[k], `expected one of ${CT_ORDER.join(', ')}`);
      mask |= 1 << at;
    }
    out.state = statesOf(mask);
  }
  if (v.comment !== undefined) out.comment = isComment(v.comment) ? v.comment : comment(v.comment, ruleField(chain, i, 'comment'));
  if (v.group !== undefined) {
    if (chain !== 'forward') throw new ValidationError(ruleField(chain, i, 'group'), v.group, 'only forward rules belong to a group');
    if (typeof v.group !== 'string' || !seen.groups.has(v.group)) {
      validateGroup(v.group, owner, ruleField(chain, i, 'group'));
      seen.groups.add(v.group);
    }
    out.group = v.group;
  }
  out.families = fam === undefined ? FAMILIES.both : FAMILIES[fam];
  return out;
}
