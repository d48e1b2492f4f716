/**
 * The `bridge` section: its name, MAC, veth pair, IPv4 address and subnet (the VMs'), IPv6
 * address (the VMs' IPv6 gateway) and STP. Records the prefixes in the context for later sections.
 * @module
 */
import { formatAddr, prefixText, toCidr } from '../ip.js';
import type { ResolvedHost } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { BRIDGE_KEYS, DEFAULTS, VETH_KEYS } from './schema.js';

/** Resolves `bridge` (`v`, as written); undefined after a problem. */
export function resolveBridge(ctx: SpecContext, v: unknown): ResolvedHost['bridge'] | undefined {
  const { c } = ctx;
  const br = c.obj(v, 'bridge', BRIDGE_KEYS);
  if (!br) return undefined;
  ctx.hasBridge = true;
  const name = c.ifName(at(br, 'name'), 'bridge.name');
  ctx.claimIf(name, 'bridge.name');
  const macV = at(br, 'mac');
  const mac = absent(macV) ? undefined : c.mac(macV, 'bridge.mac');
  ctx.claimMac(mac, 'bridge.mac');
  let veth: { name: string; peer: string } | undefined;
  const vethV = at(br, 'veth');
  if (!absent(vethV)) {
    const o = c.obj(vethV, 'bridge.veth', VETH_KEYS);
    if (o) {
      const vn = c.ifName(at(o, 'name'), 'bridge.veth.name');
      ctx.claimIf(vn, 'bridge.veth.name');
      const vp = c.ifName(at(o, 'peer'), 'bridge.veth.peer');
      ctx.claimIf(vp, 'bridge.veth.peer');
      if (vn !== undefined && vp !== undefined) veth = { name: vn, peer: vp };
    }
  }
  const ipv4V = at(br, 'ipv4');
  let b4 = c.prefix(ipv4V, 'bridge.ipv4', 4);
  if (b4) {
    if (b4.length > 30) b4 = c.add('bridge.ipv4', ipv4V, 'prefix length must be at most 30: the subnet needs room for the VMs');
    else if (b4.addr.value === b4.first) b4 = c.add('bridge.ipv4', ipv4V, `is the network address of ${prefixText(b4)}; expected a host address such as ${formatAddr(b4.first + 1n, 4)}/${b4.length}`);
    else if (b4.addr.value === b4.last) b4 = c.add('bridge.ipv4', ipv4V, `is the broadcast address of ${prefixText(b4)}`);
  }
  ctx.bridge4 = b4;
  const ipv6V = at(br, 'ipv6');
  ctx.bridge6Given = ipv6V;
  if (!absent(ipv6V)) {
    let b6 = c.prefix(ipv6V, 'bridge.ipv6', 6);
    if (b6 && b6.length < 128 && b6.addr.value === b6.first) {
      b6 = c.add('bridge.ipv6', ipv6V, `is the network (subnet-router anycast) address of ${prefixText(b6)}; expected a host address`);
    }
    ctx.bridge6 = b6;
  }
  const stp = c.bool(at(br, 'stp'), 'bridge.stp', DEFAULTS.stp);
  if (name === undefined || !b4) return undefined;
  return {
    name,
    ...(mac !== undefined ? { mac } : {}),
    ...(veth ? { veth } : {}),
    ipv4: toCidr(b4),
    ...(ctx.bridge6 ? { ipv6: toCidr(ctx.bridge6) } : {}),
    stp,
  };
}
