// Benchmark (issue 12): dump and parse links, addresses, routes and neighbours with @vmhost/net
// against vishvananda/netlink (Go, Debian's golang-github-vishvananda-netlink-dev), `ip -j` and
// pyroute2 (Debian's python3-pyroute2), in the same namespace, in alternated rounds; then the
// creation of veth pairs returning each link (and with `result: false`) against `ip -batch` and Go.
//
// Per size (links = 2 x pairs + lo): one `vmhb-dump-` namespace made with `ip -batch` (set-up, not
// measured): `pairs` veth pairs d<i>/e<i> (down), an IPv4 /24 on each d<i> and an IPv6 /64 on
// each e<i>; d0/e0 up with `--routes` routes (half IPv4, half IPv6) and `--neighbors` permanent
// neighbours (half each) on d0. Each round runs every tool once per object kind, the order
// rotated. Our side is warmed up first (`--warmup` lists per kind: the JIT's work, which a
// compiled anchor does not have; a new process's first list of 4,000 neighbours took 30-38 ms
// here, the later ones 2.3-2.5); then each round opens a new handle, lists once (reported as
// "1st": the link names are not known yet) and then `--reps` times; an anchor's program does
// reps + 1 lists in one process and its first is reported apart the same way. A round's value is the median of the
// repeated calls. Printed: the median of the round values, their spread (min-max), the median CPU
// time (user + system of the whole process, all threads) and the ratio to Go. `ip -j` is timed
// from the outside: process start-up and JSON.parse included (two processes for routes).
//
// `--base DIR` adds a second copy of @vmhost/net (DIR/packages/net/src/index.ts, with its addon
// built: `git archive <commit> packages/net | tar -x -C DIR`, node-gyp in DIR/packages/net) as the
// tool `base`, for before/after figures in one alternated run.
//
// Creation: every tool gets a fresh namespace per round for `--create` veth pairs, deleted
// afterwards; the next tool waits until the kernel's deferred clean-up is done (kernel CPU share
// below 8% for 300 ms, at most 20 s).
//
// Other work on the machine makes wall times noisy: run it with `nice -n -20` (every tool
// inherits it) and compare the CPU column too.
//
// Run: npm run bench -- bench/net-dump.ts [--sizes 1000,5000] [--rounds 5] [--reps 5]
//        [--warmup 20] [--create 500] [--create-rounds 3] [--kinds links,addresses,routes,neighbors]
//        [--tools ours,base,go,ip,py] [--base DIR] [--routes 4000] [--neighbors 4000]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { netns } from '@vmhost/net';
import { benchNamespace } from './helpers.js';

type Net = typeof import('@vmhost/net');
type Kind = 'links' | 'addresses' | 'routes' | 'neighbors';
const ALL_KINDS: Kind[] = ['links', 'addresses', 'routes', 'neighbors'];

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const num = (name: string, def: number): number => Number(opt(name) ?? def);
const SIZES = (opt('sizes') ?? '1000,5000').split(',').filter(Boolean).map(Number);
const ROUNDS = num('rounds', 5);
const REPS = num('reps', 5);
const WARMUP = num('warmup', 20);
const CREATE = num('create', 500);
const CREATE_ROUNDS = num('create-rounds', 3);
const ROUTES = num('routes', 4000);
const NEIGHBORS = num('neighbors', 4000);
const KINDS = (opt('kinds') ?? ALL_KINDS.join(',')).split(',') as Kind[];
const TOOLS = (opt('tools') ?? 'ours,base,go,ip,py').split(',');
const BASE = opt('base');
const WINDOW = 256;

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..');
const PYTHON = '/usr/bin/python3';
const PY_SCRIPT = join(HERE, 'net-dump', 'pyroute2_dump.py');

/** Builds the Go anchor into .cache/bench (again when main.go is newer). */
function goBinary(): string {
  const src = join(HERE, 'net-dump', 'main.go');
  const dir = join(ROOT, '.cache', 'bench');
  const bin = join(dir, 'netdump');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('go', ['build', '-o', bin, '.'], {
    cwd: join(HERE, 'net-dump'),
    encoding: 'utf8',
    env: { ...process.env, GOPATH: '/usr/share/gocode', GO111MODULE: 'off', GOCACHE: join(dir, 'go-cache'), GOFLAGS: '' },
  });
  if (r.status !== 0) throw new Error(`building the Go anchor failed (needs golang-go, golang-github-vishvananda-netlink-dev): ${r.stderr || r.error?.message}`);
  return bin;
}

