/**
 * Links: add (veth, bridge, tap, vlan, macvlan, vxlan, other kinds), set, get, list, delete.
 * Operations only; the data types are in types.ts, the wire format in codec/link.ts.
 * @module
 */
import { closeSync } from 'node:fs';
import { isIP } from 'node:net';
import * as C from './codec/constants.js';
import {
  decodeLinkMessage, encodeLinkMessage,
  type BridgeData, type BridgePortData, type LinkAttrs, type LinkInfoAttrs, type LinkMessage, type MacvlanData, type TunData, type VlanData, type VxlanData,
} from './codec/link.js';
import type { RtnlContext } from './context.js';
import { SystemError, ValidationError } from './errors.js';
import { netnsPath, openNetns, type NetnsRef } from './netns.js';
import { createPersistentTap } from './tap.js';
import { NetlinkError } from './transport/errors.js';
import { NetlinkSocket } from './transport/socket.js';
import type {
  BridgePortState, Link, LinkChanges, LinkFilter, LinkSpec, MacvlanMode, OperState, OtherKindSpec, BridgeSpec, VethSpec, VlanSpec, MacvlanSpec, VxlanSpec, TapSpec,
} from './types.js';
import { parseMac, validateIfName, validateInt, validateIp } from './validate.js';

const MACVLAN_MODES: Record<MacvlanMode, number> = {
  private: C.MACVLAN_MODE_PRIVATE,
  vepa: C.MACVLAN_MODE_VEPA,
  bridge: C.MACVLAN_MODE_BRIDGE,
  passthru: C.MACVLAN_MODE_PASSTHRU,
  source: C.MACVLAN_MODE_SOURCE,
};
const BRPORT_STATES: BridgePortState[] = ['disabled', 'listening', 'learning', 'forwarding', 'blocking'];

/** Seconds (API) → centiseconds (kernel clock_t at USER_HZ=100). */
function toCentis(seconds: number): number {
  return Math.round(seconds * 100);
}
function fromCentis(c: number | undefined): number | null {
  return c === undefined ? null : c / 100;
}

/** Converts a decoded link message to the public {@link Link}. `names` resolves the master's name. */
export function toLink(m: LinkMessage, names?: ReadonlyMap<number, string>): Link {
  const a = m.attrs;
  const f = m.header.flags;
  const info = a.linkinfo;
  const kind = info?.kind ?? null;
  const link: Link = {
    index: m.header.index,
    name: a.ifname ?? '',
    kind,
    type: m.header.type === C.ARPHRD_ETHER ? 'ether' : m.header.type === C.ARPHRD_LOOPBACK ? 'loopback' : m.header.type === C.ARPHRD_NONE ? 'none' : String(m.header.type),
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
    promiscuity: a.promiscuity ?? 0,
  };
  const data = info?.data;
  switch (kind) {
    case 'veth':
      link.veth = { peerIndex: a.link ?? null, peerNetnsId: a.linkNetnsid ?? null };
      break;
    case 'bridge': {
      const d = (data ?? {}) as BridgeData;
      link.bridge = {
        stp: (d.stpState ?? 0) !== 0,
        forwardDelay: fromCentis(d.forwardDelay),
        helloTime: fromCentis(d.helloTime),
        maxAge: fromCentis(d.maxAge),
        ageingTime: fromCentis(d.ageingTime),
        priority: d.priority ?? null,
        vlanFiltering: (d.vlanFiltering ?? 0) !== 0,
      };
      break;
    }
    case 'vlan': {
      const d = (data ?? {}) as VlanData;
      link.vlan = { id: d.id ?? null, protocol: d.protocol === C.ETH_P_8021AD ? '802.1ad' : d.protocol === C.ETH_P_8021Q ? '802.1Q' : null };
      break;
    }
    case 'macvlan':
    case 'macvtap': {
      const d = (data ?? {}) as MacvlanData;
      const mode = (Object.keys(MACVLAN_MODES) as MacvlanMode[]).find((k) => MACVLAN_MODES[k] === d.mode) ?? null;
      link.macvlan = { mode };
      break;
    }
    case 'vxlan': {
      const d = (data ?? {}) as VxlanData;
      link.vxlan = {
        vni: d.id ?? null,
        remote: d.group ?? d.group6 ?? null,
        local: d.local ?? d.local6 ?? null,
        port: d.port ?? null,
        ttl: d.ttl ?? null,
        learning: d.learning === undefined ? null : d.learning !== 0,
        devIndex: d.link ? d.link : null,
      };
      break;
    }
    case 'tun': {
      const d = (data ?? {}) as TunData;
      link.tun = {
        mode: d.type === C.IFF_TAP ? 'tap' : d.type === C.IFF_TUN ? 'tun' : null,
        persist: !!d.persist,
        vnetHdr: !!d.vnetHdr,
        multiQueue: !!d.multiQueue,
        pi: !!d.pi,
        owner: d.owner === undefined || d.owner === 0xffffffff ? null : d.owner,
        group: d.group === undefined || d.group === 0xffffffff ? null : d.group,
      };
      break;
    }
    default:
      break;
  }
  if (info?.slaveKind === 'bridge') {
    const d = (info.slaveData ?? {}) as BridgePortData;
    link.bridgePort = { state: d.state === undefined ? null : (BRPORT_STATES[d.state] ?? null), priority: d.priority ?? null, cost: d.cost ?? null };
  }
  return link;
}

