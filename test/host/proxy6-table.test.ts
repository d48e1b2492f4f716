// The IPv6 proxy's pure rules: what counts as one source (/64, IPv4 address), the connection
// budget of a file limit, the source groups (the biggest holder kept up to date, checked against
// a brute-force count over random operations), and admission: the per-source limit, the caps,
// refusal of the biggest holders and eviction of their least recently active connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admit, EVICTION_SCAN, SourceGroups } from '../../packages/host/src/services/proxy6-table.js';
import { connectionBudget, FD_RESERVE, filesNeeded, sourceKey } from '../../packages/host/src/services/proxy6-options.js';
import { rng } from '../helpers/rng.js';

test('a source is an IPv6 /64 or an IPv4 address (also IPv4-mapped); zones are ignored', () => {
  assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2::99'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:DB8:1:2:ffff::1'), '2001:db8:1:2::/64');
  assert.notEqual(sourceKey('2001:db8:1:3::1'), sourceKey('2001:db8:1:2::1'));
  assert.equal(sourceKey('::1'), '::/64');
  assert.equal(sourceKey('fe80::1%eth0'), 'fe80::/64');
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.notEqual(sourceKey('192.0.2.8'), sourceKey('192.0.2.7'));
  assert.equal(sourceKey('not an address'), 'not an address');
});

test('the connection budget of a file limit: two descriptors per connection after listeners and the reserve', () => {
  assert.equal(connectionBudget(1024, 4), Math.floor((1024 - 4 - FD_RESERVE) / 2));
  assert.equal(connectionBudget(FD_RESERVE, 1), 0);
  assert.equal(connectionBudget(filesNeeded(4096, 3), 3), 4096);
  assert.equal(connectionBudget(filesNeeded(4096, 3) - 1, 3), 4095);
});

interface C {
  id: number;
  last: number;
}

test('source groups: counts, the biggest holder, longest-at-that-count first', () => {
  const g = new SourceGroups<C>();
  const c = (id: number, last = id): C => ({ id, last });
  const a1 = c(1);
  const a2 = c(2);
  const b1 = c(3);
  g.add('a', a1);
  g.add('b', b1);
  g.add('a', a2);
  g.add('a', a2); // twice: no effect
  assert.deepEqual([g.size, g.sources, g.maxCount, g.count('a'), g.count('b'), g.count('z')], [3, 2, 2, 2, 1, 0]);
  assert.deepEqual([...g.top()].map(([s]) => s), ['a']);
  g.delete('a', a1);
  g.delete('a', a1); // twice: no effect
  assert.deepEqual([g.size, g.maxCount], [2, 1]);
  assert.deepEqual([...g.top()].map(([s]) => s), ['b', 'a'], 'b has held one connection longer than a');
  g.delete('a', a2);
  g.delete('b', b1);
  assert.deepEqual([g.size, g.sources, g.maxCount, [...g.top()].length, [...g.all()].length], [0, 0, 0, 0, 0]);
});

test('source groups agree with a brute-force count over 20,000 random adds and deletes', () => {
  const next = rng(0x5eed);
  const g = new SourceGroups<C>();
  const model = new Map<string, Set<C>>();
  const live: Array<[string, C]> = [];
  for (let i = 0; i < 20_000; i++) {
    if (live.length === 0 || next() % 3 !== 0) {
      const s = `s${next() % 40}`;
      const conn = { id: i, last: i };
      g.add(s, conn);
      (model.get(s) ?? model.set(s, new Set()).get(s)!).add(conn);
      live.push([s, conn]);
    } else {
      const [s, conn] = live.splice(next() % live.length, 1)[0]!;
      g.delete(s, conn);
      model.get(s)!.delete(conn);
      if (model.get(s)!.size === 0) model.delete(s);
    }
    const max = Math.max(0, ...[...model.values()].map((x) => x.size));
    assert.equal(g.maxCount, max, `after step ${i}`);
    assert.equal(g.size, live.length);
    assert.equal(g.sources, model.size);
    if (i % 97 === 0) {
      const top = [...g.top()].map(([s]) => s).sort();
      assert.deepEqual(top, [...model].filter(([, x]) => x.size === max).map(([s]) => s).sort());
    }
  }
});

