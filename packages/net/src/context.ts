/**
 * What the object-kind modules (links, addresses, ...) share from their {@link Rtnl} handle. Internal.
 * @module
 */
import { SystemError, ValidationError } from './errors.js';
import { native } from './sys/native.js';
import type { NetlinkSocket } from './transport/socket.js';
import type { NlMsg } from './transport/message.js';
import { validateIfName } from './validate.js';
import * as C from './codec/constants.js';
import { pick } from './codec/attrs.js';
import { decodeLinkAt, decodeLinkMessage, encodeLinkMessage, linkSchema } from './codec/link.js';

/** Only IFLA_IFNAME: what {@link RtnlContext.linkNames} reads of each link. */
const namesSchema = pick(linkSchema, ['ifname']);

/** The handle's socket and namespace, as the object modules use them. */
export class RtnlContext {
  constructor(
    readonly sock: NetlinkSocket,
    /** The handle's namespace as a path that stays valid while the handle is open (`/proc/self/fd/N`). */
    readonly nsPath: string,
    /** An fd of the handle's namespace (-1: the caller's), for {@link namesOf}. */
    private readonly nsFd = -1,
  ) {}

  /** The handle's namespace as a {@link NetnsRef}. */
  get nsRef(): { path: string } {
    return { path: this.nsPath };
  }

  request(type: number, flags: number, payload: Buffer, op: string): Promise<NlMsg[]> {
    return this.sock.request(type, flags, payload, { op });
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
   * Index → name of the links with these indices, read now (SIOCGIFNAME in the handle's
   * namespace: no dump of every link); an index without a link is left out.
   * @throws {SystemError} when the names cannot be read.
   */
  namesOf(indices: Iterable<number>): Map<number, string> {
    const wanted = Uint32Array.from(new Set(indices));
    const names = new Map<number, string>();
    if (wanted.length === 0) return names;
    let got: Array<string | null>;
    try {
      got = native().ifNames(this.nsFd, wanted);
    } catch (err) {
      throw SystemError.from(err, 'reading link names');
    }
    for (let i = 0; i < wanted.length; i++) {
      const name = got[i];
      if (name !== null && name !== undefined) names.set(wanted[i] as number, name);
    }
    return names;
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
