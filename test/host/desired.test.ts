// The pure part of the engine (packages/host/src/engine/desired.ts): what a host file wants, in
// which order, with which typed data, and the firewall model it gives (no privilege, no Rtnl,
// nothing applied).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from '@vmhost/firewall';
import { dataDirFor, firewallModel, parseHostFile, resolveHost, stateDirFor, type ResolvedHost } from '@vmhost/host';
import { desiredState } from '../../packages/host/src/engine/desired.js';
import type { Entry } from '../../packages/host/src/engine/entries.js';
import { seedDir, seedHostFile } from './fixtures/seed.js';

/** The entries `host` wants with the state directory `dir` (and the namespace `netns`). */
const wanted = (h: ResolvedHost, dir = '/run/x', netns?: string): Entry[] => desiredState(h, netns === undefined ? { dir } : { dir, netns }).map((d) => d.entry);

const BASE = `name: demo
uplink: eth0
bridge: { name: br0, mac: "de:ad:be:ef:24:31", veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], leaseTime: 72h, domain: lan }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed, acceptRa: true }
vms:
  - name: web
    mac: "de:ad:be:ef:32:10"
    ipv4: 192.168.0.100
    ipv6: "2001:db8:8:5688::100"
    kernel: /boot/vmlinuz
    forwards: [{ port: 1234, toPort: 22 }, { port: 80 }]
  - name: mail
    mac: "de:ad:be:ef:32:20"
    ipv4: 192.168.0.200
    ipv6: "2001:db8:8:5688::200"
    kernel: /boot/vmlinuz
    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]
`;
const host = (text = BASE): ResolvedHost => parseHostFile(text, { baseDir: '/' });

test('routed mode wants, in order: sysctls (accept_ra before forwarding), bridge, veth, addresses, TAPs, proxy neighbours and /128 routes, firewall, dnsmasq, VMs', () => {
  const ids = wanted(host()).map((e) => e.id);
  assert.deepEqual(ids, [
    'sysctl:net.ipv4.ip_forward',
    'sysctl:net.ipv6.conf.eth0.accept_ra',
    'sysctl:net.ipv6.conf.all.forwarding',
    'sysctl:net.ipv6.conf.eth0.proxy_ndp',
    'sysctl:net.bridge.bridge-nf-call-ip6tables',
    'link:br0',
    'link:veth0',
    'address:br0:192.168.0.1/24',
    'address:br0:2001:db8:8:5688::1/64',
    'link:lfg-web', // the TAPs of host demo: its tag, the VM's name
    'link:lfg-mail',
    'proxyNeighbor:eth0:2001:db8:8:5688::100',
    'route:2001:db8:8:5688::100/128',
    'proxyNeighbor:eth0:2001:db8:8:5688::200',
    'route:2001:db8:8:5688::200/128',
    'firewall',
    'dnsmasq',
    'vm:web',
    'vm:mail',
  ]);
});

test('proxy mode (plan B) puts the VM addresses on the uplink and runs the TCP proxy; no proxy NDP', () => {
  const h = host(BASE.replace('mode: routed', 'mode: proxy'));
  const entries = wanted(h);
  const ids = entries.map((e) => e.id);
  assert.ok(ids.includes('address:eth0:2001:db8:8:5688::100/128'));
  assert.ok(!ids.some((i) => i.startsWith('proxyNeighbor:') || i.startsWith('route:') || i.includes('proxy_ndp')));
  const last = entries.at(-1);
  assert.equal(last?.kind, 'proxy6');
  const proxy = last.data.options;
  assert.deepEqual(
    proxy.routes.map((r) => `[${r.listen.address}]:${r.listen.port}>${r.target.host}:${r.target.port}`),
    ['[2001:db8:8:5688::100]:1234>192.168.0.100:22', '[2001:db8:8:5688::100]:80>192.168.0.100:80', '[2001:db8:8:5688::200]:5678>192.168.0.200:22', '[2001:db8:8:5688::200]:25>192.168.0.200:25'],
  );
  assert.equal(proxy.dir, '/run/x/proxy6');
  // the VMs' public addresses are the host's (on the uplink): no RA, no DHCPv6, no AAAA on the bridge
  const dns = entries.find((e) => e.kind === 'dnsmasq');
  assert.equal(dns?.kind, 'dnsmasq');
  assert.equal(dns.data.options.ipv6, undefined);
  assert.deepEqual(dns.data.options.hosts.map((x) => Object.keys(x).sort().join(',')), ['ipv4,mac,name', 'ipv4,mac,name']);
});

