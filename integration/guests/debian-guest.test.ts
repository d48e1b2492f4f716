// A real Debian 12 guest (scripts/build-debian-guest.sh, TCG) next to the busybox test guest, on a
// bridge where dnsmasq (started by hand, lines from packages/host/src/guests/dnsmasq-guests.ts)
// sends router advertisements (M=1 O=1, prefix L=0 A=0) and serves DHCPv4, stateful DHCPv6 by MAC
// and the VMs' names. The Debian guest has nothing but a cloud-init seed from
// packages/host/src/guests/cloud-init.ts (a fresh ssh key, network-config v2, a merged
// #cloud-config of the "user"). From the `internet` namespace the real OpenSSH client logs in on the
// guest's own IPv6 address; the guest's `ip -j` is the oracle for its addresses and routes,
// `getent` for names, `cloud-init status` for cloud-init. The test guest has a static /128 from its
// command line and no gateway: it answers from outside only through the RA's default route, and
// forms no SLAAC address.
//
// Written against @vmhost/net, @vmhost/kvm's Vm and the lab kit, not the engine: when the engine
// gets `cloudInit` and `ipv6: auto`, the set-up part (lab, dnsmasq, seed, overlay, VMs) becomes
// one host file and `apply`; the checks stay as they are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, createOverlay, detectAccel } from '@vmhost/kvm';
import { Lab } from '@vmhost/lab';
import { renderCloudInit, writeSeed } from '../../packages/host/src/guests/cloud-init.js';
import { renderGuestDnsmasqLines } from '../../packages/host/src/guests/dnsmasq-guests.js';
import { linkLocalAddress, slaacAddress } from '../../packages/host/src/guests/ipv6.js';
import { guest as testGuest, waitForConsole } from '../kvm/helpers.js';
import { debianGuest, ssh, sshKeygen, waitForFile, waitForPing, waitForSsh, writeDnsmasqConf } from './helpers.js';

/** The scenario's addresses (documentation ranges). */
const NET = {
  bridge: 'br0',
  ipv4: '198.51.100.1',
  ipv6: '2001:db8:1::1',
  prefix: '2001:db8:1::/64',
  domain: 'lan',
  bridgeMac: '02:00:5e:10:00:01',
  web: { name: 'web', mac: '52:54:00:12:34:56', ipv4: '198.51.100.10', ipv6: '2001:db8:1::100', tap: 'tap-web' },
  tg: { name: 'tg', mac: '52:54:00:12:34:57', ipv4: '198.51.100.20', ipv6: '2001:db8:1::200', tap: 'tap-tg' },
  client: '2001:db8:ff::2',
};

interface IpAddr { ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string; dynamic?: boolean; noprefixroute?: boolean }> }
interface IpRoute { dst: string; gateway?: string; dev: string; protocol: string }

