// bench:compare, firewall: @vmhost/firewall's default apply (render, plan against iptables-save,
// every section parsed by its committing program before any COMMIT) against one raw
// `iptables-restore --noflush` of the same rules written by hand, from emptied tables, at 1,000
// and 10,000 port forwards, alternated rounds, in a fresh namespace.
import { apply } from '@vmhost/firewall';
import { benchNamespace } from '../helpers.js';
import { handWritten, model, resetTables, runIn } from '../lib/firewall.js';
import { median, rotated, type Row } from './stats.js';

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The firewall rows: ours and the raw restore at each size; ratio = raw time / ours (speed). */
export async function firewallSection(o: { sizes: number[]; rounds: number; log: (s: string) => void }): Promise<Row[]> {
  const rows: Row[] = [];
  const space = await benchNamespace('cmpfw');
  try {
    const ns = space.name;
    for (const n of o.sizes) {
      const m = model(n);
      const { text } = handWritten(n);
      const sides = [
        { label: 'raw iptables-restore', run: () => runIn(ns, 'iptables-restore', ['--noflush'], text) },
        { label: '@vmhost/firewall apply', run: () => apply(m, { netns: ns }) },
      ];
      for (const s of sides) {
        await s.run(); // warm-up
        await resetTables(ns);
      }
      const times = new Map<string, number[]>(sides.map((s) => [s.label, []]));
      for (let r = 0; r < o.rounds; r++) {
        for (const s of rotated(sides, r)) {
          times.get(s.label)!.push(await time(s.run));
          await resetTables(ns);
        }
      }
      const rawMs = median(times.get('raw iptables-restore')!);
      for (const s of sides) {
        const v = times.get(s.label)!;
        rows.push({ section: 'firewall', what: `apply ${n.toLocaleString('en')} forwards`, tool: s.label, value: median(v), unit: 'ms', rounds: v, ratio: rawMs / median(v), anchor: 'vs raw restore' });
      }
      o.log(`firewall: ${n} forwards done`);
    }
  } finally {
    await space.close();
  }
  return rows;
}
