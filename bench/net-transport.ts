// Benchmark of the netlink transport: veth pairs created per second with raw RTM_NEWLINK requests
// through NetlinkSocket (corked, N in flight) vs `ip -batch` of the same, each in a fresh `vmhb-`
// namespace that is removed afterwards; plus a dump of all links.
//
//   npm run bench -- bench/net-transport.ts [pairs=2000] [rounds=3]
//
// Prints figures; asserts nothing about speed. Messages are built by hand (no codec) so that
// only the transport is measured.
import { performance } from 'node:perf_hooks';
import { netns, netlink, NetlinkSocket } from '@vmhost/net';
import { vethPayload } from '../test/helpers/raw-netlink.js';
import { benchNamespace } from './helpers.js';

const PAIRS = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 3);
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const { NLM_F_CREATE, NLM_F_EXCL, NLM_F_DUMP } = netlink;

async function withNs<T>(tag: string, fn: (ns: string) => Promise<T>): Promise<T> {
  const space = await benchNamespace(tag);
  try {
    return await fn(space.name);
  } finally {
    await space.close();
  }
}

/**
 * Deleting a namespace with thousands of links returns at once; the kernel then tears the links
 * down in a work queue that holds the RTNL lock in long stretches, which would slow down the next
 * run. Wait until an RTNL-taking request (RTM_SETLINK on lo, no change) answers fast 5 times in a row.
 */
async function settle(): Promise<number> {
  const t0 = performance.now();
  return withNs('settle', async (ns) => {
    const sock = NetlinkSocket.open({ netns: ns });
    const lo = Buffer.alloc(16);
    lo.writeInt32LE(1, 4);
    let fast = 0;
    while (fast < 5 && performance.now() - t0 < 60_000) {
      const t = performance.now();
      await sock.request(19, 0, lo);
      fast = performance.now() - t < 1 ? fast + 1 : 0;
      await new Promise((r) => setTimeout(r, 20));
    }
    sock.close();
    return performance.now() - t0;
  });
}

async function countLinks(ns: string): Promise<number> {
  const r = await netns.run(ns, 'ip', ['-o', 'link', 'show']);
  return r.stdout.trim().split('\n').length;
}

async function ours(maxInFlight: number): Promise<{ rate: number; ms: number; datagrams: number; dumpMs: number }> {
  return withNs(`tx${maxInFlight}`, async (ns) => {
    const sock = NetlinkSocket.open({ netns: ns, maxInFlight });
    const payloads = Array.from({ length: PAIRS }, (_, i) => vethPayload(`a${i}`, `b${i}`));
    const t0 = performance.now();
    await Promise.all(payloads.map((p) => sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, p)));
    const ms = performance.now() - t0;
    const d0 = performance.now();
    const links = await sock.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16));
    const dumpMs = performance.now() - d0;
    const datagrams = sock.stats.datagramsSent - 1;
    sock.close();
    if (links.length !== 2 * PAIRS + 1) throw new Error(`dump saw ${links.length} links, expected ${2 * PAIRS + 1}`);
    const n = await countLinks(ns);
    if (n !== 2 * PAIRS + 1) throw new Error(`ip sees ${n} links, expected ${2 * PAIRS + 1}`);
    return { rate: (PAIRS / ms) * 1000, ms, datagrams, dumpMs };
  });
}

async function ipBatch(): Promise<{ rate: number; ms: number; dumpMs: number }> {
  return withNs('ip', async (ns) => {
    const input = Array.from({ length: PAIRS }, (_, i) => `link add a${i} type veth peer name b${i}`).join('\n') + '\n';
    const t0 = performance.now();
    const r = await netns.run(ns, 'ip', ['-batch', '-'], { input });
    const ms = performance.now() - t0;
    if (r.code !== 0) throw new Error(`ip -batch failed: ${r.stderr}`);
    const d0 = performance.now();
    const dump = await netns.run(ns, 'ip', ['-j', 'link', 'show']);
    const dumpMs = performance.now() - d0;
    const n = (JSON.parse(dump.stdout) as unknown[]).length;
    if (n !== 2 * PAIRS + 1) throw new Error(`ip sees ${n} links, expected ${2 * PAIRS + 1}`);
    return { rate: (PAIRS / ms) * 1000, ms, dumpMs };
  });
}

const fmt = (n: number): string => n.toFixed(0).padStart(6);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  console.log(`net-transport bench: ${PAIRS} veth pairs per run, ${ROUNDS} rounds, fresh vmhb- namespace each run`);
  const results: Record<string, number[]> = {};
  const add = (k: string, v: number): void => void (results[k] ??= []).push(v);
  let settleMs = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order from round to round so neither side always runs first.
    const order: Array<'ip' | number> = round % 2 ? ['ip', 1, 16, 256] : [256, 16, 1, 'ip'];
    for (const which of order) {
      settleMs += await settle();
      if (which === 'ip') {
        const ip = await ipBatch();
        add('ip -batch', ip.rate);
        add('ip -j link show (ms)', ip.dumpMs);
        console.log(`round ${round}: ip -batch          ${fmt(ip.rate)} pairs/s (${ip.ms.toFixed(0)} ms)`);
        continue;
      }
      const inflight = which;
      const r = await ours(inflight);
      add(`NetlinkSocket maxInFlight=${inflight}`, r.rate);
      if (inflight === 256) add(`NetlinkSocket dump (ms)`, r.dumpMs);
      console.log(
        `round ${round}: NetlinkSocket x${String(inflight).padEnd(4)}${fmt(r.rate)} pairs/s (${r.ms.toFixed(0)} ms, ${r.datagrams} datagrams; dump of ${2 * PAIRS + 1} links ${r.dumpMs.toFixed(1)} ms)`,
      );
    }
  }
  console.log(`(waited ${(settleMs / 1000).toFixed(1)} s in total for the kernel to finish tearing down deleted namespaces)`);
  console.log('\nmedians:');
  for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(34)} ${v.length > 0 ? median(v).toFixed(k.includes('ms') ? 1 : 0) : '-'}`);
  const ratio = median(results['NetlinkSocket maxInFlight=256']!) / median(results['ip -batch']!);
  console.log(`  ratio NetlinkSocket x256 / ip -batch: ${ratio.toFixed(2)}`);
} finally {
  // every namespace is removed by withNs (and by the labs' exit hook after a crash or a signal)
}
