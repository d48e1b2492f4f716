// Conntrack through NETLINK_NETFILTER with real flows (issue 15 §2): a UDP flow through a port
// forward keeps going to the old target after the forward changes, until the entries of the old
// mapping are deleted; a TCP connection to an unchanged forward survives. Oracles: conntrack(8)
// listing the same entries, and the traffic itself (which VM answers).
//
//   client (203.0.113.2) ── router (203.0.113.1; br0 192.168.100.1, DNAT) ── vm1 (.11), vm2 (.12)
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '@vmhost/lab';
import { Netfilter, NetlinkError, ValidationError, type ConntrackEntry } from '@vmhost/net';
import { sh } from '../helpers/ns.js';
import { ECHO_SERVER, LINE_CLIENT, startNode } from './flows.js';

const PUBLIC = '203.0.113.1';
const VM1 = '192.168.100.11';
const VM2 = '192.168.100.12';

/** The router's nat table: udp and tcp forwards of the public address. */
function natRules(udpTarget: string, tcpTarget: string): string {
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    `-A PREROUTING -d ${PUBLIC}/32 -p udp -m udp --dport 5353 -j DNAT --to-destination ${udpTarget}:5353`,
    `-A PREROUTING -d ${PUBLIC}/32 -p tcp -m tcp --dport 5353 -j DNAT --to-destination ${tcpTarget}:5353`,
    'COMMIT',
    '',
  ].join('\n');
}

async function lab(t: TestContext): Promise<{ client: string; router: string; vm1: string; vm2: string }> {
  const gw = [{ to: 'default', via: '192.168.100.1' }];
  const l = await Lab.create({
    prefix: 'vmhl-ct-',
    namespaces: {
      client: {},
      router: { sysctls: { 'net.ipv4.ip_forward': 1 }, bridges: { br0: {} }, addresses: { br0: ['192.168.100.1/24'] } },
      vm1: {},
      vm2: {},
    },
    links: [
      { a: { ns: 'client', name: 'eth0' }, b: { ns: 'router', name: 'wan0' }, addresses: { a: ['203.0.113.2/24'], b: [`${PUBLIC}/24`] } },
      { a: { ns: 'router', name: 'vm1', master: 'br0' }, b: { ns: 'vm1', name: 'eth0' }, addresses: { b: [`${VM1}/24`] } },
      { a: { ns: 'router', name: 'vm2', master: 'br0' }, b: { ns: 'vm2', name: 'eth0' }, addresses: { b: [`${VM2}/24`] } },
    ],
    routes: { vm1: gw, vm2: gw },
  });
  t.after(() => l.close());
  return { client: l.ns('client'), router: l.ns('router'), vm1: l.ns('vm1'), vm2: l.ns('vm2') };
}

/** conntrack -L -o xml,id of `ns` (both families, the given protocols), as comparable one-line records. */
async function conntrackL(ns: string, protocols: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const [f, p] of ['ipv4', 'ipv6'].flatMap((fam) => protocols.map((proto) => [fam, proto] as const))) {
    const xml = await sh(ns, 'conntrack', ['-L', '-f', f, '-p', p, '-o', 'xml,id']);
    for (const [, flow] of xml.matchAll(/<flow>(.*?)<\/flow>/g)) {
      const dirs = [...flow!.matchAll(/<meta direction="(?:original|reply)">.*?<src>([^<]*)<\/src><dst>([^<]*)<\/dst>.*?protonum="(\d+)".*?(?:<sport>(\d+)<\/sport><dport>(\d+)<\/dport>)?<\/layer4>/g)];
      const id = /<id>(\d+)<\/id>/.exec(flow!)![1];
      out.push(`${dirs[0]![3]} ${dirs.map((d) => `${d[1]}:${d[4] ?? '-'}>${d[2]}:${d[5] ?? '-'}`).join(' ')} id=${id}`);
    }
  }
  return out.sort();
}

const record = (e: ConntrackEntry): string =>
  `${e.protocolNumber} ${[e.orig, e.reply].map((d) => `${d.src}:${d.srcPort ?? '-'}>${d.dst}:${d.dstPort ?? '-'}`).join(' ')} id=${e.id}`;

