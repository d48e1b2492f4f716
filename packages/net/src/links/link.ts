/**
 * The link-kind-independent parts of Links: the public {@link Link} from a decoded message,
 * spec and change validation, the flag bits, and the undo of a partly applied change. Pure.
 * @module
 */
import * as C from '../codec/constants.js';
import { pick } from '../codec/attrs.js';
import { decodeLinkAt, linkSchema, type LinkAttrs, type LinkMessage } from '../codec/link.js';
import { ValidationError } from '../errors.js';
import { netnsPath } from '../netns.js';
import type { Link, LinkChanges, LinkSpec, OperState, OtherKindSpec } from '../types.js';
import { checkKeys, parseMac, validateIfName, validateInt } from '../validate.js';
import { checkBool, validateMtu } from './common.js';
import { kindOfInfo, kindOfSpec } from './kinds/index.js';

const hwType = (t: number): string =>
  t === C.ARPHRD_ETHER ? 'ether' : t === C.ARPHRD_LOOPBACK ? 'loopback' : t === C.ARPHRD_NONE ? 'none' : String(t);

/** The IFLA_* attributes {@link toLink} reads (and the kinds' decoders: IFLA_LINK, IFLA_LINK_NETNSID). */
const viewSchema = pick(linkSchema, [
  'ifname', 'linkinfo', 'address', 'broadcast', 'mtu', 'operstate', 'master', 'link', 'linkNetnsid', 'ifalias', 'txqlen', 'promiscuity', 'group',
]);

/**
 * Decodes a link message payload (`payload[start, end)`, read in place) for {@link toLink}: only
 * the attributes it reads, nothing kept raw (lean). Gives {@link toLink} the same input as the
 * full decode; throws the same CodecError.
 */
export function decodeLinkView(payload: Buffer, start = 0, end = payload.length): LinkMessage {
  return decodeLinkAt(payload, start, end, viewSchema, true);
}

/** Converts a decoded link message to the public {@link Link}. `names` resolves the master's name. */
export function toLink(m: LinkMessage, names?: ReadonlyMap<number, string>): Link {
  const a = m.attrs;
  const f = m.header.flags;
  const info = a.linkinfo;
  const link: Link = {
    index: m.header.index,
    name: a.ifname ?? '',
    kind: info?.kind ?? null,
    type: hwType(m.header.type),
    mac: a.address ?? null,
    broadcast: a.broadcast ?? null,
    mtu: a.mtu ?? 0,
    flags: {
      up: !!(f & C.IFF_UP),
      broadcast: !!(f & C.IFF_BROADCAST),
      loopback: !!(f & C.IFF_LOOPBACK),
      pointToPoint: !!(f & C.IFF_POINTOPOINT),
      noarp: !!(f & C.IFF_NOARP),
      promisc: !!(f & C.IFF_PROMISC),
      allmulti: !!(f & C.IFF_ALLMULTI),
      multicast: !!(f & C.IFF_MULTICAST),
      running: !!(f & C.IFF_RUNNING),
      lowerUp: !!(f & C.IFF_LOWER_UP),
      dormant: !!(f & C.IFF_DORMANT),
      master: !!(f & C.IFF_MASTER),
      slave: !!(f & C.IFF_SLAVE),
    },
    rawFlags: f,
    operstate: (C.OPERSTATES[a.operstate ?? 0] ?? 'unknown') as OperState,
    master: a.master !== undefined && a.master > 0 ? (names?.get(a.master) ?? null) : null,
    masterIndex: a.master !== undefined && a.master > 0 ? a.master : null,
    parentIndex: a.link !== undefined && a.link !== m.header.index ? a.link : null,
    linkNetnsId: a.linkNetnsid ?? null,
    alias: a.ifalias ?? null,
    txQueueLen: a.txqlen ?? null,
    group: a.group ?? 0,
    promiscuity: a.promiscuity ?? 0,
  };
  const kind = kindOfInfo(info?.kind);
  if (kind) Object.assign(link, kind.decode(m, info?.data));
  const master = kindOfInfo(info?.slaveKind)?.port;
  if (master) Object.assign(link, master.decode(info?.slaveData));
  return link;
}

const KIND_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const ALIAS_MAX = 255;

function checkAlias(v: unknown, nullable: boolean): void {
  if (v === undefined || (nullable && v === null)) return;
  if (typeof v !== 'string' || Buffer.byteLength(v) > ALIAS_MAX) {
    throw new ValidationError('alias', v, `expected a string of at most ${ALIAS_MAX} bytes${nullable ? ', or null' : ''}`);
  }
}

/** The keys every link spec may have (`kind` and {@link LinkAddCommon}); each kind adds its own. */
const COMMON_KEYS = ['kind', 'name', 'mac', 'mtu', 'up', 'promisc', 'master', 'alias', 'netns', 'txQueueLen'] as const satisfies ReadonlyArray<keyof OtherKindSpec>;

/** The keys of a kind's specs: the common ones and its own (made once per kind). */
const KEYS_OF = new WeakMap<object, readonly string[]>();
function specKeys(kind: { readonly keys: readonly string[] }): readonly string[] {
  let keys = KEYS_OF.get(kind);
  if (!keys) KEYS_OF.set(kind, (keys = [...COMMON_KEYS, ...kind.keys]));
  return keys;
}

/**
 * Validates a link spec completely, before anything is sent: its keys (the common ones and the
 * kind's; any other is refused: a misspelt `upp` must not leave a link down), the common fields,
 * then the kind's.
 */
