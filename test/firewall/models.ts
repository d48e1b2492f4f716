// Models shared by the golden, plan and integration tests: one per feature and their combinations.
import type { FirewallModel } from '@vmhost/firewall';

/** The seed guide's firewall (NAT, forwarding, the four DNAT forwards, IPv6 ICMP and traceroute). */
export const seedModel: FirewallModel = {
  owner: 'seed',
  lan: { interface: 'br0', subnets: ['192.168.0.0/24'], isolate: false },
  masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth0' }],
  forward: [
    { inInterface: 'br0', source: '192.168.0.0/24', action: 'accept' },
    { inInterface: 'eth0', destination: '192.168.0.0/24', action: 'accept' },
    { family: 6, protocol: 'ipv6-icmp', action: 'accept' },
    { family: 6, inInterface: 'br0', protocol: 'udp', port: 33434, action: 'accept' },
  ],
  output: [{ outInterface: 'br0', destination: '192.168.0.0/24', state: ['NEW'], action: 'accept' }],
  portForwards: [
    { protocol: 'tcp', port: 1234, to: '192.168.0.100', toPort: 22, inInterface: 'eth0', group: 'web' },
    { protocol: 'tcp', port: 80, to: '192.168.0.100', inInterface: 'eth0', group: 'web' },
    { protocol: 'tcp', port: 5678, to: '192.168.0.200', toPort: 22, inInterface: 'eth0', group: 'mail' },
    { protocol: 'tcp', port: 25, to: '192.168.0.200', inInterface: 'eth0', group: 'mail' },
  ],
};

