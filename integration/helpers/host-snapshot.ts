// Everything a vmhost apply may touch in a namespace, read with the independent tools (`ip -j`,
// iptables-save, ip6tables-save, ebtables-save, /proc/sys, the namespace's processes): the oracle of the host
// tests and of the fault suite.
import { readFileSync } from 'node:fs';
import { netns } from '@vmhost/net';
import { ipJson, sh } from './ns.js';

/** A namespace as the tools see it; equal snapshots mean an equal host. */
export interface HostSnapshot {
  /** `name flags master mac alias`, sorted. */
  links: string[];
  addrs: string[];
  r4: string[];
  r6: string[];
  proxy: string[];
  ipv4: string;
  ipv6: string;
  /** ebtables-save (the VM ports' anti-spoofing chains). */
  bridge: string;
  sysctls: Record<string, string>;
  /** The processes in the namespace (pids; see {@link processNames}). */
  pids: number[];
}

/** The sysctls vmhost may set, relative to /proc/sys/net, for the uplink `uplink`. */
export function hostSysctls(uplink = 'eth0'): string[] {
  return ['ipv4/ip_forward', 'ipv6/conf/all/forwarding', `ipv6/conf/${uplink}/proxy_ndp`, `ipv6/conf/${uplink}/accept_ra`, 'bridge/bridge-nf-call-ip6tables'];
}

/** Reads the snapshot of namespace `ns` (see {@link HostSnapshot}); `macs: false` leaves out the links' MACs (random for veth peers). */
export async function hostSnapshot(ns: string, options: { uplink?: string; macs?: boolean } = {}): Promise<HostSnapshot> {
  const macs = options.macs !== false;
  const routes = (f: '-4' | '-6'): Promise<string[]> =>
    ipJson<Array<{ dst: string; dev?: string; gateway?: string; protocol?: string }>>(ns, [f, 'route', 'show', 'table', 'all']).then((rs) => rs.map((r) => `${r.dst} ${r.dev ?? ''} ${r.gateway ?? ''} ${r.protocol ?? ''}`).sort());
  const strip = (s: string): string => s.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '[]')).join('\n');
  // the tools run side by side (nothing changes the namespace meanwhile); the processes are read
  // after them, when none of theirs runs in the namespace
  const [links, addrs, r4, r6, proxy, ipv4, ipv6, bridge] = await Promise.all([
    ipJson<Array<{ ifname: string; flags: string[]; master?: string; address?: string; ifalias?: string }>>(ns, ['link', 'show']).then((ls) =>
      ls.map((l) => `${l.ifname} ${l.flags.join(',')} ${l.master ?? '-'} ${macs ? (l.address ?? '') : ''} ${l.ifalias ?? ''}`.trimEnd()).sort(),
    ),
    ipJson<Array<{ ifname: string; addr_info: Array<{ local: string; prefixlen: number }> }>>(ns, ['addr', 'show']).then((ls) => ls.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort()),
    routes('-4'),
    routes('-6'),
    ipJson<Array<{ dst: string; dev: string }>>(ns, ['-6', 'neigh', 'show', 'proxy']).then((ns6) => ns6.map((n) => `${n.dst} ${n.dev}`).sort()),
    sh(ns, 'iptables-save', []).then(strip),
    sh(ns, 'ip6tables-save', []).then(strip),
    sh(ns, 'ebtables-nft-save', []).then(strip),
  ]);
  const pids = (await netns.pids(ns)).filter((p) => p !== process.pid);
  const sysctls = Object.fromEntries(hostSysctls(options.uplink).map((k) => [k, netns.readFileIn(ns, `/proc/sys/net/${k}`).trim()]));
  return { links, addrs, r4, r6, proxy, ipv4, ipv6, bridge, sysctls, pids };
}

/** The command names of `pids` (`dnsmasq`, `qemu-system-x86`, ...), sorted; gone ones left out. */
export function processNames(pids: number[]): string[] {
  const out: string[] = [];
  for (const p of pids) {
    try {
      out.push(readFileSync(`/proc/${p}/comm`, 'utf8').trim());
    } catch {
      /* gone */
    }
  }
  return out.sort();
}

/**
 * A snapshot with the processes as names instead of pids and without link-local addresses and
 * routes (they follow the MACs, random for veth peers and TAPs): what two applies of one host
 * share. Take the snapshot with `macs: false`.
 */
export function appliedView(s: HostSnapshot): Omit<HostSnapshot, 'pids'> & { processes: string[] } {
  const { pids, ...rest } = s;
  const global = (l: string): boolean => !/(^|\s)fe80:/.test(l);
  return { ...rest, addrs: rest.addrs.filter(global), r6: rest.r6.filter(global), processes: processNames(pids) };
}
