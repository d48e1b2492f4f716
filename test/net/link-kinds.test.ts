// Link kinds (packages/net/src/links/kinds/, one file each) against the links captured from the
// kernel (fixtures/kernel-messages.json, made with `ip link add ...` by capture-kernel.ts):
// decode gives the public Link fields that `ip` configured, and encode builds, from the spec that
// says the same, the IFLA_INFO_DATA values the kernel reports. Plus the undo of a partial change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec, type Link, type LinkChanges, type LinkSpec } from '@vmhost/net';
import { kindOfInfo, kindOfSpec, type EncodeContext } from '../../packages/net/src/links/kinds/index.js';
import { rollbackMessage, toLink, validateSpec } from '../../packages/net/src/links/link.js';

const C = codec.constants;
const fixtures = JSON.parse(readFileSync(new URL('./fixtures/kernel-messages.json', import.meta.url), 'utf8')) as { links: Array<{ payload: string }> };
const messages = fixtures.links.map((m) => codec.decodeLinkMessage(Buffer.from(m.payload, 'hex')));
const byName = new Map(messages.map((m) => [m.attrs.ifname!, m]));
const indexOf = (name: string): number => byName.get(name)!.header.index;
const names = new Map(messages.map((m) => [m.header.index, m.attrs.ifname!]));
const link = (name: string): Link => toLink(byName.get(name)!, names);

/** An encode context over the captured namespace: names resolve to their captured indexes. */
const ctx: EncodeContext = {
  index: async (name) => indexOf(name),
  netnsFd: () => 99,
};

/** Encodes `spec` with its kind and checks every data field it sets against the kernel's report of `name`. */
async function encodesLikeKernel(spec: LinkSpec, name: string): Promise<void> {
  validateSpec(spec);
  const kind = kindOfSpec(spec.kind)!;
  const req = await kind.encode!(spec, ctx);
  const kernel = byName.get(name)!.attrs;
  assert.equal(req.linkinfo.kind, kernel.linkinfo?.kind, `${name}: kind`);
  const sent = (req.linkinfo.data ?? {}) as Record<string, unknown>;
  const got = (kernel.linkinfo?.data ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(sent)) assert.deepEqual(got[k], v, `${name}: IFLA_INFO_DATA ${k}`);
  for (const [k, v] of Object.entries(req.attrs ?? {})) assert.deepEqual((kernel as Record<string, unknown>)[k], v, `${name}: ${k}`);
  // The request encodes and decodes back to the same linkinfo (the wire schema of the kind).
  const bytes = codec.encodeLinkMessage({ header: {}, attrs: { ifname: spec.name, linkinfo: req.linkinfo, ...req.attrs } });
  assert.deepEqual(codec.decodeLinkMessage(bytes).attrs.linkinfo, req.linkinfo);
}

test('bridge: decoded as ip configured it; the spec encodes to the same IFLA_BR_* values', async () => {
  const br0 = link('br0');
  assert.deepEqual(br0.bridge, { stp: false, forwardDelay: 4, helloTime: 2, maxAge: 20, ageingTime: 300, priority: 32768, vlanFiltering: false });
  await encodesLikeKernel({ kind: 'bridge', name: 'br0', stp: false, forwardDelay: 4, helloTime: 2, maxAge: 20, ageingTime: 300, priority: 32768 }, 'br0');
  assert.deepEqual(link('veth0').bridgePort, { state: 'forwarding', priority: 32, cost: 2 });
});

test('veth: the peer nests a link message; decoded with the peer index', async () => {
  const v0 = link('veth0');
  assert.deepEqual(v0.veth, { peerIndex: indexOf('veth1'), peerNetnsId: null });
  assert.equal(v0.master, 'br0');
  const req = await kindOfSpec('veth')!.encode!({ kind: 'veth', name: 'veth0', peer: { name: 'veth1', mtu: 1400, mac: '02:00:00:00:00:02', netns: { path: '/proc/self/ns/net' } } } as LinkSpec, ctx);
  const peer = (req.linkinfo.data as codec.VethData).peer!;
  assert.deepEqual(peer.attrs, { ifname: 'veth1', mtu: 1400, address: '02:00:00:00:00:02', netNsFd: 99 });
  const back = codec.decodeLinkMessage(codec.encodeLinkMessage({ header: {}, attrs: { ifname: 'veth0', linkinfo: req.linkinfo } }));
  assert.deepEqual((back.attrs.linkinfo?.data as codec.VethData).peer, peer);
});

