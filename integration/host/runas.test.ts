// Issue 10: QEMU runs unprivileged by default (qemu.user auto). Through the real `vmhost` CLI in a
// lab namespace: two test guests with default settings — web on a base image (its overlays in the
// data directory), db on a plain raw disk file of the user's — run with all four uids and gids of
// one dedicated id (61184-65519, in neither /etc/passwd nor /etc/group), no capabilities, the
// sandbox on (oracle: /proc/PID/status); web is reachable through a forward from the internet
// namespace; a live snapshot and a live commit work on both, and the files QEMU reopens are that
// id's (stat). `qemu.user: root` keeps root (and the overlays go back to root). A writable image
// in a directory the id cannot pass through is refused at start, naming qemu.user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { qemuImg } from '@vmhost/kvm';
import { vmhost, type CliResult } from '../helpers/cli.js';
import { guest, httpGet, waitForConsole, waitForHttp } from '../kvm/helpers.js';
import { cleanUp } from '../helpers/cleanup.js';

const WEB = '192.168.0.100';
const DB = '192.168.0.101';

/** /proc/PID/status as fields. */
function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The ids field `index` of the lines of a passwd or group file holds. */
function idsOf(file: string): Set<number> {
  return new Set(readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')[2] ?? '').filter((f) => /^\d+$/.test(f)).map(Number));
}

test('qemu.user auto: each QEMU runs as a dedicated unprivileged id; forward from the internet, live snapshot and commit work; root keeps root; an unreachable image is refused', async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-runas-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-runas-'));
  chmodSync(dir, 0o711); // QEMU's user passes through to its images (0711: it lists nothing)
  const ns = lab.ns('host');
  const wan = lab.ns('wan');
  const state = join(dir, 'state');
  const data = join(dir, 'data');
  const g = ['--netns', ns, '--state-dir', state, '--data-dir', data];
  const file = join(dir, 'host.yaml');
  cleanUp(t, lab, dir).downFirst(() => vmhost([...g, 'down', file]));

  const baseRaw = join(dir, 'base.raw');
  const buf = Buffer.alloc(4 * 1024 * 1024);
  buf.write('BASE-IMAGE');
  writeFileSync(baseRaw, buf);
  const base = join(dir, 'base.qcow2');
  await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'qcow2', baseRaw, base]);
  const plain = join(dir, 'plain.raw');
  buf.fill(0).write('PLAIN-IMAGE');
  writeFileSync(plain, buf, { mode: 0o600 }); // root's, 0600: vmhost gives it to QEMU's user

  const gu = guest();
  const text = (qemu: string, plainDisk = plain): string => `name: rtas
uplink: eth0
${qemu}
bridge: { name: br0, ipv4: 192.168.0.1/24 }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
vms:
  - name: web
    ipv4: ${WEB}
    memoryMiB: 128
    kernel: ${gu.vmlinux}
    initrd: ${gu.initrd}
    append: "${gu.append}"
    disk: { base: ${base}, size: 64M }
    forwards: [{ port: 8080, toPort: 80 }]
  - name: db
    ipv4: ${DB}
    memoryMiB: 128
    kernel: ${gu.vmlinux}
    initrd: ${gu.initrd}
    append: "${gu.append}"
    disk: { file: ${plainDisk}, format: raw }
`;
  const ok = async (args: string[]): Promise<CliResult> => {
    const r = await vmhost([...g, ...args]);
    assert.equal(r.code, 0, `vmhost ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r;
  };
  const up = async (name: string, ip: string): Promise<void> => {
    await waitForConsole(join(state, 'vms', name, 'console.log'), gu.markers.ready, 120_000);
    await waitForHttp(ns, `http://${ip}/`, 60_000);
  };
  const pids = async (): Promise<Record<string, number>> => {
    const s = JSON.parse((await ok(['status', file, '--json'])).stdout) as { vms: Array<{ name: string; running: boolean; pid?: number }> };
    const out: Record<string, number> = {};
    for (const v of s.vms) {
      assert.ok(v.running && v.pid, `${v.name} runs`);
      out[v.name] = v.pid;
    }
    return out;
  };
  const write = async (ip: string, what: string): Promise<void> => assert.equal((await httpGet(ns, `http://${ip}/cgi-bin/write?${what}`)).trim(), 'ok');
  const read = async (ip: string): Promise<string> => (await httpGet(ns, `http://${ip}/cgi-bin/disk`)).trim();
  const snapshotAndCommit = async (name: string, ip: string, owner: number): Promise<void> => {
    await write(ip, `${name}-A`);
    const snap = await ok(['vm', 'snapshot', name, '--name', 's1', '-f', file]);
    assert.match(snap.stdout, /\(live/, `${name}: a live snapshot`);
    await write(ip, `${name}-B`);
    assert.equal(await read(ip), `${name}-B`);
    for (const f of readdirSync(join(data, 'disks', name))) {
      assert.equal(statSync(join(data, 'disks', name, f)).uid, f === 'chain.json' ? 0 : owner, `${name}: ${f}'s owner`);
    }
    const c = await ok(['vm', 'commit', name, '-f', file]);
    assert.match(c.stdout + c.stderr, /live|commit/i);
    assert.equal(await read(ip), `${name}-B`, `${name}: the guest reads its write after the live commit`);
    const l = JSON.parse((await ok(['vm', 'snapshots', name, '-f', file, '--json'])).stdout) as { snapshots: unknown[]; disks: Array<{ images: unknown[] }> };
    assert.equal(l.snapshots.length, 0, `${name}: the commit merged s1 away`);
    assert.equal(l.disks[0]!.images.length, 1, `${name}: one image left`);
  };

  // ---- default: qemu.user auto
  writeFileSync(file, text(''));
  await ok(['apply', file]);
  await up('web', WEB);
  await up('db', DB);
  const users = idsOf('/etc/passwd');
  const groups = idsOf('/etc/group');
  const p = await pids();
  const st = procStatus(p.web!);
  const id = Number(st.Uid!.split(/\s+/)[0]);
  assert.ok(id >= 61184 && id <= 65519, `uid ${id} is in 61184-65519`);
  assert.ok(!users.has(id) && !groups.has(id), `uid ${id} is no account of /etc/passwd or group of /etc/group`);
  for (const name of ['web', 'db']) {
    const s = procStatus(p[name]!);
    assert.deepEqual(s.Uid!.split(/\s+/), Array(4).fill(String(id)), `${name}: real, effective, saved and fs uid`);
    assert.deepEqual(s.Gid!.split(/\s+/), Array(4).fill(String(id)), `${name}: real, effective, saved and fs gid`);
    assert.ok(s.Groups === '' || s.Groups === String(id), `${name}: supplementary groups ${s.Groups}`);
    assert.equal(s.CapEff, '0000000000000000', `${name}: no effective capabilities`);
    assert.equal(s.CapPrm, '0000000000000000', `${name}: no permitted capabilities`);
    assert.equal(s.Seccomp, '2', `${name}: the seccomp sandbox (sandbox auto)`);
    assert.equal(s.NoNewPrivs, '1');
  }
  // what QEMU reopens by name is its user's; the directories on the way are root's and 0711
  assert.equal(statSync(plain).uid, id, 'the plain disk file was given to QEMU\'s user');
  for (const d of [data, join(data, 'disks'), join(data, 'disks', 'web')]) {
    const s = statSync(d);
    assert.deepEqual([s.uid, s.mode & 0o777], [0, 0o711], d);
  }
  // reachable from the internet through the forward
  assert.match(await httpGet(wan, 'http://203.0.113.2:8080/'), /^vmhost-guest /, 'the forward from the internet namespace');
  assert.equal(await read(WEB), 'BASE-IMAGE');
  assert.equal(await read(DB), 'PLAIN-IMAGE');

  // live snapshot and commit on an overlay in the data directory, and on the plain disk
  await snapshotAndCommit('web', WEB, id);
  await snapshotAndCommit('db', DB, id);
  assert.equal(statSync(plain).uid, id);
  const after = await pids();
  assert.deepEqual(after, p, 'the same QEMUs ran through it all');

  // ---- qemu.user: root keeps root (the VMs restart: their command line changed)
  writeFileSync(file, text('qemu: { user: root }'));
  const re = await ok(['apply', file]);
  assert.match(re.stderr, /restart VM web/);
  await up('web', WEB);
  await up('db', DB);
  const rp = await pids();
  for (const name of ['web', 'db']) assert.deepEqual(procStatus(rp[name]!).Uid!.split(/\s+/), ['0', '0', '0', '0'], `${name} keeps root`);
  for (const f of readdirSync(join(data, 'disks', 'web'))) assert.equal(statSync(join(data, 'disks', 'web', f)).uid, 0, `${f} is root's again`);
  assert.equal(await read(WEB), 'web-B');
  await ok(['vm', 'snapshot', 'web', '--name', 'r1', '-f', file]);
  assert.equal(await read(WEB), 'web-B');
  await ok(['down', file]);

  // ---- an image in a directory QEMU's user cannot pass through: refused at start, naming qemu.user
  const hidden = join(dir, 'hidden');
  mkdirSync(hidden, { mode: 0o700 });
  const hiddenDisk = join(hidden, 'plain.raw');
  writeFileSync(hiddenDisk, buf, { mode: 0o600 });
  writeFileSync(file, text('', hiddenDisk));
  const r = await vmhost([...g, 'apply', file, '--json']);
  assert.notEqual(r.code, 0, `refused: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout + r.stderr, /qemu\.user/);
  assert.match(r.stdout + r.stderr, new RegExp(`cannot pass through ${hidden}`));
  assert.equal(statSync(hiddenDisk).uid, 0, 'the refused image was not given away');
});
