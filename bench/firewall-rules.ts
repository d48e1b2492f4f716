// Benchmark (issue 4 §5): 1,000 and 10,000 port forwards, in one run:
//   A. render + apply (@vmhost/firewall: iptables-save, --test, one --noflush commit)
//   B. one hand-written `iptables-restore --noflush` of the same rules
//   C. `iptables -A` per rule (what libvirt/Docker/CNI do)
// plus the re-apply no-op and a one-group change at that size. Everything runs in a fresh `vmhb-`
// namespace that is removed afterwards. Prints figures and ratios; asserts nothing.
// A, A', B, the no-op and the group change are each measured --reps times (default 5, after one
// warm-up apply) and the median is printed; C runs once (it takes a minute at 10,000).
// Run: npm run bench -- bench/firewall-rules.ts [--sizes=1000,10000] [--reps=5] [--no-per-rule]
import { netns } from '@vmhost/net';
import { apply, render, type FirewallModel } from '@vmhost/firewall';
import { forwards } from './firewall-forwards.js';
import { benchNamespace } from './helpers.js';

const args = process.argv.slice(2);
const sizes = (args.find((a) => a.startsWith('--sizes='))?.slice(8) ?? '1000,10000').split(',').map(Number);
const perRule = !args.includes('--no-per-rule');
const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 5);

function model(n: number): FirewallModel {
  return { owner: 'bench', portForwards: forwards(n) };
}

/** The same rules, written by hand: one DNAT and one FORWARD accept per forward, plain chains. */
function handWritten(n: number): { text: string; commands: string[][] } {
  const nat: string[] = [];
  const fil: string[] = [];
  for (const f of forwards(n)) {
    nat.push(`-A RAW-PRE -i eth0 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport ${f.port as number} -j DNAT --to-destination ${f.to}:80`);
    fil.push(`-A RAW-FWD -d ${f.to}/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT`);
  }
  const text = [
    '*filter', ':RAW-FWD - [0:0]', '-A RAW-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', ...fil, '-I FORWARD 1 -j RAW-FWD', 'COMMIT',
    '*nat', ':RAW-PRE - [0:0]', ...nat, '-I PREROUTING 1 -j RAW-PRE', 'COMMIT', '',
  ].join('\n');
  const commands: string[][] = [
    ['-t', 'filter', '-N', 'RAW-FWD'],
    ['-t', 'nat', '-N', 'RAW-PRE'],
    ['-t', 'filter', '-A', 'RAW-FWD', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
    ...fil.map((l) => ['-t', 'filter', ...l.split(' ')]),
    ...nat.map((l) => ['-t', 'nat', ...l.split(' ')]),
    ['-t', 'filter', '-I', 'FORWARD', '1', '-j', 'RAW-FWD'],
    ['-t', 'nat', '-I', 'PREROUTING', '1', '-j', 'RAW-PRE'],
  ];
  return { text, commands };
}

async function run(cmd: string, a: string[], input?: string): Promise<void> {
  const r = await netns.run(ns, cmd, a, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${a.slice(0, 6).join(' ')}: ${r.stderr}`);
}

/** Deletes the filter and nat tables of both families (a clean start for each measurement). */
async function reset(): Promise<void> {
  await run('iptables-restore', [], '*filter\nCOMMIT\n*nat\nCOMMIT\n');
  await run('ip6tables-restore', [], '*filter\nCOMMIT\n*nat\nCOMMIT\n');
}

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
    const s: Record<'apply' | 'multi' | 'raw' | 'noop' | 'group', number[]> = { apply: [], multi: [], raw: [], noop: [], group: [] };
    let ours = 0;
    let raw = 0;
    for (let k = 0; k < reps; k++) {
      s.apply.push(await time(() => apply(m, { netns: ns })));
      ours = await countRules();
      s.noop.push(await time(() => apply(m, { netns: ns })));
      await reset();
      s.multi.push(await time(() => apply(m, { netns: ns, check: 'test' })));
      s.group.push(await time(() => apply(changed, { netns: ns })));
      await reset();
      s.raw.push(await time(() => run('iptables-restore', ['--noflush'], text)));
      raw = await countRules();
      await reset();
    }
    const [tApply, tApplyMulti, tRaw, tNoop, tGroup] = [s.apply, s.multi, s.raw, s.noop, s.group].map(median) as [number, number, number, number, number];
    let tLoop = NaN;
    if (perRule) {
      tLoop = await time(async () => {
        for (const c of commands) await run('iptables', c);
      });
      await reset();
    }
    console.log(`\n${n} port forwards, median of ${reps} (${ours} rules ours, ${raw} rules hand-written; C makes ${commands.length} iptables calls)`);
    console.log(`  render only                 ${fmt(tRender)}`);
    console.log(`  A render+apply              ${fmt(tApply)}`);
    console.log(`  A' same, check: 'multi'     ${fmt(tApplyMulti)}  (no --test for a single batch)`);
    console.log(`  B one iptables-restore      ${fmt(tRaw)}`);
    console.log(`  C iptables -A per rule      ${perRule ? fmt(tLoop) : 'skipped'}`);
    console.log(`  re-apply (no-op)            ${fmt(tNoop)}`);
    console.log(`  change one group of ${n / 10}     ${fmt(tGroup)}`);
    console.log(`  A/B = ${(tApply / tRaw).toFixed(2)}x, A'/B = ${(tApplyMulti / tRaw).toFixed(2)}x (target <= 1.2x)${perRule ? `   C/A = ${(tLoop / tApply).toFixed(1)}x (target >= 50x at 10,000)` : ''}`);
  }
} finally {
  await space.close(); // kills what still runs inside, deletes the namespace
}
