/**
 * Links: add (veth, bridge, tap, vlan, macvlan, vxlan — one file each under kinds/ — and any
 * other kind by name), set, get, find, list, delete. Operations only: the public data types are
 * in types.ts, the kind-independent conversions in link.ts, the wire format in codec/link.ts.
 * @module
 */
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as C from '../codec/constants.js';
import { decodeLinkMessage, encodeLinkMessage, type LinkAttrs, type LinkMessage } from '../codec/link.js';
import type { RtnlContext } from '../context.js';
import { ValidationError } from '../errors.js';
import { openNetns, type NetnsRef } from '../netns.js';
import { createPersistentTap } from '../tap.js';
import { NetlinkError } from '../transport/errors.js';
import type { NlMsg } from '../transport/message.js';
import { NetlinkSocket } from '../transport/socket.js';
import type { Link, LinkChanges, LinkFilter, LinkSpec, LinkStats, OtherKindSpec, TapSpec } from '../types.js';
import { checkKeys, parseMac, validateIfName, validateInt } from '../validate.js';
import { checkBool } from './common.js';
import { kindOfSpec, type EncodeContext, type KindRequest } from './kinds/index.js';
import { CLEAR_ALIAS, decodeLinkView, flagBits, rollbackMessage, toLink, validateChanges, validateSpec } from './link.js';
import { decodeLinkStats } from './stats.js';

const { ENODEV, EEXIST } = osConstants.errno;

const LINK_FILTER_KEYS = ['kind', 'master', 'up'] as const satisfies ReadonlyArray<keyof LinkFilter>;

function isNetlinkCode(err: unknown, code: string): boolean {
  return err instanceof NetlinkError && err.code === code;
}

/** The link `name` of namespace `ref`, read through a socket of that namespace. */
async function linkIn(ref: NetnsRef, name: string, op: string): Promise<Link> {
  const sock = NetlinkSocket.open({ netns: ref });
  try {
    const msgs = await sock.request(C.RTM_GETLINK, 0, encodeLinkMessage({ header: {}, attrs: { ifname: name, extMask: C.RTEXT_FILTER_SKIP_STATS } }), { op: `${op}: reading it in its namespace` });
    const m = msgs.find((x) => x.type === C.RTM_NEWLINK);
    if (!m) throw new NetlinkError(ENODEV, op, { message: `no link '${name}' in the target namespace` });
    return toLink(decodeLinkView(m.payload));
  } finally {
    sock.close();
  }
}

/**
 * What a kind's encoder may ask of `links.add` (one object, no closures: it is made for every
 * creation): link indices, and namespace fds that stay open until {@link close}.
 */
class AddContext implements EncodeContext {
  private fds: number[] | undefined;
  constructor(
    private readonly ctx: RtnlContext,
    private readonly op: string,
  ) {}
  index(name: string, field: string): Promise<number> {
    return this.ctx.linkIndex(name, field, this.op);
  }
  netnsFd(ref: NetnsRef, field: string): number {
    const fd = openNetns(ref, field);
    (this.fds ??= []).push(fd);
    return fd;
  }
  /** Closes the namespace fds opened for the request. */
  close(): void {
    if (this.fds) for (const fd of this.fds) closeSync(fd);
    this.fds = undefined;
  }
}

/** The RTM_NEWLINK payload of `links.add`: the kind's request and the common fields of `spec`. */
function addRequest(spec: LinkSpec | OtherKindSpec, req: KindRequest, masterIndex: number | undefined, enc: AddContext): Buffer {
  const attrs: LinkAttrs = req.attrs ? { ifname: spec.name, linkinfo: req.linkinfo, ...req.attrs } : { ifname: spec.name, linkinfo: req.linkinfo };
  if (spec.mac !== undefined) attrs.address = parseMac(spec.mac);
  if (spec.mtu !== undefined) attrs.mtu = spec.mtu;
  if (masterIndex !== undefined) attrs.master = masterIndex;
  if (spec.alias !== undefined) attrs.ifalias = spec.alias;
  if (spec.txQueueLen !== undefined) attrs.txqlen = spec.txQueueLen;
  if (spec.netns !== undefined) attrs.netNsFd = enc.netnsFd(spec.netns, 'netns');
  const { flags, change } = flagBits(spec);
  return encodeLinkMessage({ header: { flags, change }, attrs });
}

/** The new link in the kernel's echo of a creation (undefined if it is not there). */
function echoedLink(echoed: readonly NlMsg[], spec: LinkSpec | OtherKindSpec, masterIndex: number | undefined): Link | undefined {
  for (const m of echoed) {
    if (m.type !== C.RTM_NEWLINK) continue;
    const d = decodeLinkView(m.payload);
    if (d.attrs.ifname === spec.name) {
      const names = masterIndex !== undefined && spec.master !== undefined ? new Map([[masterIndex, spec.master]]) : undefined;
      return toLink(d, names);
    }
  }
  return undefined;
}

