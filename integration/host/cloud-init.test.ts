// cloud-init seeds through the engine, in lab namespaces, with the fast test guest (it does not
// read the seed; the real Debian guest that does is integration/guests/debian-guest.test.ts): apply
// writes the seed volume into the data directory (0700 directories, a 0600 file, an ISO 9660
// `CIDATA` that blkid and isoinfo read back) and QEMU gets it read-only after the disks (its
// command line is the oracle); a planted link at the seed's path is replaced, never followed; a
// changed key is a restart of that VM alone, with the new instance-id in the plan's line and in
// the seed; a bad user-data file stops apply before anything is touched; down removes the seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { HostPreconditionError, apply, down, parseHostFile, plan } from '@vmhost/host';
import { runFiles } from '@vmhost/kvm';
import { readPidfile } from '@vmhost/net';
import { hostSnapshot } from '../helpers/host-snapshot.js';
import { cleanUp } from '../helpers/cleanup.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GUEST = join(ROOT, '.cache', 'guest');

/** The files of a seed volume, read back by isoinfo (genisoimage) by their Rock Ridge names. */
function isoFiles(iso: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['meta-data', 'user-data', 'network-config']) out[name] = execFileSync('isoinfo', ['-R', '-i', iso, '-x', `/${name}`], { encoding: 'utf8' });
  return out;
}

/** The pid of the VM of the run directory `runDir`. */
function qemuPid(runDir: string): number {
  const pid = readPidfile(runFiles(runDir).pidfile);
  assert.ok(pid !== undefined, `a pidfile in ${runDir}`);
  return pid;
}

/** QEMU's command line, from /proc. */
const qemuCmdline = (runDir: string): string[] => readFileSync(`/proc/${qemuPid(runDir)}/cmdline`, 'utf8').split('\0');

function keygen(dir: string, name: string): string {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', f]);
  return readFileSync(`${f}.pub`, 'utf8').trim();
}

test('apply writes each VM\'s seed (0600, CIDATA) and attaches it read-only; a new key restarts that VM only; bad user-data stops apply first; down removes the seed', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'vmhost-ci-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const lab = await Lab.create({
    prefix: 'vmhl-ci-',
    namespaces: { wan: {}, host: {} },
    links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24'] } }],
  });
  const ns = lab.ns('host');
  const dataDir = join(work, 'data');
  const opts = { netns: ns, stateDir: join('/run/vmhost-citest', ns), dataDir };
  cleanUp(t, lab, opts.stateDir);
  const key1 = keygen(work, 'one');
  const key2 = keygen(work, 'two');
  writeFileSync(join(work, 'user.yaml'), '#cloud-config\nruncmd: [[touch, /run/vmhost-ran]]\n');
  writeFileSync(join(work, 'bad.txt'), 'not user-data\n');
  const text = (key: string, userData = 'user.yaml'): string => `name: citest
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], domain: lan }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed }
cloudInit: { sshAuthorizedKeys: ["${key1}"], userData: ${userData} }
vms:
  - name: a
    ipv4: 192.168.0.10
    ipv6: auto
    kernel: ${join(GUEST, 'vmlinuz')}
    initrd: ${join(GUEST, 'initrd.img')}
    cloudInit: { sshAuthorizedKeys: ["${key}"] }
  - name: b
    ipv4: 192.168.0.11
    kernel: ${join(GUEST, 'vmlinuz')}
    initrd: ${join(GUEST, 'initrd.img')}
    cloudInit: {}
`;
  const host1 = parseHostFile(text(key1), { baseDir: work });
  const before = await hostSnapshot(ns);

  // a bad user-data file: refused before anything is touched
  await assert.rejects(apply(parseHostFile(text(key1, 'bad.txt'), { baseDir: work }), opts), (e: unknown) => {
    assert.ok(e instanceof HostPreconditionError, String(e));
    assert.equal(e.field, 'cloudInit.userData');
    assert.match(e.message, /must start with '#cloud-config'/);
    return true;
  });
  assert.deepEqual(await hostSnapshot(ns), before);
  assert.ok(!existsSync(dataDir), 'no data directory made');

  // a link planted where a seed goes is replaced, never followed
  const victim = join(work, 'victim');
  writeFileSync(victim, 'untouched');
  const p1 = await plan(host1, opts);
  const startA = p1.steps.find((s) => s.id === 'vm:a')!;
  const seedA = join(dataDir, 'seeds', 'a.iso');
  mkdirSync(join(dataDir, 'seeds'), { recursive: true, mode: 0o700 });
  symlinkSync(victim, seedA);
  await apply(host1, opts);
  assert.equal(readFileSync(victim, 'utf8'), 'untouched');
  for (const d of [dataDir, join(dataDir, 'seeds')]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
  for (const name of ['a', 'b']) {
    const f = join(dataDir, 'seeds', `${name}.iso`);
    const st = lstatSync(f);
    assert.ok(st.isFile(), `${f} is a file`);
    assert.equal(st.mode & 0o777, 0o600, f);
    assert.match(execFileSync('blkid', ['-p', '-o', 'export', f], { encoding: 'utf8' }), /^TYPE=iso9660$[\s\S]*^LABEL=CIDATA$|^LABEL=CIDATA$[\s\S]*^TYPE=iso9660$/m);
    // QEMU has it read-only, after the VM's (here: no) disks
    const cmd = qemuCmdline(join(opts.stateDir, 'vms', name));
    assert.ok(cmd.some((a) => a.includes(`file=${f},`) && a.includes('read-only=on') && a.includes('format=raw')), cmd.join(' '));
  }
  const files1 = isoFiles(seedA);
  const id1 = /^instance-id: (\S+)$/m.exec(files1['meta-data']!)![1]!;
  assert.ok(startA.description.includes(`cloud-init ${id1})`), startA.description);
  assert.match(files1['user-data']!, /Content-Type: multipart\/mixed/);
  assert.ok(files1['user-data']!.includes(key1.split(' ')[1]!));
  assert.match(files1['network-config']!, /2001:db8:8:5688:/, 'ipv6 auto in network-config');
  assert.deepEqual((await plan(host1, opts)).steps, [], 're-plan: nothing');

  // another key for a: only a restarts, with the new instance-id
  const pidOf = (name: string): number => qemuPid(join(opts.stateDir, 'vms', name));
  const [pa, pb] = [pidOf('a'), pidOf('b')];
  const host2 = parseHostFile(text(key2), { baseDir: work });
  const p2 = await plan(host2, opts);
  assert.deepEqual(p2.steps.map((s) => `${s.action} ${s.id}`), ['restart vm:a']);
  await apply(host2, opts);
  const files2 = isoFiles(seedA);
  const id2 = /^instance-id: (\S+)$/m.exec(files2['meta-data']!)![1]!;
  assert.notEqual(id2, id1);
  assert.ok(p2.steps[0]!.description.includes(`cloud-init ${id2})`), p2.steps[0]!.description);
  assert.ok(files2['user-data']!.includes(key2.split(' ')[1]!) && files2['user-data']!.includes(key1.split(' ')[1]!), 'the host-wide key and the VM\'s');
  assert.notEqual(pidOf('a'), pa);
  assert.equal(pidOf('b'), pb);

  await down(host2, opts);
  assert.ok(!existsSync(seedA) && !existsSync(join(dataDir, 'seeds', 'b.iso')), 'down removes the seeds');
  assert.deepEqual(await hostSnapshot(ns), before);
});
