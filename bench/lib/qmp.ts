// The pieces of the QMP benchmarks (bench/kvm-qmp.ts, bench:compare): a QEMU serving several
// QMP monitors, the raw-socket baseline and a QmpClient run, each timing n round trips of
// `query-status` with a given number in flight.
import { spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import type { QmpClient } from '@vmhost/kvm';

/** One QEMU with `count` QMP monitors; their socket paths. */
export function qemuWithMonitors(count: number, tmp: string, pids: number[]): string[] {
  const socks = Array.from({ length: count }, (_, i) => join(tmp, `qmp${i}.sock`));
  const args = ['-machine', 'none', '-S', '-display', 'none', '-nodefaults', '-no-user-config'];
  for (const s of socks) args.push('-qmp', `unix:${s},server=on,wait=off`);
  const child = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
  pids.push(child.pid!);
  return socks;
}

/** Times `n` round trips with `inFlight` at once; resolves with the milliseconds. */
export type Run = (n: number, inFlight: number) => Promise<number>;

/** The raw baseline: writes `cmd` per command, counts reply lines (no parsing, no ids). */
export async function rawSession(sock: string, cmd: string): Promise<{ run: Run; close: () => void }> {
  let s!: Socket;
  for (;;) {
    try {
      s = await new Promise<Socket>((res, rej) => {
        const c = createConnection({ path: sock });
        c.once('connect', () => res(c));
        c.once('error', rej);
      });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  let onLine: () => void = () => undefined;
  let pending = '';
  s.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      pending = pending.slice(nl + 1);
      onLine();
    }
  });
  await new Promise<void>((r) => (onLine = r)); // greeting
  // The same negotiation as QmpClient: with oob enabled QEMU reads ahead up to 8 queued commands.
  s.write('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n');
  await new Promise<void>((r) => (onLine = r));
  return {
    run: (n, inFlight) =>
      new Promise<number>((resolve) => {
        const t0 = performance.now();
        let sent = 0;
        let got = 0;
        onLine = () => {
          got++;
          if (got === n) resolve(performance.now() - t0);
          else if (sent < n) {
            sent++;
            s.write(cmd);
          }
        };
        for (; sent < Math.min(inFlight, n); sent++) s.write(cmd);
      }),
    close: () => s.destroy(),
  };
}

/** `query-status` through a QmpClient, `inFlight` workers. */
export function clientRun(qmp: QmpClient): Run {
  return async (n, inFlight) => {
    const t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        next++;
        await qmp.execute('query-status');
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    return performance.now() - t0;
  };
}
