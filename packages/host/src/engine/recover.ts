/**
 * Rebuilding the record from the live system's owner marks (marks.ts), when the state file is
 * lost or cannot be read: `vmhost recover FILE`, and apply and down on a corrupt state file.
 *
 * Found and recorded: the links that carry this host's mark (`vmhost:<name>`); the addresses and
 * routes the host file wants on those links; addresses, routes and proxy neighbours with
 * vmhost's protocol mark on the host's links and uplink; the firewall owner's chains; dnsmasq
 * and the proxy when their processes run with the config of this state directory; every VM whose
 * QEMU runs with a QMP socket in this state directory. Processes are recorded without their
 * definitions, so the next apply restarts them once with the host file's.
 *
 * Sysctls are recovered from the namespace's shared record (shared.ts) when it counts this host
 * among their holders: it keeps the value each had before the first host set it. Otherwise their
 * old values are not known: a sysctl at vmhost's value is left as it is (recorded nowhere, so
 * down does not touch it) and a notice says so: putting back a guessed value could cut a host's
 * forwarding that something else had turned on. Marked addresses, routes and proxy neighbours on
 * the shared uplink that another host's state file records are that host's, not recovered here.
 * @module
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Link } from '@vmhost/net';
import { HostStateError } from '../errors.js';
import { dnsmasqStatus } from '../services/dnsmasq.js';
import { proxyServiceStatus } from '../services/proxy6.js';
import type { HostOptions, RecoverReport, ResolvedHost } from '../types.js';
import { desiredOptions, openCtx, type Ctx } from './context.js';
import { desiredState, firewallModel, vmDir } from './desired.js';
import type { Entry, EntryKind } from './entries.js';
import { ownerHasChains } from './kinds/firewall.js';
import { forRecord } from './kinds/index.js';
import { liveQemuPid } from './kinds/vm.js';
import { isMarkedProtocol } from './marks.js';
import { othersRecords } from './owners.js';
import { sharedSetting } from './kinds/sysctl.js';
import { VM_NAME, type LinkRecord, type StateRecord } from './records.js';
import { checkStateDir, lock } from './state-dir.js';
import { isCorrupt, moveAside, readState, stateFile, writeState } from './state.js';

/** The order records are kept in (the order apply makes things; down goes in reverse). */
const ORDER: readonly EntryKind[] = ['sysctl', 'link', 'address', 'proxyNeighbor', 'route', 'firewall', 'dnsmasq', 'vm', 'proxy6'];

/** The link data of a marked live link not in the host file (for an undo of its removal). */
function liveLinkData(ctx: Ctx, l: Link, byIndex: Map<number, Link>): LinkRecord['data'] | undefined {
  const master = l.master ?? ctx.host.bridge.name;
  if (l.kind === 'bridge') return { name: l.name, kind: 'bridge', mac: l.mac, stp: l.bridge?.stp ?? false };
  if (l.kind === 'tun') return { name: l.name, kind: 'tap', master };
  if (l.kind === 'veth') {
    const peer = l.veth?.peerIndex != null ? byIndex.get(l.veth.peerIndex) : undefined;
    if (!peer) return undefined;
    return { name: l.name, kind: 'veth', peer: peer.name, mac: l.mac, master, promisc: l.flags.promisc };
  }
  return undefined;
}

