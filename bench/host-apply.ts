// plan, apply, re-plan and down of the seed's host (test/host/fixtures/seed.ts; VMs with
// autostart false, their files as empty placeholders) in a fresh lab namespace, through the
// library: median and spread over ROUNDS rounds. State writes are part of apply and down.
// Usage: npm run bench -- bench/host-apply.ts [ROUNDS]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { apply, down, plan, resolveHost } from '@vmhost/host';
import { seedHost } from '../test/host/fixtures/seed.js';

const rounds = Number(process.argv[2] ?? 15);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
const lab = await Lab.create({
  prefix: 'vmhb-happly-',
  namespaces: { wan: {}, host: {} },
  links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24', '2001:db8:8:5688::2/64'] } }],
});
const dir = mkdtempSync(join(tmpdir(), 'vmhost-bench-'));
try {
  mkdirSync(join(dir, 'images'));
  for (const f of ['web.qcow2', 'mail.img', 'initrd.img', 'vmlinuz']) writeFileSync(join(dir, 'images', f), '');
  const spec = seedHost();
  for (const vm of spec.vms ?? []) {
    vm.autostart = false;
    if (vm.kernel !== undefined) vm.kernel = 'images/vmlinuz';
  }
  const host = resolveHost(spec, dir);
  const opts = { netns: lab.ns('host'), stateDir: join(dir, 'state') };
  const t: Record<'plan' | 'apply' | 'replan' | 'down', number[]> = { plan: [], apply: [], replan: [], down: [] };
  let steps = 0;
  const time = async <T>(k: keyof typeof t, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    t[k].push(performance.now() - t0);
    return r;
  };
  for (let i = 0; i < rounds; i++) {
    await time('plan', () => plan(host, opts));
    steps = (await time('apply', () => apply(host, opts))).steps.length;
    await time('replan', () => plan(host, opts));
    await time('down', () => down(host, opts));
  }
  const stat = (a: number[]): string => {
    const s = [...a].sort((x, y) => x - y);
    return `median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms (min ${s[0]!.toFixed(1)}, max ${s[s.length - 1]!.toFixed(1)})`;
  };
  console.log(`seed host, ${steps} steps, ${rounds} rounds`);
  for (const k of Object.keys(t) as Array<keyof typeof t>) console.log(`  ${k.padEnd(7)} ${stat(t[k])}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await lab.close();
}
