/**
 * The `vms` section: each VM's name (and TAP), MAC, addresses (IPv4 in the bridge subnet, IPv6 in
 * the prefix), machine, boot files, disks and forwards; names, MACs, addresses, disks and public
 * ports are each used once across the host. At most 1000 VMs (a bridge has 1023 ports), and in
 * proxy mode at most 1024 proxied ports.
 * @module
 */
import { ip, ValidationError } from '@vmhost/net';
import { validateGroup } from '@vmhost/firewall';
import { stableMac } from '@vmhost/kvm';
import { slaacAddress } from '../guests/ipv6.js';
import type { ResolvedForward, ResolvedVm } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { resolveVmCloudInit, type CloudInitDefaults } from './cloud-init.js';
import { resolveDisks, type DiskUses } from './disks.js';
import { newPortUses, resolveForward, type PortUses } from './forwards.js';
import { DEFAULTS, HOST, ifbName, MAX_PROXY_PORTS, tapName, VM, VM_NAME_MAX, vmGroup } from './schema.js';

const F = VM.keys;

/** What the VMs claimed so far, across the list. */
interface VmClaims {
  names: Map<string, string>;
  ipv4s: Map<string, string>;
  ipv6s: Map<string, string>;
  disks: DiskUses;
  ports: PortUses;
  /** Ports the IPv6 proxy listens on so far (proxy mode). */
  proxyPorts: number;
}

/**
 * Resolves `vms` (`v`, as written), each VM's `cloudInit` merged with the host-wide `cloudInit`;
 * `ok` is false when the list itself or a VM is not a mapping.
 */
export function resolveVms(ctx: SpecContext, v: unknown, cloudInit?: CloudInitDefaults | 'failed'): { vms: ResolvedVm[]; ok: boolean } {
  const max = HOST.keys.vms.maxItems;
  if (!absent(v) && !Array.isArray(v)) {
    ctx.c.add('vms', v, 'expected a list of VMs');
    return { vms: [], ok: false };
  }
  if (Array.isArray(v) && v.length > max) {
    ctx.c.add('vms', v, `at most ${max} VMs (${v.length}): a Linux bridge has 1023 ports (one TAP each, and the veth)`);
    return { vms: [], ok: false };
  }
  let ok = true;
  const claims: VmClaims = { names: new Map(), ipv4s: new Map(), ipv6s: new Map(), disks: new Map(), ports: newPortUses(), proxyPorts: 0 };
  const vms: ResolvedVm[] = [];
  (Array.isArray(v) ? v : []).forEach((vmV: unknown, i) => {
    const vm = resolveVm(ctx, vmV, `vms[${i}]`, claims, cloudInit);
    if (vm === null) ok = false;
    else if (vm) vms.push(vm);
  });
  return { vms, ok };
}

