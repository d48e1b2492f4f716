// Host scale: a host file with N VMs (autostart: false, four forwards each, IPv6 routed), driven
// through the built `vmhost` CLI as a user would, in a fresh lab namespace per round: plan, apply,
// plan again (nothing to do), down. Prints each command's median wall time and the CLI process's
// CPU time (user + system; the kernel's deferred work and child processes such as iptables-restore
// are not in it: on a machine busy with other work it is the steadier figure), and the marginal
// cost per added VM between sizes: flat when a command is linear in the host's size (the CLI's
// fixed start-up cost cancels out).
//
// Several builds of the CLI can be compared in the same session (`--cli NAME=PATH`, repeatable):
// their rounds alternate (the order rotates every round) so that the machine's load falls on all.
// Between rounds it waits for the kernel to finish the asynchronous clean-up of the deleted
// namespace (its links), which otherwise runs under the next measurement.
//
// Clean-up: each round's lab (`vmhb-scale-*`) is closed after the round, also when a command
// fails; on SIGINT, SIGTERM or SIGHUP the running CLI is killed (by pid), then the lab's exit hook
// kills what runs in its namespaces and deletes them, and the temporary directory goes. A run
// killed outright (SIGKILL) is swept by the next bench (bench/helpers.ts). To profile by hand, use
// --print-host-file and a namespace of the lab kit, not one made with `ip netns add`.
//
// Usage: npm run bench -- bench/host-scale.ts [--sizes 10,100,300,1000] [--rounds 3]
//          [--cli before=/tmp/old/packages/host/dist/vmhost.js] [--cli after=packages/host/dist/vmhost.js]
//          [--markdown]
//        npm run bench -- bench/host-scale.ts --print-host-file N > host.yaml   (for profiling by hand)
// (The host file and the statistics are bench:compare's: bench/compare/host-scale.ts, stats.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { scaleHostFile } from './compare/host-scale.js';
import { median, quiesce } from './compare/stats.js';
import { benchLab, freshCliBundle, runCli } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');

/** The temporary directories of this run, removed at exit (the running CLI is killed by runCli's exit hook). */
const tmpDirs = new Set<string>();
process.on('exit', () => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const COMMANDS = ['plan', 'apply', 'no-op plan', 'down'] as const;
type Command = (typeof COMMANDS)[number];

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,300,1000' },
    rounds: { type: 'string', default: '3' },
    cli: { type: 'string', multiple: true },
    markdown: { type: 'boolean', default: false },
    'print-host-file': { type: 'string' },
  },
});
if (values['print-host-file'] !== undefined) {
  // for profiling by hand: the host file of that many VMs on stdout
  process.stdout.write(scaleHostFile(Number(values['print-host-file']), join(ROOT, '.cache', 'guest', 'vmlinuz')));
  process.exit(0);
}
freshCliBundle();
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
const clis = (values.cli?.length ? values.cli : [`current=${join(ROOT, 'packages', 'host', 'dist', 'vmhost.js')}`]).map((s) => {
  const [name, path] = s.split('=');
  if (!name || !path) throw new Error(`--cli NAME=PATH, not ${s}`);
  return { name, path: resolve(path) };
});
const kernel = join(ROOT, '.cache', 'guest', 'vmlinuz');

/** times[cli][size][command] = wall ms of each round; cpus the same for the CLI process's CPU time. */
const fresh = (): Map<string, Map<number, Map<Command, number[]>>> => new Map(clis.map((c) => [c.name, new Map(sizes.map((n) => [n, new Map<Command, number[]>(COMMANDS.map((k) => [k, []]))]))]));
const times = fresh();
const cpus = fresh();
let unsettled = 0;

for (const n of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-scale-'));
  tmpDirs.add(dir);
  const file = join(dir, 'host.yaml');
  writeFileSync(file, scaleHostFile(n, kernel));
  try {
    for (let r = 0; r < rounds; r++) {
      const k = r % clis.length;
      for (const c of [...clis.slice(k), ...clis.slice(0, k)]) {
        const lab = await benchLab('scale', { namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
        const state = join(dir, `state-${c.name}-${r}`);
        try {
          const g = ['--netns', lab.ns('host'), '--state-dir', state];
          const run = async (label: Command, args: string[], want: number): Promise<void> => {
            const res = await runCli(c.path, [...g, ...args]);
            if (res.code !== want) throw new Error(`${c.name}: vmhost ${args.join(' ')} (${n} VMs) exited ${res.code}: ${res.stderr.slice(-600)}`);
            times.get(c.name)!.get(n)!.get(label)!.push(res.ms);
            cpus.get(c.name)!.get(n)!.get(label)!.push(res.cpu);
          };
          await run('plan', ['plan', file, '--detailed-exitcode'], 2);
          await run('apply', ['apply', file], 0);
          await run('no-op plan', ['plan', file, '--detailed-exitcode'], 0);
          await run('down', ['down', file], 0);
        } finally {
          await lab.close();
          rmSync(state, { recursive: true, force: true });
        }
        if (!(await quiesce()).settled) unsettled++;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    tmpDirs.delete(dir);
  }
  for (const c of clis) {
    const t = times.get(c.name)!.get(n)!;
    const u = cpus.get(c.name)!.get(n)!;
    console.error(`${c.name}, ${n} VMs: ${COMMANDS.map((k) => `${k} ${median(t.get(k)!).toFixed(0)} ms (cpu ${median(u.get(k)!).toFixed(0)})`).join(', ')}`);
  }
}

// Per CLI, one table of wall times and one of the CLI process's CPU time: median ms per command
// and size, and the marginal ms per added VM from the previous size (flat = linear).
const fmt = (x: number): string => (Math.abs(x) < 10 ? x.toFixed(2) : x.toFixed(0));
function table(what: string, data: Map<number, Map<Command, number[]>>): void {
  const head = ['VMs', ...COMMANDS.map((k) => `${k} ms`), ...COMMANDS.map((k) => `${k} ms/VM`)];
  const rows = sizes.map((n, i) => {
    const cells = [String(n), ...COMMANDS.map((k) => fmt(median(data.get(n)!.get(k)!)))];
    for (const k of COMMANDS) {
      if (i === 0) cells.push('');
      else {
        const p = sizes[i - 1]!;
        cells.push(fmt((median(data.get(n)!.get(k)!) - median(data.get(p)!.get(k)!)) / (n - p)));
      }
    }
    return cells;
  });
  console.log(`\n${what}`);
  if (values.markdown) {
    console.log(`| ${head.join(' | ')} |\n| ${head.map(() => '---').join(' | ')} |`);
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } else {
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => cells.map((x, i) => x.padStart(w[i]!)).join('  ');
    console.log(line(head));
    for (const r of rows) console.log(line(r));
  }
}
for (const c of clis) {
  const note = `median of ${rounds} rounds${unsettled ? `; the kernel did not settle before ${unsettled} round(s)` : ''}`;
  table(`${c.name} (${c.path}): wall time, ${note}`, times.get(c.name)!);
  table(`${c.name}: CPU time of the CLI process (user + system)`, cpus.get(c.name)!);
}