test('routed mode: dnsmasq serves RA and DHCPv6 on the /64 of the bridge address, also inside a wider prefix; not for a bridge prefix longer than /64', () => {
  const dnsOf = (text: string): NonNullable<Extract<Entry, { kind: 'dnsmasq' }>['data']['options']> => {
    const e = wanted(host(text)).find((x) => x.kind === 'dnsmasq');
    assert.equal(e?.kind, 'dnsmasq');
    return e.data.options;
  };
  assert.deepEqual(dnsOf(BASE).ipv6, { prefix: '2001:db8:8:5688::/64', dnsServer: '2001:db8:8:5688::1', leaseTime: '72h' });
  const wide = BASE.replace('prefix: "2001:db8:8:5688::/64"', 'prefix: "2001:db8:8::/48"');
  assert.deepEqual(dnsOf(wide).ipv6, { prefix: '2001:db8:8:5688::/64', dnsServer: '2001:db8:8:5688::1', leaseTime: '72h' });
  assert.equal(dnsOf(BASE.replace('ipv6: "2001:db8:8:5688::1/64" }', 'ipv6: "2001:db8:8:5688::1/120" }')).ipv6, undefined);
});

test('the firewall model: one group per VM, hairpin, masquerade of the VM subnet out of the uplink, IPv6 accepts per published port in routed mode', () => {
  const m = firewallModel(host());
  assert.equal(m.owner, 'demo');
  assert.deepEqual(m.masquerade, [{ source: '192.168.0.0/24', outInterface: 'eth0' }]);
  assert.deepEqual(m.portForwards?.map((f) => `${f.group}:${String(f.port)}>${f.to}:${f.toPort}`), ['web:1234>192.168.0.100:22', 'web:80>192.168.0.100:80', 'mail:5678>192.168.0.200:22', 'mail:25>192.168.0.200:25']);
  assert.ok(m.portForwards?.every((f) => f.hairpin === true));
  assert.deepEqual(m.lan?.subnets, ['192.168.0.0/24', '2001:db8:8:5688::/64']);
  const { ipv4, ipv6 } = render(m);
  assert.match(ipv4, /-A VMHOST-demo-web-D .*--dport 1234 -j DNAT --to-destination 192\.168\.0\.100:22/);
  assert.match(ipv4, /-A VMHOST-demo-mail-D .*--dport 25 -j DNAT --to-destination 192\.168\.0\.200:25/);
  assert.match(ipv6, /-A VMHOST-demo-web-F -d 2001:db8:8:5688::100\/128 -o br0 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW/);
  assert.match(ipv6, /-A VMHOST-demo-mail-F -d 2001:db8:8:5688::200\/128 -o br0 -p tcp -m tcp --dport 25 /);
  // one VM's forwards changed: only that VM's group chains differ, in IPv4 and in IPv6
  const changed = host(BASE.replace('[{ port: 5678, toPort: 22 }, { port: 25 }]', '[{ port: 5678, toPort: 22 }]'));
  const after = render(firewallModel(changed));
  for (const [before, now] of [[ipv4, after.ipv4], [ipv6, after.ipv6]] as const) {
    const a = new Set(before.split('\n'));
    const b = now.split('\n');
    const diff = [...b.filter((l) => !a.has(l)), ...before.split('\n').filter((l) => !new Set(b).has(l))];
    assert.ok(diff.length > 0);
    for (const l of diff) assert.match(l, /VMHOST-demo-mail-/, l);
  }
});

