// Benchmark: QMP `query-status` round trips per second against one real QEMU (-machine none -S)
// serving several QMP monitors, so every contender talks to the same process:
//   - QmpClient of this tree;
//   - with --against=REV, QmpClient as it was at git revision REV (its packages/kvm/src extracted
//     into .cache/, run from there): the "before" figure of the same run;
//   - the raw socket: a bare Unix socket writing `{"execute":"query-status"}\n` and counting reply
//     lines (no ids, no parsing): the floor any client pays, as issue 12 defines it;
//   - the raw socket sending exactly the bytes QmpClient sends (no newline): the client's own cost.
// Sequential and with 32 in flight. Rounds alternate the order of the contenders (forward,
// backward); each figure is the median of the rounds, with the spread (min-max) of the ratios.
// Prints figures and ratios; asserts nothing.
// Run: npm run bench -- bench/kvm-qmp.ts [--n=2000] [--rounds=9] [--against=REV]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { QmpClient } from '@vmhost/kvm';
import { killPid } from '../integration/kvm/helpers.js';
import { clientRun, qemuWithMonitors, rawSession, type Run } from './lib/qmp.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const N = Number(opt('n') ?? 2000);
const ROUNDS = Number(opt('rounds') ?? 9);
const against = opt('against');
const root = resolve(new URL('..', import.meta.url).pathname);
const tmp = mkdtempSync(join(tmpdir(), 'vmhost-bench-'));
const pids: number[] = [];

/** A client class as it was at `rev`: packages/kvm/src extracted under .cache and imported from there. */
async function clientAt(rev: string): Promise<typeof QmpClient> {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: root, encoding: 'utf8' }).trim();
  const dir = join(root, '.cache', `bench-kvm-${sha}`);
  if (!existsSync(join(dir, 'packages/kvm/src/index.ts'))) {
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', sha, 'packages/kvm/src'], { cwd: root, maxBuffer: 64 << 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  const mod = (await import(join(dir, 'packages/kvm/src/qmp/client.ts'))) as { QmpClient: typeof QmpClient };
  return mod.QmpClient;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (perSec: number): string => `${Math.round(perSec).toLocaleString('en')}/s`;

try {
  const contenders: { label: string; run: Run; close: () => Promise<void> | void }[] = [];
  const socks = qemuWithMonitors(against ? 4 : 3, tmp, pids);
  const qmp = await QmpClient.connect({ path: socks[0]!, timeoutMs: 30_000 });
  contenders.push({ label: 'QmpClient (this tree)', run: clientRun(qmp), close: () => qmp.close() });
  if (against) {
    const Old = await clientAt(against);
    const old = await Old.connect({ path: socks[3]!, timeoutMs: 30_000 });
    contenders.push({ label: `QmpClient at ${against}`, run: clientRun(old as unknown as QmpClient), close: () => old.close() });
  }
  const raw = await rawSession(socks[1]!, '{"execute":"query-status"}\n');
  contenders.push({ label: 'raw socket (issue 12 baseline)', ...raw });
  const same = await rawSession(socks[2]!, '{"execute":"query-status"}');
  contenders.push({ label: 'raw socket, the client\'s bytes', ...same });

  console.log(`QMP query-status round trips: one QEMU (-machine none -S) with a QMP monitor per contender; ${ROUNDS} rounds of ${N}, order alternated`);
  for (const c of contenders) await c.run(300, 32); // warm-up
  for (const inFlight of [1, 32]) {
    const rates = contenders.map(() => [] as number[]);
    for (let r = 0; r < ROUNDS; r++) {
      const order = contenders.map((_, i) => i);
      if (r % 2) order.reverse();
      for (const i of order) rates[i]!.push((N / (await contenders[i]!.run(N, inFlight))) * 1000);
    }
    const rawIdx = contenders.findIndex((c) => c.label.startsWith('raw socket (issue'));
    console.log(`  ${inFlight === 1 ? 'sequential' : `${inFlight} in flight`}:`);
    for (const [i, c] of contenders.entries()) {
      const ratios = rates[i]!.map((x, r) => x / rates[rawIdx]![r]!);
      const spread = `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`;
      console.log(`    ${c.label.padEnd(32)} ${fmt(median(rates[i]!)).padStart(9)}   vs raw: median ${median(ratios).toFixed(2)} (rounds ${spread})`);
    }
  }
  console.log(`  dropped replies: ${qmp.stats.droppedReplies}`);
  for (const c of contenders) await c.close();
} finally {
  for (const pid of pids) killPid(pid);
  rmSync(tmp, { recursive: true, force: true });
}
