/**
 * The registry of link kinds: one file per kind, one line here. Kinds not listed are passed to
 * the kernel by name (IFLA_INFO_KIND only) and their data is kept raw. Internal.
 * @module
 */
import { bridge } from './bridge.js';
import { ifb } from './ifb.js';
import type { LinkKind } from './kind.js';
import { macvlan } from './macvlan.js';
import { tun } from './tun.js';
import { veth } from './veth.js';
import { vlan } from './vlan.js';
import { vxlan } from './vxlan.js';

export type { EncodeContext, KindRequest, LinkKind, LinkMessageCodec } from './kind.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const KINDS: readonly LinkKind<any, any>[] = [veth, bridge, tun, vlan, macvlan, vxlan, ifb];

const bySpec = new Map(KINDS.map((k) => [k.name, k as LinkKind]));
const byInfo = new Map(KINDS.flatMap((k) => k.infoKinds.map((i) => [i, k as LinkKind] as const)));

/** The kind of a spec's `kind` ('tap' for TAPs), or undefined for kinds passed through by name. */
export function kindOfSpec(kind: string): LinkKind | undefined {
  return bySpec.get(kind);
}

/** The kind of a kernel IFLA_INFO_KIND value, or undefined for kinds not typed here. */
export function kindOfInfo(infoKind: string | undefined): LinkKind | undefined {
  return infoKind === undefined ? undefined : byInfo.get(infoKind);
}
