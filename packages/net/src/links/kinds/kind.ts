/**
 * What one link kind is to @vmhost/net: how its spec is checked, which attributes a request
 * carries, how the kernel's IFLA_INFO_DATA is read (the wire schema) and turned into the public
 * {@link Link} fields. One file per kind implements it; `index.ts` lists them. Internal.
 * @module
 */
import type { Schema, Writer } from '../../codec/attrs.js';
import type { LinkAttrs, LinkInfoAttrs, LinkMessage } from '../../codec/link.js';
import type { NetnsRef } from '../../netns.js';
import type { Link, LinkAddCommon } from '../../types.js';

/** The link message codec, handed to a kind whose data nests a whole link message (the veth peer). */
export interface LinkMessageCodec {
  /** Writes an ifinfomsg and its IFLA_* attributes. */
  write(w: Writer, m: LinkMessage): void;
  /** Reads them back from `buf[off, off + len)`; throws CodecError on damage. */
  read(buf: Buffer, off: number, len: number, lean: boolean): LinkMessage;
}

/** What a kind's `encode` may ask of the handle while building the request. */
export interface EncodeContext {
  /** The index of link `name` in the handle's namespace; `field` names it in errors. */
  index(name: string, field: string): Promise<number>;
  /** An fd of namespace `ref` (closed after the request); `field` names it in errors. */
  netnsFd(ref: NetnsRef, field: string): number;
}

/** The request attributes of a kind: IFLA_LINKINFO, and top-level attributes it adds (IFLA_LINK). */
export interface KindRequest {
  linkinfo: LinkInfoAttrs;
  attrs?: LinkAttrs;
}

/** One link kind. `S` is its spec, `D` its decoded IFLA_INFO_DATA. */
export interface LinkKind<S extends LinkAddCommon = LinkAddCommon, D = unknown> {
  /** The `kind` of its specs (`'tap'` for the tun kind). */
  readonly name: string;
  /** The keys of its specs besides the common ones of `LinkAddCommon` and `kind` (any other key is refused). */
  readonly keys: readonly string[];
  /** The IFLA_INFO_KIND values it reads (e.g. `['macvlan', 'macvtap']`). */
  readonly infoKinds: readonly string[];
  /** The IFLA_INFO_DATA attribute space. */
  dataSchema(link: LinkMessageCodec): Schema;
  /** Checks the kind's own fields (the common ones are checked already); throws ValidationError. */
  validate(spec: S): void;
  /**
   * IFLA_LINKINFO (and top-level attributes) of a creation request; absent for kinds made
   * otherwise (tap). A promise only for kinds that look something up (a parent's index): the
   * others answer at once, so that creating them costs no extra turn.
   */
  encode?(spec: S, ctx: EncodeContext): KindRequest | Promise<KindRequest>;
  /** The kind's fields of the public {@link Link}, from the message and its decoded data. */
  decode(m: LinkMessage, data: D | undefined): Partial<Link>;
  /** A master kind's port data (IFLA_INFO_SLAVE_DATA of its ports), e.g. the bridge's. */
  readonly port?: {
    schema: Schema;
    decode(data: unknown): Partial<Link>;
  };
}

/** Seconds (API) → centiseconds (kernel clock_t at USER_HZ=100). */
export function toCentis(seconds: number): number {
  return Math.round(seconds * 100);
}

/** Centiseconds → seconds, or null when absent. */
export function fromCentis(c: number | undefined): number | null {
  return c === undefined ? null : c / 100;
}
