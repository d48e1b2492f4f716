// Bad input: typed ValidationErrors naming the field (dotted path) and the value, before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '@vmhost/net';
import { render, validateModel, type FirewallModel } from '@vmhost/firewall';

function rejects(model: unknown, field: string, value?: unknown): void {
  assert.throws(
    () => render(model as FirewallModel),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
      assert.equal(e.field, field, e.message);
      assert.equal(e.code, 'EVALIDATION');
      if (value !== undefined) assert.deepEqual(e.value, value);
      return true;
    },
  );
}

const fwd = { protocol: 'tcp', port: 80, to: '192.168.0.100' };

test('ports outside 1-65535 and reversed ranges', () => {
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: 0 }] }, 'portForwards[0].port', 0);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: 65536 }] }, 'portForwards[0].port', 65536);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: 1.5 }] }, 'portForwards[0].port');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: '80' }] }, 'portForwards[0].port', '80');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: [90, 80] }] }, 'portForwards[0].port', [90, 80]);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: [80, 70000] }] }, 'portForwards[0].port[1]', 70000);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, toPort: 0 }] }, 'portForwards[0].toPort', 0);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: [100, 200], toPort: 65500 }] }, 'portForwards[0].toPort', 65500);
  rejects({ owner: 'lab', forward: [{ protocol: 'tcp', port: [5, 4], action: 'accept' }] }, 'forward[0].port');
});

test('two forwards of the same public port, protocol and address', () => {
  rejects({ owner: 'lab', portForwards: [fwd, { ...fwd, to: '192.168.0.101' }] }, 'portForwards[1].port', 80);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, port: [70, 90] }, { ...fwd, port: [90, 95] }] }, 'portForwards[1].port');
  // an address-less forward takes the port on every address
  rejects({ owner: 'lab', portForwards: [fwd, { ...fwd, destination: '203.0.113.2' }] }, 'portForwards[1].port');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, group: 'a' }, { ...fwd, group: 'b', inInterface: 'eth0' }] }, 'portForwards[1].port');
  // different protocol, address, interface or family: fine
  validateModel({
    owner: 'lab',
    portForwards: [
      fwd,
      { ...fwd, protocol: 'udp' },
      { ...fwd, port: 81 },
      { ...fwd, to: '2001:db8::5' },
    ],
  } as FirewallModel);
  validateModel({
    owner: 'lab',
    portForwards: [
      { ...fwd, destination: '203.0.113.2' },
      { ...fwd, destination: '203.0.113.3' },
    ],
  } as FirewallModel);
  validateModel({
    owner: 'lab',
    portForwards: [
      { ...fwd, inInterface: 'eth0' },
      { ...fwd, inInterface: 'eth1' },
    ],
  } as FirewallModel);
});

