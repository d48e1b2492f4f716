// Benchmark of per-VM bandwidth through the engine (issue 15 §3): two test guests, each with
// `bandwidth: { toVm: R, fromVm: R }`, R = 10 and 100 Mbit/s; a bulk TCP transfer from the
// `internet` namespace to a VM (its discard service, timed by the sender from connect to the VM's
// close: every byte delivered) and from it (its chargen service, timed by the receiver), first to
// one VM alone, then to both at once (one VM at full rate must leave the other's rate intact).
// Achieved TCP payload against the configured rate (goal: within ±10%; Ethernet, IP and TCP
// headers take 4.4% of full-size frames). Unshaped for reference. A lab (`vmhb-bw-*`), removed
// afterwards.
//
//   npm run bench -- bench/host-bandwidth.ts [seconds=5] [rounds=3]
//
// Prints figures; asserts nothing.
import { apply, down, parseHostFile, type ResolvedHost } from '@vmhost/host';
import { receiveBulk, sendBulk, type Transfer } from '../integration/helpers/guest-bulk.js';
import { consoleLine, consoleOf, guestLines, NET, ROOT, vmLab } from '../integration/helpers/vm-lab.js';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 3);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130)); // the lab's exit hook cleans up

const PORTS = { a: { discard: 9009, chargen: 1919 }, b: { discard: 9010, chargen: 1920 } } as const;
function hostText(mbit: number | undefined): string {
  const bw = mbit === undefined ? '' : `    bandwidth: { toVm: ${mbit}mbit, fromVm: ${mbit}mbit }\n`;
  const vm = (name: 'a' | 'b', n: number): string => `  - name: ${name}
    ipv4: 192.168.0.${n}
    memoryMiB: 128
    forwards: [{ port: ${PORTS[name].discard}, toPort: 9 }, { port: ${PORTS[name].chargen}, toPort: 19 }]
${bw}${guestLines(name)}
`;
  return `name: bwbench
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
vms:
${vm('a', 10)}${vm('b', 11)}`;
}

const median = (xs: number[]): number => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
const env = await vmLab(undefined, 'vmhb-bw-');
let host: ResolvedHost | undefined;
try {
  const run = (vm: 'a' | 'b', dir: 'toVm' | 'fromVm', mbit: number): Promise<Transfer> =>
    dir === 'toVm' ? sendBulk(env.internet, NET.host4, PORTS[vm].discard, Math.round((mbit * 1e6 * SECONDS) / 8)) : receiveBulk(env.internet, NET.host4, PORTS[vm].chargen, SECONDS);
  const fmt = (mbit: number | undefined, xs: number[]): string =>
    `${median(xs).toFixed(2).padStart(8)} Mbit/s${mbit === undefined ? '' : `, ${((median(xs) / mbit - 1) * 100).toFixed(1).padStart(5)}%`} (runs ${xs.map((x) => x.toFixed(2)).join(', ')})`;
  console.log(`bulk TCP, ${SECONDS} s per transfer, median of ${ROUNDS}; achieved TCP payload vs configured (load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`);
  for (const mbit of [undefined, 10, 100]) {
    host = parseHostFile(hostText(mbit), { baseDir: ROOT });
    await apply(host, env.opts);
    for (const vm of ['a', 'b']) await consoleLine(consoleOf(env.opts, vm), 'VMHOST-GUEST: ready');
    for (const dir of ['toVm', 'fromVm'] as const) {
      const alone: number[] = [];
      const both: Record<'a' | 'b', number[]> = { a: [], b: [] };
      for (let r = 0; r < ROUNDS; r++) {
        alone.push((await run('a', dir, mbit ?? 1000)).mbit);
        if (mbit === undefined) continue;
        const [x, y] = await Promise.all([run('a', dir, mbit), run('b', dir, mbit)]);
        both.a.push(x.mbit);
        both.b.push(y.mbit);
      }
      const label = mbit === undefined ? 'unshaped' : `${mbit} Mbit/s`;
      console.log(`${label.padEnd(11)} ${dir.padEnd(6)} a alone      ${fmt(mbit, alone)}`);
      if (mbit !== undefined) {
        console.log(`${''.padEnd(11)} ${dir.padEnd(6)} a, b at once ${fmt(mbit, both.a)}`);
        console.log(`${''.padEnd(11)} ${''.padEnd(6)}              ${fmt(mbit, both.b)}`);
      }
    }
  }
} finally {
  if (host) await down(host, env.opts).catch((e: unknown) => console.error('down failed:', e));
  await env.lab.close();
}
