// bench:compare, QMP: `query-status` round trips through @vmhost/kvm's QmpClient against a raw
// Unix socket (JSON lines out, reply lines counted: the floor any client pays), on two monitors
// of one QEMU (-machine none -S), sequential and with 32 in flight, alternated rounds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '@vmhost/kvm';
import { terminate } from '@vmhost/net';
import { clientRun, qemuWithMonitors, rawSession, type Run } from '../lib/qmp.js';
import { median, rotated, type Row } from './stats.js';

/** The QMP rows: ours and the raw socket, sequential and 32 in flight; ratio = ours / raw. */
export async function qmpSection(o: { n: number; rounds: number; log: (s: string) => void }): Promise<Row[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'vmhost-cmp-qmp-'));
  const pids: number[] = [];
  const rows: Row[] = [];
  try {
    const [a, b] = qemuWithMonitors(2, tmp, pids) as [string, string];
    const qmp = await QmpClient.connect({ path: a, timeoutMs: 30_000 });
    const raw = await rawSession(b, '{"execute":"query-status"}\n');
    const sides: Array<{ label: string; run: Run }> = [
      { label: 'raw Unix socket', run: raw.run },
      { label: '@vmhost/kvm QmpClient', run: clientRun(qmp) },
    ];
    for (const s of sides) await s.run(300, 32); // warm-up
    for (const inFlight of [1, 32]) {
      const rates = new Map<string, number[]>(sides.map((s) => [s.label, []]));
      for (let r = 0; r < o.rounds; r++) {
        for (const s of rotated(sides, r)) rates.get(s.label)!.push((o.n / (await s.run(o.n, inFlight))) * 1000);
      }
      const rawRate = median(rates.get('raw Unix socket')!);
      const what = `query-status, ${inFlight === 1 ? 'sequential' : `${inFlight} in flight`}`;
      for (const s of sides) {
        const v = rates.get(s.label)!;
        rows.push({ section: 'QMP', what, tool: s.label, value: median(v), unit: '/s', rounds: v, ratio: median(v) / rawRate, anchor: 'vs raw socket' });
      }
      o.log(`QMP: ${what} done`);
    }
    raw.close();
    await qmp.close();
  } finally {
    for (const pid of pids) await terminate(pid, { signal: 'SIGKILL', waitMs: 2000 }).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}
