/**
 * Routes: add, replace, delete, list (RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE).
 * @module
 */
import * as C from './codec/constants.js';
import { align4, attrLength, attrType, CodecError, rd16, rd32, u32 } from './codec/attrs.js';
import { encodeRouteMessage, RTMSG_LEN, type RouteAttrs } from './codec/route.js';
import { formatAddressAt } from './ip/address.js';
import type { RtnlContext } from './context.js';
import { ValidationError } from './errors.js';
import { scopeName, scopeNumber } from './addresses.js';
import type { Route, RouteFilter, RouteSpec, RouteTable, RouteType } from './types.js';
import { parsePrefix } from './ip/prefix.js';
import { checkKeys, validateIfName, validateInt, validateIp } from './validate.js';

/** Route type names and their RTN_* numbers. Internal. */
export const TYPES: Record<RouteType, number> = {
  unicast: C.RTN_UNICAST, local: C.RTN_LOCAL, broadcast: C.RTN_BROADCAST, anycast: C.RTN_ANYCAST, multicast: C.RTN_MULTICAST,
  blackhole: C.RTN_BLACKHOLE, unreachable: C.RTN_UNREACHABLE, prohibit: C.RTN_PROHIBIT, throw: C.RTN_THROW, nat: C.RTN_NAT,
};
/** RTPROT_* numbers and their names. Internal. */
export const PROTOCOLS: Record<number, string> = {
  0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 10: 'mrt', 11: 'zebra', 12: 'bird',
  13: 'dnrouted', 14: 'xorp', 15: 'ntk', 16: 'dhcp', 17: 'mrouted', 18: 'keepalived', 42: 'babel', 186: 'bgp', 187: 'isis', 188: 'ospf', 189: 'rip', 192: 'eigrp',
};

const SPEC_KEYS = ['to', 'family', 'via', 'dev', 'table', 'metric', 'scope', 'src', 'type', 'protocol', 'mtu', 'onlink'] as const satisfies ReadonlyArray<keyof RouteSpec>;
const FILTER_KEYS = ['family', 'table', 'dev', 'type'] as const satisfies ReadonlyArray<keyof RouteFilter>;

function tableNumber(t: RouteTable, field: string): number {
  if (t === 'main') return C.RT_TABLE_MAIN;
  if (t === 'local') return C.RT_TABLE_LOCAL;
  if (t === 'default') return C.RT_TABLE_DEFAULT;
  validateInt(t, field, 1, 0xffffffff);
  return t;
}

const TYPE_NAMES: ReadonlyArray<RouteType | undefined> = (() => {
  const a = new Array<RouteType | undefined>(256).fill(undefined);
  for (const k of Object.keys(TYPES) as RouteType[]) a[TYPES[k]] ??= k;
  return a;
})();

/**
 * The nested RTA_METRICS in `p[at, at + n)`: its first RTAX_MTU of 4 bytes (undefined if none),
 * or `false` when the list is damaged (the codec then keeps RTA_METRICS raw).
 */
function metricsMtu(p: Buffer, at: number, n: number): number | undefined | false {
  let mtu: number | undefined;
  const end = at + n;
  for (let off = at; end - off >= 4; ) {
    const len = rd16(p, off);
    if (len < 4 || len > end - off) return false;
    if (attrType(p, off) === C.RTAX_MTU) mtu ??= u32.decode(p, off + 4, len - 4);
    off += align4(len);
  }
  return mtu;
}

/**
 * The public {@link Route} of the RTM_NEWROUTE/RTM_DELROUTE payload in `p[s, e)` (`struct rtmsg`
 * and RTA_* attributes, read in place), in one pass over the attributes; addresses become text only at the end. Of
 * RTA_DST, RTA_TABLE, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_PREFSRC and RTA_METRICS the first
 * occurrence whose payload fits counts, as in the codec's decodeRouteMessage. With `onlyTable`,
 * a route of another table gives undefined (the list's filter, before any text is made). Internal.
 * @throws {CodecError} where decodeRouteMessage throws (truncated header, damaged attribute list).
 */
