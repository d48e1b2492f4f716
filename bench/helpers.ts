// Network namespaces for the benchmarks, made with the lab kit (@vmhost/lab's Lab): named
// `vmhb-<tag>-<id>-b` (or a lab of several, `vmhb-<tag>-<id>-<name>`), removed by close(), at
// process exit, and after SIGINT or SIGTERM (the lab's exit hook kills what runs inside and
// deletes the namespace); what a crashed run left
// behind (its owner process gone) is swept by the next run of the same bench.
import { Lab, type LabOptions } from '@vmhost/lab';

let signalsHooked = false;

function hookSignals(): void {
  if (!signalsHooked) {
    signalsHooked = true;
    // exit() runs the labs' 'exit' hooks, which remove their namespaces synchronously
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  }
}

/** A fresh namespace for one bench run: its real name, and close() to remove it. */
export async function benchNamespace(tag: string): Promise<{ name: string; close(): Promise<void> }> {
  hookSignals();
  const lab = await Lab.create({ prefix: `vmhb-${tag}-`, namespaces: { b: {} } });
  return { name: lab.ns('b'), close: () => lab.close() };
}

/** A lab of several namespaces for one bench run (prefix `vmhb-<tag>-`), removed like {@link benchNamespace}'s. */
export async function benchLab(tag: string, options: Omit<LabOptions, 'prefix'>): Promise<Lab> {
  hookSignals();
  return Lab.create({ ...options, prefix: `vmhb-${tag}-` });
}
