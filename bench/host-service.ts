// `vmhost run` (HostService in this process) under fault injection, inside lab namespaces with one
// test guest: the time from a fault made from outside (`ip`, `iptables`, kill -9) to the repair
// event, p50/p95 over N faults of each kind; for a killed QEMU also the time until the guest
// serves again from the `internet` namespace; then the repairs and the CPU used while nothing
// happens for IDLE seconds.
// Usage: npm run bench -- bench/host-service.ts [N] [IDLE_S] [QEMU_N]
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allPids, cmdline, netns } from '@vmhost/net';
import { HostService, down, parseHostFile, plan, type ServiceEvent } from '@vmhost/host';
import { providerLab } from '../integration/helpers/vm-lab.js';

const N = Number(process.argv[2] ?? 20);
const IDLE_S = Number(process.argv[3] ?? 60);
const QEMU_N = Number(process.argv[4] ?? 10);
const ROOT = join(import.meta.dirname, '..');
const GUEST = join(ROOT, '.cache', 'guest');

const text = `name: bench
uplink: eth0
bridge: { name: br0, veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed }
vms:
  - name: web
    mac: "de:ad:be:ef:32:10"
    ipv4: 192.168.0.100
    ipv6: "2001:db8:8:5688::100"
    memoryMiB: 128
    restart: always
    kernel: ${join(GUEST, 'vmlinux')}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=web vmhost.ip6=2001:db8:8:5688::100/64 vmhost.gw6=2001:db8:8:5688::1"
    forwards: [{ port: 1234, toPort: 22 }]
`;

const { lab, host: ns, internet: inet } = await providerLab('vmhl-bsvc-');

const work = mkdtempSync(join(tmpdir(), 'vmhost-bench-svc-'));
const stateDir = join('/run/vmhost-bench-svc', ns);
const opts = { netns: ns, stateDir, dataDir: join(work, 'data') };
const host = parseHostFile(text, { baseDir: ROOT });

const events: ServiceEvent[] = [];
let waiter: { pred: (e: ServiceEvent) => boolean; resolve: (e: ServiceEvent) => void } | undefined;
const stop = new AbortController();
const svc = new HostService(host, {
  ...opts,
  signal: stop.signal,
  // the bench kills the same QEMU many times: no backoff, no crash loop
  tuning: { backoffMs: 0, crashLoopCount: 1_000_000 },
  onEvent: (e) => {
    events.push(e);
    if (e.type === 'error' || e.type === 'give-up') console.error(`(${e.type}: ${e.message})`);
    if (process.env.BENCH_EVENTS) appendFileSync(process.env.BENCH_EVENTS, `${JSON.stringify(e)}\n`);
    if (waiter?.pred(e)) {
      waiter.resolve(e);
      waiter = undefined;
    }
  },
});
const running = svc.run();

/** The first event from `from` on (default: the next) that `pred` takes. */
function next(pred: (e: ServiceEvent) => boolean, from = events.length, ms = 60_000): Promise<ServiceEvent> {
  const seen = events.slice(from).find(pred);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no event')), ms);
    waiter = { pred, resolve: (e) => (clearTimeout(t), resolve(e)) };
  });
}

/**
 * Runs a command in the host's namespace as another tool would: through a shell, so that its
 * parent is not this process (the service takes a generation made by its own children for its own).
 */
