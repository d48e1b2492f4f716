// Benchmark of @vmhost/net's conntrack module against conntrack(8): N UDP entries made with
// IPCTNL_MSG_CT_NEW in a fresh namespace (`vmhb-ct-*`, removed afterwards); then the whole table
// listed, a filtered list (the kernel's CTA_FILTER vs the whole dump filtered here), and
// deleteMatching of one destination port's entries vs `conntrack -D`.
//
//   npm run bench -- bench/net-conntrack.ts [entries=10000] [rounds=3]
//
// Prints figures; asserts nothing about speed.
import { performance } from 'node:perf_hooks';
import { codec, netns, Netfilter, NetlinkSocket } from '@vmhost/net';
import { benchNamespace } from './helpers.js';

const N = Number(process.argv[2] ?? 10000);
const ROUNDS = Number(process.argv[3] ?? 3);
const PORTS = 100; // entries per destination port: N / PORTS
const NF = codec.nfConstants;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Makes N entries 10.0.x.y:40000 -> 203.0.113.1:(5000 + i % PORTS), unreplied, 600 s. */
async function fill(ns: string): Promise<void> {
  const sock = NetlinkSocket.open({ netns: ns, protocol: NF.NETLINK_NETFILTER });
  try {
    const jobs: Array<Promise<unknown>> = [];
    for (let i = 0; i < N; i++) {
      const src = `10.0.${(i >> 8) & 255}.${i & 255}`;
      const dport = 5000 + (i % PORTS);
      const payload = codec.encodeConntrackMessage({
        header: { family: 2 },
        attrs: {
          tupleOrig: { ip: { v4Src: src, v4Dst: '203.0.113.1' }, proto: { num: 17, srcPort: 40000, dstPort: dport } },
          tupleReply: { ip: { v4Src: '203.0.113.1', v4Dst: src }, proto: { num: 17, srcPort: dport, dstPort: 40000 } },
          timeout: 600,
          status: NF.IPS_CONFIRMED,
        },
      });
      jobs.push(sock.request(NF.nfnlMsgType(NF.NFNL_SUBSYS_CTNETLINK, NF.IPCTNL_MSG_CT_NEW), 0x600, payload));
    }
    await Promise.all(jobs);
  } finally {
    sock.close();
  }
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

const space = await benchNamespace('ct');
try {
  const ns = space.name;
  // conntrack is on in a namespace once a rule needs it
  await netns.run(ns, 'iptables', ['-A', 'OUTPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP']);
  const nf = await Netfilter.open({ netns: ns });
  const rows: Record<string, number[]> = {};
  const add = (k: string, v: number): void => void (rows[k] ??= []).push(v);
  for (let r = 0; r < ROUNDS; r++) {
    const [tFill] = await time(() => fill(ns));
    add(`create ${N} entries (CT_NEW, pipelined) ms`, tFill);
    const [tList, all] = await time(() => nf.conntrack.list());
    if (all.length !== N) throw new Error(`listed ${all.length} of ${N}`);
    add(`list all ${N}: ours ms`, tList);
    const [tTool] = await time(() => netns.run(ns, 'conntrack', ['-L', '-o', 'xml']));
    add(`list all ${N}: conntrack -L -o xml ms`, tTool);
    const filter = { protocol: 'udp', origDst: '203.0.113.1', origDstPort: 5007 } as const;
    const [tKernel, some] = await time(() => nf.conntrack.list(filter));
    add(`list ${some.length} of ${N} by port: kernel CTA_FILTER ms`, tKernel);
    const [tHere] = await time(async () => (await nf.conntrack.list()).filter((e) => e.orig.dstPort === 5007));
    add(`list ${some.length} of ${N} by port: whole dump filtered here ms`, tHere);
    const [tDel, res] = await time(() => nf.conntrack.deleteMatching(filter));
    add(`deleteMatching ${res.deleted.length} of ${N}: ours ms`, tDel);
    const [tToolDel] = await time(() => netns.run(ns, 'conntrack', ['-D', '-p', 'udp', '--orig-dst', '203.0.113.1', '--dport', '5008']));
    add(`delete ${N / PORTS} of ${N}: conntrack -D ms`, tToolDel);
    await netns.run(ns, 'conntrack', ['-F']);
  }
  nf.close();
  for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(58)} ${median(v).toFixed(1).padStart(8)}   (${v.map((x) => x.toFixed(1)).join(', ')})`);
} finally {
  await space.close();
}
