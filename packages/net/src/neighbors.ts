/**
 * Neighbours (ARP / NDP entries) and proxy entries: add, replace, delete, list
 * (RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH).
 * @module
 */
import * as C from './codec/constants.js';
import { align4, attrLength, attrType, CodecError, hwaddr, ip, rd16, rd32 } from './codec/attrs.js';
import { encodeNeighborMessage, NDMSG_LEN, type NeighborAttrs } from './codec/neighbor.js';
import type { RtnlContext } from './context.js';
import type { InPlaceReplies } from './transport/pending.js';
import { ValidationError } from './errors.js';
import type { Neighbor, NeighborFilter, NeighborSpec, NeighborState } from './types.js';
import { checkKeys, parseMac, validateIfName, validateInt, validateIp } from './validate.js';

const STATES: Array<[NeighborState, number]> = [
  ['incomplete', C.NUD_INCOMPLETE], ['reachable', C.NUD_REACHABLE], ['stale', C.NUD_STALE], ['delay', C.NUD_DELAY],
  ['probe', C.NUD_PROBE], ['failed', C.NUD_FAILED], ['noarp', C.NUD_NOARP], ['permanent', C.NUD_PERMANENT],
];
const SPEC_KEYS = ['to', 'dev', 'lladdr', 'proxy', 'router', 'state', 'protocol'] as const satisfies ReadonlyArray<keyof NeighborSpec>;
const FILTER_KEYS = ['family', 'dev', 'proxy'] as const satisfies ReadonlyArray<keyof NeighborFilter>;
const SETTABLE: Record<string, number> = { permanent: C.NUD_PERMANENT, noarp: C.NUD_NOARP, reachable: C.NUD_REACHABLE, stale: C.NUD_STALE };

/**
 * The public {@link Neighbor} of an RTM_NEWNEIGH/RTM_DELNEIGH payload (`struct ndmsg` and NDA_*
 * attributes), read in one pass over the attributes: of NDA_DST and NDA_LLADDR the first
 * occurrence whose payload fits counts, as in the codec's decodeNeighborMessage. `names` gives the
 * device's name.
 * @throws {CodecError} where decodeNeighborMessage throws (truncated header, damaged attribute list).
 */
export function toNeighbor(p: Buffer, names?: ReadonlyMap<number, string>): Neighbor {
  return readNeighbor(p, 0, p.length, names);
}

/** {@link toNeighbor} of the payload in `p[s, e)` (read in place, in a received datagram). Internal. */
export function readNeighbor(p: Buffer, s: number, e: number, names?: ReadonlyMap<number, string>): Neighbor {
  if (e - s < NDMSG_LEN) throw new CodecError(`ndmsg needs ${NDMSG_LEN} bytes, got ${e - s}`, 0);
  let to: string | undefined;
  let lladdr: string | undefined;
  let protocol: number | null = null;
  for (let off = s + NDMSG_LEN; e - off >= 4; ) {
    const len = attrLength(p, off, e, s);
    const type = attrType(p, off);
    if (type === C.NDA_DST) to ??= ip.decode(p, off + 4, len - 4);
    else if (type === C.NDA_LLADDR) lladdr ??= hwaddr.decode(p, off + 4, len - 4);
    else if (type === C.NDA_PROTOCOL && protocol === null && len - 4 === 1) protocol = p[off + 4] as number;
    off += align4(len);
  }
  const index = rd32(p, s + 4) | 0;
  const stateBits = rd16(p, s + 8);
  const flags = p[s + 10] as number;
  const proxy = !!(flags & C.NTF_PROXY);
  const state: NeighborState[] = [];
  for (const [name, bit] of STATES) if (stateBits & bit) state.push(name);
  if (!proxy && state.length === 0) state.push('none');
  return {
    family: p[s] === C.AF_INET6 ? 6 : 4,
    to: to ?? '',
    index,
    dev: names?.get(index) ?? null,
    lladdr: lladdr ?? null,
    state,
    proxy,
    router: !!(flags & C.NTF_ROUTER),
    protocol,
  };
}

/** Makes the Neighbors of a handle (its constructor is private: not part of the API). Internal. */
export let newNeighbors: (ctx: RtnlContext) => Neighbors;