/** Makes the Links of a handle (its constructor is private: not part of the API). Internal. */
export let newLinks: (ctx: RtnlContext) => Links;

/** Links of one {@link Rtnl} handle's namespace. */
export class Links {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newLinks = (ctx) => new Links(ctx);
  }

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
    const enc = new AddContext(this.ctx, op);
    try {
      const kind = kindOfSpec(spec.kind);
      const asked = kind?.encode ? kind.encode(spec, enc) : { linkinfo: { kind: spec.kind } };
      const payload = addRequest(spec, asked instanceof Promise ? await asked : asked, masterIndex, enc);
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
      return echoedLink(echoed, spec, masterIndex) ?? (await this.get(spec.name));
    } finally {
      enc.close();
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
      throw new NetlinkError(EEXIST, op, { message: `a link named '${spec.name}' exists` });
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
    if (ch.group !== undefined) attrs.group = ch.group;
    if (ch.master !== undefined) attrs.master = ch.master === null ? 0 : await this.ctx.linkIndex(ch.master, 'master', op);
    if (ch.alias !== undefined) {
      if (ch.alias === null || ch.alias === '') attrs.other = [CLEAR_ALIAS];
      else attrs.ifalias = ch.alias;
    }
    const { flags, change } = flagBits(ch);
    return encodeLinkMessage({ header: { index, flags, change }, attrs });
  }

  /** Puts back the fields of `ch` that differ now from `before` (best effort, errors ignored). */
  private async restore(index: number, before: LinkMessage, ch: LinkChanges, op: string): Promise<void> {
    try {
      const now = await this.getMessage(index, op);
      const back = rollbackMessage(index, before, now, ch);
      if (back) await this.ctx.request(C.RTM_NEWLINK, 0, encodeLinkMessage(back), `${op} (rollback)`);
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
    if (!m) throw new NetlinkError(ENODEV, op, { message: 'no link in the answer' });
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
    checkKeys(filter, LINK_FILTER_KEYS, 'filter');
    if (filter.kind !== undefined && typeof filter.kind !== 'string') throw new ValidationError('filter.kind', filter.kind, 'expected a string');
    if (filter.master !== undefined) validateIfName(filter.master, 'filter.master');
    checkBool(filter.up, 'filter.up');
    const r = await this.ctx.dumpInPlace(C.RTM_GETLINK, encodeLinkMessage({ header: {}, attrs: { extMask: C.RTEXT_FILTER_SKIP_STATS } }), 'links.list');
    const decoded: LinkMessage[] = [];
    const names = new Map<number, string>();
    for (let i = 0; i < r.types.length; i++) {
      if (r.types[i] !== C.RTM_NEWLINK) continue;
      const d = decodeLinkView(r.bufs[i]!, r.starts[i]!, r.ends[i]!);
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
   * The counters of every link (one dump with the statistics: {@link list} asks the kernel to
   * skip them), or of the links named in `names` (the others are left out), in index order.
   */
  async stats(names?: readonly string[]): Promise<LinkStats[]> {
    if (names !== undefined) {
      if (!Array.isArray(names)) throw new ValidationError('names', names, 'expected an array of interface names');
      names.forEach((n, i) => validateIfName(n, `names[${i}]`));
    }
    const want = names === undefined ? undefined : new Set(names);
    const r = await this.ctx.dumpInPlace(C.RTM_GETLINK, encodeLinkMessage({ header: {}, attrs: {} }), 'links.stats');
    const out: LinkStats[] = [];
    for (let i = 0; i < r.types.length; i++) {
      if (r.types[i] !== C.RTM_NEWLINK) continue;
      const s = decodeLinkStats(r.bufs[i]!, r.starts[i]!, r.ends[i]!);
      if (s && (want === undefined || want.has(s.name))) out.push(s);
    }
    return out.sort((a, b) => a.index - b.index);
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

  /**
   * Deletes every link of the group `group` (1 to 4294967295) in one request (RTM_DELLINK with
   * IFLA_GROUP, like `ip link delete group N`): the kernel unregisters them together, with one
   * round of its RCU waits instead of one per link (300 TAPs: ~60 ms instead of ~6 s here).
   * Nothing is deleted when one of them cannot be (a link without rtnetlink ops: EOPNOTSUPP).
   * Group 0, the default group of almost every link, is refused.
   * @throws {ValidationError} for a bad group. {@link NetlinkError} `ENODEV` when no link is in the group.
   */
  async deleteGroup(group: number): Promise<void> {
    validateInt(group, 'group', 1, 0xffffffff);
    await this.ctx.request(C.RTM_DELLINK, 0, encodeLinkMessage({ header: {}, attrs: { group } }), `links.deleteGroup ${group}`);
  }
}

