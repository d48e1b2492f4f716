/**
 * Interface addresses: add, delete, list (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR).
 * @module
 */
import * as C from './codec/constants.js';
import { align4, attrLength, attrType, CodecError, decodeString, in4, ip, rd32, u32 } from './codec/attrs.js';
import { encodeAddressMessage, IFADDRMSG_LEN, type AddressAttrs } from './codec/address.js';
import { lastAddress } from './ip/prefix.js';
import type { RtnlContext } from './context.js';
import { ValidationError } from './errors.js';
import type { Address, AddressFilter, AddressOptions, Scope } from './types.js';
import { checkKeys, parseCidr, validateInt, validateIp } from './validate.js';

const SCOPES: Record<Scope, number> = { global: C.RT_SCOPE_UNIVERSE, site: C.RT_SCOPE_SITE, link: C.RT_SCOPE_LINK, host: C.RT_SCOPE_HOST, nowhere: C.RT_SCOPE_NOWHERE };

const OPTION_KEYS = ['nodad', 'noprefixroute', 'broadcast', 'label', 'scope', 'peer', 'validLifetime', 'preferredLifetime', 'metric', 'protocol'] as const satisfies ReadonlyArray<keyof AddressOptions>;
const FILTER_KEYS = ['link', 'family'] as const satisfies ReadonlyArray<keyof AddressFilter>;
const SCOPE_NAMES: ReadonlyMap<number, Scope> = new Map((Object.keys(SCOPES) as Scope[]).map((k) => [SCOPES[k], k]));

/** RT_SCOPE_* number → name (or the number). */
export function scopeName(n: number): Scope | number {
  return SCOPE_NAMES.get(n) ?? n;
}

/** Scope name or number → number. */
export function scopeNumber(s: Scope | number, field: string): number {
  if (typeof s === 'number') {
    validateInt(s, field, 0, 255);
    return s;
  }
  if (typeof s === 'string' && Object.prototype.hasOwnProperty.call(SCOPES, s)) return SCOPES[s];
  throw new ValidationError(field, s, `expected one of ${Object.keys(SCOPES).join(', ')} or 0-255`);
}

/** The IPv4 broadcast address of `address/len`. */
function broadcastOf(address: string, len: number): string {
  return lastAddress(`${address}/${len}`);
}

/**
 * The public {@link Address} of an RTM_NEWADDR/RTM_DELADDR payload (`struct ifaddrmsg` and IFA_*
 * attributes), read in one pass over the attributes without decoding the rest: of IFA_ADDRESS,
 * IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO and IFA_FLAGS the first occurrence whose
 * payload fits counts, as in the codec's decodeAddressMessage. `names` gives the link's name.
 * @throws {CodecError} where decodeAddressMessage throws (truncated header, damaged attribute list).
 */
export function toAddress(p: Buffer, names?: ReadonlyMap<number, string>): Address {
  return readAddress(p, 0, p.length, names);
}

