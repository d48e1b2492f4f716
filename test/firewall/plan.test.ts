// The planner, pure: from a model and iptables-save output (captured from the real kernel in
// golden/plan-*.save) to the smallest batch that touches only the owner's chains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TABLE_MARKER, dropText, isNoop, parseSave, plan, planAgainst, planFamily, render, ownedFamily, ownersIn, type FirewallModel } from '@vmhost/firewall';
import { ValidationError } from '@vmhost/net';
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

test('planAgainst: the plan of saves still being read is the plan of the saves once read; a bad model refuses without waiting', async () => {
  for (const [model, current] of [[groups, { ipv4: applied, ipv6: '' }], [withoutWeb, { ipv4: applied, ipv6: '' }], [groups, { ipv4: '', ipv6: '' }]] as const) {
    let settle!: (v: typeof current) => void;
    const later = new Promise<typeof current>((r) => (settle = r));
    const p = planAgainst(model, later);
    settle(current);
    assert.deepEqual(await p, plan(model, current));
  }
  await assert.rejects(planAgainst({ owner: 'bad owner' } as FirewallModel, new Promise(() => undefined)), ValidationError);
  await assert.rejects(planAgainst(groups, Promise.reject(new Error('save failed'))), /save failed/);
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

// The VM ports: ebtables (bridge family) and ip6tables raw, captured from the real kernel after
// applying goldenModels['ports-policies'].
const ports = goldenModels['ports-policies']!;
const savedBridge = readFileSync(join(dir, 'plan-ports-applied.bridge.save'), 'utf8');
const savedRaw6 = readFileSync(join(dir, 'plan-ports-applied.ipv6.save'), 'utf8');
const appliedPorts = { ipv4: '', ipv6: savedRaw6, bridge: savedBridge };

test('ports: on empty tables the bridge plan is the rendered ebtables batch plus the marker; nothing on re-plan', () => {
  const p = plan(ports, { ipv4: '', ipv6: '', bridge: '' });
  assert.equal(p.bridge.batch, render(ports).bridge.replace(/^\*nat$/m, `*nat\n:${TABLE_MARKER} RETURN`));
  assert.doesNotMatch(p.bridge.batch, /COMMIT/, 'ebtables-restore has no COMMIT');
  const again = plan(ports, appliedPorts);
  assert.ok(isNoop(again), JSON.stringify(again));
});

test('ports: changing one VM\'s addresses rewrites only its chains', () => {
  const changed: FirewallModel = { ...ports, ports: ports.ports!.map((p) => (p.group === 'nm' ? { ...p, ipv6: ['2001:db8:1::111'] } : p)) };
  const p = plan(changed, appliedPorts);
  assert.deepEqual(p.bridge.written, ['VMHOST-lab-nm-S']);
  assert.deepEqual(p.ipv6.written, ['VMHOST-lab-nm-N']);
  assert.equal(p.ipv4.batch, '');
  assert.doesNotMatch(p.bridge.batch + p.ipv6.batch, /^-[ID] /m, 'no jump changes');
});

test('ports: a VM that goes loses its chain, its jump and its dispatch rule; the last one drops the tables vmhost made', () => {
  const fewer: FirewallModel = { ...ports, ports: ports.ports!.filter((p) => p.group !== 'routed') };
  const p = plan(fewer, appliedPorts);
  assert.deepEqual(p.bridge.deleted, ['VMHOST-lab-routed-S']);
  assert.match(p.bridge.batch, /^-D PREROUTING -i vmtap3 -j VMHOST-lab-routed-S$/m);
  assert.match(p.bridge.batch, /^-X VMHOST-lab-routed-S$/m);
  assert.deepEqual(p.ipv6.written, ['VMHOST-lab-RAW']);
  assert.deepEqual(p.ipv6.deleted, ['VMHOST-lab-routed-N']);
  const none = plan({ owner: 'lab' }, appliedPorts);
  assert.deepEqual(none.bridge.drop, ['nat']);
  assert.equal(none.bridge.batch, '');
  assert.deepEqual(none.ipv6.drop, ['raw']);
  assert.equal(dropText(none.bridge.drop, 'bridge'), '*nat\n');
});

test('ports: another owner\'s and foreign ebtables chains and jumps are left alone', () => {
  const foreign = savedBridge.replace(':VMHOST-NEWTABLE RETURN\n', ':libvirt-I-vnet0 ACCEPT\n:VMHOST-other-x-S DROP\n').replace('-A PREROUTING -i vmtap4', '-A PREROUTING -i vnet0 -j libvirt-I-vnet0\n-A PREROUTING -i tapx -j VMHOST-other-x-S\n-A PREROUTING -i vmtap4');
  const p = plan({ owner: 'lab' }, { ipv4: '', ipv6: '', bridge: foreign });
  assert.deepEqual(p.bridge.drop, [], 'the table holds more than ours: it is not dropped');
  assert.doesNotMatch(p.bridge.batch, /libvirt|VMHOST-other/);
  assert.equal(p.bridge.batch.split('\n').filter((l) => l.startsWith('-D PREROUTING')).length, 4);
  assert.equal(p.bridge.batch.split('\n').filter((l) => l.startsWith('-X ')).length, 4);
});
