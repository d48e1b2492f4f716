// The state directory as a trust boundary and the state file as a record, never instructions,
// with the real CLI and library inside lab namespaces: unsafe directories and planted symlinks are
// refused before anything changes; files are 0600 and directories 0700 under `umask 000`; a planted
// state file naming an evil QEMU binary, the uplink, another user's sysctl or a path outside the
// state directory never makes apply or down run or delete anything it should not (oracles: the
// evil script's marker file, `ip -j link`, `ip -j addr`, /proc/sys); corrupt state files give a
// typed error naming the file, apply rebuilds the record from the owner marks, `vmhost recover`
// then `down` removes everything (the sysctls' old values cannot be recovered: they are left); and
// ENOSPC on the state directory (a tiny tmpfs in a private mount namespace) undoes what could not
// be recorded.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { apply, down, HostApplyError, HostStateError, parseHostFile, plan, recover, status, type ResolvedHost } from '@vmhost/host';
import { vmhost } from '../helpers/cli.js';
import { guestsReady, hostText } from '../helpers/fault-env.js';
import { hostSnapshot, hostSysctls, type HostSnapshot } from '../helpers/host-snapshot.js';
import { ipJson } from '../helpers/ns.js';
import { cleanUp } from '../helpers/cleanup.js';

const ROOT = join(import.meta.dirname, '..', '..');
let hosts = 0;

interface World {
  ns: string;
  dir: string;
  host: ResolvedHost;
  file: string;
  stateDir: string;
  g: string[];
  baseline: HostSnapshot;
}

/** A lab namespace with an uplink, a host file (`vms`; proxy mode with `proxy`) and a state directory under a fresh 0700 directory in /tmp. */
async function world(t: TestContext, options: { vms?: string[]; autostart?: boolean; proxy?: boolean } = {}): Promise<World> {
  const lab = await Lab.create({
    prefix: 'vmhl-trust-',
    namespaces: { wan: {}, host: {} },
    links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24', '2001:db8:8:5688::2/64'] } }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-trust-'));
  cleanUp(t, lab, dir);
  const name = `trust${++hosts}`;
  let text = hostText(name, options.autostart ?? false, options.vms ?? ['web']);
  if (options.proxy) text = text.replace('mode: routed, acceptRa: true', 'mode: proxy');
  const file = join(dir, 'host.yaml');
  writeFileSync(file, text);
  const ns = lab.ns('host');
  const stateDir = join(dir, 'state');
  return { ns, dir, host: parseHostFile(text, { baseDir: ROOT }), file, stateDir, g: ['--netns', ns, '--state-dir', stateDir], baseline: await hostSnapshot(ns) };
}

const opts = (w: World) => ({ netns: w.ns, stateDir: w.stateDir });
const mode = (p: string): string => (statSync(p).mode & 0o7777).toString(8);
const NOBODY = 65534;