async function run(cmd: string, args: string[]): Promise<void> {
  // absolute: busybox's sh would prefer its own applets (its ip has no proxy neighbours)
  const bin = cmd === 'ip' ? '/usr/sbin/ip' : '/usr/sbin/iptables';
  const r = await netns.run(ns, '/bin/busybox', ['sh', '-c', '"$0" "$@"; exit $?', bin, ...args]);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function serves(ms = 120_000): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    const r = await netns.run(inet, '/bin/busybox', ['nc', '-w', '2', '203.0.113.2', '1234'], { input: '', timeoutMs: 5_000 });
    if (r.stdout.includes('SSH-2.0-vmhost-guest')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the guest does not serve');
}

/** Waits until the host is as declared again (the tail of a burst: the bridge's ports, routes, dnsmasq). */
async function settled(): Promise<void> {
  let steps: string[] = [];
  for (let i = 0; i < 300; i++) {
    steps = (await plan(host, opts)).steps.map((s) => s.description);
    if (steps.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the host did not settle: ${steps.join('; ')}`);
}

const qemuPid = (): number | undefined => allPids().find((p) => { const a = cmdline(p); return !!a?.[0]?.includes('qemu-system-') && a.some((x) => x.includes(`${stateDir}/vms/web/`)); });
const dnsmasqPid = (): number => Number(readFileSync(join(stateDir, 'dnsmasq', 'dnsmasq.pid'), 'utf8').trim());
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const show = (name: string, xs: number[]): void => console.log(`${name.padEnd(44)} n=${xs.length}  p50 ${pct(xs, 50).toFixed(0).padStart(6)} ms  p95 ${pct(xs, 95).toFixed(0).padStart(6)} ms  max ${Math.max(...xs).toFixed(0).padStart(6)} ms`);
const repairOf = (id: string) => (e: ServiceEvent): boolean => e.type === 'repair' && (e.steps ?? []).some((s) => s.id === id);

try {
  await next((e) => e.type === 'applied', 0, 180_000);
  await serves();
  const kinds: Array<[string, () => Promise<void>, (e: ServiceEvent) => boolean, ((e: ServiceEvent) => boolean)?]> = [
    // measured to the repair (the network back); then dnsmasq's restart (bound to the old bridge) is waited for
    ['link: bridge deleted', () => run('ip', ['link', 'del', 'br0']), repairOf('link:br0'), (e) => e.type === 'restart' && e.service === 'dnsmasq'],
    ['route: a VM /128 deleted', () => run('ip', ['-6', 'route', 'del', '2001:db8:8:5688::100/128', 'dev', 'br0']), repairOf('route:2001:db8:8:5688::100/128')],
    ['address: the bridge IPv4 deleted', () => run('ip', ['addr', 'del', '192.168.0.1/24', 'dev', 'br0']), repairOf('address:br0:192.168.0.1/24')],
    ['proxy neighbour deleted (table check 1 s)', () => run('ip', ['-6', 'neigh', 'del', 'proxy', '2001:db8:8:5688::100', 'dev', 'eth0']), repairOf('proxyNeighbor:eth0:2001:db8:8:5688::100')],
    ['firewall: iptables -t nat -F', () => run('iptables', ['-t', 'nat', '-F']), repairOf('firewall')],
    ['dnsmasq: kill -9', async () => void process.kill(dnsmasqPid(), 'SIGKILL'), (e) => e.type === 'restart' && e.service === 'dnsmasq'],
  ];
  for (const [name, fault, done, then] of kinds) {
    const xs: number[] = [];
    for (let i = 0; i < N; i++) {
      const from = events.length;
      const wait = next(done);
      const t0 = performance.now();
      await fault();
      await wait;
      xs.push(performance.now() - t0);
      if (then) await next(then, from);
      await settled();
    }
    show(name, xs);
  }
  await serves();
  const back: number[] = [];
  const serving: number[] = [];
  for (let i = 0; i < QEMU_N; i++) {
    const pid = qemuPid();
    if (pid === undefined) throw new Error('no QEMU');
    const wait = next((e) => e.type === 'restart' && e.vm === 'web');
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await wait;
    back.push(performance.now() - t0);
    await serves();
    serving.push(performance.now() - t0);
  }
  show('QEMU kill -9 → QEMU running again', back);
  show('QEMU kill -9 → guest serving from internet', serving);
  const before = events.length;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const actions = events.slice(before).filter((e) => e.type !== 'notice');
  console.log(`idle ${IDLE_S} s: ${actions.length} actions (${actions.map((e) => e.type).join(',') || 'none'}), CPU ${(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(3)}% of a core`);
} finally {
  stop.abort();
  await running.catch((e: unknown) => console.error(e));
  await down(host, opts).catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  await lab.close();
}