// ------------------------------------------------------------------------------ statistics

const median = (a: readonly number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(1) : ms.toFixed(0));

/** One measurement: wall and CPU time (ms) of each repetition, and the objects returned. */
interface Sample {
  ms: number[];
  cpu: number[];
  count: number;
  /** The first call (a new handle, a new process), when not among `ms`. */
  first?: number;
}

function cpuWall<T>(fn: () => Promise<T>): Promise<{ ms: number; cpu: number; value: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  return fn().then((value) => {
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { ms, cpu: (c.user + c.system) / 1000, value };
  });
}

// ----------------------------------------------------------------------------------- tools

interface Tool {
  id: string;
  label: string;
  dump(ns: string, kind: Kind): Promise<Sample>;
  /** In-process tools: runs `n` lists untimed (the JIT's warm-up; the anchors are compiled programs). */
  warm?(ns: string, kind: Kind, n: number): Promise<void>;
  /** Creates `n` veth pairs v<i>/p<i>; wall ms. */
  create?(ns: string, n: number, result: boolean): Promise<number>;
}

async function runJson(ns: string, cmd: string, args: string[]): Promise<Sample> {
  const r = await netns.run(ns, cmd, args, { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(0, 400)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
}

async function pool(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, n) }, worker));
}

function oursTool(id: string, label: string, net: Net): Tool {
  const list = (h: Awaited<ReturnType<Net['Rtnl']['open']>>, kind: Kind): Promise<unknown[]> =>
    kind === 'links' ? h.links.list() : kind === 'addresses' ? h.addresses.list() : kind === 'routes' ? h.routes.list() : h.neighbors.list();
  return {
    id,
    label,
    async dump(ns, kind) {
      const h = await net.Rtnl.open({ netns: ns });
      try {
        // the first call on a new handle (names not known yet; JIT warm-up) is reported apart
        const t0 = performance.now();
        await list(h, kind);
        const s: Sample = { ms: [], cpu: [], count: 0, first: performance.now() - t0 };
        for (let r = 0; r < REPS; r++) {
          const x = await cpuWall(() => list(h, kind));
          s.ms.push(x.ms);
          s.cpu.push(x.cpu);
          s.count = x.value.length;
        }
        return s;
      } finally {
        h.close();
      }
    },
    async warm(ns, kind, n) {
      const h = await net.Rtnl.open({ netns: ns });
      try {
        for (let i = 0; i < n; i++) await list(h, kind);
      } finally {
        h.close();
      }
    },
    async create(ns, n, result) {
      const h = await net.Rtnl.open({ netns: ns });
      try {
        const spec = (i: number) => ({ kind: 'veth' as const, name: `v${i}`, peer: { name: `p${i}` } });
        const t0 = performance.now();
        await pool(n, result ? (i) => h.links.add(spec(i)) : (i) => h.links.add(spec(i), { result: false }));
        return performance.now() - t0;
      } finally {
        h.close();
      }
    },
  };
}

const IP_ARGS: Record<Kind, string[][]> = {
  links: [['-j', 'link', 'show']],
  addresses: [['-j', 'address', 'show']],
  routes: [['-j', '-4', 'route', 'show', 'table', 'main'], ['-j', '-6', 'route', 'show', 'table', 'main']],
  neighbors: [['-j', 'neigh', 'show']],
};

