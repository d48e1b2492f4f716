/**
 * The kernel settings the rules need: {@link requiredSysctls} reports them (pure), and
 * {@link applySysctls} writes them inside a namespace through @vmhost/net's `Sysctl` (never the
 * `sysctl` program).
 * @module
 */
import { Sysctl as NetSysctl, sysctlPath, validateIfName, type NetnsRef } from '@vmhost/net';
import type { FirewallModel } from './model.js';
import { validateModel, type NormalizedModel } from './validate.js';

/** One kernel setting. */
export interface Sysctl {
  /** Dotted key, e.g. `net.ipv4.ip_forward`. */
  key: string;
  /** Value to write. */
  value: string;
  /** Why the rules need it. */
  reason: string;
}

/** Options of {@link requiredSysctls}. */
export interface SysctlOptions {
  /**
   * Uplinks that learn their IPv6 default route from router advertisements: with forwarding on they
   * need `accept_ra=2`, or they stop accepting RAs.
   */
  raInterfaces?: readonly string[];
}

/** An interface name inside a dotted key: '.' becomes '/', as sysctl(8) writes it (eth0.5 → eth0/5). */
function keyPart(ifname: string): string {
  return ifname.replace(/\./g, '/');
}

/**
 * The sysctls `model` needs: `net.ipv4.ip_forward` when anything IPv4 is forwarded,
 * `net.ipv6.conf.all.forwarding` (and `accept_ra=2` on `raInterfaces`) for IPv6,
 * `net.bridge.bridge-nf-call-ip6tables` when a VM port has isolation on, and `route_localnet` (on
 * the LAN interface, or `all`) when a forward asks for `localhost`. Pure.
 * @throws {ValidationError} for a bad model or interface name.
 */
export function requiredSysctls(model: FirewallModel | NormalizedModel, options: SysctlOptions = {}): Sysctl[] {
  const m = validateModel(model);
  const forwards = (f: 4 | 6): boolean =>
    m.portForwards.some((p) => p.family === f) ||
    m.masquerade.some((q) => q.family === f) ||
    m.forward.some((r) => r.families.includes(f)) ||
    (m.lan?.subnets[f].length ?? 0) > 0;
  const out: Sysctl[] = [];
  if (forwards(4)) out.push({ key: 'net.ipv4.ip_forward', value: '1', reason: 'IPv4 packets are forwarded between the uplink and the VMs' });
  if (forwards(6)) {
    out.push({ key: 'net.ipv6.conf.all.forwarding', value: '1', reason: 'IPv6 packets are forwarded between the uplink and the VMs' });
    (options.raInterfaces ?? []).forEach((i, n) => {
      validateIfName(i, `raInterfaces[${n}]`);
      out.push({ key: `net.ipv6.conf.${keyPart(i)}.accept_ra`, value: '2', reason: `${i} learns its route from router advertisements, which forwarding would otherwise ignore` });
    });
  }
  if (m.ports.some((p) => p.isolation)) {
    out.push({
      key: 'net.bridge.bridge-nf-call-ip6tables',
      value: '1',
      reason: 'the VM ports\' neighbour-advertisement check is an ip6tables rule on bridged frames (br_netfilter)',
    });
  }
  if (m.portForwards.some((p) => p.localhost)) {
    const dev = m.lan?.interface ?? 'all';
    out.push({ key: `net.ipv4.conf.${keyPart(dev)}.route_localnet`, value: '1', reason: 'forwards from 127.0.0.0/8 are routed to the VMs' });
  }
  return out;
}

/**
 * Writes `sysctls` inside `options.netns` (or the caller's namespace when none is given) through
 * @vmhost/net's {@link NetSysctl} and returns the previous values, so a caller can put them back
 * (pass the result to this function again). If one write fails, the ones already made are put back
 * before the error is thrown.
 * @throws {ValidationError} a bad key. `SystemError` (of @vmhost/net) when a setting cannot be read or written
 * (e.g. `ENOENT` for an interface that does not exist).
 */
export async function applySysctls(sysctls: readonly Sysctl[], options: { netns?: NetnsRef } = {}): Promise<Sysctl[]> {
  const sys = NetSysctl.in(options.netns);
  for (const s of sysctls) sysctlPath(s.key);
  const previous: Sysctl[] = [];
  try {
    for (const s of sysctls) previous.push({ key: s.key, value: await sys.exchange(s.key, s.value), reason: 'previous value' });
  } catch (err) {
    for (const p of [...previous].reverse()) await sys.set(p.key, p.value).catch(() => undefined);
    throw err;
  }
  return previous;
}
