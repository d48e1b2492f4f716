// Benchmark (issue 2 §6): in a fresh `vmhb-` namespace, create and delete 2,000 veth pairs and
// 2,000 bridges with @vmhost/net and with `ip -batch`; dump 10,000 links with @vmhost/net and
// with `ip -j link show`. Prints figures and ratios (targets: creation >= 1.0x ip -batch,
// dump+parse <= 2x ip -j link show). Creation and deletion: medians of --rounds rounds (default
// 3), alternating which side goes first.
// Run: npm run bench -- bench/net-links.ts [--n 2000] [--dump 10000] [--rounds 3]
import { performance } from 'node:perf_hooks';
import { Rtnl, netns } from '@vmhost/net';
import { benchNamespace } from './helpers.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('n', 2000);
const DUMP = arg('dump', 10000);
const WINDOW = arg('window', 256);
const ROUNDS = arg('rounds', 3);

async function ipBatch(lines: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await netns.run(ns, 'ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`ip -batch failed: ${r.stderr.slice(0, 500)}`);
  return ms;
}

/** Runs `fn(i)` for i < n with at most `window` in flight. */
async function pool(n: number, window: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker));
  return performance.now() - t0;
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
const rows: Array<[string, string, string, string]> = [];

const space = await benchNamespace('links');
const ns = space.name;
let h: Rtnl | undefined;
try {
  h = await Rtnl.open({ netns: ns });
  const hh = h;
  // ROUNDS rounds per kind, alternating which side goes first (the kernel's deferred clean-up
  // after 2,000 deletes, and the namespace's history, otherwise always favour the same side);
  // the medians are compared.
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  for (const kind of ['veth', 'bridge'] as const) {
    const addLine = (i: number) => (kind === 'veth' ? `link add v${i} type veth peer name p${i}` : `link add b${i} type bridge`);
    const name = (i: number) => (kind === 'veth' ? `v${i}` : `b${i}`);
    const spec = (i: number) => (kind === 'veth' ? { kind: 'veth' as const, name: `v${i}`, peer: { name: `p${i}` } } : { kind: 'bridge' as const, name: `b${i}` });
    const t = { ipAdd: [] as number[], ipDel: [] as number[], ourAdd: [] as number[], ourDel: [] as number[], echoAdd: [] as number[] };
    const ip = async () => {
      t.ipAdd.push(await ipBatch(Array.from({ length: N }, (_, i) => addLine(i))));
      t.ipDel.push(await ipBatch(Array.from({ length: N }, (_, i) => `link del ${name(i)}`)));
    };
    const ours = async () => {
      // like for like with ip -batch: the RTM_NEWLINK alone, no link returned
      t.ourAdd.push(await pool(N, WINDOW, (i) => hh.links.add(spec(i), { result: false })));
      t.ourDel.push(await pool(N, WINDOW, (i) => hh.links.delete(name(i))));
      // the default: each add returns the new link (the kernel echoes it: NLM_F_ECHO)
      t.echoAdd.push(await pool(N, WINDOW, (i) => hh.links.add(spec(i))));
      await pool(N, WINDOW, (i) => hh.links.delete(name(i)));
    };
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        await ip();
        await ours();
      } else {
        await ours();
        await ip();
      }
    }
    const ipAdd = median(t.ipAdd);
    const ipDel = median(t.ipDel);
    const ourAdd = median(t.ourAdd);
    const ourDel = median(t.ourDel);
    const echoAdd = median(t.echoAdd);
    const each = (a: number[]) => a.map((ms) => rate(N, ms)).join(' ');
    console.error(`${kind} create/s per round: ours ${each(t.ourAdd)}; ip -batch ${each(t.ipAdd)}; ours returning links ${each(t.echoAdd)}`);
    rows.push([`create ${N} ${kind} (median of ${ROUNDS})`, `${rate(N, ourAdd)}/s`, `${rate(N, ipAdd)}/s`, `${(rate(N, ourAdd) / rate(N, ipAdd)).toFixed(2)}x (target >= 1.0)`]);
    rows.push([`  same, returning each Link`, `${rate(N, echoAdd)}/s`, `${rate(N, ipAdd)}/s`, `${(rate(N, echoAdd) / rate(N, ipAdd)).toFixed(2)}x`]);
    rows.push([`delete ${N} ${kind}`, `${rate(N, ourDel)}/s`, `${rate(N, ipDel)}/s`, `${(rate(N, ourDel) / rate(N, ipDel)).toFixed(2)}x`]);
  }
  // 10,000 links (veth pairs made with ip -batch: set-up, not measured).
  await ipBatch(Array.from({ length: DUMP / 2 }, (_, i) => `link add d${i} type veth peer name e${i}`));
  const ours: number[] = [];
  const theirs: number[] = [];
  let count = 0;
  for (let k = 0; k < 3; k++) {
    let t0 = performance.now();
    const links = await hh.links.list();
    ours.push(performance.now() - t0);
    count = links.length;
    t0 = performance.now();
    const r = await netns.run(ns, 'ip', ['-j', 'link', 'show']);
    const parsed = JSON.parse(r.stdout) as unknown[];
    theirs.push(performance.now() - t0);
    if (parsed.length !== links.length) throw new Error(`ip sees ${parsed.length} links, we see ${links.length}`);
  }
  const best = (a: number[]) => Math.min(...a);
  rows.push([`dump+parse ${count} links (best of 3)`, `${best(ours).toFixed(0)} ms`, `${best(theirs).toFixed(0)} ms`, `${(best(ours) / best(theirs)).toFixed(2)}x time (target <= 2.0)`]);
} finally {
  h?.close();
  await space.close();
}
const w = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length), ['what', '@vmhost/net', 'ip', 'ratio'][c]!.length));
const line = (r: string[]) => r.map((x, i) => x.padEnd(w[i]!)).join('  ');
console.log(line(['what', '@vmhost/net', 'ip', 'ratio']));
for (const r of rows) console.log(line(r));