/** A route and the proxy with `spec` connections: source → list of `last` times. */
function fill(spec: Record<string, number[]>, other: Record<string, number[]> = {}): { route: SourceGroups<C>; all: SourceGroups<C>; conns: Map<string, C[]> } {
  const route = new SourceGroups<C>();
  const all = new SourceGroups<C>();
  const conns = new Map<string, C[]>();
  let id = 0;
  for (const [s, lasts] of Object.entries(spec)) {
    conns.set(s, lasts.map((last) => ({ id: id++, last })));
    for (const c of conns.get(s)!) {
      route.add(s, c);
      all.add(s, c);
    }
  }
  for (const [s, lasts] of Object.entries(other)) for (const last of lasts) all.add(s, { id: id++, last });
  return { route, all, conns };
}

test('admit: the per-source limit first; below the caps every other source is accepted', () => {
  const { route, all } = fill({ a: [1, 2, 3] });
  assert.deepEqual(admit({ source: 'a', all, route, perSource: 3, routeCap: 10, totalCap: 10 }), { ok: false, reason: 'source' });
  assert.deepEqual(admit({ source: 'a', all, route, perSource: 4, routeCap: 10, totalCap: 10 }), { ok: true });
  assert.deepEqual(admit({ source: 'b', all, route, perSource: 3, routeCap: 10, totalCap: 10 }), { ok: true });
});

test('admit on a full route: the biggest holder is refused; another source evicts its least recently active connection', () => {
  const { route, all, conns } = fill({ a: [5, 1, 9], b: [2, 3], c: [4] });
  const full = { all, route, perSource: 100, routeCap: 6, totalCap: 100 };
  assert.deepEqual(admit({ ...full, source: 'a' }), { ok: false, reason: 'route' });
  // b holds 2 < 3: takes a's least recently active connection (last = 1)
  assert.deepEqual(admit({ ...full, source: 'b' }), { ok: true, evict: conns.get('a')![1], scope: 'route' });
  assert.deepEqual(admit({ ...full, source: 'new' }), { ok: true, evict: conns.get('a')![1], scope: 'route' });
  // ties at the top: the least recently active over the biggest holders
  const t = fill({ a: [5, 6], b: [7, 2], c: [1] });
  assert.deepEqual(admit({ all: t.all, route: t.route, perSource: 100, routeCap: 5, totalCap: 100, source: 'c' }), { ok: true, evict: t.conns.get('b')![1], scope: 'route' });
  assert.deepEqual(admit({ all: t.all, route: t.route, perSource: 100, routeCap: 5, totalCap: 100, source: 'a' }), { ok: false, reason: 'route' });
});

test('admit on a full proxy: eviction over every route; the route cap is checked first', () => {
  // the route holds b:1; the other routes hold a:4
  const { route, all } = fill({ b: [8] }, { a: [3, 1, 4, 6] });
  const victim = [...all.top()][0]![1];
  const oldest = [...victim].find((c) => c.last === 1)!;
  assert.deepEqual(admit({ all, route, perSource: 100, routeCap: 10, totalCap: 5, source: 'b' }), { ok: true, evict: oldest, scope: 'total' });
  assert.deepEqual(admit({ all, route, perSource: 100, routeCap: 10, totalCap: 5, source: 'a' }), { ok: false, reason: 'total' });
  // a full route decides within the route: b is its only (so biggest) holder
  assert.deepEqual(admit({ all, route, perSource: 100, routeCap: 1, totalCap: 5, source: 'b' }), { ok: false, reason: 'route' });
});

test(`admit looks at the first ${EVICTION_SCAN} biggest holders only (bounded work per accept)`, () => {
  const spec: Record<string, number[]> = {};
  for (let i = 0; i < EVICTION_SCAN + 10; i++) spec[`s${i}`] = [1000 - i]; // later sources are less recently active
  const { route, all, conns } = fill(spec);
  const a = admit({ all, route, perSource: 100, routeCap: EVICTION_SCAN + 10, totalCap: 1000, source: 'new' });
  assert.equal(a.ok, true);
  assert.equal(a.ok && a.evict, conns.get(`s${EVICTION_SCAN - 1}`)![0]);
});
