// Unit tests of the API layer without a kernel: a fake netlink driver records what would be sent.
// Bad input must be rejected with a ValidationError naming the field before anything is sent;
// good input must produce the expected rtnetlink request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codec, netlink, NetlinkSocket, NetlinkClosedError, ValidationError, sysctlPath, validateIfName, type NlMsg } from '@vmhost/net';
import { RtnlContext } from '../../packages/net/src/context.js';
import { newLinks } from '../../packages/net/src/links/links.js';
import { newAddresses } from '../../packages/net/src/addresses.js';
import { newRoutes } from '../../packages/net/src/routes.js';
import { newNeighbors } from '../../packages/net/src/neighbors.js';
import type { NetlinkDriverFactory } from '../../packages/net/src/transport/driver.js';
import type { DriverSocketOptions } from '../../packages/net/src/transport/socket.js';

const { decodeNlMsgs } = netlink;

const C = codec.constants;

function fake(): { ctx: RtnlContext; sent: NlMsg[]; sock: NetlinkSocket } {
  const sent: NlMsg[] = [];
  const driver: NetlinkDriverFactory = () => ({
    portId: 4242,
    send: (d: Buffer) => void sent.push(...decodeNlMsgs(d)),
    addMembership: () => undefined,
    ref: () => undefined,
    close: () => undefined,
  });
  const options: DriverSocketOptions = { driver };
  const sock = NetlinkSocket.open(options);
  return { ctx: new RtnlContext(sock, '/proc/self/ns/net'), sent, sock };
}

const flush = () => new Promise((r) => setImmediate(r));

test('invalid link specs and changes: ValidationError naming the field, nothing sent', async () => {
  const { ctx, sent, sock } = fake();
  const links = newLinks(ctx);
  const cases: Array<[unknown, string]> = [
    [{ kind: 'veth', name: '', peer: { name: 'p' } }, 'name'],
    [{ kind: 'veth', name: 'a b', peer: { name: 'p' } }, 'name'],
    [{ kind: 'veth', name: 'a', peer: { name: 'x'.repeat(16) } }, 'peer.name'],
    [{ kind: 'veth', name: 'a', peer: { name: 'a' } }, 'peer.name'],
    [{ kind: 'veth', name: 'a' }, 'peer'],
    [{ kind: 'veth', name: 'a', mac: 'ff:ff:ff:ff:ff:ff', peer: { name: 'p' } }, 'mac'],
    [{ kind: 'veth', name: 'a', mac: '00:00:00:00:00:00', peer: { name: 'p' } }, 'mac'],
    [{ kind: 'veth', name: 'a', peer: { name: 'p', mac: 'zz' } }, 'peer.mac'],
    [{ kind: 'veth', name: 'a', mtu: 67, peer: { name: 'p' } }, 'mtu'],
    [{ kind: 'veth', name: 'a', mtu: 1500.5, peer: { name: 'p' } }, 'mtu'],
    [{ kind: 'veth', name: 'a', up: 'yes', peer: { name: 'p' } }, 'up'],
    [{ kind: 'bridge', name: 'b', forwardDelay: -1 }, 'forwardDelay'],
    [{ kind: 'bridge', name: 'b', forwardDelay: 1.234 }, 'forwardDelay'],
    [{ kind: 'bridge', name: 'b', priority: 70000 }, 'priority'],
    [{ kind: 'vlan', name: 'v', link: 'eth0', id: 0 }, 'id'],
    [{ kind: 'vlan', name: 'v', link: 'eth0', id: 4095 }, 'id'],
    [{ kind: 'vlan', name: 'v', link: 'eth/0', id: 5 }, 'link'],
    [{ kind: 'vlan', name: 'v', link: 'eth0', id: 5, protocol: 'qinq' }, 'protocol'],
    [{ kind: 'macvlan', name: 'm', link: 'eth0', mode: 'weird' }, 'mode'],
    [{ kind: 'vxlan', name: 'x', vni: -1 }, 'vni'],
    [{ kind: 'vxlan', name: 'x', vni: 16777216 }, 'vni'],
    [{ kind: 'vxlan', name: 'x', vni: 1, remote: '300.1.1.1' }, 'remote'],
    [{ kind: 'vxlan', name: 'x', vni: 1, remote: '198.51.100.1', local: '2001:db8::1' }, 'local'],
    [{ kind: 'vxlan', name: 'x', vni: 1, group: '239.1.1.1' }, 'dev'],
    [{ kind: 'vxlan', name: 'x', vni: 1, port: 0 }, 'port'],
    [{ kind: 'tap', name: 't', owner: -1 }, 'owner'],
    [{ kind: '', name: 'x' }, 'kind'],
  ];
  for (const [spec, field] of cases) {
    await assert.rejects(links.add(spec as never), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(spec));
  }
  for (const [ch, field] of [[{ mac: '01:02:03:04:05:06' }, 'mac'], [{ name: '' }, 'name'], [{ master: 'a:b' }, 'master'], [{ netns: { pid: 0 } }, 'netns.pid'], [{ txQueueLen: -1 }, 'txQueueLen']] as const) {
    await assert.rejects(links.set('eth0', ch as never), (e: unknown) => e instanceof ValidationError && e.field === field);
  }
  await assert.rejects(links.get(0), (e: unknown) => e instanceof ValidationError && e.field === 'link');
  await assert.rejects(links.delete('a/b'), (e: unknown) => e instanceof ValidationError && e.field === 'link');
  await flush();
  assert.equal(sent.length, 0);
  sock.close();
});