/** {@link toAddress} of the payload in `p[s, e)` (read in place, in a received datagram). Internal. */
export function readAddress(p: Buffer, s: number, e: number, names?: ReadonlyMap<number, string>): Address {
  if (e - s < IFADDRMSG_LEN) throw new CodecError(`ifaddrmsg needs ${IFADDRMSG_LEN} bytes, got ${e - s}`, 0);
  let peerAddr: string | undefined; // IFA_ADDRESS
  let local: string | undefined;
  let label: string | undefined;
  let broadcast: string | undefined;
  let flags: number | undefined;
  let valid = -1; // -1: no IFA_CACHEINFO
  let preferred = -1;
  let proto: number | null = null;
  for (let off = s + IFADDRMSG_LEN; e - off >= 4; ) {
    const len = attrLength(p, off, e, s);
    const at = off + 4;
    const n = len - 4;
    switch (attrType(p, off)) {
      case C.IFA_ADDRESS:
        peerAddr ??= ip.decode(p, at, n);
        break;
      case C.IFA_LOCAL:
        local ??= ip.decode(p, at, n);
        break;
      case C.IFA_LABEL:
        label ??= decodeString(p, at, n);
        break;
      case C.IFA_BROADCAST:
        broadcast ??= in4.decode(p, at, n);
        break;
      case C.IFA_CACHEINFO:
        if (valid < 0 && n === 16) {
          preferred = rd32(p, at);
          valid = rd32(p, at + 4);
        }
        break;
      case C.IFA_FLAGS:
        flags ??= u32.decode(p, at, n);
        break;
      case C.IFA_PROTO:
        if (proto === null && n === 1) proto = p[at] as number;
        break;
      default:
        break;
    }
    off += align4(len);
  }
  const index = rd32(p, s + 4);
  const prefixLength = p[s + 1] as number;
  const address = local ?? peerAddr ?? '';
  const f = flags ?? (p[s + 2] as number);
  return {
    family: p[s] === C.AF_INET6 ? 6 : 4,
    address,
    prefixLength,
    cidr: `${address}/${prefixLength}`,
    index,
    link: names?.get(index) ?? null,
    scope: scopeName(p[s + 3] as number),
    label: label ?? null,
    broadcast: broadcast ?? null,
    peer: local !== undefined && peerAddr !== undefined && peerAddr !== local ? peerAddr : null,
    flags: {
      permanent: !!(f & C.IFA_F_PERMANENT),
      secondary: !!(f & C.IFA_F_SECONDARY),
      tentative: !!(f & C.IFA_F_TENTATIVE),
      deprecated: !!(f & C.IFA_F_DEPRECATED),
      nodad: !!(f & C.IFA_F_NODAD),
      noprefixroute: !!(f & C.IFA_F_NOPREFIXROUTE),
      dadfailed: !!(f & C.IFA_F_DADFAILED),
      optimistic: !!(f & C.IFA_F_OPTIMISTIC),
      homeaddress: !!(f & C.IFA_F_HOMEADDRESS),
      managetempaddr: !!(f & C.IFA_F_MANAGETEMPADDR),
      stablePrivacy: !!(f & C.IFA_F_STABLE_PRIVACY),
    },
    protocol: proto,
    validLifetime: valid < 0 || valid === C.INFINITY_LIFE_TIME ? null : valid,
    preferredLifetime: valid < 0 || preferred === C.INFINITY_LIFE_TIME ? null : preferred,
  };
}

/** Makes the Addresses of a handle (its constructor is private: not part of the API). Internal. */
export let newAddresses: (ctx: RtnlContext) => Addresses;

