// The IPv6 proxy service under abuse, with real traffic: an `inet` namespace whose eth0 holds
// client addresses in several /64s (each /64 one source), a `host` namespace where the service
// listens on 2001:db8::2 and relays to a server on 192.168.0.10 (its lo; the VM's stand-in).
// Proven: the service drops root after binding port 80 (/proc/PID/status), its open-file limit is
// raised (/proc/PID/limits) or, when it cannot be raised far enough (a hard limit of 1024 and no
// CAP_SYS_RESOURCE, or a cap beyond fs.nr_open), the cap lowered to fit; its
// files are 0600 in a 0700 directory with umask 0; one source is held to its limit; a flood from
// a few sources cannot keep a legitimate client out and the route's cap holds (`ss` counts the
// connections to the server); idle, first-byte and lifetime timeouts close connections.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { netns } from '@vmhost/net';
import { connectionBudget, filesNeeded, proxyServiceStats, startProxyService, stopProxyService, type ProxyServiceOptions } from '../../packages/host/src/services/proxy6.js';
import { flood, probe, serve, startProxyWithLimit, until } from '../helpers/tcp.js';

const VM6 = '2001:db8::2';
/** Client address `n` in the /64 `2001:db8:a:<net>::/64`. */
const src = (net: number, n = 1): string => `2001:db8:a:${net.toString(16)}::${n}`;

