// A counter of the frames of interest (ARP, neighbour and router advertisements, DHCP server
// replies, UDP) on interfaces of a namespace, both directions: sniff.py run inside the namespace.
// The oracle of what a guest sent into its TAP and what reached another guest's TAP.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { netns } from '@vmhost/net';

const SNIFF = join(import.meta.dirname, 'sniff.py');

/** Counts by `IFACE DIR KIND DETAIL` (see sniff.py), and a filter of them. */
export class Sniffed {
  constructor(readonly counts: Readonly<Record<string, number>>) {}
  /** The keys (with counts) matching `re`. */
  matching(re: RegExp): Record<string, number> {
    return Object.fromEntries(Object.entries(this.counts).filter(([k]) => re.test(k)));
  }
  /** The total count of the keys matching `re`. */
  total(re: RegExp): number {
    return Object.values(this.matching(re)).reduce((a, b) => a + b, 0);
  }
}

/** Starts counting on `ifaces` inside `ns`; resolves once every socket is bound. `stop()` resolves to the counts. */
export async function sniff(ns: string, ifaces: readonly string[]): Promise<{ stop(): Promise<Sniffed> }> {
  const child = netns.spawn(ns, '/usr/bin/python3', [SNIFF, ...ifaces], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done || first.value !== 'ready') {
    child.kill('SIGKILL');
    throw new Error(`sniff ${ifaces.join(' ')}: ${first.done ? 'ended' : first.value}`);
  }
  return {
    async stop() {
      child.stdin!.end();
      const last = await lines.next();
      if (last.done) throw new Error(`sniff ${ifaces.join(' ')}: ended without counts`);
      return new Sniffed(JSON.parse(last.value) as Record<string, number>);
    },
  };
}
