// Monitor events and handle life cycle, each test in a fresh namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rtnl, NetlinkClosedError, ValidationError, type RtnlEvent } from '@vmhost/net';
import { freshNetns, sh } from '../helpers/ns.js';

/** Reads events until `pred` has matched each of `wants`, in order of arrival. */
async function waitFor(it: AsyncIterator<RtnlEvent>, wants: Array<(e: RtnlEvent) => boolean>): Promise<RtnlEvent[]> {
  const seen: RtnlEvent[] = [];
  const left = [...wants];
  while (left.length) {
    const r = await it.next();
    if (r.done) throw new Error('monitor ended early');
    seen.push(r.value);
    const i = left.findIndex((p) => p(r.value));
    if (i >= 0) left.splice(i, 1);
  }
  return seen;
}

test('monitor: typed link, address, route and neighbour events, including changes made by ip', async (t) => {
  const ns = await freshNetns(t, 'mon');
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  // The signal only turns a missing event into a failure instead of a hang.
  const mon = h.monitor(['link', 'address', 'route', 'neighbor'], { signal: AbortSignal.timeout(60_000) });
  // Subscribed at creation: these happen before the first next().
  await h.links.add({ kind: 'bridge', name: 'br0', up: true });
  await h.addresses.add('br0', '192.168.0.1/24');
  await h.routes.add({ to: '198.51.100.0/24', via: '192.168.0.254' });
  await h.neighbors.add({ to: '192.168.0.9', dev: 'br0', lladdr: '52:54:00:00:00:09' });
  await sh(ns, 'ip', ['link', 'add', 'dummyish', 'type', 'veth', 'peer', 'name', 'other']);
  await h.links.delete('dummyish');
  const seen = await waitFor(mon, [
    (e) => e.type === 'link' && e.action === 'new' && e.link.name === 'br0' && e.link.kind === 'bridge',
    (e) => e.type === 'address' && e.action === 'new' && e.address.cidr === '192.168.0.1/24' && e.address.link === 'br0',
    (e) => e.type === 'route' && e.action === 'new' && e.route.to === '198.51.100.0/24' && e.route.via === '192.168.0.254' && e.route.dev === 'br0',
    (e) => e.type === 'neighbor' && e.action === 'new' && e.neighbor.to === '192.168.0.9' && e.neighbor.lladdr === '52:54:00:00:00:09',
    (e) => e.type === 'link' && e.action === 'new' && e.link.name === 'dummyish',
    (e) => e.type === 'link' && e.action === 'del' && e.link.name === 'dummyish',
  ]);
  assert.ok(seen.length >= 6);
  mon.close();
  assert.deepEqual(await mon.next(), { value: undefined, done: true });
});

test('monitor: for-await with break closes it; the handle closing ends it too', async (t) => {
  const ns = await freshNetns(t, 'mon2');
  const h = await Rtnl.open({ netns: ns });
  const mon = h.monitor(['link']);
  await h.links.add({ kind: 'bridge', name: 'brx' });
  for await (const ev of mon) {
    if (ev.type === 'link' && ev.link.name === 'brx') break;
  }
  const mon2 = h.monitor(['link']);
  const pending = mon2.next();
  h.close();
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.throws(() => h.monitor(['link']), ValidationError);
});

test('closing a handle rejects its pending requests with NetlinkClosedError; no hang', async (t) => {
  const ns = await freshNetns(t, 'close');
  const h = await Rtnl.open({ netns: ns });
  const pending = Array.from({ length: 20 }, (_, i) => h.links.add({ kind: 'bridge', name: `c${i}` }));
  h.close();
  const results = await Promise.allSettled(pending);
  for (const r of results) {
    if (r.status === 'rejected') assert.ok(r.reason instanceof NetlinkClosedError, String(r.reason));
  }
  await assert.rejects(h.links.list(), NetlinkClosedError);
});

test('open by path and by pid, and option validation', async (t) => {
  const ns = await freshNetns(t, 'open');
  const byPath = await Rtnl.open({ path: `/run/netns/${ns}` });
  t.after(() => byPath.close());
  await byPath.links.add({ kind: 'bridge', name: 'brp' });
  const child = (await import('@vmhost/net')).netns.spawn(ns, 'sleep', ['30']);
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => child.once('spawn', r));
  const byPid = await Rtnl.open({ pid: child.pid! });
  t.after(() => byPid.close());
  assert.equal((await byPid.links.get('brp')).kind, 'bridge');
  await assert.rejects(Rtnl.open({ netns: ns, pid: 1 }), (e: unknown) => e instanceof ValidationError && e.field === 'pid');
  await assert.rejects(Rtnl.open({ netns: 'no/such' }), (e: unknown) => e instanceof ValidationError && e.field === 'netns');
  await assert.rejects(Rtnl.open({ netns: 'vmht-does-not-exist' }), (e: unknown) => (e as { code?: string }).code === 'ENOENT');
});
