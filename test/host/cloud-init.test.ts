// cloud-init NoCloud seeds: the ISO 9660 + Rock Ridge writer read back by independent readers
// (isoinfo from genisoimage, blkid), the rendered meta-data / user-data / network-config (parsed
// as YAML 1.1, as cloud-init's PyYAML reads it), the instance-id following the seed, validation
// naming the field, and the atomic, symlink-safe writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ValidationError } from '@vmhost/net';
import { buildIso, ISO_SECTOR } from '../../packages/host/src/guests/iso9660.js';
import { checkUserData, renderCloudInit, seedImage, writeSeed, type CloudInitInput } from '../../packages/host/src/guests/cloud-init.js';

const tmp = (t: { after: (fn: () => void) => void }): string => {
  const d = mkdtempSync(join(tmpdir(), 'vmhost-ci-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

function isoinfo(args: string[]): string {
  return execFileSync('isoinfo', args, { encoding: 'utf8' });
}

/** A real ed25519 public key from ssh-keygen. */
function keygen(dir: string, type = 'ed25519'): string {
  const f = join(dir, `k-${type}-${Math.random().toString(16).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'test@vmhost', '-f', f]);
  return readFileSync(`${f}.pub`, 'utf8').trim();
}

test('ISO 9660 + Rock Ridge: isoinfo and blkid read back the label, names, sizes and contents', (t) => {
  const dir = tmp(t);
  const big = Buffer.alloc(3 * ISO_SECTOR + 17, 'x');
  const files = [
    { name: 'user-data', data: Buffer.from('#cloud-config\nhostname: web\n') },
    { name: 'meta-data', data: Buffer.from('instance-id: web-1\n') },
    { name: 'network-config', data: big },
    { name: 'empty', data: Buffer.alloc(0) },
  ];
  const img = buildIso({ volumeId: 'CIDATA', files });
  assert.equal(img.length % ISO_SECTOR, 0);
  const file = join(dir, 'seed.iso');
  writeFileSync(file, img);

  const d = isoinfo(['-d', '-i', file]);
  assert.match(d, /^Volume id: CIDATA$/m);
  assert.match(d, /Rock Ridge signatures version 1 found/);
  assert.match(d, new RegExp(`^Volume size is: ${img.length / ISO_SECTOR}$`, 'm'));

  const listing = isoinfo(['-R', '-l', '-i', file]);
  for (const f of files) {
    assert.match(listing, new RegExp(`-r--r--r--\\s+1\\s+0\\s+0\\s+${f.data.length} .*\\s${f.name} *$`, 'm'), listing);
    assert.deepEqual(execFileSync('isoinfo', ['-R', '-x', `/${f.name}`, '-i', file]), f.data, f.name);
  }
  // Without Rock Ridge a reader sees level-1 names.
  const plain = isoinfo(['-l', '-i', file]);
  for (const n of ['USER_DAT.;1', 'META_DAT.;1', 'NETWORK_.;1', 'EMPTY.;1']) assert.ok(plain.includes(n), `${n} in\n${plain}`);

  const blkid = spawnSync('blkid', ['-p', '-o', 'export', file], { encoding: 'utf8' });
  assert.equal(blkid.status, 0, blkid.stderr);
  assert.match(blkid.stdout, /^TYPE=iso9660$/m);
  assert.match(blkid.stdout, /^LABEL=CIDATA$/m);
});

test('ISO: many files span several directory sectors; clashing short names stay unique; deterministic', (t) => {
  const dir = tmp(t);
  const files = Array.from({ length: 30 }, (_, i) => ({ name: `vendor-data-part-${String(i).padStart(2, '0')}.yaml`, data: Buffer.from(`part ${i}\n`) }));
  const img = buildIso({ volumeId: 'CIDATA', files });
  assert.deepEqual(buildIso({ volumeId: 'CIDATA', files: [...files].reverse() }), img, 'same files, same bytes');
  const file = join(dir, 'many.iso');
  writeFileSync(file, img);
  const listing = isoinfo(['-R', '-l', '-i', file]);
  for (const f of files) {
    assert.ok(listing.includes(` ${f.name}`), f.name);
    assert.equal(execFileSync('isoinfo', ['-R', '-x', `/${f.name}`, '-i', file], { encoding: 'utf8' }), f.data.toString());
  }
  const plain = isoinfo(['-l', '-i', file]).split('\n').filter((l) => /;1\s*$/.test(l)).map((l) => l.trim().split(/\s+/).pop());
  assert.equal(new Set(plain).size, 30, 'unique level-1 identifiers');
  const root = Number(/\[\s*(\d+) 02\]\s+\.\s*$/m.exec(listing)?.[1]);
  assert.equal(root, 20);
});

test('ISO: validation names the field', () => {
  const ok = { name: 'a', data: Buffer.from('x') };
  const cases: Array<[unknown, string]> = [
    [{ volumeId: 'cidata', files: [ok] }, 'volumeId'],
    [{ volumeId: '', files: [ok] }, 'volumeId'],
    [{ volumeId: 'CIDATA', files: 'x' }, 'files'],
    [{ volumeId: 'CIDATA', files: [{ name: 'a/b', data: Buffer.from('') }] }, 'files[0].name'],
    [{ volumeId: 'CIDATA', files: [{ name: '..', data: Buffer.from('') }] }, 'files[0].name'],
    [{ volumeId: 'CIDATA', files: [ok, ok] }, 'files[1].name'],
    [{ volumeId: 'CIDATA', files: [{ name: 'a', data: 'text' }] }, 'files[0].data'],
    [{ volumeId: 'CIDATA', files: [ok], date: new Date('x') }, 'date'],
  ];
  for (const [o, field] of cases) {
    assert.throws(() => buildIso(o as never), (e: unknown) => e instanceof ValidationError && e.field === field, field);
  }
});

const KEY_DIR = mkdtempSync(join(tmpdir(), 'vmhost-ci-keys-'));
process.on('exit', () => rmSync(KEY_DIR, { recursive: true, force: true }));
const KEY = keygen(KEY_DIR);
const NET = { mac: '52:54:00:12:34:56', ipv4: '198.51.100.10/24', gateway4: '198.51.100.1', ipv6: '2001:DB8:1:0::100', dns: ['198.51.100.1', '2001:db8:1::1'], search: ['lan'] };
const base = (): CloudInitInput => ({ vm: 'web', domain: 'lan', sshAuthorizedKeys: [KEY], network: { ...NET } });

test('render: meta-data, user-data and network-config v2 as cloud-init (YAML 1.1) reads them', () => {
  const s = renderCloudInit(base());
  assert.match(s.instanceId, /^web-[0-9a-f]{16}$/);
  assert.deepEqual(parse(s.metaData, { version: '1.1' }), { 'instance-id': s.instanceId, 'local-hostname': 'web' });

  assert.ok(s.userData.startsWith('#cloud-config\n'));
  const ud = parse(s.userData, { version: '1.1' }) as Record<string, unknown>;
  assert.equal(ud['hostname'], 'web');
  assert.equal(ud['fqdn'], 'web.lan');
  assert.equal(ud['ssh_pwauth'], false);
  assert.equal(ud['ssh_deletekeys'], false);
  assert.deepEqual(ud['users'], [{ name: 'ops', gecos: 'vmhost', shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: true, ssh_authorized_keys: [KEY] }]);

  const nc = parse(s.networkConfig!, { version: '1.1' }) as { version: number; ethernets: Record<string, Record<string, unknown>> };
  assert.equal(nc.version, 2);
  const eth = nc.ethernets['vmhost0']!;
  // A MAC left unquoted would be a base-60 integer in YAML 1.1.
  assert.deepEqual(eth['match'], { macaddress: '52:54:00:12:34:56' });
  assert.deepEqual(eth['addresses'], ['198.51.100.10/24', '2001:db8:1::100/128']);
  assert.equal(eth['dhcp4'], false);
  assert.equal(eth['dhcp6'], false);
  assert.equal(eth['accept-ra'], true);
  assert.deepEqual(eth['routes'], [{ to: '0.0.0.0/0', via: '198.51.100.1' }]);
  assert.deepEqual(eth['nameservers'], { addresses: ['198.51.100.1', '2001:db8:1::1'], search: ['lan'] });

  // Without addresses: DHCP for both families; a gateway6 becomes a route.
  const dyn = parse(renderCloudInit({ ...base(), network: { mac: NET.mac, gateway6: 'fe80::1' } }).networkConfig!, { version: '1.1' }) as typeof nc;
  assert.equal(dyn.ethernets['vmhost0']!['dhcp4'], true);
  assert.equal(dyn.ethernets['vmhost0']!['dhcp6'], true);
  assert.deepEqual(dyn.ethernets['vmhost0']!['routes'], [{ to: '::/0', via: 'fe80::1' }]);

  const none = renderCloudInit({ ...base(), networkConfig: 'none', network: undefined });
  assert.equal(none.networkConfig, undefined);
  assert.deepEqual(readIsoNames(seedImage(none)), ['meta-data', 'user-data']);
  assert.deepEqual(readIsoNames(seedImage(renderCloudInit(base()))), ['meta-data', 'network-config', 'user-data']);
});

/** Rock Ridge names in an image (through isoinfo). */
function readIsoNames(img: Buffer): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-ci-'));
  try {
    writeFileSync(join(dir, 's.iso'), img);
    return isoinfo(['-R', '-f', '-i', join(dir, 's.iso')]).split('\n').filter(Boolean).map((l) => l.replace(/^\//, '')).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('user-data of the user: a #cloud-config is merged as a MIME part (base64, Merge-Type), a script as x-shellscript', () => {
  const cfg = '#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: "é\\n"\n';
  const s = renderCloudInit({ ...base(), userData: cfg });
  const boundary = /boundary="([^"]+)"/.exec(s.userData)![1]!;
  const parts = s.userData.split(`--${boundary}`);
  assert.equal(parts.length, 4, 'preamble, two parts, epilogue');
  assert.match(parts[1]!, /Content-Type: text\/cloud-config/);
  assert.match(parts[1]!, /\n#cloud-config\nhostname: web\n/);
  assert.match(parts[2]!, /Content-Type: text\/cloud-config/);
  assert.match(parts[2]!, /Merge-Type: list\(append\)\+dict\(no_replace,recurse_list\)\+str\(\)/);
  const body = parts[2]!.split('\n\n')[1]!.replace(/\s/g, '');
  assert.equal(Buffer.from(body, 'base64').toString(), cfg);
  assert.equal(parts[3], '--\n');

  const script = renderCloudInit({ ...base(), userData: '#!/bin/sh\necho hi\n' });
  assert.match(script.userData, /Content-Type: text\/x-shellscript/);
  assert.doesNotMatch(script.userData, /Merge-Type/);

  assert.equal(checkUserData('#cloud-config\n'), 'cloud-config');
  assert.equal(checkUserData('#cloud-config  \r\nruncmd: [ls]\r\n'), 'cloud-config');
  assert.equal(checkUserData('#!/usr/bin/env python3\nprint(1)\n'), 'script');
});

test('instance-id: the same seed gives the same id; any change of the seed gives another', () => {
  const id = renderCloudInit(base()).instanceId;
  assert.equal(renderCloudInit(base()).instanceId, id);
  const variants: CloudInitInput[] = [
    { ...base(), hostname: 'www' },
    { ...base(), domain: 'example' },
    { ...base(), user: 'admin' },
    { ...base(), sshAuthorizedKeys: [KEY, keygen(KEY_DIR)] },
    { ...base(), userData: '#cloud-config\n' },
    { ...base(), network: { ...NET, ipv6: '2001:db8:1::101' } },
    { ...base(), network: { ...NET, dns: ['198.51.100.1'] } },
    { ...base(), networkConfig: 'none', network: undefined },
  ];
  const ids = new Set([id, ...variants.map((v) => renderCloudInit(v).instanceId)]);
  assert.equal(ids.size, variants.length + 1);
  // Equivalent spellings are the same seed.
  assert.equal(renderCloudInit({ ...base(), sshAuthorizedKeys: [`  ${KEY.replace(' ', '   ')}  `], network: { ...NET, mac: '52-54-00-12-34-56', ipv6: '2001:db8:1::100/128' } }).instanceId, id);
});

test('validation names the field and touches nothing', () => {
  const cases: Array<[Partial<CloudInitInput> & Record<string, unknown>, string]> = [
    [{ vm: 'Web_1' }, 'vm'],
    [{ hostname: '-x' }, 'hostname'],
    [{ domain: 'a..b' }, 'domain'],
    [{ user: 'root' }, 'user'],
    [{ user: 'Bad User' }, 'user'],
    [{ sshAuthorizedKeys: 'ssh-ed25519 AAAA' as never }, 'sshAuthorizedKeys'],
    [{ sshAuthorizedKeys: [KEY, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x'] }, 'sshAuthorizedKeys[1]'],
    [{ sshAuthorizedKeys: [KEY.replace('ssh-ed25519', 'ssh-rsa')] }, 'sshAuthorizedKeys[0]'],
    [{ userData: 'hostname: web\n' }, 'userData'],
    [{ userData: '#include\nhttp://x\n' }, 'userData'],
    [{ userData: '#cloud-config\n- a list\n' }, 'userData'],
    [{ userData: '#cloud-config\na: [\n' }, 'userData'],
    [{ userData: '#cloud-config\na: 1\na: 2\n' }, 'userData'],
    [{ networkConfig: 'dhcp' as never }, 'networkConfig'],
    [{ network: undefined }, 'network'],
    [{ network: { ...NET, mac: '52:54:00:12:34' } }, 'network.mac'],
    [{ network: { ...NET, ipv4: '198.51.100.10' } }, 'network.ipv4'],
    [{ network: { ...NET, ipv4: '2001:db8::1/64' } }, 'network.ipv4'],
    [{ network: { ...NET, ipv6: '198.51.100.10' } }, 'network.ipv6'],
    [{ network: { ...NET, ipv6: '2001:db8::1/129' } }, 'network.ipv6'],
    [{ network: { ...NET, gateway4: '198.51.100.1/24' } }, 'network.gateway4'],
    [{ network: { ...NET, gateway6: 'fe80::1%br0' } }, 'network.gateway6'],
    [{ network: { ...NET, dns: ['198.51.100.1', 'dns.example'] } }, 'network.dns[1]'],
    [{ network: { ...NET, search: ['lan', 'UPPER_'] } }, 'network.search[1]'],
    [{ network: { ...NET, dns: [] } }, 'network.search'],
    [{ networkConfig: 'none' }, 'network'],
  ];
  for (const [patch, field] of cases) {
    assert.throws(() => renderCloudInit({ ...base(), ...patch } as CloudInitInput), (e: unknown) => e instanceof ValidationError && e.field === field, `${field}: ${JSON.stringify(patch)}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-ci-'));
  try {
    assert.throws(() => writeSeed(join(dir, 'seed.iso'), { ...base(), userData: 'nope' }), (e: unknown) => e instanceof ValidationError && e.field === 'userData');
    assert.deepEqual(readdirSync(dir), [], 'nothing written for bad input');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeSeed: atomic 0600 file, unchanged when equal, a symlink at the path is replaced (never followed), unsafe directories refused', (t) => {
  const dir = tmp(t);
  chmodSync(dir, 0o755);
  const path = join(dir, 'seed.iso');
  const r1 = writeSeed(path, base());
  assert.equal(r1.changed, true);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readFileSync(path), seedImage(renderCloudInit(base())));
  assert.equal(isoinfo(['-R', '-x', '/meta-data', '-i', path]), renderCloudInit(base()).metaData);
  const r2 = writeSeed(path, base());
  assert.deepEqual({ changed: r2.changed, instanceId: r2.instanceId }, { changed: false, instanceId: r1.instanceId });
  const r3 = writeSeed(path, { ...base(), hostname: 'www' });
  assert.equal(r3.changed, true);
  assert.notEqual(r3.instanceId, r1.instanceId);
  assert.deepEqual(readdirSync(dir), ['seed.iso'], 'no temp file left');

  // A symlink planted at the seed path: replaced by the file; its target is untouched.
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious');
  rmSync(path);
  symlinkSync(victim, path);
  writeSeed(path, base());
  assert.equal(lstatSync(path).isSymbolicLink(), false);
  assert.equal(readFileSync(victim, 'utf8'), 'precious');

  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  assert.throws(() => writeSeed(join(open, 'seed.iso'), base()), (e: unknown) => e instanceof ValidationError && /world-writable/.test(e.message));
  assert.equal(existsSync(join(open, 'seed.iso')), false);
  const link = join(dir, 'linkdir');
  symlinkSync(dir, link);
  assert.throws(() => writeSeed(join(link, 'seed.iso'), base()), (e: unknown) => e instanceof ValidationError && /symlink/.test(e.message));
  assert.throws(() => writeSeed('seed.iso', base()), (e: unknown) => e instanceof ValidationError && e.field === 'path');
});