/** Addresses of one {@link Rtnl} handle's namespace. */
export class Addresses {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newAddresses = (ctx) => new Addresses(ctx);
  }

  /**
   * Adds `cidr` (e.g. '192.168.0.1/24', '2001:db8::1/64') to `link`.
   * @throws {ValidationError} bad CIDR or options, before anything is sent.
   * @throws {NetlinkError} e.g. `EEXIST` (already there), `ENODEV`.
   */
  async add(link: string | number, cidr: string, options: AddressOptions = {}): Promise<void> {
    const { payload, op } = await this.build('addresses.add', link, cidr, options);
    await this.ctx.request(C.RTM_NEWADDR, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
  }

  /** Adds or updates `cidr` on `link` (NLM_F_REPLACE). */
  async replace(link: string | number, cidr: string, options: AddressOptions = {}): Promise<void> {
    const { payload, op } = await this.build('addresses.replace', link, cidr, options);
    await this.ctx.request(C.RTM_NEWADDR, C.NLM_F_CREATE | C.NLM_F_REPLACE, payload, op);
  }

  /**
   * Removes `cidr` from `link`.
   * @throws {NetlinkError} `EADDRNOTAVAIL` when it is not there.
   */
  async delete(link: string | number, cidr: string): Promise<void> {
    const { payload, op } = await this.build('addresses.delete', link, cidr, {});
    await this.ctx.request(C.RTM_DELADDR, 0, payload, op);
  }

  private async build(what: string, link: string | number, cidr: string, o: AddressOptions): Promise<{ payload: Buffer; op: string }> {
    const c = parseCidr(cidr, 'cidr');
    if (o === null || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
    checkKeys(o, OPTION_KEYS, 'options');
    if (c.family === 4 && o.broadcast !== undefined && o.broadcast !== true) validateIp(o.broadcast, 'options.broadcast', 4);
    if (c.family === 6 && o.broadcast !== undefined) throw new ValidationError('options.broadcast', o.broadcast, 'IPv6 has no broadcast');
    if (o.peer !== undefined) validateIp(o.peer, 'options.peer', c.family);
    if (o.label !== undefined && (typeof o.label !== 'string' || Buffer.byteLength(o.label) > 15 || c.family !== 4)) {
      throw new ValidationError('options.label', o.label, 'expected an IPv4 label of at most 15 bytes');
    }
    if (o.validLifetime !== undefined) validateInt(o.validLifetime, 'options.validLifetime', 0, 0xffffffff);
    if (o.preferredLifetime !== undefined) validateInt(o.preferredLifetime, 'options.preferredLifetime', 0, 0xffffffff);
    if (o.metric !== undefined) validateInt(o.metric, 'options.metric', 0, 0xffffffff);
    if (o.protocol !== undefined) validateInt(o.protocol, 'options.protocol', 0, 255);
    const scope = o.scope === undefined ? (c.address === '127.0.0.1' || c.address === '::1' ? C.RT_SCOPE_HOST : C.RT_SCOPE_UNIVERSE) : scopeNumber(o.scope, 'options.scope');
    const op = `${what} ${cidr} ${String(link)}`;
    const index = await this.ctx.linkIndex(link, 'link', op);
    let flags = 0;
    if (o.nodad) flags |= C.IFA_F_NODAD;
    if (o.noprefixroute) flags |= C.IFA_F_NOPREFIXROUTE;
    const attrs: AddressAttrs = { local: c.address, address: o.peer ?? c.address };
    if (o.label !== undefined) attrs.label = o.label;
    if (o.broadcast !== undefined) attrs.broadcast = o.broadcast === true ? broadcastOf(c.address, c.prefixLength) : o.broadcast;
    if (o.validLifetime !== undefined || o.preferredLifetime !== undefined) {
      attrs.cacheinfo = {
        valid: o.validLifetime ?? C.INFINITY_LIFE_TIME,
        preferred: o.preferredLifetime ?? o.validLifetime ?? C.INFINITY_LIFE_TIME,
        cstamp: 0,
        tstamp: 0,
      };
    }
    if (flags) attrs.flags = flags;
    if (o.metric !== undefined) attrs.rtPriority = o.metric;
    if (o.protocol !== undefined) attrs.proto = o.protocol;
    const payload = encodeAddressMessage({
      header: { family: c.family === 6 ? C.AF_INET6 : C.AF_INET, prefixLength: c.prefixLength, flags: flags & 0xff, scope, index },
      attrs,
    });
    return { payload, op };
  }

  /**
   * The addresses (one dump per call), optionally of one link or family. `link` is the name each
   * interface has when the dump has been read (looked up by index, not by a dump of every link).
   */
  async list(filter: AddressFilter = {}): Promise<Address[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected an object');
    checkKeys(filter, FILTER_KEYS, 'filter');
    if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) throw new ValidationError('filter.family', filter.family, 'expected 4 or 6');
    const op = 'addresses.list';
    const index = filter.link === undefined ? undefined : await this.ctx.linkIndex(filter.link, 'filter.link', op);
    const family = filter.family === 6 ? C.AF_INET6 : filter.family === 4 ? C.AF_INET : C.AF_UNSPEC;
    const r = await this.ctx.dumpInPlace(C.RTM_GETADDR, encodeAddressMessage({ header: { family }, attrs: {} }), op);
    // the links' names are looked up (from the headers) while the messages are decoded
    const indices: number[] = [];
    for (let i = 0; i < r.types.length; i++) {
      if (r.types[i] === C.RTM_NEWADDR && r.ends[i]! - r.starts[i]! >= IFADDRMSG_LEN) indices.push(rd32(r.bufs[i]!, r.starts[i]! + 4));
    }
    const [out, names] = await this.ctx.withNamesOf(indices, op, () => {
      const list: Address[] = [];
      for (let i = 0; i < r.types.length; i++) {
        if (r.types[i] !== C.RTM_NEWADDR) continue;
        const a = readAddress(r.bufs[i]!, r.starts[i]!, r.ends[i]!);
        if (index !== undefined && a.index !== index) continue;
        if (family !== C.AF_UNSPEC && r.bufs[i]![r.starts[i]!] !== family) continue;
        list.push(a);
      }
      return list;
    });
    for (const a of out) a.link = names.get(a.index) ?? null;
    return out;
  }
}