async function linkRecords(ctx: Ctx, want: Map<string, Entry>, notices: string[]): Promise<StateRecord[]> {
  const all = [...(await ctx.live.all('links')).values()].sort((a, b) => a.index - b.index);
  const byIndex = new Map(all.map((l) => [l.index, l]));
  const marked = all.filter((l) => l.alias === ctx.mark && l.name !== ctx.host.uplink);
  const peersOfWanted = new Set([...want.values()].flatMap((e) => (e.kind === 'link' && e.data.kind === 'veth' ? [e.data.peer] : [])));
  const taken = new Set<number>();
  const out: StateRecord[] = [];
  for (const l of marked) {
    if (taken.has(l.index) || peersOfWanted.has(l.name)) continue;
    const w = want.get(`link:${l.name}`);
    const data = w?.kind === 'link' ? w.data : liveLinkData(ctx, l, byIndex);
    if (!data) {
      notices.push(`link ${l.name} carries this host's mark but is of a kind vmhost does not make (${l.kind ?? 'none'}): not recorded`);
      continue;
    }
    if (l.veth?.peerIndex != null) taken.add(l.veth.peerIndex);
    out.push({ kind: 'link', id: `link:${l.name}`, status: 'done', data, ifindex: l.index, temp: null });
  }
  return out;
}

/** Addresses, routes and proxy neighbours: wanted ones on own links, marked ones anywhere on the host's links and uplink (one dump of each). */
async function netRecords(ctx: Ctx, want: Map<string, Entry>, ownLinks: string[]): Promise<StateRecord[]> {
  const out: StateRecord[] = [];
  // marked objects on the shared uplink that another host of the namespace records are its own
  const others = othersRecords(ctx);
  const isMarked = (id: string, protocol: string | number | null): boolean => isMarkedProtocol(protocol) && !others.has(id);
  const own = new Set(ownLinks);
  const devs = new Set([...ownLinks, ctx.host.uplink]);
  const [addresses, routes, neighbors] = await Promise.all([ctx.live.all('addresses'), ctx.live.all('routes'), ctx.live.all('proxyNeighbors')]);
  const byDev = <T>(m: ReadonlyMap<string, T>): Map<string, T[]> => {
    const out = new Map<string, T[]>();
    for (const [key, v] of m) {
      const dev = key.slice(0, key.indexOf(' '));
      if (!devs.has(dev)) continue;
      const list = out.get(dev);
      if (list) list.push(v);
      else out.set(dev, [v]);
    }
    return out;
  };
  const [addressesOn, routesOn, neighborsOn] = [byDev(addresses), byDev(routes), byDev(neighbors)];
  // in the order of the devices, as one list per device gave them
  for (const dev of devs) {
    for (const a of addressesOn.get(dev) ?? []) {
      const cidr = `${a.address}/${a.prefixLength}`;
      const id = `address:${dev}:${cidr}`;
      if ((own.has(dev) && want.has(id)) || isMarked(id, a.protocol)) out.push({ kind: 'address', id, status: 'done', data: { dev, cidr } });
    }
    for (const r of routesOn.get(dev) ?? []) {
      const id = `route:${r.to}`;
      if ((own.has(dev) && want.has(id)) || isMarked(id, r.protocol)) out.push({ kind: 'route', id, status: 'done', data: { to: r.to, dev } });
    }
    for (const n of neighborsOn.get(dev) ?? []) {
      const id = `proxyNeighbor:${dev}:${n.to}`;
      if (isMarked(id, n.protocol)) out.push({ kind: 'proxyNeighbor', id, status: 'done', data: { to: n.to, dev } });
    }
  }
  return out;
}

function vmNames(dir: string): string[] {
  try {
    return readdirSync(join(dir, 'vms')).filter((n) => VM_NAME.test(n));
  } catch {
    return [];
  }
}

/**
 * The records the live system's owner marks give for the host of `ctx` (see the module), with the
 * notices for what cannot be recovered.
 */
