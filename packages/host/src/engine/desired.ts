/**
 * The desired state of a host: the entries a resolved host file wants, in the order apply makes
 * them, each with its description; and the firewall model, dnsmasq's options, the proxy's routes
 * and each VM's QEMU options they hold. Pure: no Rtnl, no I/O, the same host and directory give
 * the same entries.
 * @module
 */
import { join } from 'node:path';
import { ip, VmhostError, type NetnsRef } from '@vmhost/net';
import type { VmOptions } from '@vmhost/kvm';
import { requiredSysctls, validateModel, type FirewallModel, type NormalizedModel, type Port, type PortForward, type Rule } from '@vmhost/firewall';
import type { DnsmasqOptions } from '../services/dnsmasq.js';
import type { CloudInitSeed } from '../guests/cloud-init.js';
import { vmGroup } from '../spec/schema.js';
import type { ProxyOptions } from '../services/proxy6.js';
import type { PortSpec, ResolvedHost, ResolvedVm } from '../types.js';
import { bandwidthEntries, ifbEntries } from './bandwidth.js';
import type { Adoption, Desired, Entry, VmEntry } from './entries.js';

/** Where the host's files are, and the namespace it is applied in. */
export interface DesiredOptions {
  /** The state directory (VM run dirs, dnsmasq's and the proxy's directories are under it). */
  dir: string;
  /** The network namespace (VMs are started inside it). */
  netns?: NetnsRef;
  /** The persistent data directory (the VMs' cloud-init seeds are under it). */
  dataDir?: string;
  /**
   * The rendered cloud-init seeds of the VMs with `cloudInit`, by name (engine/seeds.ts's
   * `loadSeeds`: it reads the user-data files). Left out: the VMs are described without their
   * seeds (for recovery, which records no definitions).
   */
  seeds?: ReadonlyMap<string, CloudInitSeed>;
  /** The ids QEMU drops to after it has opened what it opens at start (`-runas UID:GID`); left out: root. */
  runAs?: { uid: number; gid: number };
}

/** First and last port of a port or range. */
function portRange(p: PortSpec): [number, number] {
  return typeof p === 'number' ? [p, p] : [p[0], p[1]];
}

/**
 * A VM's port on the bridge (its TAP): the MAC and addresses it may send with
 * (docs/firewall-isolation.md); undefined with `isolation: false`. IPv6: its own address in routed
 * mode; none in proxy mode (the host holds the address on the uplink, the VM has only its
 * link-local one) or without an address.
 */
export function vmPort(host: ResolvedHost, vm: ResolvedVm): Port | undefined {
  if (!vm.isolation) return undefined;
  const ipv6 = host.ipv6?.mode === 'routed' && vm.ipv6 !== undefined ? [vm.ipv6] : [];
  return { interface: vm.tap, group: vmGroup(vm.name), mac: vm.mac, ipv4: [vm.ipv4], ipv6, linkLocal: vm.linkLocal };
}

/**
 * The firewall model of a host: NAT out of the uplink, per-VM port forwards (one group per VM,
 * named by the VM with '-' as '_': group names are letters, digits and '_'), IPv6 forwarding rules,
 * and the VMs' ports (anti-spoofing, in the same group).
 */
export function firewallModel(host: ResolvedHost): FirewallModel {
  const b = host.bridge;
  const routed = host.ipv6?.mode === 'routed';
  const subnets = [b.ipv4.network];
  if (routed && host.ipv6) subnets.push(host.ipv6.prefix.network);
  const forward: Rule[] = [{ inInterface: b.name, outInterface: host.uplink, source: b.ipv4.network, action: 'accept', comment: 'VMs to the uplink' }];
  const portForwards: PortForward[] = [];
  for (const vm of host.vms) {
    for (const f of vm.forwards) {
      const pf: PortForward = { protocol: f.protocol, port: f.port, to: vm.ipv4, toPort: f.toPort, hairpin: true, group: vmGroup(vm.name) };
      if (host.publicIPv4) pf.destination = host.publicIPv4;
      portForwards.push(pf);
    }
  }
  if (routed && host.ipv6) {
    forward.push({ inInterface: b.name, outInterface: host.uplink, source: host.ipv6.prefix.network, action: 'accept', comment: 'VMs to the uplink (IPv6)' });
    for (const vm of host.vms) {
      // its published ports on each of its addresses: its own, and those `vmhost run` learnt
      for (const destination of [...(vm.ipv6 !== undefined ? [vm.ipv6] : []), ...(vm.learnedIpv6 ?? [])]) {
        for (const f of vm.forwards) {
          const [first, last] = portRange(f.port);
          const lastTo = f.toPort + (last - first);
          forward.push({ outInterface: b.name, destination, protocol: f.protocol, port: lastTo === f.toPort ? f.toPort : [f.toPort, lastTo], state: ['NEW'], action: 'accept', comment: `${vm.name} published (IPv6)`, group: vmGroup(vm.name) });
        }
      }
    }
  }
  return {
    owner: host.name,
    lan: { interface: b.name, subnets, bridgeLocal: true, isolate: true, dhcp: host.dhcp !== undefined, dns: host.dhcp !== undefined },
    masquerade: [{ source: b.ipv4.network, outInterface: host.uplink }],
    forward,
    portForwards,
    allowIcmpv6: host.ipv6 !== undefined,
    ports: host.vms.map((vm) => vmPort(host, vm)).filter((p): p is Port => p !== undefined),
  };
}

