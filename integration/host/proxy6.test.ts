// The IPv6 proxy service in a namespace: busybox httpd on an IPv4 address, the proxy on an IPv6
// address, busybox wget over IPv6 gets the page; start is idempotent, a changed config restarts,
// an unassigned address is an early exit with the service's stderr, a silent target hits the
// connect timeout, stop leaves no process.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rtnl, netns } from '@vmhost/net';
import { freshNetns, sh } from '../helpers/ns.js';
import { ProxyServiceError } from '../../packages/host/src/errors.js';
import {
  proxyServiceStats,
  proxyServiceStatus,
  startProxyService,
  stopProxyService,
  type ProxyRouteStats,
  type ProxyServiceOptions,
} from '../../packages/host/src/services/proxy6.js';
import { procStat } from '@vmhost/net';

async function lab(t: TestContext): Promise<{ ns: string; dir: string; options: ProxyServiceOptions; httpdPid: number }> {
  const ns = await freshNetns(t, 'px6');
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.set('lo', { up: true });
    // eth0 plays the uplink (the VM's public IPv6), eth1 the bridge side (the VM's IPv4)
    await h.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth1' } });
    await h.links.set('eth1', { up: true });
    await h.addresses.add('eth0', '2001:db8::2/64', { nodad: true });
    await h.addresses.add('eth1', '192.168.0.10/24');
  } finally {
    h.close();
  }
  const dir = mkdtempSync('/tmp/vmht-proxy6-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const www = join(dir, 'www');
  mkdirSync(www);
  writeFileSync(join(www, 'index.html'), 'hello from the VM\n');
  const httpd = netns.spawn(ns, '/bin/busybox', ['httpd', '-f', '-p', '192.168.0.10:8080', '-h', www], { stdio: 'ignore' });
  await new Promise((r) => httpd.once('spawn', r));
  t.after(() => httpd.kill('SIGKILL'));
  // wait for httpd to listen
  for (let i = 0; i < 200; i++) {
    if ((await netns.run(ns, '/bin/busybox', ['wget', '-q', '-O-', 'http://192.168.0.10:8080/'])).code === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const options: ProxyServiceOptions = {
    dir: join(dir, 'proxy6'),
    netns: ns,
    routes: [{ name: 'web:8080', listen: { address: '2001:db8::2', port: 8080 }, target: { host: '192.168.0.10', port: 8080 } }],
  };
  return { ns, dir, options, httpdPid: httpd.pid! };
}

/**
 * The processes in `ns`, leaving out the short-lived children busybox httpd forks per connection
 * (one may still be closing a connection of an earlier request).
 */
async function pidsBut(ns: string, httpdPid: number): Promise<number[]> {
  return (await netns.pids(ns)).filter((pid) => {
    const ppid = procStat(pid)?.ppid; // undefined: gone meanwhile
    return pid === httpdPid || (ppid !== undefined && ppid !== httpdPid);
  });
}

/**
 * Checks that the processes in `ns` are httpd plus the service `pid` and the processes of its own
 * process group (the service runs detached as a group leader; from source, tsx may keep an
 * esbuild helper in that group while it compiles), and nothing else.
 */
async function assertOnlyHttpdAndService(ns: string, httpdPid: number, pid: number): Promise<void> {
  const procs = await pidsBut(ns, httpdPid);
  assert.ok(procs.includes(httpdPid), `httpd ${httpdPid} runs: ${procs.join(' ')}`);
  assert.ok(procs.includes(pid), `the service ${pid} runs: ${procs.join(' ')}`);
  assert.equal(procStat(pid)?.pgid, pid, 'the service leads its own process group');
  const strays = procs.filter((p) => p !== httpdPid && (procStat(p)?.pgid ?? pid) !== pid);
  assert.deepEqual(strays, [], 'no process in the namespace outside httpd and the service');
}

async function stats(dir: string, pid: number): Promise<ProxyRouteStats[]> {
  const s = await proxyServiceStats(dir);
  assert.equal(s.pid, pid);
  return s.routes;
}

test('wget over IPv6 reaches the IPv4 target through the proxy service; restart on change; stop leaves no process', async (t) => {
  const { ns, options, httpdPid } = await lab(t);
  const t0 = performance.now();
  const a = await startProxyService(options);
  t.diagnostic(`proxy service start-to-ready: ${(performance.now() - t0).toFixed(0)} ms`);
  assert.deepEqual({ restarted: a.restarted, changed: a.changed }, { restarted: false, changed: true });
  await assertOnlyHttpdAndService(ns, httpdPid, a.pid);
  assert.equal(readFileSync(join(options.dir, 'proxy6.pid'), 'utf8').trim(), String(a.pid));
  assert.deepEqual(proxyServiceStatus(options.dir), { running: true, pid: a.pid, configHash: proxyServiceStatus(options.dir).configHash });

  const page = await sh(ns, '/bin/busybox', ['wget', '-q', '-O-', 'http://[2001:db8::2]:8080/']);
  assert.equal(page, 'hello from the VM\n');
  // the proxy binds the VM's IPv6 address only (ipv6Only): the IPv4 port stays httpd's
  const v4 = await netns.run(ns, '/bin/busybox', ['wget', '-q', '-O-', 'http://192.168.0.10:8080/']);
  assert.equal(v4.stdout, 'hello from the VM\n', 'httpd itself still answers on its IPv4 address');
  const s = await stats(options.dir, a.pid);
  assert.equal(s[0]!.name, 'web:8080');
  assert.equal(s[0]!.total, 1);

  // unchanged: nothing done
  assert.deepEqual(await startProxyService({ ...options }), { pid: a.pid, restarted: false, changed: false });
  // changed: a new process
  const b = await startProxyService({ ...options, maxConnections: 10 });
  assert.equal(b.restarted, true);
  assert.notEqual(b.pid, a.pid);
  await assertOnlyHttpdAndService(ns, httpdPid, b.pid);
  assert.deepEqual(await pidsBut(ns, httpdPid).then((ps) => ps.filter((p) => procStat(p)?.pgid === a.pid)), [], 'the old service left nothing behind');
  assert.equal(await sh(ns, '/bin/busybox', ['wget', '-q', '-O-', 'http://[2001:db8::2]:8080/']), 'hello from the VM\n');

  assert.equal(await stopProxyService(options.dir), true);
  assert.deepEqual(await pidsBut(ns, httpdPid), [httpdPid]);
  assert.equal(existsSync(join(options.dir, 'proxy6.pid')), false);
  assert.equal(proxyServiceStatus(options.dir).running, false);
  assert.equal(await stopProxyService(options.dir), false);
  const after = await netns.run(ns, '/bin/busybox', ['wget', '-q', '-O-', 'http://[2001:db8::2]:8080/'], { timeoutMs: 10_000 });
  assert.notEqual(after.code, 0, 'nothing listens any more');
});

test('an address that is not assigned is an early exit with the service\'s stderr', async (t) => {
  const { ns, options, httpdPid } = await lab(t);
  await assert.rejects(
    startProxyService({ ...options, routes: [{ listen: { address: '2001:db8::99', port: 8080 }, target: { host: '192.168.0.10', port: 8080 } }] }),
    (e: unknown) => {
      assert.ok(e instanceof ProxyServiceError, String(e));
      assert.equal(e.code, 'EPROXY_EXIT');
      assert.equal(e.exitCode, 1);
      assert.match(e.stderr, /EADDRNOTAVAIL/);
      assert.match(e.message, /2001:db8::99/);
      return true;
    },
  );
  assert.deepEqual(await pidsBut(ns, httpdPid), [httpdPid]);
  assert.equal(proxyServiceStatus(options.dir).running, false);
});

test('a target that never answers hits the connect timeout; the client is closed', async (t) => {
  const { ns, options } = await lab(t);
  // 192.168.0.99 is on eth1's subnet but nobody answers ARP: the SYN is never sent
  const r = await startProxyService({
    ...options,
    connectTimeoutMs: 300,
    routes: [{ name: 'silent', listen: { address: '2001:db8::2', port: 9090 }, target: { host: '192.168.0.99', port: 80 } }],
  });
  const t0 = performance.now();
  const res = await netns.run(ns, '/bin/busybox', ['wget', '-q', '-O-', 'http://[2001:db8::2]:9090/'], { timeoutMs: 10_000 });
  const ms = performance.now() - t0;
  assert.notEqual(res.code, 0);
  assert.equal(res.stdout, '');
  assert.ok(ms >= 250 && ms < 2500, `client closed after ${ms.toFixed(0)} ms`);
  // the proxy counts the connection closed once its own side has seen the close, which may come a
  // moment after the client's: read the stats until it has (at most ~1 s)
  let s = await stats(options.dir, r.pid);
  for (let i = 0; i < 50 && s[0]!.active !== 0; i++) {
    await new Promise((done) => setTimeout(done, 20));
    s = await stats(options.dir, r.pid);
  }
  assert.equal(s[0]!.errors, 1);
  assert.equal(s[0]!.active, 0);
  await stopProxyService(options.dir);
});
