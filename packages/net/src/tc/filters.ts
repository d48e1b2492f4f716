/**
 * Filters of a namespace: add, replace, delete, list (RTM_NEWTFILTER / RTM_DELTFILTER /
 * RTM_GETTFILTER). Typed: the u32 classifier (keys, classid) with mirred actions (redirect or
 * mirror to another interface), requests as tc sends them; other classifiers and actions are listed
 * with what the typed fields can say.
 * @module
 */
import * as C from '../codec/constants.js';
import * as T from '../codec/tc-constants.js';
import { decodeFilterMessage, encodeFilterMessage, type MirredOptions, type TcActionAttrs, type TcFilterMessage, type U32Options } from '../codec/tc-filter.js';
import type { RtnlContext } from '../context.js';
import { ValidationError } from '../errors.js';
import { validateIfName, validateInt } from '../validate.js';
import { formatHandle, formatU32Handle, parseHandle, parseU32Handle } from './handle.js';
import type { FilterProtocol, FilterRef, FilterSpec, MirredActionSpec, TcAction, TcFilter, U32Match } from './types.js';

const PROTOCOLS: Record<string, number> = { all: T.ETH_P_ALL, ip: T.ETH_P_IP, ipv6: T.ETH_P_IPV6, arp: T.ETH_P_ARP, '802.1Q': T.ETH_P_8021Q };
const PROTOCOL_NAMES = new Map(Object.entries(PROTOCOLS).map(([n, v]) => [v, n]));
/** Most actions per filter (TCA_ACT_MAX_PRIO) and keys per u32 selector (tc's limit). */
const MAX_ACTIONS = 32;
const MAX_KEYS = 128;

/** The EtherType of a protocol (host order). */
function protocolOf(v: unknown, field: string): number {
  if (typeof v === 'string' && v in PROTOCOLS) return PROTOCOLS[v]!;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff) return v;
  throw new ValidationError(field, v, `expected ${Object.keys(PROTOCOLS).join(', ')} or an EtherType number`);
}

/** tcm_info: prio in the upper half, the protocol in network order in the lower. */
const infoOf = (prio: number, protocol: number): number => ((prio << 16) | (((protocol & 0xff) << 8) | (protocol >>> 8))) >>> 0;

/** A filter's parent: `'ingress'` is the ingress qdisc (`ffff:`), else a qdisc handle or class id. */
function parentOf(v: unknown, field: string): number {
  if (v === 'ingress') return 0xffff0000;
  if (v === undefined || v === 'root') throw new ValidationError(field, v, "expected 'ingress', a qdisc handle ('1:') or a class ('1:10')");
  return parseHandle(v, field, 'any');
}

function matchKeys(v: unknown): Array<{ mask: number; value: number; offset: number; offmask: number }> {
  if (v === undefined) return [{ mask: 0, value: 0, offset: 0, offmask: 0 }];
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_KEYS) throw new ValidationError('match', v, `expected 1 to ${MAX_KEYS} keys { value, mask, offset? }`);
  return v.map((k: unknown, i) => {
    const f = `match[${i}]`;
    if (k === null || typeof k !== 'object') throw new ValidationError(f, k, 'expected { value, mask, offset? }');
    const { value, mask, offset = 0 } = k as U32Match;
    validateInt(value, `${f}.value`, 0, 0xffffffff);
    validateInt(mask, `${f}.mask`, 0, 0xffffffff);
    validateInt(offset, `${f}.offset`, -65536, 65535);
    if (offset % 4 !== 0) throw new ValidationError(`${f}.offset`, offset, 'a u32 key is at a multiple of 4 bytes');
    // tc keeps only the bits the mask selects
    return { mask, value: (value & mask) >>> 0, offset, offmask: 0 };
  });
}

/** Makes the Filters of a handle (its constructor is private: not part of the API). Internal. */
export let newFilters: (ctx: RtnlContext) => Filters;

