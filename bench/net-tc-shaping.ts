// Benchmark of shaping with @vmhost/net's traffic control: the rate a bulk TCP transfer achieves
// through a veth shaped by an htb class or a tbf qdisc, at 10 and 100 Mbit/s, against the
// configured rate (issue 15's goal: within ±10%), and unshaped for reference. Two namespaces made
// by the lab kit (`vmhb-shape-*`), removed afterwards.
//
//   npm run bench -- bench/net-tc-shaping.ts [seconds=4] [rounds=3]
//
// Prints figures; asserts nothing.
import { Lab } from '@vmhost/lab';
import type { Rtnl } from '@vmhost/net';
import { bulkTransfer } from '../test/helpers/bulk-tcp.js';

const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.argv[3] ?? 3);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130)); // the lab's exit hook cleans up

const lab = await Lab.create({
  prefix: 'vmhb-shape-',
  namespaces: { a: {}, b: {} },
  links: [{ a: { ns: 'a', name: 'eth0' }, b: { ns: 'b', name: 'eth0' }, addresses: { a: ['192.168.77.1/24'], b: ['192.168.77.2/24'] } }],
});
const median = (xs: number[]): number => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;

async function shape(h: Rtnl, kind: 'htb' | 'tbf' | 'none', mbit: number): Promise<void> {
  await h.qdiscs.delete({ dev: 'eth0' }).catch(() => undefined); // back to the default qdisc
  const rate = `${mbit}mbit`;
  if (kind === 'htb') {
    await h.qdiscs.add({ kind: 'htb', dev: 'eth0', handle: '1:', defaultClass: '1:10' });
    await h.classes.add({ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10', rate });
  } else if (kind === 'tbf') {
    // A bucket of ~4 ms at the rate (at least 16 KiB), 50 ms of queue.
    await h.qdiscs.add({ kind: 'tbf', dev: 'eth0', rate, burst: Math.max(16 * 1024, Math.round((mbit * 1e6) / 8 / 250)), latency: 0.05 });
  }
}

try {
  const h = await lab.rtnl('a');
  const rows: string[] = [];
  let port = 5001;
  for (const [kind, mbit] of [['none', 100], ['htb', 10], ['htb', 100], ['tbf', 10], ['tbf', 100]] as const) {
    await shape(h, kind, mbit);
    const bytes = Math.round(((kind === 'none' ? 1000 : mbit) * 1e6 * SECONDS) / 8);
    const got: number[] = [];
    for (let r = 0; r < ROUNDS; r++) got.push((await bulkTransfer(lab.ns('a'), lab.ns('b'), '192.168.77.2', port++, bytes)).mbit);
    const m = median(got);
    rows.push(kind === 'none'
      ? `unshaped                 ${m.toFixed(1).padStart(8)} Mbit/s (runs: ${got.map((x) => x.toFixed(1)).join(', ')})`
      : `${kind} ${String(mbit).padStart(4)} Mbit/s configured ${m.toFixed(2).padStart(8)} Mbit/s achieved, ${((m / mbit - 1) * 100).toFixed(1).padStart(5)}% (runs: ${got.map((x) => x.toFixed(2)).join(', ')})`);
    console.log(rows[rows.length - 1]);
  }
} finally {
  await lab.close();
}