test('invalid addresses, routes and neighbours: ValidationError naming the field, nothing sent', async () => {
  const { ctx, sent, sock } = fake();
  const addrs = newAddresses(ctx);
  const routes = newRoutes(ctx);
  const neigh = newNeighbors(ctx);
  const checks: Array<[() => Promise<unknown>, string]> = [
    [() => addrs.add('eth0', '10.0.0.1'), 'cidr'],
    [() => addrs.add('eth0', '10.0.0.1/33'), 'cidr'],
    [() => addrs.add('eth0', '2001:db8::1/129'), 'cidr'],
    [() => addrs.add('eth0', '10.0.0.1/8', { peer: '2001:db8::1' }), 'options.peer'],
    [() => addrs.add('eth0', '10.0.0.1/8', { broadcast: '2001:db8::1' }), 'options.broadcast'],
    [() => addrs.add('eth0', '10.0.0.1/8', { scope: 'galaxy' as never }), 'options.scope'],
    [() => addrs.list({ family: 5 as never }), 'filter.family'],
    [() => routes.add({ to: '10.0.0.0/33' }), 'to'],
    [() => routes.add({ to: '10.0.0.1/8' }), 'to'],
    [() => routes.add({ to: '2001:db8::/32', via: '10.0.0.1' }), 'via'],
    [() => routes.add({ to: 'default', via: 'gateway' }), 'via'],
    [() => routes.add({ to: 'default', table: 0 }), 'table'],
    [() => routes.add({ to: 'default', type: 'teleport' as never }), 'type'],
    [() => routes.add({ to: 'default', dev: 'x'.repeat(16) }), 'dev'],
    [() => routes.list({ table: -3 }), 'filter.table'],
    [() => neigh.add({ to: '10.0.0.300', dev: 'eth0' }), 'to'],
    [() => neigh.add({ to: '10.0.0.3', dev: '' }), 'dev'],
    [() => neigh.add({ to: '10.0.0.3', dev: 'eth0', lladdr: 'nope' }), 'lladdr'],
    [() => neigh.add({ to: '10.0.0.3', dev: 'eth0', state: 'delay' as never }), 'state'],
    [() => neigh.add({ to: '2001:db8::3', dev: 'eth0', proxy: true, lladdr: '52:54:00:00:00:01' }), 'lladdr'],
  ];
  for (const [fn, field] of checks) await assert.rejects(fn(), (e: unknown) => e instanceof ValidationError && e.field === field, field);
  await flush();
  assert.equal(sent.length, 0);
  sock.close();
});

