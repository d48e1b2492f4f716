// Conntrack cleared when forwards change, through the engine (issue 15 §2), with two real test
// guests: a UDP flow from the `internet` namespace through a forward to VM a; the forward moved to
// VM b in the host file and applied: the next datagram of the same flow reaches b (the guests'
// UDP echo answers with their name), while a TCP connection to an unchanged forward of a (the
// guest's TCP echo) goes on. That the clearing is what makes the difference is shown first: the
// same change made by @vmhost/firewall alone (no conntrack clearing) leaves the flow at a.
// Oracles: the guests' answers, and the conntrack table (@vmhost/net's Netfilter, the same entries
// conntrack(8) lists: integration/net/conntrack.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { apply as fwApply } from '@vmhost/firewall';
import { apply, down, firewallModel, parseHostFile, plan } from '@vmhost/host';
import { Netfilter } from '@vmhost/net';
import { hostSnapshot } from '../helpers/host-snapshot.js';
import { startNode, type Lines } from '../net/flows.js';
import { consoleLine, consoleOf, guestLines, NET, requireGuestTool, ROOT, vmLab } from '../helpers/vm-lab.js';

function hostText(udpTo: 'a' | 'b'): string {
  const udp = '{ port: 5353, toPort: 7, protocol: udp }';
  return `name: flows
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
vms:
  - name: a
    ipv4: 192.168.0.10
    memoryMiB: 128
    forwards: [{ port: 7007, toPort: 7 }${udpTo === 'a' ? `, ${udp}` : ''}]
${guestLines('a')}
  - name: b
    ipv4: 192.168.0.11
    memoryMiB: 128
    forwards: [${udpTo === 'b' ? udp : ''}]
${guestLines('b')}
`;
}

/**
 * A client in the internet namespace: one UDP socket (local port 40001) to HOST:5353 and one TCP
 * connection to HOST:7007; stdin `u X` sends datagram X, `t X` sends TCP line X; prints
 * `udp REPLY`, `tcp REPLY`, `ready` once connected, `tcp-closed` / `tcp-error CODE`.
 */
const CLIENT = `
const dgram = require('node:dgram'), net = require('node:net'), rl = require('node:readline');
const host = process.argv[1];
const u = dgram.createSocket('udp4');
u.on('message', (m) => process.stdout.write('udp ' + String(m).trim() + '\\n'));
u.bind(40001, () => {
  const t = net.connect(7007, host, () => process.stdout.write('ready\\n'));
  let buf = '';
  t.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { process.stdout.write('tcp ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
  t.on('error', (e) => process.stdout.write('tcp-error ' + e.code + '\\n'));
  t.on('close', () => process.stdout.write('tcp-closed\\n'));
  rl.createInterface({ input: process.stdin }).on('line', (l) => {
    const [k, v] = l.split(' ');
    if (k === 'u') u.send(v, 5353, host); else t.write(v + '\\n');
  });
});
`;

/** Sends datagram `x` on the client's one flow, again every 500 ms until an answer to it comes (UDP may be lost); the answer. */
async function ask(client: Lines, x: string): Promise<string> {
  const got = client.take(new RegExp(`^udp [ab]:${x}$`), AbortSignal.timeout(30_000));
  let answered = false;
  void got.then(() => (answered = true), () => (answered = true));
  for (let i = 0; !answered && i < 60; i++) {
    client.child.stdin!.write(`u ${x}\n`);
    await Promise.race([got.catch(() => undefined), sleep(500)]);
  }
  return (await got).slice('udp '.length);
}

test('a forward moved to another VM: the next datagram of a UDP flow reaches the new VM (not without the clearing); a TCP connection to an unchanged forward survives the apply', async (t) => {
  requireGuestTool();
  const env = await vmLab(t, 'vmhl-flows-');
  const v1 = parseHostFile(hostText('a'), { baseDir: ROOT });
  const v2 = parseHostFile(hostText('b'), { baseDir: ROOT });
  env.downFirst(() => down(v2, env.opts));
  const before = await hostSnapshot(env.host);
  await apply(v1, env.opts);
  for (const vm of ['a', 'b']) await consoleLine(consoleOf(env.opts, vm), 'VMHOST-GUEST: ready');

  const client = await startNode(t, env.internet, 'client', CLIENT, [NET.host4]);
  client.child.stdin!.write('t t1\n');
  await client.take('tcp t1');
  assert.equal(await ask(client, 'u1'), 'a:u1');
  const nf = await Netfilter.open({ netns: env.host });
  t.after(() => nf.close());
  const tcp = await nf.conntrack.list({ protocol: 'tcp', origDstPort: 7007 });
  assert.equal(tcp.length, 1);
  const udp = await nf.conntrack.list({ protocol: 'udp', origDstPort: 5353 });
  assert.deepEqual(udp.map((e) => [e.orig.src, e.orig.srcPort, e.reply.src, e.reply.srcPort]), [[NET.internet4, 40001, '192.168.0.10', 7]]);

  // Without the clearing (the rules alone changed by @vmhost/firewall): the flow stays at a.
  await fwApply(firewallModel(v2), { netns: env.host });
  assert.equal(await ask(client, 'u2'), 'a:u2', 'the stale entry keeps the flow at the old VM');
  await fwApply(firewallModel(v1), { netns: env.host });

  // Through the engine: one firewall step; the old mapping's entry goes, the flow follows.
  assert.deepEqual((await plan(v2, env.opts)).steps.map((s) => s.id), ['firewall']);
  await apply(v2, env.opts);
  assert.equal(await ask(client, 'u3'), 'b:u3');
  assert.deepEqual((await nf.conntrack.list({ protocol: 'udp', origDstPort: 5353 })).map((e) => [e.orig.srcPort, e.reply.src]), [[40001, '192.168.0.11']]);
  // the TCP connection: the same entry, still open
  client.child.stdin!.write('t t2\n');
  await client.take('tcp t2');
  assert.deepEqual((await nf.conntrack.list({ protocol: 'tcp', origDstPort: 7007 })).map((e) => e.id), [tcp[0]!.id]);
  assert.deepEqual(client.matching(/^tcp-/), [], 'never closed, never reset');
  assert.deepEqual((await plan(v2, env.opts)).steps, []);

  await down(v2, env.opts);
  client.child.kill('SIGKILL');
  assert.deepEqual(await hostSnapshot(env.host), before);
});