/** The traffic-control filters of one {@link Rtnl} handle's namespace. */
export class Filters {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newFilters = (ctx) => new Filters(ctx);
  }

  /**
   * Adds a filter (`tc filter add`). A u32 filter matching everything that redirects what `tap0`
   * receives to the egress of `ifb0` (whose qdisc can then shape it):
   *
   * ```ts
   * await h.qdiscs.add({ kind: 'ingress', dev: 'tap0' });
   * await h.filters.add({ kind: 'u32', dev: 'tap0', parent: 'ingress', prio: 1, actions: [{ kind: 'mirred', action: 'redirect', dev: 'ifb0' }] });
   * ```
   * @throws {ValidationError} bad input, before anything is sent.
   * @throws {NetlinkError} e.g. `EEXIST`, `ENOENT` (no such qdisc), `EINVAL` (a handle outside the instance's table).
   */
  async add(spec: FilterSpec): Promise<void> {
    const { payload, op } = await this.build('filters.add', spec);
    await this.ctx.request(T.RTM_NEWTFILTER, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
  }

  /** Adds the filter or replaces the node with the same handle (`tc filter replace`). */
  async replace(spec: FilterSpec): Promise<void> {
    const { payload, op } = await this.build('filters.replace', spec);
    await this.ctx.request(T.RTM_NEWTFILTER, C.NLM_F_CREATE, payload, op);
  }

  /**
   * Deletes the classifier instance at `prio` of `parent` (`tc filter del ... prio N`), or with
   * `handle` one u32 node of it.
   * @throws {NetlinkError} e.g. `ENOENT` (no such filter).
   */
  async delete(ref: FilterRef): Promise<void> {
    if (ref === null || typeof ref !== 'object') throw new ValidationError('filter', ref, 'expected { dev, parent, prio, protocol?, handle? }');
    const parent = parentOf(ref.parent, 'parent');
    validateInt(ref.prio, 'prio', 1, 0xffff);
    const protocol = ref.protocol === undefined ? 0 : protocolOf(ref.protocol, 'protocol');
    const handle = ref.handle === undefined ? 0 : parseU32Handle(ref.handle, 'handle');
    const op = `filters.delete ${String(ref.dev)} ${formatHandle(parent)} prio ${ref.prio}${ref.handle !== undefined ? ` handle ${ref.handle}` : ''}`;
    const index = await this.ctx.linkIndex(ref.dev, 'dev', op);
    const attrs = handle ? { kind: 'u32' } : {};
    await this.ctx.request(T.RTM_DELTFILTER, 0, encodeFilterMessage({ header: { index, parent, handle, info: infoOf(ref.prio, protocol) }, attrs }), op);
  }

  /** Lists the filters at `parent` of `dev` (`tc filter show dev DEV parent P`), one per kernel entry as tc prints them. */
  async list(filter: { dev: string; parent: string }): Promise<TcFilter[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected { dev, parent }');
    const parent = parentOf(filter.parent, 'filter.parent');
    const op = `filters.list ${String(filter.dev)} ${formatHandle(parent)}`;
    const index = await this.ctx.linkIndex(filter.dev, 'filter.dev', op);
    const msgs = await this.ctx.request(T.RTM_GETTFILTER, C.NLM_F_DUMP, encodeFilterMessage({ header: { index, parent }, attrs: {} }), op);
    const names = await this.ctx.linkNames(op);
    return msgs.filter((m) => m.type === T.RTM_NEWTFILTER).map((m) => toFilter(decodeFilterMessage(m.payload), names));
  }

  private async build(what: string, spec: FilterSpec): Promise<{ payload: Buffer; op: string }> {
    if (spec === null || typeof spec !== 'object') throw new ValidationError('filter', spec, 'expected an object');
    if (spec.kind !== 'u32') throw new ValidationError('kind', spec.kind, 'expected u32');
    const parent = parentOf(spec.parent, 'parent');
    validateInt(spec.prio, 'prio', 1, 0xffff);
    const protocol = protocolOf(spec.protocol ?? 'all', 'protocol');
    const handle = spec.handle === undefined ? 0 : parseU32Handle(spec.handle, 'handle');
    const keys = matchKeys(spec.match);
    const classid = spec.classid === undefined ? undefined : parseHandle(spec.classid, 'classid', 'class');
    const actions = spec.actions ?? [];
    if (!Array.isArray(actions) || actions.length > MAX_ACTIONS) throw new ValidationError('actions', actions, `expected a list of at most ${MAX_ACTIONS} actions`);
    actions.forEach((a: MirredActionSpec, i) => {
      if (a === null || typeof a !== 'object' || a.kind !== 'mirred') throw new ValidationError(`actions[${i}].kind`, (a as { kind?: unknown } | null)?.kind, 'expected mirred');
      if (a.action !== 'redirect' && a.action !== 'mirror') throw new ValidationError(`actions[${i}].action`, a.action, 'expected redirect or mirror');
      if (a.direction !== undefined && a.direction !== 'egress' && a.direction !== 'ingress') throw new ValidationError(`actions[${i}].direction`, a.direction, 'expected egress or ingress');
      if (typeof a.dev !== 'number') validateIfName(a.dev, `actions[${i}].dev`);
    });
    const op = `${what} u32 ${String(spec.dev)} ${formatHandle(parent)} prio ${spec.prio}`;
    const index = await this.ctx.linkIndex(spec.dev, 'dev', op);
    const acts: TcActionAttrs[] = [];
    for (const [i, a] of actions.entries()) {
      const ifindex = await this.ctx.linkIndex(a.dev, `actions[${i}].dev`, op);
      const ingress = a.direction === 'ingress';
      const eaction = a.action === 'redirect' ? (ingress ? T.TCA_INGRESS_REDIR : T.TCA_EGRESS_REDIR) : ingress ? T.TCA_INGRESS_MIRROR : T.TCA_EGRESS_MIRROR;
      const control = a.action === 'redirect' ? T.TC_ACT_STOLEN : T.TC_ACT_PIPE;
      acts.push({ order: i + 1, kind: 'mirred', options: { parms: { index: 0, capab: 0, action: control, refcnt: 0, bindcnt: 0, eaction, ifindex } } });
    }
    const options: U32Options = {};
    if (classid !== undefined) options.classid = classid;
    if (acts.length > 0) options.actions = acts;
    // tc marks the selector terminal when a match has a classid or actions
    options.sel = { flags: classid !== undefined || acts.length > 0 ? T.TC_U32_TERMINAL : 0, offshift: 0, offmask: 0, off: 0, offoff: 0, hoff: 0, hmask: 0, keys };
    return { payload: encodeFilterMessage({ header: { index, handle, parent, info: infoOf(spec.prio, protocol) }, attrs: { kind: 'u32', options } }), op };
  }
}

