// Planning in-process, as a long-running caller (`vmhost run`, a tool embedding @vmhost/host) does
// it: the host file of N VMs (bench:compare's: autostart false, four forwards each, routed IPv6)
// applied once in a lab namespace (`vmhb-plan-*`), then `plan()` with nothing to do timed R times,
// and the pieces of a CLI run that the library call does not pay: parsing the host file and
// starting Node. Prints medians (ms) and the cost per VM. With --cli, also the built CLI's no-op
// `vmhost plan --detailed-exitcode` in the same applied namespace, R times (wall and the CLI
// process's CPU, median and the quickest run), and with --prof DIR a V8 CPU profile of each of
// those runs in DIR. `--cli-path NAME=PATH` (repeatable) compares builds of the CLI: their runs
// alternate, so that the machine's ups and downs fall on all of them.
//
// Usage: npm run bench -- bench/host-plan.ts [--sizes 100,300] [--rounds 7] [--cli] [--prof DIR]
//          [--cli-path before=/tmp/old/packages/host/dist/vmhost.js ...]
//          [--node-flag=--some-v8-flag ...]   (given to the CLI's node)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apply, down, loadHostFile, plan } from '@vmhost/host';
import { scaleHostFile } from './compare/host-scale.js';
import { median } from './compare/stats.js';
import { benchLab, freshCliBundle, runCli } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100,300' }, rounds: { type: 'string', default: '7' }, cli: { type: 'boolean', default: false }, prof: { type: 'string' }, 'node-flag': { type: 'string', multiple: true }, 'cli-path': { type: 'string', multiple: true } } });
const CLIS = (values['cli-path']?.length ? values['cli-path'] : [`current=${join(ROOT, 'packages', 'host', 'dist', 'vmhost.js')}`]).map((s) => {
  const [name, path] = s.split('=');
  if (!name || !path) throw new Error(`--cli-path NAME=PATH, not ${s}`);
  return { name, path };
});
if (values['cli-path']?.length) values.cli = true;
if (values.cli) freshCliBundle();
/** One run of the built CLI (with --prof, a CPU profile of it in that directory). */
const cli = (path: string, args: string[]): ReturnType<typeof runCli> =>
  runCli(path, args, [...(values.prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values.prof]), ...(values['node-flag'] ?? [])]);
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
const kernel = join(ROOT, '.cache', 'guest', 'vmlinuz');

console.log(`host-plan ${new Date().toISOString().slice(0, 16)}Z, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, ${rounds} rounds`);
console.log(`| VMs | parse host file ms | no-op plan() ms | plan() ms/VM | steps |${values.cli ? ' CLI no-op plan wall ms | CLI CPU ms |' : ''}`);
console.log(`| --- | --- | --- | --- | --- |${values.cli ? ' --- | --- |' : ''}`);
for (const n of sizes) {
  const lab = await benchLab('plan', { namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-plan-bench-'));
  const file = join(dir, 'host.yaml');
  writeFileSync(file, scaleHostFile(n, kernel));
  const options = { netns: lab.ns('host'), stateDir: join(dir, 'state'), dataDir: join(dir, 'data') };
  try {
    const host = await loadHostFile(file);
    try {
      await apply(host, options);
      const parse: number[] = [];
      const planned: number[] = [];
      let steps = -1;
      for (let r = 0; r < rounds; r++) {
        let t0 = performance.now();
        const h = await loadHostFile(file);
        parse.push(performance.now() - t0);
        t0 = performance.now();
        const p = await plan(h, options);
        planned.push(performance.now() - t0);
        steps = p.steps.length;
      }
      let cells = '';
      if (values.cli) {
        const wall = new Map(CLIS.map((c) => [c.name, [] as number[]]));
        const cpu = new Map(CLIS.map((c) => [c.name, [] as number[]]));
        for (let r = 0; r < rounds; r++) {
          for (const c of [...CLIS.slice(r % CLIS.length), ...CLIS.slice(0, r % CLIS.length)]) {
            const res = await cli(c.path, ['--netns', options.netns, '--state-dir', options.stateDir, '--data-dir', options.dataDir, 'plan', file, '--detailed-exitcode']);
            if (res.code !== 0) throw new Error(`vmhost plan (${c.name}, ${n} VMs) exited ${res.code}: ${res.stderr.slice(-600)}`);
            wall.get(c.name)!.push(res.ms);
            cpu.get(c.name)!.push(res.cpu);
          }
        }
        cells = CLIS.map((c) => ` ${CLIS.length > 1 ? `${c.name}: ` : ''}${median(wall.get(c.name)!).toFixed(0)} (min ${Math.min(...wall.get(c.name)!).toFixed(0)}) | ${median(cpu.get(c.name)!).toFixed(0)} |`).join('');
      }
      console.log(`| ${n} | ${median(parse).toFixed(0)} | ${median(planned).toFixed(0)} | ${(median(planned) / n).toFixed(2)} | ${steps} |${cells}`);
    } finally {
      // also when a run failed: the namespace's shared record under /run/vmhost outlives the lab
      await down(host, options).catch((e: unknown) => console.error(`down: ${String(e)}`));
    }
  } finally {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
