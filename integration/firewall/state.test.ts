// What apply/remove do to iptables-save, in fresh namespaces: re-apply is a no-op, remove restores
// the save output exactly (counters aside), a batch that fails halfway changes nothing, and
// Docker-like chains and another owner's rules are left as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FirewallError, apply, defaultRunner, defaultStarter, remove, render, type FirewallModel, type Runner, type Starter } from '@vmhost/firewall';
import { netns } from '@vmhost/net';
import { freshNetns, sh } from '../helpers/ns.js';
import { saveStripped } from './topology.js';
import { goldenModels, seedModel } from '../../test/firewall/models.js';

/** A runner that records every call and can corrupt one. */
function tracingRunner(ns: string, corrupt?: (cmd: string, args: readonly string[], input: string) => string | undefined) {
  const real = defaultRunner({ netns: ns });
  const calls: string[] = [];
  const runner: Runner = async (cmd, args, input) => {
    calls.push(`${cmd} ${args.join(' ')}`.trim());
    const changed = corrupt?.(cmd, args, input);
    return real(cmd, args, changed ?? input);
  };
  return { runner, calls };
}

/** Inserts `line` before the last COMMIT of a batch. */
function beforeLastCommit(batch: string, line: string): string {
  const i = batch.lastIndexOf('COMMIT');
  return `${batch.slice(0, i)}${line}\n${batch.slice(i)}`;
}

const DOCKER4 = [
  '*filter',
  ':FORWARD DROP [0:0]',
  ':DOCKER - [0:0]',
  ':DOCKER-USER - [0:0]',
  ':DOCKER-ISOLATION-STAGE-1 - [0:0]',
  '-A FORWARD -j DOCKER-USER',
  '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
  '-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  '-A FORWARD -o docker0 -j DOCKER',
  '-A DOCKER-USER -j RETURN',
  '-A DOCKER-ISOLATION-STAGE-1 -j RETURN',
  'COMMIT',
  '*nat',
  ':DOCKER - [0:0]',
  '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
  '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
  '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
  '-A DOCKER -i docker0 -j RETURN',
  'COMMIT',
  '',
].join('\n');
const LIBVIRT6 = ['*filter', ':LIBVIRT_FWI - [0:0]', '-A FORWARD -j LIBVIRT_FWI', '-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp6-port-unreachable', 'COMMIT', ''].join('\n');

test('every golden model applies, re-applies as a no-op and is removed without a trace', async (t) => {
  const ns = await freshNetns(t, 'fwgold');
  const empty = await saveStripped(ns);
  for (const [name, model] of Object.entries(goldenModels)) {
    const first = await apply(model, { netns: ns });
    const rendered = render(model);
    assert.equal(first.changed, rendered.ipv4 !== '' || rendered.ipv6 !== '', name);
    const applied = await saveStripped(ns);
    const { runner, calls } = tracingRunner(ns);
    const again = await apply(model, { netns: ns, runner });
    assert.equal(again.changed, false, `${name}: re-apply changes nothing`);
    // (ebtables-save only where the owner has VM ports: see docs/firewall-isolation.md)
    const saves = ['ip6tables-save', 'iptables-save', ...((model.ports ?? []).some((p) => p.isolation !== false) ? ['ebtables-nft-save'] : [])];
    assert.deepEqual(calls.sort(), saves.sort(), `${name}: re-apply runs only the save programs`);
    assert.equal(await saveStripped(ns), applied, `${name}: iptables-save identical after re-apply`);
    await remove(model.owner, { netns: ns });
    assert.equal(await saveStripped(ns), empty, `${name}: remove restores iptables-save exactly`);
  }
});

