// Real traffic through the firewall, IPv4 and IPv6: wan reaches a service in vm through a DNAT
// forward, vm reaches wan through masquerade with the host's address as source, hairpin from the
// VMs to the public address:port, the host itself reaches the forward, a removed group no longer
// connects while the other still does, and unsolicited traffic to the VMs is dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, applySysctls, removeGroup, requiredSysctls, type FirewallModel } from '@vmhost/firewall';
import { ADDR, connect, startServer, topology } from './topology.js';
import { sh } from '../helpers/ns.js';
import { netns } from '@vmhost/net';

function model(family: 4 | 6): FirewallModel {
  const vm = family === 4 ? ADDR.vm4 : ADDR.vm6;
  const subnet = family === 4 ? '192.168.0.0/24' : '2001:db8:1::/64';
  return {
    owner: 'lab',
    lan: { interface: 'br0', subnets: [subnet] },
    masquerade: [{ source: subnet, outInterface: 'eth0' }],
    forward: [{ inInterface: 'br0', outInterface: 'eth0', action: 'accept' }],
    allowIcmpv6: true,
    portForwards: [
      { protocol: 'tcp', port: 8080, to: vm, toPort: 80, inInterface: 'eth0', hairpin: true, group: 'web' },
      // IPv6 forwards name the public address; IPv4 ones take any address of the host
      ...(family === 6 ? [{ protocol: 'tcp' as const, port: 8443, to: vm, toPort: 443, destination: ADDR.host6, group: 'web' }] : []),
      { protocol: 'tcp', port: 2525, to: vm, toPort: 25, inInterface: 'eth0', group: 'mail' },
    ],
  };
}

for (const family of [4, 6] as const) {
  test(`IPv${family}: DNAT, masquerade, hairpin, host access, group removal, isolation`, async (t) => {
    const topo = await topology(t);
    const a = family === 4
      ? { host: ADDR.host4, wan: ADDR.wan4, br: ADDR.br4, vm: ADDR.vm4 }
      : { host: ADDR.host6, wan: ADDR.wan6, br: ADDR.br6, vm: ADDR.vm6 };
    const m = model(family);
    const previous = await applySysctls(requiredSysctls(m), { netns: topo.host });
    // the address-less forward rule is rendered for both families, so both need forwarding
    assert.deepEqual(previous.map((p) => `${p.key}=${p.value}`), ['net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0']);
    assert.equal(netns.readFileIn(topo.host, '/proc/sys/net/ipv4/ip_forward').trim(), '1');
    await startServer(t, topo.vm, [80, 25, 443]);
    await startServer(t, topo.wan, [7000]);

    // Before the firewall: wan cannot reach the VM service through the host.
    assert.equal((await connect(topo.wan, a.host, 8080)).error, 'ECONNREFUSED');

    const r = await apply(m, { netns: topo.host });
    assert.equal(r.changed, true);

    await t.test('wan reaches the vm through the DNAT forward, with its own address as source', async () => {
      assert.deepEqual(await connect(topo.wan, a.host, 8080), { port: 80, peer: a.wan });
      assert.deepEqual(await connect(topo.wan, a.host, 2525), { port: 25, peer: a.wan });
      if (family === 6) assert.deepEqual(await connect(topo.wan, a.host, 8443), { port: 443, peer: a.wan });
    });

    await t.test('the vm reaches wan through masquerade, with the host address as source', async () => {
      assert.deepEqual(await connect(topo.vm, a.wan, 7000), { port: 7000, peer: a.host });
    });

    await t.test('hairpin: the VMs reach the public address:port and the replies come back through the host', async () => {
      assert.deepEqual(await connect(topo.vm2, a.host, 8080), { port: 80, peer: a.br }, 'from the other VM');
      // A VM reaching itself: br_netfilter bridges the DNATed packet back out of the port it came
      // in on, which a bridge refuses unless the port is in hairpin mode (a link setting).
      await sh(topo.host, 'ip', ['link', 'set', 'vm0', 'type', 'bridge_slave', 'hairpin', 'on']);
      assert.deepEqual(await connect(topo.vm, a.host, 8080), { port: 80, peer: a.br }, 'from the VM itself');
      // mail has no hairpin: from the LAN the public port is the host's own (nothing listens there)
      assert.equal((await connect(topo.vm2, a.host, 2525)).error, 'ECONNREFUSED');
    });

    await t.test('the host itself reaches the forward on its public address', async () => {
      assert.deepEqual(await connect(topo.host, a.host, 8080), { port: 80, peer: a.host });
    });

    await t.test('unsolicited connections from wan straight to the vm are dropped', async () => {
      // give wan a route to the VM subnet so that only the firewall stands in the way
      await sh(topo.wan, 'ip', family === 4 ? ['route', 'add', '192.168.0.0/24', 'via', ADDR.host4] : ['-6', 'route', 'add', '2001:db8:1::/64', 'via', ADDR.host6]);
      assert.deepEqual(await connect(topo.wan, a.vm, 80), { error: 'ETIMEDOUT' });
    });

    await t.test('removing the mail group closes its port and leaves web open', async () => {
      const rr = await removeGroup('lab', 'mail', { netns: topo.host });
      const plan = family === 4 ? rr.ipv4 : rr.ipv6;
      assert.ok(plan.deleted.every((c) => c.startsWith('VMHOST-lab-mail-')), plan.deleted.join());
      assert.ok(!plan.written.some((c) => c.includes('-web-')), 'web chains are not rewritten');
      assert.equal((await connect(topo.wan, a.host, 2525)).error, 'ECONNREFUSED');
      assert.deepEqual(await connect(topo.wan, a.host, 8080), { port: 80, peer: a.wan });
      // applying the full model again brings mail back and rewrites no web chain
      const back = await apply(m, { netns: topo.host });
      const p2 = family === 4 ? back.ipv4 : back.ipv6;
      assert.ok(!p2.written.some((c) => c.includes('-web-')), p2.written.join());
      assert.deepEqual(await connect(topo.wan, a.host, 2525), { port: 25, peer: a.wan });
    });
  });
}