/** Neighbour tables of one {@link Rtnl} handle's namespace. */
export class Neighbors {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newNeighbors = (ctx) => new Neighbors(ctx);
  }

  /**
   * Adds an entry: `{ to, dev, lladdr }` (permanent by default), or a proxy entry
   * `{ to, dev, proxy: true }` (what `ip neigh add proxy` does: answer NDP/ARP for `to` on `dev`).
   * @throws {ValidationError} bad input. {@link NetlinkError} e.g. `EEXIST`, `ENODEV`.
   */
  async add(spec: NeighborSpec): Promise<void> {
    const { payload, op } = await this.build('neighbors.add', spec, false);
    await this.ctx.request(C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
  }

  /** Adds or replaces an entry. */
  async replace(spec: NeighborSpec): Promise<void> {
    const { payload, op } = await this.build('neighbors.replace', spec, false);
    await this.ctx.request(C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_REPLACE, payload, op);
  }

  /**
   * Deletes the entry for `to` on `dev` (`proxy: true` for a proxy entry).
   * @throws {NetlinkError} `ENOENT` when there is none.
   */
  async delete(spec: Pick<NeighborSpec, 'to' | 'dev' | 'proxy'>): Promise<void> {
    const { payload, op } = await this.build('neighbors.delete', spec, true);
    await this.ctx.request(C.RTM_DELNEIGH, 0, payload, op);
  }

  private async build(what: string, spec: NeighborSpec, del: boolean): Promise<{ payload: Buffer; op: string }> {
    if (spec === null || typeof spec !== 'object') throw new ValidationError('neighbor', spec, 'expected an object');
    checkKeys(spec, SPEC_KEYS);
    const family = validateIp(spec.to, 'to');
    validateIfName(spec.dev, 'dev');
    if (spec.proxy !== undefined && typeof spec.proxy !== 'boolean') throw new ValidationError('proxy', spec.proxy, 'expected true or false');
    if (spec.router !== undefined && typeof spec.router !== 'boolean') throw new ValidationError('router', spec.router, 'expected true or false');
    if (!del && spec.proxy && spec.lladdr !== undefined) throw new ValidationError('lladdr', spec.lladdr, 'a proxy entry has no link-layer address');
    const lladdr = !del && spec.lladdr !== undefined ? parseMac(spec.lladdr, 'lladdr', { unicast: false }) : undefined;
    if (!del && spec.state !== undefined && !Object.prototype.hasOwnProperty.call(SETTABLE, spec.state)) {
      throw new ValidationError('state', spec.state, `expected one of ${Object.keys(SETTABLE).join(', ')}`);
    }
    if (!del && spec.protocol !== undefined) validateInt(spec.protocol, 'protocol', 0, 255);
    const op = `${what} ${spec.to} ${spec.dev}${spec.proxy ? ' proxy' : ''}`;
    const index = await this.ctx.linkIndex(spec.dev, 'dev', op);
    let flags = 0;
    if (spec.proxy) flags |= C.NTF_PROXY;
    if (spec.router) flags |= C.NTF_ROUTER;
    const attrs: NeighborAttrs = { dst: spec.to };
    if (lladdr !== undefined) attrs.lladdr = lladdr;
    if (!del && spec.protocol !== undefined) attrs.protocol = spec.protocol;
    const state = del ? 0 : SETTABLE[spec.state ?? 'permanent']!;
    const payload = encodeNeighborMessage({ header: { family: family === 6 ? C.AF_INET6 : C.AF_INET, index, state, flags, type: 0 }, attrs });
    return { payload, op };
  }

  /**
   * Lists neighbour entries (one dump per family), or with `proxy: true` the proxy entries
   * (compare `ip neigh show proxy`). `dev` is the name the device has when the dumps have been
   * read (looked up by index).
   */
  async list(filter: NeighborFilter = {}): Promise<Neighbor[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected an object');
    checkKeys(filter, FILTER_KEYS, 'filter');
    if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) throw new ValidationError('filter.family', filter.family, 'expected 4 or 6');
    if (filter.proxy !== undefined && typeof filter.proxy !== 'boolean') throw new ValidationError('filter.proxy', filter.proxy, 'expected true or false');
    const op = filter.proxy ? 'neighbors.list proxy' : 'neighbors.list';
    const devIndex = filter.dev === undefined ? undefined : await this.ctx.linkIndex(filter.dev, 'filter.dev', op);
    const families = filter.family === 6 ? [C.AF_INET6] : filter.family === 4 ? [C.AF_INET] : [C.AF_INET, C.AF_INET6];
    const dumps: InPlaceReplies[] = [];
    for (const family of families) {
      const req = encodeNeighborMessage({ header: { family, flags: filter.proxy ? C.NTF_PROXY : 0 }, attrs: {} });
      dumps.push(await this.ctx.dumpInPlace(C.RTM_GETNEIGH, req, op));
    }
    // the devices' names are looked up (from the headers) while the messages are decoded
    const indices: number[] = [];
    for (const r of dumps) {
      for (let i = 0; i < r.types.length; i++) {
        if (r.types[i] === C.RTM_NEWNEIGH && r.ends[i]! - r.starts[i]! >= NDMSG_LEN) indices.push(rd32(r.bufs[i]!, r.starts[i]! + 4) | 0);
      }
    }
    const [out, names] = await this.ctx.withNamesOf(indices, op, () => {
      const list: Neighbor[] = [];
      dumps.forEach((r, f) => {
        for (let i = 0; i < r.types.length; i++) {
          if (r.types[i] !== C.RTM_NEWNEIGH) continue;
          const n = readNeighbor(r.bufs[i]!, r.starts[i]!, r.ends[i]!);
          if (n.proxy !== !!filter.proxy) continue;
          if (r.bufs[i]![r.starts[i]!] !== families[f]) continue;
          if (devIndex !== undefined && n.index !== devIndex) continue;
          list.push(n);
        }
      });
      return list;
    });
    for (const n of out) n.dev = names.get(n.index) ?? null;
    return out;
  }
}