export async function rebuild(ctx: Ctx): Promise<{ entries: StateRecord[]; notices: string[] }> {
  const notices: string[] = [];
  const desired = desiredState(ctx.host, desiredOptions(ctx));
  const want = new Map(desired.map((d) => [d.entry.id, d.entry]));
  const entries: StateRecord[] = [];
  for (const d of desired) {
    if (d.entry.kind !== 'sysctl') continue;
    const { key, value } = d.entry.data;
    const held = sharedSetting(ctx, key);
    if (held?.holders.includes(ctx.dir)) {
      // the namespace's shared record knows this host holds it, and the original
      entries.push({ kind: 'sysctl', id: d.entry.id, status: 'done', data: { key, value }, previous: held.original });
      continue;
    }
    if ((await ctx.h.sysctl.get(key)) === value) notices.push(`sysctl ${key} is ${value}, the value vmhost sets; the namespace's shared record does not count this host among its holders, so its value before vmhost is not known: it is left as it is (down does not touch it)`);
  }
  const links = await linkRecords(ctx, want, notices);
  entries.push(...links);
  const ownLinks = [...(await ctx.live.all('links')).values()].filter((l) => l.alias === ctx.mark && l.name !== ctx.host.uplink).map((l) => l.name);
  entries.push(...(await netRecords(ctx, want, ownLinks)));
  if (await ownerHasChains(ctx, ctx.host.name)) entries.push({ kind: 'firewall', id: 'firewall', status: 'done', data: { model: firewallModel(ctx.host) } });
  if (dnsmasqStatus(join(ctx.dir, 'dnsmasq')).running) entries.push({ kind: 'dnsmasq', id: 'dnsmasq', status: 'done', data: { options: null } });
  for (const name of vmNames(ctx.dir)) {
    if (liveQemuPid(vmDir(ctx.dir, name), ctx.live) !== undefined) entries.push({ kind: 'vm', id: `vm:${name}`, status: 'done', data: { name, fingerprint: null } });
  }
  if (proxyServiceStatus(join(ctx.dir, 'proxy6')).running) entries.push({ kind: 'proxy6', id: 'proxy6', status: 'done', data: { options: null } });
  const position = new Map(desired.map((d, i) => [d.entry.id, i + 1]));
  const rank = (r: StateRecord): number => ORDER.indexOf(r.kind) * 10_000 + (position.get(r.id) ?? 0);
  const seen = new Set<string>();
  const unique = entries.filter((r) => !seen.has(r.id) && (seen.add(r.id), true));
  return { entries: unique.sort((a, b) => rank(a) - rank(b)), notices };
}

/**
 * `vmhost recover`: rebuilds the state file of `host` from the live system's owner marks (see
 * the module), when there is none or it cannot be read (corrupt, or of another version: it is
 * moved aside first, `state.json.corrupt-<time>`). A readable one is left alone unless `force`,
 * since its record is better than a rebuilt one (it knows the sysctls' old values). Then `down`
 * removes everything that was found.
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` for an unsafe state directory. {@link HostBusyError}.
 */
export async function recover(host: ResolvedHost, options: HostOptions & { force?: boolean } = {}): Promise<RecoverReport> {
  const ctx = await openCtx(host, options);
  try {
    ctx.dir = checkStateDir(ctx.dir, true) ?? ctx.dir;
    const unlock = lock(ctx.dir);
    try {
      const file = stateFile(ctx.dir);
      const present = existsNoFollow(file);
      let readable = false;
      let entries = 0;
      if (present) {
        try {
          entries = readState(ctx.dir, host.name).entries.length;
          readable = true;
        } catch (err) {
          if (!(isCorrupt(err) || (err instanceof HostStateError && err.code === 'EHOST_STATE_VERSION'))) throw err;
        }
      }
      if (readable && !options.force) return { file, changed: false, records: [], notices: [`${file} is readable (${entries} entries): nothing to recover (--force rebuilds it anyway)`] };
      const report: RecoverReport = { file, changed: true, records: [], notices: [] };
      if (present) report.movedAside = moveAside(ctx.dir);
      const r = await rebuild(ctx);
      writeState(ctx.dir, { version: 2, name: host.name, entries: r.entries, updatedAt: '' });
      report.records = r.entries.map((e) => ({ id: e.id, description: forRecord(e).removalText() }));
      report.notices = r.notices;
      return report;
    } finally {
      unlock();
    }
  } finally {
    ctx.h.close();
  }
}

function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