test('an unsafe state directory or a planted symlink is refused (EHOST_STATE_UNSAFE naming the path) before anything changes', async (t) => {
  const w = await world(t);
  const refuses = async (stateDir: string, path: string, why: RegExp): Promise<void> => {
    await assert.rejects(apply(w.host, { netns: w.ns, stateDir }), (e: unknown) => {
      assert.ok(e instanceof HostStateError, String(e));
      assert.equal(e.code, 'EHOST_STATE_UNSAFE');
      assert.equal(e.file, path);
      assert.match(e.message, why);
      return true;
    });
    assert.deepEqual(await hostSnapshot(w.ns), w.baseline, `nothing changed (${stateDir})`);
  };
  const open = join(w.dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  await refuses(join(open, 'state'), open, /writable by group or others \(mode 0777\) and not sticky/);
  const theirs = join(w.dir, 'theirs');
  mkdirSync(theirs, { mode: 0o755 });
  chownSync(theirs, NOBODY, NOBODY);
  await refuses(join(theirs, 'state'), theirs, /owned by uid 65534, not root/);
  const wide = join(w.dir, 'wide');
  mkdirSync(wide);
  chmodSync(wide, 0o777);
  await refuses(wide, wide, /the state directory is writable by group or others/);
  await refuses('/tmp', '/tmp', /the state directory is writable by group or others/);
  // a symlink in /tmp (sticky) owned by another user is not followed; root's is
  const target = join(w.dir, 'target');
  mkdirSync(target, { mode: 0o700 });
  const link = join(tmpdir(), `vmhost-trust-link-${process.pid}`);
  symlinkSync(target, link);
  t.after(() => rmSync(link, { force: true }));
  const { lchownSync } = await import('node:fs');
  lchownSync(link, NOBODY, NOBODY);
  await refuses(join(link, 'state'), link, /a symlink owned by uid 65534/);
  lchownSync(link, 0, 0);
  await apply(w.host, { netns: w.ns, stateDir: join(link, 'state') });
  assert.ok(existsSync(join(target, 'state', 'state.json')), 'a symlink of root is followed');
  // planted inside the state directory (as if by an earlier compromise): never followed
  const sd = join(target, 'state');
  const victim = join(w.dir, 'victim');
  writeFileSync(victim, 'root data\n', { mode: 0o600 });
  await down(w.host, { netns: w.ns, stateDir: sd });
  mkdirSync(sd, { mode: 0o700 });
  symlinkSync(w.dir, join(sd, 'dnsmasq'));
  await assert.rejects(apply(w.host, { netns: w.ns, stateDir: sd }), (e: unknown) => {
    assert.ok(e instanceof HostApplyError, String(e));
    assert.equal(e.step.id, 'dnsmasq');
    assert.ok(e.cause instanceof HostStateError && e.cause.code === 'EHOST_STATE_UNSAFE' && e.cause.file === join(sd, 'dnsmasq'), String(e.cause));
    return true;
  });
  assert.deepEqual(await hostSnapshot(w.ns), w.baseline, 'undone');
  assert.deepEqual(readdirSync(w.dir).filter((f) => f.startsWith('dnsmasq')), [], 'nothing written through the symlink');
  assert.equal(readFileSync(victim, 'utf8'), 'root data\n');
  rmSync(join(sd, 'dnsmasq'));
  rmSync(join(sd, 'state.json'));
  symlinkSync(victim, join(sd, 'state.json'));
  await assert.rejects(plan(w.host, { netns: w.ns, stateDir: sd }), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_UNSAFE' && e.file === join(sd, 'state.json') && /a symlink/.test(e.message));
  symlinkSync(victim, join(sd, 'lock'));
  rmSync(join(sd, 'state.json'));
  await recover(w.host, { netns: w.ns, stateDir: sd }); // takes the lock: the planted symlink is replaced, not followed
  assert.equal(readFileSync(victim, 'utf8'), 'root data\n');
  await down(w.host, { netns: w.ns, stateDir: sd });
  assert.deepEqual((await hostSnapshot(w.ns)).links, w.baseline.links);
});

test('under umask 000 the state directory and what vmhost makes in it are 0700, its files 0600', async (t) => {
  const w = await world(t, { autostart: true });
  const old = process.umask(0);
  try {
    const r = await vmhost([...w.g, 'apply', w.file]);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    process.umask(old);
  }
  assert.equal(mode(w.stateDir), '700');
  assert.equal(mode(join(w.stateDir, 'state.json')), '600');
  for (const d of ['dnsmasq', 'vms', 'vms/web']) assert.equal(mode(join(w.stateDir, d)), '700', d);
  assert.deepEqual(readdirSync(w.stateDir).sort(), ['dnsmasq', 'state.json', 'vms']);
  await guestsReady({ host: w.host, opts: opts(w) });
  assert.equal((await vmhost([...w.g, 'down', w.file])).code, 0);
  assert.deepEqual(await hostSnapshot(w.ns), w.baseline);
});

test('a planted state file is a record, never instructions: no evil QEMU binary runs, the uplink and its address stay, foreign links stay', async (t) => {
  const w = await world(t, { vms: ['web'], autostart: false });
  const marker = join(w.dir, 'evil-ran');
  const evil = join(w.dir, 'evil.sh');
  writeFileSync(evil, `#!/bin/sh\nid > ${marker}\n`, { mode: 0o755 });
  await apply(w.host, opts(w));
  const stateFile = join(w.stateDir, 'state.json');
  const good = JSON.parse(readFileSync(stateFile, 'utf8')) as { entries: Array<Record<string, unknown>> };
  const plant = (entries: unknown[]): void => writeFileSync(stateFile, JSON.stringify({ ...good, entries: [...good.entries, ...entries] }), { mode: 0o600 });

  // a VM record with a binary: not a record vmhost reads; apply moves the file aside and rebuilds it
  plant([{ kind: 'vm', id: 'vm:gone', status: 'done', data: { name: 'gone', fingerprint: null, options: { qemuBinary: evil } }, qemuBinary: evil }]);
  const notices: string[] = [];
  await apply(w.host, { ...opts(w), onProgress: (ev) => void (ev.type === 'notice' && notices.push(ev.message)) });
  assert.ok(notices.some((n) => n.includes(stateFile) && /unknown field "qemuBinary"/.test(n) && /moved to .*state\.json\.corrupt-/.test(n)), notices.join(' | '));
  assert.equal(existsSync(marker), false, 'the evil script never ran');

  // records naming another sysctl, a path outside the state directory: refused as corrupt, naming the field
  for (const [entry, why] of [
    [{ kind: 'sysctl', id: 'sysctl:kernel.core_pattern', status: 'done', data: { key: 'kernel.core_pattern', value: '1' }, previous: '0' }, /entries\[\d+\]\.data\.key: "kernel\.core_pattern" is not a sysctl vmhost sets/],
    [{ kind: 'dnsmasq', id: 'dnsmasq', status: 'done', data: { options: { dir: '/etc', interface: 'br0' } } }, /never names dnsmasq's directory/],
  ] as const) {
    plant([entry]);
    await assert.rejects(plan(w.host, opts(w)), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_CORRUPT' && e.file === stateFile && why.test(e.message));
    const r = await vmhost([...w.g, 'status', w.file]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(stateFile) && why.test(r.stderr), r.stderr);
  }

  // well-formed records of things vmhost did not make: the uplink, its address, a foreign veth
  await netns.run(w.ns, 'ip', ['link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']);
  plant([
    { kind: 'link', id: 'link:eth0', status: 'done', data: { name: 'eth0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: null },
    { kind: 'link', id: 'link:other0', status: 'done', data: { name: 'other0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: null },
    { kind: 'address', id: 'address:eth0:203.0.113.2/24', status: 'done', data: { dev: 'eth0', cidr: '203.0.113.2/24' } },
  ]);
  const downNotices: string[] = [];
  await down(w.host, { ...opts(w), onProgress: (ev) => void (ev.type === 'notice' && downNotices.push(ev.message)) });
  const links = (await ipJson<Array<{ ifname: string }>>(w.ns, ['link', 'show'])).map((l) => l.ifname).sort();
  assert.deepEqual(links, ['eth0', 'lo', 'other0', 'other1']);
  const addrs = (await ipJson<Array<{ addr_info: Array<{ local: string }> }>>(w.ns, ['addr', 'show', 'dev', 'eth0'])).flatMap((l) => l.addr_info.map((a) => a.local));
  assert.ok(addrs.includes('203.0.113.2'), 'the uplink keeps its address');
  for (const want of [/link eth0 left alone: it is the uplink/, /link other0 left alone: it does not carry this host's owner mark/, /address 203\.0\.113\.2\/24 on eth0 left alone/]) {
    assert.ok(downNotices.some((n) => want.test(n)), `${want}: ${downNotices.join(' | ')}`);
  }
  assert.equal(existsSync(marker), false);
});

test('corrupt state files: plan and status say which file and what is wrong; apply rebuilds the record from the owner marks and the shared record; recover then down removes everything (the sysctls only while the shared record knows their originals)', async (t) => {
  const w = await world(t, { vms: ['web'] });
  const stateFile = join(w.stateDir, 'state.json');
  const r0 = await vmhost([...w.g, 'apply', w.file]);
  assert.equal(r0.code, 0, r0.stderr);
  const applied = await hostSnapshot(w.ns, { macs: false });
  const good = readFileSync(stateFile, 'utf8');
  const cases: Array<[string, string, RegExp]> = [
    ['truncated', good.slice(0, 80), /not a vmhost state file: not JSON \(/],
    ['garbage', '\u0000\u00ff garbage', /not a vmhost state file: not JSON/],
    ['empty', '', /not a vmhost state file: empty/],
    ['unknown kind', good.replace('"kind": "route"', '"kind": "tunnel"'), /entries\[\d+\]\.kind: unknown kind "tunnel"/],
    ['wrong type', good.replace(/"ifindex": \d+/, '"ifindex": "7"'), /entries\[\d+\]\.ifindex: expected an interface index or null/],
    ['deep', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /not a vmhost state file: (not JSON|the file: expected an object)/],
  ];
  for (const [i, [what, text, why]] of cases.entries()) {
    writeFileSync(stateFile, text, { mode: 0o600 });
    for (const view of [plan, status]) {
      await assert.rejects(view(w.host, opts(w)), (e: unknown) => {
        assert.ok(e instanceof HostStateError && e.code === 'EHOST_STATE_CORRUPT' && e.file === stateFile, `${what}: ${String(e)}`);
        assert.match(e.message, why, what);
        assert.ok(e.message.startsWith(`${stateFile}: `), e.message);
        return true;
      });
    }
    if (i < 2) {
      // and the command line says so, naming the file, with exit 1
      const r = await vmhost([...w.g, i === 0 ? 'status' : 'plan', w.file]);
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.ok(r.stderr.includes(stateFile) && why.test(r.stderr) && r.stderr.includes('EHOST_STATE_CORRUPT'), `${what}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /TypeError|internal error/);
    }
  }
  // a file of version 1 (vmhost before the write-ahead state) is refused, not rebuilt behind the user's back
  writeFileSync(stateFile, JSON.stringify({ version: 1, name: 'x', entries: [], updatedAt: '' }), { mode: 0o600 });
  const v1 = await vmhost([...w.g, 'apply', w.file]);
  assert.equal(v1.code, 1);
  assert.match(v1.stderr, /EHOST_STATE_VERSION: .*state\.json: a state file of version 1/);

  // apply on a corrupt file: moved aside, rebuilt, and the host is as a clean apply makes it
  writeFileSync(stateFile, good.slice(0, 80), { mode: 0o600 });
  const a = await vmhost([...w.g, 'apply', w.file]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /note: .*state\.json: not a vmhost state file: not JSON .*: moved to .*state\.json\.corrupt-/);
  // the sysctls are recovered from the namespace's shared record, which counts this host among their holders
  assert.doesNotMatch(a.stderr, /sysctl net\.ipv4\.ip_forward is 1, the value vmhost sets/);
  assert.deepEqual((await hostSnapshot(w.ns, { macs: false })).links, applied.links);
  assert.equal((await status(w.host, opts(w))).applied, true);

  // recover by hand, then down: everything vmhost made goes, the sysctls back to their originals (the shared record kept them)
  writeFileSync(stateFile, '{"version": 2', { mode: 0o600 });
  const rc = await vmhost([...w.g, 'recover', w.file]);
  assert.equal(rc.code, 0, rc.stderr);
  for (const want of ['link br0', 'link veth0', `link ${w.host.vms[0]!.tap}`, 'address 192.168.0.1/24 on br0', 'proxy neighbour 2001:db8:8:5688::100 on eth0', 'route 2001:db8:8:5688::100/128 dev br0', 'firewall of owner', 'dnsmasq']) {
    assert.ok(rc.stdout.includes(want), `recovered ${want}: ${rc.stdout}`);
  }
  assert.ok(readdirSync(w.stateDir).filter((f) => f.startsWith('state.json.corrupt-')).length >= 2);
  const again = await vmhost([...w.g, 'recover', w.file]);
  assert.match(again.stderr, /is readable \(\d+ entries\): nothing to recover/);
  const d = await vmhost([...w.g, 'down', w.file]);
  assert.equal(d.code, 0, d.stderr);
  assert.deepEqual(await hostSnapshot(w.ns), w.baseline, 'down after recover: the namespace as before, the sysctls too');
  // without the shared record (lost), the sysctls' old values are not known: they stay at vmhost's values
  const r1 = await vmhost([...w.g, 'apply', w.file]);
  assert.equal(r1.code, 0, r1.stderr);
  rmSync(join('/run/vmhost', w.ns, '.shared', 'shared.json')); // where docs/host-owners.md says it is
  writeFileSync(stateFile, '{"version": 2', { mode: 0o600 });
  const rc2 = await vmhost([...w.g, 'recover', w.file]);
  assert.match(rc2.stderr, /sysctl net\.ipv4\.ip_forward is 1, the value vmhost sets; the namespace's shared record does not count this host among its holders/);
  assert.equal((await vmhost([...w.g, 'down', w.file])).code, 0);
  assert.deepEqual((await hostSnapshot(w.ns)).sysctls, { 'ipv4/ip_forward': '1', 'ipv6/conf/all/forwarding': '1', 'ipv6/conf/eth0/proxy_ndp': '1', 'ipv6/conf/eth0/accept_ra': '2', 'bridge/bridge-nf-call-ip6tables': '1' }, 'the sysctls are left at vmhost\'s values');
  // put them back by hand (forwarding adds the subnet-router anycast routes): then all is as before
  for (const k of hostSysctls()) netns.runIn(w.ns, () => writeFileSync(`/proc/sys/net/${k}`, String(w.baseline.sysctls[k])));
  assert.deepEqual(await hostSnapshot(w.ns), w.baseline, 'down after recover: the namespace as before (the sysctls put back by hand)');
});

test('recover in plan B (the proxy mode): the VMs\' /128s on the uplink (protocol mark) and the proxy service are found; down removes them', async (t) => {
  const w = await world(t, { vms: ['web'], proxy: true });
  await apply(w.host, opts(w));
  const onUplink = async (): Promise<string[]> => (await ipJson<Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>>(w.ns, ['addr', 'show', 'dev', 'eth0'])).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
  assert.ok((await onUplink()).includes('2001:db8:8:5688::100/128'));
  rmSync(join(w.stateDir, 'state.json'));
  const r = await recover(w.host, opts(w));
  assert.ok(r.records.some((x) => x.id === 'address:eth0:2001:db8:8:5688::100/128'), JSON.stringify(r.records));
  assert.ok(r.records.some((x) => x.id === 'proxy6'));
  assert.ok(!r.records.some((x) => x.id === 'address:eth0:2001:db8:8:5688::2/64'), 'the uplink\'s own address is not vmhost\'s');
  await down(w.host, opts(w));
  assert.deepEqual((await onUplink()).sort(), ['2001:db8:8:5688::2/64', '203.0.113.2/24', ...(await onUplink()).filter((a) => a.startsWith('fe80:'))].sort());
  assert.deepEqual((await hostSnapshot(w.ns)).pids, []);
});

test('ENOSPC on the state directory (a tiny tmpfs in a private mount namespace): what could not be recorded is undone; with space again apply and down work', async (t) => {
  const w = await world(t, { vms: ['web'] });
  // tmpfs counts pages: with one page free the lock file takes it and the first change cannot be
  // recorded; with two the journal fills its page at the firewall's record, after 11 steps
  for (const free of [4096, 8192]) {
    const mnt = join(w.dir, `mnt-${free}`);
    mkdirSync(mnt, { mode: 0o700 });
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, '--conditions=vmhost-source', '--import', 'tsx', join(ROOT, 'integration/helpers/enospc.ts'), mnt, String(free)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (): Promise<{ code?: number; stdout?: string; stderr?: string; free?: number }> => JSON.parse(((await lines.next()).value as string | undefined) ?? 'null');
    const run = async (args: string[]): Promise<{ code?: number; stdout?: string; stderr?: string }> => {
      child.stdin!.write(`${JSON.stringify(args)}\n`);
      return next();
    };
    assert.ok(((await next()).free ?? Infinity) <= free);
    const g = ['--netns', w.ns, '--state-dir', join(mnt, 'state')];
    const failed = await run([...g, 'apply', w.file]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr!, new RegExp(`FAILED: writing ${join(mnt, 'state', 'state.log').replace(/[.]/g, '\\.')}: ENOSPC`), 'a step failed: its record could not be written');
    assert.match(failed.stderr!, /the host is as it was before this apply/);
    if (free === 4096) assert.match(failed.stderr!, /\[1\/\d+\] .* FAILED: .*ENOSPC[^]*nothing had to be undone/, 'the first step failed before it touched anything');
    if (free === 8192) assert.match(failed.stderr!, /undone \((9|1\d) steps\)/, 'a later step failed: the earlier ones were undone');
    assert.deepEqual(await hostSnapshot(w.ns), w.baseline, `free ${free}: nothing unrecorded stays`);
    child.stdin!.write('free\n');
    await next();
    const ok = await run([...g, 'apply', w.file]);
    assert.equal(ok.code, 0, ok.stderr);
    const dn = await run([...g, 'down', w.file]);
    assert.equal(dn.code, 0, dn.stderr);
    assert.deepEqual(await hostSnapshot(w.ns), w.baseline, `free ${free}: down after the next apply`);
    child.stdin!.end();
    await new Promise((r) => child.on('close', r));
    assert.deepEqual(readdirSync(mnt), [], 'the tmpfs was only in the helper\'s mount namespace');
  }
});
