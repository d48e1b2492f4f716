/**
 * Validation of a {@link FirewallModel}: every check throws {@link ValidationError} naming the field
 * by its dotted path (`portForwards[2].toPort`) and the value, before anything is rendered or
 * applied. The result is a normalized model (canonical addresses, resolved defaults) that the
 * renderer works from. Pure.
 * @module
 */
import { isIP } from 'node:net';
import { ValidationError, ip, parseCidr, validateIfName, validateInt, validateIp } from '@vmhost/net';
import type { Action, CtState, Family, FirewallModel } from './model.js';
import { findClash } from './validate-clash.js';
import { checkKeys, comment, isObject, list, optBool, portSpec, validateGroup, validateOwner, type Seen } from './validate-fields.js';
import { validateRule, type RuleSeen } from './validate-rules.js';
import { validatePorts, type NormalizedPort } from './validate-ports.js';

/** `ADDR[/LEN]` (valid) as iptables-save prints a `-s`/`-d` match: the masked network, `/LEN`. */
const canonicalPrefix = (text: string): string => ip.iptablesText(text);
/** A single address (valid) as iptables-save prints it (inet_ntop's text). */
const canonicalAddress = (text: string): string => ip.formatAddressInetNtop(ip.parseAddress(text));
/** The family of a valid address or prefix text. */
const familyOf = (text: string): Family => ip.toPrefix(text).family;

export type { NormalizedPort } from './validate-ports.js';
export { CHAIN_NAME_MAX, CHAIN_PREFIX, OWNER_MAX, validateGroup, validateOwner } from './validate-fields.js';

/** A filter rule after validation. */
export interface NormalizedRule {
  families: Family[];
  inInterface?: string;
  outInterface?: string;
  source?: string;
  destination?: string;
  protocol?: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp';
  port?: [number, number];
  sourcePort?: [number, number];
  state?: CtState[];
  action: Action;
  comment?: string;
  /** `forward` rules only: the group whose FORWARD chain holds the rule. */
  group?: string;
}

/** A port forward after validation. */
export interface NormalizedForward {
  /** Position in `portForwards`. */
  index: number;
  family: Family;
  protocol: 'tcp' | 'udp';
  port: [number, number];
  to: string;
  toPort: number;
  inInterface?: string;
  /** Canonical `ADDR/32` or `ADDR/128`. */
  destination?: string;
  hairpin: boolean;
  fromHost: boolean;
  localhost: boolean;
  group?: string;
  comment?: string;
}

/** A masquerade entry after validation. */
export interface NormalizedMasquerade {
  family: Family;
  source: string;
  outInterface: string;
  toSource?: string;
  comment?: string;
}

/** The LAN after validation. */
export interface NormalizedLan {
  interface: string;
  subnets: Record<Family, string[]>;
  bridgeLocal: boolean;
  isolate: boolean;
  dhcp: boolean;
  dns: boolean;
}

/** A model after validation: what the renderer consumes. */
export interface NormalizedModel {
  owner: string;
  lan?: NormalizedLan;
  masquerade: NormalizedMasquerade[];
  forward: NormalizedRule[];
  input: NormalizedRule[];
  output: NormalizedRule[];
  portForwards: NormalizedForward[];
  allowIcmpv6: boolean;
  established: boolean;
  /** The VM ports, in model order (those with `isolation: false` included). */
  ports: NormalizedPort[];
}

function prefix(v: unknown, field: string, family?: Family): string {
  parseCidr(v, field, family ? { family, defaultFull: true } : { defaultFull: true });
  return canonicalPrefix(v as string);
}

function lan(v: unknown): NormalizedLan {
  if (!isObject(v)) throw new ValidationError('lan', v, 'expected { interface, subnets }');
  checkKeys(v, 'lan', ['interface', 'subnets', 'bridgeLocal', 'isolate', 'dhcp', 'dns']);
  validateIfName(v.interface, 'lan.interface');
  const subnets: Record<Family, string[]> = { 4: [], 6: [] };
  const raw = list(v.subnets, 'lan.subnets');
  if (raw.length === 0) throw new ValidationError('lan.subnets', v.subnets, 'expected at least one subnet');
  raw.forEach((s, i) => {
    parseCidr(s, `lan.subnets[${i}]`);
    const p = canonicalPrefix(s as string);
    const list = subnets[familyOf(p)];
    if (!list.includes(p)) list.push(p);
  });
  return {
    interface: v.interface,
    subnets,
    bridgeLocal: optBool(v.bridgeLocal, 'lan.bridgeLocal', true),
    isolate: optBool(v.isolate, 'lan.isolate', true),
    dhcp: optBool(v.dhcp, 'lan.dhcp', false),
    dns: optBool(v.dns, 'lan.dns', false),
  };
}

