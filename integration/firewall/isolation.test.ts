// VM port isolation with real frames. Two "VMs" (namespaces a and v) hang on the host's bridge by
// veth ports standing in for TAPs; a sends hand-built hostile frames (packet.py, AF_PACKET), then
// a harmless sentinel. The oracles: what v's interface receives (a raw capture that stops at the
// sentinel; frames from one sender on one CPU stay in order, so a frame missing when the sentinel
// arrived was dropped), the host's neighbour table (`ip -j neigh`) and v's routes (`ip -j route`).
// With isolation on every attack is dropped and the legitimate frames pass; with it off the same
// attacks get through (so the test can fail), and everything goes again with remove().
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Rtnl, netns } from '@vmhost/net';
import { apply, applySysctls, remove, removeGroup, requiredSysctls, type FirewallModel, type Port } from '@vmhost/firewall';
import { Lab } from '@vmhost/lab';
import { ipJson, sh } from '../helpers/ns.js';
import * as F from './frames.js';
import { FW_LAB_PREFIX, connect, saveStripped, startServer } from './topology.js';

const PACKET = join(import.meta.dirname, 'packet.py');
const PYTHON = '/usr/bin/python3';

const HOST = { mac: '52:54:00:00:01:01', v4: '192.168.0.1', v6: '2001:db8:1::1' };
const A = { mac: '52:54:00:00:0a:01', v4: '192.168.0.100', v6: '2001:db8:1::100', ll: F.eui64LinkLocal('52:54:00:00:0a:01') };
const V = { mac: '52:54:00:00:0b:01', v4: '192.168.0.200', v6: '2001:db8:1::200', ll: F.eui64LinkLocal('52:54:00:00:0b:01') };

interface Net {
  host: string;
  a: string;
  v: string;
}

async function network(t: TestContext): Promise<Net> {
  const lab = await Lab.create({
    prefix: FW_LAB_PREFIX,
    namespaces: {
      // locktime 0: an ARP packet may change a neighbour entry at once (the ARP oracle)
      host: { bridges: { br0: { mac: HOST.mac } }, addresses: { br0: [`${HOST.v4}/24`, `${HOST.v6}/64`] }, sysctls: { 'net.ipv4.neigh.br0.locktime': 0 } },
      a: {},
      v: {},
    },
    links: [
      { a: { ns: 'host', name: 'vm0', master: 'br0' }, b: { ns: 'a', name: 'eth0', mac: A.mac }, addresses: { b: [`${A.v4}/24`, `${A.v6}/64`] } },
      { a: { ns: 'host', name: 'vm1', master: 'br0' }, b: { ns: 'v', name: 'eth0', mac: V.mac }, addresses: { b: [`${V.v4}/24`, `${V.v6}/64`] } },
    ],
  });
  t.after(() => lab.close());
  return { host: lab.ns('host'), a: lab.ns('a'), v: lab.ns('v') };
}

function model(isolationA: boolean, extra: Partial<Port> = {}): FirewallModel {
  return {
    owner: 'iso',
    ports: [
      { interface: 'vm0', group: 'a', mac: A.mac, ipv4: [A.v4], ipv6: [A.v6], isolation: isolationA, ...extra },
      { interface: 'vm1', group: 'v', mac: V.mac, ipv4: [V.v4], ipv6: [V.v6] },
    ],
  };
}

/**
 * Starts a capture on `iface` of `ns`, sends `frames` and then `sentinel` from `from`'s eth0, and
 * returns the hex of every frame the capture saw before the sentinel.
 */
async function exchange(t: TestContext, from: string, ns: string, frames: readonly Uint8Array[], sentinel: Uint8Array): Promise<Set<string>> {
  const cap: ChildProcess = netns.spawn(ns, PYTHON, [PACKET, 'capture', 'eth0', F.hex(sentinel), '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    cap.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  cap.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<string>((resolve, reject) => {
    cap.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`capture exited ${String(code)}: ${err}`))));
  });
  await new Promise<void>((resolve, reject) => {
    cap.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    cap.on('close', () => reject(new Error(`capture ended before it was ready: ${err}`)));
  });
  await sh(from, PYTHON, [PACKET, 'send', 'eth0', ...frames.map(F.hex), F.hex(sentinel)]);
  const res = JSON.parse((await done).slice('ready\n'.length)) as { frames: string[]; sentinel: boolean };
  assert.ok(res.sentinel, 'the sentinel (a frame the VM may send) did not arrive');
  return new Set(res.frames);
}