/** Golden cases: name → model. */
export const goldenModels: Record<string, FirewallModel> = {
  empty: { owner: 'nothing' },
  'masquerade-v4': { owner: 'lab', masquerade: [{ source: '192.168.0.7/24', outInterface: 'eth0' }] },
  'masquerade-snat-and-nat66': {
    owner: 'lab',
    masquerade: [
      { source: '192.168.0.0/24', outInterface: 'eth0', toSource: '203.0.113.2', comment: 'fixed source' },
      { source: '2001:DB8:1:0::/64', outInterface: 'eth0' },
    ],
  },
  'forward-rules': {
    owner: 'lab',
    established: false,
    forward: [
      { inInterface: 'br0', source: '192.168.0.0/24', action: 'accept' },
      { inInterface: 'eth0', outInterface: 'br0', protocol: 'tcp', port: [1000, 2000], sourcePort: 53, state: ['NEW', 'INVALID'], action: 'reject', comment: 'no-high-ports' },
      { destination: '2001:db8::0:1', protocol: 'udp', port: 53, action: 'drop' },
      { protocol: 'icmp', action: 'return' },
    ],
    input: [{ inInterface: 'eth0', protocol: 'tcp', port: 22, action: 'accept' }],
    output: [{ outInterface: 'eth0', protocol: 'udp', port: 123, action: 'accept' }],
  },
  'port-forward-basic': {
    owner: 'lab',
    portForwards: [{ protocol: 'tcp', port: 1234, to: '192.168.0.100', toPort: 22, inInterface: 'eth0' }],
  },
  'port-forward-destination-udp-range': {
    owner: 'lab',
    portForwards: [
      { protocol: 'udp', port: [6000, 6010], to: '192.168.0.100', destination: '203.0.113.2', fromHost: false },
      { protocol: 'tcp', port: [7000, 7009], to: '192.168.0.100', toPort: 17000, destination: '203.0.113.2', comment: 'shifted range' },
    ],
  },
  'port-forward-v6': {
    owner: 'lab',
    portForwards: [
      { protocol: 'tcp', port: 80, to: '2001:db8:1::100', destination: '2001:db8::2', inInterface: 'eth0' },
      { protocol: 'tcp', port: 8080, to: '2001:db8:1:0:0:0:0:100', toPort: 80 },
    ],
  },
  hairpin: {
    owner: 'lab',
    lan: { interface: 'br0', subnets: ['192.168.0.0/24', '2001:db8:1::/64'] },
    portForwards: [
      { protocol: 'tcp', port: 80, to: '192.168.0.100', inInterface: 'eth0', hairpin: true },
      { protocol: 'tcp', port: 80, to: '2001:db8:1::100', destination: '2001:db8::2', hairpin: true },
    ],
  },
  groups: {
    owner: 'lab',
    portForwards: [
      { protocol: 'tcp', port: 25, to: '192.168.0.200', group: 'mail' },
      { protocol: 'tcp', port: 80, to: '192.168.0.100', group: 'web' },
      { protocol: 'tcp', port: 443, to: '192.168.0.100', group: 'web' },
      { protocol: 'udp', port: 53, to: '192.168.0.53' },
    ],
  },
  // routed IPv6: each VM's published ports are grouped forward rules; 'mail' has no port forward
  // of its own, so its F chain holds only its rule; the ungrouped rule stays in the owner chain
  'grouped-forward-rules': {
    owner: 'lab',
    lan: { interface: 'br0', subnets: ['192.168.0.0/24', '2001:db8:8:5688::/64'] },
    forward: [
      { inInterface: 'br0', outInterface: 'eth0', action: 'accept' },
      { outInterface: 'br0', destination: '2001:db8:8:5688::100', protocol: 'tcp', port: 22, state: ['NEW'], action: 'accept', group: 'web', comment: 'web published (IPv6)' },
      { outInterface: 'br0', destination: '2001:db8:8:5688::200', protocol: 'tcp', port: [25, 26], state: ['NEW'], action: 'accept', group: 'mail' },
    ],
    portForwards: [{ protocol: 'tcp', port: 1234, to: '192.168.0.100', toPort: 22, group: 'web' }],
  },
  localhost: {
    owner: 'lab',
    lan: { interface: 'br0', subnets: ['192.168.0.0/24'] },
    portForwards: [
      { protocol: 'tcp', port: 2222, to: '192.168.0.100', toPort: 22, localhost: true },
      { protocol: 'tcp', port: 8443, to: '192.168.0.100', toPort: 443, destination: '203.0.113.2', localhost: true },
    ],
  },
  'lan-services': {
    owner: 'lab',
    lan: { interface: 'br0', subnets: ['192.168.0.0/24', '2001:db8:1::/64'], dhcp: true, dns: true, bridgeLocal: false },
  },
  icmpv6: { owner: 'lab', allowIcmpv6: true },
  seed: seedModel,
  'full-dual-stack': {
    owner: 'host1',
    lan: { interface: 'br0', subnets: ['192.168.0.0/24', '2001:db8:1::/64'], dhcp: true, dns: true },
    masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth0' }],
    forward: [{ inInterface: 'br0', action: 'accept' }],
    allowIcmpv6: true,
    portForwards: [
      { protocol: 'tcp', port: 22, to: '192.168.0.100', toPort: 22, inInterface: 'eth0', hairpin: true, group: 'web' },
      { protocol: 'tcp', port: 443, to: '2001:db8:1::100', inInterface: 'eth0', group: 'web' },
      { protocol: 'udp', port: [60000, 60100], to: '192.168.0.200', inInterface: 'eth0', group: 'mosh' },
    ],
  },
  // VM ports: anti-spoofing and guards per port (ebtables + ip6tables raw for NA targets)
  'ports-basic': {
    owner: 'lab',
    ports: [{ interface: 'vmtap0', group: 'web', mac: '52:54:00:12:34:56', ipv4: ['192.168.0.100'], ipv6: ['2001:db8:1::100'] }],
  },
  // prefixes, a listed (stable-privacy) link-local address, the 'any' link-local policy, a port
  // with isolation off (nothing rendered for it), an IPv4-only VM and a VM without addresses
  'ports-policies': {
    owner: 'lab',
    ports: [
      { interface: 'vmtap3', group: 'routed', mac: '52:54:00:AA:00:03', ipv4: ['203.0.113.64/29'], ipv6: ['2001:db8:5::/64', 'fe80::1c2d:3e4f:5a6b:7c8d'] },
      { interface: 'vmtap1', group: 'nm', mac: '52-54-00-aa-00-01', ipv4: ['192.168.0.101'], ipv6: ['2001:db8:1::101'], linkLocal: 'any' },
      { interface: 'vmtap2', group: 'trusted', mac: '52:54:00:aa:00:02', ipv4: ['192.168.0.102'], isolation: false },
      { interface: 'vmtap4', group: 'v4only', mac: '52:54:00:aa:00:04', ipv4: ['192.168.0.104'] },
      { interface: 'vmtap5', group: 'dhcponly', mac: '52:54:00:aa:00:05' },
    ],
  },
  // a VM's ports and its forwards share the group: one group's chains in every family
  'ports-with-forwards': {
    ...seedModel,
    owner: 'seed',
    ports: [
      { interface: 'vm0', group: 'web', mac: '52:54:00:00:00:64', ipv4: ['192.168.0.100'], ipv6: ['2001:db8:1::100'] },
      { interface: 'vm1', group: 'mail', mac: '52:54:00:00:00:c8', ipv4: ['192.168.0.200'], ipv6: ['2001:db8:1::200'] },
    ],
  },
};
