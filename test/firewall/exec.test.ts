// The transport's "parked" check (a program blocked reading its standard input after all input
// was written, from /proc/PID/syscall) with ordinary programs, and how batches are cut into the
// sections that are held and committed one program each. No privilege needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canObservePrograms, defaultStarter, parkedState, tableSections } from '@vmhost/firewall';
import { unitsOf } from '../../packages/firewall/src/exec/commit.js';

test('a program that has read everything written to it and waits for more is parked; one that exits is not', { skip: !canObservePrograms() }, async () => {
  const start = defaultStarter();
  // cat copies its input: once it has, it blocks in read(0)
  const cat = start('cat', []);
  assert.ok(cat.parked, 'the default starter can observe its programs here');
  cat.write('x'.repeat(200_000)); // more than a pipe holds: parked only after it drained
  assert.equal(await cat.parked!(), true);
  assert.equal(parkedState(cat.pid!), 'parked');
  cat.write('more\n');
  assert.equal(await cat.parked!(), true);
  const r = await cat.end('last\n');
  assert.equal(r.code, 0);
  assert.equal(r.stdout.length, 200_000 + 'more\nlast\n'.length, 'everything written was read');
  assert.equal(parkedState(cat.pid!), 'gone');
  // a program that never reads its input exits instead
  const f = start('false', []);
  f.write('ignored\n');
  assert.equal(await f.parked!(), false);
  assert.equal((await f.end()).code, 1);
  // busy: our own process is running, not blocked reading fd 0
  assert.equal(parkedState(process.pid), 'busy');
});

test('batches are cut into table sections: iptables at each COMMIT, ebtables at each *table line', () => {
  const ip = '*filter\n:A - [0:0]\nCOMMIT\n*nat\n-A B -j RETURN\nCOMMIT\n';
  assert.deepEqual(tableSections(ip), ['*filter\n:A - [0:0]\nCOMMIT\n', '*nat\n-A B -j RETURN\nCOMMIT\n']);
  assert.throws(() => tableSections('*filter\n:A - [0:0]\n'), /does not end with COMMIT/);
  const eb = '*nat\n:X DROP\n-A X -j RETURN\n*filter\n:Y RETURN\n';
  assert.deepEqual(tableSections(eb, 'bridge'), ['*nat\n:X DROP\n-A X -j RETURN\n', '*filter\n:Y RETURN\n']);
  // what each held program is given first, and what commits it
  const units = unitsOf({ family: 6, batch: ip, drop: ['raw'], written: [], deleted: [] });
  assert.deepEqual(units.map((u) => [u.stage, u.args, u.body, u.tail]), [
    ['commit', ['--noflush'], '*filter\n:A - [0:0]\n', 'COMMIT\n'],
    ['commit', ['--noflush'], '*nat\n-A B -j RETURN\n', 'COMMIT\n'],
    ['drop', [], '*raw\n', 'COMMIT\n'],
  ]);
  const bridge = unitsOf({ family: 'bridge', batch: '*nat\n:X DROP\n', drop: [], written: [], deleted: [] });
  assert.deepEqual(bridge.map((u) => [u.body, u.tail]), [['*nat\n:X DROP\n', '']]);
  assert.deepEqual(unitsOf({ family: 'bridge', batch: '', drop: ['nat'], written: [], deleted: [] }).map((u) => [u.stage, u.args, u.body, u.tail]), [['drop', [], '*nat\n', '']]);
});