const u8 = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
let seq = 0;
/** A legitimate frame from A with a unique payload: what ends a capture. */
const sentinel = (): Uint8Array => F.udpFrame({ srcMac: A.mac, src: A.v4, dst: '255.255.255.255', sport: 9, dport: 9, data: u8(0xee, seq++ & 0xff) });

/** What a hostile VM a sends (the MAC spoof last: it would teach the bridge V's MAC on a's port). */
function attacks(): Record<string, Uint8Array> {
  return {
    'IPv4 source of another VM': F.udpFrame({ srcMac: A.mac, src: V.v4, dst: '255.255.255.255', sport: 9, dport: 9, data: u8(1) }),
    'IPv6 source of another VM': F.udpFrame({ srcMac: A.mac, src: V.v6, dst: 'ff02::1', sport: 9, dport: 9, data: u8(2) }),
    'IPv6 link-local source that is not its own': F.udpFrame({ srcMac: A.mac, src: 'fe80::1234', dst: 'ff02::1', sport: 9, dport: 9, data: u8(3) }),
    "gratuitous ARP for another VM's IPv4": F.gratuitousArp(A.mac, V.v4),
    'ARP whose sender MAC is not its own': F.ether(F.BROADCAST, A.mac, 0x0806, F.arp({ op: 2, sha: '52:54:00:00:0c:01', spa: A.v4, tha: F.BROADCAST, tpa: A.v4 })),
    "unsolicited neighbour advertisement for another VM's IPv6": F.neighbourAdvert({ srcMac: A.mac, src: A.v6, target: V.v6 }),
    "neighbour advertisement for its own IPv6 with another VM's MAC": F.neighbourAdvert({ srcMac: A.mac, src: A.v6, target: A.v6, tlla: V.mac }),
    "neighbour solicitation with another VM's MAC as its source": F.neighbourSolicit({ srcMac: A.mac, src: A.v6, target: HOST.v6, slla: V.mac }),
    'the same behind a destination options header': F.neighbourAdvert({ srcMac: A.mac, src: A.v6, target: V.v6, destOpts: true }),
    'DHCPv4 server reply': F.dhcpOffer({ srcMac: A.mac, server: A.v4, yiaddr: '192.168.0.55', chaddr: V.mac }),
    'DHCPv6 server reply': F.dhcp6Advertise({ srcMac: A.mac, src: A.ll, dst: V.ll, dstMac: V.mac }),
    'router advertisement': F.routerAdvert({ srcMac: A.mac, src: A.ll, prefix: '2001:db8:99::' }),
    'router advertisement behind a destination options header': F.routerAdvert({ srcMac: A.mac, src: A.ll, prefix: '2001:db8:98::', destOpts: true }),
    'ICMPv4 redirect': F.redirect4({ srcMac: A.mac, dstMac: V.mac, src: A.v4, dst: V.v4, gateway: A.v4, about: '198.51.100.1' }),
    'ICMPv6 redirect': F.redirect6({ srcMac: A.mac, src: A.ll, dst: V.ll, dstMac: V.mac, better: A.ll, target: '2001:db8:77::1' }),
    'another EtherType (802.1Q)': F.ether(F.BROADCAST, A.mac, 0x8100, u8(0, 1, 0x08, 0x00, ...F.ipv4(V.v4, '255.255.255.255', 17, F.udp(V.v4, '255.255.255.255', 9, 9, u8(4))))),
    "another VM's source MAC": F.udpFrame({ srcMac: V.mac, src: A.v4, dst: '255.255.255.255', sport: 9, dport: 9, data: u8(5) }),
  };
}

/** What a well-behaved VM sends, and must still be able to with isolation on. */
function legitimate(): Record<string, Uint8Array> {
  return {
    'DHCP discovery from 0.0.0.0': F.udpFrame({ srcMac: A.mac, src: '0.0.0.0', dst: '255.255.255.255', sport: 68, dport: 67, data: u8(1, 1, 6, 0) }),
    'ARP probe (sender 0.0.0.0)': F.ether(F.BROADCAST, A.mac, 0x0806, F.arp({ op: 1, sha: A.mac, spa: '0.0.0.0', tha: '00:00:00:00:00:00', tpa: A.v4 })),
    'ARP request from its address': F.arpRequest(A.mac, A.v4, V.v4),
    'duplicate address detection from ::': F.neighbourSolicit({ srcMac: A.mac, src: '::', target: A.v6 }),
    'duplicate address detection with a nonce (RFC 7527)': F.neighbourSolicit({ srcMac: A.mac, src: '::', target: A.v6, nonce: true }),
    'neighbour solicitation without options': F.neighbourSolicit({ srcMac: A.mac, src: A.v6, target: V.v6, dst: V.v6 }),
    'neighbour solicitation from its link-local address': F.neighbourSolicit({ srcMac: A.mac, src: A.ll, target: V.v6 }),
    'neighbour advertisement for its own address': F.neighbourAdvert({ srcMac: A.mac, src: A.v6, target: A.v6 }),
    'neighbour advertisement for its link-local address': F.neighbourAdvert({ srcMac: A.mac, src: A.ll, target: A.ll }),
    'IPv6 from its link-local address': F.udpFrame({ srcMac: A.mac, src: A.ll, dst: 'ff02::1', sport: 9, dport: 9, data: u8(6) }),
    'IPv6 from its address': F.udpFrame({ srcMac: A.mac, src: A.v6, dst: 'ff02::1', sport: 9, dport: 9, data: u8(7) }),
  };
}