test('a Debian guest configured only by cloud-init and the host\'s RA/DHCPv6: ssh on its own IPv6, names, routes', { timeout: 1_140_000 }, async (t) => {
  const img = debianGuest();
  const tg = testGuest();
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-dg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  // ------------------------------------------------------------------ the network (lab kit)
  const lab = await Lab.create({
    prefix: 'vmhl-dg-',
    namespaces: {
      internet: {},
      host: {
        bridges: { [NET.bridge]: { mac: NET.bridgeMac } },
        addresses: { [NET.bridge]: [`${NET.ipv4}/24`, `${NET.ipv6}/64`] },
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 },
      },
    },
    links: [{ a: { ns: 'host', name: 'up0' }, b: { ns: 'internet', name: 'eth0' }, addresses: { a: ['2001:db8:ff::1/64'], b: [`${NET.client}/64`] } }],
    routes: { internet: [{ to: 'default', via: '2001:db8:ff::1' }] },
  });
  t.after(() => lab.close());
  const h = await lab.rtnl('host');
  for (const vm of [NET.web, NET.tg]) {
    await h.links.add({ kind: 'tap', name: vm.tap, vnetHdr: true });
    await h.links.set(vm.tap, { master: NET.bridge, up: true });
  }

  // ------------------------------------------------------------------------------- dnsmasq
  const lines = renderGuestDnsmasqLines({
    interface: NET.bridge,
    domain: NET.domain,
    ipv6: { prefix: NET.prefix, dnsServer: NET.ipv6 },
    hosts: [NET.web, NET.tg].map(({ name, mac, ipv4, ipv6 }) => ({ name, mac, ipv4, ipv6 })),
  });
  const conf = writeDnsmasqConf(dir, { bridge: NET.bridge, ipv4: NET.ipv4, range: ['198.51.100.100', '198.51.100.150'], domain: NET.domain }, lines);
  const dnsmasq = lab.spawn('host', 'dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let dnsmasqErr = '';
  dnsmasq.stderr?.on('data', (d: Buffer) => (dnsmasqErr += d.toString()));
  await waitForFile(join(dir, 'dnsmasq.pid'), 10_000, () => dnsmasq.exitCode === null).catch((err: Error) => {
    throw new Error(`${err.message}: ${dnsmasqErr}`);
  });

  // ------------------------------------------------------------------- the Debian guest
  const keys = sshKeygen(dir);
  const seed = renderCloudInit({
    vm: NET.web.name,
    domain: NET.domain,
    sshAuthorizedKeys: [keys.pub],
    userData: '#cloud-config\nwrite_files:\n  - path: /etc/vmhost-user-data\n    content: "merged user-data\\n"\n',
    network: {
      mac: NET.web.mac,
      ipv4: `${NET.web.ipv4}/24`,
      gateway4: NET.ipv4,
      ipv6: NET.web.ipv6,
      dns: [NET.ipv4, NET.ipv6],
      search: [NET.domain],
    },
  });
  const seedFile = join(dir, 'seed.iso');
  const t0seed = performance.now();
  writeSeed(seedFile, seed);
  t.diagnostic(`seed written in ${(performance.now() - t0seed).toFixed(1)} ms (instance-id ${seed.instanceId})`);
  const disk = join(dir, 'web.qcow2');
  await createOverlay({ file: disk, backing: img.image });

  const web = new Vm({
    name: 'web', runDir: join(dir, 'web'), memoryMiB: 1024, cpus: 1, accel: 'auto', netns: lab.ns('host'),
    kernel: img.kernel, initrd: img.initrd, append: img.append,
    drives: [{ file: disk }, { file: seedFile, format: 'raw', readOnly: true }],
    nics: [{ tap: NET.web.tap, mac: NET.web.mac }],
    console: { file: join(dir, 'web.console') },
  });
  const testVm = new Vm({
    name: 'tg', runDir: join(dir, 'tg'), memoryMiB: 256, cpus: 1, accel: 'auto', netns: lab.ns('host'),
    kernel: tg.kernel, initrd: tg.initrd,
    // A /128 and no gateway: its default route can only come from the RA.
    append: `${tg.append} vmhost.name=tg vmhost.ip6=${NET.tg.ipv6}/128`,
    nics: [{ tap: NET.tg.tap, mac: NET.tg.mac }],
    console: { file: join(dir, 'tg.console') },
  });
  t.diagnostic(`accelerator: ${detectAccel().accel} (${detectAccel().reason})`);
  const t0 = performance.now();
  await web.start({ timeoutMs: 120_000 });
  t.after(async () => void (await web.stop({ force: true, stepTimeoutMs: 10_000 }).catch(() => undefined)));
  await testVm.start({ timeoutMs: 120_000 });
  t.after(async () => void (await testVm.stop({ force: true, stepTimeoutMs: 10_000 }).catch(() => undefined)));

  // ------------------------------------------------------------------------ the test guest
  await waitForConsole(testVm.options.console!.file, tg.markers.ready, 300_000, () => testVm.running);
  // Its kernel solicits an RA a few seconds after its link comes up: until then it has no route out.
  await waitForPing(lab, 'internet', NET.tg.ipv6, 180_000);
  // With A=0 it forms no SLAAC address: its EUI-64 address in the prefix does not answer.
  const eui = slaacAddress(NET.prefix, NET.tg.mac);
  const noSlaac = await lab.run('host', 'busybox', ['ping', '-6', '-c', '2', '-W', '2', eui], { timeoutMs: 30_000 });
  assert.notEqual(noSlaac.code, 0, `${eui} (SLAAC) must not answer`);

  // ---------------------------------------------------------------------------- ssh login
  const target = `ops@${NET.web.ipv6}`;
  // Deadlines: boot ~1 min quiet, ~4 min under load; the runner caps a file at 20 min.
  await waitForSsh(lab, 'internet', keys.key, target, 900_000, () => web.running);
  const firstLogin = (performance.now() - t0) / 1000;
  // cloud-init restarts sshd late in its run: wait for it to finish (logins may be refused meanwhile).
  const { stdout: status } = await waitForSsh(lab, 'internet', keys.key, target, 300_000, () => web.running, 'cloud-init status --wait');
  t.diagnostic(`Debian guest: first ssh login ${firstLogin.toFixed(0)} s after start, cloud-init done at ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  assert.match(status, /status: done\s*$/, status);
  assert.equal((await ssh(lab, 'internet', keys.key, target, 'hostname')).trim(), 'web');
  assert.equal((await ssh(lab, 'internet', keys.key, target, 'hostname -f')).trim(), 'web.lan');
  assert.equal(await ssh(lab, 'internet', keys.key, target, 'cat /etc/vmhost-user-data'), 'merged user-data\n');
  assert.equal((await ssh(lab, 'internet', keys.key, target, 'cat /var/lib/cloud/data/instance-id')).trim(), seed.instanceId);

  // Addresses: the host-file /128, no SLAAC address, no global /64.
  const addrs = JSON.parse(await ssh(lab, 'internet', keys.key, target, 'ip -j -6 addr show scope global')) as IpAddr[];
  const global6 = addrs.flatMap((a) => a.addr_info.filter((i) => i.family === 'inet6').map((i) => ({ ...i, ifname: a.ifname })));
  t.diagnostic(`guest ip -6 addr (global): ${JSON.stringify(global6.map((a) => `${a.local}/${a.prefixlen} ${a.ifname}${a.dynamic ? ' dynamic' : ''}`))}`);
  assert.ok(global6.some((a) => a.local === NET.web.ipv6 && a.prefixlen === 128), `${NET.web.ipv6}/128 in ${JSON.stringify(global6)}`);
  assert.ok(global6.every((a) => a.prefixlen === 128), `no on-link prefix on an address: ${JSON.stringify(global6)}`);
  assert.ok(!global6.some((a) => a.local === slaacAddress(NET.prefix, NET.web.mac)), 'no SLAAC address');

  // Routes: default via the bridge's link-local address, learnt from the RA; no on-link /64.
  const routes = JSON.parse(await ssh(lab, 'internet', keys.key, target, 'ip -j -6 route show')) as IpRoute[];
  t.diagnostic(`guest ip -6 route: ${JSON.stringify(routes.map((r) => `${r.dst} ${r.gateway ? `via ${r.gateway} ` : ''}proto ${r.protocol}`))}`);
  const def = routes.find((r) => r.dst === 'default');
  assert.ok(def, `a default route in ${JSON.stringify(routes)}`);
  assert.equal(def.gateway, linkLocalAddress(NET.bridgeMac));
  assert.equal(def.protocol, 'ra');
  assert.ok(!routes.some((r) => r.dst === NET.prefix), `no on-link route for ${NET.prefix}: ${JSON.stringify(routes)}`);

  // IPv4 from network-config (static), reached from the host namespace.
  assert.equal((await ssh(lab, 'host', keys.key, `ops@${NET.web.ipv4}`, 'hostname')).trim(), 'web');

  // Names: the other VM's A and AAAA and its reverse entry, from the guest; the guest's from the host.
  const tgV6 = (await ssh(lab, 'internet', keys.key, target, `getent ahostsv6 ${NET.tg.name}.${NET.domain}`)).split('\n')[0]!.split(/\s+/)[0];
  assert.equal(tgV6, NET.tg.ipv6);
  const tgV4 = (await ssh(lab, 'internet', keys.key, target, `getent ahostsv4 ${NET.tg.name}.${NET.domain}`)).split('\n')[0]!.split(/\s+/)[0];
  assert.equal(tgV4, NET.tg.ipv4);
  assert.match(await ssh(lab, 'internet', keys.key, target, `getent hosts ${NET.tg.ipv6}`), new RegExp(`^${NET.tg.ipv6}\\s+${NET.tg.name}\\.${NET.domain}\\b`));
  const resolv = await ssh(lab, 'internet', keys.key, target, 'resolvectl dns; resolvectl domain');
  t.diagnostic(`guest resolvectl: ${resolv.replace(/\n/g, ' | ')}`);
  for (const [type, want] of [['A', NET.web.ipv4], ['AAAA', NET.web.ipv6]] as const) {
    const r = await lab.exec('host', 'busybox', ['nslookup', `-type=${type}`, `${NET.web.name}.${NET.domain}`, NET.ipv4], { timeoutMs: 10_000 });
    assert.match(r, new RegExp(`Address:\\s+${want.replace(/\./g, '\\.')}\\s*$`, 'm'), r);
  }

  // For the log: what an operator would look at in the guest.
  const show = await ssh(lab, 'internet', keys.key, target, 'ip -6 addr; ip -6 route; resolvectl dns; resolvectl domain; getent ahosts tg.lan; getent hosts 2001:db8:1::200; cloud-init status --long');
  for (const line of show.trimEnd().split('\n')) t.diagnostic(`guest> ${line}`);

  // DHCPv6 did match by MAC (the guest's DUID is networkd's DUID-EN, not its MAC).
  const leases = readFileSync(join(dir, 'dnsmasq.leases'), 'utf8');
  assert.ok(leases.split('\n').some((l) => l.split(' ')[2] === NET.web.ipv6 && l.split(' ')[3] === 'web'), leases);
  const log = readFileSync(join(dir, 'dnsmasq.log'), 'utf8');
  assert.match(log, new RegExp(`client MAC address: ${NET.web.mac}`), 'dnsmasq found the DHCPv6 client\'s MAC');
});
