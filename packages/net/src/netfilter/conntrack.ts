/**
 * Connection tracking entries of a namespace over ctnetlink: list (with a filter applied in the
 * kernel where it can be, and always here), delete one entry by its tuple, and delete every entry
 * matching a filter (IPCTNL_MSG_CT_GET dump, IPCTNL_MSG_CT_DELETE).
 * @module
 */
import { decodeConntrackMessage, encodeConntrackMessage, type ConntrackAttrs } from '../codec/conntrack.js';
import * as C from '../codec/constants.js';
import * as N from '../codec/nf-constants.js';
import { NetlinkError } from '../transport/errors.js';
import type { NetfilterContext } from './context.js';
import { checkFilter, deleteRequest, dumpRequests, matches, toConntrackEntry, type CheckedFilter } from './entry.js';
import type { ConntrackDeleteResult, ConntrackDeleteSpec, ConntrackEntry, ConntrackFilter } from './types.js';

const CT_GET = N.nfnlMsgType(N.NFNL_SUBSYS_CTNETLINK, N.IPCTNL_MSG_CT_GET);
const CT_NEW = N.nfnlMsgType(N.NFNL_SUBSYS_CTNETLINK, N.IPCTNL_MSG_CT_NEW);
const CT_DELETE = N.nfnlMsgType(N.NFNL_SUBSYS_CTNETLINK, N.IPCTNL_MSG_CT_DELETE);

/** Makes the Conntrack of a handle (its constructor is private: not part of the API). Internal. */
export let newConntrack: (ctx: NetfilterContext) => Conntrack;

/** The conntrack table of one {@link Netfilter} handle's namespace. */
export class Conntrack {
  private constructor(private readonly ctx: NetfilterContext) {}
  static {
    newConntrack = (ctx) => new Conntrack(ctx);
  }

  /**
   * Lists the entries (of this namespace only), or those matching `filter`. Tuple fields of the
   * filter are sent to the kernel as CTA_FILTER (one dump per family when no family is given or
   * implied by an address), the mark as CTA_MARK/CTA_MARK_MASK; every entry is checked against the
   * whole filter here too, so the result is the same on kernels that filter less.
   *
   * ```ts
   * await nf.conntrack.list({ protocol: 'udp', origDst: '203.0.113.10', origDstPort: 53 });
   * ```
   * @throws {ValidationError} a bad filter (`field` is `filter.<name>`), before anything is sent.
   * @throws {NetlinkError} the kernel refused the dump.
   */
  async list(filter: ConntrackFilter = {}): Promise<ConntrackEntry[]> {
    const f = checkFilter(filter);
    return this.dump(f, 'conntrack.list');
  }

  /**
   * Deletes one entry, found by its original tuple (or its reply tuple): a {@link ConntrackEntry}
   * from {@link list}, or `{ protocol, orig: { src, dst, srcPort, dstPort } }`. With `id` (an
   * entry from `list` has it) only that very entry is deleted, not a newer one with the same tuple.
   * @throws {ValidationError} an incomplete tuple, before anything is sent.
   * @throws {NetlinkError} `ENOENT` when there is no such entry (or its id differs).
   */
  async delete(entry: ConntrackDeleteSpec): Promise<void> {
    const { family, attrs, op } = deleteRequest(entry);
    await this.ctx.request(CT_DELETE, 0, encodeConntrackMessage({ header: { family }, attrs }), op);
  }

  /**
   * Deletes every entry matching `filter`: one dump (as {@link list}), then a delete of each entry
   * by its tuple and id, all in flight at once. Entries that are gone by the time their delete
   * arrives (expired, or deleted by someone else) are reported in `vanished`, not as errors.
   * Entries created after the dump are not touched. Not atomic: if a delete fails otherwise, the
   * ones before it stay deleted and that error is thrown once all have been answered.
   *
   * ```ts
   * // the forward of udp 203.0.113.10:5353 now goes elsewhere: drop the flows of the old mapping
   * await nf.conntrack.deleteMatching({ protocol: 'udp', origDst: '203.0.113.10', origDstPort: 5353 });
   * ```
   * @throws {ValidationError} a bad filter, before anything is sent.
   * @throws {NetlinkError} the dump or a delete was refused (other than `ENOENT`).
   */
  async deleteMatching(filter: ConntrackFilter): Promise<ConntrackDeleteResult> {
    const f = checkFilter(filter);
    const entries = await this.dump(f, 'conntrack.deleteMatching');
    const results = await Promise.allSettled(entries.map((e) => this.delete(e)));
    const out: ConntrackDeleteResult = { deleted: [], vanished: [] };
    let failure: unknown;
    results.forEach((r, i) => {
      const e = entries[i]!;
      if (r.status === 'fulfilled') out.deleted.push(e);
      else if (r.reason instanceof NetlinkError && r.reason.code === 'ENOENT') out.vanished.push(e);
      else failure ??= r.reason;
    });
    if (failure !== undefined) throw failure;
    return out;
  }

  private async dump(f: CheckedFilter, op: string): Promise<ConntrackEntry[]> {
    const requests = dumpRequests(f);
    try {
      return await this.dumpAll(requests, f, op);
    } catch (err) {
      // A kernel that knows CTA_FILTER but not these flags says EOPNOTSUPP: then filter here only.
      if (!(err instanceof NetlinkError && err.code === 'EOPNOTSUPP' && requests.some((r) => r.attrs.filter))) throw err;
      return await this.dumpAll(dumpRequests(f, false), f, op);
    }
  }

  private async dumpAll(requests: Array<{ family: number; attrs: ConntrackAttrs }>, f: CheckedFilter, op: string): Promise<ConntrackEntry[]> {
    const out: ConntrackEntry[] = [];
    for (const { family, attrs } of requests) {
      const msgs = await this.ctx.request(CT_GET, C.NLM_F_DUMP, payload(family, attrs), op);
      for (const m of msgs) {
        // Dump parts carry the request's message (CT_GET) on newer kernels, CT_NEW on older ones.
        if (m.type !== CT_GET && m.type !== CT_NEW) continue;
        const e = toConntrackEntry(decodeConntrackMessage(m.payload));
        if (matches(e, f)) out.push(e);
      }
    }
    return out;
  }
}

function payload(family: number, attrs: ConntrackAttrs): Buffer {
  return encodeConntrackMessage({ header: { family, version: N.NFNETLINK_V0 }, attrs });
}