/**
 * The /64 on the bridge dnsmasq serves router advertisements and DHCPv6 for: in routed mode, the
 * /64 holding the bridge's IPv6 address (its prefix length at most 64, as dnsmasq needs);
 * undefined otherwise. In proxy mode the VMs' addresses live on the uplink and the proxy reaches
 * the VMs over IPv4: the guests get no IPv6 on the bridge (docs/host-guest-ipv6.md).
 */
export function guestPrefix6(host: ResolvedHost): string | undefined {
  const b6 = host.bridge.ipv6;
  if (host.ipv6?.mode !== 'routed' || !b6 || b6.prefixLength > 64) return undefined;
  return ip.parsePrefix(`${b6.address}/64`).network;
}

/**
 * dnsmasq's options: the static leases of the VMs by MAC and their names (AAAA too in routed
 * mode), router advertisements and DHCPv6 for {@link guestPrefix6}; undefined without a `dhcp`
 * section.
 */
export function dnsmasqOptions(host: ResolvedHost, dir: string): DnsmasqOptions | undefined {
  if (!host.dhcp) return undefined;
  const routed = host.ipv6?.mode === 'routed';
  const o: DnsmasqOptions = {
    dir: join(dir, 'dnsmasq'),
    interface: host.bridge.name,
    address: host.bridge.ipv4.address,
    range: host.dhcp.range,
    netmask: ip.netmask(4, host.bridge.ipv4.prefixLength),
    leaseTime: host.dhcp.leaseTime,
    hosts: host.vms.map((v) => ({ mac: v.mac, ipv4: v.ipv4, name: v.name, ...(routed && v.ipv6 !== undefined ? { ipv6: v.ipv6 } : {}) })),
  };
  if (host.dhcp.domain !== undefined) o.domain = host.dhcp.domain;
  if (host.dhcp.dnsServers !== undefined) o.servers = host.dhcp.dnsServers;
  const prefix = guestPrefix6(host);
  if (prefix !== undefined) o.ipv6 = { prefix, dnsServer: host.bridge.ipv6!.address, leaseTime: host.dhcp.leaseTime };
  return o;
}

/** The IPv6 proxy's routes (each published TCP port of each VM's own address); undefined unless plan B with routes. */
export function proxyOptions(host: ResolvedHost): ProxyOptions | undefined {
  if (host.ipv6?.mode !== 'proxy') return undefined;
  const routes: ProxyOptions['routes'] = [];
  for (const vm of host.vms) {
    if (!vm.ipv6) continue;
    for (const f of vm.forwards) {
      if (f.protocol !== 'tcp') continue;
      const [first, last] = portRange(f.port);
      for (let p = first; p <= last; p++) routes.push({ name: `${vm.name}:${p}`, listen: { address: vm.ipv6, port: p }, target: { host: vm.ipv4, port: f.toPort + (p - first) } });
    }
  }
  if (routes.length === 0) return undefined;
  return { routes, ...host.ipv6.proxy };
}

/** The run directory of one VM (QMP socket, pidfile, console log) under the state directory `dir`. */
export function vmDir(dir: string, name: string): string {
  return join(dir, 'vms', name);
}

/** The cloud-init seed volume of one VM under the data directory `dataDir`. */
export function seedFile(dataDir: string, name: string): string {
  return join(dataDir, 'seeds', `${name}.iso`);
}

/** The seed of `vm` in `o` (undefined: none, or seeds not given); throws when `o.seeds` lacks a VM that has `cloudInit`. */
function vmSeed(vm: ResolvedVm, o: DesiredOptions): { file: string; seed: CloudInitSeed } | undefined {
  if (!vm.cloudInit || !o.seeds) return undefined;
  const seed = o.seeds.get(vm.name);
  if (!seed || o.dataDir === undefined) throw new VmhostError('EHOST_INTERNAL', `no cloud-init seed or data directory for VM ${vm.name}`);
  return { file: seedFile(o.dataDir, vm.name), seed };
}