function checkBool(v: unknown, field: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw new ValidationError(field, v, 'expected true or false');
}

function validateMtu(v: unknown, field: string): void {
  if (v !== undefined) validateInt(v, field, 68, 65535);
}

function validateSeconds(v: unknown, field: string, max: number): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max || Math.abs(v * 100 - Math.round(v * 100)) > 1e-6) {
    throw new ValidationError(field, v, `expected seconds from 0 to ${max} in steps of 0.01`);
  }
}

const KIND_RE = /^[a-z][a-z0-9_-]{0,31}$/;

/** Validates a link spec completely (before anything is sent). Returns the normalised MACs. */
function validateSpec(spec: LinkSpec | OtherKindSpec): void {
  if (spec === null || typeof spec !== 'object') throw new ValidationError('spec', spec, 'expected an object');
  if (typeof spec.kind !== 'string' || !KIND_RE.test(spec.kind)) throw new ValidationError('kind', spec.kind, 'expected a link kind such as veth, bridge or tap');
  validateIfName(spec.name, 'name');
  if (spec.mac !== undefined) parseMac(spec.mac, 'mac');
  validateMtu(spec.mtu, 'mtu');
  checkBool(spec.up, 'up');
  checkBool(spec.promisc, 'promisc');
  if (spec.master !== undefined) validateIfName(spec.master, 'master');
  if (spec.alias !== undefined && (typeof spec.alias !== 'string' || Buffer.byteLength(spec.alias) > 255)) {
    throw new ValidationError('alias', spec.alias, 'expected a string of at most 255 bytes');
  }
  if (spec.txQueueLen !== undefined) validateInt(spec.txQueueLen, 'txQueueLen', 0, 0xffffffff);
  if (spec.netns !== undefined) {
    netnsPath(spec.netns, 'netns');
    if (spec.kind === 'tap') throw new ValidationError('netns', spec.netns, "a TAP is made in the handle's namespace: move it afterwards with links.set(name, { netns })");
    if (spec.master !== undefined) throw new ValidationError('master', spec.master, "is looked up in the handle's namespace, not in netns: enslave it with a handle in that namespace");
  }
  switch (spec.kind) {
    case 'veth': {
      const s = spec as VethSpec;
      if (!s.peer || typeof s.peer !== 'object') throw new ValidationError('peer', s.peer, 'a veth needs { name } of its peer');
      validateIfName(s.peer.name, 'peer.name');
      if (s.peer.mac !== undefined) parseMac(s.peer.mac, 'peer.mac');
      validateMtu(s.peer.mtu, 'peer.mtu');
      if (s.peer.netns !== undefined) netnsPath(s.peer.netns, 'peer.netns');
      else if (s.peer.name === s.name && s.netns === undefined) throw new ValidationError('peer.name', s.peer.name, 'must differ from name');
      break;
    }
    case 'bridge': {
      const s = spec as BridgeSpec;
      checkBool(s.stp, 'stp');
      checkBool(s.vlanFiltering, 'vlanFiltering');
      validateSeconds(s.forwardDelay, 'forwardDelay', 30);
      validateSeconds(s.helloTime, 'helloTime', 10);
      validateSeconds(s.maxAge, 'maxAge', 40);
      validateSeconds(s.ageingTime, 'ageingTime', 1_000_000);
      if (s.priority !== undefined) validateInt(s.priority, 'priority', 0, 65535);
      break;
    }
    case 'tap': {
      const s = spec as TapSpec;
      if (s.owner !== undefined) validateInt(s.owner, 'owner', 0, 0xfffffffe);
      if (s.group !== undefined) validateInt(s.group, 'group', 0, 0xfffffffe);
      checkBool(s.multiQueue, 'multiQueue');
      checkBool(s.vnetHdr, 'vnetHdr');
      break;
    }
    case 'vlan': {
      const s = spec as VlanSpec;
      validateIfName(s.link, 'link');
      validateInt(s.id, 'id', 1, 4094);
      if (s.protocol !== undefined && s.protocol !== '802.1Q' && s.protocol !== '802.1ad') {
        throw new ValidationError('protocol', s.protocol, "expected '802.1Q' or '802.1ad'");
      }
      break;
    }
    case 'macvlan': {
      const s = spec as MacvlanSpec;
      validateIfName(s.link, 'link');
      if (s.mode !== undefined && !Object.prototype.hasOwnProperty.call(MACVLAN_MODES, s.mode)) {
        throw new ValidationError('mode', s.mode, `expected one of ${Object.keys(MACVLAN_MODES).join(', ')}`);
      }
      break;
    }
    case 'vxlan': {
      const s = spec as VxlanSpec;
      validateInt(s.vni, 'vni', 0, 0xffffff);
      if (s.remote !== undefined && s.group !== undefined) throw new ValidationError('group', s.group, 'give remote or group, not both');
      let fam: 4 | 6 | undefined;
      if (s.remote !== undefined) fam = validateIp(s.remote, 'remote');
      if (s.group !== undefined) {
        fam = validateIp(s.group, 'group');
        const first = fam === 4 ? Number(s.group.split('.')[0]) : parseInt(s.group.split(':')[0] || '0', 16);
        if (fam === 4 ? first < 224 || first > 239 : (first & 0xff00) !== 0xff00) throw new ValidationError('group', s.group, 'expected a multicast address');
        if (s.dev === undefined) throw new ValidationError('dev', s.dev, 'a multicast group needs dev');
      }
      if (s.local !== undefined) {
        const lf = validateIp(s.local, 'local');
        if (fam !== undefined && lf !== fam) throw new ValidationError('local', s.local, `must be IPv${fam} like the remote`);
      }
      if (s.dev !== undefined) validateIfName(s.dev, 'dev');
      if (s.port !== undefined) validateInt(s.port, 'port', 1, 65535);
      if (s.ttl !== undefined) validateInt(s.ttl, 'ttl', 0, 255);
      checkBool(s.learning, 'learning');
      break;
    }
    default:
      break;
  }
}