/** One VM at `p`; null when it is not a mapping, undefined after another problem. */
function resolveVm(ctx: SpecContext, vmV: unknown, p: string, claims: VmClaims, cloudInitDefaults: CloudInitDefaults | 'failed' | undefined): ResolvedVm | null | undefined {
  const { c } = ctx;
  const v = c.obj(vmV, p, VM);
  if (!v) return null;
  const before = c.problems.length + c.dropped;

  const name = resolveName(ctx, at(v, 'name'), p, claims);

  const macV = at(v, 'mac');
  let mac: string | undefined;
  if (!absent(macV)) {
    mac = c.mac(macV, `${p}.mac`);
    ctx.claimMac(mac, `${p}.mac`);
  } else if (name !== undefined) {
    mac = stableMac(name, 0);
    ctx.claimMac(mac, `${p}.mac`, ' (the default for this name)');
  }

  const ipv4V = at(v, 'ipv4');
  let ipv4 = c.addr(ipv4V, `${p}.ipv4`, 4);
  if (ipv4 !== undefined && !ctx.inBridgeSubnet(ipv4, `${p}.ipv4`, ipv4V)) ipv4 = undefined;
  if (ipv4 !== undefined) claimAddress(ctx, claims.ipv4s, ipv4, `${p}.ipv4`, ipv4V, 'IPv4');
  const ipv6 = resolveVmIpv6(ctx, at(v, 'ipv6'), `${p}.ipv6`, claims, mac);

  const memoryMiB = c.int(at(v, 'memoryMiB'), `${p}.memoryMiB`, F.memoryMiB);
  const cpus = c.int(at(v, 'cpus'), `${p}.cpus`, F.cpus);
  const accel = c.oneOf(at(v, 'accel'), `${p}.accel`, F.accel);
  const machine = c.oneOf(at(v, 'machine'), `${p}.machine`, F.machine);
  const sandbox = c.oneOf(at(v, 'sandbox'), `${p}.sandbox`, F.sandbox);
  const autostart = c.bool(at(v, 'autostart'), `${p}.autostart`, F.autostart);
  const restart = c.oneOf(at(v, 'restart'), `${p}.restart`, F.restart);
  const isolation = c.bool(at(v, 'isolation'), `${p}.isolation`, F.isolation);
  const linkLocal = c.oneOf(at(v, 'linkLocal'), `${p}.linkLocal`, F.linkLocal);
  const bandwidth = resolveBandwidth(ctx, at(v, 'bandwidth'), `${p}.bandwidth`);
  const adopt = c.bool(at(v, 'adopt'), `${p}.adopt`, F.adopt);

  // boot
  const kernelV = at(v, 'kernel');
  const kernel = absent(kernelV) ? undefined : c.path(kernelV, `${p}.kernel`, ctx.base);
  const initrdV = at(v, 'initrd');
  const initrd = absent(initrdV) ? undefined : c.path(initrdV, `${p}.initrd`, ctx.base);
  const appendV = at(v, 'append');
  const append = absent(appendV) ? undefined : c.cmdline(appendV, `${p}.append`, F.append);
  if (absent(kernelV)) {
    if (machine === 'microvm') c.add(`${p}.machine`, machine, 'needs kernel (microvm has no firmware to boot a disk)');
    if (!absent(initrdV)) c.add(`${p}.initrd`, initrdV, 'needs kernel');
    if (!absent(appendV)) c.add(`${p}.append`, appendV, 'needs kernel');
  }
  const disks = resolveDisks(c, at(v, 'disk'), `${p}.disk`, ctx.base, claims.disks);
  if (absent(kernelV) && disks !== undefined && disks.length === 0) {
    c.add(p, name ?? vmV, 'a VM needs a kernel or at least one disk');
  }

  const forwards = resolveForwards(ctx, at(v, 'forwards'), p, claims, ipv6 !== undefined);
  if ((forwards.length > 0 || isolation) && name !== undefined && ctx.hostName !== undefined) checkGroup(ctx, name, p);
  if (bandwidth?.fromVm !== undefined && name !== undefined) ctx.claimIf(ifbName(ctx.hostName ?? DEFAULTS.name, name), `${p}.name`, 'ifb name (bandwidth.fromVm)');
  const { cloudInit } = resolveVmCloudInit(ctx, at(v, 'cloudInit'), `${p}.cloudInit`, name, cloudInitDefaults);

  if (c.problems.length + c.dropped > before) return undefined;
  // each of these is set when no problem was added
  if (name === undefined || mac === undefined || ipv4 === undefined || memoryMiB === undefined || cpus === undefined || accel === undefined || machine === undefined || sandbox === undefined || disks === undefined || autostart === undefined || restart === undefined || adopt === undefined) return undefined;
  if (isolation === undefined || linkLocal === undefined) return undefined;
  return {
    name,
    mac,
    ipv4,
    ...(ipv6 !== undefined ? { ipv6 } : {}),
    tap: tapName(ctx.hostName ?? DEFAULTS.name, name),
    memoryMiB,
    cpus,
    accel,
    machine,
    sandbox,
    ...(kernel !== undefined ? { kernel } : {}),
    ...(initrd !== undefined ? { initrd } : {}),
    ...(append !== undefined ? { append } : {}),
    disks,
    forwards,
    autostart,
    restart,
    adopt,
    ...(cloudInit !== undefined ? { cloudInit } : {}),
    isolation,
    linkLocal,
    ...(bandwidth !== undefined ? { bandwidth } : {}),
    ...(bandwidth?.fromVm !== undefined ? { ifb: ifbName(ctx.hostName ?? DEFAULTS.name, name) } : {}),
  };
}

/** `bandwidth`: a rate per direction (each optional); undefined when left out or empty. */
function resolveBandwidth(ctx: SpecContext, v: unknown, p: string): ResolvedVm['bandwidth'] {
  if (absent(v)) return undefined;
  const b = ctx.c.obj(v, p, F.bandwidth);
  if (!b) return undefined;
  const out: NonNullable<ResolvedVm['bandwidth']> = {};
  for (const dir of ['toVm', 'fromVm'] as const) {
    const bps = ctx.c.rate(at(b, dir), `${p}.${dir}`, F.bandwidth.keys[dir]);
    if (bps !== undefined) out[dir] = bps;
  }
  return out.toVm === undefined && out.fromVm === undefined ? undefined : out;
}

/**
 * The VM's forwards (at most 4096); in proxy mode, with an IPv6 address, its TCP ports count
 * towards the proxy's 1024 listeners.
 */
