/**
 * The desired state of a host: the entries a resolved host file wants, in the order apply makes
 * them, each with its description; and the firewall model, dnsmasq's options, the proxy's routes
 * and each VM's QEMU options they hold. Pure: no Rtnl, no I/O, the same host and directory give
 * the same entries.
 * @module
 */
import { join } from 'node:path';
import { ip, type NetnsRef } from '@vmhost/net';
import type { VmOptions } from '@vmhost/kvm';
import type { FirewallModel, PortForward, Rule } from '@vmhost/firewall';
import type { DnsmasqOptions } from '../services/dnsmasq.js';
import { vmGroup } from '../spec/schema.js';
import type { ProxyOptions } from '../services/proxy6.js';
import type { PortSpec, ResolvedHost, ResolvedVm } from '../types.js';
import type { Adoption, Desired, Entry, VmEntry } from './entries.js';

/** Where the host's files are, and the namespace it is applied in. */
export interface DesiredOptions {
  /** The state directory (VM run dirs, dnsmasq's and the proxy's directories are under it). */
  dir: string;
  /** The network namespace (VMs are started inside it). */
  netns?: NetnsRef;
  /** The ids QEMU drops to after it has opened what it opens at start (`-runas UID:GID`); left out: root. */
  runAs?: { uid: number; gid: number };
}

/** First and last port of a port or range. */
function portRange(p: PortSpec): [number, number] {
  return typeof p === 'number' ? [p, p] : [p[0], p[1]];
}

/**
 * The firewall model of a host: NAT out of the uplink, per-VM port forwards (one group per VM,
 * named by the VM with '-' as '_': group names are letters, digits and '_'), IPv6 forwarding rules.
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
      if (!vm.ipv6) continue;
      for (const f of vm.forwards) {
        const [first, last] = portRange(f.port);
        const lastTo = f.toPort + (last - first);
        forward.push({ outInterface: b.name, destination: vm.ipv6, protocol: f.protocol, port: lastTo === f.toPort ? f.toPort : [f.toPort, lastTo], state: ['NEW'], action: 'accept', comment: `${vm.name} published (IPv6)`, group: vmGroup(vm.name) });
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
  };
}

/** dnsmasq's options (static leases of the VMs by MAC); undefined without a `dhcp` section. */
export function dnsmasqOptions(host: ResolvedHost, dir: string): DnsmasqOptions | undefined {
  if (!host.dhcp) return undefined;
  const o: DnsmasqOptions = {
    dir: join(dir, 'dnsmasq'),
    interface: host.bridge.name,
    address: host.bridge.ipv4.address,
    range: host.dhcp.range,
    netmask: ip.netmask(4, host.bridge.ipv4.prefixLength),
    leaseTime: host.dhcp.leaseTime,
    hosts: host.vms.map((v) => ({ mac: v.mac, ipv4: v.ipv4, name: v.name })),
  };
  if (host.dhcp.domain !== undefined) o.domain = host.dhcp.domain;
  if (host.dhcp.dnsServers !== undefined) o.servers = host.dhcp.dnsServers;
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

/** QEMU's options for a VM of the host. */
export function vmOptions(vm: ResolvedVm, o: DesiredOptions): VmOptions {
  const runDir = vmDir(o.dir, vm.name);
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
    // so that nothing could ever write it.
    drives: vm.disks.map((d) => ({ file: d.file, format: d.format, cache: d.cache, readOnly: d.readOnly || d.base !== undefined, interface: 'virtio' as const })),
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

/** The entry of a running VM. */
export function vmEntry(vm: ResolvedVm, o: DesiredOptions): VmEntry {
  return { id: `vm:${vm.name}`, kind: 'vm', data: { name: vm.name, options: vmOptions(vm, o) } };
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
  const bridgeAdopt: Adoption = { field: 'bridge.adopt', allowed: b.adopt };
  const vmAdopt = (i: number): Adoption => ({ field: `vms[${i}].adopt`, allowed: host.vms[i]!.adopt });
  add({ id: `link:${b.name}`, kind: 'link', data: { name: b.name, kind: 'bridge', mac: b.mac ?? null, stp: b.stp }, adopt: bridgeAdopt }, `bridge ${b.name} (${b.mac ? `mac ${b.mac}, ` : ''}stp ${b.stp ? 'on' : 'off'})`);
  if (b.veth) {
    add(
      { id: `link:${b.veth.name}`, kind: 'link', data: { name: b.veth.name, kind: 'veth', peer: b.veth.peer, mac: b.mac ?? null, master: b.name, promisc: true }, adopt: bridgeAdopt },
      `veth ${b.veth.name}/${b.veth.peer} on ${b.name} (${b.mac ? `mac ${b.mac}, ` : ''}promisc)`,
    );
  }
  for (const a of [b.ipv4, b.ipv6]) {
    if (a) add({ id: `address:${b.name}:${a.cidr}`, kind: 'address', data: { dev: b.name, cidr: a.cidr }, adopt: bridgeAdopt }, `address ${a.cidr} on ${b.name}`);
  }
  host.vms.forEach((vm, i) => add({ id: `link:${vm.tap}`, kind: 'link', data: { name: vm.tap, kind: 'tap', master: b.name }, adopt: vmAdopt(i) }, `TAP ${vm.tap} on ${b.name} for ${vm.name}`));
  host.vms.forEach((vm, i) => {
    if (!vm.ipv6 || !host.ipv6) return;
    if (host.ipv6.mode === 'routed') {
      add({ id: `proxyNeighbor:${host.uplink}:${vm.ipv6}`, kind: 'proxyNeighbor', data: { to: vm.ipv6, dev: host.uplink }, adopt: vmAdopt(i) }, `proxy neighbour ${vm.ipv6} on ${host.uplink} (${vm.name})`);
      add({ id: `route:${vm.ipv6}/128`, kind: 'route', data: { to: `${vm.ipv6}/128`, dev: b.name }, adopt: vmAdopt(i) }, `route ${vm.ipv6}/128 dev ${b.name} (${vm.name})`);
    } else {
      add({ id: `address:${host.uplink}:${vm.ipv6}/128`, kind: 'address', data: { dev: host.uplink, cidr: `${vm.ipv6}/128` }, adopt: vmAdopt(i) }, `address ${vm.ipv6}/128 on ${host.uplink} for the proxy (${vm.name})`);
    }
  });
  const model = firewallModel(host);
  add({ id: 'firewall', kind: 'firewall', data: { model } }, `firewall (owner ${host.name}: NAT, ${model.portForwards?.length ?? 0} port forward(s)${host.ipv6 ? ', IPv6' : ''})`);
  const dns = dnsmasqOptions(host, o.dir);
  if (dns) add({ id: 'dnsmasq', kind: 'dnsmasq', data: { options: dns } }, `dnsmasq on ${b.name} (${dns.range.join('-')}, ${dns.hosts.length} static lease(s))`);
  for (const vm of host.vms) {
    if (vm.autostart) add(vmEntry(vm, o), `VM ${vm.name} (${vm.memoryMiB} MiB, ${vm.cpus} cpu, ${vm.mac}, ${vm.ipv4}${vm.ipv6 ? `, ${vm.ipv6}` : ''})`);
  }
  const px = proxyOptions(host);
  if (px) add({ id: 'proxy6', kind: 'proxy6', data: { options: { ...px, dir: join(o.dir, 'proxy6') } } }, `IPv6 proxy (${px.routes.length} port(s) to the VMs' IPv4)`);
  return out;
}