test('dnsmasq gets the upstream DNS servers of dhcp.dnsServers; none by default', () => {
  const find = (h: ResolvedHost): readonly string[] | undefined => {
    const e = wanted(h).find((x) => x.id === 'dnsmasq');
    assert.equal(e?.kind, 'dnsmasq');
    return e.data.options.servers;
  };
  assert.equal(find(host()), undefined);
  const h = host(BASE.replace('domain: lan }', 'domain: lan, dnsServers: [198.51.100.53, "2001:db8::53"] }'));
  assert.deepEqual(find(h), ['198.51.100.53', '2001:db8::53']);
});

test('state directory: /run/vmhost/<name>, under the namespace name with --netns, or as given', () => {
  const h = host();
  assert.equal(stateDirFor(h), '/run/vmhost/demo');
  assert.equal(stateDirFor(h, { netns: 'lab' }), '/run/vmhost/lab/demo');
  assert.equal(stateDirFor(h, { stateDir: '/srv/x' }), '/srv/x');
  assert.throws(() => stateDirFor(h, { stateDir: 'rel' }), { field: 'stateDir' });
});

test('data directory: /var/lib/vmhost/<name>, keyed by the namespace as the state directory, or as given', () => {
  const h = host();
  assert.equal(dataDirFor(h), '/var/lib/vmhost/demo');
  assert.equal(dataDirFor(h, { netns: 'lab' }), '/var/lib/vmhost/lab/demo');
  assert.match(dataDirFor(h, { netns: { path: '/proc/self/ns/net' } }), /^\/var\/lib\/vmhost\/nsfs\/\d+-\d+\/demo$/);
  assert.equal(dataDirFor(h, { dataDir: '/srv/data' }), '/srv/data');
  assert.throws(() => dataDirFor(h, { dataDir: 'rel' }), { field: 'dataDir' });
});

// ------------------------------------------------------------------ the seed fixture, in full

test('the seed fixture: every wanted entry with its kind and description, in apply order', () => {
  const seed = resolveHost(seedHostFile, seedDir);
  const got = desiredState(seed, { dir: '/run/vmhost/seed' }).map((d) => [d.entry.kind, d.entry.id, d.describe]);
  assert.deepEqual(got, [
    ['sysctl', 'sysctl:net.ipv4.ip_forward', 'sysctl net.ipv4.ip_forward=1 (NAT and port forwards)'],
    ['sysctl', 'sysctl:net.ipv6.conf.all.forwarding', 'sysctl net.ipv6.conf.all.forwarding=1 (IPv6 to the VMs)'],
    ['sysctl', 'sysctl:net.ipv6.conf.eth0.proxy_ndp', 'sysctl net.ipv6.conf.eth0.proxy_ndp=1 (answer neighbour discovery for the VMs)'],
    ['sysctl', 'sysctl:net.bridge.bridge-nf-call-ip6tables', "sysctl net.bridge.bridge-nf-call-ip6tables=1 (the VM ports' neighbour-advertisement check is an ip6tables rule on bridged frames (br_netfilter))"],
    ['link', 'link:br0', 'bridge br0 (mac de:ad:be:ef:24:31, stp off)'],
    ['link', 'link:veth0', 'veth veth0/veth1 on br0 (mac de:ad:be:ef:24:31, promisc)'],
    ['address', 'address:br0:192.168.0.1/24', 'address 192.168.0.1/24 on br0'],
    ['address', 'address:br0:2001:db8:8:5688::1/64', 'address 2001:db8:8:5688::1/64 on br0'],
    ['link', 'link:vdu-web', 'TAP vdu-web on br0 for web'],
    ['link', 'link:vdu-mail', 'TAP vdu-mail on br0 for mail'],
    ['proxyNeighbor', 'proxyNeighbor:eth0:2001:db8:8:5688::100', 'proxy neighbour 2001:db8:8:5688::100 on eth0 (web)'],
    ['route', 'route:2001:db8:8:5688::100/128', 'route 2001:db8:8:5688::100/128 dev br0 (web)'],
    ['proxyNeighbor', 'proxyNeighbor:eth0:2001:db8:8:5688::200', 'proxy neighbour 2001:db8:8:5688::200 on eth0 (mail)'],
    ['route', 'route:2001:db8:8:5688::200/128', 'route 2001:db8:8:5688::200/128 dev br0 (mail)'],
    ['firewall', 'firewall', 'firewall (owner seed: NAT, 4 port forward(s), IPv6, 2 isolated VM port(s))'],
    ['dnsmasq', 'dnsmasq', 'dnsmasq on br0 (192.168.0.100-192.168.0.150, 2 static lease(s), RA and DHCPv6 for 2001:db8:8:5688::/64)'],
    ['vm', 'vm:web', `VM web (256 MiB, 1 cpu, de:ad:be:ef:32:10, 192.168.0.100, 2001:db8:8:5688::100)`],
    ['vm', 'vm:mail', `VM mail (512 MiB, 1 cpu, ${seed.vms[1]!.mac}, 192.168.0.200, 2001:db8:8:5688::200)`],
  ]);
});

