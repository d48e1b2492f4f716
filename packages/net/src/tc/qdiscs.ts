/**
 * Qdiscs of a namespace: add, replace, change, delete, list (RTM_NEWQDISC / RTM_DELQDISC /
 * RTM_GETQDISC). Typed kinds: htb, tbf, ingress, pfifo, bfifo (one file each under kinds/).
 * @module
 */
import * as C from '../codec/constants.js';
import * as T from '../codec/tc-constants.js';
import { decodeTcMessage, encodeTcMessage } from '../codec/tc.js';
import type { RtnlContext } from '../context.js';
import { ValidationError } from '../errors.js';
import { formatHandle, parseHandle, parseParent } from './handle.js';
import { TC_KINDS, tcKindOf } from './kinds/index.js';
import { psched } from './psched.js';
import { checkKind, toQdisc } from './tc.js';
import type { Qdisc, QdiscFilter, QdiscRef, QdiscSpec } from './types.js';

/** Makes the Qdiscs of a handle (its constructor is private: not part of the API). Internal. */
export let newQdiscs: (ctx: RtnlContext) => Qdiscs;

/** The qdiscs of one {@link Rtnl} handle's namespace. */
export class Qdiscs {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newQdiscs = (ctx) => new Qdiscs(ctx);
  }

  /**
   * Adds a qdisc (`tc qdisc add`): at `parent` (default the root) of `dev`, with `handle`.
   *
   * ```ts
   * await h.qdiscs.add({ kind: 'htb', dev: 'tap0', handle: '1:', defaultClass: '1:10' });
   * await h.qdiscs.add({ kind: 'tbf', dev: 'veth0', rate: '10mbit', burst: 32 * 1024, latency: 0.05 });
   * ```
   * @throws {ValidationError} bad input, before anything is sent.
   * @throws {NetlinkError} e.g. `EEXIST` (a qdisc is there already), `ENODEV`.
   */
  async add(spec: QdiscSpec): Promise<void> {
    const { payload, op } = await this.build('qdiscs.add', spec);
    await this.ctx.request(T.RTM_NEWQDISC, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
  }

  /** Adds the qdisc or replaces the one at that place (`tc qdisc replace`). */
  async replace(spec: QdiscSpec): Promise<void> {
    const { payload, op } = await this.build('qdiscs.replace', spec);
    await this.ctx.request(T.RTM_NEWQDISC, C.NLM_F_CREATE | C.NLM_F_REPLACE, payload, op);
  }

  /**
   * Changes the parameters of an existing qdisc of the same kind (`tc qdisc change`).
   * @throws {NetlinkError} `ENOENT` when there is none at that place.
   */
  async change(spec: QdiscSpec): Promise<void> {
    const { payload, op } = await this.build('qdiscs.change', spec);
    await this.ctx.request(T.RTM_NEWQDISC, 0, payload, op);
  }

  /**
   * Deletes the qdisc at `parent` (default the root; `'ingress'` for the ingress qdisc) of `dev`,
   * with its classes and the qdiscs below (`tc qdisc del`). The root falls back to the default.
   * @throws {NetlinkError} e.g. `ENOENT`, or `EINVAL` for the default qdisc (it cannot be deleted).
   */
  async delete(ref: QdiscRef): Promise<void> {
    if (ref === null || typeof ref !== 'object') throw new ValidationError('qdisc', ref, 'expected { dev, parent?, handle? }');
    const parent = ref.parent === 'ingress' ? T.TC_H_INGRESS : parseParent(ref.parent, 'parent');
    const handle = ref.handle === undefined ? 0 : parseHandle(ref.handle, 'handle', 'qdisc');
    const op = `qdiscs.delete ${ref.dev} ${formatHandle(parent)}`;
    const index = await this.ctx.linkIndex(ref.dev, 'dev', op);
    await this.ctx.request(T.RTM_DELQDISC, 0, encodeTcMessage({ header: { index, parent, handle }, attrs: {} }), op);
  }

  /** Lists qdiscs (`tc qdisc show`), default ones included, of every link or of `dev`, of one kind. */
  async list(filter: QdiscFilter = {}): Promise<Qdisc[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected an object');
    if (filter.kind !== undefined && typeof filter.kind !== 'string') throw new ValidationError('filter.kind', filter.kind, 'expected a string');
    const op = 'qdiscs.list';
    const index = filter.dev === undefined ? 0 : await this.ctx.linkIndex(filter.dev, 'filter.dev', op);
    const names = await this.ctx.linkNames(op);
    const msgs = await this.ctx.request(T.RTM_GETQDISC, C.NLM_F_DUMP, encodeTcMessage({ header: { index }, attrs: {} }), op);
    const ps = psched();
    const out: Qdisc[] = [];
    for (const m of msgs) {
      if (m.type !== T.RTM_NEWQDISC) continue;
      const q = toQdisc(decodeTcMessage(m.payload), names, ps);
      if (index !== 0 && q.index !== index) continue;
      if (filter.kind !== undefined && q.kind !== filter.kind) continue;
      out.push(q);
    }
    return out;
  }

  private async build(what: string, spec: QdiscSpec): Promise<{ payload: Buffer; op: string }> {
    checkKind(spec, 'qdisc', TC_KINDS);
    const kind = tcKindOf(spec.kind)!;
    let parent: number;
    let handle: number;
    if (kind.qdisc.placement) {
      for (const k of ['parent', 'handle'] as const) {
        const v = (spec as { parent?: unknown; handle?: unknown })[k];
        if (v !== undefined) throw new ValidationError(k, v, `the ${spec.kind} qdisc has a fixed place; leave ${k} out`);
      }
      ({ parent, handle } = kind.qdisc.placement);
    } else {
      const s = spec as { parent?: string; handle?: string };
      parent = parseParent(s.parent, 'parent');
      handle = s.handle === undefined ? 0 : parseHandle(s.handle, 'handle', 'qdisc');
    }
    kind.qdisc.validate(spec);
    const op = `${what} ${spec.kind} ${String(spec.dev)} ${formatHandle(parent)}`;
    const index = await this.ctx.linkIndex(spec.dev, 'dev', op);
    const options = kind.qdisc.encode(spec, psched());
    const attrs = options === undefined ? { kind: spec.kind } : { kind: spec.kind, options: options as never };
    return { payload: encodeTcMessage({ header: { index, parent, handle }, attrs }), op };
  }
}
