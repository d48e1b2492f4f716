/**
 * The engine: {@link plan}, {@link apply}, {@link down} and {@link status} of a resolved host file.
 *
 * The host is a list of entries (sysctls, links, addresses, routes, proxy neighbours, the firewall,
 * dnsmasq, VMs, the IPv6 proxy), each of a kind that knows how to inspect, create, update and
 * destroy it (see `kinds`). `plan` compares the wanted entries with the live state and with the
 * state file (what an earlier apply created); `apply` carries the steps out in order, writes the
 * state file after every step (so a crash leaves an accurate record), and on a failure undoes the
 * steps already done, in reverse. `down` destroys exactly the entries in the state file, in
 * reverse, and puts the sysctls it changed back to their old values. What existed before apply
 * (an uplink, a bridge made by hand, a sysctl already set) never enters the state file and is
 * never touched by `down`.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync, openSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Rtnl, SystemError, ValidationError, VmhostError, type NetnsRef } from '@vmhost/net';
import { Vm, isAlive, isQemuServing, readPidfile, runFiles, type VmOptions } from '@vmhost/kvm';
import { apply as fwApply, remove as fwRemove, save as fwSave, plan as fwPlan, isEmptyPlan, type FirewallModel, type Rule, type PortForward } from '@vmhost/firewall';
import { dnsmasqStatus, readLeases, startDnsmasq, stopDnsmasq, type DnsmasqOptions } from '../services/dnsmasq.js';
import { proxyServiceStatus, startProxyService, stopProxyService, type ProxyOptions } from '../services/proxy6.js';
import { HostApplyError, HostBusyError, HostPreconditionError, HostStateError } from '../errors.js';
import type { HostOptions, HostStatus, Plan, ProgressEvent, Report, ResolvedHost, ResolvedVm, Step, StepAction } from '../types.js';

// ---------------------------------------------------------------------------------- the state

type Kind = 'sysctl' | 'link' | 'address' | 'route' | 'proxyNeighbor' | 'firewall' | 'dnsmasq' | 'vm' | 'proxy6';

/** One thing apply made (or changed), as recorded in the state file. */
interface Entry {
  id: string;
  kind: Kind;
  /** What the kind needs to create, inspect and destroy it (JSON). */
  data: Record<string, unknown>;
  /** For sysctls: the value before apply changed it. */
  previous?: string;
}

interface StateFile {
  version: 1;
  name: string;
  entries: Entry[];
  updatedAt: string;
}

/** An entry the spec wants, with its description. */
interface Wanted extends Entry {
  describe: string;
}

/** The state directory of `host` under `options`. */
export function stateDirFor(host: ResolvedHost, options: HostOptions = {}): string {
  if (options.stateDir !== undefined) {
    if (!options.stateDir.startsWith('/')) throw new ValidationError('stateDir', options.stateDir, 'expected an absolute path');
    return options.stateDir;
  }
  const ns = typeof options.netns === 'string' ? options.netns : typeof options.netns === 'object' && options.netns && 'name' in options.netns ? options.netns.name : undefined;
  return ns ? join('/run/vmhost', ns, host.name) : join('/run/vmhost', host.name);
}

/** The run directory of one VM (QMP socket, pidfile, console log). */
export function vmRunDir(host: ResolvedHost, name: string, options: HostOptions = {}): string {
  return join(stateDirFor(host, options), 'vms', name);
}

/** The serial console log file of a VM of `host`. */
export function consoleFile(host: ResolvedHost, name: string, options: HostOptions = {}): string {
  findVm(host, name);
  return join(vmRunDir(host, name, options), 'console.log');
}

function readState(dir: string, name: string): StateFile {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) return { version: 1, name, entries: [], updatedAt: new Date(0).toISOString() };
  const s = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
  if (s.version !== 1 || !Array.isArray(s.entries)) throw new HostStateError(file, `not a vmhost state file (version ${String(s.version)})`);
  return s;
}

function writeState(dir: string, s: StateFile): void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'state.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...s, updatedAt: new Date().toISOString() }, null, 2)}\n`);
  renameSync(tmp, file);
}

/** One apply/down at a time per state directory (a lock file holding the pid; a dead holder's lock is taken over). */
function lock(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw SystemError.from(err, `locking ${file}`);
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new HostBusyError(file, pid);
      }
      unlinkSync(file);
    }
  }
  throw new HostBusyError(file);
}

// ------------------------------------------------------------------------------- the context

interface Ctx {
  host: ResolvedHost;
  options: HostOptions;
  dir: string;
  h: Rtnl;
  netns?: NetnsRef;
}

async function openCtx(host: ResolvedHost, options: HostOptions): Promise<Ctx> {
  const h = await Rtnl.open(options.netns !== undefined ? { netns: options.netns } : {});
  const ctx: Ctx = { host, options, dir: stateDirFor(host, options), h };
  if (options.netns !== undefined) ctx.netns = options.netns;
  return ctx;
}

function findVm(host: ResolvedHost, name: string): ResolvedVm {
  const vm = host.vms.find((v) => v.name === name);
  if (!vm) throw new ValidationError('name', name, `no VM of that name in host "${host.name}" (VMs: ${host.vms.map((v) => v.name).join(', ') || 'none'})`);
  return vm;
}

// ---------------------------------------------------------------------- what the spec wants