/** QEMU's options for a VM of the host: its disks, then its seed volume (raw, read-only). */
export function vmOptions(vm: ResolvedVm, o: DesiredOptions): VmOptions {
  const runDir = vmDir(o.dir, vm.name);
  const seed = vmSeed(vm, o);
  const out: VmOptions = {
    name: vm.name,
    runDir,
    memoryMiB: vm.memoryMiB,
    cpus: vm.cpus,
    accel: vm.accel,
    machine: vm.machine,
    sandbox: vm.sandbox === 'auto' ? 'auto' : vm.sandbox === 'on',
    // A disk's file here is the host file's: the start path (disks/session.ts prepareDrives) puts
    // each writable disk on the active top of its chain. A base image stands read-only until then,
    // so that nothing could ever write it. The cloud-init seed comes after the disks.
    drives: [
      ...vm.disks.map((d) => ({ file: d.file, format: d.format, cache: d.cache, readOnly: d.readOnly || d.base !== undefined, interface: 'virtio' as const })),
      ...(seed ? [{ file: seed.file, format: 'raw' as const, readOnly: true, interface: 'virtio' as const }] : []),
    ],
    nics: [{ tap: vm.tap, mac: vm.mac, model: vm.machine === 'microvm' ? 'virtio-net-device' : 'virtio-net-pci' }],
    console: { file: join(runDir, 'console.log') },
  };
  if (vm.kernel !== undefined) out.kernel = vm.kernel;
  if (vm.initrd !== undefined) out.initrd = vm.initrd;
  if (vm.append !== undefined) out.append = vm.append;
  if (o.netns !== undefined) out.netns = o.netns;
  if (o.runAs !== undefined) out.runAs = { uid: o.runAs.uid, gid: o.runAs.gid };
  return out;
}

/** The entry of a running VM (with its seed: the VM kind writes it before QEMU starts). */
export function vmEntry(vm: ResolvedVm, o: DesiredOptions): VmEntry {
  const seed = vmSeed(vm, o);
  return { id: `vm:${vm.name}`, kind: 'vm', data: { name: vm.name, options: vmOptions(vm, o), ...(seed ? { seed } : {}) } };
}

/** The models of this process's runs, checked once each (the entries' models are made per run and never changed). */
const normalized = new WeakMap<FirewallModel, NormalizedModel>();

/**
 * `model` checked and normalized (@vmhost/firewall `validateModel`), once per model object: the
 * desired state needs it for the sysctls, the firewall kind to plan and apply, and each would
 * check all its forwards and ports again.
 * @throws {ValidationError} for a bad model.
 */
export function normalizedModel(model: FirewallModel): NormalizedModel {
  let m = normalized.get(model);
  if (m === undefined) {
    m = validateModel(model);
    normalized.set(model, m);
  }
  return m;
}

/** The sysctl path of an interface in a key (`eth0.100` is written `eth0/100`). */
const ifKey = (name: string): string => name.replace(/\./g, '/');

