/**
 * Validation of a lab declaration, before anything is made: every field is checked and a bad one
 * throws @vmhost/net's `ValidationError` naming it (`links[1].a.name`,
 * `namespaces.server.addresses.eth9`, `routes.client[0].via`).
 * @module
 */
import { parseCidr, parseMac, validateIfName, validateInt, validateIp, ValidationError, type RouteSpec } from '@vmhost/net';
import { LAB_NAME_MAX, type LabBridgeSpec, type LabLinkEnd, type LabLinkSpec, type LabNamespaceSpec, type LabOptions } from './types.js';

/** What the lab knows of one of its namespaces. */
export interface NsState {
  /** The real namespace name. */
  real: string;
  /** Interfaces the lab knows in this namespace (for validation of addresses and masters). */
  devs: Set<string>;
  bridges: Set<string>;
}

/** A validated declaration: what to build. */
export interface LabPlan {
  namespaces: Record<string, LabNamespaceSpec>;
  links: readonly LabLinkSpec[];
  routes: Record<string, readonly RouteSpec[]>;
  /** The new namespaces, by the lab's name (not yet created). */
  pending: Map<string, NsState>;
}

/** Checks a bridge to be made in the namespace `st`. */
export function checkBridge(field: string, name: string, spec: LabBridgeSpec, st: NsState): void {
  validateIfName(name, field);
  if (st.devs.has(name)) throw new ValidationError(field, name, 'interface name already used in this namespace');
  if (spec === null || typeof spec !== 'object') throw new ValidationError(field, spec, 'expected an object');
  if (spec.mac !== undefined) parseMac(spec.mac, `${field}.mac`);
  if (spec.mtu !== undefined) validateInt(spec.mtu, `${field}.mtu`, 68, 65535);
  if (spec.stp !== undefined && typeof spec.stp !== 'boolean') throw new ValidationError(`${field}.stp`, spec.stp, 'expected a boolean');
}

/**
 * Checks a veth link against the namespaces `lookup` knows; returns its ends (namespace state and
 * interface name) for the caller to record once the link is accepted.
 */
export function checkLink(field: string, link: LabLinkSpec, lookup: (name: string) => NsState | undefined): Array<[NsState, string]> {
  if (link === null || typeof link !== 'object') throw new ValidationError(field, link, 'expected { a, b }');
  const ends: Array<[LabLinkEnd, string]> = [
    [link.a, `${field}.a`],
    [link.b, `${field}.b`],
  ];
  const added: Array<[NsState, string]> = [];
  for (const [end, f] of ends) {
    if (end === null || typeof end !== 'object') throw new ValidationError(f, end, 'expected { ns, name }');
    const st = lookup(end.ns);
    if (!st) throw new ValidationError(`${f}.ns`, end.ns, 'no namespace of that name in this lab');
    validateIfName(end.name, `${f}.name`);
    if (st.devs.has(end.name) || added.some(([s, n]) => s === st && n === end.name)) {
      throw new ValidationError(`${f}.name`, end.name, `interface name already used in namespace '${end.ns}'`);
    }
    if (end.mac !== undefined) parseMac(end.mac, `${f}.mac`);
    if (end.mtu !== undefined) validateInt(end.mtu, `${f}.mtu`, 68, 65535);
    if (end.master !== undefined && !st.bridges.has(end.master)) {
      throw new ValidationError(`${f}.master`, end.master, `no bridge of that name in namespace '${end.ns}'`);
    }
    added.push([st, end.name]);
  }
  if (link.addresses !== undefined) {
    if (link.addresses === null || typeof link.addresses !== 'object') throw new ValidationError(`${field}.addresses`, link.addresses, 'expected { a?, b? }');
    for (const side of ['a', 'b'] as const) {
      const list = link.addresses[side];
      if (list === undefined) continue;
      if (!Array.isArray(list)) throw new ValidationError(`${field}.addresses.${side}`, list, 'expected an array of CIDRs');
      list.forEach((c, i) => parseCidr(c, `${field}.addresses.${side}[${i}]`));
    }
  }
  return added;
}

/** Checks a route as Rtnl's `routes.add` takes it. */
export function checkRoute(field: string, r: RouteSpec): void {
  if (r === null || typeof r !== 'object') throw new ValidationError(field, r, 'expected a route such as { to, via }');
  if (r.to !== 'default') parseCidr(r.to, `${field}.to`, { defaultFull: true });
  if (r.via !== undefined) validateIp(r.via, `${field}.via`);
  if (r.dev !== undefined) validateIfName(r.dev, `${field}.dev`);
}

