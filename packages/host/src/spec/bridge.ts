/**
 * The `bridge` section: its name, MAC, veth pair, IPv4 address and subnet (the VMs'), IPv6
 * address (the VMs' IPv6 gateway) and STP. Records the prefixes in the context for later sections.
 * @module
 */
import { ip } from '@vmhost/net';
import { stableMac } from '@vmhost/kvm';
import type { ResolvedHost } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { BRIDGE, VETH } from './schema.js';

const F = BRIDGE.keys;

/** The default MAC of the bridge `bridge` of host `host`: locally administered, stable (a hash of both names). */
export function bridgeMac(host: string, bridge: string): string {
  return stableMac(`${host}:${bridge}`, 0);
}

/** Resolves `bridge` (`v`, as written); undefined after a problem. */
export function resolveBridge(ctx: SpecContext, v: unknown): ResolvedHost['bridge'] | undefined {
  const { c } = ctx;
  const br = c.obj(v, 'bridge', BRIDGE);
  if (!br) return undefined;
  ctx.hasBridge = true;
  const name = c.ifName(at(br, 'name'), 'bridge.name');
  ctx.claimIf(name, 'bridge.name');
  const macV = at(br, 'mac');
  const adopt = c.bool(at(br, 'adopt'), 'bridge.adopt', F.adopt);
  // Default: a stable MAC, so that the bridge's link-local address (the VMs' IPv6 default router,
  // learnt from its router advertisements) stays the same across re-creation and reboots. Not for
  // a bridge that may be adopted: a hand-made bridge keeps the MAC it was given (adopting never
  // changes it, and down leaves it as it was).
  const mac = absent(macV) ? (name !== undefined && ctx.hostName !== undefined && adopt === false ? bridgeMac(ctx.hostName, name) : undefined) : c.mac(macV, 'bridge.mac');
  ctx.claimMac(mac, 'bridge.mac', absent(macV) ? ' (the default for the bridge)' : '');
  let veth: { name: string; peer: string } | undefined;
  const vethV = at(br, 'veth');
  if (!absent(vethV)) {
    const o = c.obj(vethV, 'bridge.veth', VETH);
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
    const len = b4.prefixLength;
    if (len > F.ipv4.maxLength) b4 = c.add('bridge.ipv4', ipv4V, `prefix length must be at most ${F.ipv4.maxLength}: the subnet needs room for the VMs`);
    else if (len < F.ipv4.minLength) b4 = c.add('bridge.ipv4', ipv4V, `prefix length must be at least ${F.ipv4.minLength}: a wider subnet would take over routes to public addresses (and /0 all of them) through the bridge, and masquerade them`);
    else if (!c.ordinary(b4, 'bridge.ipv4', ipv4V)) b4 = undefined;
    else if (b4.address === ip.networkAddress(b4)) b4 = c.add('bridge.ipv4', ipv4V, `is the network address of ${b4.network}; expected a host address such as ${ip.nth(b4, 1)}/${len}`);
    else if (b4.address === ip.lastAddress(b4)) b4 = c.add('bridge.ipv4', ipv4V, `is the broadcast address of ${b4.network}`);
  }
  ctx.bridge4 = b4;
  const ipv6V = at(br, 'ipv6');
  ctx.bridge6Given = ipv6V;
  if (!absent(ipv6V)) {
    let b6 = c.prefix(ipv6V, 'bridge.ipv6', 6);
    if (b6 && b6.prefixLength < F.ipv6.minLength) {
      b6 = c.add('bridge.ipv6', ipv6V, `prefix length must be at least ${F.ipv6.minLength}: a wider prefix would route most of IPv6 to the bridge`);
    } else if (b6 && !c.ordinary(b6.address, 'bridge.ipv6', ipv6V)) {
      b6 = undefined;
    } else if (b6 && b6.prefixLength < 128 && b6.address === ip.networkAddress(b6)) {
      b6 = c.add('bridge.ipv6', ipv6V, `is the network (subnet-router anycast) address of ${b6.network}; expected a host address`);
    }
    ctx.bridge6 = b6;
  }
  const stp = c.bool(at(br, 'stp'), 'bridge.stp', F.stp);
  if (name === undefined || !b4 || stp === undefined || adopt === undefined) return undefined;
  return {
    name,
    ...(mac !== undefined ? { mac } : {}),
    ...(veth ? { veth } : {}),
    ipv4: b4,
    ...(ctx.bridge6 ? { ipv6: ctx.bridge6 } : {}),
    stp,
    adopt,
  };
}
