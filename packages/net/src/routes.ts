/**
 * Routes: add, replace, delete, list (RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE).
 * @module
 */
import * as C from './codec/constants.js';
import { pick } from './codec/attrs.js';
import { decodeRouteAt, encodeRouteMessage, routeSchema, type RouteAttrs, type RouteMessage } from './codec/route.js';
import type { RtnlContext } from './context.js';
import { ValidationError } from './errors.js';
import { scopeName, scopeNumber } from './addresses.js';
import type { Route, RouteFilter, RouteSpec, RouteTable, RouteType } from './types.js';
import { parsePrefix } from './ip/prefix.js';
import { validateIfName, validateInt, validateIp } from './validate.js';

const TYPES: Record<RouteType, number> = {
  unicast: C.RTN_UNICAST, local: C.RTN_LOCAL, broadcast: C.RTN_BROADCAST, anycast: C.RTN_ANYCAST, multicast: C.RTN_MULTICAST,
  blackhole: C.RTN_BLACKHOLE, unreachable: C.RTN_UNREACHABLE, prohibit: C.RTN_PROHIBIT, throw: C.RTN_THROW, nat: C.RTN_NAT,
};
const PROTOCOLS: Record<number, string> = {
  0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 10: 'mrt', 11: 'zebra', 12: 'bird',
  13: 'dnrouted', 14: 'xorp', 15: 'ntk', 16: 'dhcp', 17: 'mrouted', 18: 'keepalived', 42: 'babel', 186: 'bgp', 187: 'isis', 188: 'ospf', 189: 'rip', 192: 'eigrp',
};

function tableNumber(t: RouteTable, field: string): number {
  if (t === 'main') return C.RT_TABLE_MAIN;
  if (t === 'local') return C.RT_TABLE_LOCAL;
  if (t === 'default') return C.RT_TABLE_DEFAULT;
  validateInt(t, field, 1, 0xffffffff);
  return t;
}

/** The RTA_* attributes {@link toRoute} reads: what a list decodes (lean, nothing kept raw). */
const viewSchema = pick(routeSchema, ['dst', 'table', 'gateway', 'oif', 'priority', 'prefsrc', 'metrics']);

/** Decodes a route message payload for {@link toRoute} (the same input as the full decode gives it). */
export function decodeRouteView(payload: Buffer): RouteMessage {
  return decodeRouteAt(payload, viewSchema, true);
}

/** Converts a decoded route message to the public {@link Route}. */
export function toRoute(m: RouteMessage, names?: ReadonlyMap<number, string>): Route {
  const a = m.attrs;
  const h = m.header;
  const family = h.family === C.AF_INET6 ? 6 : 4;
  const type = (Object.keys(TYPES) as RouteType[]).find((k) => TYPES[k] === h.type) ?? h.type;
  return {
    family,
    to: h.dstLength === 0 && a.dst === undefined ? 'default' : `${a.dst ?? (family === 6 ? '::' : '0.0.0.0')}/${h.dstLength}`,
    dstLength: h.dstLength,
    table: a.table ?? h.table,
    type,
    protocol: PROTOCOLS[h.protocol] ?? String(h.protocol),
    scope: scopeName(h.scope),
    via: a.gateway ?? null,
    dev: a.oif !== undefined ? (names?.get(a.oif) ?? null) : null,
    devIndex: a.oif ?? null,
    metric: a.priority ?? null,
    src: a.prefsrc ?? null,
    mtu: a.metrics?.mtu ?? null,
    flags: { onlink: !!(h.flags & C.RTNH_F_ONLINK), linkdown: !!(h.flags & C.RTNH_F_LINKDOWN), dead: !!(h.flags & C.RTNH_F_DEAD) },
  };
}

/** Makes the Routes of a handle (its constructor is private: not part of the API). Internal. */
export let newRoutes: (ctx: RtnlContext) => Routes;

