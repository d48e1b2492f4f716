/**
 * Traffic classes of a namespace: add, replace, change, delete, list (RTM_NEWTCLASS /
 * RTM_DELTCLASS / RTM_GETTCLASS). Typed kinds: htb (kinds/htb.ts).
 * @module
 */
import * as C from '../codec/constants.js';
import * as T from '../codec/tc-constants.js';
import { decodeTcMessage, encodeTcMessage } from '../codec/tc.js';
import type { RtnlContext } from '../context.js';
import { ValidationError } from '../errors.js';
import { NetlinkError } from '../transport/errors.js';
import { formatHandle, majorOf, parseHandle } from './handle.js';
import { tcKindOf } from './kinds/index.js';
import { psched } from './psched.js';
import { checkKind, toClass } from './tc.js';
import type { ClassRef, ClassSpec, TrafficClass } from './types.js';

const CLASSFUL = ['htb'];

/** Makes the Classes of a handle (its constructor is private: not part of the API). Internal. */
export let newClasses: (ctx: RtnlContext) => Classes;

/** The traffic classes of one {@link Rtnl} handle's namespace. */
export class Classes {
  private constructor(private readonly ctx: RtnlContext) {}
  static {
    newClasses = (ctx) => new Classes(ctx);
  }

  /**
   * Adds a class (`tc class add`) under `parent`: the qdisc (`'1:'`) or a class (`'1:1'`).
   * The rate tables are computed as tc computes them.
   *
   * ```ts
   * await h.classes.add({ kind: 'htb', dev: 'tap0', parent: '1:', classid: '1:10', rate: '100mbit' });
   * ```
   * @throws {ValidationError} bad input, before anything is sent.
   * @throws {NetlinkError} e.g. `EEXIST`, `ENOENT` (no such parent), `EINVAL`.
   */
  async add(spec: ClassSpec): Promise<void> {
    const { payload, op } = await this.build('classes.add', spec);
    await this.ctx.request(T.RTM_NEWTCLASS, C.NLM_F_CREATE | C.NLM_F_EXCL, payload, op);
  }

  /** Adds the class or changes the existing one with that id (`tc class replace`). */
  async replace(spec: ClassSpec): Promise<void> {
    const { payload, op } = await this.build('classes.replace', spec);
    await this.ctx.request(T.RTM_NEWTCLASS, C.NLM_F_CREATE, payload, op);
  }

  /**
   * Changes an existing class (`tc class change`).
   * @throws {NetlinkError} `ENOENT` when there is no such class.
   */
  async change(spec: ClassSpec): Promise<void> {
    const { payload, op } = await this.build('classes.change', spec);
    await this.ctx.request(T.RTM_NEWTCLASS, 0, payload, op);
  }

  /**
   * Deletes a class (`tc class del`). A class with child classes or in use by filters cannot be
   * deleted (`EBUSY`).
   */
  async delete(ref: ClassRef): Promise<void> {
    if (ref === null || typeof ref !== 'object') throw new ValidationError('class', ref, 'expected { dev, classid }');
    const classid = parseHandle(ref.classid, 'classid', 'class');
    const op = `classes.delete ${ref.dev} ${formatHandle(classid)}`;
    const index = await this.ctx.linkIndex(ref.dev, 'dev', op);
    await this.ctx.request(T.RTM_DELTCLASS, 0, encodeTcMessage({ header: { index, handle: classid }, attrs: {} }), op);
  }

  /** Lists the classes of `dev` (`tc class show dev DEV`). */
  async list(filter: { dev: string }): Promise<TrafficClass[]> {
    if (filter === null || typeof filter !== 'object') throw new ValidationError('filter', filter, 'expected { dev }');
    const op = 'classes.list';
    const index = await this.ctx.linkIndex(filter.dev, 'filter.dev', op);
    const msgs = await this.ctx.request(T.RTM_GETTCLASS, C.NLM_F_DUMP, encodeTcMessage({ header: { index }, attrs: {} }), op);
    const names = new Map([[index, filter.dev]]);
    const ps = psched();
    return msgs.filter((m) => m.type === T.RTM_NEWTCLASS).map((m) => toClass(decodeTcMessage(m.payload), names, ps));
  }

  /** HTB makes a class whose parent class is missing a top class: refuse that instead. */
  private async checkParent(index: number, parent: number, op: string): Promise<void> {
    try {
      await this.ctx.request(T.RTM_GETTCLASS, 0, encodeTcMessage({ header: { index, handle: parent }, attrs: {} }), `${op}: reading parent ${formatHandle(parent)}`);
    } catch (err) {
      if (err instanceof NetlinkError && err.code === 'ENOENT') {
        throw new NetlinkError(err.errno, op, { message: `no parent class ${formatHandle(parent)}` }, { cause: err });
      }
      throw err;
    }
  }

  private async build(what: string, spec: ClassSpec): Promise<{ payload: Buffer; op: string }> {
    checkKind(spec, 'class', CLASSFUL);
    const kind = tcKindOf(spec.kind)!.class!;
    const classid = parseHandle(spec.classid, 'classid', 'class');
    const parent = parseHandle(spec.parent, 'parent');
    if (majorOf(parent) !== majorOf(classid)) {
      throw new ValidationError('parent', spec.parent, `must be the qdisc or a class of ${formatHandle(classid & 0xffff0000)} (the classid's major)`);
    }
    kind.validate(spec);
    const op = `${what} ${spec.dev} ${formatHandle(classid)}`;
    const index = await this.ctx.linkIndex(spec.dev, 'dev', op);
    if (parent & 0xffff) await this.checkParent(index, parent, op);
    const options = kind.encode(spec, psched());
    return { payload: encodeTcMessage({ header: { index, handle: classid, parent }, attrs: { kind: spec.kind, options: options as never } }), op };
  }
}
