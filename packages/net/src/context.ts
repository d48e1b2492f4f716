/**
 * What the object-kind modules (links, addresses, ...) share from their {@link Rtnl} handle. Internal.
 * @module
 */
import { ValidationError } from './errors.js';
import { LinkNames } from './link-names.js';
import type { NetlinkSocket } from './transport/socket.js';
import type { NlMsg } from './transport/message.js';
import { InPlaceReplies } from './transport/pending.js';
import type { InternalRequestOptions } from './transport/socket-options.js';
import { validateIfName } from './validate.js';
import * as C from './codec/constants.js';
import { pick } from './codec/attrs.js';
import { decodeLinkAt, decodeLinkMessage, encodeLinkMessage, linkSchema } from './codec/link.js';

/** Only IFLA_IFNAME: what {@link RtnlContext.linkNames} reads of each link. */
const namesSchema = pick(linkSchema, ['ifname']);

/** The handle's socket and namespace, as the object modules use them. */
export class RtnlContext {
  private readonly names: LinkNames;

  constructor(
    readonly sock: NetlinkSocket,
    /** The handle's namespace as a path that stays valid while the handle is open (`/proc/self/fd/N`). */
    readonly nsPath: string,
    /** An fd of the handle's namespace (-1: the caller's), open until {@link close}, for {@link namesOf}. */
    nsFd = -1,
  ) {
    this.names = new LinkNames(nsFd);
  }

  /** Closes the socket and what the context keeps (before the namespace fd is closed). */
  close(): void {
    this.names.close();
    this.sock.close();
  }

  /** The handle's namespace as a {@link NetnsRef}. */
  get nsRef(): { path: string } {
    return { path: this.nsPath };
  }

  request(type: number, flags: number, payload: Buffer, op: string): Promise<NlMsg[]> {
    return this.sock.request(type, flags, payload, { op });
  }

  /** A dump whose reply messages are left in their datagrams, to be decoded in place. */
  async dumpInPlace(type: number, payload: Buffer, op: string): Promise<InPlaceReplies> {
    const inPlace = new InPlaceReplies();
    const options: InternalRequestOptions = { op, inPlace };
    await this.sock.request(type, C.NLM_F_DUMP, payload, options);
    return inPlace;
  }

  /** Index of a link given by name or index (a GET for a name). ENODEV as a NetlinkError if missing. */
  async linkIndex(link: string | number, field: string, op: string): Promise<number> {
    if (typeof link === 'number') {
      if (!Number.isInteger(link) || link <= 0) throw new ValidationError(field, link, 'expected an interface name or a positive index');
      return link;
    }
    validateIfName(link, field);
    const msgs = await this.request(C.RTM_GETLINK, 0, encodeLinkMessage({ header: {}, attrs: { ifname: link, extMask: C.RTEXT_FILTER_SKIP_STATS } }), `${op}: ${field} '${link}'`);
    const m = msgs.find((x) => x.type === C.RTM_NEWLINK);
    if (!m) throw new Error(`${op}: no answer for link '${link}'`);
    return decodeLinkMessage(m.payload).header.index;
  }

  /**
   * Index → name of the links with these indices, as they are now (see {@link LinkNames}: kept
   * current by link notifications, completed by SIOCGIFNAME lookups on a thread of libuv's pool,
   * so that the caller can go on decoding meanwhile); an index without a link is left out.
   * @throws {SystemError} when the names cannot be read. {@link NetlinkClosedError} after close.
   */
  namesOf(indices: Iterable<number>, op: string): Promise<Map<number, string>> {
    return this.names.of(indices, op);
  }

  /**
   * Runs `work` while the names of `indices` are looked up ({@link namesOf}), and returns both;
   * when `work` throws, the lookup is awaited (and its failure dropped) before the error goes on.
   */
  async withNamesOf<T>(indices: Iterable<number>, op: string, work: () => T): Promise<[T, Map<number, string>]> {
    const names = this.namesOf(indices, op);
    let result: T;
    try {
      result = work();
    } catch (err) {
      await names.catch(() => undefined);
      throw err;
    }
    return [result, await names];
  }

  /** Index → name of every link (one dump). */
  async linkNames(op: string): Promise<Map<number, string>> {
    const msgs = await this.request(C.RTM_GETLINK, C.NLM_F_DUMP, encodeLinkMessage({ header: {}, attrs: { extMask: C.RTEXT_FILTER_SKIP_STATS } }), op);
    const names = new Map<number, string>();
    for (const m of msgs) {
      if (m.type !== C.RTM_NEWLINK) continue;
      const d = decodeLinkAt(m.payload, 0, m.payload.length, namesSchema, true);
      if (d.attrs.ifname !== undefined) names.set(d.header.index, d.attrs.ifname);
    }
    return names;
  }
}