test('the seed fixture: the typed data of the links, the dnsmasq options and the VMs\' QEMU options', () => {
  const seed = resolveHost(seedHostFile, seedDir);
  const byId = new Map(wanted(seed, '/run/vmhost/seed').map((e) => [e.id, e]));
  assert.deepEqual(byId.get('link:br0')?.data, { name: 'br0', kind: 'bridge', mac: 'de:ad:be:ef:24:31', stp: false });
  assert.deepEqual(byId.get('link:veth0')?.data, { name: 'veth0', kind: 'veth', peer: 'veth1', mac: 'de:ad:be:ef:24:31', master: 'br0', promisc: true });
  assert.deepEqual(byId.get('link:vdu-mail')?.data, { name: 'vdu-mail', kind: 'tap', master: 'br0' });
  assert.deepEqual(byId.get('sysctl:net.ipv4.ip_forward')?.data, { key: 'net.ipv4.ip_forward', value: '1' });
  const dns = byId.get('dnsmasq');
  assert.equal(dns?.kind, 'dnsmasq');
  assert.deepEqual(dns.data.options, {
    dir: '/run/vmhost/seed/dnsmasq',
    interface: 'br0',
    address: '192.168.0.1',
    range: ['192.168.0.100', '192.168.0.150'],
    netmask: '255.255.255.0',
    leaseTime: '72h',
    hosts: [
      { mac: 'de:ad:be:ef:32:10', ipv4: '192.168.0.100', name: 'web', ipv6: '2001:db8:8:5688::100' },
      { mac: seed.vms[1]!.mac, ipv4: '192.168.0.200', name: 'mail', ipv6: '2001:db8:8:5688::200' },
    ],
    domain: 'lan',
    // routed mode: router advertisements and DHCPv6 on the bridge's /64, its address as DNS server
    ipv6: { prefix: '2001:db8:8:5688::/64', dnsServer: '2001:db8:8:5688::1', leaseTime: '72h' },
  });
  const mail = byId.get('vm:mail');
  assert.equal(mail?.kind, 'vm');
  assert.deepEqual(mail.data, {
    name: 'mail',
    options: {
      name: 'mail',
      runDir: '/run/vmhost/seed/vms/mail',
      memoryMiB: 512,
      cpus: 1,
      accel: 'auto',
      machine: 'q35',
      sandbox: 'auto',
      drives: [{ file: `${seedDir}/images/mail.img`, format: 'raw', cache: 'none', readOnly: false, interface: 'virtio' }],
      nics: [{ tap: 'vdu-mail', mac: seed.vms[1]!.mac, model: 'virtio-net-pci' }],
      console: { file: '/run/vmhost/seed/vms/mail/console.log' },
      kernel: '/boot/vmlinuz',
      initrd: `${seedDir}/images/initrd.img`,
      append: 'console=ttyS0',
    },
  });
});