function toAction(a: TcActionAttrs, names: ReadonlyMap<number, string>): TcAction {
  const out: TcAction = { order: a.order, kind: a.kind ?? '', index: a.index ?? null };
  const p = a.kind === 'mirred' && a.options !== undefined && !Buffer.isBuffer(a.options) ? (a.options as MirredOptions).parms : undefined;
  if (p) {
    const e = p.eaction;
    out.index ??= p.index;
    out.mirred = {
      action: e === T.TCA_EGRESS_REDIR || e === T.TCA_INGRESS_REDIR ? 'redirect' : 'mirror',
      direction: e === T.TCA_INGRESS_REDIR || e === T.TCA_INGRESS_MIRROR ? 'ingress' : 'egress',
      dev: names.get(p.ifindex) ?? null,
      ifindex: p.ifindex,
    };
  }
  return out;
}

/** Converts a decoded filter message to the public {@link TcFilter}. */
export function toFilter(m: TcFilterMessage, names: ReadonlyMap<number, string>): TcFilter {
  const kind = m.attrs.kind ?? '';
  const proto = m.header.info & 0xffff;
  const ethertype = ((proto & 0xff) << 8) | (proto >>> 8);
  const f: TcFilter = {
    dev: names.get(m.header.index) ?? null,
    index: m.header.index,
    kind,
    parent: formatHandle(m.header.parent),
    protocol: PROTOCOL_NAMES.get(ethertype) ?? `0x${ethertype.toString(16).padStart(4, '0')}`,
    prio: m.header.info >>> 16,
    handle: m.header.handle === 0 ? null : kind === 'u32' ? formatU32Handle(m.header.handle) : formatHandle(m.header.handle),
    chain: m.attrs.chain ?? null,
  };
  const o = m.attrs.options;
  if (kind === 'u32' && o !== undefined && !Buffer.isBuffer(o)) {
    f.u32 = {
      divisor: o.divisor ?? null,
      hashTable: o.hash !== undefined && o.divisor === undefined ? ((o.hash >>> 20) & 0xfff).toString(16) : null,
      classid: o.classid === undefined ? null : formatHandle(o.classid),
      terminal: ((o.sel?.flags ?? 0) & T.TC_U32_TERMINAL) !== 0,
      match: (o.sel?.keys ?? []).map((k) => ({ value: k.value, mask: k.mask, offset: k.offset })),
      actions: (o.actions ?? []).map((a) => toAction(a, names)),
    };
  }
  return f;
}