/** Validates `links.set` changes. */
function validateChanges(ch: LinkChanges): void {
  if (ch === null || typeof ch !== 'object') throw new ValidationError('changes', ch, 'expected an object');
  const known = new Set(['up', 'promisc', 'allmulti', 'arp', 'mac', 'mtu', 'master', 'name', 'alias', 'txQueueLen', 'netns']);
  for (const k of Object.keys(ch)) if (!known.has(k)) throw new ValidationError(k, (ch as Record<string, unknown>)[k], 'unknown field');
  checkBool(ch.up, 'up');
  checkBool(ch.promisc, 'promisc');
  checkBool(ch.allmulti, 'allmulti');
  checkBool(ch.arp, 'arp');
  if (ch.mac !== undefined) parseMac(ch.mac, 'mac');
  validateMtu(ch.mtu, 'mtu');
  if (ch.master !== undefined && ch.master !== null) validateIfName(ch.master, 'master');
  if (ch.name !== undefined) validateIfName(ch.name, 'name');
  if (ch.alias !== undefined && ch.alias !== null && (typeof ch.alias !== 'string' || Buffer.byteLength(ch.alias) > 255)) {
    throw new ValidationError('alias', ch.alias, 'expected a string of at most 255 bytes, or null');
  }
  if (ch.txQueueLen !== undefined) validateInt(ch.txQueueLen, 'txQueueLen', 0, 0xffffffff);
  if (ch.netns !== undefined) netnsPath(ch.netns, 'netns');
}