async function neighbour(ns: string, addr: string): Promise<string | undefined> {
  const list = await ipJson<Array<{ dst: string; lladdr?: string }>>(ns, ['neigh', 'show', addr, 'dev', 'br0']);
  return list[0]?.lladdr;
}

async function prefixRoute(ns: string, prefix: string): Promise<boolean> {
  return (await ipJson<unknown[]>(ns, ['-6', 'route', 'show', prefix])).length > 0;
}

/** The host knows V and A at their MACs (stale, so that ARP and neighbour discovery may change them). */
async function knowVictim(n: Net): Promise<void> {
  const h = await Rtnl.open({ netns: n.host });
  try {
    for (const vm of [V, A]) {
      await h.neighbors.replace({ to: vm.v4, dev: 'br0', lladdr: vm.mac, state: 'stale' });
      await h.neighbors.replace({ to: vm.v6, dev: 'br0', lladdr: vm.mac, state: 'stale' });
    }
  } finally {
    h.close();
  }
  for (const vm of [V, A]) {
    assert.equal(await neighbour(n.host, vm.v4), vm.mac);
    assert.equal(await neighbour(n.host, vm.v6), vm.mac);
  }
}

async function applyModel(n: Net, m: FirewallModel): Promise<void> {
  await applySysctls(requiredSysctls(m), { netns: n.host });
  await apply(m, { netns: n.host });
}

test('isolation on: every spoofing attempt and rogue server message from a VM port is dropped; legitimate frames pass', async (t) => {
  const n = await network(t);
  const before = await saveStripped(n.host);
  await applyModel(n, model(true));
  await knowVictim(n);

  const bad = attacks();
  const good = legitimate();
  const got = await exchange(t, n.a, n.v, [...Object.values(bad), ...Object.values(good)], sentinel());
  for (const [name, frame] of Object.entries(bad)) assert.ok(!got.has(F.hex(frame)), `dropped: ${name}`);
  for (const [name, frame] of Object.entries(good)) assert.ok(got.has(F.hex(frame)), `passes: ${name}`);

  // and nothing changed where it matters: the host still sends V's traffic to V, V has no rogue prefix
  assert.equal(await neighbour(n.host, V.v4), V.mac, 'ARP spoofing had no effect');
  assert.equal(await neighbour(n.host, V.v6), V.mac, 'NA spoofing had no effect');
  assert.equal(await neighbour(n.host, A.v4), A.mac, "ARP with another's sender MAC had no effect");
  assert.equal(await neighbour(n.host, A.v6), A.mac, "NS/NA with another's link-layer address had no effect");
  assert.equal(await prefixRoute(n.v, '2001:db8:99::/64'), false, 'the rogue RA installed nothing');
  assert.equal(await prefixRoute(n.v, '2001:db8:98::/64'), false, 'the rogue RA behind an extension header installed nothing');

  // ordinary traffic between the VMs and with the host works
  await startServer(t, n.v, [7000]);
  assert.equal((await connect(n.a, V.v4, 7000)).peer, A.v4);
  assert.equal((await connect(n.a, V.v6, 7000)).peer, A.v6);
  await startServer(t, n.a, [7001]);
  assert.equal((await connect(n.host, A.v4, 7001)).peer, HOST.v4);
  assert.equal((await connect(n.host, A.v6, 7001)).peer, HOST.v6);

  // the counters agree: the drops happened in the port chain (ebtables) and the ND chain (ip6tables raw)
  const eb = await sh(n.host, 'ebtables-nft', ['-t', 'nat', '-L', 'VMHOST-iso-a-S', '--Lc']);
  assert.match(eb, /-s ! 52:54:00:00:0a:01 -j DROP , pcnt = [1-9]/);
  const raw = await sh(n.host, 'ip6tables-save', ['-c', '-t', 'raw']);
  assert.match(raw, /\[[1-9]\d*:\d+\] -A VMHOST-iso-a-N -j DROP/);

  await remove('iso', { netns: n.host });
  assert.equal(await saveStripped(n.host), before, 'remove restores iptables-save, ip6tables-save and ebtables-save exactly');
});

