// Network namespaces for the benchmarks, made with the lab kit (@vmhost/lab's Lab): named
// `vmhb-<tag>-<id>-b` (or a lab of several, `vmhb-<tag>-<id>-<name>`), removed by close(), at
// process exit, and after SIGINT or SIGTERM (the lab's exit hook kills what runs inside and
// deletes the namespace; SIGHUP too: a closed terminal or a stopped session sends it, and
// Node's default for it ends the process without the hooks). What no hook can catch (SIGKILL) or
// what was made by hand with a `vmhb-` name (`ip netns add`, no owner record) is swept by the next
// bench that makes a namespace: the sweep of the whole `vmhb-` prefix removes every such
// namespace whose creating process is gone or was never recorded (a live bench's are kept).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Lab, type LabOptions } from '@vmhost/lab';

let signalsHooked = false;
let swept = false;

async function prepare(): Promise<void> {
  if (!signalsHooked) {
    signalsHooked = true;
    // exit() runs the labs' 'exit' hooks, which remove their namespaces synchronously
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));
  }
  if (!swept) {
    swept = true;
    const left = await Lab.sweep('vmhb-');
    if (left.length) console.error(`bench: removed namespaces earlier runs left behind: ${left.join(', ')}`);
  }
}

/** A fresh namespace for one bench run: its real name, and close() to remove it. */
export async function benchNamespace(tag: string): Promise<{ name: string; close(): Promise<void> }> {
  await prepare();
  const lab = await Lab.create({ prefix: `vmhb-${tag}-`, namespaces: { b: {} } });
  return { name: lab.ns('b'), close: () => lab.close() };
}

/** A lab of several namespaces for one bench run (prefix `vmhb-<tag>-`), removed like {@link benchNamespace}'s. */
export async function benchLab(tag: string, options: Omit<LabOptions, 'prefix'>): Promise<Lab> {
  await prepare();
  return Lab.create({ ...options, prefix: `vmhb-${tag}-` });
}

/**
 * Makes sure the `vmhost` bin (packages/host/dist/vmhost.js, bundled from dist/) is as new as the
 * built modules: a bench of the CLI after `tsc -b` alone would time an older bundle.
 */
export function freshCliBundle(): void {
  const script = join(import.meta.dirname, '..', 'scripts', 'bundle-cli.mjs');
  if (spawnSync(process.execPath, [script, '--check'], { stdio: 'ignore' }).status === 0) return;
  const r = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('bundling the vmhost bin failed (scripts/bundle-cli.mjs)');
}

/** Preloaded into a CLI's process by {@link runCli}: writes its own CPU time (user + system, ms) to fd 3 at exit. */
const CPU_PROBE = `data:text/javascript,${encodeURIComponent("import { writeSync } from 'node:fs'; process.on('exit', () => { const r = process.resourceUsage(); try { writeSync(3, String((r.userCPUTime + r.systemCPUTime) / 1000)); } catch {} });")}`;

/** The CLI processes running now, killed (by pid) when the bench exits: they would go on in a namespace being deleted. */
const runningClis = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of runningClis) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/**
 * One run of a built `vmhost` (`cli`: its path) with `args`: the wall time, the CLI process's own
 * CPU time (user + system; not its children's), its exit code and standard error. `nodeFlags` go
 * to its node (`--cpu-prof`, V8 flags).
 */
export function runCli(cli: string, args: readonly string[], nodeFlags: readonly string[] = []): Promise<{ ms: number; cpu: number; code: number | null; stderr: string }> {
  return new Promise((res, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', CPU_PROBE, ...nodeFlags, cli, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    runningClis.add(child);
    let stderr = '';
    let cpu = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (cpu += d.toString()));
    child.on('error', (e) => {
      runningClis.delete(child);
      reject(e);
    });
    child.on('close', (code) => {
      runningClis.delete(child);
      res({ ms: performance.now() - t0, cpu: Number(cpu), code, stderr });
    });
  });
}
