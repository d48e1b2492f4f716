// The engine at scale (docs/host-scale.md), in lab namespaces, checked with `ip -j` and the
// state files: the run's live view (one dump per table) sees what changed by hand between runs;
// the removal of many links is one batch of the kernel (a link group) and still one step, one
// record and one undo per link, leaving links that are not the host's and their groups alone; the
// record of a run is a journal appended step by step and compacted into state.json at its end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { netns } from '@vmhost/net';
import { HostApplyError, apply, down, parseHostFile, plan } from '@vmhost/host';
import { hostSnapshot } from '../helpers/host-snapshot.js';
import { ipJson } from '../helpers/ns.js';
import { cleanUp } from '../helpers/cleanup.js';

const ROOT = join(import.meta.dirname, '..', '..');

function hostText(vms: number): string {
  const list = Array.from(
    { length: vms },
    (_, i) => `
  - name: vm${i}
    ipv4: 192.168.0.${10 + i}
    ipv6: "2001:db8:8:5688::${(0x100 + i).toString(16)}"
    kernel: ${join(ROOT, '.cache', 'guest', 'vmlinuz')}
    autostart: false
    forwards: [{ port: ${2000 + i}, toPort: 22 }]`,
  ).join('');
  return `name: scale
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed }
vms:${list}
`;
}

/** The prefix of this host's TAPs (`<tag>-`, the tag from the host's name: spec/schema.ts tapTag). */
const TAP = parseHostFile(hostText(1), { baseDir: ROOT }).vms[0]!.tap.replace(/vm0$/, '');

async function world(t: import('node:test').TestContext): Promise<{ ns: string; opts: { netns: string; stateDir: string } }> {
  const lab = await Lab.create({
    prefix: 'vmhl-scale-',
    namespaces: { wan: {}, host: {} },
    links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24'] } }],
  });
  const ns = lab.ns('host');
  const stateDir = join('/run/vmhost-itest', ns);
  cleanUp(t, lab, stateDir);
  return { ns, opts: { netns: ns, stateDir } };
}

type IpLink = { ifname: string; group: string; ifalias?: string };
const links = (ns: string): Promise<IpLink[]> => ipJson<IpLink[]>(ns, ['-d', 'link', 'show']);

test('plan reads each table once and sees what was changed by hand; apply puts it back', async (t) => {
  const { ns, opts } = await world(t);
  const host = parseHostFile(hostText(8), { baseDir: ROOT });
  await apply(host, opts);
  assert.deepEqual((await plan(host, opts)).steps, []);
  await netns.run(ns, 'ip', ['-6', 'route', 'del', '2001:db8:8:5688::103/128', 'dev', 'br0']);
  await netns.run(ns, 'ip', ['-6', 'neigh', 'del', 'proxy', '2001:db8:8:5688::105', 'dev', 'eth0']);
  await netns.run(ns, 'ip', ['link', 'set', `${TAP}vm6`, 'nomaster']);
  await netns.run(ns, 'ip', ['link', 'del', `${TAP}vm7`]);
  const steps = (await plan(host, opts)).steps.map((s) => `${s.action} ${s.id}`);
  assert.deepEqual(steps.sort(), [`create link:${TAP}vm7`, 'create proxyNeighbor:eth0:2001:db8:8:5688::105', 'create route:2001:db8:8:5688::103/128', `update link:${TAP}vm6`].sort());
  await apply(host, opts);
  assert.deepEqual((await plan(host, opts)).steps, []);
  const ip = await links(ns);
  assert.ok(ip.some((l) => l.ifname === `${TAP}vm7` && l.ifalias === 'vmhost:scale'));
  await down(host, opts);
});