/** The firewall model of a host: NAT out of the uplink, per-VM port forwards (one group per VM), IPv6 forwarding rules. */
export function firewallModel(host: ResolvedHost): FirewallModel {
  const b = host.bridge;
  const routed = host.ipv6?.mode === 'routed';
  const subnets = [b.ipv4.network];
  if (routed && host.ipv6) subnets.push(host.ipv6.prefix.network);
  const forward: Rule[] = [{ inInterface: b.name, outInterface: host.uplink, source: b.ipv4.network, action: 'accept', comment: 'VMs to the uplink' }];
  const portForwards: PortForward[] = [];
  for (const vm of host.vms) {
    for (const f of vm.forwards) {
      const pf: PortForward = { protocol: f.protocol, port: f.port, to: vm.ipv4, toPort: f.toPort, hairpin: true, group: vm.name };
      if (host.publicIPv4) pf.destination = host.publicIPv4;
      portForwards.push(pf);
    }
  }
  if (routed && host.ipv6) {
    forward.push({ inInterface: b.name, outInterface: host.uplink, source: host.ipv6.prefix.network, action: 'accept', comment: 'VMs to the uplink (IPv6)' });
    for (const vm of host.vms) {
      if (!vm.ipv6) continue;
      for (const f of vm.forwards) {
        const last = Array.isArray(f.port) ? f.toPort + ((f.port as readonly [number, number])[1] - (f.port as readonly [number, number])[0]) : f.toPort;
        forward.push({ outInterface: b.name, destination: vm.ipv6, protocol: f.protocol, port: last === f.toPort ? f.toPort : [f.toPort, last], state: ['NEW'], action: 'accept', comment: `${vm.name} published (IPv6)`, group: vm.name });
      }
    }
  }
  const model: FirewallModel = {
    owner: host.name,
    lan: { interface: b.name, subnets, bridgeLocal: true, isolate: true, dhcp: host.dhcp !== undefined, dns: host.dhcp !== undefined },
    masquerade: [{ source: b.ipv4.network, outInterface: host.uplink }],
    forward,
    portForwards,
    allowIcmpv6: host.ipv6 !== undefined,
  };
  return model;
}