async function ipRun(ns: string, args: string[], input?: string): Promise<string> {
  const r = await netns.run(ns, 'ip', args, input !== undefined ? { input } : {});
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.slice(0, 400)}`);
  return r.stdout;
}

function tools(ours: Net, base: Net | undefined): Tool[] {
  const go = goBinary();
  const all: Tool[] = [oursTool('ours', '@vmhost/net', ours)];
  if (base) all.push(oursTool('base', '@vmhost/net (base)', base));
  all.push(
    {
      id: 'go',
      label: 'vishvananda/netlink',
      dump: (ns, kind) => runJson(ns, go, [kind, String(REPS + 1)]),
      create: async (ns, n) => (await runJson(ns, go, ['create', String(n)])).ms[0]!,
    },
    {
      id: 'ip',
      label: 'ip -j (process)',
      async dump(ns, kind) {
        const s: Sample = { ms: [], cpu: [], count: 0 };
        for (let r = 0; r < REPS; r++) {
          const t0 = performance.now();
          let count = 0;
          for (const args of IP_ARGS[kind]) {
            const parsed = JSON.parse(await ipRun(ns, args)) as Array<{ addr_info?: unknown[] }>;
            count += kind === 'addresses' ? parsed.reduce((n, l) => n + (l.addr_info?.length ?? 0), 0) : parsed.length;
          }
          s.ms.push(performance.now() - t0);
          s.count = count;
        }
        return s;
      },
      create: async (ns, n) => {
        const t0 = performance.now();
        await ipRun(ns, ['-batch', '-'], Array.from({ length: n }, (_, i) => `link add v${i} type veth peer name p${i}\n`).join(''));
        return performance.now() - t0;
      },
    },
    { id: 'py', label: 'pyroute2', dump: (ns, kind) => runJson(ns, PYTHON, [PY_SCRIPT, kind, String(REPS + 1)]) },
  );
  return all.filter((t) => TOOLS.includes(t.id));
}

// ------------------------------------------------------------------------------- clean-up wait

function cpuTimes(): { system: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { system: (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0), total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/** Waits until the kernel's share of CPU time stays under 8% for 300 ms (at most 20 s). */
async function quiesce(): Promise<boolean> {
  const t0 = Date.now();
  let prev = cpuTimes();
  while (Date.now() - t0 < 20_000) {
    await sleep(300);
    const now = cpuTimes();
    const dt = now.total - prev.total;
    const share = dt > 0 ? (now.system - prev.system) / dt : 0;
    prev = now;
    if (share < 0.08) return true;
  }
  return false;
}

// ----------------------------------------------------------------------------------- set-up

function setupLines(pairs: number): string[] {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const lines: string[] = [];
  for (let i = 0; i < pairs; i++) lines.push(`link add d${i} type veth peer name e${i}`);
  for (let i = 0; i < pairs; i++) {
    lines.push(`address add 10.${(i >> 8) & 255}.${i & 255}.1/24 dev d${i}`);
    lines.push(`address add 2001:db8:${hex(i >> 16, 1)}:${hex(i & 0xffff, 1)}::1/64 dev e${i} nodad`);
  }
  lines.push('link set d0 up', 'link set e0 up');
  for (let i = 0; i < ROUTES / 2; i++) {
    lines.push(`route add 172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 via 10.0.0.2 dev d0`);
    lines.push(`route add 2001:db8:ffff:${hex(i, 1)}::/64 via fe80::2 dev d0`);
  }
  for (let i = 0; i < NEIGHBORS / 2; i++) {
    lines.push(`neigh add 10.0.${(i >> 8) & 255}.${i & 255} lladdr 52:54:00:00:${hex(i >> 8, 2)}:${hex(i & 255, 2)} dev d0 nud permanent`);
    lines.push(`neigh add 2001:db8::${hex(i + 16, 1)} lladdr 52:54:00:01:${hex(i >> 8, 2)}:${hex(i & 255, 2)} dev d0 nud permanent`);
  }
  return lines;
}

// ------------------------------------------------------------------------------------- main

interface Row {
  what: string;
  tool: string;
  count: number;
  value: number;
  rounds: number[];
  cpu?: number;
  first?: number;
  ratio?: string;
}

const log = (s: string) => console.error(s);
const ours = (await import('@vmhost/net')) as Net;
const base = BASE && TOOLS.includes('base') ? ((await import(resolve(BASE, 'packages/net/src/index.ts'))) as Net) : undefined;
const all = tools(ours, base);
const rows: Row[] = [];

for (const pairs of SIZES) {
  const space = await benchNamespace('dump');
  try {
    const ns = space.name;
    await ipRun(ns, ['-batch', '-'], setupLines(pairs).join('\n') + '\n');
    const links = 2 * pairs + 1;
    for (const kind of KINDS) {
      const per = new Map<string, { ms: number[]; cpu: number[]; first: number[]; count: number }>(all.map((t) => [t.id, { ms: [], cpu: [], first: [], count: 0 }]));
      for (const t of all) await t.warm?.(ns, kind, WARMUP);
      for (let r = 0; r < ROUNDS; r++) {
        for (const t of [...all.slice(r % all.length), ...all.slice(0, r % all.length)]) {
          const s = await t.dump(ns, kind);
          const p = per.get(t.id)!;
          // a process's first repetition is its first call; later ones are the warm figure
          const warm = s.first === undefined && s.ms.length > 1 ? s.ms.slice(1) : s.ms;
          p.ms.push(median(warm));
          if (s.cpu.length) p.cpu.push(median(s.first === undefined && s.cpu.length > 1 ? s.cpu.slice(1) : s.cpu));
          if (s.first !== undefined) p.first.push(s.first);
          else if (s.ms.length > 1) p.first.push(s.ms[0]!);
          p.count = s.count;
        }
      }
      const goMs = per.has('go') ? median(per.get('go')!.ms) : undefined;
      for (const t of all) {
        const p = per.get(t.id)!;
        const m = median(p.ms);
        const row: Row = { what: `${kind} (${links} links)`, tool: t.label, count: p.count, value: m, rounds: p.ms };
        if (p.cpu.length) row.cpu = median(p.cpu);
        if (p.first.length) row.first = median(p.first);
        if (goMs !== undefined) row.ratio = `${(goMs / m).toFixed(2)}x`;
        rows.push(row);
      }
      log(`dump ${kind} of ${links} links: done`);
    }
  } finally {
    await space.close();
  }
  await quiesce();
}

const createRows: Array<{ tool: string; rates: number[] }> = [];
if (CREATE > 0) {
  const creators: Array<{ id: string; label: string; run: (ns: string) => Promise<number> }> = [];
  for (const t of all) {
    if (!t.create) continue;
    if (t.id === 'ours' || t.id === 'base') {
      creators.push({ id: `${t.id}-echo`, label: `${t.label}, returning each link`, run: (ns) => t.create!(ns, CREATE, true) });
      creators.push({ id: `${t.id}-noecho`, label: `${t.label}, result: false`, run: (ns) => t.create!(ns, CREATE, false) });
    } else {
      creators.push({ id: t.id, label: t.id === 'ip' ? 'ip -batch (process)' : t.label, run: (ns) => t.create!(ns, CREATE, false) });
    }
  }
  const rates = new Map<string, number[]>(creators.map((c) => [c.id, []]));
  let unsettled = 0;
  for (let r = 0; r < CREATE_ROUNDS; r++) {
    for (const c of [...creators.slice(r % creators.length), ...creators.slice(0, r % creators.length)]) {
      const space = await benchNamespace('create');
      try {
        const ms = await c.run(space.name);
        rates.get(c.id)!.push((CREATE / ms) * 1000);
      } finally {
        await space.close();
      }
      if (!(await quiesce())) unsettled++;
    }
    log(`create round ${r + 1} done`);
  }
  for (const c of creators) createRows.push({ tool: c.label, rates: rates.get(c.id)! });
  if (unsettled) log(`${unsettled} clean-up wait(s) timed out (machine busy)`);
}

// ------------------------------------------------------------------------------------ print

const table = (head: string[], body: string[][]): string => {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), ...body.map(line)].join('\n');
};
console.log(
  `dump and parse: median of ${ROUNDS} rounds, each the median of the repeated calls (${REPS}; an anchor's first is left out); ` +
    `spread: min-max of the rounds; cpu: user + system of the whole process; 1st: the first call on a new handle / in a new process; ` +
    `vs Go = Go's time / this tool's time (> 1: faster than Go)`,
);
console.log(
  table(
    ['what', 'tool', 'objects', 'median', 'spread', 'cpu', '1st', 'vs Go'],
    rows.map((r) => [
      r.what, r.tool, String(r.count), `${fmt(r.value)} ms`, `${fmt(Math.min(...r.rounds))}-${fmt(Math.max(...r.rounds))}`,
      r.cpu === undefined ? '' : `${fmt(r.cpu)} ms`, r.first === undefined ? '' : `${fmt(r.first)} ms`, r.ratio ?? '',
    ]),
  ),
);
if (createRows.length) {
  const ip = createRows.find((c) => c.tool.startsWith('ip -batch'));
  const ipRate = ip ? median(ip.rates) : undefined;
  console.log(`\ncreate ${CREATE} veth pairs in a fresh namespace: median of ${CREATE_ROUNDS} rounds; ratio = rate / ip -batch's rate`);
  console.log(
    table(
      ['tool', 'median', 'spread', 'vs ip -batch'],
      createRows.map((c) => {
        const m = median(c.rates);
        return [c.tool, `${Math.round(m)}/s`, `${Math.round(Math.min(...c.rates))}-${Math.round(Math.max(...c.rates))}/s`, ipRate ? `${(m / ipRate).toFixed(2)}x` : ''];
      }),
    ),
  );
}
