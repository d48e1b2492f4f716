// Benchmark (issues 4 §5 and 12): 1,000 and 10,000 port forwards, in one run:
//   A. render + apply, default check 'parse' (the committing programs parse every section before
//      any COMMIT; no second parse)
//   A'. the same with check: 'test' (a separate iptables-restore --test per section, the way apply
//      worked before: the "before" figure of the same run)
//   B. one hand-written `iptables-restore --noflush` of the same rules
//   C. `iptables -A` per rule (what libvirt/Docker/CNI do)
// plus the re-apply no-op and a one-group change at that size. Everything runs in a fresh `vmhb-`
// namespace that is removed afterwards. Prints figures and ratios; asserts nothing.
// A, A' and B are measured --reps times (default 9, after one warm-up of each), from emptied
// tables, in an order that rotates every round (A A' B, A' B A, B A A'); the median and the spread
// (min-max) are printed. C runs once (it takes a minute at 10,000).
// Run: npm run bench -- bench/firewall-rules.ts [--sizes=1000,10000] [--reps=9] [--no-per-rule]
import { netns } from '@vmhost/net';
import { apply, render, type FirewallModel } from '@vmhost/firewall';
import { handWritten, model, resetTables, runIn } from './lib/firewall.js';
import { benchNamespace } from './helpers.js';

const args = process.argv.slice(2);
const sizes = (args.find((a) => a.startsWith('--sizes='))?.slice(8) ?? '1000,10000').split(',').map(Number);
const perRule = !args.includes('--no-per-rule');
const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 9);

const run = (cmd: string, a: string[], input?: string): Promise<void> => runIn(ns, cmd, a, input);
const reset = (): Promise<void> => resetTables(ns);

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function countRules(): Promise<number> {
  const r = await netns.run(ns, 'iptables-save', []);
  return r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const spread = (xs: number[]): string => `[${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}]`;

const space = await benchNamespace('fw');
const ns = space.name;
try {
  console.log(`namespace ${ns}; iptables: ${(await netns.run(ns, 'iptables', ['--version'])).stdout.trim()}`);
  for (const n of sizes) {
    const m = model(n);
    const { text, commands } = handWritten(n);
    const tRender = await time(async () => render(m));
    const changed: FirewallModel = { ...m, portForwards: m.portForwards!.map((f) => (f.group === 'g3' ? { ...f, toPort: 8080 } : f)) };
    // Warm-up: the first apply of a size pays for JIT compilation and the first namespace entry.
    await reset();
    await apply(m, { netns: ns });
    await reset();
    await apply(m, { netns: ns, check: 'test' });
    await reset();
    await run('iptables-restore', ['--noflush'], text);
    await reset();
    const s: Record<'apply' | 'test' | 'raw' | 'noop' | 'group', number[]> = { apply: [], test: [], raw: [], noop: [], group: [] };
    let ours = 0;
    let raw = 0;
    const kinds = {
      apply: async () => {
        s.apply.push(await time(() => apply(m, { netns: ns })));
        ours = await countRules();
        s.noop.push(await time(() => apply(m, { netns: ns })));
        s.group.push(await time(() => apply(changed, { netns: ns })));
      },
      test: async () => {
        s.test.push(await time(() => apply(m, { netns: ns, check: 'test' })));
      },
      raw: async () => {
        s.raw.push(await time(() => run('iptables-restore', ['--noflush'], text)));
        raw = await countRules();
      },
    };
    const order = ['apply', 'test', 'raw'] as const;
    for (let k = 0; k < reps; k++) {
      for (let i = 0; i < order.length; i++) {
        await kinds[order[(i + k) % order.length] as keyof typeof kinds]();
        await reset();
      }
    }
    const [tApply, tTest, tRaw, tNoop, tGroup] = [s.apply, s.test, s.raw, s.noop, s.group].map(median) as [number, number, number, number, number];
    let tLoop = NaN;
    if (perRule) {
      tLoop = await time(async () => {
        for (const c of commands) await run('iptables', c);
      });
      await reset();
    }
    console.log(`\n${n} port forwards, median of ${reps} (${ours} rules ours, ${raw} rules hand-written; C makes ${commands.length} iptables calls)`);
    console.log(`  render only                 ${fmt(tRender)}`);
    console.log(`  A render+apply (parse)      ${fmt(tApply)}  ${spread(s.apply)}`);
    console.log(`  A' same, check: 'test'      ${fmt(tTest)}  ${spread(s.test)}  (a second parse by --test: before)`);
    console.log(`  B one iptables-restore      ${fmt(tRaw)}  ${spread(s.raw)}`);
    console.log(`  C iptables -A per rule      ${perRule ? fmt(tLoop) : 'skipped'}`);
    console.log(`  re-apply (no-op)            ${fmt(tNoop)}`);
    console.log(`  change one group of ${n / 10}     ${fmt(tGroup)}`);
    const ratios = (xs: number[]): string => {
      const r = xs.map((x, i) => x / (s.raw[i] as number)).sort((a, b) => a - b);
      return `${median(r).toFixed(2)}x per round (${(r[0] as number).toFixed(2)}-${(r[r.length - 1] as number).toFixed(2)})`;
    };
    console.log(`  A/B = ${(tApply / tRaw).toFixed(2)}x of medians, ${ratios(s.apply)}; A'/B = ${(tTest / tRaw).toFixed(2)}x, ${ratios(s.test)} (targets: <= 1.3x at 1,000, <= 1.1x at 10,000)${perRule ? `   C/A = ${(tLoop / tApply).toFixed(1)}x (target >= 50x at 10,000)` : ''}`);
  }
} finally {
  await space.close(); // kills what still runs inside, deletes the namespace
}
