// bench:compare, host scale: a host file with N VMs (autostart: false, four forwards each, IPv6
// routed), driven through the real `vmhost` CLI (the built one) as a user would, in a fresh
// namespace per size: plan, apply, plan again (nothing to do), down. Reports each command's wall
// time and its cost per VM, so growth faster than the host shows as a rising per-VM figure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Lab } from '@vmhost/lab';
import { freshCliBundle } from '../helpers.js';
import { median, quiesce, type Row } from './stats.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'packages', 'host', 'dist', 'vmhost.js');

/** The host file of `n` VMs (n ≤ 16,000: bridge 10.20.0.0/16, ports 10000 + 4 per VM). */
export function scaleHostFile(n: number, kernel: string): string {
  const vms: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = 10 + Math.floor(i / 250);
    const b = 1 + (i % 250);
    const port = 10000 + i * 4;
    vms.push(`  - name: vm${i}
    ipv4: 10.20.${a}.${b}
    ipv6: "2001:db8:20::${(i + 0x100).toString(16)}"
    kernel: ${kernel}
    autostart: false
    forwards: [{ port: ${port}, toPort: 22 }, { port: ${port + 1}, toPort: 80 }, { port: ${port + 2}, toPort: 443 }, { port: ${port + 3}, toPort: 25 }]`);
  }
  return `name: scale
uplink: eth0
bridge: { name: br0, ipv4: 10.20.0.1/16, ipv6: "2001:db8:20::1/64" }
dhcp: { range: [10.20.200.1, 10.20.250.250] }
ipv6: { prefix: "2001:db8:20::/64", mode: routed }
vms:
${vms.join('\n')}
`;
}

function cli(args: string[]): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stdout, stderr }));
  });
}

const COMMANDS = ['plan', 'apply', 'no-op plan', 'down'] as const;

/** The host-scale table at each size in `sizes`, `rounds` runs per size (median). */
export async function hostScaleSection(o: { sizes: number[]; rounds: number; log: (s: string) => void }): Promise<Row[]> {
  freshCliBundle();
  const rows: Row[] = [];
  const kernel = join(ROOT, '.cache', 'guest', 'vmlinuz');
  const medians = new Map<number, Map<string, number>>();
  for (const n of o.sizes) {
    const times = new Map<string, number[]>(COMMANDS.map((c) => [c, []]));
    for (let r = 0; r < o.rounds; r++) {
      const lab = await Lab.create({ prefix: 'vmhb-scale-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
      const dir = mkdtempSync(join(tmpdir(), 'vmhost-scale-'));
      try {
        const file = join(dir, 'host.yaml');
        writeFileSync(file, scaleHostFile(n, kernel));
        const g = ['--netns', lab.ns('host'), '--state-dir', join(dir, 'state')];
        const run = async (label: (typeof COMMANDS)[number], args: string[], want: number[]): Promise<void> => {
          const res = await cli([...g, ...args]);
          if (!want.includes(res.code ?? -1)) throw new Error(`vmhost ${args.join(' ')} (${n} VMs) exited ${res.code}: ${res.stderr.slice(-600)}`);
          times.get(label)!.push(res.ms);
        };
        await run('plan', ['plan', file, '--detailed-exitcode'], [2]);
        await run('apply', ['apply', file], [0]);
        await run('no-op plan', ['plan', file, '--detailed-exitcode'], [0]);
        await run('down', ['down', file], [0]);
      } finally {
        await lab.close();
        rmSync(dir, { recursive: true, force: true });
      }
      await quiesce();
    }
    medians.set(n, new Map(COMMANDS.map((c) => [c, median(times.get(c)!)])));
    o.log(`host scale: ${n} VMs: ${COMMANDS.map((c) => `${c} ${median(times.get(c)!).toFixed(0)} ms`).join(', ')}`);
    // The marginal cost per VM between this size and the previous one: flat when the command is
    // linear in the host's size (the fixed start-up cost of the CLI cancels out).
    const i = o.sizes.indexOf(n);
    const prev = i > 0 ? o.sizes[i - 1]! : undefined;
    for (const c of COMMANDS) {
      const m = medians.get(n)!.get(c)!;
      const row: Row = { section: 'host scale', what: `${c}, ${n} VMs`, tool: 'vmhost CLI', value: m, unit: 'ms', rounds: times.get(c)! };
      if (prev !== undefined) {
        const marginal = (m - medians.get(prev)!.get(c)!) / (n - prev);
        row.note = `${marginal.toFixed(2)} ms per added VM (${prev}→${n})`;
        if (i > 1) {
          const p0 = o.sizes[0]!;
          const p1 = o.sizes[1]!;
          const first = (medians.get(p1)!.get(c)! - medians.get(p0)!.get(c)!) / (p1 - p0);
          row.ratio = marginal / first;
          row.anchor = `marginal ms/VM vs ${p0}→${p1} (1.00 = linear)`;
        }
      }
      rows.push(row);
    }
  }
  return rows;
}
