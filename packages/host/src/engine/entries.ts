/**
 * The entries of a host: what the host file wants apply to make (or change), one typed shape per
 * kind, discriminated by `kind`, with everything making it takes (a VM's QEMU options, dnsmasq's
 * options with its directory). The state file records them as identities instead (records.ts).
 * @module
 */
import type { VmOptions } from '@vmhost/kvm';
import type { FirewallModel } from '@vmhost/firewall';
import type { DnsmasqOptions } from '../services/dnsmasq.js';
import type { ProxyOptions } from '../services/proxy6.js';
import type { CloudInitSeed } from '../guests/cloud-init.js';

/** A sysctl set to `value`. */
export interface SysctlEntry {
  kind: 'sysctl';
  /** `sysctl:<key>`. */
  id: string;
  data: { key: string; value: string };
  /** The value before apply changed it (what `down` puts back). */
  previous?: string;
}

/** The bridge (`bridge.name`), up. */
export interface BridgeLinkData {
  name: string;
  kind: 'bridge';
  mac: string | null;
  stp: boolean;
}

/** The veth pair whose first end is enslaved to the bridge (both up; the first promiscuous). */
export interface VethLinkData {
  name: string;
  kind: 'veth';
  peer: string;
  mac: string | null;
  master: string;
  promisc: boolean;
}

/** A VM's TAP on the bridge, up. */
export interface TapLinkData {
  name: string;
  kind: 'tap';
  master: string;
}

/** An ifb, up: what a VM sends is redirected to it and shaped by its qdisc (`bandwidth.fromVm`). */
export interface IfbLinkData {
  name: string;
  kind: 'ifb';
}

/**
 * Whether the host file lets an entry's object exist already, not made by vmhost: it is then
 * adopted (recorded as such; down leaves it in place) instead of refused.
 */
export interface Adoption {
  /** The host file's field that says so: `bridge.adopt`, `vms[2].adopt`. */
  field: string;
  /** What it says. */
  allowed: boolean;
  /**
   * How the plan names the adoption, where adopting does less than making would (a hand-made
   * bridge keeps its own MAC and STP): without it, the entry's own description.
   */
  describe?: string;
}

/** A link; `data.kind` is the link kind. */
export interface LinkEntry {
  kind: 'link';
  /** `link:<name>`. */
  id: string;
  data: BridgeLinkData | VethLinkData | TapLinkData | IfbLinkData;
  adopt?: Adoption;
}

/** An address (`cidr`) on `dev`. */
export interface AddressEntry {
  kind: 'address';
  /** `address:<dev>:<cidr>`. */
  id: string;
  data: { dev: string; cidr: string };
  adopt?: Adoption;
}

/** A route to `to` (a prefix) through `dev`. */
export interface RouteEntry {
  kind: 'route';
  /** `route:<to>`. */
  id: string;
  data: { to: string; dev: string };
  adopt?: Adoption;
}

/** A proxy neighbour (proxy NDP) for `to` on `dev`. */
export interface ProxyNeighborEntry {
  kind: 'proxyNeighbor';
  /** `proxyNeighbor:<dev>:<to>`. */
  id: string;
  data: { to: string; dev: string };
  adopt?: Adoption;
}

/** The host's firewall (its owner's chains). */
export interface FirewallEntry {
  kind: 'firewall';
  id: 'firewall';
  data: { model: FirewallModel };
}

/** A token bucket (tbf): `rate` in bits/s, `burst` in bytes, `latency` (the queue) in seconds. */
export interface TbfSettings {
  kind: 'tbf';
  rate: number;
  burst: number;
  latency: number;
}

/**
 * A qdisc on one of this host's links (a VM's TAP or ifb), identified by the link and its place:
 * a tbf at the root with `handle`, or the ingress qdisc (handle `ffff:`).
 */
export interface QdiscData {
  dev: string;
  parent: 'root' | 'ingress';
  handle: string;
  qdisc: TbfSettings | { kind: 'ingress' };
}

/** A qdisc vmhost put on its link (docs/host-bandwidth.md). */
export interface QdiscEntry {
  kind: 'qdisc';
  /** `qdisc:<dev>:<parent>`. */
  id: string;
  data: QdiscData;
}

/** A u32 filter matching everything on `dev`'s ingress, at `prio`, that redirects it to the egress of `redirect` (an ifb). */
export interface TcFilterData {
  dev: string;
  parent: 'ingress';
  prio: number;
  redirect: string;
}

/** A tc filter vmhost put on its link (docs/host-bandwidth.md). */
export interface TcFilterEntry {
  kind: 'tcFilter';
  /** `tcFilter:<dev>:<parent>:<prio>`. */
  id: string;
  data: TcFilterData;
}

/** dnsmasq on the bridge. */
export interface DnsmasqEntry {
  kind: 'dnsmasq';
  id: 'dnsmasq';
  data: { options: DnsmasqOptions };
}

/** A running VM. */
export interface VmEntry {
  kind: 'vm';
  /** `vm:<name>`. */
  id: string;
  /**
   * `seed`: its cloud-init seed and the file it goes to (written before QEMU starts; its
   * instance-id is part of the VM's fingerprint, so a changed seed restarts the VM).
   */
  data: { name: string; options: VmOptions; seed?: { file: string; seed: CloudInitSeed } };
}

/** The IPv6 TCP proxy service (plan B). */
export interface Proxy6Entry {
  kind: 'proxy6';
  id: 'proxy6';
  data: { options: ProxyOptions & { dir: string } };
}

/** One thing apply made (or changed). */
export type Entry = SysctlEntry | LinkEntry | AddressEntry | RouteEntry | ProxyNeighborEntry | FirewallEntry | QdiscEntry | TcFilterEntry | DnsmasqEntry | VmEntry | Proxy6Entry;

/** The kinds of entries. */
export type EntryKind = Entry['kind'];


/** An entry the host file wants, with one line for people (`bridge br0 (mac ..., stp off)`). */
export interface Desired {
  entry: Entry;
  describe: string;
}
