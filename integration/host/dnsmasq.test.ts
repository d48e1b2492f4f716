// dnsmasq in a namespace: a bridge with a veth whose other end is a DHCP client in a second
// namespace; busybox udhcpc must get the static lease, DNS answers the VM names, start is
// idempotent, a changed config restarts, early exits are reported, stop leaves no process.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rtnl, netns } from '@vmhost/net';
import { freshNetns, ipJson, sh } from '../helpers/ns.js';
import { DnsmasqError } from '../../packages/host/src/errors.js';
import {
  dnsmasqStatus,
  readLeases,
  startDnsmasq,
  stopDnsmasq,
  type DnsmasqOptions,
} from '../../packages/host/src/services/dnsmasq.js';

const CLIENT_MAC = '52:54:00:12:34:56';

async function lan(t: TestContext): Promise<{ ns: string; client: string; dir: string; options: DnsmasqOptions }> {
  const ns = await freshNetns(t, 'dns');
  const client = await freshNetns(t, 'dnsc');
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.add({ kind: 'bridge', name: 'br0', stp: false, up: true });
    await h.links.add({ kind: 'veth', name: 'vport0', master: 'br0', up: true, peer: { name: 'eth0', mac: CLIENT_MAC, netns: client } });
    await h.addresses.add('br0', '192.168.0.1/24');
  } finally {
    h.close();
  }
  const hc = await Rtnl.open({ netns: client });
  try {
    await hc.links.set('eth0', { up: true });
    await hc.links.set('lo', { up: true });
  } finally {
    hc.close();
  }
  const dir = mkdtempSync('/tmp/vmht-dnsmasq-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const options: DnsmasqOptions = {
    dir: join(dir, 'dnsmasq'),
    interface: 'br0',
    address: '192.168.0.1',
    range: ['192.168.0.100', '192.168.0.150'],
    netmask: '255.255.255.0',
    leaseTime: '12h',
    domain: 'lan',
    hosts: [
      { mac: CLIENT_MAC, ipv4: '192.168.0.10', name: 'web' },
      { mac: '52:54:00:00:00:02', ipv4: '192.168.0.11', name: 'db' },
    ],
    netns: ns,
  };
  return { ns, client, dir, options };
}