test('isolation off: the same attacks get through (the oracles can tell)', async (t) => {
  const n = await network(t);
  await applyModel(n, model(false));
  await knowVictim(n);
  const bad = attacks();
  const got = await exchange(t, n.a, n.v, Object.values(bad), sentinel());
  for (const [name, frame] of Object.entries(bad)) assert.ok(got.has(F.hex(frame)), `arrives: ${name}`);
  assert.equal(await neighbour(n.host, V.v4), A.mac, "the host now sends V's IPv4 traffic to A");
  assert.equal(await neighbour(n.host, V.v6), A.mac, "the host now sends V's IPv6 traffic to A");
  assert.equal(await neighbour(n.host, A.v4), '52:54:00:00:0c:01', "A's IPv4 now points at a MAC that is not A's");
  assert.equal(await neighbour(n.host, A.v6), V.mac, "A's IPv6 now points at V's MAC (A can flood V)");
  assert.equal(await prefixRoute(n.v, '2001:db8:99::/64'), true, "V took A's router advertisement");
});

test('link-local policy: eui64 admits only the MAC-derived address, any admits fe80::/10 (source and NA target)', async (t) => {
  const n = await network(t);
  const other = 'fe80::1c2d:3e4f:5a6b:7c8d';
  const frames = {
    source: F.udpFrame({ srcMac: A.mac, src: other, dst: 'ff02::1', sport: 9, dport: 9, data: u8(8) }),
    target: F.neighbourAdvert({ srcMac: A.mac, src: other, target: other }),
  };
  await applyModel(n, model(true));
  let got = await exchange(t, n.a, n.v, Object.values(frames), sentinel());
  assert.ok(!got.has(F.hex(frames.source)) && !got.has(F.hex(frames.target)), 'eui64: a stable-privacy address is refused');
  // listed explicitly, it is the VM's own
  const r = await apply(model(true, { ipv6: [A.v6, other] }), { netns: n.host });
  assert.deepEqual([r.bridge.written, r.ipv6.written], [['VMHOST-iso-a-S'], ['VMHOST-iso-a-N']], 'only the changed VM\'s chains are rewritten');
  got = await exchange(t, n.a, n.v, Object.values(frames), sentinel());
  assert.ok(got.has(F.hex(frames.source)) && got.has(F.hex(frames.target)), 'a listed link-local address passes');
  await apply(model(true, { linkLocal: 'any' }), { netns: n.host });
  got = await exchange(t, n.a, n.v, Object.values(frames), sentinel());
  assert.ok(got.has(F.hex(frames.source)) && got.has(F.hex(frames.target)), 'any: fe80::/10 passes');
});

test("removeGroup takes out one VM's port chains and jumps; the other VM stays isolated", async (t) => {
  const n = await network(t);
  await applyModel(n, model(true));
  const r = await removeGroup('iso', 'a', { netns: n.host });
  assert.deepEqual([r.bridge.deleted, r.ipv6.deleted], [['VMHOST-iso-a-S'], ['VMHOST-iso-a-N']]);
  const eb = await sh(n.host, 'ebtables-nft-save', []);
  assert.doesNotMatch(eb, /vm0|VMHOST-iso-a-/);
  assert.match(eb, /^-A PREROUTING -i vm1 -j VMHOST-iso-v-S$/m);
  assert.doesNotMatch(await sh(n.host, 'ip6tables-save', ['-t', 'raw']), /vm0|VMHOST-iso-a-/);
  // a is free now: its spoofed source passes; v is still held to its own
  const fromA = F.udpFrame({ srcMac: A.mac, src: V.v4, dst: '255.255.255.255', sport: 9, dport: 9, data: u8(9) });
  assert.ok((await exchange(t, n.a, n.v, [fromA], sentinel())).has(F.hex(fromA)));
  const fromV = F.udpFrame({ srcMac: V.mac, src: A.v4, dst: '255.255.255.255', sport: 9, dport: 9, data: u8(10) });
  const vSentinel = F.udpFrame({ srcMac: V.mac, src: V.v4, dst: '255.255.255.255', sport: 9, dport: 9, data: u8(0xef, seq++ & 0xff) });
  assert.ok(!(await exchange(t, n.v, n.a, [fromV], vSentinel)).has(F.hex(fromV)));
  assert.match(await sh(n.host, 'ebtables-nft-save', []), /^:VMHOST-iso-v-S DROP$/m, "the other VM's chain is untouched");
});