/** Routes of one {@link Rtnl} handle's namespace. */
export class Routes {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newRoutes = (ctx) => new Routes(ctx);
  }

  /**
   * Adds a route. Defaults as `ip route add`: table main, protocol boot, scope link for a
   * unicast route without a gateway (universe otherwise), host scope for local routes.
   * @throws {ValidationError} bad input. {@link NetlinkError} e.g. `EEXIST`, `ENETUNREACH` (gateway unreachable).
   */
  async add(spec: RouteSpec): Promise<void> {
    const { payload, op } = await this.build('routes.add', spec, false);
    await this.ctx.request(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
  }

  /** Adds the route or replaces the one with the same destination, table, metric (and tos). */
  async replace(spec: RouteSpec): Promise<void> {
    const { payload, op } = await this.build('routes.replace', spec, false);
    await this.ctx.request(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_REPLACE, payload, op);
  }

  /**
   * Deletes the route matching `spec` (the fields given must match).
   * @throws {NetlinkError} `ESRCH` when there is no such route.
   */
  async delete(spec: RouteSpec): Promise<void> {
    const { payload, op } = await this.build('routes.delete', spec, true);
    await this.ctx.request(C.RTM_DELROUTE, 0, payload, op);
  }

  private async build(what: string, spec: RouteSpec, del: boolean): Promise<{ payload: Buffer; op: string }> {
    if (spec === null || typeof spec !== 'object') throw new ValidationError('route', spec, 'expected an object');
    if (spec.family !== undefined && spec.family !== 4 && spec.family !== 6) throw new ValidationError('family', spec.family, 'expected 4 or 6');
    let family: 4 | 6 | undefined = spec.family;
    const viaFam = spec.via !== undefined ? validateIp(spec.via, 'via') : undefined;
    const srcFam = spec.src !== undefined ? validateIp(spec.src, 'src') : undefined;
    let dst: string | undefined;
    let dstLength = 0;
    if (spec.to === 'default') {
      family ??= viaFam ?? srcFam ?? 4;
    } else {
      const c = parsePrefix(spec.to, { field: 'to', bare: true, network: true, ...(family ? { family } : {}) });
      family = c.family;
      dst = c.address;
      dstLength = c.prefixLength;
    }
    if (viaFam !== undefined && viaFam !== family) throw new ValidationError('via', spec.via, `expected an IPv${family} address like the destination`);
    if (srcFam !== undefined && srcFam !== family) throw new ValidationError('src', spec.src, `expected an IPv${family} address like the destination`);
    if (spec.dev !== undefined) validateIfName(spec.dev, 'dev');
    if (spec.metric !== undefined) validateInt(spec.metric, 'metric', 0, 0xffffffff);
    if (spec.mtu !== undefined) validateInt(spec.mtu, 'mtu', 68, 65535);
    if (spec.type !== undefined && !Object.prototype.hasOwnProperty.call(TYPES, spec.type)) {
      throw new ValidationError('type', spec.type, `expected one of ${Object.keys(TYPES).join(', ')}`);
    }
    if (spec.onlink !== undefined && typeof spec.onlink !== 'boolean') throw new ValidationError('onlink', spec.onlink, 'expected true or false');
    const table = spec.table === undefined ? C.RT_TABLE_MAIN : tableNumber(spec.table, 'table');
    let protocol = del ? C.RTPROT_UNSPEC : C.RTPROT_BOOT;
    if (spec.protocol !== undefined) {
      if (spec.protocol === 'boot') protocol = C.RTPROT_BOOT;
      else if (spec.protocol === 'static') protocol = C.RTPROT_STATIC;
      else if (spec.protocol === 'kernel') protocol = C.RTPROT_KERNEL;
      else {
        validateInt(spec.protocol, 'protocol', 0, 255);
        protocol = spec.protocol;
      }
    }
    const type = spec.type !== undefined ? TYPES[spec.type] : del ? C.RTN_UNSPEC : C.RTN_UNICAST;
    let scope: number;
    if (spec.scope !== undefined) scope = scopeNumber(spec.scope, 'scope');
    else if (del) scope = C.RT_SCOPE_NOWHERE;
    else if (type === C.RTN_LOCAL || type === C.RTN_NAT) scope = C.RT_SCOPE_HOST;
    else if (type === C.RTN_BROADCAST || type === C.RTN_MULTICAST || type === C.RTN_ANYCAST) scope = C.RT_SCOPE_LINK;
    else if ((type === C.RTN_UNICAST || type === C.RTN_UNSPEC) && spec.via === undefined) scope = C.RT_SCOPE_LINK;
    else scope = C.RT_SCOPE_UNIVERSE;
    const op = `${what} ${spec.to}`;
    const attrs: RouteAttrs = {};
    if (dst !== undefined) attrs.dst = dst;
    if (spec.via !== undefined) attrs.gateway = spec.via;
    if (spec.dev !== undefined) attrs.oif = await this.ctx.linkIndex(spec.dev, 'dev', op);
    if (spec.metric !== undefined) attrs.priority = spec.metric;
    if (spec.src !== undefined) attrs.prefsrc = spec.src;
    if (spec.mtu !== undefined) attrs.metrics = { mtu: spec.mtu };
    if (table > 255) attrs.table = table;
    const payload = encodeRouteMessage({
      header: {
        family: family === 6 ? C.AF_INET6 : C.AF_INET,
        dstLength,
        table: table > 255 ? C.RT_TABLE_UNSPEC : table,
        protocol,
        scope,
        type,
        flags: spec.onlink ? C.RTNH_F_ONLINK : 0,
      },
      attrs,
    });
    return { payload, op };
  }

  /**
   * Routes of a table (default 'main'; 'all' for every table), without cached clones. `dev` is the
   * name the device has when the dumps have been read (looked up by index).
   */
  async list(filter: RouteFilter = {}): Promise<Route[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected an object');
    if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) throw new ValidationError('filter.family', filter.family, 'expected 4 or 6');
    const table = filter.table === 'all' ? undefined : tableNumber(filter.table ?? 'main', 'filter.table');
    if (filter.type !== undefined && !Object.prototype.hasOwnProperty.call(TYPES, filter.type)) throw new ValidationError('filter.type', filter.type, 'unknown route type');
    const op = 'routes.list';
    const devIndex = filter.dev === undefined ? undefined : await this.ctx.linkIndex(filter.dev, 'filter.dev', op);
    const families = filter.family === 6 ? [C.AF_INET6] : filter.family === 4 ? [C.AF_INET] : [C.AF_INET, C.AF_INET6];
    const out: Route[] = [];
    for (const family of families) {
      const msgs = await this.ctx.request(C.RTM_GETROUTE, C.NLM_F_DUMP, encodeRouteMessage({ header: { family }, attrs: {} }), op);
      for (const m of msgs) {
        if (m.type !== C.RTM_NEWROUTE) continue;
        const d = decodeRouteView(m.payload);
        if (d.header.flags & C.RTM_F_CLONED) continue;
        if (table !== undefined && (d.attrs.table ?? d.header.table) !== table) continue; // Route.table
        const r = toRoute(d);
        if (devIndex !== undefined && r.devIndex !== devIndex) continue;
        if (filter.type !== undefined && r.type !== filter.type) continue;
        out.push(r);
      }
    }
    const indices: number[] = [];
    for (const r of out) if (r.devIndex !== null) indices.push(r.devIndex);
    const names = this.ctx.namesOf(indices);
    for (const r of out) if (r.devIndex !== null) r.dev = names.get(r.devIndex) ?? null;
    return out;
  }
}

