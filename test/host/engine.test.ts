// The pure part of the engine: what a host file wants, in which order, and the firewall model it
// gives (no privilege, nothing applied).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from '@vmhost/firewall';
import { firewallModel, parseHostFile, stateDirFor, wantedEntries, type ResolvedHost } from '@vmhost/host';

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
  const ids = wantedEntries(host(), '/run/x').map((e) => e.id);
  assert.deepEqual(ids, [
    'sysctl:net.ipv4.ip_forward',
    'sysctl:net.ipv6.conf.eth0.accept_ra',
    'sysctl:net.ipv6.conf.all.forwarding',
    'sysctl:net.ipv6.conf.eth0.proxy_ndp',
    'link:br0',
    'link:veth0',
    'address:br0:192.168.0.1/24',
    'address:br0:2001:db8:8:5688::1/64',
    'link:vmt-web',
    'link:vmt-mail',
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
  const entries = wantedEntries(h, '/run/x');
  const ids = entries.map((e) => e.id);
  assert.ok(ids.includes('address:eth0:2001:db8:8:5688::100/128'));
  assert.ok(!ids.some((i) => i.startsWith('proxyNeighbor:') || i.startsWith('route:') || i.includes('proxy_ndp')));
  assert.equal(ids.at(-1), 'proxy6');
  const proxy = entries.at(-1)!.data.options as { routes: Array<{ listen: { address: string; port: number }; target: { host: string; port: number } }>; dir: string };
  assert.deepEqual(
    proxy.routes.map((r) => `[${r.listen.address}]:${r.listen.port}>${r.target.host}:${r.target.port}`),
    ['[2001:db8:8:5688::100]:1234>192.168.0.100:22', '[2001:db8:8:5688::100]:80>192.168.0.100:80', '[2001:db8:8:5688::200]:5678>192.168.0.200:22', '[2001:db8:8:5688::200]:25>192.168.0.200:25'],
  );
  assert.equal(proxy.dir, '/run/x/proxy6');
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
  const find = (h: ResolvedHost): { servers?: string[] } => wantedEntries(h, '/run/x').find((e) => e.id === 'dnsmasq')!.data.options as { servers?: string[] };
  assert.equal(find(host()).servers, undefined);
  const h = host(BASE.replace('domain: lan }', 'domain: lan, dnsServers: [198.51.100.53, "2001:db8::53"] }'));
  assert.deepEqual(find(h).servers, ['198.51.100.53', '2001:db8::53']);
});

test('state directory: /run/vmhost/<name>, under the namespace name with --netns, or as given', () => {
  const h = host();
  assert.equal(stateDirFor(h), '/run/vmhost/demo');
  assert.equal(stateDirFor(h, { netns: 'lab' }), '/run/vmhost/lab/demo');
  assert.equal(stateDirFor(h, { stateDir: '/srv/x' }), '/srv/x');
  assert.throws(() => stateDirFor(h, { stateDir: 'rel' }), { field: 'stateDir' });
});