test('macvlan, vxlan, tap: decoded as configured; macvlan and vxlan specs encode as the kernel reports', async () => {
  assert.deepEqual(link('mv0').macvlan, { mode: 'bridge' });
  assert.equal(link('mv0').parentIndex, indexOf('veth1'));
  await encodesLikeKernel({ kind: 'macvlan', name: 'mv0', link: 'veth1', mode: 'bridge' }, 'mv0');
  assert.deepEqual(link('vx0').vxlan, { vni: 4242, remote: '198.51.100.2', local: '198.51.100.1', port: 4789, ttl: 0, learning: true, devIndex: null });
  await encodesLikeKernel({ kind: 'vxlan', name: 'vx0', vni: 4242, remote: '198.51.100.2', local: '198.51.100.1', port: 4789, learning: true }, 'vx0');
  const tap = link('tap0');
  assert.equal(tap.kind, 'tun');
  assert.deepEqual(tap.tun, { mode: 'tap', persist: true, vnetHdr: true, multiQueue: false, pi: false, owner: null, group: null });
  assert.equal(kindOfSpec('tap')!.encode, undefined, 'a TAP is made by ioctl, not by RTM_NEWLINK');
});

test('vlan: encode and decode through the wire schema (no 8021q on this kernel: no capture)', async () => {
  const req = await kindOfSpec('vlan')!.encode!({ kind: 'vlan', name: 'v5', link: 'veth1', id: 5, protocol: '802.1ad' } as LinkSpec, ctx);
  assert.deepEqual(req, { linkinfo: { kind: 'vlan', data: { id: 5, protocol: C.ETH_P_8021AD } }, attrs: { link: indexOf('veth1') } });
  const m = codec.decodeLinkMessage(codec.encodeLinkMessage({ header: { index: 9 }, attrs: { ifname: 'v5', link: indexOf('veth1'), linkinfo: req.linkinfo } }));
  assert.deepEqual(toLink(m).vlan, { id: 5, protocol: '802.1ad' });
});

test('the registry: every kind by spec name and by kernel kind; other kinds pass through untyped', () => {
  for (const k of ['veth', 'bridge', 'tap', 'vlan', 'macvlan', 'vxlan']) assert.equal(kindOfSpec(k)?.name, k);
  for (const [info, spec] of [['tun', 'tap'], ['macvtap', 'macvlan'], ['vxlan', 'vxlan']]) assert.equal(kindOfInfo(info)?.name, spec);
  assert.equal(kindOfSpec('dummy'), undefined);
  const lo = link('lo');
  assert.equal(lo.kind, null);
  assert.equal(lo.type, 'loopback');
});

test('rollback: the undo of a partial change is built from the attributes read before, directly', () => {
  const before = byName.get('veth1')!;
  // What the kernel would show after a change that renamed, re-MTU'd, re-aliased, enslaved and downed it.
  const now: codec.LinkMessage = {
    header: { ...before.header, flags: before.header.flags & ~C.IFF_UP },
    attrs: { ...before.attrs, ifname: 'renamed', mtu: 9000, ifalias: 'changed', master: indexOf('br0') },
  };
  const ch: LinkChanges = { name: 'renamed', mtu: 9000, alias: 'changed', master: 'br0', up: false, promisc: true };
  const back = rollbackMessage(before.header.index, before, now, ch)!;
  assert.deepEqual(back.header, { index: before.header.index, flags: C.IFF_UP, change: C.IFF_UP });
  assert.deepEqual(back.attrs, { ifname: 'veth1', mtu: 1400, ifalias: 'the other end', master: 0 });
  // Nothing differs: nothing to send. An alias that was absent is cleared with an empty IFLA_IFALIAS.
  assert.equal(rollbackMessage(1, before, before, ch), undefined);
  const noAlias: codec.LinkMessage = { header: before.header, attrs: { ...before.attrs, ifalias: undefined } };
  delete noAlias.attrs.ifalias;
  const cleared = rollbackMessage(1, noAlias, now, { alias: 'x' })!;
  assert.deepEqual(cleared.attrs.other?.map((a) => [a.type, a.data.length]), [[C.IFLA_IFALIAS, 0]]);
  // The undo encodes as one RTM_NEWLINK payload.
  assert.ok(codec.encodeLinkMessage(back).length > 16);
});