test('invalid addresses, families and interface names', () => {
  rejects({ owner: 'lab', portForwards: [{ ...fwd, to: '192.168.0.300' }] }, 'portForwards[0].to', '192.168.0.300');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, to: '192.168.0.100', destination: '2001:db8::2' }] }, 'portForwards[0].to', '192.168.0.100');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, to: '2001:db8::5', destination: '203.0.113.2' }] }, 'portForwards[0].to', '2001:db8::5');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, destination: '203.0.113.2/24' }] }, 'portForwards[0].destination');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, inInterface: 'eth0; rm -rf /' }] }, 'portForwards[0].inInterface');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, inInterface: 'averyveryverylongname' }] }, 'portForwards[0].inInterface');
  rejects({ owner: 'lab', masquerade: [{ source: '192.168.0.0/33', outInterface: 'eth0' }] }, 'masquerade[0].source');
  rejects({ owner: 'lab', masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth 0' }] }, 'masquerade[0].outInterface');
  rejects({ owner: 'lab', masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth0', toSource: '2001:db8::1' }] }, 'masquerade[0].toSource');
  rejects({ owner: 'lab', forward: [{ source: '10.0.0.0/8', destination: '2001:db8::/32', action: 'accept' }] }, 'forward[0].destination');
  rejects({ owner: 'lab', forward: [{ family: 6, source: '10.0.0.0/8', action: 'accept' }] }, 'forward[0].source');
  rejects({ owner: 'lab', forward: [{ family: 4, protocol: 'ipv6-icmp', action: 'accept' }] }, 'forward[0].protocol');
  rejects({ owner: 'lab', forward: [{ protocol: 'icmp', port: 5, action: 'accept' }] }, 'forward[0].port');
  rejects({ owner: 'lab', forward: [{ action: 'allow' }] }, 'forward[0].action', 'allow');
  rejects({ owner: 'lab', forward: [{ state: ['NEW', 'BOGUS'], action: 'accept' }] }, 'forward[0].state[1]', 'BOGUS');
  rejects({ owner: 'lab', input: [{ outInterface: 'eth0', action: 'accept' }] }, 'input[0].outInterface');
  rejects({ owner: 'lab', output: [{ inInterface: 'eth0', action: 'accept' }] }, 'output[0].inInterface');
  rejects({ owner: 'lab', lan: { interface: 'br0', subnets: [] } }, 'lan.subnets');
  rejects({ owner: 'lab', lan: { interface: 'br0', subnets: ['x'] } }, 'lan.subnets[0]', 'x');
});

test('hairpin and localhost need what they use', () => {
  rejects({ owner: 'lab', portForwards: [{ ...fwd, hairpin: true }] }, 'portForwards[0].hairpin', true);
  rejects({ owner: 'lab', lan: { interface: 'br0', subnets: ['2001:db8:1::/64'] }, portForwards: [{ ...fwd, hairpin: true }] }, 'portForwards[0].hairpin');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, to: '2001:db8::5', localhost: true }] }, 'portForwards[0].localhost');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, localhost: true, fromHost: false }] }, 'portForwards[0].localhost');
});

test('owner and group names: safe characters, chain names within 28 characters', () => {
  rejects({ owner: '' }, 'owner', '');
  rejects({ owner: 'a-b' }, 'owner', 'a-b');
  rejects({ owner: 'lab"; -F' }, 'owner');
  rejects({ owner: 'x'.repeat(17) }, 'owner', 'x'.repeat(17));
  validateModel({ owner: 'x'.repeat(16) });
  rejects({ owner: 'lab', portForwards: [{ ...fwd, group: 'web-1' }] }, 'portForwards[0].group', 'web-1');
  // VMHOST-lab-<group>-D: 7 + 3 + 1 + group + 2 <= 28 → group <= 15
  validateModel({ owner: 'lab', portForwards: [{ ...fwd, group: 'g'.repeat(15) }] } as FirewallModel);
  rejects({ owner: 'lab', portForwards: [{ ...fwd, group: 'g'.repeat(16) }] }, 'portForwards[0].group');
  rejects({ owner: 'x'.repeat(16), portForwards: [{ ...fwd, group: 'abc' }] }, 'portForwards[0].group', 'abc');
});

test('comments are validated, never pasted raw', () => {
  rejects({ owner: 'lab', portForwards: [{ ...fwd, comment: 'a"b' }] }, 'portForwards[0].comment', 'a"b');
  rejects({ owner: 'lab', portForwards: [{ ...fwd, comment: 'line\nbreak' }] }, 'portForwards[0].comment');
  rejects({ owner: 'lab', forward: [{ action: 'accept', comment: '' }] }, 'forward[0].comment', '');
  rejects({ owner: 'lab', forward: [{ action: 'accept', comment: 'x'.repeat(201) }] }, 'forward[0].comment');
});

