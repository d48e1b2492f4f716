// The planner, pure: from a model and iptables-save output (captured from the real kernel in
// golden/plan-*.save) to the smallest batch that touches only the owner's chains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TABLE_MARKER, parseSave, plan, planFamily, render, ownedFamily, ownersIn, type FirewallModel } from '@vmhost/firewall';
import { goldenModels } from './models.js';

const dir = join(import.meta.dirname, 'golden');
const applied = readFileSync(join(dir, 'plan-groups-applied.save'), 'utf8');
const shared = readFileSync(join(dir, 'plan-shared.save'), 'utf8');
const groups = goldenModels.groups!;
const withoutWeb: FirewallModel = { ...groups, portForwards: groups.portForwards!.filter((f) => f.group !== 'web') };

test('on empty tables the plan is the rendered batch plus the table marker', () => {
  const p = plan(groups, { ipv4: '', ipv6: '' });
  const expected = render(groups).ipv4.replace(/^\*(filter|nat)$/gm, `*$1\n:${TABLE_MARKER} - [0:0]`);
  assert.equal(p.ipv4.batch, expected);
  assert.equal(p.ipv6.batch, '');
  assert.deepEqual(p.ipv4.drop, []);
});

test('re-planning the model that is applied plans nothing', () => {
  const p = plan(groups, { ipv4: applied, ipv6: '' });
  assert.equal(p.ipv4.batch, '');
  assert.deepEqual(p.ipv4.drop, []);
});

test('a changed model rewrites only the chains that differ', () => {
  const p = plan(withoutWeb, { ipv4: applied, ipv6: '' });
  assert.deepEqual(p.ipv4.written.sort(), ['VMHOST-lab-FWD', 'VMHOST-lab-OUT', 'VMHOST-lab-PRE']);
  assert.deepEqual(p.ipv4.deleted.sort(), ['VMHOST-lab-web-D', 'VMHOST-lab-web-F', 'VMHOST-lab-web-L']);
  assert.doesNotMatch(p.ipv4.batch, /^(:|-A |-X )VMHOST-lab-mail-/m, 'the mail group\'s chains are not touched');
  assert.doesNotMatch(p.ipv4.batch, /^-[ID] /m, 'the jumps from the built-in chains stay as they are');
  assert.match(p.ipv4.batch, /^-X VMHOST-lab-web-D$/m);
  // a stale chain is flushed (declared) before the -X, in the same table section
  const nat = p.ipv4.batch.slice(p.ipv4.batch.indexOf('*nat'));
  assert.ok(nat.indexOf(':VMHOST-lab-web-D - [0:0]') < nat.indexOf('-X VMHOST-lab-web-D'));
});

test('removing everything of the owner from tables vmhost created drops those tables', () => {
  const empty = { family: 4 as const, tables: [] };
  const p = planFamily('lab', empty, parseSave(applied));
  assert.equal(p.batch, '');
  assert.deepEqual(p.drop, ['filter', 'nat']);
});

test('with Docker-like chains and another owner present, only the owner\'s rules are removed', () => {
  const p = planFamily('lab', { family: 4, tables: [] }, parseSave(shared));
  assert.deepEqual(p.drop, []);
  const lines = p.batch.trim().split('\n');
  for (const l of lines) {
    if (l.startsWith('*') || l === 'COMMIT') continue;
    assert.match(l, /VMHOST-lab-/, `touches only lab's rules: ${l}`);
    assert.doesNotMatch(l, /DOCKER|other|^-[PFZ] /, l);
  }
  assert.ok(lines.includes('-D FORWARD -m comment --comment "vmhost:lab" -j VMHOST-lab-FWD'));
  assert.ok(lines.includes('-D PREROUTING -m comment --comment "vmhost:lab" -j VMHOST-lab-PRE'));
  assert.ok(lines.includes('-X VMHOST-lab-web-L'));
  // jump deletions come before the chain deletions
  assert.ok(lines.indexOf('-D OUTPUT -m comment --comment "vmhost:lab" -j VMHOST-lab-OUT') < lines.indexOf('-X VMHOST-lab-OUT'));
  assert.deepEqual(ownersIn(parseSave(shared)), ['lab', 'other']);
});

test('a second owner applies next to the first without touching it', () => {
  const p = plan({ owner: 'third', masquerade: [{ source: '10.8.0.0/24', outInterface: 'eth2' }] }, { ipv4: shared, ipv6: '' });
  assert.equal(
    p.ipv4.batch,
    [
      '*nat',
      ':VMHOST-third-POST - [0:0]',
      '-A VMHOST-third-POST -s 10.8.0.0/24 -d 224.0.0.0/4 -j RETURN',
      '-A VMHOST-third-POST -s 10.8.0.0/24 -d 255.255.255.255/32 -j RETURN',
      '-A VMHOST-third-POST -s 10.8.0.0/24 ! -d 10.8.0.0/24 -o eth2 -j MASQUERADE',
      '-I POSTROUTING 1 -m comment --comment "vmhost:third" -j VMHOST-third-POST',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('a duplicated jump is reduced to one; a missing jump is inserted once', () => {
  const dup = applied.replace(
    '-A FORWARD -m comment --comment "vmhost:lab" -j VMHOST-lab-FWD',
    '-A FORWARD -m comment --comment "vmhost:lab" -j VMHOST-lab-FWD\n-A FORWARD -m comment --comment "vmhost:lab" -j VMHOST-lab-FWD',
  );
  assert.notEqual(dup, applied);
  assert.equal(plan(groups, { ipv4: dup, ipv6: '' }).ipv4.batch, '*filter\n-D FORWARD -m comment --comment "vmhost:lab" -j VMHOST-lab-FWD\nCOMMIT\n');
  const missing = applied.replace('-A OUTPUT -m comment --comment "vmhost:lab" -j VMHOST-lab-OUT\n', '');
  assert.notEqual(missing, applied);
  assert.equal(plan(groups, { ipv4: missing, ipv6: '' }).ipv4.batch, '*nat\n-I OUTPUT 1 -m comment --comment "vmhost:lab" -j VMHOST-lab-OUT\nCOMMIT\n');
});

test('a chain edited by hand is put back', () => {
  const edited = applied.replace('--dport 443 -j DNAT --to-destination 192.168.0.100:443', '--dport 443 -j DNAT --to-destination 192.168.0.99:443');
  assert.notEqual(edited, applied);
  const p = plan(groups, { ipv4: edited, ipv6: '' });
  assert.deepEqual(p.ipv4.written, ['VMHOST-lab-web-D']);
});

test('ownedFamily reads back exactly what was rendered', () => {
  const owned = ownedFamily(parseSave(applied), 'lab', 4);
  const back = planFamily('lab', owned, parseSave(applied));
  assert.equal(back.batch, '');
  assert.equal(owned.tables.map((t) => t.chains.length).join(','), '3,6');
});

test('parseSave refuses what it does not understand', () => {
  assert.throws(() => parseSave('*filter\nbogus line\nCOMMIT\n'), /line 2/);
});
