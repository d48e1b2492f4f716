// Benchmark of the plan-B IPv6 proxy under abuse (issue 10 item 6): legitimate success rate and
// latency (p50/p99; 10 clients in their own /64s, one request at a time each) while (a) one source holds slowloris connections, (b) 50 sources do, (c) 810
// idle connections from 50 sources sit on three other ports; for the proxy of `main` (before,
// or any git ref) and of this tree (after), each started with an open-file limit of 1024/1024 (a
// LimitNOFILE=1024 unit, as in the issue) and with this process's own limit.
//
// Lab (vmhb-px6-*): inet (attackers 2001:db8:a:N::1 in 50 /64s, the legitimate clients
// 2001:db8:b:N::1 in 10 more) — host (the proxy on 2001:db8::2, ports 8080-8083, its own process as the
// service runs) — vm (an HTTP server on 192.168.0.10:8080-8083, standing in for the VM). The
// traffic comes from integration/helpers/tcp-tools.mjs processes in the namespaces.
//
// Then the relay's own cost, before and after, in this process on loopback (TcpProxy from
// 127.0.0.1 to an echo server): connect + 1-byte echo, 2000 sequential (median, p99), and a
// 256 MiB upload on one connection.
//
// Prints figures; asserts nothing.
//   npm run bench -- bench/host-proxy6-abuse.ts [--before-ref=main] [--requests=200] [--ramp-ms=3000] [--only=after]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noFileLimit, type NoFileLimit } from '@vmhost/net';
import { benchLab } from './helpers.js';
import { flood, probe, serve, startProxyWithLimit, type FloodOptions } from '../integration/helpers/tcp.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const BEFORE_REF = arg('before-ref', 'main');
const REQUESTS = Number(arg('requests', '200'));
const RAMP_MS = Number(arg('ramp-ms', '3000'));
const ONLY = arg('only', '');
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VM6 = '2001:db8::2';
/** Ten legitimate clients, each in a /64 of its own, one request at a time each. */
const LEGIT = Array.from({ length: 10 }, (_, i) => `2001:db8:b:${i + 1}::1`);
const attackers = Array.from({ length: 50 }, (_, i) => `2001:db8:a:${(i + 1).toString(16)}::1`);
const PORTS = [8080, 8081, 8082, 8083];
const SLOWLORIS = 'GET / HTTP/1.1\\r\\nHost: vm\\r\\n';

type Attack = Array<Omit<FloodOptions, 'to'>>;
const scenarios: Array<{ name: string; attack: Attack }> = [
  { name: 'no attack', attack: [] },
  { name: '(a) slowloris, 1 source, 300 conns', attack: [{ port: 8080, from: [attackers[0]!], conns: 300, payload: SLOWLORIS, trickleMs: 10_000, reconnectMs: 250 }] },
  { name: '(b) slowloris, 50 sources, 500 conns', attack: [{ port: 8080, from: attackers, conns: 500, payload: SLOWLORIS, trickleMs: 10_000, reconnectMs: 250 }] },
  { name: '(c) 810 idle conns, 50 sources, ports 8081-3', attack: PORTS.slice(1).map((port) => ({ port, from: attackers, conns: 270, reconnectMs: 250 })) },
];

/** main's (or `ref`'s) packages/host/src, extracted next to a node_modules link to this tree's: the module path of its proxy6.ts. */
function extractBefore(ref: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const tar = join(dir, 'src.tar');
  const a = spawnSync('git', ['-C', ROOT, 'archive', '-o', tar, ref, 'packages/host/src'], { encoding: 'utf8' });
  if (a.status !== 0) throw new Error(`git archive ${ref}: ${a.stderr}`);
  const x = spawnSync('tar', ['-xf', tar, '-C', dir], { encoding: 'utf8' });
  if (x.status !== 0) throw new Error(`tar: ${x.stderr}`);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'packages/host/src/services/proxy6.ts');
}

const pct = (xs: number[], p: number): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
const ms = (n: number): string => (Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(1) : n.toFixed(0));
const sleep = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));

/** Minimal view of TcpProxy that both versions have. */
interface AnyProxy {
  stats(): Array<{ listen: { port: number } }>;
  close(): Promise<void>;
}

/** Connect + 1-byte echo (sequential) and a bulk upload through `module`'s TcpProxy on loopback. */
async function overhead(module: string): Promise<{ median: number; p99: number; gbits: number }> {
  const { TcpProxy } = (await import(module)) as { TcpProxy: { listen(o: object): Promise<AnyProxy> } };
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const target = (server.address() as { port: number }).port;
  const proxy = await TcpProxy.listen({ routes: [{ listen: { address: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: target } }] });
  const port = proxy.stats()[0]!.listen.port;
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    const c: Socket = connect({ host: '127.0.0.1', port });
    await once(c, 'connect');
    c.write('x');
    await once(c, 'data');
    times.push(performance.now() - t0);
    c.destroy();
  }
  const c = connect({ host: '127.0.0.1', port });
  await once(c, 'connect');
  const total = 256 << 20;
  const chunk = Buffer.alloc(1 << 20);
  let got = 0;
  const t0 = performance.now();
  const done = new Promise<void>((r) =>
    c.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= total) r();
    }),
  );
  for (let sent = 0; sent < total; sent += chunk.length) if (!c.write(chunk)) await once(c, 'drain');
  await done;
  const gbits = (total * 8) / ((performance.now() - t0) / 1000) / 1e9;
  c.destroy();
  await proxy.close();
  server.close();
  return { median: pct(times, 50), p99: pct(times, 99), gbits };
}

