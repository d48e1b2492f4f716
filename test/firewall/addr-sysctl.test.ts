// Canonical address text (as iptables-save prints it) and the sysctl report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requiredSysctls } from '@vmhost/firewall';
import { ip } from '@vmhost/net';

// The firewall writes prefixes and addresses as @vmhost/net's ip module gives iptables' text.
const canonicalPrefix = (t: string): string => ip.iptablesText(t);
const canonicalAddress = (t: string): string => ip.formatAddressInetNtop(ip.parseAddress(t));

test('prefixes are masked and IPv6 is written as inet_ntop does', () => {
  const cases: Array<[string, string]> = [
    ['192.168.0.7/24', '192.168.0.0/24'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8:0:0::1', '2001:db8::1/128'],
    ['2001:db8:1:2:3:4:5:6/48', '2001:db8:1::/48'],
    ['2001:0:0:1:0:0:0:1/128', '2001:0:0:1::1/128'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1/128'],
    ['fe80::1%0'.replace('%0', ''), 'fe80::1/128'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1/128'],
    // as inet_ntop (and so ip6tables-save) prints them: IPv4-compatible with a dotted tail, ::2 not
    ['::102:304', '::1.2.3.4/128'],
    ['::2', '::2/128'],
    ['::ffff:0:0/96', '::ffff:0.0.0.0/96'],
    ['1:0:0:1::1/64', '1:0:0:1::/64'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalPrefix(input), want, input);
  assert.equal(canonicalAddress('2001:db8:0000:0000:0000:0000:0000:0100'), '2001:db8::100');
  assert.equal(canonicalAddress('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
});

test('requiredSysctls reports what the rules need and nothing more', () => {
  assert.deepEqual(requiredSysctls({ owner: 'x' }), []);
  const v4 = requiredSysctls({ owner: 'x', masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth0' }] });
  assert.deepEqual(v4.map((s) => `${s.key}=${s.value}`), ['net.ipv4.ip_forward=1']);
  const both = requiredSysctls(
    {
      owner: 'x',
      lan: { interface: 'br0', subnets: ['192.168.0.0/24', '2001:db8:1::/64'] },
      portForwards: [{ protocol: 'tcp', port: 2222, to: '192.168.0.100', toPort: 22, localhost: true }],
    },
    { raInterfaces: ['eth0'] },
  );
  assert.deepEqual(both.map((s) => `${s.key}=${s.value}`), [
    'net.ipv4.ip_forward=1',
    'net.ipv6.conf.all.forwarding=1',
    'net.ipv6.conf.eth0.accept_ra=2',
    'net.ipv4.conf.br0.route_localnet=1',
  ]);
  for (const s of both) assert.ok(s.reason.length > 0);
  assert.throws(() => requiredSysctls({ owner: 'x', portForwards: [{ protocol: 'tcp', port: 1, to: '2001:db8::1' }] }, { raInterfaces: ['bad name'] }), {
    field: 'raInterfaces[0]',
  });
  // an interface name with a dot is written with '/' in the key, as sysctl(8) does
  const vlan = requiredSysctls({ owner: 'x', portForwards: [{ protocol: 'tcp', port: 1, to: '2001:db8::1' }] }, { raInterfaces: ['eth0.7'] });
  assert.ok(vlan.some((s) => s.key === 'net.ipv6.conf.eth0/7.accept_ra'), JSON.stringify(vlan));
});

test('isolated VM ports need bridged IPv6 in ip6tables (the neighbour-advertisement check)', () => {
  const port = { interface: 'vmtap0', group: 'web', mac: '52:54:00:12:34:56' };
  const keys = (m: Parameters<typeof requiredSysctls>[0]) => requiredSysctls(m).map((s) => `${s.key}=${s.value}`);
  assert.ok(keys({ owner: 'lab', ports: [port] }).includes('net.bridge.bridge-nf-call-ip6tables=1'));
  assert.deepEqual(keys({ owner: 'lab', ports: [{ ...port, isolation: false }] }), []);
});