test("a disk made from a base image stands read-only in the desired options (the start path puts it on the VM's own overlay)", () => {
  const h = structuredClone(seedHostFile);
  h.vms![1]!.disk = { base: 'images/debian-12.qcow2', size: '8G' };
  const mail = desiredState(resolveHost(h, seedDir), { dir: '/run/vmhost/seed' }).find((d) => d.entry.id === 'vm:mail')!.entry;
  assert.equal(mail.kind, 'vm');
  assert.deepEqual(mail.data.options.drives, [{ file: `${seedDir}/images/debian-12.qcow2`, format: 'qcow2', cache: 'writeback', readOnly: true, interface: 'virtio' }]);
});

test('desiredState is pure: the same host gives equal entries, the host is not changed, the namespace reaches the VMs only', () => {
  const seed = resolveHost(seedHostFile, seedDir);
  const before = structuredClone(seed);
  assert.deepEqual(wanted(seed), wanted(seed));
  assert.deepEqual(seed, before);
  const inNs = wanted(seed, '/run/x', 'lab');
  const plain = wanted(seed, '/run/x');
  for (const [i, e] of inNs.entries()) {
    const p = plain[i]!;
    if (e.kind === 'vm' && p.kind === 'vm') {
      assert.equal(e.data.options.netns, 'lab');
      assert.deepEqual({ ...e.data.options, netns: undefined }, { ...p.data.options, netns: undefined });
    } else assert.deepEqual(e, p);
  }
});

test('a VM with autostart false gets its TAP but no VM entry; a host without dhcp and ipv6 has no dnsmasq, proxy or IPv6 entries', () => {
  const h = host(BASE.replace('    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]', '    autostart: false\n    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]'));
  const ids = wanted(h).map((e) => e.id);
  assert.ok(ids.includes('link:lfg-mail'));
  assert.ok(!ids.includes('vm:mail'));
  const bare = host(`uplink: eth0\nbridge: { name: br0, ipv4: 192.168.0.1/24 }\nvms: [{ name: a, ipv4: 192.168.0.2, kernel: /k }]\n`);
  assert.deepEqual(wanted(bare).map((e) => e.id), ['sysctl:net.ipv4.ip_forward', 'sysctl:net.bridge.bridge-nf-call-ip6tables', 'link:br0', 'address:br0:192.168.0.1/24', 'link:krr-a', 'firewall', 'vm:a']);
});