test('a forward changes: the UDP flow follows only after deleteMatching; the TCP connection of an unchanged forward survives', async (t) => {
  const ns = await lab(t);
  await sh(ns.router, 'iptables-restore', [], natRules(VM1, VM1));
  const vm1 = await startNode(t, ns.vm1, 'vm1', ECHO_SERVER, ['vm1', '5353']);
  const vm2 = await startNode(t, ns.vm2, 'vm2', ECHO_SERVER, ['vm2', '5353']);
  const client = await startNode(t, ns.client, 'client', LINE_CLIENT, [PUBLIC, '5353', '40000']);
  const say = (line: string): void => void client.child.stdin!.write(`${line}\n`);
  const nf = await Netfilter.open({ netns: ns.router });
  t.after(() => nf.close());

  say('u u1');
  await client.take('udp vm1:u1');
  say('t t1');
  await client.take('tcp vm1:t1');

  // The same entries as conntrack(8) lists: the two flows (the table may also hold the bridge's
  // IGMP reports, sent at random times: only TCP and UDP are compared).
  const all = (await nf.conntrack.list()).filter((e) => e.protocol === 'tcp' || e.protocol === 'udp');
  assert.equal(all.length, 2);
  assert.deepEqual(all.map(record).sort(), await conntrackL(ns.router, ['tcp', 'udp']));
  const udpFilter = { protocol: 'udp', origDst: PUBLIC, origDstPort: 5353 } as const;
  const udp = await nf.conntrack.list(udpFilter);
  assert.equal(udp.length, 1);
  assert.deepEqual([udp[0]!.orig.src, udp[0]!.orig.srcPort, udp[0]!.reply.src, udp[0]!.status.dstNat, udp[0]!.status.seenReply], ['203.0.113.2', 40000, VM1, true, true]);
  const tcp = await nf.conntrack.list({ protocol: 'tcp', replySrc: VM1 });
  assert.equal(tcp.length, 1);
  assert.equal(tcp[0]!.tcp?.state, 'ESTABLISHED');

  // The forward's target changes; the existing UDP flow still goes to vm1 (the stale entry).
  await sh(ns.router, 'iptables-restore', [], natRules(VM2, VM1));
  say('u u2');
  await client.take('udp vm1:u2');
  assert.deepEqual(vm2.matching(/^udp /), []);

  // Delete the entries of the old mapping: only the UDP one goes.
  const r = await nf.conntrack.deleteMatching(udpFilter);
  assert.deepEqual([r.deleted.length, r.vanished.length], [1, 0]);
  assert.equal(r.deleted[0]!.id, udp[0]!.id);
  assert.deepEqual(await conntrackL(ns.router, ['tcp', 'udp']), [record(tcp[0]!)]);

  say('u u3');
  await client.take('udp vm2:u3');
  say('t t2');
  await client.take('tcp vm1:t2'); // the same connection, to the same VM
  assert.deepEqual(vm1.matching(/^udp /), ['udp u1', 'udp u2']);
  assert.deepEqual(vm2.matching(/^udp /), ['udp u3']);
  assert.deepEqual(client.matching(/^tcp-/), []); // never closed, never reset
  const now = await nf.conntrack.list({ protocol: 'udp' });
  assert.deepEqual(now.map((e) => e.reply.src), [VM2]);
});

test('delete by tuple and id; ENOENT with the kernel\'s errno name; entries of other namespaces are not seen', async (t) => {
  const ns = await lab(t);
  await sh(ns.router, 'iptables-restore', [], natRules(VM1, VM1));
  await startNode(t, ns.vm1, 'vm1', ECHO_SERVER, ['vm1', '5353']);
  const client = await startNode(t, ns.client, 'client', LINE_CLIENT, [PUBLIC, '5353', '40001']);
  client.child.stdin!.write('u x\n');
  await client.take('udp vm1:x');
  const nf = await Netfilter.open({ netns: ns.router });
  const other = await Netfilter.open({ netns: ns.vm2 });
  t.after(() => {
    nf.close();
    other.close();
  });
  assert.deepEqual(await other.conntrack.list(), []);
  const [e] = await nf.conntrack.list({ protocol: 'udp' });
  assert.ok(e);
  // A wrong id: not this entry.
  await assert.rejects(nf.conntrack.delete({ ...e, id: (e.id! + 1) >>> 0 }), (err: unknown) => err instanceof NetlinkError && err.code === 'ENOENT');
  // By the reply tuple, as the VM sees it.
  await nf.conntrack.delete({ protocol: 'udp', reply: { src: e.reply.src, dst: e.reply.dst, srcPort: e.reply.srcPort, dstPort: e.reply.dstPort } });
  assert.deepEqual(await conntrackL(ns.router, ['udp']), []);
  const err = await nf.conntrack.delete(e).then(() => undefined, (x: unknown) => x);
  assert.ok(err instanceof NetlinkError && err.code === 'ENOENT' && err.errno === 2, String(err));
  assert.match(err.message, /^conntrack\.delete udp orig 203\.0\.113\.2:40001 -> 203\.0\.113\.1:5353: ENOENT/);
  assert.deepEqual(await nf.conntrack.deleteMatching({ protocol: 'udp' }), { deleted: [], vanished: [] });
  await assert.rejects(nf.conntrack.list({ protocol: 'udp', origDstPort: 99999 }), ValidationError);
  nf.close();
  await assert.rejects(nf.conntrack.list(), (x: unknown) => (x as { code?: string }).code === 'ENETLINK_CLOSED');
});