const FORWARD_KEYS: ReadonlySet<string> = new Set(['protocol', 'port', 'to', 'toPort', 'inInterface', 'destination', 'hairpin', 'fromHost', 'localhost', 'group', 'comment']);

/** `portForwards[i]` or `portForwards[i].key`, built only when an error needs it. */
function pfField(i: number, key?: string): string {
  return key === undefined ? `portForwards[${i}]` : `portForwards[${i}].${key}`;
}

function pfFlag(v: Record<string, unknown>, i: number, key: 'hairpin' | 'fromHost' | 'localhost', dflt: boolean): boolean {
  return v[key] === undefined ? dflt : optBool(v[key], pfField(i, key), dflt);
}

/**
 * One port forward. Called 10,000 times for a big model: the common valid case builds no field
 * names and no intermediate objects; every failure still names its field by the dotted path.
 */
function forwardEntry(v: unknown, i: number, owner: string, lanN: NormalizedLan | undefined, seen: Seen): NormalizedForward {
  if (!isObject(v)) throw new ValidationError(pfField(i), v, 'expected a port forward object');
  for (const k of Object.keys(v)) if (!FORWARD_KEYS.has(k)) throw new ValidationError(pfField(i, k), v[k], 'unknown field');
  if (v.protocol !== 'tcp' && v.protocol !== 'udp') throw new ValidationError(pfField(i, 'protocol'), v.protocol, 'expected tcp or udp');
  const p = v.port;
  const port: [number, number] = typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535 ? [p, p] : portSpec(p, pfField(i, 'port'));
  const ipf = typeof v.to === 'string' ? isIP(v.to) : 0;
  const family: Family = ipf === 4 || ipf === 6 ? ipf : validateIp(v.to, pfField(i, 'to'));
  let toPort = port[0];
  if (v.toPort !== undefined) {
    validateInt(v.toPort, pfField(i, 'toPort'), 1, 65535);
    toPort = v.toPort;
    if (toPort + (port[1] - port[0]) > 65535) {
      throw new ValidationError(pfField(i, 'toPort'), v.toPort, `the range of ${port[1] - port[0] + 1} ports starting here ends above 65535`);
    }
  }
  const out: NormalizedForward = {
    index: i,
    family,
    protocol: v.protocol,
    port,
    to: canonicalAddress(v.to as string),
    toPort,
    hairpin: pfFlag(v, i, 'hairpin', false),
    fromHost: pfFlag(v, i, 'fromHost', true),
    localhost: pfFlag(v, i, 'localhost', false),
  };
  if (v.inInterface !== undefined) {
    if (typeof v.inInterface !== 'string' || !seen.ifNames.has(v.inInterface)) {
      validateIfName(v.inInterface, pfField(i, 'inInterface'));
      seen.ifNames.add(v.inInterface);
    }
    out.inInterface = v.inInterface;
  }
  if (v.destination !== undefined) {
    const f = validateIp(v.destination, pfField(i, 'destination'));
    if (f !== family) {
      throw new ValidationError(pfField(i, 'to'), v.to, `is an IPv${family} target for the IPv${f} destination ${String(v.destination)}`);
    }
    out.destination = canonicalPrefix(v.destination as string);
  }
  if (out.hairpin) {
    if (!lanN) throw new ValidationError(pfField(i, 'hairpin'), v.hairpin, 'hairpin needs lan (its interface and subnets)');
    if (lanN.subnets[family].length === 0) {
      throw new ValidationError(pfField(i, 'hairpin'), v.hairpin, `hairpin needs an IPv${family} subnet in lan.subnets`);
    }
  }
  if (out.localhost && family === 6) {
    throw new ValidationError(pfField(i, 'localhost'), v.localhost, 'IPv6 has no route_localnet: ::1 cannot be forwarded');
  }
  if (out.localhost && !out.fromHost) {
    throw new ValidationError(pfField(i, 'localhost'), v.localhost, 'localhost needs fromHost');
  }
  if (v.group !== undefined) {
    if (typeof v.group !== 'string' || !seen.groups.has(v.group)) {
      validateGroup(v.group, owner, pfField(i, 'group'));
      seen.groups.add(v.group);
    }
    out.group = v.group;
  }
  if (v.comment !== undefined) {
    const c = comment(v.comment, pfField(i, 'comment'));
    if (c !== undefined) out.comment = c;
  }
  return out;
}

