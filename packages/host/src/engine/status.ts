/**
 * {@link status}: the live state of a host (links, VMs, forwards, IPv6, dnsmasq and its leases)
 * and whether the state file says it is applied. Changes nothing.
 * @module
 */
import { join } from 'node:path';
import { readServiceStatus } from '../service/status-file.js';
import { dnsmasqStatus, readLeases } from '../services/dnsmasq.js';
import { proxyServiceStatus } from '../services/proxy6.js';
import type { HostOptions, HostStatus, ResolvedHost } from '../types.js';
import { desiredOptions, openCtx, type Ctx } from './context.js';
import { desiredState, vmDir } from './desired.js';
import { settledPool } from './kinds/kind.js';
import { findConflicts } from './owners.js';
import { HostStateError } from '../errors.js';
import { emptyShared, ownerNames, readShared, type SharedRecord } from './shared.js';
import { vmState } from './kinds/vm.js';
import { knownOf, readStateForView } from './run.js';

type LinkInfo = HostStatus['bridge'];

async function linkInfo(ctx: Ctx, name: string): Promise<LinkInfo> {
  const l = await ctx.live.link(name);
  if (!l) return { name, exists: false, up: false, addresses: [] };
  const addrs = [...(await ctx.live.all('addresses')).entries()].filter(([key]) => key.startsWith(`${name} `)).map(([, a]) => a);
  return { name, exists: true, up: l.flags.up, addresses: addrs.filter((a) => !a.address.startsWith('fe80:')).map((a) => `${a.address}/${a.prefixLength}`) };
}

/** The namespace's shared record; an empty one when it cannot be read (apply and down replace a corrupt one). */
function sharedOrEmpty(ctx: Ctx): SharedRecord {
  try {
    return readShared(ctx.netns);
  } catch (err) {
    if (err instanceof HostStateError) return emptyShared();
    throw err;
  }
}

/** A service's status as `status` shows it. */
const serviceRow = (s: { running: boolean; pid?: number }): { running: boolean; pid?: number } => (s.pid !== undefined ? { running: s.running, pid: s.pid } : { running: s.running });

/** The status file of `vmhost run` in `dir`, if there is a readable one (an unsafe one is not shown). */
function serviceView(dir: string): ReturnType<typeof readServiceStatus> {
  try {
    return readServiceStatus(dir);
  } catch {
    return undefined;
  }
}

/**
 * The live state of the host: links, VMs, forwards, IPv6, dnsmasq and its leases, the conflicts
 * that keep apply from running (each naming its owner), and the namespace-wide sysctls it holds
 * with other hosts, from one read of each table (live.ts; one scan of /proc for the VMs that have
 * no live pidfile). Changes nothing.
 */
export async function status(host: ResolvedHost, options: HostOptions = {}): Promise<HostStatus> {
  const ctx = await openCtx(host, options);
  try {
    const state = readStateForView(ctx, knownOf(desiredState(host, desiredOptions(ctx))));
    const out: HostStatus = {
      name: host.name,
      bridge: await linkInfo(ctx, host.bridge.name),
      uplink: await linkInfo(ctx, host.uplink),
      vms: [],
      forwards: [],
      leases: [],
      applied: state.entries.some((e) => e.status === 'done'),
    };
    if (typeof options.netns === 'string') out.netns = options.netns;
    const pending = state.entries.filter((e) => e.status === 'intended').map((e) => e.id);
    if (pending.length > 0) out.pending = pending;
    const { conflicts } = await findConflicts(ctx, state, desiredState(host, desiredOptions(ctx)));
    if (conflicts.length > 0) out.conflicts = conflicts;
    const shared = sharedOrEmpty(ctx);
    const held = Object.entries(shared.settings).filter(([, s]) => s.holders.includes(ctx.dir));
    if (held.length > 0) out.shared = held.map(([key, s]) => ({ key, value: s.value, original: s.original, heldWith: ownerNames(shared, s.holders, ctx.dir) }));
    // the VMs' QMP sockets asked side by side (one that another client holds waits up to 3 s)
    const states = await settledPool(host.vms, 16, (vm) => vmState(vmDir(ctx.dir, vm.name), ctx.live));
    for (const [i, vm] of host.vms.entries()) {
      const s = states[i]!;
      if (s.status === 'rejected') throw s.reason;
      const st = s.value;
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
      const routes = out.bridge.exists ? (await ctx.h.routes.list({ family: 6, dev: host.bridge.name })).filter((r) => r.dstLength === 128).map((r) => `${r.to} dev ${r.dev ?? '?'}`) : [];
      out.ipv6 = { mode: host.ipv6.mode, prefix: host.ipv6.prefix.network, proxyNeighbors: neigh, routes };
      if (host.ipv6.mode === 'proxy') out.ipv6.proxy = serviceRow(proxyServiceStatus(join(ctx.dir, 'proxy6')));
    }
    if (host.dhcp) {
      const dir = join(ctx.dir, 'dnsmasq');
      out.dnsmasq = serviceRow(dnsmasqStatus(dir));
      try {
        out.leases = readLeases(dir);
      } catch {
        out.leases = [];
      }
    }
    const sv = serviceView(ctx.dir);
    if (sv) out.service = { ...sv.status, running: sv.running };
    return out;
  } finally {
    ctx.h.close();
  }
}
