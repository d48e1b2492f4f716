// Network namespaces for the benchmarks, made with the lab kit (@vmhost/lab's Lab): named
// `vmhb-<tag>-<id>-b` (or a lab of several, `vmhb-<tag>-<id>-<name>`), removed by close(), at
// process exit, and after SIGINT or SIGTERM (the lab's exit hook kills what runs inside and
// deletes the namespace; SIGHUP too: a closed terminal or a stopped session sends it, and
// Node's default for it ends the process without the hooks). What no hook can catch (SIGKILL) or
// what was made by hand with a `vmhb-` name (`ip netns add`, no owner record) is swept by the next
// bench that makes a namespace: the sweep of the whole `vmhb-` prefix removes every such
// namespace whose creating process is gone or was never recorded (a live bench's are kept).
import { spawnSync } from 'node:child_process';
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