test('unknown fields are refused (a typo must not silently drop a restriction)', () => {
  rejects({ owner: 'lab', portForwards: [{ ...fwd, inInterfce: 'eth0' }] }, 'portForwards[0].inInterfce', 'eth0');
  rejects({ owner: 'lab', masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth0', out: 'x' }] }, 'masquerade[0].out');
  rejects({ owner: 'lab', lan: { interface: 'br0', subnets: ['192.168.0.0/24'], dhcpd: true } }, 'lan.dhcpd');
  rejects({ owner: 'lab', portforwards: [] }, 'portforwards');
  rejects({ owner: 'lab', input: [{ action: 'accept', protocl: 'tcp' }] }, 'input[0].protocl', 'tcp');
  rejects({ owner: 'lab', forward: [{ action: 'drop', sorce: '10.0.0.0/8' }] }, 'forward[0].sorce');
  rejects({ owner: 'lab', output: [{ action: 'accept', states: ['NEW'] }] }, 'output[0].states');
  rejects(null, 'model');
  rejects({ owner: 'lab', portForwards: {} }, 'portForwards');
  rejects({ owner: 'lab', allowIcmpv6: 'yes' }, 'allowIcmpv6', 'yes');
});

test('a group on a rule: forward rules only, and a valid group name for the owner', () => {
  rejects({ owner: 'lab', input: [{ protocol: 'tcp', port: 22, action: 'accept', group: 'web' }] }, 'input[0].group', 'web');
  rejects({ owner: 'lab', output: [{ action: 'accept', group: 'web' }] }, 'output[0].group', 'web');
  rejects({ owner: 'lab', forward: [{ action: 'accept', group: 'we b' }] }, 'forward[0].group', 'we b');
  rejects({ owner: 'lab', forward: [{ action: 'accept', group: 'x'.repeat(30) }] }, 'forward[0].group');
  assert.equal(validateModel({ owner: 'lab', forward: [{ action: 'accept', group: 'web' }] }).forward[0]!.group, 'web');
});

test('rules that repeat an address, interface or group: each checked again where its use differs', () => {
  const ok = { outInterface: 'br0', destination: '2001:db8::5', protocol: 'tcp', port: 22, state: ['NEW'], action: 'accept', group: 'vm0' };
  // the same address text in an IPv4 rule, after it was found valid in an IPv6 one
  rejects({ owner: 'lab', forward: [ok, { ...ok, family: 4 }] }, 'forward[1].destination', '2001:db8::5');
  rejects({ owner: 'lab', forward: [ok, { ...ok, destination: undefined, source: '10.0.0.0/8' }, { ...ok, source: '10.0.0.0/8' }] }, 'forward[2].destination');
  // an interface name valid as an output interface, in an input rule; a group valid in forward, on output
  rejects({ owner: 'lab', forward: [ok], input: [{ inInterface: 'br0', action: 'accept' }, { outInterface: 'br0', action: 'accept' }] }, 'input[1].outInterface', 'br0');
  rejects({ owner: 'lab', forward: [ok], output: [{ action: 'accept', group: 'vm0' }] }, 'output[0].group', 'vm0');
  // a bad name is refused every time it comes, not only the first
  rejects({ owner: 'lab', forward: [ok, { ...ok, outInterface: 'br 0' }] }, 'forward[1].outInterface', 'br 0');
  rejects({ owner: 'lab', forward: [{ ...ok, state: ['NEW', 'OLD'] }] }, 'forward[0].state[1]', 'OLD');
  const m = validateModel({ owner: 'lab', forward: [ok, { ...ok, state: ['ESTABLISHED', 'NEW'] }, { ...ok, destination: '2001:DB8:0::5/128' }] } as FirewallModel);
  assert.deepEqual(m.forward.map((r) => [r.families, r.destination, r.state]), [
    [[6], '2001:db8::5/128', ['NEW']],
    [[6], '2001:db8::5/128', ['NEW', 'ESTABLISHED']],
    [[6], '2001:db8::5/128', ['NEW']],
  ]);
});

const port = { interface: 'vmtap0', group: 'web', mac: '52:54:00:12:34:56', ipv4: ['192.168.0.100'], ipv6: ['2001:db8:1::100'] };

test('ports: names, MAC, addresses and policies are checked field by field', () => {
  rejects({ owner: 'lab', ports: port }, 'ports');
  rejects({ owner: 'lab', ports: [null] }, 'ports[0]');
  rejects({ owner: 'lab', ports: [{ ...port, mac: undefined }] }, 'ports[0].mac');
  rejects({ owner: 'lab', ports: [{ ...port, mac: '52:54:00:12:34' }] }, 'ports[0].mac', '52:54:00:12:34');
  rejects({ owner: 'lab', ports: [{ ...port, mac: '01:00:5e:00:00:01' }] }, 'ports[0].mac', '01:00:5e:00:00:01');
  rejects({ owner: 'lab', ports: [{ ...port, interface: 'a-very-long-tap-name' }] }, 'ports[0].interface');
  rejects({ owner: 'lab', ports: [{ ...port, interface: 'tap+' }] }, 'ports[0].interface', 'tap+');
  rejects({ owner: 'lab', ports: [{ ...port, group: 'we-b' }] }, 'ports[0].group', 'we-b');
  rejects({ owner: 'lab', ports: [{ ...port, group: 'a_group_name_too_long' }] }, 'ports[0].group');
  rejects({ owner: 'lab', ports: [{ ...port, ipv4: '192.168.0.100' }] }, 'ports[0].ipv4');
  rejects({ owner: 'lab', ports: [{ ...port, ipv4: ['2001:db8::1'] }] }, 'ports[0].ipv4[0]', '2001:db8::1');
  rejects({ owner: 'lab', ports: [{ ...port, ipv6: ['2001:db8::1', '192.168.0.1'] }] }, 'ports[0].ipv6[1]', '192.168.0.1');
  rejects({ owner: 'lab', ports: [{ ...port, ipv4: ['0.0.0.0/0'] }] }, 'ports[0].ipv4[0]', '0.0.0.0/0');
  rejects({ owner: 'lab', ports: [{ ...port, ipv4: ['0.0.0.0'] }] }, 'ports[0].ipv4[0]', '0.0.0.0');
  rejects({ owner: 'lab', ports: [{ ...port, ipv4: ['255.255.255.255'] }] }, 'ports[0].ipv4[0]');
  rejects({ owner: 'lab', ports: [{ ...port, ipv6: ['::'] }] }, 'ports[0].ipv6[0]', '::');
  rejects({ owner: 'lab', ports: [{ ...port, ipv6: ['ff02::1'] }] }, 'ports[0].ipv6[0]', 'ff02::1');
  rejects({ owner: 'lab', ports: [{ ...port, ipv6: ['2001:db8::/0'] }] }, 'ports[0].ipv6[0]');
  rejects({ owner: 'lab', ports: [{ ...port, linkLocal: 'stable' }] }, 'ports[0].linkLocal', 'stable');
  rejects({ owner: 'lab', ports: [{ ...port, isolation: 'on' }] }, 'ports[0].isolation', 'on');
  rejects({ owner: 'lab', ports: [{ ...port, macAddress: 'x' }] }, 'ports[0].macAddress');
});

test('ports: no two ports share an interface, a group, a MAC or an address', () => {
  const other = { interface: 'vmtap1', group: 'mail', mac: '52:54:00:12:34:57', ipv4: ['192.168.0.200'], ipv6: ['2001:db8:1::200'] };
  validateModel({ owner: 'lab', ports: [port, other] });
  rejects({ owner: 'lab', ports: [port, { ...other, interface: 'vmtap0' }] }, 'ports[1].interface', 'vmtap0');
  rejects({ owner: 'lab', ports: [port, { ...other, group: 'web' }] }, 'ports[1].group', 'web');
  rejects({ owner: 'lab', ports: [port, { ...other, mac: '52:54:00:12:34:56' }] }, 'ports[1].mac');
  rejects({ owner: 'lab', ports: [port, { ...other, ipv4: ['192.168.0.100'] }] }, 'ports[1].ipv4[0]', '192.168.0.100');
  // a prefix of one VM that covers another's address
  rejects({ owner: 'lab', ports: [port, { ...other, ipv4: ['192.168.0.96/28'] }] }, 'ports[1].ipv4[0]', '192.168.0.96/28');
  rejects({ owner: 'lab', ports: [port, { ...other, ipv6: ['2001:db8:1::/64'] }] }, 'ports[1].ipv6[0]', '2001:db8:1::/64');
  // an address inside a prefix claimed earlier, two overlapping prefixes, the same address written otherwise
  rejects({ owner: 'lab', ports: [{ ...port, ipv4: ['192.168.0.96/28'] }, { ...other, ipv4: ['192.168.0.100'] }] }, 'ports[1].ipv4[0]', '192.168.0.100');
  rejects({ owner: 'lab', ports: [{ ...port, ipv6: ['2001:db8:1::/64'] }, { ...other, ipv6: ['2001:db8:1::/56'] }] }, 'ports[1].ipv6[0]', '2001:db8:1::/56');
  rejects({ owner: 'lab', ports: [port, { ...other, ipv6: ['2001:DB8:1:0:0::100'] }] }, 'ports[1].ipv6[0]', '2001:DB8:1:0:0::100');
  // many ports, each its own address: accepted (checked in time linear in the ports)
  validateModel({ owner: 'lab', ports: Array.from({ length: 2000 }, (_, i) => ({ interface: `t${i}`, group: `g${i}`, mac: `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ipv4: [`10.0.${i >> 8}.${i & 255}`], ipv6: [`2001:db8:1::${(i + 1).toString(16)}`] })) });
  // an isolated-off port still may not claim another's addresses
  rejects({ owner: 'lab', ports: [port, { ...other, isolation: false, ipv6: ['2001:db8:1::100'] }] }, 'ports[1].ipv6[0]');
});

test('ports: normalized (lower-case MAC, canonical prefixes, defaults)', () => {
  const m = validateModel({ owner: 'lab', ports: [{ interface: 'vmtap0', group: 'g', mac: '52-54-00-AB-CD-EF', ipv4: ['10.0.0.1/29', '10.0.0.1/29'], ipv6: ['2001:DB8::0:1'] }] });
  assert.deepEqual(m.ports, [
    { index: 0, interface: 'vmtap0', group: 'g', mac: '52:54:00:ab:cd:ef', ipv4: ['10.0.0.0/29'], ipv6: ['2001:db8::1/128'], linkLocal: 'eui64', isolation: true },
  ]);
});

test('interface names that iptables would read otherwise are refused: a + wildcard, quotes, commas', () => {
  for (const name of ['br+', 'br0,eth0', 'a"b', "a'b", '-x', 'a b']) {
    rejects({ owner: 'lab', forward: [{ action: 'accept', inInterface: name }] }, 'forward[0].inInterface', name);
    rejects({ owner: 'lab', lan: { interface: name, subnets: ['192.168.0.0/24'] } }, 'lan.interface', name);
    rejects({ owner: 'lab', masquerade: [{ source: '192.168.0.0/24', outInterface: name }] }, 'masquerade[0].outInterface', name);
    rejects({ owner: 'lab', portForwards: [{ ...fwd, inInterface: name }] }, 'portForwards[0].inInterface', name);
  }
});

test('validateModel: the normalized model is frozen and taken as it is by render, plan and requiredSysctls', async () => {
  const { goldenModels } = await import('./models.js');
  const { plan, requiredSysctls } = await import('@vmhost/firewall');
  for (const [name, model] of Object.entries(goldenModels)) {
    const m = validateModel(model);
    assert.ok(Object.isFrozen(m) && Object.isFrozen(m.portForwards) && m.portForwards.every((f) => Object.isFrozen(f)), `${name}: frozen all through`);
    assert.throws(() => (m.portForwards as unknown[]).push({}), TypeError);
    assert.equal(validateModel(m), m, `${name}: a normalized model is returned as it is`);
    // the same output from the model and from its normalized form
    assert.deepEqual(render(m), render(model), name);
    const saved = { ipv4: '', ipv6: '', bridge: '' };
    assert.deepEqual(plan(m, saved), plan(model, saved), name);
    assert.deepEqual(requiredSysctls(m), requiredSysctls(model), name);
  }
  // an object validateModel did not return is checked, even when made from one that it did
  const copy = { ...validateModel(goldenModels[Object.keys(goldenModels)[0]!]!), owner: 'not an owner!' } as unknown as FirewallModel;
  assert.throws(() => render(copy), (e: unknown) => e instanceof ValidationError && e.field === 'owner');
});