/**
 * Validates a declaration (or an addition to an open lab: `adding`) against the namespaces the
 * lab has (`known`); `realName` gives a new namespace's real name. Returns the plan.
 */
export function validateDeclaration(
  options: Pick<LabOptions, 'namespaces' | 'links' | 'routes'>,
  known: ReadonlyMap<string, NsState>,
  realName: (name: string) => string,
  adding: boolean,
): LabPlan {
  const nsDecl = options.namespaces;
  if (nsDecl === null || typeof nsDecl !== 'object' || Array.isArray(nsDecl)) {
    throw new ValidationError('namespaces', nsDecl, 'expected an object of namespace declarations');
  }
  const pending = new Map<string, NsState>();
  for (const [name, spec] of Object.entries(nsDecl)) {
    const f = `namespaces.${name}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) throw new ValidationError(f, name, 'a lab namespace name is [A-Za-z0-9_-], starting with a letter or digit');
    if (known.has(name)) throw new ValidationError(f, name, 'the lab already has a namespace of that name');
    const real = realName(name);
    if (real.length > LAB_NAME_MAX) throw new ValidationError(f, name, `the namespace name '${real}' would be longer than ${LAB_NAME_MAX}`);
    if (spec === null || typeof spec !== 'object') throw new ValidationError(f, spec, 'expected an object');
    const st: NsState = { real, devs: new Set(['lo']), bridges: new Set() };
    for (const [br, bs] of Object.entries(spec.bridges ?? {})) {
      checkBridge(`${f}.bridges.${br}`, br, bs, st);
      st.devs.add(br);
      st.bridges.add(br);
    }
    if (spec.sysctls !== undefined) {
      for (const [k, v] of Object.entries(spec.sysctls)) {
        if (!k.startsWith('net.')) throw new ValidationError(`${f}.sysctls`, k, "sysctl keys must start with 'net.'");
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
          throw new ValidationError(`${f}.sysctls.${k}`, v, 'expected a string, number or boolean');
        }
      }
    }
    pending.set(name, st);
  }
  if (!adding && pending.size === 0) throw new ValidationError('namespaces', nsDecl, 'declare at least one namespace');
  const links = options.links ?? [];
  if (!Array.isArray(links)) throw new ValidationError('links', links, 'expected an array');
  links.forEach((l, i) => {
    for (const [st, n] of checkLink(`links[${i}]`, l, (n) => pending.get(n) ?? known.get(n))) st.devs.add(n);
  });
  for (const [name, spec] of Object.entries(nsDecl)) {
    const st = pending.get(name)!;
    for (const [dev, list] of Object.entries(spec.addresses ?? {})) {
      const f = `namespaces.${name}.addresses.${dev}`;
      if (!st.devs.has(dev)) throw new ValidationError(f, dev, `no interface of that name in namespace '${name}' (lo, its bridges and link ends)`);
      if (!Array.isArray(list)) throw new ValidationError(f, list, 'expected an array of CIDRs');
      list.forEach((c, i) => parseCidr(c, `${f}[${i}]`));
    }
  }
  const routes = options.routes ?? {};
  if (routes === null || typeof routes !== 'object') throw new ValidationError('routes', routes, 'expected an object of route lists by namespace');
  for (const [name, list] of Object.entries(routes)) {
    const st = pending.get(name);
    if (!st) throw new ValidationError(`routes.${name}`, name, 'no namespace of that name in this lab');
    if (!Array.isArray(list)) throw new ValidationError(`routes.${name}`, list, 'expected an array of routes');
    list.forEach((r: RouteSpec, i) => {
      checkRoute(`routes.${name}[${i}]`, r);
      if (r.dev !== undefined && !st.devs.has(r.dev)) throw new ValidationError(`routes.${name}[${i}].dev`, r.dev, `no interface of that name in namespace '${name}'`);
    });
  }
  return { namespaces: nsDecl, links, routes, pending };
}

/** The MAC and MTU of a bridge or link end, for Rtnl. */
export function macMtu(spec: { mac?: string; mtu?: number }): { mac?: string; mtu?: number } {
  const out: { mac?: string; mtu?: number } = {};
  if (spec.mac !== undefined) out.mac = spec.mac;
  if (spec.mtu !== undefined) out.mtu = spec.mtu;
  return out;
}