test('down removes the TAPs in one batch: every one gone, one step each, links that are not the host\'s stay in their groups', async (t) => {
  const { ns, opts } = await world(t);
  const before = await hostSnapshot(ns);
  const host = parseHostFile(hostText(12), { baseDir: ROOT });
  await apply(host, opts);
  // a link of someone else in a group of its own, and a record planted for it among the TAPs' (it
  // is not marked: left alone); a TAP removed by hand before down (its record finds it gone)
  await netns.run(ns, 'ip', ['link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']);
  await netns.run(ns, 'ip', ['link', 'set', 'other0', 'group', '77']);
  await netns.run(ns, 'ip', ['link', 'del', `${TAP}vm4`]);
  const file = join(opts.stateDir, 'state.json');
  const state = JSON.parse(readFileSync(file, 'utf8')) as { entries: Array<{ id: string }> };
  const at = state.entries.findIndex((e) => e.id === `link:${TAP}vm6`);
  state.entries.splice(at, 0, { kind: 'link', id: 'link:other0', status: 'done', data: { name: 'other0', kind: 'tap', master: 'br0' }, ifindex: null, temp: null } as never);
  writeFileSync(file, JSON.stringify(state), { mode: 0o600 });
  const notices: string[] = [];
  const events: string[] = [];
  let tapsAtFirstChange: number | undefined;
  const r = await down(host, {
    ...opts,
    // when the first TAP's step reaches its `changed` point, the batch has removed every one
    checkpoint: async (p) => {
      if (p.phase === 'changed' && p.step.id.startsWith(`link:${TAP}`) && tapsAtFirstChange === undefined) tapsAtFirstChange = (await links(ns)).filter((l) => l.ifname.startsWith(`${TAP}`)).length;
    },
    onProgress: (ev) => {
      if (ev.type === 'notice') notices.push(ev.message);
      if (ev.type === 'step-done') events.push(ev.step.id);
    },
  });
  assert.equal(tapsAtFirstChange, 0, 'one batch removed them all before the first step was recorded');
  const taps = r.steps.filter((s) => s.id.startsWith(`link:${TAP}`));
  assert.equal(taps.length, 12, 'one step per TAP');
  assert.ok(r.steps.some((s) => s.id === 'link:other0'));
  assert.deepEqual(events, r.steps.map((s) => s.id), 'each step reported in order');
  assert.ok(notices.some((n) => /link other0 left alone: it does not carry this host's owner mark/.test(n)), notices.join(' | '));
  const ip = await links(ns);
  assert.deepEqual(ip.map((l) => l.ifname).sort(), ['eth0', 'lo', 'other0', 'other1']);
  assert.equal(ip.find((l) => l.ifname === 'other0')?.group, '77', 'its group is its own');
  assert.ok(ip.filter((l) => l.ifname !== 'other0').every((l) => l.group === 'default'), 'no other link was put in a group');
  await netns.run(ns, 'ip', ['link', 'del', 'other0']);
  assert.deepEqual(await hostSnapshot(ns), before);
  assert.equal(existsSync(opts.stateDir), false);
});

test('apply that removes VMs no longer in the host file takes their TAPs in one batch; a later failure makes each again', async (t) => {
  const { ns, opts } = await world(t);
  const six = parseHostFile(hostText(6), { baseDir: ROOT });
  const two = parseHostFile(hostText(2), { baseDir: ROOT });
  await apply(six, opts);
  const applied = await hostSnapshot(ns, { macs: false });
  const p = await plan(two, opts);
  const removals = p.steps.filter((s) => s.action === 'delete' && s.id.startsWith(`link:${TAP}`));
  assert.equal(removals.length, 4);
  const last = p.steps.length - 1;
  await assert.rejects(
    apply(two, { ...opts, beforeStep: (_s, i) => { if (i === last) throw new Error('injected'); } }),
    (e: unknown) => e instanceof HostApplyError && e.undone.length === last && e.undoErrors.length === 0,
  );
  assert.deepEqual(await hostSnapshot(ns, { macs: false }), applied, 'every TAP of the batch made again (with its mark)');
  assert.deepEqual((await plan(six, opts)).steps, []);
  const r = await apply(two, opts);
  assert.equal(r.steps.length, p.steps.length);
  assert.deepEqual((await links(ns)).filter((l) => l.ifname.startsWith(`${TAP}`)).map((l) => l.ifname).sort(), [`${TAP}vm0`, `${TAP}vm1`]);
  await down(two, opts);
});

test('the record of a run is a journal appended step by step (the state file is not rewritten), compacted at the end', async (t) => {
  const { opts } = await world(t);
  const host = parseHostFile(hostText(3), { baseDir: ROOT });
  const file = join(opts.stateDir, 'state.json');
  const log = join(opts.stateDir, 'state.log');
  const ids = (await plan(host, opts)).steps.map((s) => s.id);
  const seen: Array<{ phase: string; id: string; json: boolean; lines: number; intended: boolean }> = [];
  await apply(host, {
    ...opts,
    checkpoint: (p) => {
      const lines = existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n') : [];
      const last = lines.length > 0 ? (JSON.parse(lines[lines.length - 1]!) as { record?: { id: string; status: string } }) : {};
      seen.push({ phase: p.phase, id: p.step.id, json: existsSync(file), lines: lines.length, intended: last.record?.id === p.step.id && last.record.status === 'intended' });
    },
  });
  assert.ok(seen.length > 20);
  assert.ok(seen.every((s) => !s.json), 'no state file is written during the run');
  assert.ok(seen.filter((s) => s.phase === 'intended').every((s) => s.intended), 'each intent is the journal\'s last line when the step starts');
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.lines >= seen[i - 1]!.lines, 'the journal only grows');
  assert.deepEqual(readdirSync(opts.stateDir).filter((f) => f.startsWith('state')), ['state.json']);
  const recorded = (JSON.parse(readFileSync(file, 'utf8')) as { entries: Array<{ id: string; status: string }> }).entries;
  assert.ok(recorded.every((e) => e.status === 'done'));
  assert.deepEqual(recorded.map((e) => e.id), ids, 'the record lists every step, in order');
  await down(host, opts);
});