const tmp = mkdtempSync(join(tmpdir(), 'vmhost-bench-px6-'));
const lab = await benchLab('px6', {
  namespaces: { inet: {}, host: { sysctls: { 'net.ipv4.ip_forward': 0 } }, vm: {} },
  links: [
    { a: { ns: 'inet', name: 'eth0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['2001:db8::100/64', ...LEGIT.map((a) => `${a}/64`), ...attackers.map((a) => `${a}/64`)], b: [`${VM6}/64`] } },
    { a: { ns: 'host', name: 'eth1' }, b: { ns: 'vm', name: 'eth0' }, addresses: { a: ['192.168.0.1/24'], b: ['192.168.0.10/24'] } },
  ],
  routes: { host: [{ to: '2001:db8:a::/48', dev: 'eth0' }, { to: '2001:db8:b::/48', dev: 'eth0' }] },
});
try {
  const [inet, host, vm] = [lab.ns('inet'), lab.ns('host'), lab.ns('vm')];
  for (const port of PORTS) await serve(vm, `192.168.0.10:${port}`, { mode: 'http' });
  const own = noFileLimit();
  const variants: Array<{ name: string; module: string; limit: NoFileLimit }> = [];
  if (ONLY !== 'after') {
    const before = extractBefore(BEFORE_REF, join(tmp, 'before'));
    variants.push({ name: `before (${BEFORE_REF}), 1024/1024`, module: before, limit: { soft: 1024, hard: 1024 } });
    variants.push({ name: `before (${BEFORE_REF}), ${own.soft}/${own.hard}`, module: before, limit: own });
  }
  const after = join(ROOT, 'packages/host/src/services/proxy6.ts');
  variants.push({ name: 'after, 1024/1024', module: after, limit: { soft: 1024, hard: 1024 } });
  variants.push({ name: `after, ${own.soft}/${own.hard}`, module: after, limit: own });
  console.log(
    `proxy6 abuse bench: ${REQUESTS} legitimate HTTP requests to port 8080 from ${LEGIT.length} clients (own /64 each, one at a time, 3 s timeout) after a ${RAMP_MS} ms ramp; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
  const rows: string[][] = [['proxy', 'scenario', 'ok', 'p50 ms', 'p99 ms', 'attack conns live', 'proxy fds', 'proxy limit', 'evicted/refused']];
  let run = 0;
  for (const v of variants) {
    for (const sc of scenarios) {
      const dir = join(tmp, `run${run++}`);
      mkdirSync(dir);
      const routes = PORTS.map((port) => ({ name: `vm:${port}`, listen: { address: VM6, port }, target: { host: '192.168.0.10', port } }));
      const pid = await startProxyWithLimit({ dir: join(dir, 'proxy6'), netns: host, routes }, v.limit, v.module);
      const floods = sc.attack.map((a) => flood(inet, { to: VM6, ...a }));
      await sleep(sc.attack.length ? RAMP_MS : 200);
      const live = (await Promise.all(floods.map((f) => f.status()))).reduce((n, s) => n + s.live, 0);
      const r = await probe(inet, { to: VM6, port: 8080, from: LEGIT, count: REQUESTS, timeoutMs: 3000 });
      const fds = readdirSync(`/proc/${pid}/fd`).length;
      const limit = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
      let evictions = '-';
      if (v.module === after) {
        const { proxyServiceStats } = await import(v.module);
        const s = (await proxyServiceStats(join(dir, 'proxy6'))) as { totals: { maxTotalConnections: number }; routes: Array<{ evicted: number; refused: number }> };
        evictions = `${s.routes.reduce((n, x) => n + x.evicted, 0)}/${s.routes.reduce((n, x) => n + x.refused, 0)} (cap ${s.totals.maxTotalConnections})`;
      }
      await Promise.all(floods.map((f) => f.stop()));
      const { stopProxyService } = (await import(v.module)) as { stopProxyService(dir: string): Promise<boolean> };
      await stopProxyService(join(dir, 'proxy6'));
      const row = [v.name, sc.name, `${r.ok}/${REQUESTS}`, ms(pct(r.latencies, 50)), ms(pct(r.latencies, 99)), String(live), String(fds), limit ? `${limit[1]}/${limit[2]}` : '?', evictions];
      rows.push(row);
      console.log(`${row.join(' | ')}${r.failed ? `  failures: ${JSON.stringify(r.reasons)}` : ''}`);
      await sleep(500);
    }
  }
  console.log('');
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
  console.log(`\nrelay cost on loopback (in this process; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}):`);
  for (const m of [...new Set(variants.map((v) => v.module))]) {
    const o = await overhead(m);
    console.log(`  ${m === after ? 'after ' : 'before'}: connect + 1-byte echo median ${(o.median * 1000).toFixed(0)} µs, p99 ${(o.p99 * 1000).toFixed(0)} µs; 256 MiB upload ${o.gbits.toFixed(1)} Gbit/s`);
  }
} finally {
  await lab.close();
  rmSync(tmp, { recursive: true, force: true });
}