export function readRoute(p: Buffer, s: number, e: number, names: ReadonlyMap<number, string> | undefined, onlyTable: number | undefined): Route | undefined {
  if (e - s < RTMSG_LEN) throw new CodecError(`rtmsg needs ${RTMSG_LEN} bytes, got ${e - s}`, 0);
  let dstAt = -1;
  let dstLen = 0;
  let gwAt = -1;
  let gwLen = 0;
  let srcAt = -1;
  let srcLen = 0;
  let tableAttr: number | undefined;
  let oif: number | undefined;
  let priority: number | undefined;
  let metrics = false;
  let mtu: number | undefined;
  for (let off = s + RTMSG_LEN; e - off >= 4; ) {
    const len = attrLength(p, off, e, s);
    const at = off + 4;
    const n = len - 4;
    const ipSize = n === 4 || n === 16;
    switch (attrType(p, off)) {
      case C.RTA_DST:
        if (dstAt < 0 && ipSize) {
          dstAt = at;
          dstLen = n;
        }
        break;
      case C.RTA_GATEWAY:
        if (gwAt < 0 && ipSize) {
          gwAt = at;
          gwLen = n;
        }
        break;
      case C.RTA_PREFSRC:
        if (srcAt < 0 && ipSize) {
          srcAt = at;
          srcLen = n;
        }
        break;
      case C.RTA_TABLE:
        tableAttr ??= u32.decode(p, at, n);
        break;
      case C.RTA_OIF:
        oif ??= u32.decode(p, at, n);
        break;
      case C.RTA_PRIORITY:
        priority ??= u32.decode(p, at, n);
        break;
      case C.RTA_METRICS:
        if (!metrics) {
          const m = metricsMtu(p, at, n);
          if (m !== false) {
            metrics = true;
            mtu = m;
          }
        }
        break;
      default:
        break;
    }
    off += align4(len);
  }
  const table = tableAttr ?? (p[s + 4] as number);
  if (onlyTable !== undefined && table !== onlyTable) return undefined;
  const family = p[s] === C.AF_INET6 ? 6 : 4;
  const dstLength = p[s + 1] as number;
  const type = p[s + 7] as number;
  const protocol = p[s + 5] as number;
  const flags = rd32(p, s + 8);
  return {
    family,
    to: dstLength === 0 && dstAt < 0 ? 'default' : `${dstAt >= 0 ? formatAddressAt(p, dstAt, dstLen) : family === 6 ? '::' : '0.0.0.0'}/${dstLength}`,
    dstLength,
    table,
    type: TYPE_NAMES[type] ?? type,
    protocol: PROTOCOLS[protocol] ?? String(protocol),
    scope: scopeName(p[s + 6] as number),
    via: gwAt >= 0 ? formatAddressAt(p, gwAt, gwLen) : null,
    dev: oif !== undefined ? (names?.get(oif) ?? null) : null,
    devIndex: oif ?? null,
    metric: priority ?? null,
    src: srcAt >= 0 ? formatAddressAt(p, srcAt, srcLen) : null,
    mtu: mtu ?? null,
    flags: { onlink: !!(flags & C.RTNH_F_ONLINK), linkdown: !!(flags & C.RTNH_F_LINKDOWN), dead: !!(flags & C.RTNH_F_DEAD) },
  };
}

/**
 * The public {@link Route} of an RTM_NEWROUTE/RTM_DELROUTE payload (see readRoute). `names` gives
 * the device's name.
 * @throws {CodecError} where the codec's decodeRouteMessage throws.
 */
export function toRoute(p: Buffer, names?: ReadonlyMap<number, string>): Route {
  return readRoute(p, 0, p.length, names, undefined) as Route;
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
    checkKeys(spec, SPEC_KEYS);
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
    checkKeys(filter, FILTER_KEYS, 'filter');
    if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) throw new ValidationError('filter.family', filter.family, 'expected 4 or 6');
    const table = filter.table === 'all' ? undefined : tableNumber(filter.table ?? 'main', 'filter.table');
    if (filter.type !== undefined && !Object.prototype.hasOwnProperty.call(TYPES, filter.type)) throw new ValidationError('filter.type', filter.type, 'unknown route type');
    const op = 'routes.list';
    const devIndex = filter.dev === undefined ? undefined : await this.ctx.linkIndex(filter.dev, 'filter.dev', op);
    const families = filter.family === 6 ? [C.AF_INET6] : filter.family === 4 ? [C.AF_INET] : [C.AF_INET, C.AF_INET6];
    const out: Route[] = [];
    for (const family of families) {
      const r = await this.ctx.dumpInPlace(C.RTM_GETROUTE, encodeRouteMessage({ header: { family }, attrs: {} }), op);
      for (let i = 0; i < r.types.length; i++) {
        if (r.types[i] !== C.RTM_NEWROUTE) continue;
        const route = readRoute(r.bufs[i]!, r.starts[i]!, r.ends[i]!, undefined, table);
        if (route === undefined || rd32(r.bufs[i]!, r.starts[i]! + 8) & C.RTM_F_CLONED) continue;
        if (devIndex !== undefined && route.devIndex !== devIndex) continue;
        if (filter.type !== undefined && route.type !== filter.type) continue;
        out.push(route);
      }
    }
    const indices: number[] = [];
    for (const r of out) if (r.devIndex !== null) indices.push(r.devIndex);
    const names = await this.ctx.namesOf(indices, op);
    for (const r of out) if (r.devIndex !== null) r.dev = names.get(r.devIndex) ?? null;
    return out;
  }
}

