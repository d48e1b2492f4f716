// Benchmark (issue 3 §7), in one run:
//   A. QMP `query-status` round trips per second against a real QEMU (-machine none -S):
//      @vmhost/kvm's QmpClient vs a raw-socket baseline (a bare Unix socket writing JSON lines and
//      counting reply lines: the floor any client pays), each sequential and with 32 in flight.
//   B. Seconds from Vm.start() to the test guest's TCP service answering (TCG here; KVM where
//      `accel: 'auto'` finds a usable one), and to the console's "ready" marker, in a fresh `vmhb-`
//      namespace removed afterwards.
// Prints figures and ratios; asserts nothing.
// Run: npm run bench -- bench/kvm-qmp.ts [--n=5000] [--boots=3] [--no-boot]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, Vm } from '@vmhost/kvm';
import { benchNamespace } from './helpers.js';
import { guest, guestVmOptions, killPid, makeBridge, startDnsmasq, waitForConsole, waitForHttp } from '../integration/kvm/helpers.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => Number(argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const N = opt('n', 5000);
const BOOTS = opt('boots', 3);
const noBoot = argv.includes('--no-boot');
const tmp = mkdtempSync(join(tmpdir(), 'vmhost-bench-'));
const pids: number[] = [];

function bareQemu(tag: string): { sock: string; alive: () => boolean; pid: number } {
  const sock = join(tmp, `${tag}.sock`);
  const child = spawn('qemu-system-x86_64', ['-machine', 'none', '-S', '-display', 'none', '-nodefaults', '-no-user-config', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  let alive = true;
  child.on('exit', () => (alive = false));
  pids.push(child.pid!);
  return { sock, alive: () => alive, pid: child.pid! };
}

/** The baseline: a raw socket, JSON lines out, reply lines counted (no parsing, no ids). */
async function rawSession(sock: string, oob: boolean): Promise<{ run: (n: number, inFlight: number) => Promise<number>; close: () => void }> {
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
  // The same negotiation as QmpClient: with oob enabled QEMU reads ahead up to 8 queued commands
  // (without it, it reads the next only after answering), which is what lets pipelining pay off.
  s.write(`{"execute":"qmp_capabilities","arguments":{"enable":[${oob ? '"oob"' : ''}]}}\n`);
  await new Promise<void>((r) => (onLine = r));
  const cmd = '{"execute":"query-status"}\n';
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

async function clientRun(qmp: QmpClient, n: number, inFlight: number): Promise<number> {
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
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString('en')}/s`;
}

async function qmpBench(): Promise<void> {
  console.log(`A. QMP query-status round trips, ${N} each, QEMU ${'-machine none -S'}`);
  const a = bareQemu('client');
  const qmp = await QmpClient.connect({ path: a.sock, timeoutMs: 30_000, isAlive: a.alive });
  const b = bareQemu('raw');
  const raw = await rawSession(b.sock, true);
  const c2 = bareQemu('raw-nooob');
  const rawNoOob = await rawSession(c2.sock, false);
  await clientRun(qmp, 200, 32); // warm-up
  await raw.run(200, 32);
  await rawNoOob.run(200, 32);
  const rows: [string, number, number, number][] = [];
  for (const inFlight of [1, 32]) {
    const c = await clientRun(qmp, N, inFlight);
    const r = await raw.run(N, inFlight);
    const r2 = await rawNoOob.run(N, inFlight);
    rows.push([inFlight === 1 ? 'sequential' : '32 in flight', c, r, r2]);
  }
  for (const [label, c, r, r2] of rows) {
    console.log(`  ${label.padEnd(13)} QmpClient ${rate(N, c).padStart(9)}   raw socket ${rate(N, r).padStart(9)}   client/raw ${(r / c).toFixed(2)}   (raw without oob ${rate(N, r2)})`);
  }
  rawNoOob.close();
  console.log(`  dropped replies: ${qmp.stats.droppedReplies}`);
  await qmp.close();
  raw.close();
}

async function bootBench(): Promise<void> {
  const space = await benchNamespace('kvm');
  const ns = space.name;
  try {
    await makeBridge(ns, ['tap-bench']);
    const dir = join(tmp, 'boot');
    const mkVm = (): Vm => new Vm(guestVmOptions('bench', dir, { netns: ns, nics: [{ tap: 'tap-bench' }] }));
    const first = mkVm();
    const dns = startDnsmasq(undefined, ns, tmp, { [first.options.nics[0]!.mac]: '198.51.100.40' });
    pids.push(dns.pid!);
    console.log(`B. start() to the guest's TCP service answering (${first.accel.accel}: ${first.accel.reason}), ${BOOTS} boots`);
    const tcp: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      rmSync(join(dir, 'console.log'), { force: true });
      const vm = mkVm();
      const t0 = performance.now();
      await vm.start({ timeoutMs: 60_000 });
      pids.push(vm.pid!);
      const tStarted = performance.now() - t0;
      const readyP = waitForConsole(vm.options.console!.file, guest().markers.ready, 180_000, () => vm.running).then(() => performance.now() - t0);
      await waitForHttp(ns, 'http://198.51.100.40/', 180_000);
      const tTcp = performance.now() - t0;
      const tReady = await readyP;
      const stop = await vm.stop({ timeoutMs: 30_000 });
      tcp.push(tTcp);
      console.log(`  boot ${i + 1}: start() resolved ${(tStarted / 1000).toFixed(2)} s, console ready ${(tReady / 1000).toFixed(2)} s, TCP answered ${(tTcp / 1000).toFixed(2)} s; stop by ${stop.step} in ${(stop.durationMs / 1000).toFixed(2)} s`);
    }
    tcp.sort((x, y) => x - y);
    console.log(`  start() to TCP: median ${(tcp[Math.floor(tcp.length / 2)]! / 1000).toFixed(2)} s, min ${(tcp[0]! / 1000).toFixed(2)} s, max ${(tcp[tcp.length - 1]! / 1000).toFixed(2)} s`);
  } finally {
    await space.close(); // kills QEMU and dnsmasq if still inside, deletes the namespace
  }
}

try {
  await qmpBench();
  if (!noBoot) await bootBench();
} finally {
  for (const pid of pids) killPid(pid);
  rmSync(tmp, { recursive: true, force: true });
}
