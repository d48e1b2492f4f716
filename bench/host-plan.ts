// Planning in-process, as a long-running caller (`vmhost run`, a tool embedding @vmhost/host) does
// it: the host file of N VMs (bench:compare's: autostart false, four forwards each, routed IPv6)
// applied once in a lab namespace (`vmhb-plan-*`), then `plan()` with nothing to do timed R times,
// and the pieces of a CLI run that the library call does not pay: parsing the host file and
// starting Node. Prints medians (ms) and the cost per VM.
//
// Usage: npm run bench -- bench/host-plan.ts [--sizes 100,300] [--rounds 7]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apply, down, loadHostFile, plan } from '@vmhost/host';
import { scaleHostFile } from './compare/host-scale.js';
import { median } from './compare/stats.js';
import { benchLab } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100,300' }, rounds: { type: 'string', default: '7' } } });
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
const kernel = join(ROOT, '.cache', 'guest', 'vmlinuz');

console.log(`host-plan ${new Date().toISOString().slice(0, 16)}Z, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, ${rounds} rounds`);
console.log('| VMs | parse host file ms | no-op plan() ms | plan() ms/VM | steps |');
console.log('| --- | --- | --- | --- | --- |');
for (const n of sizes) {
  const lab = await benchLab('plan', { namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-plan-bench-'));
  const file = join(dir, 'host.yaml');
  writeFileSync(file, scaleHostFile(n, kernel));
  const options = { netns: lab.ns('host'), stateDir: join(dir, 'state'), dataDir: join(dir, 'data') };
  try {
    const host = await loadHostFile(file);
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
    console.log(`| ${n} | ${median(parse).toFixed(0)} | ${median(planned).toFixed(0)} | ${(median(planned) / n).toFixed(2)} | ${steps} |`);
    await down(host, options);
  } finally {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