async function lab(t: TestContext, nets: number): Promise<{ lab: Lab; inet: string; host: string; dir: string }> {
  const addrs = ['2001:db8::100/64'];
  for (let i = 1; i <= nets; i++) addrs.push(`${src(i)}/64`, `${src(i, 2)}/64`);
  const l = await Lab.create({
    prefix: 'vmhl-px6l-',
    namespaces: { inet: {}, host: { addresses: { lo: ['192.168.0.10/32'] } } },
    links: [{ a: { ns: 'inet', name: 'eth0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: addrs, b: [`${VM6}/64`] } }],
    routes: { host: [{ to: '2001:db8:a::/48', dev: 'eth0' }] },
  });
  t.after(() => l.close());
  const dir = mkdtempSync('/tmp/vmht-proxy6l-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { lab: l, inet: l.ns('inet'), host: l.ns('host'), dir: join(dir, 'proxy6') };
}

async function start(t: TestContext, o: ProxyServiceOptions): Promise<number> {
  const r = await startProxyService(o);
  t.after(() => stopProxyService(o.dir));
  return r.pid;
}

/** The fields of /proc/PID/status that say who a process is. */
function identity(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/\s+/g, ' ');
  }
  return out;
}

/** Soft and hard "Max open files" of /proc/PID/limits. */
function fileLimits(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  return line.slice('Max open files'.length).trim().split(/\s+/).slice(0, 2).map(Number);
}

/** Established TCP connections to the server (192.168.0.10:8080) in `ns`, by `ss`: the oracle of what the proxy relays. */
async function relayed(ns: string): Promise<number> {
  const r = await netns.run(ns, 'ss', ['-Htn', 'state', 'established', 'dst', '192.168.0.10', 'dport', '=', ':8080']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

/** Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff): root may raise a hard limit only with it. */
function hasSysResource(): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
  return ((BigInt(`0x${hex}`) >> 24n) & 1n) === 1n;
}

test('after binding port 80 the service runs as nobody with no capabilities; its file limit is raised; its files are 0600, umask 0', async (t) => {
  const { inet, host, dir } = await lab(t, 1);
  await serve(host, '192.168.0.10:8080', { mode: 'http' });
  const umask = process.umask(0);
  t.after(() => process.umask(umask));
  const routes = [{ name: 'web', listen: { address: VM6, port: 80 }, target: { host: '192.168.0.10', port: 8080 } }];
  // the default cap, 4096 connections, needs more than 1024 descriptors
  const want = filesNeeded(4096, 1);
  const pid = await start(t, { dir, netns: host, routes });
  assert.deepEqual(identity(pid), { Uid: '65534 65534 65534 65534', Gid: '65534 65534 65534 65534', Groups: '', CapPrm: '0000000000000000', CapEff: '0000000000000000', CapAmb: '0000000000000000' });
  const [soft, hard] = fileLimits(pid);
  assert.ok(soft! >= want, `soft limit ${soft}, needs ${want}`);
  const r = await probe(inet, { to: VM6, port: 80, from: src(1), count: 5 });
  assert.deepEqual([r.ok, r.failed], [5, 0], JSON.stringify(r.reasons));
  const s = await proxyServiceStats(dir);
  assert.deepEqual([s.pid, s.uid, s.gid, s.fileLimit, s.totals.maxTotalConnections, s.routes[0]!.total], [pid, 65534, 65534, { soft, hard }, 4096, 5]);

  assert.equal(lstatSync(dir).mode & 0o7777, 0o700);
  const files = readdirSync(dir).sort();
  assert.deepEqual(files, ['proxy6.json', 'proxy6.log', 'proxy6.pid', 'proxy6.stats.json']);
  for (const f of files) {
    const st = lstatSync(join(dir, f));
    assert.ok(st.isFile(), f);
    assert.equal((st.mode & 0o7777).toString(8), '600', f);
    assert.equal(st.uid, 0, f);
  }

  // started with 1024 descriptors at most (soft and hard, as under a LimitNOFILE=1024 unit): root
  // raises the hard limit (CAP_SYS_RESOURCE); without that capability the cap is lowered to fit
  await stopProxyService(dir);
  const limited = await startProxyWithLimit({ dir, netns: host, routes }, { soft: 1024, hard: 1024 });
  const s1 = await proxyServiceStats(dir);
  assert.equal(s1.pid, limited);
  if (hasSysResource()) {
    assert.deepEqual(fileLimits(limited), [want, want], 'soft and hard raised');
    assert.equal(s1.totals.maxTotalConnections, 4096);
  } else {
    assert.deepEqual(fileLimits(limited), [1024, 1024], 'no CAP_SYS_RESOURCE: the hard limit stays');
    assert.equal(s1.totals.maxTotalConnections, connectionBudget(1024, 1));
    assert.match(readFileSync(join(dir, 'proxy6.log'), 'utf8'), new RegExp(`open-file limit 1024 \\(hard 1024\\): total connection cap lowered from 4096 to ${connectionBudget(1024, 1)}`));
  }
  assert.equal((await probe(inet, { to: VM6, port: 80, from: src(1), count: 2 })).ok, 2);

  // a cap that no file limit can hold (beyond fs.nr_open: the hard limit cannot be raised so far,
  // not even by root) is lowered to what the limit allows, and said so
  const big = await start(t, { dir, netns: host, routes, maxTotalConnections: 1_000_000 });
  const s2 = await proxyServiceStats(dir);
  assert.equal(s2.pid, big);
  assert.deepEqual(fileLimits(big), [s2.fileLimit.soft, s2.fileLimit.hard]);
  assert.ok(s2.fileLimit.soft < filesNeeded(1_000_000, 1));
  assert.equal(s2.totals.maxTotalConnections, connectionBudget(s2.fileLimit.soft, 1));
  assert.match(readFileSync(join(dir, 'proxy6.log'), 'utf8'), /total connection cap lowered from 1000000 to \d+/);
  assert.equal((await probe(inet, { to: VM6, port: 80, from: src(1), count: 2 })).ok, 2);
});

test('one source (a /64, two addresses) is held to maxConnectionsPerSource; another source is served', async (t) => {
  const { inet, host, dir } = await lab(t, 2);
  await serve(host, '192.168.0.10:8080', { mode: 'http' });
  await start(t, { dir, netns: host, maxConnectionsPerSource: 5, routes: [{ listen: { address: VM6, port: 8080 }, target: { host: '192.168.0.10', port: 8080 } }] });
  const f = flood(inet, { to: VM6, port: 8080, from: [src(1, 1), src(1, 2)], conns: 12, payload: 'GET / HTTP/1.1\\r\\n' });
  t.after(() => f.stop());
  // a refused connection is reset right after the handshake: the client may see it connect first or not
  await until(async () => {
    const s = await f.status();
    return s.opened + s.refused === 12 && s.closed + s.refused === 7 && s.live === 5;
  }, '12 connections made, 7 reset, 5 left open');
  const r = await probe(inet, { to: VM6, port: 8080, from: src(2), count: 10, concurrency: 2 });
  assert.deepEqual([r.ok, r.failed], [10, 0], JSON.stringify(r.reasons));
  await until(async () => (await relayed(host)) === 5, 'the server sees the 5 held connections only');
  const s = (await proxyServiceStats(dir)).routes[0]!;
  assert.deepEqual([s.active, s.refused, s.sourceLimited, s.total], [5, 7, 7, 15]);
});

test('a flood from five sources keeps the route full, yet every legitimate request gets through; the cap holds', async (t) => {
  const { inet, host, dir } = await lab(t, 6);
  await serve(host, '192.168.0.10:8080', { mode: 'http' });
  await start(t, { dir, netns: host, maxConnections: 20, routes: [{ listen: { address: VM6, port: 8080 }, target: { host: '192.168.0.10', port: 8080 } }] });
  // slowloris from 5 /64s, 100 connections, each reopened 10 ms after it is closed
  const f = flood(inet, { to: VM6, port: 8080, from: [1, 2, 3, 4, 5].map((n) => src(n)), conns: 100, payload: 'GET / HTTP/1.1\\r\\n', trickleMs: 1000, reconnectMs: 10 });
  t.after(() => f.stop());
  await until(async () => (await relayed(host)) === 20, 'the flood fills the route');
  const r = await probe(inet, { to: VM6, port: 8080, from: src(6), count: 30, concurrency: 2, timeoutMs: 10_000 });
  assert.deepEqual([r.ok, r.failed], [30, 0], JSON.stringify(r.reasons));
  for (let i = 0; i < 5; i++) {
    const n = await relayed(host);
    assert.ok(n <= 20, `${n} connections relayed to the server, cap 20`);
    const s = (await proxyServiceStats(dir)).routes[0]!;
    assert.ok(s.active <= 20, `active ${s.active}`);
  }
  const s = (await proxyServiceStats(dir)).routes[0]!;
  // the route was full when the first request came: it took an attacker's place
  assert.ok(s.evicted >= 1, `evicted ${s.evicted}`);
  assert.ok(s.refused > 0, 'the biggest holders were refused');
  const fs = await f.status();
  assert.ok(fs.opened + fs.refused > 100, 'the flood went on');
});

test('timeouts: no first byte either way, idle, lifetime; a server banner counts as the first byte', async (t) => {
  const { inet, host, dir } = await lab(t, 3);
  await serve(host, '192.168.0.10:8080', { mode: 'http' });
  await serve(host, '192.168.0.10:2525', { mode: 'silent', banner: '220 smtp ready' });
  await start(t, {
    dir,
    netns: host,
    firstByteTimeoutMs: 1000,
    idleTimeoutMs: 2500,
    maxLifetimeMs: 5000,
    routes: [
      { name: 'web', listen: { address: VM6, port: 8080 }, target: { host: '192.168.0.10', port: 8080 } },
      { name: 'smtp', listen: { address: VM6, port: 25 }, target: { host: '192.168.0.10', port: 2525 } },
    ],
  });
  const mute = flood(inet, { to: VM6, port: 8080, from: [src(1)], conns: 2 }); // sends nothing
  const waits = flood(inet, { to: VM6, port: 25, from: [src(2)], conns: 2 }); // waits for the banner, sends nothing
  const trickles = flood(inet, { to: VM6, port: 8080, from: [src(3)], conns: 2, payload: 'GET / HTTP/1.1\\r\\n', trickleMs: 200 });
  t.after(() => Promise.all([mute.stop(), waits.stop(), trickles.stop()]));
  for (const f of [mute, waits, trickles]) {
    await until(async () => {
      const s = await f.status();
      return s.opened === 2 && s.live === 0;
    }, 'both connections opened and closed by the proxy', 20_000);
  }
  const [web, smtp] = (await proxyServiceStats(dir)).routes;
  assert.deepEqual(web!.timeouts, { firstByte: 2, idle: 0, lifetime: 2 });
  assert.deepEqual(smtp!.timeouts, { firstByte: 0, idle: 2, lifetime: 0 });
  assert.equal(await relayed(host), 0);
});