test('unknown keys in link, address, route and neighbour specs and filters: a ValidationError naming the key, nothing sent', async () => {
  const { ctx, sent, sock } = fake();
  const links = newLinks(ctx);
  const addrs = newAddresses(ctx);
  const routes = newRoutes(ctx);
  const neigh = newNeighbors(ctx);
  const checks: Array<[() => Promise<unknown>, string]> = [
    // the case that left a peer down: `up` belongs to the link, the peer has none
    [() => links.add({ kind: 'veth', name: 'v0', peer: { name: 'v1', up: true } } as never), 'peer.up'],
    [() => links.add({ kind: 'veth', name: 'v0', upp: true, peer: { name: 'v1' } } as never), 'upp'],
    [() => links.add({ kind: 'bridge', name: 'b0', peer: { name: 'x' } } as never), 'peer'],
    [() => links.add({ kind: 'bridge', name: 'b0', stpp: true } as never), 'stpp'],
    [() => links.add({ kind: 'tap', name: 't0', vnethdr: true } as never), 'vnethdr'],
    [() => links.add({ kind: 'vlan', name: 'v0', link: 'eth0', id: 5, vid: 5 } as never), 'vid'],
    [() => links.add({ kind: 'macvlan', name: 'm0', link: 'eth0', id: 5 } as never), 'id'],
    [() => links.add({ kind: 'vxlan', name: 'x0', vni: 1, dstport: 4789 } as never), 'dstport'],
    [() => links.add({ kind: 'dummy', name: 'd0', stp: true } as never), 'stp'],
    [() => links.set('eth0', { mtuu: 1400 } as never), 'mtuu'],
    [() => links.list({ kidn: 'veth' } as never), 'filter.kidn'],
    [() => addrs.add('eth0', '10.0.0.1/8', { noDad: true } as never), 'options.noDad'],
    [() => addrs.list({ dev: 'eth0' } as never), 'filter.dev'],
    [() => routes.add({ to: 'default', gateway: '10.0.0.1' } as never), 'gateway'],
    [() => routes.delete({ to: 'default', dev: 'eth0', oif: 2 } as never), 'oif'],
    [() => routes.list({ famliy: 6 } as never), 'filter.famliy'],
    [() => neigh.add({ to: '10.0.0.3', dev: 'eth0', mac: '52:54:00:00:00:01' } as never), 'mac'],
    [() => neigh.list({ proxied: true } as never), 'filter.proxied'],
  ];
  for (const [fn, field] of checks) {
    await assert.rejects(fn(), (e: unknown) => e instanceof ValidationError && e.field === field && /unknown key \(expected one of: /.test(e.message), field);
  }
  await flush();
  assert.equal(sent.length, 0);
  sock.close();
});

test('interface names: ASCII letters, digits, -, _ and ., not starting with - or . (they go into iptables, dnsmasq.conf and sysctl paths)', async () => {
  const { ctx, sent, sock } = fake();
  const links = newLinks(ctx);
  for (const good of ['eth0', 'br-lan', 'eth0.100', 'wlp2s0', 'veth_a', '_x', '0', 'abcdefghijklmno']) assert.doesNotThrow(() => validateIfName(good), good);
  for (const bad of ['', 'br+', 'eth0,eth0', 'a"b', "a'b", 'a b', 'a\tb', 'a\nb', 'a/b', 'a:b', '.', '..', '.x', '-x', 'eth%d', 'a#b', 'a!b', 'a@b', 'a*b', 'ｅth0', 'é', 'abcdefghijklmnop', 'a\0b']) {
    assert.throws(() => validateIfName(bad, 'dev'), (e: unknown) => e instanceof ValidationError && e.field === 'dev', JSON.stringify(bad));
    await assert.rejects(links.get(bad), (e: unknown) => e instanceof ValidationError && e.field === 'link', JSON.stringify(bad));
  }
  await flush();
  assert.equal(sent.length, 0);
  sock.close();
});

test('sysctl keys: dotted under net., "/" for a dot in a component, no way out of /proc/sys/net', () => {
  assert.equal(sysctlPath('net.ipv4.ip_forward'), '/proc/sys/net/ipv4/ip_forward');
  assert.equal(sysctlPath('net.ipv6.conf.eth0.proxy_ndp'), '/proc/sys/net/ipv6/conf/eth0/proxy_ndp');
  assert.equal(sysctlPath('net.ipv4.conf.eth0/42.forwarding'), '/proc/sys/net/ipv4/conf/eth0.42/forwarding');
  for (const bad of ['', 'kernel.pid_max', 'net', 'net.', 'net..ipv4', 'net.ipv4.conf.//.x', 'net.ipv4.conf./.x', 'net.a b', 'net.a\0b', 42, null]) {
    assert.throws(() => sysctlPath(bad), (e: unknown) => e instanceof ValidationError && e.field === 'key', String(bad));
  }
});

test('a veth add is one RTM_NEWLINK with create|excl|echo, the peer nested in VETH_INFO_PEER; a route add as ip builds it', async () => {
  const { ctx, sent, sock } = fake();
  const p = newLinks(ctx).add({ kind: 'veth', name: 'veth0', mac: 'de:ad:be:ef:24:31', up: true, promisc: true, mtu: 1400, peer: { name: 'veth1', mac: '02:00:00:00:00:02' } });
  const r = newRoutes(ctx).add({ to: '198.51.100.0/24', via: '192.168.0.254', metric: 50, table: 1000 });
  for (let i = 0; i < 100 && sent.length < 2; i++) await flush();
  assert.equal(sent.length, 2);
  const [m, rt] = sent as [NlMsg, NlMsg];
  assert.equal(m.type, C.RTM_NEWLINK);
  assert.equal(m.flags & (C.NLM_F_CREATE | C.NLM_F_EXCL | C.NLM_F_ECHO | C.NLM_F_REQUEST | C.NLM_F_ACK), C.NLM_F_CREATE | C.NLM_F_EXCL | C.NLM_F_ECHO | C.NLM_F_REQUEST | C.NLM_F_ACK);
  const d = codec.decodeLinkMessage(m.payload);
  assert.deepEqual(d.header, { family: 0, type: 0, index: 0, flags: C.IFF_UP | C.IFF_PROMISC, change: C.IFF_UP | C.IFF_PROMISC });
  assert.deepEqual([d.attrs.ifname, d.attrs.address, d.attrs.mtu, d.attrs.linkinfo?.kind], ['veth0', 'de:ad:be:ef:24:31', 1400, 'veth']);
  const peer = (d.attrs.linkinfo?.data as codec.VethData).peer!;
  assert.deepEqual([peer.attrs.ifname, peer.attrs.address], ['veth1', '02:00:00:00:00:02']);
  assert.equal(rt.type, C.RTM_NEWROUTE);
  const rd = codec.decodeRouteMessage(rt.payload);
  assert.deepEqual(
    [rd.header.family, rd.header.dstLength, rd.header.table, rd.header.protocol, rd.header.scope, rd.header.type, rd.attrs.table, rd.attrs.dst, rd.attrs.gateway, rd.attrs.priority],
    [C.AF_INET, 24, C.RT_TABLE_UNSPEC, C.RTPROT_BOOT, C.RT_SCOPE_UNIVERSE, C.RTN_UNICAST, 1000, '198.51.100.0', '192.168.0.254', 50],
  );
  sock.close();
  await assert.rejects(p, NetlinkClosedError);
  await assert.rejects(r, NetlinkClosedError);
});