/** The IFF_* flags and mask for up/promisc/allmulti/arp. */
function flagBits(ch: { up?: boolean; promisc?: boolean; allmulti?: boolean; arp?: boolean }): { flags: number; change: number } {
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

function isNetlinkCode(err: unknown, code: string): boolean {
  return err instanceof NetlinkError && err.code === code;
}

/** The link `name` of namespace `ref`, read through a socket of that namespace. */
async function linkIn(ref: NetnsRef, name: string, op: string): Promise<Link> {
  const sock = NetlinkSocket.open({ netns: ref });
  try {
    const msgs = await sock.request(C.RTM_GETLINK, 0, encodeLinkMessage({ header: {}, attrs: { ifname: name, extMask: C.RTEXT_FILTER_SKIP_STATS } }), { op: `${op}: reading it in its namespace` });
    const m = msgs.find((x) => x.type === C.RTM_NEWLINK);
    if (!m) throw new NetlinkError(19, op, { message: `no link '${name}' in the target namespace` });
    return toLink(decodeLinkMessage(m.payload));
  } finally {
    sock.close();
  }
}

/** Links of one {@link Rtnl} handle's namespace. */
export class Links {
  /** @internal */
  constructor(private readonly ctx: RtnlContext) {}

  /**
   * Creates a link and returns it as the kernel reports it afterwards.
   *
   * veth, bridge, vlan, macvlan, vxlan and any other kernel kind are one RTM_NEWLINK (with `up`,
   * `promisc`, `mac`, `mtu`, `master` in the same message: the kernel applies all or nothing).
   * `tap` is created by ioctl on /dev/net/tun in the handle's namespace and made persistent; its
   * `mac`/`mtu`/`master`/`up` are then set by {@link set}; if that fails the TAP is deleted again.
   *
   * With `netns` (not for `tap`, not with `master`) the link is created directly in that namespace
   * (IFLA_NET_NS_FD), and the returned Link is read there; a vlan/macvlan `link` parent and a
   * veth peer without `peer.netns` are in the handle's namespace.
   *
   * With `{ result: false }` nothing is returned and the kernel is not asked to echo the new link
   * (NLM_F_ECHO): the RTM_NEWLINK alone, as `ip link add` sends it. For creating links in bulk:
   * building and decoding the echo costs as much as the creation for a bridge (see
   * docs/net-api.md).
   *
   * @throws {ValidationError} for bad input, before anything is sent.
   * @throws {NetlinkError} e.g. `EEXIST` (name taken), `EOPNOTSUPP` with extack "Unknown device type".
   * @throws {SystemError} when the TAP ioctl fails.
   */
  async add(spec: LinkSpec | OtherKindSpec, options?: { result?: true }): Promise<Link>;
  async add(spec: LinkSpec | OtherKindSpec, options: { result: false }): Promise<void>;
  async add(spec: LinkSpec | OtherKindSpec, options: { result?: boolean } = {}): Promise<Link | void> {
    validateSpec(spec);
    if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
    const want = options.result !== false;
    const op = `links.add ${spec.name}`;
    if (spec.kind === 'tap') {
      const link = await this.addTap(spec as TapSpec, op);
      return want ? link : undefined;
    }
    const masterIndex = spec.master !== undefined ? await this.ctx.linkIndex(spec.master, 'master', op) : undefined;
    const fds: number[] = [];
    try {
      const linkinfo = await this.linkInfoFor(spec, op, fds);
      const attrs: LinkAttrs = { ifname: spec.name, linkinfo };
      if (spec.mac !== undefined) attrs.address = parseMac(spec.mac);
      if (spec.mtu !== undefined) attrs.mtu = spec.mtu;
      if (masterIndex !== undefined) attrs.master = masterIndex;
      if (spec.alias !== undefined) attrs.ifalias = spec.alias;
      if (spec.txQueueLen !== undefined) attrs.txqlen = spec.txQueueLen;
      if (spec.netns !== undefined) {
        const fd = openNetns(spec.netns, 'netns');
        fds.push(fd);
        attrs.netNsFd = fd;
      }
      const parent = (spec as VlanSpec | MacvlanSpec).link;
      if ((spec.kind === 'vlan' || spec.kind === 'macvlan') && parent !== undefined) attrs.link = await this.ctx.linkIndex(parent, 'link', op);
      const { flags, change } = flagBits(spec);
      const payload = encodeLinkMessage({ header: { flags, change }, attrs });
      if (!want) {
        await this.ctx.request(C.RTM_NEWLINK, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
        return undefined;
      }
      if (spec.netns !== undefined) {
        // the kernel echoes into the link's namespace, not to this socket: read it there
        await this.ctx.request(C.RTM_NEWLINK, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
        return await linkIn(spec.netns, spec.name, op);
      }
      const echoed = await this.ctx.request(C.RTM_NEWLINK, C.NLM_F_CREATE | C.NLM_F_EXCL | C.NLM_F_ECHO, payload, op);
      for (const m of echoed) {
        if (m.type !== C.RTM_NEWLINK) continue;
        const d = decodeLinkMessage(m.payload);
        if (d.attrs.ifname === spec.name) {
          const names = masterIndex !== undefined && spec.master !== undefined ? new Map([[masterIndex, spec.master]]) : undefined;
          return toLink(d, names);
        }
      }
      return await this.get(spec.name);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  private async linkInfoFor(spec: LinkSpec | OtherKindSpec, op: string, fds: number[]): Promise<LinkInfoAttrs> {
    switch (spec.kind) {
      case 'veth': {
        const s = spec as VethSpec;
        const peerAttrs: LinkAttrs = { ifname: s.peer.name };
        if (s.peer.mac !== undefined) peerAttrs.address = parseMac(s.peer.mac, 'peer.mac');
        if (s.peer.mtu !== undefined) peerAttrs.mtu = s.peer.mtu;
        if (s.peer.netns !== undefined) {
          const fd = openNetns(s.peer.netns, 'peer.netns');
          fds.push(fd);
          peerAttrs.netNsFd = fd;
        }
        return { kind: 'veth', data: { peer: { header: { family: 0, type: 0, index: 0, flags: 0, change: 0 }, attrs: peerAttrs } } };
      }
      case 'bridge': {
        const s = spec as BridgeSpec;
        const d: BridgeData = {};
        if (s.forwardDelay !== undefined) d.forwardDelay = toCentis(s.forwardDelay);
        if (s.helloTime !== undefined) d.helloTime = toCentis(s.helloTime);
        if (s.maxAge !== undefined) d.maxAge = toCentis(s.maxAge);
        if (s.ageingTime !== undefined) d.ageingTime = toCentis(s.ageingTime);
        if (s.stp !== undefined) d.stpState = s.stp ? 1 : 0;
        if (s.priority !== undefined) d.priority = s.priority;
        if (s.vlanFiltering !== undefined) d.vlanFiltering = s.vlanFiltering ? 1 : 0;
        return Object.keys(d).length ? { kind: 'bridge', data: d } : { kind: 'bridge' };
      }
      case 'vlan': {
        const s = spec as VlanSpec;
        const d: VlanData = { id: s.id };
        if (s.protocol !== undefined) d.protocol = s.protocol === '802.1ad' ? C.ETH_P_8021AD : C.ETH_P_8021Q;
        return { kind: 'vlan', data: d };
      }
      case 'macvlan': {
        const s = spec as MacvlanSpec;
        return { kind: 'macvlan', data: { mode: MACVLAN_MODES[s.mode ?? 'bridge'] } };
      }
      case 'vxlan': {
        const s = spec as VxlanSpec;
        const d: VxlanData = { id: s.vni, port: s.port ?? 4789 };
        const remote = s.remote ?? s.group;
        if (remote !== undefined) {
          if (isIP(remote) === 6) d.group6 = remote;
          else d.group = remote;
        }
        if (s.local !== undefined) {
          if (isIP(s.local) === 6) d.local6 = s.local;
          else d.local = s.local;
        }
        if (s.dev !== undefined) d.link = await this.ctx.linkIndex(s.dev, 'dev', op);
        if (s.ttl !== undefined) d.ttl = s.ttl;
        if (s.learning !== undefined) d.learning = s.learning ? 1 : 0;
        return { kind: 'vxlan', data: d };
      }
      default:
        return { kind: spec.kind };
    }
  }

  private async addTap(spec: TapSpec, op: string): Promise<Link> {
    // Resolve the master first so that a bad name fails before the TAP exists.
    if (spec.master !== undefined) await this.ctx.linkIndex(spec.master, 'master', op);
    const tapOpts: Parameters<typeof createPersistentTap>[0] = { name: spec.name, netns: this.ctx.nsRef };
    if (spec.owner !== undefined) tapOpts.owner = spec.owner;
    if (spec.group !== undefined) tapOpts.group = spec.group;
    if (spec.multiQueue) tapOpts.multiQueue = true;
    if (spec.vnetHdr) tapOpts.vnetHdr = true;
    // /dev/net/tun attaches to an existing TAP of that name instead of failing: refuse that here.
    if (await this.find(spec.name)) {
      throw new NetlinkError(17, op, { message: `a link named '${spec.name}' exists` });
    }
    createPersistentTap(tapOpts);
    try {
      const ch: LinkChanges = {};
      if (spec.mac !== undefined) ch.mac = spec.mac;
      if (spec.mtu !== undefined) ch.mtu = spec.mtu;
      if (spec.master !== undefined) ch.master = spec.master;
      if (spec.up !== undefined) ch.up = spec.up;
      if (spec.promisc !== undefined) ch.promisc = spec.promisc;
      if (spec.alias !== undefined) ch.alias = spec.alias;
      if (spec.txQueueLen !== undefined) ch.txQueueLen = spec.txQueueLen;
      if (Object.keys(ch).length) await this.set(spec.name, ch);
      return await this.get(spec.name);
    } catch (err) {
      await this.delete(spec.name).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Changes a link. Everything but `netns` goes in one RTM_NEWLINK; the kernel applies its parts
   * in turn, so when it refuses one, the fields already changed are put back as they were (read
   * before). A move to another namespace (`netns`) comes last, after the rest succeeded, and
   * undoes the rest if it fails.
   * @throws {ValidationError} for bad input, before anything is sent.
   * @throws {NetlinkError} e.g. `ENODEV`, `EBUSY` (rename while up), `ERANGE` (MTU).
   */
  async set(link: string | number, changes: LinkChanges): Promise<void> {
    validateChanges(changes);
    const op = `links.set ${String(link)}`;
    const before = await this.getMessage(link, op);
    const index = before.header.index;
    const { netns, ...rest } = changes;
    const haveRest = Object.values(rest).some((v) => v !== undefined);
    if (haveRest) {
      const payload = await this.changePayload(index, rest, op);
      try {
        await this.ctx.request(C.RTM_NEWLINK, 0, payload, op);
      } catch (err) {
        await this.restore(index, before, rest, op);
        throw err;
      }
    }
    if (netns !== undefined) {
      const fd = openNetns(netns, 'netns');
      try {
        await this.ctx.request(C.RTM_NEWLINK, 0, encodeLinkMessage({ header: { index }, attrs: { netNsFd: fd } }), op);
      } catch (err) {
        if (haveRest) await this.restore(index, before, rest, op);
        throw err;
      } finally {
        closeSync(fd);
      }
    }
  }

  private async changePayload(index: number, ch: LinkChanges, op: string): Promise<Buffer> {
    const attrs: LinkAttrs = {};
    if (ch.mac !== undefined) attrs.address = parseMac(ch.mac);
    if (ch.mtu !== undefined) attrs.mtu = ch.mtu;
    if (ch.name !== undefined) attrs.ifname = ch.name;
    if (ch.txQueueLen !== undefined) attrs.txqlen = ch.txQueueLen;
    if (ch.master !== undefined) attrs.master = ch.master === null ? 0 : await this.ctx.linkIndex(ch.master, 'master', op);
    if (ch.alias !== undefined) {
      if (ch.alias === null || ch.alias === '') attrs.other = [{ type: C.IFLA_IFALIAS, data: Buffer.alloc(0) }];
      else attrs.ifalias = ch.alias;
    }
    const { flags, change } = flagBits(ch);
    return encodeLinkMessage({ header: { index, flags, change }, attrs });
  }

  /** Puts back the fields of `ch` that differ now from `before` (best effort, errors ignored). */
  private async restore(index: number, before: LinkMessage, ch: LinkChanges, op: string): Promise<void> {
    let now: LinkMessage;
    try {
      now = await this.getMessage(index, op);
    } catch {
      return;
    }
    const b = toLink(before);
    const n = toLink(now);
    const back: LinkChanges = {};
    if (ch.up !== undefined && n.flags.up !== b.flags.up) back.up = b.flags.up;
    if (ch.promisc !== undefined && n.flags.promisc !== b.flags.promisc) back.promisc = b.flags.promisc;
    if (ch.allmulti !== undefined && n.flags.allmulti !== b.flags.allmulti) back.allmulti = b.flags.allmulti;
    if (ch.arp !== undefined && n.flags.noarp !== b.flags.noarp) back.arp = !b.flags.noarp;
    if (ch.mac !== undefined && n.mac !== b.mac && b.mac) back.mac = b.mac;
    if (ch.mtu !== undefined && n.mtu !== b.mtu) back.mtu = b.mtu;
    if (ch.name !== undefined && n.name !== b.name) back.name = b.name;
    if (ch.alias !== undefined && n.alias !== b.alias) back.alias = b.alias;
    if (ch.txQueueLen !== undefined && n.txQueueLen !== b.txQueueLen && b.txQueueLen !== null) back.txQueueLen = b.txQueueLen;
    const attrs: LinkAttrs = {};
    if (ch.master !== undefined && n.masterIndex !== b.masterIndex) attrs.master = b.masterIndex ?? 0;
    if (!Object.keys(back).length && attrs.master === undefined) return;
    try {
      const payload = await this.changePayload(index, back, op);
      const d = decodeLinkMessage(payload);
      if (attrs.master !== undefined) d.attrs.master = attrs.master;
      await this.ctx.request(C.RTM_NEWLINK, 0, encodeLinkMessage(d), `${op} (rollback)`);
    } catch {
      /* best effort: the original error is what the caller sees */
    }
  }

  private async getMessage(link: string | number, op: string): Promise<LinkMessage> {
    const attrs: LinkAttrs = { extMask: C.RTEXT_FILTER_SKIP_STATS };
    let index = 0;
    if (typeof link === 'number') {
      if (!Number.isInteger(link) || link <= 0) throw new ValidationError('link', link, 'expected an interface name or a positive index');
      index = link;
    } else {
      validateIfName(link, 'link');
      attrs.ifname = link;
    }
    const msgs = await this.ctx.request(C.RTM_GETLINK, 0, encodeLinkMessage({ header: { index }, attrs }), op);
    const m = msgs.find((x) => x.type === C.RTM_NEWLINK);
    if (!m) throw new NetlinkError(19, op, { message: 'no link in the answer' });
    return decodeLinkMessage(m.payload);
  }

  /**
   * One link by name or index.
   * @throws {NetlinkError} with code `ENODEV` when there is no such link.
   */
  async get(link: string | number): Promise<Link> {
    const op = `links.get ${String(link)}`;
    const m = await this.getMessage(link, op);
    let names: Map<number, string> | undefined;
    if (m.attrs.master) {
      try {
        const master = await this.getMessage(m.attrs.master, op);
        names = new Map([[master.header.index, master.attrs.ifname ?? '']]);
      } catch {
        /* the master went away meanwhile */
      }
    }
    return toLink(m, names);
  }

  /** Like {@link get} but resolves to undefined when there is no such link. */
  async find(link: string | number): Promise<Link | undefined> {
    try {
      return await this.get(link);
    } catch (err) {
      if (isNetlinkCode(err, 'ENODEV')) return undefined;
      throw err;
    }
  }

  /** Every link (one dump), optionally filtered, in index order. */
  async list(filter: LinkFilter = {}): Promise<Link[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected an object');
    if (filter.kind !== undefined && typeof filter.kind !== 'string') throw new ValidationError('filter.kind', filter.kind, 'expected a string');
    if (filter.master !== undefined) validateIfName(filter.master, 'filter.master');
    checkBool(filter.up, 'filter.up');
    const msgs = await this.ctx.request(C.RTM_GETLINK, C.NLM_F_DUMP, encodeLinkMessage({ header: {}, attrs: { extMask: C.RTEXT_FILTER_SKIP_STATS } }), 'links.list');
    const decoded: LinkMessage[] = [];
    const names = new Map<number, string>();
    for (const m of msgs) {
      if (m.type !== C.RTM_NEWLINK) continue;
      const d = decodeLinkMessage(m.payload);
      decoded.push(d);
      if (d.attrs.ifname !== undefined) names.set(d.header.index, d.attrs.ifname);
    }
    let links = decoded.map((d) => toLink(d, names));
    if (filter.kind !== undefined) {
      const k = filter.kind === 'tap' ? 'tun' : filter.kind;
      links = links.filter((l) => l.kind === k && (filter.kind !== 'tap' || l.tun?.mode === 'tap'));
    }
    if (filter.master !== undefined) links = links.filter((l) => l.master === filter.master);
    if (filter.up !== undefined) links = links.filter((l) => l.flags.up === filter.up);
    return links.sort((a, b) => a.index - b.index);
  }

  /**
   * Deletes a link (RTM_DELLINK; a veth takes its peer along, a persistent TAP goes too).
   * @throws {NetlinkError} with code `ENODEV` when there is no such link.
   */
  async delete(link: string | number): Promise<void> {
    const op = `links.delete ${String(link)}`;
    let payload: Buffer;
    if (typeof link === 'number') {
      if (!Number.isInteger(link) || link <= 0) throw new ValidationError('link', link, 'expected an interface name or a positive index');
      payload = encodeLinkMessage({ header: { index: link }, attrs: {} });
    } else {
      validateIfName(link, 'link');
      payload = encodeLinkMessage({ header: {}, attrs: { ifname: link } });
    }
    await this.ctx.request(C.RTM_DELLINK, 0, payload, op);
  }
}