function netmask(prefixLength: number): string {
  const m = prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

function dnsmasqOptions(ctx: Ctx): DnsmasqOptions | undefined {
  const { host } = ctx;
  if (!host.dhcp) return undefined;
  const o: DnsmasqOptions = {
    dir: join(ctx.dir, 'dnsmasq'),
    interface: host.bridge.name,
    address: host.bridge.ipv4.address,
    range: host.dhcp.range,
    netmask: netmask(host.bridge.ipv4.prefixLength),
    leaseTime: host.dhcp.leaseTime,
    hosts: host.vms.map((v) => ({ mac: v.mac, ipv4: v.ipv4, name: v.name })),
  };
  if (host.dhcp.domain !== undefined) o.domain = host.dhcp.domain;
  if (host.dhcp.dnsServers !== undefined) o.servers = host.dhcp.dnsServers;
  return o;
}

function proxyOptions(ctx: Ctx): ProxyOptions | undefined {
  const { host } = ctx;
  if (host.ipv6?.mode !== 'proxy') return undefined;
  const routes: ProxyOptions['routes'] = [];
  for (const vm of host.vms) {
    if (!vm.ipv6) continue;
    for (const f of vm.forwards) {
      if (f.protocol !== 'tcp') continue;
      const [first, last] = Array.isArray(f.port) ? (f.port as readonly [number, number]) : [f.port as number, f.port as number];
      for (let p = first; p <= last; p++) routes.push({ name: `${vm.name}:${p}`, listen: { address: vm.ipv6, port: p }, target: { host: vm.ipv4, port: f.toPort + (p - first) } });
    }
  }
  if (routes.length === 0) return undefined;
  return { routes, maxConnections: host.ipv6.proxy.maxConnections, idleTimeoutMs: host.ipv6.proxy.idleTimeoutMs, connectTimeoutMs: host.ipv6.proxy.connectTimeoutMs };
}

function vmOptions(ctx: Ctx, vm: ResolvedVm): VmOptions {
  const runDir = join(ctx.dir, 'vms', vm.name);
  const o: VmOptions = {
    name: vm.name,
    runDir,
    memoryMiB: vm.memoryMiB,
    cpus: vm.cpus,
    accel: vm.accel,
    drives: vm.disks.map((d) => ({ file: d.file, format: d.format, cache: d.cache, readOnly: d.readOnly, interface: 'virtio' as const })),
    nics: [{ tap: vm.tap, mac: vm.mac, model: 'virtio-net-pci' }],
    console: { file: join(runDir, 'console.log') },
  };
  if (vm.kernel !== undefined) o.kernel = vm.kernel;
  if (vm.initrd !== undefined) o.initrd = vm.initrd;
  if (vm.append !== undefined) o.append = vm.append;
  if (ctx.netns !== undefined) o.netns = ctx.netns;
  return o;
}

/** The entries `host` wants, in the order apply creates them. */
function wanted(ctx: Ctx): Wanted[] {
  const { host } = ctx;
  const b = host.bridge;
  const out: Wanted[] = [];
  const sysctl = (key: string, value: string, why: string): void => {
    out.push({ id: `sysctl:${key}`, kind: 'sysctl', data: { key, value }, describe: `sysctl ${key}=${value} (${why})` });
  };
  sysctl('net.ipv4.ip_forward', '1', 'NAT and port forwards');
  if (host.ipv6) {
    if (host.ipv6.acceptRa) sysctl(`net.ipv6.conf.${host.uplink.replace(/\./g, '/')}.accept_ra`, '2', 'keep the RA default route with forwarding on');
    sysctl('net.ipv6.conf.all.forwarding', '1', 'IPv6 to the VMs');
    if (host.ipv6.mode === 'routed') sysctl(`net.ipv6.conf.${host.uplink.replace(/\./g, '/')}.proxy_ndp`, '1', 'answer neighbour discovery for the VMs');
  }
  out.push({ id: `link:${b.name}`, kind: 'link', data: { name: b.name, kind: 'bridge', mac: b.mac ?? null, stp: b.stp }, describe: `bridge ${b.name}${b.mac ? ` (mac ${b.mac}` : ' ('}${b.mac ? ', ' : ''}stp ${b.stp ? 'on' : 'off'})` });
  if (b.veth) {
    out.push({ id: `link:${b.veth.name}`, kind: 'link', data: { name: b.veth.name, kind: 'veth', peer: b.veth.peer, mac: b.mac ?? null, master: b.name, promisc: true }, describe: `veth ${b.veth.name}/${b.veth.peer} on ${b.name}${b.mac ? ` (mac ${b.mac}, promisc)` : ' (promisc)'}` });
  }
  out.push({ id: `address:${b.name}:${b.ipv4.cidr}`, kind: 'address', data: { dev: b.name, cidr: b.ipv4.cidr }, describe: `address ${b.ipv4.cidr} on ${b.name}` });
  if (b.ipv6) out.push({ id: `address:${b.name}:${b.ipv6.cidr}`, kind: 'address', data: { dev: b.name, cidr: b.ipv6.cidr }, describe: `address ${b.ipv6.cidr} on ${b.name}` });
  for (const vm of host.vms) {
    out.push({ id: `link:${vm.tap}`, kind: 'link', data: { name: vm.tap, kind: 'tap', master: b.name }, describe: `TAP ${vm.tap} on ${b.name} for ${vm.name}` });
  }
  for (const vm of host.vms) {
    if (!vm.ipv6 || !host.ipv6) continue;
    if (host.ipv6.mode === 'routed') {
      out.push({ id: `proxyNeighbor:${host.uplink}:${vm.ipv6}`, kind: 'proxyNeighbor', data: { to: vm.ipv6, dev: host.uplink }, describe: `proxy neighbour ${vm.ipv6} on ${host.uplink} (${vm.name})` });
      out.push({ id: `route:${vm.ipv6}/128`, kind: 'route', data: { to: `${vm.ipv6}/128`, dev: b.name }, describe: `route ${vm.ipv6}/128 dev ${b.name} (${vm.name})` });
    } else {
      out.push({ id: `address:${host.uplink}:${vm.ipv6}/128`, kind: 'address', data: { dev: host.uplink, cidr: `${vm.ipv6}/128` }, describe: `address ${vm.ipv6}/128 on ${host.uplink} for the proxy (${vm.name})` });
    }
  }
  const model = firewallModel(host);
  out.push({ id: 'firewall', kind: 'firewall', data: { model }, describe: `firewall (owner ${host.name}: NAT, ${model.portForwards?.length ?? 0} port forward(s)${host.ipv6 ? ', IPv6' : ''})` });
  const dns = dnsmasqOptions(ctx);
  if (dns) out.push({ id: 'dnsmasq', kind: 'dnsmasq', data: { options: dns }, describe: `dnsmasq on ${b.name} (${host.dhcp!.range.join('-')}, ${dns.hosts.length} static lease(s))` });
  for (const vm of host.vms) {
    if (!vm.autostart) continue;
    out.push({ id: `vm:${vm.name}`, kind: 'vm', data: { name: vm.name, options: vmOptions(ctx, vm) }, describe: `VM ${vm.name} (${vm.memoryMiB} MiB, ${vm.cpus} cpu, ${vm.mac}, ${vm.ipv4}${vm.ipv6 ? `, ${vm.ipv6}` : ''})` });
  }
  const px = proxyOptions(ctx);
  if (px) out.push({ id: 'proxy6', kind: 'proxy6', data: { options: { ...px, dir: join(ctx.dir, 'proxy6') } }, describe: `IPv6 proxy (${px.routes.length} port(s) to the VMs' IPv4)` });
  return out;
}

// --------------------------------------------------------------------------------- the kinds

type Live = 'ok' | 'missing' | 'differs';

interface KindOps {
  inspect(ctx: Ctx, e: Entry, recorded: Entry | undefined): Promise<Live>;
  /** Creates; returns the sysctl's previous value where there is one. */
  create(ctx: Ctx, e: Entry): Promise<string | undefined>;
  /** Brings a differing entry in line (default: destroy the recorded one, create the new one). */
  update?(ctx: Ctx, e: Entry, recorded: Entry | undefined): Promise<void>;
  destroy(ctx: Ctx, e: Entry): Promise<void>;
}

const hash = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
const isCode = (err: unknown, ...codes: string[]): boolean => err instanceof Error && codes.includes((err as { code?: string }).code ?? '');
const d = <T>(e: Entry): T => e.data as T;

const kinds: Record<Kind, KindOps> = {
  sysctl: {
    async inspect(ctx, e) {
      const { key, value } = d<{ key: string; value: string }>(e);
      return (await ctx.h.sysctl.get(key)) === value ? 'ok' : 'differs';
    },
    async create(ctx, e) {
      const { key, value } = d<{ key: string; value: string }>(e);
      return ctx.h.sysctl.exchange(key, value);
    },
    async destroy(ctx, e) {
      if (e.previous !== undefined) await ctx.h.sysctl.set(d<{ key: string }>(e).key, e.previous);
    },
  },
  link: {
    async inspect(ctx, e) {
      const w = d<{ name: string; kind: string; master?: string; peer?: string }>(e);
      const l = await ctx.h.links.find(w.name);
      if (!l) return 'missing';
      if (w.master !== undefined && (l.master !== w.master || !l.flags.up)) return 'differs';
      if (w.kind === 'bridge' && !l.flags.up) return 'differs';
      return 'ok';
    },
    async create(ctx, e) {
      const w = d<{ name: string; kind: 'bridge' | 'veth' | 'tap'; mac: string | null; stp?: boolean; peer?: string; master?: string; promisc?: boolean }>(e);
      if (w.kind === 'bridge') {
        await ctx.h.links.add({ kind: 'bridge', name: w.name, ...(w.mac ? { mac: w.mac } : {}), stp: w.stp ?? false, up: true });
      } else if (w.kind === 'veth') {
        await ctx.h.links.add({ kind: 'veth', name: w.name, ...(w.mac ? { mac: w.mac } : {}), peer: { name: w.peer! } });
        try {
          await ctx.h.links.set(w.name, { master: w.master!, promisc: w.promisc ?? false, up: true });
          await ctx.h.links.set(w.peer!, { up: true });
        } catch (err) {
          await ctx.h.links.delete(w.name).catch(() => undefined);
          throw err;
        }
      } else {
        await ctx.h.links.add({ kind: 'tap', name: w.name });
        try {
          await ctx.h.links.set(w.name, { master: w.master!, up: true });
        } catch (err) {
          await ctx.h.links.delete(w.name).catch(() => undefined);
          throw err;
        }
      }
      return undefined;
    },
    async update(ctx, e) {
      const w = d<{ name: string; master?: string }>(e);
      await ctx.h.links.set(w.name, { ...(w.master !== undefined ? { master: w.master } : {}), up: true });
    },
    async destroy(ctx, e) {
      try {
        await ctx.h.links.delete(d<{ name: string }>(e).name);
      } catch (err) {
        if (!isCode(err, 'ENODEV')) throw err;
      }
    },
  },
  address: {
    async inspect(ctx, e) {
      const { dev, cidr } = d<{ dev: string; cidr: string }>(e);
      if (!(await ctx.h.links.find(dev))) return 'missing';
      const list = await ctx.h.addresses.list({ link: dev });
      return list.some((a) => `${a.address}/${a.prefixLength}` === cidr) ? 'ok' : 'missing';
    },
    async create(ctx, e) {
      const { dev, cidr } = d<{ dev: string; cidr: string }>(e);
      await ctx.h.addresses.add(dev, cidr, cidr.includes(':') ? { nodad: true } : {});
      return undefined;
    },
    async destroy(ctx, e) {
      const { dev, cidr } = d<{ dev: string; cidr: string }>(e);
      try {
        await ctx.h.addresses.delete(dev, cidr);
      } catch (err) {
        if (!isCode(err, 'ENODEV', 'EADDRNOTAVAIL', 'ENOENT')) throw err;
      }
    },
  },
  route: {
    async inspect(ctx, e) {
      const { to, dev } = d<{ to: string; dev: string }>(e);
      if (!(await ctx.h.links.find(dev))) return 'missing';
      const list = await ctx.h.routes.list({ family: to.includes(':') ? 6 : 4, dev });
      return list.some((r) => r.to === to) ? 'ok' : 'missing';
    },
    async create(ctx, e) {
      const { to, dev } = d<{ to: string; dev: string }>(e);
      await ctx.h.routes.add({ to, dev });
      return undefined;
    },
    async destroy(ctx, e) {
      const { to, dev } = d<{ to: string; dev: string }>(e);
      try {
        await ctx.h.routes.delete({ to, dev });
      } catch (err) {
        if (!isCode(err, 'ESRCH', 'ENODEV', 'ENOENT')) throw err;
      }
    },
  },
  proxyNeighbor: {
    async inspect(ctx, e) {
      const { to, dev } = d<{ to: string; dev: string }>(e);
      const list = await ctx.h.neighbors.list({ family: 6, proxy: true, dev });
      return list.some((n) => n.to === to) ? 'ok' : 'missing';
    },
    async create(ctx, e) {
      const { to, dev } = d<{ to: string; dev: string }>(e);
      await ctx.h.neighbors.add({ to, dev, proxy: true });
      return undefined;
    },
    async destroy(ctx, e) {
      const { to, dev } = d<{ to: string; dev: string }>(e);
      try {
        await ctx.h.neighbors.delete({ to, dev, proxy: true });
      } catch (err) {
        if (!isCode(err, 'ENOENT', 'ENODEV')) throw err;
      }
    },
  },
  firewall: {
    async inspect(ctx, e, recorded) {
      const saved = await fwSave(ctx.netns !== undefined ? { netns: ctx.netns } : {});
      const p = fwPlan(d<{ model: FirewallModel }>(e).model, saved);
      if (isEmptyPlan(p.ipv4) && isEmptyPlan(p.ipv6)) return 'ok';
      return recorded ? 'differs' : 'missing';
    },
    async create(ctx, e) {
      await fwApply(d<{ model: FirewallModel }>(e).model, ctx.netns !== undefined ? { netns: ctx.netns } : {});
      return undefined;
    },
    async update(ctx, e) {
      // apply swaps only the chains that differ: one VM's forwards live in that VM's group chains
      await fwApply(d<{ model: FirewallModel }>(e).model, ctx.netns !== undefined ? { netns: ctx.netns } : {});
    },
    async destroy(ctx, e) {
      await fwRemove(d<{ model: FirewallModel }>(e).model.owner, ctx.netns !== undefined ? { netns: ctx.netns } : {});
    },
  },
  dnsmasq: {
    async inspect(_ctx, e, recorded) {
      const o = d<{ options: DnsmasqOptions }>(e).options;
      if (!dnsmasqStatus(o.dir).running) return 'missing';
      return recorded && hash(d<{ options: unknown }>(recorded).options) === hash(o) ? 'ok' : 'differs';
    },
    async create(ctx, e) {
      await startDnsmasq(withNetns(ctx, d<{ options: DnsmasqOptions }>(e).options));
      return undefined;
    },
    async update(ctx, e) {
      await startDnsmasq(withNetns(ctx, d<{ options: DnsmasqOptions }>(e).options));
    },
    async destroy(_ctx, e) {
      await stopDnsmasq(d<{ options: DnsmasqOptions }>(e).options.dir);
    },
  },
  proxy6: {
    async inspect(_ctx, e, recorded) {
      const o = d<{ options: ProxyOptions & { dir: string } }>(e).options;
      if (!proxyServiceStatus(o.dir).running) return 'missing';
      return recorded && hash(d<{ options: unknown }>(recorded).options) === hash(o) ? 'ok' : 'differs';
    },
    async create(ctx, e) {
      await startProxyService(withNetns(ctx, d<{ options: ProxyOptions & { dir: string } }>(e).options));
      return undefined;
    },
    async update(ctx, e) {
      await startProxyService(withNetns(ctx, d<{ options: ProxyOptions & { dir: string } }>(e).options));
    },
    async destroy(_ctx, e) {
      await stopProxyService(d<{ options: { dir: string } }>(e).options.dir);
    },
  },
  vm: {
    async inspect(_ctx, e, recorded) {
      const o = d<{ options: VmOptions }>(e).options;
      const st = await vmState(o.runDir);
      if (!st.running) return 'missing';
      return recorded && hash(d<{ options: unknown }>(recorded).options) === hash(o) ? 'ok' : 'differs';
    },
    async create(ctx, e) {
      const o = d<{ options: VmOptions }>(e).options;
      // a stopped VM's run dir (stale pidfile, console log of the last boot) is cleaned by start()
      mkdirSync(o.runDir, { recursive: true });
      const vm = new Vm(o);
      await vm.start({ timeoutMs: 60_000 });
      // QEMU's QMP socket serves one client at a time: let go, so that status, stop and later
      // applies (this process or another) can attach.
      await vm.detach();
      return undefined;
    },
    async update(ctx, e, recorded) {
      if (recorded) await kinds.vm.destroy(ctx, recorded);
      await kinds.vm.create(ctx, e);
    },
    async destroy(_ctx, e) {
      const o = d<{ options: VmOptions }>(e).options;
      let vm: Vm;
      try {
        vm = await Vm.attach(o.runDir, { timeoutMs: 3_000 });
      } catch {
        // QMP does not answer (or another client holds it: QEMU serves one at a time): if a QEMU
        // of this run dir still lives, end it by its pid.
        const pid = liveQemuPid(o.runDir);
        if (pid === undefined) return; // not running
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        return;
      }
      await vm.stop({ timeoutMs: 20_000 });
    },
  },
};

function withNetns<T extends object>(ctx: Ctx, o: T): T & { netns?: NetnsRef } {
  return ctx.netns !== undefined ? { ...o, netns: ctx.netns } : o;
}

/** The pid of the live QEMU that serves `runDir`'s QMP socket (by its pidfile and /proc), if any. */
function liveQemuPid(runDir: string): number | undefined {
  const files = runFiles(runDir);
  const pid = readPidfile(files.pidfile);
  return pid !== undefined && isQemuServing(pid, files.qmp) ? pid : undefined;
}

/**
 * Whether the VM of `runDir` runs: over QMP (its run state) when QMP answers; otherwise by its
 * pidfile and /proc (a live QEMU serving this run dir's QMP socket), since QEMU serves one QMP
 * client at a time and another tool (or a concurrent `vmhost status`) may hold it: `qmpBusy`.
 */
async function vmState(runDir: string): Promise<{ running: boolean; pid?: number; status?: string; qmpBusy?: true }> {
  if (!existsSync(join(runDir, 'vm.json'))) return { running: false };
  let vm: Vm;
  try {
    vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
  } catch {
    const pid = liveQemuPid(runDir);
    return pid !== undefined ? { running: true, pid, qmpBusy: true } : { running: false };
  }
  try {
    const st = await vm.status();
    const out: { running: boolean; pid?: number; status?: string } = { running: st.running };
    if (st.pid !== undefined) out.pid = st.pid;
    if (st.status !== undefined) out.status = st.status;
    return out;
  } finally {
    await vm.detach().catch(() => undefined);
  }
}

// --------------------------------------------------------------------------------- planning

/** A planned step with what carrying it out needs. */
interface PlannedStep extends Step {
  entry: Entry;
  recorded: Entry | undefined;
  /** The entry is in the state file but no longer wanted. */
  removal: boolean;
}

function verb(action: StepAction): string {
  return { create: 'create', update: 'update', delete: 'delete', start: 'start', stop: 'stop', restart: 'restart', set: 'set' }[action];
}

async function preconditions(ctx: Ctx): Promise<void> {
  const { host } = ctx;
  if (!(await ctx.h.links.find(host.uplink))) {
    throw new HostPreconditionError('uplink', host.uplink, `no interface ${host.uplink} in ${ctx.netns !== undefined ? `namespace ${JSON.stringify(ctx.netns)}` : 'this namespace'}`);
  }
  host.vms.forEach((vm, i) => {
    for (const [field, file] of [['kernel', vm.kernel], ['initrd', vm.initrd]] as const) {
      if (file !== undefined && !isFile(file)) throw new HostPreconditionError(`vms[${i}].${field}`, file, 'no such file');
    }
    vm.disks.forEach((dk, j) => {
      if (!isFile(dk.file)) throw new HostPreconditionError(`vms[${i}].disk[${j}].file`, dk.file, 'no such file');
    });
  });
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

async function planSteps(ctx: Ctx, state: StateFile): Promise<PlannedStep[]> {
  const want = wanted(ctx);
  const recordedById = new Map(state.entries.map((e) => [e.id, e]));
  const wantedIds = new Set(want.map((w) => w.id));
  const steps: PlannedStep[] = [];
  // Entries an earlier apply made that the spec no longer wants go first, newest first (a VM
  // stops before its TAP goes).
  for (const e of [...state.entries].reverse()) {
    if (wantedIds.has(e.id)) continue;
    const action: StepAction = e.kind === 'vm' || e.kind === 'dnsmasq' || e.kind === 'proxy6' ? 'stop' : e.kind === 'sysctl' ? 'set' : 'delete';
    const what = e.kind === 'sysctl' ? `sysctl ${String(e.data.key)} back to ${String(e.previous)}` : e.id.replace(':', ' ');
    steps.push({ id: e.id, action, description: `${verb(action)} ${what} (no longer in the host file)`, entry: e, recorded: e, removal: true });
  }
  for (const w of want) {
    const recorded = recordedById.get(w.id);
    const live = await kinds[w.kind].inspect(ctx, w, recorded);
    if (live === 'ok') continue;
    let action: StepAction;
    if (w.kind === 'sysctl') action = 'set';
    else if (w.kind === 'vm' || w.kind === 'dnsmasq' || w.kind === 'proxy6') action = live === 'missing' ? 'start' : 'restart';
    else action = live === 'missing' ? 'create' : 'update';
    const { describe, ...entry } = w;
    steps.push({ id: w.id, action, description: `${verb(action)} ${describe}`, entry, recorded, removal: false });
  }
  return steps;
}

/**
 * What {@link apply} would do, as a list of steps; empty when the host is as `host` says. Reads the
 * live state (links, addresses, routes, proxy neighbours, sysctls, iptables-save, dnsmasq, the
 * proxy, VMs) and the state file; changes nothing.
 * @throws {HostPreconditionError} the uplink or a VM's file is missing.
 */
export async function plan(host: ResolvedHost, options: HostOptions = {}): Promise<Plan> {
  const ctx = await openCtx(host, options);
  try {
    await preconditions(ctx);
    const steps = await planSteps(ctx, readState(ctx.dir, host.name));
    return { steps: steps.map(({ id, action, description }) => ({ id, action, description })) };
  } finally {
    ctx.h.close();
  }
}

// ---------------------------------------------------------------------------------- applying

function emit(options: HostOptions, ev: ProgressEvent): void {
  try {
    options.onProgress?.(ev);
  } catch {
    /* a progress callback must not break apply */
  }
}

/** Carries out one step; returns how to undo it. Updates `state` (and writes it). */
async function runStep(ctx: Ctx, state: StateFile, s: PlannedStep): Promise<() => Promise<void>> {
  const ops = kinds[s.entry.kind];
  const save = (): void => writeState(ctx.dir, state);
  const index = state.entries.findIndex((e) => e.id === s.id);
  if (s.removal) {
    // removal of an entry the spec no longer wants
    await ops.destroy(ctx, s.entry);
    const [removed] = index >= 0 ? state.entries.splice(index, 1) : [];
    save();
    return async () => {
      const prev = await ops.create(ctx, s.entry);
      state.entries.splice(Math.max(0, index), 0, removed ?? (prev !== undefined ? { ...s.entry, previous: prev } : s.entry));
      save();
    };
  }
  const live = s.action === 'create' || s.action === 'start' || (s.action === 'set' && !s.recorded);
  if (live) {
    const previous = await ops.create(ctx, s.entry);
    const entry: Entry = previous !== undefined ? { ...s.entry, previous } : s.entry;
    if (index >= 0) state.entries[index] = { ...entry, ...(s.recorded?.previous !== undefined ? { previous: s.recorded.previous } : {}) };
    else state.entries.push(entry);
    save();
    return async () => {
      await ops.destroy(ctx, entry);
      const i = state.entries.findIndex((e) => e.id === s.id);
      if (index >= 0 && s.recorded) state.entries[i] = s.recorded;
      else if (i >= 0) state.entries.splice(i, 1);
      save();
    };
  }
  // update of an entry that exists
  if (s.entry.kind === 'sysctl') {
    await ops.create(ctx, s.entry); // keep the value recorded by the first apply as "previous"
  } else if (ops.update) {
    await ops.update(ctx, s.entry, s.recorded);
  } else {
    if (s.recorded) await ops.destroy(ctx, s.recorded);
    await ops.create(ctx, s.entry);
  }
  const entry: Entry = s.recorded?.previous !== undefined ? { ...s.entry, previous: s.recorded.previous } : s.entry;
  if (index >= 0) state.entries[index] = entry;
  else state.entries.push(entry);
  save();
  return async () => {
    if (s.recorded) {
      if (s.entry.kind === 'sysctl') await ops.create(ctx, s.recorded).then(() => undefined);
      else if (ops.update) await ops.update(ctx, s.recorded, s.entry);
      else {
        await ops.destroy(ctx, s.entry);
        await ops.create(ctx, s.recorded);
      }
      const i = state.entries.findIndex((e) => e.id === s.id);
      if (i >= 0) state.entries[i] = s.recorded;
    } else {
      // it was there before apply but not ours (e.g. a link we only enslaved): nothing to record
      const i = state.entries.findIndex((e) => e.id === s.id);
      if (i >= 0) state.entries.splice(i, 1);
    }
    save();
  };
}

async function execute(ctx: Ctx, state: StateFile, steps: PlannedStep[]): Promise<Report> {
  const t0 = performance.now();
  const done: Array<{ step: PlannedStep; undo: () => Promise<void> }> = [];
  const report: Report = { steps: [], changed: steps.length > 0, ms: 0 };
  for (const [i, s] of steps.entries()) {
    const step: Step = { id: s.id, action: s.action, description: s.description };
    emit(ctx.options, { type: 'step-start', step, index: i, total: steps.length });
    const ts = performance.now();
    try {
      await ctx.options.beforeStep?.(step, i);
      const undo = await runStep(ctx, state, s);
      done.push({ step: s, undo });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      emit(ctx.options, { type: 'step-failed', step, index: i, total: steps.length, error });
      const undone: Step[] = [];
      const undoErrors: Array<{ step: Step; error: unknown }> = [];
      for (const u of [...done].reverse()) {
        const us: Step = { id: u.step.id, action: u.step.action, description: u.step.description };
        emit(ctx.options, { type: 'undo-start', step: us });
        try {
          await u.undo();
          undone.push(us);
          emit(ctx.options, { type: 'undo-done', step: us });
        } catch (uerr) {
          undoErrors.push({ step: us, error: uerr });
          emit(ctx.options, { type: 'undo-failed', step: us, error: uerr instanceof Error ? uerr : new Error(String(uerr)) });
        }
      }
      throw new HostApplyError(step, err, undone, undoErrors);
    }
    const ms = performance.now() - ts;
    report.steps.push({ ...step, ms: Math.round(ms) });
    emit(ctx.options, { type: 'step-done', step, index: i, total: steps.length, ms });
  }
  report.ms = Math.round(performance.now() - t0);
  return report;
}

/**
 * Makes the host as `host` says: carries out {@link plan}'s steps in order, with progress
 * (`options.onProgress`). On a failure the steps already done are undone in reverse and a
 * {@link HostApplyError} names the failing step. Re-applying an unchanged host does nothing.
 * @throws {HostPreconditionError} before anything is changed. {@link HostApplyError}.
 */
export async function apply(host: ResolvedHost, options: HostOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    await preconditions(ctx);
    const unlock = lock(ctx.dir);
    try {
      const state = readState(ctx.dir, host.name);
      const steps = await planSteps(ctx, state);
      return await execute(ctx, state, steps);
    } finally {
      unlock();
    }
  } finally {
    ctx.h.close();
  }
}

/**
 * Removes exactly what apply created, newest first: VMs stopped through the shutdown ladder, the
 * proxy and dnsmasq stopped, the firewall owner's rules removed, proxy neighbours, routes,
 * addresses and links deleted, and the sysctls apply changed put back to their old values. Things
 * that existed before apply are left alone. Idempotent.
 * @throws {HostApplyError} when a removal fails (the rest is still attempted first; the state
 * file keeps what could not be removed).
 */
export async function down(host: ResolvedHost, options: HostOptions = {}): Promise<Report> {
  const ctx = await openCtx(host, options);
  try {
    const unlock = lock(ctx.dir);
    try {
      const state = readState(ctx.dir, host.name);
      const t0 = performance.now();
      const entries = [...state.entries].reverse();
      const report: Report = { steps: [], changed: entries.length > 0, ms: 0 };
      const failures: Array<{ step: Step; error: unknown }> = [];
      for (const [i, e] of entries.entries()) {
        const action: StepAction = e.kind === 'vm' || e.kind === 'dnsmasq' || e.kind === 'proxy6' ? 'stop' : e.kind === 'sysctl' ? 'set' : 'delete';
        const step: Step = { id: e.id, action, description: e.kind === 'sysctl' ? `set sysctl ${String(e.data.key)} back to ${String(e.previous)}` : `${verb(action)} ${e.id.replace(':', ' ')}` };
        emit(options, { type: 'step-start', step, index: i, total: entries.length });
        const ts = performance.now();
        try {
          await kinds[e.kind].destroy(ctx, e);
          state.entries.splice(state.entries.indexOf(e), 1);
          writeState(ctx.dir, state);
          const ms = performance.now() - ts;
          report.steps.push({ ...step, ms: Math.round(ms) });
          emit(options, { type: 'step-done', step, index: i, total: entries.length, ms });
        } catch (err) {
          failures.push({ step, error: err });
          emit(options, { type: 'step-failed', step, index: i, total: entries.length, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
      if (failures.length) throw new HostApplyError(failures[0]!.step, failures[0]!.error, [], failures.slice(1));
      // The runtime files apply made (dnsmasq's config, pid and lease files, the proxy's, the VMs'
      // run dirs) go too; the state directory itself when nothing else is in it.
      for (const f of ['state.json', 'dnsmasq', 'proxy6', 'vms']) rmSync(join(ctx.dir, f), { recursive: true, force: true });
      report.ms = Math.round(performance.now() - t0);
      return report;
    } finally {
      unlock();
      try {
        rmdirSync(ctx.dir);
      } catch {
        /* not empty (a failed down keeps its state), or gone */
      }
    }
  } finally {
    ctx.h.close();
  }
}

// ------------------------------------------------------------------------------------ status

/** The live state of the host: links, VMs, forwards, IPv6, dnsmasq and its leases. Changes nothing. */
export async function status(host: ResolvedHost, options: HostOptions = {}): Promise<HostStatus> {
  const ctx = await openCtx(host, options);
  try {
    const state = readState(ctx.dir, host.name);
    const linkInfo = async (name: string): Promise<{ name: string; exists: boolean; up: boolean; addresses: string[] }> => {
      const l = await ctx.h.links.find(name);
      if (!l) return { name, exists: false, up: false, addresses: [] };
      const addrs = await ctx.h.addresses.list({ link: name });
      return { name, exists: true, up: l.flags.up, addresses: addrs.filter((a) => !a.address.startsWith('fe80:')).map((a) => `${a.address}/${a.prefixLength}`) };
    };
    const out: HostStatus = {
      name: host.name,
      bridge: await linkInfo(host.bridge.name),
      uplink: await linkInfo(host.uplink),
      vms: [],
      forwards: [],
      leases: [],
      applied: state.entries.length > 0,
    };
    if (typeof options.netns === 'string') out.netns = options.netns;
    for (const vm of host.vms) {
      const st = await vmState(join(ctx.dir, 'vms', vm.name));
      const row: HostStatus['vms'][number] = { name: vm.name, running: st.running, mac: vm.mac, ipv4: vm.ipv4, tap: vm.tap };
      if (st.status !== undefined) row.qmpStatus = st.status;
      if (st.qmpBusy) row.qmpBusy = true;
      if (st.pid !== undefined) row.pid = st.pid;
      if (vm.ipv6 !== undefined) row.ipv6 = vm.ipv6;
      out.vms.push(row);
      for (const f of vm.forwards) out.forwards.push({ vm: vm.name, protocol: f.protocol, port: f.port, to: vm.ipv4, toPort: f.toPort });
    }
    if (host.ipv6) {
      const neigh = (await ctx.h.neighbors.list({ family: 6, proxy: true })).map((n) => `${n.to} dev ${n.dev ?? '?'}`);
      const bridgeUp = out.bridge.exists;
      const routes = bridgeUp ? (await ctx.h.routes.list({ family: 6, dev: host.bridge.name })).filter((r) => r.dstLength === 128).map((r) => `${r.to} dev ${r.dev ?? '?'}`) : [];
      out.ipv6 = { mode: host.ipv6.mode, prefix: host.ipv6.prefix.network, proxyNeighbors: neigh, routes };
      if (host.ipv6.mode === 'proxy') {
        const ps = proxyServiceStatus(join(ctx.dir, 'proxy6'));
        out.ipv6.proxy = ps.pid !== undefined ? { running: ps.running, pid: ps.pid } : { running: ps.running };
      }
    }
    if (host.dhcp) {
      const dir = join(ctx.dir, 'dnsmasq');
      const ds = dnsmasqStatus(dir);
      out.dnsmasq = ds.pid !== undefined ? { running: ds.running, pid: ds.pid } : { running: ds.running };
      try {
        out.leases = readLeases(dir);
      } catch {
        out.leases = [];
      }
    }
    return out;
  } finally {
    ctx.h.close();
  }
}

// ------------------------------------------------------------------------------- single VMs

async function oneVm(host: ResolvedHost, name: string, options: HostOptions): Promise<{ ctx: Ctx; entry: Entry }> {
  const vm = findVm(host, name);
  const ctx = await openCtx(host, options);
  return { ctx, entry: { id: `vm:${vm.name}`, kind: 'vm', data: { name: vm.name, options: vmOptions(ctx, vm) } } };
}

/** Starts one VM of an applied host (its TAP must exist: apply first). No-op when it runs. */
export async function startVm(host: ResolvedHost, name: string, options: HostOptions = {}): Promise<void> {
  const { ctx, entry } = await oneVm(host, name, options);
  try {
    const vm = findVm(host, name);
    if (!(await ctx.h.links.find(vm.tap))) throw new HostPreconditionError('name', name, `TAP ${vm.tap} does not exist: apply the host first`);
    if ((await kinds.vm.inspect(ctx, entry, entry)) === 'ok') return;
    await kinds.vm.create(ctx, entry);
  } finally {
    ctx.h.close();
  }
}

/** Stops one VM through the shutdown ladder; reports the rung that ended it. */
export async function stopVm(host: ResolvedHost, name: string, options: HostOptions & { timeoutMs?: number } = {}): Promise<{ step: string; ms: number }> {
  findVm(host, name);
  let vm: Vm;
  try {
    vm = await Vm.attach(vmRunDir(host, name, options));
  } catch {
    return { step: 'not-running', ms: 0 };
  }
  const r = await vm.stop(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  return { step: r.step, ms: Math.round(r.durationMs) };
}

/** A live external snapshot of a running VM's first disk (`blockdev-snapshot-sync`). */
export async function snapshotVm(host: ResolvedHost, name: string, options: HostOptions & { overlay?: string } = {}): Promise<{ frozen: string; overlay: string }> {
  const v = findVm(host, name);
  if (v.disks.length === 0) throw new ValidationError('name', name, 'the VM has no disk to snapshot');
  const vm = await Vm.attach(vmRunDir(host, name, options));
  try {
    const overlay = options.overlay ?? `${v.disks[0]!.file}.${new Date().toISOString().replace(/[:.]/g, '-')}.qcow2`;
    return await vm.snapshotDisk('drive0', overlay);
  } finally {
    await vm.detach().catch(() => undefined);
  }
}

/**
 * The entries `host` wants, in apply order, as `{ id, kind, describe }` (for tests and tools; pure).
 * @param dir the state directory (VM run dirs and dnsmasq's directory are under it).
 */
export function wantedEntries(host: ResolvedHost, dir: string): Array<{ id: string; kind: string; describe: string; data: Record<string, unknown> }> {
  return wanted({ host, options: {}, dir, h: undefined as unknown as Rtnl }).map(({ id, kind, describe, data }) => ({ id, kind, describe, data }));
}
