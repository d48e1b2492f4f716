// nf_tables generation events over NETLINK_NETFILTER (issue 14 §2): iptables(-nft) changes in a
// namespace give one NEWGEN event each, naming the process; changes in another namespace are not
// seen; a slow reader gets an overrun. Oracles: the pid and name of the processes we ran, and
// NFT_MSG_GETGEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { netns, Netfilter, ValidationError, type NftEvent } from '@vmhost/net';
import { freshNetns } from '../helpers/ns.js';

/** Runs a program in `ns` and returns its pid once it exited 0. */
async function runPid(ns: string, cmd: string, args: string[], input?: string): Promise<number> {
  const child = netns.spawn(ns, cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  const r = await netns.collect(child, input === undefined ? { timeoutMs: 60_000 } : { input, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  return child.pid!;
}

const rules = (n: number): string =>
  ['*filter', ':INPUT ACCEPT [0:0]', ...Array.from({ length: n }, (_, i) => `-A INPUT -s 198.51.100.${i + 1}/32 -j DROP`), 'COMMIT', ''].join('\n');

test('NEWGEN events: one per change of this namespace, with pid and process name; other namespaces unseen', async (t) => {
  const a = await freshNetns(t, 'nftA');
  const b = await freshNetns(t, 'nftB');
  const nf = await Netfilter.open({ netns: a });
  t.after(() => nf.close());
  const before = (await nf.nftables.generation()).id;
  // The signal only turns a missing event into a failure instead of a hang.
  const events = nf.nftables.monitor({ signal: AbortSignal.timeout(120_000) });
  await runPid(b, 'iptables', ['-A', 'INPUT', '-s', '198.51.100.1', '-j', 'DROP']); // not ours to see
  const pid = await runPid(a, 'iptables', ['-A', 'INPUT', '-s', '198.51.100.1', '-j', 'DROP']);
  const first = (await events.next()).value as NftEvent;
  assert.equal(first.type, 'generation');
  if (first.type !== 'generation') return;
  assert.deepEqual([first.pid, first.processName], [pid, 'iptables']);
  assert.ok(first.id > before);
  assert.ok(first.changes >= 2, `table, chain and rule notifications before it: ${first.changes}`);
  assert.equal((await nf.nftables.generation()).id, first.id);

  const pid2 = await runPid(a, 'iptables-restore', ['--noflush'], rules(3));
  const second = (await events.next()).value as NftEvent;
  assert.ok(second.type === 'generation' && second.changes >= 3, JSON.stringify(second)); // three rules, at least
  assert.deepEqual({ ...second, changes: 0 }, { type: 'generation', id: (await nf.nftables.generation()).id, pid: pid2, processName: 'iptables-restor', changes: 0 });

  // Closing the handle ends the monitor.
  const pending = events.next();
  nf.close();
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.throws(() => nf.nftables.monitor(), ValidationError);
});

test('a reader too slow for a big change gets an overrun, then the generation; break closes the monitor', async (t) => {
  const ns = await freshNetns(t, 'nftO');
  const nf = await Netfilter.open({ netns: ns });
  t.after(() => nf.close());
  const events = nf.nftables.monitor({ highWaterMark: 4, signal: AbortSignal.timeout(120_000) });
  await runPid(ns, 'iptables-restore', [], rules(40)); // 40 rule notifications and more: nobody reads meanwhile
  // Wait (without reading) until the monitor has dropped some: then the overrun comes first.
  const deadline = Date.now() + 60_000;
  while (events.overruns === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(events.overruns > 0, 'the monitor overran');
  assert.deepEqual((await events.next()).value, { type: 'overrun' });
  const gen = (await nf.nftables.generation()).id;
  for await (const ev of events) {
    if (ev.type === 'generation') {
      assert.equal(ev.id, gen);
      assert.equal(ev.processName, 'iptables-restor');
      break;
    }
  }
  assert.deepEqual(await events.next(), { value: undefined, done: true });
});
