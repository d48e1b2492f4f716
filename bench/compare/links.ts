// bench:compare, links: creating veth pairs and dumping links with @vmhost/net and with each anchor
// (ip -batch / ip -j, vishvananda/netlink, pyroute2), in alternated rounds.
//
// Creation: every tool gets a fresh namespace per round and creates N veth pairs there (and the
// kernel's floor with them: a C program sending ip's very requests, 256 per sendto, timed in
// process like the Go and Python anchors; what no tool asking for the same links can undercut by
// much); the
// namespace is then deleted and the bench waits for the kernel to finish its deferred clean-up
// (quiesce) before the next tool, so that clean-up never runs under another tool's measurement.
// Dumps: one namespace with M links (made with ip -batch, not measured); each tool dumps and
// parses all of them once per round, order rotated.
import { performance } from 'node:perf_hooks';
import { Rtnl, netns } from '@vmhost/net';
import { benchNamespace } from '../helpers.js';
import { PYTHON, PY_SCRIPT, floorBinary, goBinary, runAnchor } from './anchors.js';
import { median, quiesce, rotated, type Row } from './stats.js';

const WINDOW = 256;

async function ipRun(ns: string, args: string[], input?: string): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const r = await netns.run(ns, 'ip', args, input !== undefined ? { input } : {});
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.slice(0, 400)}`);
  return { ms, stdout: r.stdout };
}

async function pool(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, n) }, worker));
}

type Tool = { id: string; label: string; create(ns: string, n: number): Promise<number>; dump?(ns: string): Promise<{ ms: number; count: number }> };

function tools(): Tool[] {
  const go = goBinary();
  const floor = floorBinary();
  const ours = (result: boolean): Tool => ({
    id: result ? 'ours' : 'ours-noresult',
    label: result ? '@vmhost/net (returning each link)' : '@vmhost/net (result: false)',
    async create(ns, n) {
      const h = await Rtnl.open({ netns: ns });
      try {
        const t0 = performance.now();
        const spec = (i: number) => ({ kind: 'veth' as const, name: `v${i}`, peer: { name: `p${i}` } });
        await pool(n, result ? (i) => h.links.add(spec(i)) : (i) => h.links.add(spec(i), { result: false }));
        return performance.now() - t0;
      } finally {
        h.close();
      }
    },
    async dump(ns) {
      const h = await Rtnl.open({ netns: ns });
      try {
        const t0 = performance.now();
        const links = await h.links.list();
        return { ms: performance.now() - t0, count: links.length };
      } finally {
        h.close();
      }
    },
  });
  return [
    {
      id: 'ip',
      label: 'ip -batch / ip -j',
      async create(ns, n) {
        return (await ipRun(ns, ['-batch', '-'], Array.from({ length: n }, (_, i) => `link add v${i} type veth peer name p${i}\n`).join(''))).ms;
      },
      async dump(ns) {
        const t0 = performance.now();
        const r = await ipRun(ns, ['-j', 'link', 'show']);
        const count = (JSON.parse(r.stdout) as unknown[]).length;
        return { ms: performance.now() - t0, count };
      },
    },
    {
      id: 'go',
      label: 'vishvananda/netlink (Go)',
      create: async (ns, n) => (await runAnchor(ns, go, ['create', String(n)])).ms,
      dump: (ns) => runAnchor(ns, go, ['dump']),
    },
    {
      id: 'py',
      label: 'pyroute2',
      create: async (ns, n) => (await runAnchor(ns, PYTHON, [PY_SCRIPT, 'create', String(n)])).ms,
      dump: (ns) => runAnchor(ns, PYTHON, [PY_SCRIPT, 'dump']),
    },
    {
      id: 'floor',
      label: 'the kernel\'s floor (C, ip\'s requests)',
      create: async (ns, n) => (await runAnchor(ns, floor, ['create', String(n)])).ms,
    },
    ours(false),
    ours(true),
  ];
}

/**
 * Creation of `pairs` veth pairs in `createRounds` rounds and dumps of `dumpSizes` links in
 * `rounds` rounds. Creation needs more rounds: every tool but pyroute2 is within a few per cent of
 * the kernel's floor, and the floor itself moves by up to ±8 % from one round to the next.
 */
export async function linksSection(o: { pairs: number; dumpSizes: number[]; rounds: number; createRounds: number; log: (s: string) => void }): Promise<Row[]> {
  const all = tools();
  const rows: Row[] = [];
  const create = new Map<string, number[]>(all.map((t) => [t.id, []]));
  let unsettled = 0;
  for (let r = 0; r < o.createRounds; r++) {
    for (const t of rotated(all, r)) {
      const space = await benchNamespace('cmp');
      try {
        const ms = await t.create(space.name, o.pairs);
        create.get(t.id)!.push(ms);
        o.log(`links: round ${r + 1} ${t.label}: ${o.pairs} veth pairs in ${ms.toFixed(0)} ms`);
      } finally {
        await space.close();
      }
      if (!(await quiesce()).settled) unsettled++;
    }
  }
  const rate = (ms: number): number => (o.pairs / ms) * 1000;
  const ipRate = rate(median(create.get('ip')!));
  const floorRate = rate(median(create.get('floor')!));
  for (const t of all) {
    const v = create.get(t.id)!.map(rate);
    const m = median(v);
    const notes = [...(t.id === 'floor' ? [] : [`${(m / floorRate).toFixed(2)}x the floor`]), ...(unsettled ? [`${unsettled} clean-up wait(s) timed out`] : [])];
    rows.push({ section: 'links', what: `create ${o.pairs} veth pairs`, tool: t.label, value: m, unit: '/s', rounds: v, ratio: m / ipRate, anchor: 'vs ip', ...(notes.length ? { note: notes.join('; ') } : {}) });
  }
  for (const size of o.dumpSizes) {
    const space = await benchNamespace('cmpdump');
    try {
      const pairs = (size - 1) / 2;
      await ipRun(space.name, ['-batch', '-'], Array.from({ length: pairs }, (_, i) => `link add d${i} type veth peer name e${i}\n`).join(''));
      const dumps = new Map<string, number[]>(all.map((t) => [t.id, []]));
      const dumpers = all.filter((t): t is Tool & Required<Pick<Tool, 'dump'>> => t.dump !== undefined && t.id !== 'ours-noresult');
      for (let r = 0; r < o.rounds; r++) {
        for (const t of rotated(dumpers, r)) {
          const d = await t.dump(space.name);
          if (d.count !== size) throw new Error(`${t.label} saw ${d.count} links, expected ${size}`);
          dumps.get(t.id)!.push(d.ms);
        }
      }
      const goMs = median(dumps.get('go')!);
      for (const t of dumpers) {
        const v = dumps.get(t.id)!;
        const m = median(v);
        rows.push({ section: 'links', what: `dump ${size} links`, tool: t.label, value: m, unit: 'ms', rounds: v, ratio: goMs / m, anchor: 'vs Go' });
      }
      o.log(`links: dump ${size} done`);
    } finally {
      await space.close();
    }
    await quiesce();
  }
  return rows;
}