function resolveForwards(ctx: SpecContext, fwV: unknown, p: string, claims: VmClaims, hasIpv6: boolean): ResolvedForward[] {
  const { c } = ctx;
  const forwards: ResolvedForward[] = [];
  if (absent(fwV)) return forwards;
  if (!Array.isArray(fwV)) {
    c.add(`${p}.forwards`, fwV, 'expected a list of forwards');
    return forwards;
  }
  if (fwV.length > F.forwards.maxItems) {
    c.add(`${p}.forwards`, fwV, `at most ${F.forwards.maxItems} forwards per VM (${fwV.length})`);
    return forwards;
  }
  fwV.forEach((fV: unknown, j) => {
    const path = `${p}.forwards[${j}]`;
    const f = resolveForward(c, fV, path, claims.ports);
    if (!f) return;
    forwards.push(f);
    if (ctx.mode6 === 'proxy' && hasIpv6 && f.protocol === 'tcp') {
      const n = typeof f.port === 'number' ? 1 : f.port[1] - f.port[0] + 1;
      const before = claims.proxyPorts;
      claims.proxyPorts += n;
      if (claims.proxyPorts > MAX_PROXY_PORTS && before <= MAX_PROXY_PORTS) {
        c.add(`${path}.port`, f.port, `the IPv6 proxy would listen on ${claims.proxyPorts} ports with this forward; at most ${MAX_PROXY_PORTS} in proxy mode (one socket each, within its open-file budget)`);
      }
    }
  });
  return forwards;
}

/** With forwards or isolation, the VM's firewall group chains `VMHOST-<host>-<group>-D` (and `-S`, `-N`) must fit iptables' 28 characters. */
function checkGroup(ctx: SpecContext, name: string, p: string): void {
  try {
    validateGroup(vmGroup(name), ctx.hostName!, `${p}.name`);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    ctx.c.add(`${p}.name`, name, `with forwards or isolation, the firewall chain VMHOST-${ctx.hostName}-${vmGroup(name)}-D would be longer than 28 characters: the host's name and the VM's name may have 18 characters together (or set isolation: false on a VM without forwards)`);
  }
}

/** The VM's name: its TAP `<tag>-<name>` must fit in 15 bytes; names and TAPs are unique. */
function resolveName(ctx: SpecContext, nameV: unknown, p: string, claims: VmClaims): string | undefined {
  const { c } = ctx;
  let name = c.str(nameV, `${p}.name`);
  if (name !== undefined && name.length > VM_NAME_MAX && /^[a-z][a-z0-9-]*$/.test(name)) {
    name = c.add(`${p}.name`, nameV, `longer than ${VM_NAME_MAX} characters: the TAP <tag>-<name> must fit in 15 bytes`);
  } else if (name !== undefined) {
    name = c.name(nameV, `${p}.name`, F.name);
  }
  if (name === undefined) return undefined;
  const other = claims.names.get(name);
  if (other !== undefined) c.add(`${p}.name`, name, `VM name ${name} is already used by ${other}`);
  else claims.names.set(name, `${p}.name`);
  ctx.claimIf(tapName(ctx.hostName ?? DEFAULTS.name, name), `${p}.name`, 'TAP name');
  return name;
}

/**
 * The VM's own IPv6 address: inside the prefix, not its network address, not the bridge's. `auto`:
 * the EUI-64 address of `mac` in the prefix (a /64), as SLAAC forms it (docs/host-guest-ipv6.md).
 */
function resolveVmIpv6(ctx: SpecContext, ipv6V: unknown, path: string, claims: VmClaims, mac: string | undefined): string | undefined {
  const { c } = ctx;
  if (absent(ipv6V)) return undefined;
  const prefix6 = ctx.prefix6;
  let a: string | undefined;
  if (ipv6V === F.ipv6.word) {
    if (!ctx.hasIpv6) return c.add(path, ipv6V, 'a VM IPv6 address needs the ipv6 section (its prefix and mode)');
    if (!prefix6 || mac === undefined) return undefined; // reported there
    if (prefix6.prefixLength !== 64) return c.add(path, ipv6V, `auto needs ipv6.prefix to be a /64 (SLAAC's length), not ${prefix6.network}`);
    a = slaacAddress(prefix6.network, mac);
  } else {
    a = c.addr(ipv6V, path, 6);
  }
  if (a !== undefined && !ctx.hasIpv6) {
    a = c.add(path, ipv6V, 'a VM IPv6 address needs the ipv6 section (its prefix and mode)');
  } else if (a !== undefined && prefix6) {
    const pre = prefix6.network;
    if (!ip.contains(prefix6, a)) a = c.add(path, ipv6V, `not inside ipv6.prefix ${pre}`);
    else if (a === ip.networkAddress(prefix6) && prefix6.prefixLength < 128) a = c.add(path, ipv6V, `is the network (subnet-router anycast) address of ${pre}`);
    else if (ctx.bridge6 && a === ctx.bridge6.address) a = c.add(path, ipv6V, "is the bridge's own address (bridge.ipv6)");
  }
  if (a !== undefined) claimAddress(ctx, claims.ipv6s, a, path, ipv6V, 'IPv6');
  return a;
}

/** Claims a VM address for `path` (a problem when another VM has it). */
function claimAddress(ctx: SpecContext, seen: Map<string, string>, a: string, path: string, value: unknown, what: 'IPv4' | 'IPv6'): void {
  const other = seen.get(a);
  if (other !== undefined) ctx.c.add(path, value, `${what} address ${a} is already used by ${other}`);
  else seen.set(a, path);
}
