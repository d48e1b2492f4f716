/**
 * `ipv6.learn` (routed mode): the other global IPv6 addresses the VMs use (SLAAC, privacy
 * addresses), from the bridge's neighbour table, what ndppd does as a daemon, done from events. A
 * neighbour on the bridge whose link-layer address is a VM's MAC and whose address lies inside
 * the host's prefix (not the bridge's, not any VM's own, not another VM's learnt one) is learnt,
 * up to `ipv6.learnLimit` per VM; it is forgotten when its entry is deleted or fails (the VM no
 * longer answers for it). Pure: the caller feeds neighbours and applies the changes (a proxy
 * neighbour and a /128 route per address, through the engine: `ResolvedVm.learnedIpv6`).
 * @module
 */
import { ip, type Neighbor } from '@vmhost/net';
import type { ResolvedHost } from '../types.js';

/** A change of the learnt addresses. */
export interface LearnChange {
  vm: string;
  address: string;
  /** `learn`: published; `unlearn`: withdrawn; `skip`: over the VM's limit, not published. */
  action: 'learn' | 'unlearn' | 'skip';
}

/** The learnt addresses of a host's VMs. */
export class Learner {
  /** VM name → addresses, in the order learnt. */
  private readonly byVm = new Map<string, string[]>();
  /** Addresses already told as over the limit (told once). */
  private readonly skipped = new Set<string>();

  constructor(private host: ResolvedHost) {}

  /** Whether the host learns at all. */
  get enabled(): boolean {
    return this.host.ipv6?.mode === 'routed' && this.host.ipv6.learn;
  }

  /** A new host file: VMs gone (or learning off) forget theirs; the rest keep what they learnt. */
  setHost(host: ResolvedHost): LearnChange[] {
    this.host = host;
    const out: LearnChange[] = [];
    for (const [vm, addrs] of [...this.byVm]) {
      const keep = this.enabled ? host.vms.find((v) => v.name === vm) : undefined;
      const own = new Set(host.vms.map((v) => v.ipv6).filter((a): a is string => a !== undefined));
      const prefix = host.ipv6?.prefix;
      const left = keep && prefix ? addrs.filter((a) => !own.has(a) && ip.contains(prefix, a)).slice(0, host.ipv6!.learnLimit) : [];
      for (const a of addrs) if (!left.includes(a)) out.push({ vm, address: a, action: 'unlearn' });
      if (left.length > 0) this.byVm.set(vm, left);
      else this.byVm.delete(vm);
    }
    return out;
  }

  /** The learnt addresses of `vm`. */
  of(vm: string): readonly string[] {
    return this.byVm.get(vm) ?? [];
  }

  /** `host` with each VM's learnt addresses (`learnedIpv6`): what the engine applies. */
  effective(host: ResolvedHost): ResolvedHost {
    if (!this.enabled || this.byVm.size === 0) return host;
    return { ...host, vms: host.vms.map((v) => (this.byVm.has(v.name) ? { ...v, learnedIpv6: [...this.of(v.name)] } : v)) };
  }

  /** The VM (name) using `mac` on the bridge. */
  private vmOf(mac: string | null): string | undefined {
    if (mac === null) return undefined;
    const m = mac.toLowerCase();
    return this.host.vms.find((v) => v.mac.toLowerCase() === m)?.name;
  }

  /** Who has `address` already: a VM's own, the bridge's, or a VM that learnt it. */
  private taken(address: string): boolean {
    if (this.host.bridge.ipv6?.address === address) return true;
    if (this.host.vms.some((v) => v.ipv6 === address)) return true;
    for (const addrs of this.byVm.values()) if (addrs.includes(address)) return true;
    return false;
  }

  /** One neighbour of the bridge, added or changed (`del` false) or deleted (`del` true). */
  feed(n: Neighbor, del: boolean): LearnChange[] {
    const six = this.host.ipv6;
    if (!this.enabled || !six || n.family !== 6 || n.proxy || n.dev !== this.host.bridge.name) return [];
    const gone = del || n.state.includes('failed') || n.state.includes('incomplete');
    for (const [vm, addrs] of this.byVm) {
      const i = addrs.indexOf(n.to);
      if (i < 0) continue;
      // a learnt address that fails, goes, or now answers from another MAC is forgotten
      if (gone || this.vmOf(n.lladdr) !== vm) {
        addrs.splice(i, 1);
        if (addrs.length === 0) this.byVm.delete(vm);
        return [{ vm, address: n.to, action: 'unlearn' }, ...(gone ? [] : this.feed(n, false))];
      }
      return [];
    }
    if (gone) {
      this.skipped.delete(n.to);
      return [];
    }
    const vm = this.vmOf(n.lladdr);
    if (vm === undefined || !ip.contains(six.prefix, n.to) || n.to === ip.networkAddress(six.prefix) || this.taken(n.to)) return [];
    const addrs = this.byVm.get(vm) ?? [];
    if (addrs.length >= six.learnLimit) {
      if (this.skipped.has(n.to)) return [];
      this.skipped.add(n.to);
      return [{ vm, address: n.to, action: 'skip' }];
    }
    addrs.push(n.to);
    this.byVm.set(vm, addrs);
    return [{ vm, address: n.to, action: 'learn' }];
  }

  /** The ids of the entries that publish `address` (of `vm`): its proxy neighbour and its route, and the firewall when the VM publishes ports. */
  idsOf(address: string, vm?: string): string[] {
    const ids = [`proxyNeighbor:${this.host.uplink}:${address}`, `route:${address}/128`];
    // the VM's published ports are accepted to each of its addresses (desired.ts firewallModel)
    if (vm !== undefined && this.host.vms.some((v) => v.name === vm && v.forwards.length > 0)) ids.push('firewall');
    return ids;
  }

  /** Every learnt address, by VM (for the status file). */
  snapshot(): Record<string, string[]> {
    return Object.fromEntries([...this.byVm].map(([vm, a]) => [vm, [...a]]));
  }
}
