/**
 * The flows of a port forward that changed (issue 15 §2): conntrack keeps a DNAT decision for the
 * life of a flow, so after a forward's target changed (or the forward went) an existing UDP flow
 * would keep going to the old VM, and a TCP connection would stay open to it. {@link staleMappings}
 * (pure) finds the public ports whose mapping the new model changes or drops;
 * {@link clearStaleFlows} deletes exactly the conntrack entries of those old mappings, natively
 * (@vmhost/net's `Netfilter`): entries whose original destination is the forward's public port
 * (and address, when the forward has one) and whose reply source is the old target, i.e. the
 * connections the DNAT sent there. A forward whose mapping did not change keeps its flows.
 * @module
 */
import { Netfilter, type ConntrackEntry, type NetnsRef } from '@vmhost/net';
import type { FirewallModel } from '@vmhost/firewall';
import { normalizedModel } from '../desired.js';

/** One public port of an old forward whose mapping the new model changed or dropped. */
export interface StaleMapping {
  family: 4 | 6;
  protocol: 'tcp' | 'udp';
  /** The forward's public address (bare), or undefined for any local address. */
  destination: string | undefined;
  port: number;
  /** Where the DNAT sent it: the old target and its port. */
  to: string;
  toPort: number;
}

/** Each public port of `model`'s forwards, keyed by family, protocol, destination and port, with its target. */
function mappings(model: FirewallModel): Map<string, StaleMapping> {
  const out = new Map<string, StaleMapping>();
  for (const f of normalizedModel(model).portForwards) {
    const destination = f.destination?.replace(/\/\d+$/, '');
    for (let p = f.port[0]; p <= f.port[1]; p++) {
      const m: StaleMapping = { family: f.family, protocol: f.protocol, destination, port: p, to: f.to, toPort: f.toPort + (p - f.port[0]) };
      out.set(`${m.family} ${m.protocol} ${destination ?? '*'} ${p}`, m);
    }
  }
  return out;
}

/** The public ports of `before`'s forwards that `after` maps elsewhere or not at all. Pure. */
export function staleMappings(before: FirewallModel, after: FirewallModel): StaleMapping[] {
  const now = mappings(after);
  const out: StaleMapping[] = [];
  for (const [key, m] of mappings(before)) {
    const n = now.get(key);
    if (!n || n.to !== m.to || n.toPort !== m.toPort) out.push(m);
  }
  return out;
}

/** Whether conntrack entry `e` is a flow the DNAT of `m` made. */
function madeBy(e: ConntrackEntry, m: StaleMapping): boolean {
  return (
    e.orig.dstPort === m.port &&
    e.reply.src === m.to &&
    e.reply.srcPort === m.toPort &&
    e.orig.dst !== e.reply.src && // translated: not a connection to the VM's own address
    (m.destination === undefined || e.orig.dst === m.destination)
  );
}

/**
 * Deletes the conntrack entries of `stale` in the namespace `netns` (one filtered dump per old
 * target and protocol, then one delete per entry, all in flight). Entries that expired meanwhile
 * are not an error. Resolves to the number deleted.
 * @throws {NetlinkError} when the table cannot be read or an entry not deleted.
 */
export async function clearStaleFlows(stale: readonly StaleMapping[], netns: NetnsRef | undefined): Promise<number> {
  if (stale.length === 0) return 0;
  const groups = new Map<string, StaleMapping[]>();
  for (const m of stale) {
    const k = `${m.family} ${m.protocol} ${m.to} ${m.destination ?? '*'}`;
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  const nf = await Netfilter.open(netns !== undefined ? { netns } : {});
  try {
    let deleted = 0;
    for (const list of groups.values()) {
      const first = list[0]!;
      const entries = await nf.conntrack.list({
        family: first.family,
        protocol: first.protocol,
        replySrc: first.to,
        ...(first.destination !== undefined ? { origDst: first.destination } : {}),
      });
      const doomed = entries.filter((e) => list.some((m) => madeBy(e, m)));
      const results = await Promise.allSettled(doomed.map((e) => nf.conntrack.delete(e)));
      for (const r of results) {
        if (r.status === 'fulfilled') deleted++;
        else if (!(r.reason instanceof Error && 'code' in r.reason && r.reason.code === 'ENOENT')) throw r.reason;
      }
    }
    return deleted;
  } finally {
    nf.close();
  }
}
