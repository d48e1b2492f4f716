// The state file read strictly (every problem a HostStateError naming the file and the field),
// the state directory's checks on paths the running user owns (no privilege needed: modes,
// sticky bits, symlinks), files made 0600 and directories 0700 whatever the umask, the lock, and
// the fault-injection hook of the CLI; the namespace's shared record read strictly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostBusyError, HostStateError } from '../../packages/host/src/errors.js';
import { parseState, recordId, sameJson, type StateRecord } from '../../packages/host/src/engine/records.js';
import { checkStateDir, dataDir, lock, privateDir, readPrivateFile, setSearchable, unreachableBy, writePrivateFile } from '../../packages/host/src/engine/state-dir.js';
import { readState, writeState } from '../../packages/host/src/engine/state.js';
import { parseShared, sharedDirFor, type SharedRecord } from '../../packages/host/src/engine/shared.js';
import { faultCheckpoint } from '../../packages/host/src/cli/faults.js';

const DIR = '/run/vmhost/t';
const FILE = `${DIR}/state.json`;

const RECORDS: StateRecord[] = [
  { kind: 'sysctl', id: 'sysctl:net.ipv6.conf.eth0.proxy_ndp', status: 'done', data: { key: 'net.ipv6.conf.eth0.proxy_ndp', value: '1' }, previous: '0' },
  { kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: 'de:ad:be:ef:24:31', stp: false }, ifindex: 4, temp: null },
  { kind: 'link', id: 'link:veth0', status: 'intended', data: { name: 'veth0', kind: 'veth', peer: 'veth1', mac: null, master: 'br0', promisc: true }, ifindex: null, temp: '0123456789a' },
  { kind: 'address', id: 'address:br0:192.168.0.1/24', status: 'done', data: { dev: 'br0', cidr: '192.168.0.1/24' } },
  { kind: 'route', id: 'route:2001:db8::100/128', status: 'done', data: { to: '2001:db8::100/128', dev: 'br0' } },
  { kind: 'proxyNeighbor', id: 'proxyNeighbor:eth0:2001:db8::100', status: 'done', data: { to: '2001:db8::100', dev: 'eth0' } },
  { kind: 'firewall', id: 'firewall', status: 'done', data: { model: { owner: 'seed', masquerade: [{ source: '192.168.0.0/24', outInterface: 'eth0' }] } } },
  {
    kind: 'dnsmasq',
    id: 'dnsmasq',
    status: 'done',
    data: { options: { interface: 'br0', address: '192.168.0.1', range: ['192.168.0.100', '192.168.0.150'], netmask: '255.255.255.0', leaseTime: '12h', hosts: [] } },
  },
  { kind: 'link', id: 'link:vmi-web', status: 'done', data: { name: 'vmi-web', kind: 'ifb' }, ifindex: 9, temp: null },
  { kind: 'qdisc', id: 'qdisc:vmt-web:root', status: 'done', data: { dev: 'vmt-web', parent: 'root', handle: '1:', qdisc: { kind: 'tbf', rate: 10_000_000, burst: 31250, latency: 0.05 } } },
  { kind: 'qdisc', id: 'qdisc:vmt-web:ingress', status: 'intended', data: { dev: 'vmt-web', parent: 'ingress', handle: 'ffff:', qdisc: { kind: 'ingress' } } },
  { kind: 'tcFilter', id: 'tcFilter:vmt-web:ingress:1', status: 'done', data: { dev: 'vmt-web', parent: 'ingress', prio: 1, redirect: 'vmi-web' } },
  { kind: 'proxy6', id: 'proxy6', status: 'done', data: { options: null } },
  { kind: 'vm', id: 'vm:web', status: 'intended', data: { name: 'web', fingerprint: 'a'.repeat(64) } },
  // adopted (the host file's adopt): never deleted; a link with how it was before
  { kind: 'link', id: 'link:krr-db', status: 'done', data: { name: 'krr-db', kind: 'tap', master: 'br0' }, ifindex: 9, temp: null, adopted: { up: false, master: null } },
  { kind: 'link', id: 'link:br1', status: 'done', data: { name: 'br1', kind: 'bridge', mac: null, stp: false }, ifindex: 10, temp: null, adopted: { up: true, master: null } },
  { kind: 'address', id: 'address:br1:10.0.0.1/24', status: 'done', data: { dev: 'br1', cidr: '10.0.0.1/24' }, adopted: true },
];

