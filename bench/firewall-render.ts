// Micro-benchmark of the pure layer of @vmhost/firewall (no privilege, nothing applied): validate,
// build the rule set, render the restore text, and plan against an empty and a full iptables-save,
// for 1,000 and 10,000 port forwards. Prints the median of several runs per step; asserts nothing.
// Run: npm run bench -- bench/firewall-render.ts [--sizes=1000,10000] [--runs=15]
// Profile: node --conditions=vmhost-source --import tsx --cpu-prof bench/firewall-render.ts
import { buildRuleset, parseSave, planFamily, restoreText, validateModel, type FirewallModel } from '@vmhost/firewall';
import { forwards } from './firewall-forwards.js';

const args = process.argv.slice(2);
const sizes = (args.find((a) => a.startsWith('--sizes='))?.slice(8) ?? '1000,10000').split(',').map(Number);
const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice(7) ?? 15);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

function time<T>(fn: () => T): [T, number] {
  const t0 = process.hrtime.bigint();
  const r = fn();
  return [r, Number(process.hrtime.bigint() - t0) / 1e6];
}

for (const n of sizes) {
  const model: FirewallModel = { owner: 'bench', portForwards: forwards(n) };
  const t: Record<string, number[]> = { validate: [], build: [], text: [], 'plan (empty)': [], 'parse save': [], 'plan (no-op)': [] };
  for (let k = 0; k < runs; k++) {
    const [m, tv] = time(() => validateModel(model));
    const [rs, tb] = time(() => buildRuleset(m));
    const [text, tt] = time(() => restoreText(rs.ipv4));
    const [, tp] = time(() => planFamily(m.owner, rs.ipv4, new Map()));
    // what iptables-save would print after the apply (our text is its exact format)
    const saved = text.replace(/^-I (\S+) 1 /gm, '-A $1 ').replace(/^\*(\w+)\n/gm, (s, tb: string) => `${s}${tb === 'nat' ? ':PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' : ':INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n'}`);
    const [state, ts] = time(() => parseSave(saved));
    const [noop, tn] = time(() => planFamily(m.owner, rs.ipv4, state));
    if (noop.batch !== '') throw new Error('re-plan of the same rules is not empty');
    t.validate!.push(tv);
    t.build!.push(tb);
    t.text!.push(tt);
    t['plan (empty)']!.push(tp);
    t['parse save']!.push(ts);
    t['plan (no-op)']!.push(tn);
  }
  console.log(`\n${n} port forwards (median of ${runs})`);
  for (const [k, v] of Object.entries(t)) console.log(`  ${k.padEnd(14)} ${median(v).toFixed(2)} ms`);
  const first = (k: string): number => (t[k] as number[])[0] as number;
  console.log(`  first run: validate+build+plan ${(first('validate') + first('build') + first('plan (empty)')).toFixed(1)} ms (cold JIT)`);
}
