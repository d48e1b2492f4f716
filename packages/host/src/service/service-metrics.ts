/**
 * The metric families of a running service (metrics.ts renders and serves them): from its status
 * (VMs, restarts, repairs, learnt addresses) and, at each scrape, the TAP counters (rtnetlink) and
 * the forward rule counters (iptables-save -c).
 * @module
 */
import type { NetnsRef, Rtnl } from '@vmhost/net';
import { vmGroup } from '../spec/schema.js';
import type { ResolvedHost } from '../types.js';
import { forwardFamilies, readForwardCounters, renderMetrics, tapFamilies, type Family } from './metrics.js';
import type { ServiceStatusFile } from './types.js';

/** What a scrape reads. */
export interface MetricsView {
  host: ResolvedHost;
  status: ServiceStatusFile;
  /** The service's handle in the host's namespace (TAP counters). */
  rtnl: Rtnl | undefined;
  netns: NetnsRef | undefined;
}

const gauge = (name: string, help: string, samples: Family['samples']): Family => ({ name, help, type: 'gauge', samples });
const counter = (name: string, help: string, samples: Family['samples']): Family => ({ name, help, type: 'counter', samples });

/** The families of the service's own state (no I/O). */
export function statusFamilies(host: ResolvedHost, s: ServiceStatusFile): Family[] {
  const vms = Object.entries(s.vms);
  return [
    gauge('vmhost_service_start_time_seconds', 'When this vmhost run started (Unix time).', [{ labels: { host: host.name }, value: Date.parse(s.since) / 1000 }]),
    gauge('vmhost_vm_up', "Whether the VM's QEMU runs.", vms.map(([vm, v]) => ({ labels: { vm }, value: v.running ? 1 : 0 }))),
    counter('vmhost_vm_restarts_total', 'Restarts of the VM by the service (its restart policy).', vms.map(([vm, v]) => ({ labels: { vm }, value: v.restarts }))),
    gauge('vmhost_vm_crash_loop', 'Whether the VM restarted too often and was given up (until a reload or vmhost vm start).', vms.map(([vm, v]) => ({ labels: { vm }, value: v.crashLoop ? 1 : 0 }))),
    gauge(
      'vmhost_vm_last_exit_timestamp_seconds',
      "When the VM's QEMU last exited (Unix time), by how: poweroff, host, stopped, panic, crash, unknown.",
      vms.flatMap(([vm, v]) => (v.lastExit ? [{ labels: { vm, cause: v.lastExit.cause }, value: Date.parse(v.lastExit.at) / 1000 }] : [])),
    ),
    gauge('vmhost_vm_learned_ipv6_addresses', 'IPv6 addresses learnt and published for the VM (ipv6.learn).', vms.map(([vm, v]) => ({ labels: { vm }, value: v.learned?.length ?? 0 }))),
    counter('vmhost_service_restarts_total', 'Restarts of dnsmasq and the IPv6 proxy by the service.', Object.entries(s.services).map(([service, v]) => ({ labels: { service }, value: v?.restarts ?? 0 }))),
    counter('vmhost_repairs_total', 'Steps carried out by repairs of drift, by entry kind (link, address, route, proxyNeighbor, firewall, ...).', Object.entries(s.repairs.byKind).map(([kind, n]) => ({ labels: { kind }, value: n }))),
  ];
}

/** The whole scrape. */
export async function collectMetrics(v: MetricsView): Promise<string> {
  const fams = statusFamilies(v.host, v.status);
  const taps = new Map(v.host.vms.map((vm) => [vm.tap, vm.name]));
  if (v.rtnl) fams.push(...tapFamilies(await v.rtnl.links.stats([...taps.keys()]).catch(() => []), (t) => taps.get(t)));
  const groups = new Map(v.host.vms.map((vm) => [vmGroup(vm.name), vm.name]));
  fams.push(...forwardFamilies(await readForwardCounters(v.host.name, v.netns).catch(() => []), (g) => groups.get(g)));
  return renderMetrics(fams);
}