test('Docker- and libvirt-like chains and another owner are untouched; remove restores exactly', async (t) => {
  const ns = await freshNetns(t, 'fwshare');
  await sh(ns, 'iptables-restore', ['--noflush'], DOCKER4);
  await sh(ns, 'ip6tables-restore', ['--noflush'], LIBVIRT6);
  const other: FirewallModel = { owner: 'other', masquerade: [{ source: '10.9.0.0/24', outInterface: 'eth1' }], portForwards: [{ protocol: 'udp', port: 53, to: '10.9.0.53' }] };
  await apply(other, { netns: ns });
  const before = await saveStripped(ns);

  await apply(seedModel, { netns: ns });
  await apply(goldenModels['full-dual-stack']!, { netns: ns });
  const during = await saveStripped(ns);
  // Everything that was there is still there, in the same order, with only our lines added.
  // (ip6tables had no nat table before: ours was created, with its marker, and holds only our rules)
  const withoutOurs = during
    .split('\n')
    .filter((l) => !/VMHOST-(seed|host1)-|VMHOST-NEWTABLE/.test(l))
    .join('\n');
  const [v4, v6] = withoutOurs.split('--- ip6tables ---');
  assert.match(v6!, /\*nat\n(:[A-Z]+ ACCEPT \[0:0\]\n){4}COMMIT\n/);
  assert.equal(`${v4}--- ip6tables ---${v6!.replace(/\*nat\n(:[A-Z]+ ACCEPT \[0:0\]\n){4}COMMIT\n/, '')}`, before);
  // Our jumps are the first rules of their built-in chains; the policy set by "Docker" stays DROP.
  assert.match(during, /:FORWARD DROP \[0:0\]/);
  assert.match(during, /-A FORWARD -m comment --comment "vmhost:host1" -j VMHOST-host1-FWD\n-A FORWARD -m comment --comment "vmhost:seed" -j VMHOST-seed-FWD\n-A FORWARD -m comment --comment "vmhost:other" -j VMHOST-other-FWD\n-A FORWARD -j DOCKER-USER/);

  await remove('seed', { netns: ns });
  const r = await remove('host1', { netns: ns });
  assert.deepEqual(r.ipv6.drop, ['nat'], JSON.stringify(r.ipv6));
  assert.equal(await saveStripped(ns), before);
  await remove('other', { netns: ns });
  await sh(ns, 'iptables-save', []).then((s) => assert.match(s, /DOCKER-USER/));
});

test('a batch that fails halfway (IPv6 commit refused by the kernel after IPv4 went in) changes nothing', async (t) => {
  const ns = await freshNetns(t, 'fwfail');
  const model = goldenModels['full-dual-stack']!;
  // A DNAT target in the filter table passes `--test` (userspace) and is refused by the kernel at commit.
  // (apply commits each table section with a program of its own: corrupt the IPv6 filter one)
  const { runner, calls } = tracingRunner(ns, (cmd, args, input) =>
    cmd === 'ip6tables-restore' && args.join(' ') === '--noflush' && input.startsWith('*filter\n') ? beforeLastCommit(input, '-A VMHOST-host1-FWD -j DNAT --to-destination ::1') : undefined,
  );
  // 1. from nothing: IPv4 is rolled back, tables created for it are dropped again
  const empty = await saveStripped(ns);
  await assert.rejects(apply(model, { netns: ns, runner }), (e: unknown) => {
    assert.ok(e instanceof FirewallError, String(e));
    assert.equal(e.code, 'EFW_RESTORE');
    assert.equal(e.family, 6);
    assert.equal(e.stage, 'commit');
    // (the runner changed the batch behind apply's back, so only the kernel's message is checked)
    assert.match(e.stderr, /line \d+: RULE_APPEND failed/);
    return true;
  });
  assert.ok(calls.includes('iptables-restore --noflush'), 'IPv4 had been committed before IPv6 failed');
  assert.equal(await saveStripped(ns), empty, 'IPv4 put back: nothing left');

  // 2. over an applied model: a changed model that fails leaves the old one exactly in place
  await apply(seedModel, { netns: ns });
  const seeded = await saveStripped(ns);
  const changed: FirewallModel = { ...seedModel, allowIcmpv6: true, portForwards: [...seedModel.portForwards!, { protocol: 'tcp', port: 8080, to: '192.168.0.150' }] };
  const t2 = tracingRunner(ns, (cmd, args, input) =>
    cmd === 'ip6tables-restore' && args.join(' ') === '--noflush' ? beforeLastCommit(input, '-A VMHOST-seed-FWD -j DNAT --to-destination ::1') : undefined,
  );
  await assert.rejects(apply(changed, { netns: ns, runner: t2.runner }), { code: 'EFW_RESTORE' });
  assert.equal(await saveStripped(ns), seeded);

  // 3. refused by --test: nothing is committed at all
  const t3 = tracingRunner(ns, (cmd, args, input) => (cmd === 'iptables-restore' && args.includes('--test') ? `${input}-A NO-SUCH-CHAIN -j ACCEPT\n` : undefined));
  await assert.rejects(apply(changed, { netns: ns, runner: t3.runner }), { code: 'EFW_RESTORE', stage: 'test' });
  assert.ok(!t3.calls.some((c) => c.endsWith('restore --noflush')), t3.calls.join('; '));
  assert.equal(await saveStripped(ns), seeded);

  // and the unchanged runner applies the changed model fine
  assert.equal((await apply(changed, { netns: ns })).changed, true);
});