const file = (entries: unknown[], extra: Record<string, unknown> = {}): string => JSON.stringify({ version: 2, name: 'seed', entries, updatedAt: '', ...extra });

/** `parseState` of `text` rejects with EHOST_STATE_CORRUPT (or `code`) naming the file, with `why` in the message. */
function refused(text: string, why: RegExp, code = 'EHOST_STATE_CORRUPT'): void {
  assert.throws(
    () => parseState(text, FILE, DIR),
    (e: unknown) => {
      assert.ok(e instanceof HostStateError, String(e));
      assert.equal(e.code, code);
      assert.equal(e.file, FILE);
      assert.ok(e.message.startsWith(`${FILE}: `), e.message);
      assert.match(e.message, why);
      return true;
    },
  );
}

test('a state file of every kind of record reads back as written; ids follow the data', () => {
  const s = parseState(file(RECORDS), FILE, DIR);
  assert.deepEqual(s.entries, RECORDS);
  for (const r of RECORDS) assert.equal(recordId(r), r.id);
});

test('truncated, empty, garbage, deep and non-object files are refused naming the file, never a raw JSON or TypeError', () => {
  const good = file(RECORDS);
  refused(good.slice(0, 40), /not a vmhost state file: not JSON \(/);
  refused('', /not a vmhost state file: empty/);
  refused('\u0000\u00ffgarbage', /not JSON/);
  refused('[1, 2]', /the file: expected an object/);
  refused('null', /the file: expected an object/);
  refused(`${'['.repeat(200_000)}${']'.repeat(200_000)}`, /not a vmhost state file/);
  refused(file(RECORDS, { version: '2' }), /version: expected 2/);
  refused(file(RECORDS, { extra: 1 }), /the file: unknown field "extra"/);
  refused(JSON.stringify({ version: 2, name: 'seed', entries: {}, updatedAt: '' }), /entries: expected an array/);
});

test('another version is EHOST_STATE_VERSION, with what to do for version 1', () => {
  refused(JSON.stringify({ version: 1, name: 'seed', entries: [], updatedAt: '' }), /version 1; this vmhost reads version 2 only \(made by vmhost before the write-ahead state/, 'EHOST_STATE_VERSION');
  refused(JSON.stringify({ version: 3, name: 'seed', entries: [], updatedAt: '' }), /version 3.*made by another vmhost/, 'EHOST_STATE_VERSION');
});

test('records are identities: instructions, unknown fields, wrong types and names outside the allowed sets are refused, naming the field', () => {
  const vm = RECORDS.find((r) => r.kind === 'vm')!;
  const cases: Array<[unknown, RegExp]> = [
    [{ ...vm, qemuBinary: '/tmp/evil.sh' }, /entries\[0\]: unknown field "qemuBinary"/],
    [{ ...vm, data: { ...vm.data, options: { qemuBinary: '/tmp/evil.sh' } } }, /entries\[0\]\.data: unknown field "options"/],
    [{ ...vm, data: { name: '../../etc', fingerprint: null } }, /entries\[0\]\.data\.name: .* is not a VM name/],
    [{ ...vm, data: { name: 'web', fingerprint: 'xyz' } }, /fingerprint: expected a sha256/],
    [{ ...vm, kind: 'tunnel' }, /entries\[0\]\.kind: unknown kind "tunnel"/],
    [{ ...vm, status: 'maybe' }, /entries\[0\]\.status: expected "intended" or "done"/],
    [{ ...vm, id: 'vm:other' }, /entries\[0\]\.id: "vm:other" does not match its data \(expected "vm:web"\)/],
    [{ kind: 'sysctl', id: 'sysctl:kernel.core_pattern', status: 'done', data: { key: 'kernel.core_pattern', value: '1' }, previous: '|/tmp/x' }, /"kernel\.core_pattern" is not a sysctl vmhost sets/],
    [{ kind: 'sysctl', id: 'sysctl:net.ipv4.ip_forward', status: 'done', data: { key: 'net.ipv4.ip_forward', value: '1' }, previous: '|/tmp/x' }, /entries\[0\]\.previous: expected a string of at most 3|expected a small number/],
    [{ kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: null, stp: 'no' }, ifindex: null, temp: null }, /entries\[0\]\.data\.stp: expected true or false/],
    [{ kind: 'link', id: 'link:br 0', status: 'done', data: { name: 'br 0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: null }, /entries\[0\]\.data\.name: "br 0": expected ASCII letters/],
    [{ kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: null, stp: false }, ifindex: '4', temp: null }, /ifindex: expected an interface index or null/],
    [{ kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: '../x' }, /temp: expected 11 hex digits/],
    [{ kind: 'address', id: 'address:br0:192.168.0.001/24', status: 'done', data: { dev: 'br0', cidr: '192.168.0.001/24' } }, /entries\[0\]\.data\.cidr/],
    [{ kind: 'dnsmasq', id: 'dnsmasq', status: 'done', data: { options: { ...(RECORDS[7] as { data: { options: object } }).data.options, dir: '/etc' } } }, /never names dnsmasq's directory/],
    [{ kind: 'dnsmasq', id: 'dnsmasq', status: 'done', data: { options: { interface: 'br0' } } }, /entries\[0\]\.data\.options\.address: /],
    [{ kind: 'proxy6', id: 'proxy6', status: 'done', data: { options: { routes: [], dir: '/' } } }, /never names the proxy's directory/],
    [{ kind: 'firewall', id: 'firewall', status: 'done', data: { model: { owner: 'a;b' } } }, /entries\[0\]\.data\.model\.owner: /],
    [{ kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: null, adopted: true }, /entries\[0\]\.adopted: expected an object/],
    [{ kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: null, adopted: { up: true, master: '../x' } }, /entries\[0\]\.adopted\.master: /],
    [{ kind: 'link', id: 'link:br0', status: 'done', data: { name: 'br0', kind: 'bridge', mac: null, stp: false }, ifindex: null, temp: null, adopted: { up: true } }, /entries\[0\]\.adopted: missing field "master"/],
    [{ kind: 'address', id: 'address:br0:10.0.0.1/24', status: 'done', data: { dev: 'br0', cidr: '10.0.0.1/24' }, adopted: false }, /entries\[0\]\.adopted: expected true/],
    [{ kind: 'route', id: 'route:2001:db8::100/128', status: 'done', data: { to: '2001:db8::100/128', dev: 'br0' }, adopted: 'yes' }, /entries\[0\]\.adopted: expected true/],
  ];
  const tbf = RECORDS.find((r) => r.id === 'qdisc:vmt-web:root')!;
  const filter = RECORDS.find((r) => r.kind === 'tcFilter')!;
  cases.push(
    [{ ...tbf, data: { ...tbf.data, dev: 'vmt web' } }, /entries\[0\]\.data\.dev: /],
    [{ ...tbf, data: { ...tbf.data, parent: 'ffff:fff1' } }, /entries\[0\]\.data\.parent: .*expected 'root' or 'ingress'/],
    [{ ...tbf, data: { ...tbf.data, handle: 'ffff:' } }, /entries\[0\]\.data\.handle: /],
    [{ ...tbf, data: { ...tbf.data, qdisc: { kind: 'tbf', rate: 1, burst: 3200, latency: 0.05 } } }, /entries\[0\]\.data\.qdisc\.rate: /],
    [{ ...tbf, data: { ...tbf.data, qdisc: { kind: 'htb', rate: 10_000_000, burst: 3200, latency: 0.05 } } }, /entries\[0\]\.data\.qdisc\.kind: .*expected 'tbf'/],
    [{ ...tbf, data: { ...tbf.data, qdisc: { kind: 'tbf', rate: 10_000_000, burst: 3200, latency: 0.05, limit: 1 } } }, /entries\[0\]\.data\.qdisc\.limit: .*unknown field/],
    [{ ...tbf, data: { ...tbf.data, qdisc: { kind: 'tbf', rate: 10_000_000, burst: 3200, latency: -1 } } }, /entries\[0\]\.data\.qdisc\.latency: /],
    [{ ...tbf, data: { dev: 'vmt-web', parent: 'ingress', handle: '1:', qdisc: { kind: 'ingress' } } }, /entries\[0\]\.data\.handle: .*ffff:/],
    [{ ...tbf, id: 'qdisc:vmt-web:ingress' }, /entries\[0\]\.id: "qdisc:vmt-web:ingress" does not match its data/],
    [{ ...filter, data: { ...filter.data, redirect: '../x' } }, /entries\[0\]\.data\.redirect: /],
    [{ ...filter, data: { ...filter.data, prio: 0 } }, /entries\[0\]\.data\.prio: /],
    [{ ...filter, data: { ...filter.data, action: 'drop' } }, /entries\[0\]\.data\.action: .*unknown field/],
    [{ kind: 'link', id: 'link:vmi-web', status: 'done', data: { name: 'vmi-web', kind: 'ifb', master: 'br0' }, ifindex: null, temp: null }, /entries\[0\]\.data: unknown field "master"/],
  );
  for (const [entry, why] of cases) refused(file([entry]), why);
  refused(file([RECORDS[1], RECORDS[1]]), /entries\[1\]\.id: "link:br0" twice/);
});

test('checkStateDir: a non-sticky group/world-writable parent, a world-writable state directory and a symlink out of them are refused; a sticky parent is fine; made 0700 under umask 000', () => {
  const base = mkdtempSync(join(tmpdir(), 'vmhost-statedir-'));
  const old = process.umask(0);
  try {
    const unsafe = (dir: string, path: string, why: RegExp): void =>
      assert.throws(
        () => checkStateDir(dir, true),
        (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_UNSAFE' && e.file === path && why.test(e.message),
      );
    mkdirSync(join(base, 'open'));
    chmodSync(join(base, 'open'), 0o777);
    unsafe(join(base, 'open', 'state'), join(base, 'open'), /mode 0777\) and not sticky/);
    mkdirSync(join(base, 'group'));
    chmodSync(join(base, 'group'), 0o775);
    unsafe(join(base, 'group', 'state'), join(base, 'group'), /mode 0775\) and not sticky/);
    mkdirSync(join(base, 'sticky'));
    chmodSync(join(base, 'sticky'), 0o1777);
    const made = checkStateDir(join(base, 'sticky', 'a', 'state'), true);
    assert.equal(made, join(base, 'sticky', 'a', 'state'));
    assert.equal(statSync(join(base, 'sticky', 'a')).mode & 0o7777, 0o700);
    assert.equal(statSync(made).mode & 0o7777, 0o700);
    unsafe(join(base, 'sticky'), join(base, 'sticky'), /the state directory is writable by group or others/);
    // an existing state directory of ours that others may read is tightened; a symlink to it resolves
    mkdirSync(join(base, 'readable'), { mode: 0o755 });
    chmodSync(join(base, 'readable'), 0o755);
    symlinkSync(join(base, 'readable'), join(base, 'link'));
    assert.equal(checkStateDir(join(base, 'link'), true), join(base, 'readable'));
    assert.equal(statSync(join(base, 'readable')).mode & 0o7777, 0o700);
    assert.equal(checkStateDir(join(base, 'missing', 'x'), false), undefined);
    writeFileSync(join(base, 'file'), '');
    unsafe(join(base, 'file', 'x'), join(base, 'file'), /not a directory/);
    assert.throws(() => checkStateDir('relative/dir', true), /expected an absolute path/);
    // what vmhost makes in it: 0700 directories (never through a symlink), 0600 files
    const sd = made;
    assert.equal(statSync(privateDir(sd, 'vms', 'web')).mode & 0o7777, 0o700);
    symlinkSync(base, join(sd, 'dnsmasq'));
    assert.throws(() => privateDir(sd, 'dnsmasq'), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_UNSAFE' && e.file === join(sd, 'dnsmasq'));
    writePrivateFile(join(sd, 'state.json'), '{}');
    assert.equal(statSync(join(sd, 'state.json')).mode & 0o7777, 0o600);
    symlinkSync(join(base, 'file'), join(sd, 'planted'));
    assert.throws(() => readPrivateFile(join(sd, 'planted'), 100), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_UNSAFE' && /a symlink/.test(e.message));
    chmodSync(join(sd, 'state.json'), 0o666);
    assert.throws(() => readPrivateFile(join(sd, 'state.json'), 100), /writable by group or others \(mode 0666\)/);
  } finally {
    process.umask(old);
    rmSync(base, { recursive: true, force: true });
  }
});

test('writeState then readState round-trips; the lock is exclusive, never followed through a symlink, and taken over from a dead holder', () => {
  const base = mkdtempSync(join(tmpdir(), 'vmhost-lock-'));
  try {
    const sd = checkStateDir(join(base, 'state'), true)!;
    writeState(sd, { version: 2, name: 'seed', entries: RECORDS, updatedAt: '' });
    assert.deepEqual(readState(sd, 'seed').entries, RECORDS);
    const victim = join(base, 'victim');
    writeFileSync(victim, 'keep\n');
    symlinkSync(victim, join(sd, 'lock'));
    const unlock = lock(sd);
    assert.equal(readFileSync(victim, 'utf8'), 'keep\n', 'the planted symlink was replaced, not written through');
    assert.equal(readFileSync(join(sd, 'lock'), 'utf8'), `${process.pid}\n`);
    unlock();
    writeFileSync(join(sd, 'lock'), `${process.ppid}\n`, { mode: 0o600 });
    assert.throws(() => lock(sd), (e: unknown) => e instanceof HostBusyError && e.pid === process.ppid);
    writeFileSync(join(sd, 'lock'), '999999999\n', { mode: 0o600 });
    lock(sd)();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('VMHOST_TEST_FAULT is read only under VMHOST_TEST=1 and must be well-formed', () => {
  assert.equal(faultCheckpoint({ VMHOST_TEST_FAULT: 'SIGKILL@apply:changed:3' }), undefined);
  assert.equal(typeof faultCheckpoint({ VMHOST_TEST: '1', VMHOST_TEST_FAULT: 'SIGKILL@apply:changed:3' }), 'function');
  assert.throws(() => faultCheckpoint({ VMHOST_TEST: '1', VMHOST_TEST_FAULT: 'SIGSTOP@apply:x:1' }), /VMHOST_TEST_FAULT: expected/);
});

test('a firewall model or service options equal to what the run wants (key order aside) are not validated again; any other is', () => {
  const fw = RECORDS.find((r) => r.kind === 'firewall')!;
  const bad = { ...fw, data: { model: { owner: 'seed', masquerade: [{ source: '192.168.0.0/24', outInterface: 'bad name!' }] } } };
  const text = file([bad]);
  refused(text, /entries\[0\]\.data\.model\.masquerade\[0\]\.outInterface/);
  // what the run itself wants is taken as it is (every use of it validates it again)
  const wanted = { masquerade: [{ outInterface: 'bad name!', source: '192.168.0.0/24', comment: undefined }], owner: 'seed' } as never;
  assert.deepEqual(parseState(text, FILE, DIR, { firewall: wanted }).entries, [bad]);
  refused(text.replace('192.168.0.0/24', '192.168.1.0/24'), /outInterface/);
  assert.ok(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1, d: undefined }));
  assert.ok(!sameJson({ a: 1 }, { a: 1, b: 2 }) && !sameJson([1, 2], [2, 1]) && !sameJson({ a: [] }, { a: {} }) && !sameJson(null, {}));
});

// ------------------------------------------------------------------------------- the shared record

const SHARED_FILE = '/run/vmhost/lab/.shared/shared.json';
const SHARED: SharedRecord = {
  version: 1,
  owners: { '/run/vmhost/lab/ha': 'ha', '/tmp/x/state-hb': 'hb' },
  settings: {
    'net.ipv4.ip_forward': { value: '1', original: '0', holders: ['/run/vmhost/lab/ha', '/tmp/x/state-hb'] },
    'net.ipv6.conf.eth0.accept_ra': { value: '2', original: '1', holders: ['/tmp/x/state-hb'] },
  },
};

test('the shared record reads back as written; owners are absolute state directories with host names, settings only the sysctls vmhost sets, holders among the owners', () => {
  assert.deepEqual(parseShared(JSON.stringify(SHARED), SHARED_FILE), SHARED);
  const bad = (edit: (r: Record<string, unknown>) => void, why: RegExp): void => {
    const r = structuredClone(SHARED) as unknown as Record<string, unknown>;
    edit(r);
    assert.throws(() => parseShared(JSON.stringify(r), SHARED_FILE), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_CORRUPT' && e.file === SHARED_FILE && why.test(e.message));
  };
  const settings = (r: Record<string, unknown>): Record<string, Record<string, unknown>> => r.settings as Record<string, Record<string, unknown>>;
  bad((r) => (r.version = 2), /version: expected 1/);
  bad((r) => (r.extra = 1), /unknown field "extra"/);
  bad((r) => ((r.owners as Record<string, string>)['relative/dir'] = 'hc'), /owners: "relative\/dir" is not an absolute, normalised path/);
  bad((r) => ((r.owners as Record<string, string>)['/run/vmhost/lab/../etc'] = 'hc'), /not an absolute, normalised path/);
  bad((r) => ((r.owners as Record<string, string>)['/run/vmhost/lab/hc'] = 'h;c'), /expected a host name/);
  bad((r) => (settings(r)['kernel.core_pattern'] = { value: '1', original: '0', holders: [] }), /not a sysctl vmhost sets/);
  bad((r) => (settings(r)['net.ipv4.ip_forward']!.holders = ['/run/vmhost/lab/nobody']), /holders\[0\]: not one of the owners/);
  bad((r) => (settings(r)['net.ipv4.ip_forward']!.holders = ['/tmp/x/state-hb', '/tmp/x/state-hb']), /a holder twice/);
  bad((r) => (settings(r)['net.ipv4.ip_forward']!.original = '|/tmp/x'), /original: expected a small number/);
  bad((r) => (settings(r)['net.ipv4.ip_forward']!.command = 'x'), /unknown field "command"/);
  assert.throws(() => parseShared('{"version": 1', SHARED_FILE), /not a vmhost shared record: not JSON/);
});

test('the shared record is keyed by the namespace as the default state directories are', () => {
  assert.equal(sharedDirFor(undefined), '/run/vmhost/.shared');
  assert.equal(sharedDirFor('lab'), '/run/vmhost/lab/.shared');
  assert.match(sharedDirFor({ path: '/proc/self/ns/net' }), /^\/run\/vmhost\/nsfs\/\d+-\d+\/\.shared$/);
});

test('data directories QEMU passes through: dataDir 0711 when searchable, kept 0711 or 0700 when undefined, 0700 when not; checkStateDir keeps 0711 only when asked; unreachableBy names the first directory a user cannot search', () => {
  const base = mkdtempSync(join(tmpdir(), 'vmhost-datadir-'));
  try {
    const data = checkStateDir(join(base, 'data'), true)!;
    const disks = dataDir(data, ['disks', 'web'], true);
    assert.deepEqual([join(data, 'disks'), disks].map((d) => statSync(d).mode & 0o7777), [0o711, 0o711]);
    dataDir(data, ['disks', 'web']);
    assert.equal(statSync(disks).mode & 0o7777, 0o711, 'undefined keeps 0711');
    dataDir(data, ['disks', 'web'], false);
    assert.equal(statSync(disks).mode & 0o7777, 0o700);
    chmodSync(disks, 0o755);
    dataDir(data, ['disks', 'web']);
    assert.equal(statSync(disks).mode & 0o7777, 0o700, 'any other mode becomes 0700');
    chmodSync(disks, 0o733);
    assert.throws(() => dataDir(data, ['disks', 'web'], true), (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_UNSAFE' && /writable by group or others/.test(e.message));
    chmodSync(disks, 0o700);
    setSearchable(data, true);
    checkStateDir(data, true, { keepSearchable: true });
    assert.equal(statSync(data).mode & 0o7777, 0o711);
    checkStateDir(data, true);
    assert.equal(statSync(data).mode & 0o7777, 0o700, 'the state directory itself is tightened without keepSearchable');
    // search permission as owner, group or other (root's bypass does not count)
    const ids = { uid: 61999, gid: 61999 };
    chmodSync(base, 0o711);
    dataDir(data, ['disks', 'web'], true);
    setSearchable(data, true);
    const target = join(disks, 'chain.json');
    writeFileSync(target, '');
    const tmpOk = unreachableBy(base, ids) === undefined;
    if (tmpOk) assert.equal(unreachableBy(target, ids), undefined);
    chmodSync(join(data, 'disks'), 0o700);
    assert.equal(unreachableBy(target, ids), tmpOk ? join(data, 'disks') : unreachableBy(base, ids));
    chmodSync(join(data, 'disks'), 0o710);
    assert.equal(unreachableBy(target, ids), tmpOk ? join(data, 'disks') : unreachableBy(base, ids), 'group search does not help another gid');
    assert.equal(unreachableBy(join(base, 'missing', 'x'), ids), tmpOk ? undefined : unreachableBy(base, ids), 'a missing part: nothing to pass through');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