/** The normalized models {@link validateModel} returned (frozen): taken as they are wherever a model is. */
const NORMALIZED = new WeakSet<object>();

/** Freezes `v` and everything in it (a normalized model: plain objects, arrays, strings, numbers). */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) deepFreeze(v[i]);
    else for (const k in v) if (Object.prototype.hasOwnProperty.call(v, k)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/**
 * Checks `model` and returns it normalized. Nothing is touched: call it (or {@link render}, which
 * calls it) to find every input error before applying. The result is frozen, and every function
 * of this package that takes a model ({@link plan}, {@link apply}, {@link render},
 * {@link requiredSysctls}) takes it too without checking it again: validate a model once when it
 * is used several times. Given such a result, returns it.
 * @throws {ValidationError} naming the first bad field by its dotted path.
 */
export function validateModel(model: FirewallModel | NormalizedModel): NormalizedModel {
  if (NORMALIZED.has(model)) return model as NormalizedModel;
  const normalized = deepFreeze(normalize(model as FirewallModel));
  NORMALIZED.add(normalized);
  return normalized;
}

function normalize(model: FirewallModel): NormalizedModel {
  const m = model as unknown;
  if (!isObject(m)) throw new ValidationError('model', m, 'expected a firewall model object');
  checkKeys(m, '', ['owner', 'lan', 'masquerade', 'forward', 'input', 'output', 'portForwards', 'allowIcmpv6', 'established', 'ports']);
  validateOwner(m.owner);
  const owner = m.owner;
  const lanN = m.lan === undefined ? undefined : lan(m.lan);
  const masquerade = list(m.masquerade, 'masquerade').map((e, i): NormalizedMasquerade => {
    const field = `masquerade[${i}]`;
    if (!isObject(e)) throw new ValidationError(field, e, 'expected { source, outInterface }');
    checkKeys(e, field, ['source', 'outInterface', 'toSource', 'comment']);
    const source = prefix(e.source, `${field}.source`);
    const family = familyOf(source);
    validateIfName(e.outInterface, `${field}.outInterface`);
    const out: NormalizedMasquerade = { family, source, outInterface: e.outInterface };
    if (e.toSource !== undefined) {
      validateIp(e.toSource, `${field}.toSource`, family);
      out.toSource = canonicalAddress(e.toSource as string);
    }
    const c = comment(e.comment, `${field}.comment`);
    if (c !== undefined) out.comment = c;
    return out;
  });
  const seen: RuleSeen = { ifNames: new Set(), groups: new Set(), prefixes: new Map() };
  const forward = list(m.forward, 'forward').map((r, i) => validateRule(r, 'forward', i, owner, seen));
  const input = list(m.input, 'input').map((r, i) => validateRule(r, 'input', i, owner, seen));
  const output = list(m.output, 'output').map((r, i) => validateRule(r, 'output', i, owner, seen));
  const portForwards = list(m.portForwards, 'portForwards').map((f, i) => forwardEntry(f, i, owner, lanN, seen));
  const clash = findClash(portForwards);
  if (clash) {
    const [a, b] = clash;
    throw new ValidationError(
      `portForwards[${b.index}].port`,
      (model.portForwards ?? [])[b.index]?.port,
      `the same ${b.protocol} port on the same address as portForwards[${a.index}] (${a.port.join('-')} → ${a.to})`,
    );
  }
  return {
    owner,
    ...(lanN ? { lan: lanN } : {}),
    masquerade,
    forward,
    input,
    output,
    portForwards,
    allowIcmpv6: optBool(m.allowIcmpv6, 'allowIcmpv6', false),
    established: optBool(m.established, 'established', true),
    ports: validatePorts(m.ports, (g, field) => validateGroup(g, owner, field)),
  };
}