test('pipelined commit with real programs: held iptables-restore runs are killed when --test refuses, and commit nothing', async (t) => {
  const ns = await freshNetns(t, 'fwpipe');
  await apply(seedModel, { netns: ns });
  const seeded = await saveStripped(ns);
  const changed: FirewallModel = { ...seedModel, portForwards: [...seedModel.portForwards!, { protocol: 'tcp', port: 8080, to: '192.168.0.150' }] };
  const real = defaultStarter({ netns: ns });
  const events: string[] = [];
  let refuse = true;
  const starter: Starter = (cmd, args) => {
    const p = real(cmd, args);
    const name = `${cmd} ${args.join(' ')}`.trim();
    events.push(`start ${name}`);
    const isTest = args.includes('--test');
    return {
      pid: p.pid,
      write: (text) => p.write(text),
      // the IPv4 tests are given a rule with an impossible port: refused in userspace
      end: async (text) => {
        const r = await p.end(refuse && isTest && cmd === 'iptables-restore' ? (text ?? '').replace(/COMMIT\n$/, '-A PREROUTING -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n') : text);
        events.push(`exit ${name} ${r.code ?? r.signal}`);
        return r;
      },
      kill: async () => {
        const r = await p.kill();
        events.push(`killed ${name} ${r.code ?? r.signal}`);
        return r;
      },
    };
  };
  await assert.rejects(apply(changed, { netns: ns, starter, check: 'test' }), { code: 'EFW_RESTORE', stage: 'test' });
  // the committing programs had been started before the tests ended, and were killed, not committed
  const firstExit = events.findIndex((e) => e.startsWith('exit iptables-restore --test'));
  assert.ok(events.slice(0, firstExit).includes('start iptables-restore --noflush'), events.join('; '));
  assert.ok(events.some((e) => e === 'killed iptables-restore --noflush SIGKILL'), events.join('; '));
  assert.ok(!events.some((e) => e.startsWith('exit iptables-restore --noflush')), events.join('; '));
  assert.equal(await saveStripped(ns), seeded, 'nothing committed');
  // no iptables-restore of ours is left behind in the namespace
  assert.deepEqual(await netns.pids(ns), []);
  // and with the test passing, the same starter commits through the held programs
  refuse = false;
  events.length = 0;
  assert.equal((await apply(changed, { netns: ns, starter, check: 'test' })).changed, true);
  assert.ok(events.includes('exit iptables-restore --noflush 0'), events.join('; '));
  assert.match(await sh(ns, 'iptables-save', ['-t', 'nat']), /--dport 8080 -j DNAT --to-destination 192\.168\.0\.150:8080/);
});

test('remove of an owner that has nothing, and owner names are validated before anything runs', async (t) => {
  const ns = await freshNetns(t, 'fwnone');
  const { runner, calls } = tracingRunner(ns);
  assert.equal((await remove('ghost', { netns: ns, runner })).changed, false);
  await assert.rejects(remove('bad-name', { netns: ns, runner }), { code: 'EVALIDATION', field: 'owner' });
  await assert.rejects(apply({ owner: 'x', portForwards: [{ protocol: 'tcp', port: 0, to: '10.0.0.1' }] }, { netns: ns, runner }), {
    code: 'EVALIDATION',
    field: 'portForwards[0].port',
  });
  assert.deepEqual(calls.sort(), ['ebtables-nft-save', 'ip6tables-save', 'iptables-save']);
});