export function validateSpec(spec: LinkSpec | OtherKindSpec): void {
  if (spec === null || typeof spec !== 'object') throw new ValidationError('spec', spec, 'expected an object');
  if (typeof spec.kind !== 'string' || !KIND_RE.test(spec.kind)) throw new ValidationError('kind', spec.kind, 'expected a link kind such as veth, bridge or tap');
  const kind = kindOfSpec(spec.kind);
  checkKeys(spec, kind ? specKeys(kind) : COMMON_KEYS);
  validateIfName(spec.name, 'name');
  if (spec.mac !== undefined) parseMac(spec.mac, 'mac');
  validateMtu(spec.mtu, 'mtu');
  checkBool(spec.up, 'up');
  checkBool(spec.promisc, 'promisc');
  if (spec.master !== undefined) validateIfName(spec.master, 'master');
  checkAlias(spec.alias, false);
  if (spec.txQueueLen !== undefined) validateInt(spec.txQueueLen, 'txQueueLen', 0, 0xffffffff);
  if (spec.netns !== undefined) {
    netnsPath(spec.netns, 'netns');
    if (spec.kind === 'tap') throw new ValidationError('netns', spec.netns, "a TAP is made in the handle's namespace: move it afterwards with links.set(name, { netns })");
    if (spec.master !== undefined) throw new ValidationError('master', spec.master, "is looked up in the handle's namespace, not in netns: enslave it with a handle in that namespace");
  }
  kind?.validate(spec);
}

const CHANGE_KEYS = ['up', 'promisc', 'allmulti', 'arp', 'mac', 'mtu', 'master', 'name', 'alias', 'txQueueLen', 'group', 'netns'] as const satisfies ReadonlyArray<keyof LinkChanges>;

/** Validates `links.set` changes. */
export function validateChanges(ch: LinkChanges): void {
  if (ch === null || typeof ch !== 'object') throw new ValidationError('changes', ch, 'expected an object');
  checkKeys(ch, CHANGE_KEYS);
  checkBool(ch.up, 'up');
  checkBool(ch.promisc, 'promisc');
  checkBool(ch.allmulti, 'allmulti');
  checkBool(ch.arp, 'arp');
  if (ch.mac !== undefined) parseMac(ch.mac, 'mac');
  validateMtu(ch.mtu, 'mtu');
  if (ch.master !== undefined && ch.master !== null) validateIfName(ch.master, 'master');
  if (ch.name !== undefined) validateIfName(ch.name, 'name');
  checkAlias(ch.alias, true);
  if (ch.txQueueLen !== undefined) validateInt(ch.txQueueLen, 'txQueueLen', 0, 0xffffffff);
  if (ch.group !== undefined) validateInt(ch.group, 'group', 0, 0xffffffff);
  if (ch.netns !== undefined) netnsPath(ch.netns, 'netns');
}

/** The IFF_* flags and change mask for up/promisc/allmulti/arp. */
export function flagBits(ch: { up?: boolean; promisc?: boolean; allmulti?: boolean; arp?: boolean }): { flags: number; change: number } {
  let flags = 0;
  let change = 0;
  const bit = (v: boolean | undefined, b: number, invert = false) => {
    if (v === undefined) return;
    change |= b;
    if (v !== invert) flags |= b;
  };
  bit(ch.up, C.IFF_UP);
  bit(ch.promisc, C.IFF_PROMISC);
  bit(ch.allmulti, C.IFF_ALLMULTI);
  bit(ch.arp, C.IFF_NOARP, true);
  return { flags, change };
}

/** An empty IFLA_IFALIAS: clears the alias (the typed field cannot say "empty"). */
export const CLEAR_ALIAS = { type: C.IFLA_IFALIAS, data: Buffer.alloc(0) };

const FLAG_FIELDS: ReadonlyArray<[keyof LinkChanges, number]> = [
  ['up', C.IFF_UP],
  ['promisc', C.IFF_PROMISC],
  ['allmulti', C.IFF_ALLMULTI],
  ['arp', C.IFF_NOARP],
];

/**
 * The RTM_NEWLINK that puts back what a partly applied change `ch` altered: for each field of
 * `ch`, the value read `before` where it differs `now`, taken straight from the kernel's
 * attributes. Undefined when nothing differs.
 */
export function rollbackMessage(index: number, before: LinkMessage, now: LinkMessage, ch: LinkChanges): { header: { index: number; flags: number; change: number }; attrs: LinkAttrs } | undefined {
  const b = before.attrs;
  const n = now.attrs;
  const attrs: LinkAttrs = {};
  let change = 0;
  for (const [key, bit] of FLAG_FIELDS) {
    if (ch[key] !== undefined && (before.header.flags & bit) !== (now.header.flags & bit)) change |= bit;
  }
  if (ch.mac !== undefined && b.address !== undefined && n.address !== b.address) attrs.address = b.address;
  if (ch.mtu !== undefined && b.mtu !== undefined && n.mtu !== b.mtu) attrs.mtu = b.mtu;
  if (ch.name !== undefined && b.ifname !== undefined && n.ifname !== b.ifname) attrs.ifname = b.ifname;
  if (ch.txQueueLen !== undefined && b.txqlen !== undefined && n.txqlen !== b.txqlen) attrs.txqlen = b.txqlen;
  if (ch.group !== undefined && (n.group ?? 0) !== (b.group ?? 0)) attrs.group = b.group ?? 0;
  if (ch.master !== undefined && (n.master ?? 0) !== (b.master ?? 0)) attrs.master = b.master ?? 0;
  if (ch.alias !== undefined && n.ifalias !== b.ifalias) {
    if (b.ifalias === undefined || b.ifalias === '') attrs.other = [CLEAR_ALIAS];
    else attrs.ifalias = b.ifalias;
  }
  if (change === 0 && Object.keys(attrs).length === 0) return undefined;
  return { header: { index, flags: before.header.flags & change, change }, attrs };
}
