/**
 * The field checks the parts of a model's validation share (./validate.ts, ./validate-rules.ts):
 * names, comments, ports, flags and lists, each throwing {@link ValidationError} with the field's
 * dotted path. Internal but for {@link validateOwner}, {@link validateGroup} and the chain name
 * limits, which ./validate.ts exports.
 * @module
 */
import { ValidationError, validateInt } from '@vmhost/net';

/** Longest chain name iptables accepts (XT_EXTENSION_MAXNAMELEN - 1). */
export const CHAIN_NAME_MAX = 28;
/** Prefix of every chain vmhost creates. */
export const CHAIN_PREFIX = 'VMHOST-';
/** Longest owner name: `VMHOST-<owner>-POST` must fit in {@link CHAIN_NAME_MAX}. */
export const OWNER_MAX = CHAIN_NAME_MAX - CHAIN_PREFIX.length - '-POST'.length;

const NAME_RE = /^[A-Za-z0-9_]+$/;
const COMMENT_RE = /^[A-Za-z0-9 _.,:;/+=@()#-]+$/;
const COMMENT_MAX = 200;

/** Whether `v` is a plain object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws for the first key of `obj` that `allowed` does not hold (`field.key`: unknown field). */
export function checkKeys(obj: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ValidationError(field ? `${field}.${k}` : k, obj[k], 'unknown field');
  }
}

/** `v` as a boolean, `dflt` when undefined. */
export function optBool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ValidationError(field, v, 'expected true or false');
  return v;
}

/** `v` as an array, empty when undefined. */
export function list(v: unknown, field: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ValidationError(field, v, 'expected an array');
  return v;
}

/**
 * Validates an owner name: letters, digits and `_`, 1 to {@link OWNER_MAX} characters, so that every
 * private chain name fits.
 * @throws {ValidationError} naming `field`.
 */
export function validateOwner(owner: unknown, field = 'owner'): asserts owner is string {
  if (typeof owner !== 'string' || !NAME_RE.test(owner)) {
    throw new ValidationError(field, owner, 'expected letters, digits and _ only');
  }
  if (owner.length > OWNER_MAX) {
    throw new ValidationError(field, owner, `longer than ${OWNER_MAX} characters: chain VMHOST-${owner}-POST would exceed ${CHAIN_NAME_MAX}`);
  }
}

/**
 * Validates a group name for `owner`: letters, digits and `_`, and `VMHOST-<owner>-<group>-X` must
 * fit in {@link CHAIN_NAME_MAX} characters.
 * @throws {ValidationError} naming `field`.
 */
export function validateGroup(group: unknown, owner: string, field = 'group'): asserts group is string {
  if (typeof group !== 'string' || !NAME_RE.test(group)) {
    throw new ValidationError(field, group, 'expected letters, digits and _ only');
  }
  const chain = `${CHAIN_PREFIX}${owner}-${group}-D`;
  if (chain.length > CHAIN_NAME_MAX) {
    throw new ValidationError(field, group, `too long for owner '${owner}': chain ${chain} would exceed ${CHAIN_NAME_MAX} characters`);
  }
}

/** Whether `v` is a valid comment (see {@link comment}). */
export function isComment(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= COMMENT_MAX && COMMENT_RE.test(v);
}

/** The comment `v` (undefined when absent). */
export function comment(v: unknown, field: string): string | undefined {
  if (v === undefined || isComment(v)) return v;
  throw new ValidationError(field, v, `expected 1-${COMMENT_MAX} characters of letters, digits, space and _-.,:;/+=@()#`);
}

/** A port or a range `[first, last]` as a range. */
export function portSpec(v: unknown, field: string): [number, number] {
  if (typeof v === 'number') {
    validateInt(v, field, 1, 65535);
    return [v, v];
  }
  if (Array.isArray(v) && v.length === 2) {
    validateInt(v[0], `${field}[0]`, 1, 65535);
    validateInt(v[1], `${field}[1]`, 1, 65535);
    if (v[0] > v[1]) throw new ValidationError(field, v, 'reversed range: the first port must not be above the last');
    return [v[0], v[1]];
  }
  throw new ValidationError(field, v, 'expected a port (1-65535) or a range [first, last]');
}

/** Names already found valid in one model (10,000 forwards or rules usually share a few). */
export interface Seen {
  ifNames: Set<string>;
  groups: Set<string>;
}