test('the VMs\' ports: TAP, group, MAC, IPv4, own IPv6 in routed mode only, link-local policy; isolation off leaves the port out; the ports\' sysctl', () => {
  const ports = firewallModel(host()).ports!;
  assert.deepEqual(ports, [
    { interface: 'lfg-web', group: 'web', mac: 'de:ad:be:ef:32:10', ipv4: ['192.168.0.100'], ipv6: ['2001:db8:8:5688::100'], linkLocal: 'eui64' },
    { interface: 'lfg-mail', group: 'mail', mac: 'de:ad:be:ef:32:20', ipv4: ['192.168.0.200'], ipv6: ['2001:db8:8:5688::200'], linkLocal: 'eui64' },
  ]);
  // proxy mode: the host holds the VMs' IPv6 addresses, the VMs only their link-local ones
  assert.deepEqual(firewallModel(host(BASE.replace('mode: routed', 'mode: proxy'))).ports!.map((p) => p.ipv6), [[], []]);
  // no IPv6 at all
  const v4 = host(BASE.replace(/^ipv6: .*\n/m, '').replace(/, ipv6: "[^"]*"/, '').replace(/ {4}ipv6: .*\n/g, ''));
  assert.deepEqual(firewallModel(v4).ports!.map((p) => [p.group, p.ipv6]), [['web', []], ['mail', []]]);
  const mixed = host(BASE.replace('  - name: mail\n', '  - name: mail\n    isolation: false\n').replace('  - name: web\n', '  - name: web\n    linkLocal: any\n'));
  const m = firewallModel(mixed);
  assert.deepEqual(m.ports!.map((p) => [p.interface, p.linkLocal]), [['lfg-web', 'any']]);
  assert.doesNotThrow(() => render(m));
  assert.ok(wanted(mixed).some((e) => e.id === 'sysctl:net.bridge.bridge-nf-call-ip6tables'));
  const none = host(BASE.replace('  - name: mail\n', '  - name: mail\n    isolation: false\n').replace('  - name: web\n', '  - name: web\n    isolation: false\n'));
  assert.deepEqual(firewallModel(none).ports, []);
  assert.ok(!wanted(none).some((e) => e.id.startsWith('sysctl:net.bridge.')));
  // the firewall (and with it every port's rules) comes before any VM
  const ids = wanted(host()).map((e) => e.id);
  assert.ok(ids.indexOf('firewall') < ids.indexOf('vm:web'));
  assert.ok(ids.indexOf('link:lfg-mail') < ids.indexOf('firewall'));
});

test('bandwidth: toVm a tbf at the TAP\'s root; fromVm an ifb with the links, a tbf on it, the TAP\'s ingress and a redirect filter, all before the VM; left out: nothing', () => {
  const h = host(BASE.replace('  - name: web\n', '  - name: web\n    bandwidth: { toVm: 100mbit, fromVm: 50mbit }\n').replace('  - name: mail\n', '  - name: mail\n    bandwidth: { toVm: 64kbit }\n'));
  const all = wanted(h);
  const ids = all.map((e) => e.id);
  const tc = all.filter((e) => e.kind === 'qdisc' || e.kind === 'tcFilter' || e.id === 'link:lfg_web');
  assert.deepEqual(tc, [
    { id: 'link:lfg_web', kind: 'link', data: { name: 'lfg_web', kind: 'ifb' } },
    { id: 'qdisc:lfg-web:root', kind: 'qdisc', data: { dev: 'lfg-web', parent: 'root', handle: '1:', qdisc: { kind: 'tbf', rate: 100e6, burst: 312500, latency: 0.05 } } },
    { id: 'qdisc:lfg_web:root', kind: 'qdisc', data: { dev: 'lfg_web', parent: 'root', handle: '1:', qdisc: { kind: 'tbf', rate: 50e6, burst: 156250, latency: 0.05 } } },
    { id: 'qdisc:lfg-web:ingress', kind: 'qdisc', data: { dev: 'lfg-web', parent: 'ingress', handle: 'ffff:', qdisc: { kind: 'ingress' } } },
    { id: 'tcFilter:lfg-web:ingress:1', kind: 'tcFilter', data: { dev: 'lfg-web', parent: 'ingress', prio: 1, redirect: 'lfg_web' } },
    // 64 kbit/s: the bucket is at least two full-size frames
    { id: 'qdisc:lfg-mail:root', kind: 'qdisc', data: { dev: 'lfg-mail', parent: 'root', handle: '1:', qdisc: { kind: 'tbf', rate: 64e3, burst: 3200, latency: 0.05 } } },
  ]);
  assert.ok(ids.indexOf('link:lfg-mail') < ids.indexOf('link:lfg_web'));
  assert.ok(ids.indexOf('link:lfg_web') < ids.indexOf('firewall'));
  assert.ok(ids.indexOf('tcFilter:lfg-web:ingress:1') < ids.indexOf('vm:web'));
  assert.ok(ids.indexOf('qdisc:lfg-mail:root') < ids.indexOf('vm:mail'));
  assert.ok(!wanted(host()).some((e) => e.kind === 'qdisc' || e.kind === 'tcFilter' || e.id.startsWith('link:lfg_')));
});

test('adoption: the bridge, its veth and addresses name bridge.adopt (the plan says an adopted bridge and veth keep their own MAC, STP and promiscuity); a TAP and its IPv6 objects name vms[i].adopt, as the host file says', () => {
  const h = host(BASE.replace('ipv6: "2001:db8:8:5688::1/64" }', 'ipv6: "2001:db8:8:5688::1/64", adopt: true }').replace('    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]', '    adopt: true\n    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]'));
  const adopt = Object.fromEntries(wanted(h).map((e) => [e.id, 'adopt' in e ? e.adopt : undefined]));
  assert.deepEqual(adopt, {
    'sysctl:net.ipv4.ip_forward': undefined,
    'sysctl:net.ipv6.conf.eth0.accept_ra': undefined,
    'sysctl:net.ipv6.conf.all.forwarding': undefined,
    'sysctl:net.ipv6.conf.eth0.proxy_ndp': undefined,
    'sysctl:net.bridge.bridge-nf-call-ip6tables': undefined,
    'link:br0': { field: 'bridge.adopt', allowed: true, describe: 'bridge br0 (its own MAC and STP kept)' },
    'link:veth0': { field: 'bridge.adopt', allowed: true, describe: 'veth veth0/veth1 on br0 (its own MAC and promiscuity kept)' },
    'address:br0:192.168.0.1/24': { field: 'bridge.adopt', allowed: true },
    'address:br0:2001:db8:8:5688::1/64': { field: 'bridge.adopt', allowed: true },
    'link:lfg-web': { field: 'vms[0].adopt', allowed: false },
    'link:lfg-mail': { field: 'vms[1].adopt', allowed: true },
    'proxyNeighbor:eth0:2001:db8:8:5688::100': { field: 'vms[0].adopt', allowed: false },
    'route:2001:db8:8:5688::100/128': { field: 'vms[0].adopt', allowed: false },
    'proxyNeighbor:eth0:2001:db8:8:5688::200': { field: 'vms[1].adopt', allowed: true },
    'route:2001:db8:8:5688::200/128': { field: 'vms[1].adopt', allowed: true },
    firewall: undefined,
    dnsmasq: undefined,
    'vm:web': undefined,
    'vm:mail': undefined,
  });
  const b = host(BASE.replace('mode: routed', 'mode: proxy'));
  const a = wanted(b).find((e) => e.id === 'address:eth0:2001:db8:8:5688::200/128');
  assert.deepEqual(a?.kind === 'address' ? a.adopt : undefined, { field: 'vms[1].adopt', allowed: false });
});

test('machine and sandbox: microvm gets the virtio-mmio NIC, sandbox auto/on/off maps to QEMU\'s; microvm without a kernel is refused', () => {
  const h = host(BASE.replace('    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]', '    machine: microvm\n    sandbox: "on"\n    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]'));
  const mail = wanted(h).find((e) => e.id === 'vm:mail');
  assert.equal(mail?.kind, 'vm');
  assert.equal(mail.data.options.machine, 'microvm');
  assert.equal(mail.data.options.sandbox, true);
  assert.equal(mail.data.options.nics?.[0]?.model, 'virtio-net-device');
  const web = wanted(h).find((e) => e.id === 'vm:web');
  assert.equal(web?.kind, 'vm');
  assert.equal(web.data.options.machine, 'q35');
  assert.equal(web.data.options.sandbox, 'auto');
  const off = wanted(host(BASE.replace('    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]', '    sandbox: "off"\n    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]'))).find((e) => e.id === 'vm:mail');
  assert.equal(off?.kind === 'vm' && off.data.options.sandbox, false);
  assert.throws(
    () => host(BASE.replace('    kernel: /boot/vmlinuz\n    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]', '    machine: microvm\n    disk: /srv/mail.img\n    forwards: [{ port: 5678, toPort: 22 }, { port: 25 }]')),
    (e: unknown) => e instanceof Error && /vms\[1\]\.machine.*needs kernel/s.test(e.message),
  );
});