/** The entries `host` wants, in the order apply creates them. */
export function desiredState(host: ResolvedHost, o: DesiredOptions): Desired[] {
  const b = host.bridge;
  const out: Desired[] = [];
  const add = (entry: Entry, describe: string): void => void out.push({ entry, describe });
  const sysctl = (key: string, value: string, why: string): void => add({ id: `sysctl:${key}`, kind: 'sysctl', data: { key, value } }, `sysctl ${key}=${value} (${why})`);

  sysctl('net.ipv4.ip_forward', '1', 'NAT and port forwards');
  if (host.ipv6) {
    if (host.ipv6.acceptRa) sysctl(`net.ipv6.conf.${ifKey(host.uplink)}.accept_ra`, '2', 'keep the RA default route with forwarding on');
    sysctl('net.ipv6.conf.all.forwarding', '1', 'IPv6 to the VMs');
    if (host.ipv6.mode === 'routed') sysctl(`net.ipv6.conf.${ifKey(host.uplink)}.proxy_ndp`, '1', 'answer neighbour discovery for the VMs');
  }
  const model = firewallModel(host);
  // what the rules need besides (the VM ports' neighbour-discovery check: bridge-nf-call-ip6tables)
  for (const s of requiredSysctls(normalizedModel(model))) {
    if (!out.some((d) => d.entry.id === `sysctl:${s.key}`)) sysctl(s.key, s.value, s.reason);
  }
  const bridgeAdopt: Adoption = { field: 'bridge.adopt', allowed: b.adopt };
  const vmAdopt = (i: number): Adoption => ({ field: `vms[${i}].adopt`, allowed: host.vms[i]!.adopt });
  // adopting a link only puts it on its bridge and sets it up (kinds/link.ts adopt): the plan
  // says what it keeps instead of the MAC, STP and promiscuity it would make the link with
  add(
    { id: `link:${b.name}`, kind: 'link', data: { name: b.name, kind: 'bridge', mac: b.mac ?? null, stp: b.stp }, adopt: { ...bridgeAdopt, describe: `bridge ${b.name} (its own MAC and STP kept)` } },
    `bridge ${b.name} (${b.mac ? `mac ${b.mac}, ` : ''}stp ${b.stp ? 'on' : 'off'})`,
  );
  if (b.veth) {
    const adoptVeth: Adoption = { ...bridgeAdopt, describe: `veth ${b.veth.name}/${b.veth.peer} on ${b.name} (its own MAC and promiscuity kept)` };
    add(
      { id: `link:${b.veth.name}`, kind: 'link', data: { name: b.veth.name, kind: 'veth', peer: b.veth.peer, mac: b.mac ?? null, master: b.name, promisc: true }, adopt: adoptVeth },
      `veth ${b.veth.name}/${b.veth.peer} on ${b.name} (${b.mac ? `mac ${b.mac}, ` : ''}promisc)`,
    );
  }
  for (const a of [b.ipv4, b.ipv6]) {
    if (a) add({ id: `address:${b.name}:${a.cidr}`, kind: 'address', data: { dev: b.name, cidr: a.cidr }, adopt: bridgeAdopt }, `address ${a.cidr} on ${b.name}`);
  }
  host.vms.forEach((vm, i) => add({ id: `link:${vm.tap}`, kind: 'link', data: { name: vm.tap, kind: 'tap', master: b.name }, adopt: vmAdopt(i) }, `TAP ${vm.tap} on ${b.name} for ${vm.name}`));
  for (const vm of host.vms) out.push(...ifbEntries(vm));
  host.vms.forEach((vm, i) => {
    if (!host.ipv6) return;
    if (host.ipv6.mode === 'routed') {
      // the VM's own address, then those `vmhost run` learnt it uses (ipv6.learn)
      const own = vm.ipv6 !== undefined ? [[vm.ipv6, vm.name] as const] : [];
      for (const [a, who] of [...own, ...(vm.learnedIpv6 ?? []).map((l) => [l, `${vm.name}, learnt`] as const)]) {
        add({ id: `proxyNeighbor:${host.uplink}:${a}`, kind: 'proxyNeighbor', data: { to: a, dev: host.uplink }, adopt: vmAdopt(i) }, `proxy neighbour ${a} on ${host.uplink} (${who})`);
        add({ id: `route:${a}/128`, kind: 'route', data: { to: `${a}/128`, dev: b.name }, adopt: vmAdopt(i) }, `route ${a}/128 dev ${b.name} (${who})`);
      }
    } else if (vm.ipv6) {
      add({ id: `address:${host.uplink}:${vm.ipv6}/128`, kind: 'address', data: { dev: host.uplink, cidr: `${vm.ipv6}/128` }, adopt: vmAdopt(i) }, `address ${vm.ipv6}/128 on ${host.uplink} for the proxy (${vm.name})`);
    }
  });
  // before any VM starts (the rules match the TAPs by name): no VM runs without its port's rules
  add({ id: 'firewall', kind: 'firewall', data: { model } }, `firewall (owner ${host.name}: NAT, ${model.portForwards?.length ?? 0} port forward(s)${host.ipv6 ? ', IPv6' : ''}, ${model.ports?.length ?? 0} isolated VM port(s))`);
  // bandwidth limits before the VMs start (they hang off the TAPs and ifbs)
  for (const vm of host.vms) out.push(...bandwidthEntries(vm));
  const dns = dnsmasqOptions(host, o.dir);
  if (dns) add({ id: 'dnsmasq', kind: 'dnsmasq', data: { options: dns } }, `dnsmasq on ${b.name} (${dns.range.join('-')}, ${dns.hosts.length} static lease(s)${dns.ipv6 ? `, RA and DHCPv6 for ${dns.ipv6.prefix}` : ''})`);
  for (const vm of host.vms) {
    if (!vm.autostart) continue;
    const e = vmEntry(vm, o);
    add(e, `VM ${vm.name} (${vm.memoryMiB} MiB, ${vm.cpus} cpu, ${vm.mac}, ${vm.ipv4}${vm.ipv6 ? `, ${vm.ipv6}` : ''}${e.data.seed ? `, cloud-init ${e.data.seed.seed.instanceId}` : ''})`);
  }
  const px = proxyOptions(host);
  if (px) add({ id: 'proxy6', kind: 'proxy6', data: { options: { ...px, dir: join(o.dir, 'proxy6') } } }, `IPv6 proxy (${px.routes.length} port(s) to the VMs' IPv4)`);
  return out;
}