/** busybox udhcpc in the client namespace; returns the address it was offered and leased. */
async function dhcp(client: string): Promise<string> {
  const r = await netns.run(client, '/bin/busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], { timeoutMs: 20_000 });
  const m = /lease of (\d+\.\d+\.\d+\.\d+) obtained/.exec(r.stderr + r.stdout);
  assert.ok(m, `udhcpc got no lease (exit ${r.code}): ${r.stderr}${r.stdout}`);
  return m[1]!;
}

test('a client gets its static lease, the lease file shows it, DNS answers the VM names', async (t) => {
  const { ns, client, options } = await lan(t);
  const t0 = performance.now();
  const r = await startDnsmasq(options);
  const ms = performance.now() - t0;
  t.diagnostic(`dnsmasq start-to-ready: ${ms.toFixed(1)} ms`);
  assert.deepEqual({ restarted: r.restarted, changed: r.changed }, { restarted: false, changed: true });
  assert.deepEqual(await netns.pids(ns), [r.pid]);
  assert.deepEqual(dnsmasqStatus(options.dir), { running: true, pid: r.pid, configHash: dnsmasqStatus(options.dir).configHash });

  assert.equal(await dhcp(client), '192.168.0.10');
  const leases = readLeases(options.dir);
  assert.equal(leases.length, 1);
  assert.equal(leases[0]!.mac, CLIENT_MAC);
  assert.equal(leases[0]!.ipv4, '192.168.0.10');
  assert.ok(leases[0]!.expires instanceof Date && leases[0]!.expires.getTime() > Date.now() + 11 * 3600_000);

  // DNS on the bridge address: the static hosts by name (with and without the domain)
  const hc = await Rtnl.open({ netns: client });
  try {
    await hc.addresses.add('eth0', '192.168.0.10/24');
  } finally {
    hc.close();
  }
  const out = await sh(client, '/bin/busybox', ['nslookup', 'web.lan', '192.168.0.1']);
  assert.match(out, /192\.168\.0\.10/);
  const out3 = await sh(client, '/bin/busybox', ['nslookup', 'db.lan', '192.168.0.1']);
  assert.match(out3, /192\.168\.0\.11/, 'static hosts resolve before they have a lease');
  const out2 = await sh(client, '/bin/busybox', ['nslookup', 'web', '192.168.0.1']);
  assert.match(out2, /192\.168\.0\.10/);
});

test('with ipv6: the client takes the default route from the RA (via the bridge\'s link-local) and forms no address; AAAA and reverse names over IPv6', async (t) => {
  const { ns, client, options } = await lan(t);
  const h = await Rtnl.open({ netns: ns });
  try {
    // added just before dnsmasq starts: still tentative (duplicate address detection) at its start
    await h.addresses.add('br0', '2001:db8:1::1/64');
  } finally {
    h.close();
  }
  await startDnsmasq({
    ...options,
    hosts: [{ ...options.hosts[0]!, ipv6: '2001:db8:1::10' }, options.hosts[1]!],
    ipv6: { prefix: '2001:db8:1::/64', dnsServer: '2001:db8:1::1', leaseTime: '12h' },
  });
  // the client's kernel (accept_ra 1) solicits on link-up; dnsmasq answers at once
  await sh(client, 'ip', ['link', 'set', 'eth0', 'down']);
  await sh(client, 'ip', ['link', 'set', 'eth0', 'up']);
  let def: { gateway?: string; protocol?: string } | undefined;
  for (let i = 0; i < 300 && !def; i++) {
    def = (await ipJson<Array<{ dst: string; gateway?: string; protocol?: string }>>(client, ['-6', 'route', 'show', 'default']))[0];
    if (!def) await new Promise((r) => setTimeout(r, 50));
  }
  // (ip -j shows an address its filter leaves out as {})
  const bridgeLl = (await ipJson<Array<{ addr_info: Array<{ local?: string }> }>>(ns, ['-6', 'addr', 'show', 'dev', 'br0', 'scope', 'link'])).flatMap((a) => a.addr_info.flatMap((i) => i.local ?? []));
  assert.deepEqual({ gateway: def?.gateway, protocol: def?.protocol }, { gateway: bridgeLl[0], protocol: 'ra' });
  const global6 = await ipJson<Array<{ addr_info: Array<{ local?: string }> }>>(client, ['-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  assert.deepEqual(global6.flatMap((a) => a.addr_info.flatMap((i) => i.local ?? [])), [], 'A=0: no SLAAC address');
  const routes = await ipJson<Array<{ dst: string }>>(client, ['-6', 'route', 'show']);
  assert.ok(!routes.some((r) => r.dst === '2001:db8:1::/64'), `L=0: the prefix is not on-link: ${JSON.stringify(routes)}`);

  // names over IPv6 DNS (the client queries the bridge's address, as RDNSS says)
  const hc = await Rtnl.open({ netns: client });
  try {
    await hc.addresses.add('eth0', '2001:db8:1::10/128', { nodad: true });
  } finally {
    hc.close();
  }
  assert.match(await sh(client, '/bin/busybox', ['nslookup', '-type=AAAA', 'web.lan', '2001:db8:1::1']), /Address:\s+2001:db8:1::10\s*$/m);
  assert.match(await sh(client, '/bin/busybox', ['nslookup', '-type=A', 'web.lan', '2001:db8:1::1']), /Address:\s+192\.168\.0\.10\s*$/m);
  assert.match(await sh(client, '/bin/busybox', ['nslookup', '2001:db8:1::10', '2001:db8:1::1']), /name = web\.lan/);
  assert.match(await sh(client, '/bin/busybox', ['nslookup', '192.168.0.11', '2001:db8:1::1']), /name = db\.lan/);
});

test('start is idempotent; a changed config restarts dnsmasq; stop leaves no process and keeps the leases', async (t) => {
  const { ns, client, options } = await lan(t);
  const a = await startDnsmasq(options);
  const b = await startDnsmasq({ ...options });
  assert.deepEqual(b, { pid: a.pid, restarted: false, changed: false });

  const c = await startDnsmasq({ ...options, leaseTime: 'infinite' });
  assert.equal(c.restarted, true);
  assert.equal(c.changed, true);
  assert.notEqual(c.pid, a.pid);
  assert.deepEqual(await netns.pids(ns), [c.pid]);
  assert.equal(await dhcp(client), '192.168.0.10');
  const lease = readLeases(options.dir).find((l) => l.mac === CLIENT_MAC);
  assert.equal(lease?.expires, null, 'an infinite lease has no expiry');

  assert.equal(await stopDnsmasq(options.dir), true);
  assert.deepEqual(await netns.pids(ns), []);
  assert.equal(existsSync(join(options.dir, 'dnsmasq.pid')), false);
  assert.equal(readLeases(options.dir).length, 1, 'the leases stay');
  assert.deepEqual(dnsmasqStatus(options.dir).running, false);
  assert.equal(await stopDnsmasq(options.dir), false);
});

test('a stale pidfile (naming another process) is ignored and replaced', async (t) => {
  const { ns, options } = await lan(t);
  const sleeper = netns.spawn(ns, 'sleep', ['30']);
  await new Promise((r) => sleeper.once('spawn', r));
  t.after(() => sleeper.kill('SIGKILL'));
  await startDnsmasq(options);
  await stopDnsmasq(options.dir);
  writeFileSync(join(options.dir, 'dnsmasq.pid'), `${sleeper.pid}\n`);
  assert.equal(dnsmasqStatus(options.dir).running, false);
  assert.equal(await stopDnsmasq(options.dir), false, 'stop does not signal a process that is not ours');
  assert.equal(sleeper.exitCode, null);
  writeFileSync(join(options.dir, 'dnsmasq.pid'), `${sleeper.pid}\n`);
  const r = await startDnsmasq(options);
  assert.equal(r.restarted, false);
  assert.notEqual(r.pid, sleeper.pid);
  assert.equal(dnsmasqStatus(options.dir).pid, r.pid);
  await stopDnsmasq(options.dir);
});

test('early exit is reported with dnsmasq\'s own words: missing interface, port in use', async (t) => {
  const { ns, options } = await lan(t);
  await assert.rejects(startDnsmasq({ ...options, interface: 'nosuch0' }), (e: unknown) => {
    assert.ok(e instanceof DnsmasqError, String(e));
    assert.equal(e.code, 'EDNSMASQ_EXIT');
    assert.match(e.message, /nosuch0/);
    assert.notEqual(e.exitCode, 0);
    return true;
  });
  assert.deepEqual(await netns.pids(ns), []);

  // a second dnsmasq (another dir) on the same bridge address: DNS port 53 is taken
  await startDnsmasq(options);
  await assert.rejects(startDnsmasq({ ...options, dir: `${options.dir}-2` }), (e: unknown) => {
    assert.ok(e instanceof DnsmasqError, String(e));
    assert.equal(e.code, 'EDNSMASQ_EXIT');
    assert.match(e.stderr, /in use/i);
    return true;
  });
  assert.equal((await netns.pids(ns)).length, 1);
  await stopDnsmasq(options.dir);
});

test('upstream servers: other names are forwarded to them; without servers they are refused', async (t) => {
  const { ns, client, options } = await lan(t);
  // the upstream: a second dnsmasq on 127.0.0.2 in the host namespace that knows example.test
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.set('lo', { up: true });
  } finally {
    h.close();
  }
  const upstream = netns.spawn(ns, 'dnsmasq', [
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--pid-file=',
    '--bind-interfaces', '--listen-address=127.0.0.2', '--port=53', '--address=/example.test/198.51.100.7',
  ], { stdio: 'ignore' });
  await new Promise((r) => upstream.once('spawn', r));
  t.after(() => upstream.kill('SIGKILL'));
  const hc = await Rtnl.open({ netns: client });
  try {
    await hc.addresses.add('eth0', '192.168.0.10/24');
  } finally {
    hc.close();
  }
  const ask = (): Promise<string> =>
    netns.run(client, '/bin/busybox', ['nslookup', 'www.example.test', '192.168.0.1'], { timeoutMs: 10_000 }).then((r) => r.stdout + r.stderr);
  // the upstream answers directly
  let direct = '';
  for (let i = 0; i < 100 && !/198\.51\.100\.7/.test(direct); i++) {
    direct = (await netns.run(ns, '/bin/busybox', ['nslookup', 'www.example.test', '127.0.0.2'], { timeoutMs: 10_000 })).stdout;
    if (!/198\.51\.100\.7/.test(direct)) await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(direct, /198\.51\.100\.7/, 'the upstream dnsmasq answers');

  await startDnsmasq(options);
  const refused = await ask();
  assert.doesNotMatch(refused, /198\.51\.100\.7/, 'no upstream: not forwarded');
  await startDnsmasq({ ...options, servers: ['127.0.0.2'] });
  assert.match(await ask(), /198\.51\.100\.7/, 'forwarded to the upstream');
  assert.match(await sh(client, '/bin/busybox', ['nslookup', 'web.lan', '192.168.0.1']), /192\.168\.0\.10/, 'local names still local');
  await stopDnsmasq(options.dir);
});