test('default check: each committing program parses its whole section before any COMMIT; a refusal commits nothing', async (t) => {
  const ns = await freshNetns(t, 'fwparse');
  await apply(seedModel, { netns: ns });
  const seeded = await saveStripped(ns);
  const changed: FirewallModel = { ...seedModel, allowIcmpv6: true, portForwards: [...seedModel.portForwards!, { protocol: 'tcp', port: 8080, to: '192.168.0.150' }] };
  const real = defaultStarter({ netns: ns });
  const events: string[] = [];
  let corrupt = true;
  const starter: Starter = (cmd, args) => {
    const p = real(cmd, args);
    const name = `${cmd} ${args.join(' ')}`.trim();
    events.push(`start ${name}`);
    let section = '';
    return {
      pid: p.pid,
      // the IPv4 nat section is given a rule with an impossible port: refused while it is read
      write: (text) => {
        section = text.split('\n')[0] ?? '';
        p.write(corrupt && cmd === 'iptables-restore' && text.startsWith('*nat') ? `${text}-A PREROUTING -p tcp --dport 99999 -j ACCEPT\n` : text);
      },
      end: async (text) => {
        events.push(`end ${name} ${section}`);
        const r = await p.end(text);
        events.push(`exit ${name} ${section} ${r.code ?? r.signal}`);
        return r;
      },
      kill: async () => {
        const r = await p.kill();
        events.push(`killed ${name} ${section || '(unused)'} ${r.code ?? r.signal}`);
        return r;
      },
      parked: async () => {
        const ok = await p.parked!();
        events.push(`parked ${name} ${section} ${ok}`);
        return ok;
      },
    };
  };
  await assert.rejects(apply(changed, { netns: ns, starter }), (e: unknown) => {
    assert.ok(e instanceof FirewallError, String(e));
    assert.equal(e.code, 'EFW_RESTORE');
    assert.equal(e.stage, 'parse');
    assert.equal(e.family, 4);
    assert.match(e.stderr, /invalid port\/service `99999'/);
    // (the starter added the line behind apply's back: apply cannot point at it)
    assert.match(e.stderr, /line: \d+/);
    return true;
  });
  assert.ok(!events.some((e) => e.includes('--test')), `no --test pass: ${events.join('; ')}`);
  assert.ok(events.includes('parked iptables-restore --noflush *nat false'), events.join('; '));
  // the others were killed before their COMMIT (only the refused one was ended, by its own exit)
  assert.ok(events.some((e) => e.startsWith('killed iptables-restore --noflush *filter')), events.join('; '));
  assert.ok(events.some((e) => e.startsWith('killed ip6tables-restore --noflush *filter')), events.join('; '));
  assert.deepEqual(events.filter((e) => /^end \S+-restore/.test(e)), ['end iptables-restore --noflush *nat'], events.join('; '));
  assert.equal(await saveStripped(ns), seeded, 'nothing committed');
  assert.deepEqual(await netns.pids(ns), [], 'no program of ours left behind');

  // unchanged: every section parked before the first ending was written, and all committed
  corrupt = false;
  events.length = 0;
  const r = await apply(changed, { netns: ns, starter });
  assert.equal(r.changed, true);
  const firstEnd = events.findIndex((e) => /^end \S+-restore/.test(e));
  const parked = events.filter((e) => e.startsWith('parked '));
  assert.ok(parked.length >= 3 && parked.every((e) => e.endsWith(' true')), events.join('; '));
  assert.ok(events.slice(0, firstEnd).filter((e) => e.startsWith('parked ')).length === parked.length, `all parked before the first COMMIT: ${events.join('; ')}`);
  assert.ok(events.filter((e) => e.startsWith('exit ')).every((e) => e.endsWith(' 0')), events.join('; '));
  assert.match(await sh(ns, 'iptables-save', ['-t', 'nat']), /--dport 8080 -j DNAT --to-destination 192\.168\.0\.150:8080/);
  assert.deepEqual(await netns.pids(ns), []);
});

test('a model that drops its ports takes their ebtables chains out too (found through the ip6tables raw chains)', async (t) => {
  const ns = await freshNetns(t, 'fwports');
  const empty = await saveStripped(ns);
  const model = goldenModels['ports-with-forwards']!;
  await apply(model, { netns: ns });
  assert.match(await sh(ns, 'ebtables-nft-save', []), /-A PREROUTING -i vm0 -j VMHOST-seed-web-S/);
  const { ports, ...without } = model;
  assert.equal(ports?.length, 2);
  const r = await apply(without, { netns: ns });
  assert.deepEqual(r.bridge.drop, ['nat']);
  assert.deepEqual(r.ipv6.drop, ['raw']);
  assert.equal(await sh(ns, 'ebtables-nft-save', []), '');
  await remove(model.owner, { netns: ns });
  assert.equal(await saveStripped(ns), empty);
});
