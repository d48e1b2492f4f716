// cloud-init in the host file and the engine: the `cloudInit` sections resolved and merged (host-
// wide defaults, the VM's own fields winning, the keys of both), every bad value refused with its
// path before anything is read; the user-data files read as data (missing, not a file, too big,
// neither #cloud-config nor a script: a precondition error naming the field); the seed rendered
// from the host as the host serves the VM (network-config parsed back as YAML 1.1, as cloud-init
// reads it); and the VM entry: the seed volume after the disks, read-only, the instance-id in the
// plan's line, and a changed seed a changed definition (a restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { HostPreconditionError, HostSpecError, parseHostFile, type ResolvedHost } from '@vmhost/host';
import { desiredState } from '../../packages/host/src/engine/desired.js';
import { loadSeeds, loadUserData } from '../../packages/host/src/engine/seeds.js';
import { vmFingerprint } from '../../packages/host/src/engine/kinds/vm.js';
import type { VmEntry } from '../../packages/host/src/engine/entries.js';
import { linkLocalAddress, slaacAddress } from '../../packages/host/src/guests/ipv6.js';

const DIR = mkdtempSync(join(tmpdir(), 'vmhost-seeds-'));
process.on('exit', () => rmSync(DIR, { recursive: true, force: true }));

function keygen(comment: string): string {
  const f = join(DIR, `k-${Math.random().toString(16).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', f]);
  return readFileSync(`${f}.pub`, 'utf8').trim();
}
const ADMIN = keygen('admin@example');
const OPS = keygen('ops@example');

writeFileSync(join(DIR, 'user.yaml'), '#cloud-config\npackages: [nginx]\n');
writeFileSync(join(DIR, 'setup.sh'), '#!/bin/sh\necho hello\n');

/** A routed host with a real guest (`deb`, a seed) and a test guest (no seed); `extra` is added at the top level, `vm` to deb. */
function hostText(o: { top?: string; vm?: string; mode?: 'routed' | 'proxy'; dhcp?: boolean } = {}): string {
  return `name: ci
uplink: eth0
bridge: { name: br0, mac: "02:00:5e:10:00:01", ipv4: 198.51.100.1/24, ipv6: "2001:db8:1::1/64" }
${o.dhcp === false ? '' : 'dhcp: { range: [198.51.100.100, 198.51.100.150], domain: lan }\n'}ipv6: { prefix: "2001:db8:1::/64", mode: ${o.mode ?? 'routed'} }
${o.top ?? ''}
vms:
  - name: deb
    mac: "52:54:00:12:34:56"
    ipv4: 198.51.100.10
    ipv6: auto
    memoryMiB: 1024
    kernel: /boot/vmlinuz
    disk: /srv/deb.qcow2
    cloudInit: ${o.vm ?? `{ sshAuthorizedKeys: ["${OPS}"] }`}
  - name: tg
    mac: "52:54:00:12:34:57"
    ipv4: 198.51.100.20
    ipv6: "2001:db8:1::200"
    kernel: /boot/vmlinuz
`;
}
const host = (o: Parameters<typeof hostText>[0] = {}): ResolvedHost => parseHostFile(hostText(o), { baseDir: DIR });

/** The problems of a host file that must not resolve, as `path: message`. */
function problems(o: Parameters<typeof hostText>[0]): string[] {
  try {
    host(o);
  } catch (err) {
    assert.ok(err instanceof HostSpecError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('the host file resolved');
}

test('cloudInit: the VM\'s fields win over the host-wide ones, the keys of both are given (each once), defaults filled in', () => {
  const h = host({ top: `cloudInit: { user: admin, sshAuthorizedKeys: ["${ADMIN}"], userData: user.yaml, networkConfig: none }`, vm: `{ hostname: debian, sshAuthorizedKeys: ["${OPS}", "${ADMIN}"], networkConfig: auto }` });
  assert.deepEqual(h.cloudInit, { user: 'admin', sshAuthorizedKeys: [ADMIN], userData: join(DIR, 'user.yaml'), networkConfig: 'none' });
  assert.deepEqual(h.vms[0]!.cloudInit, { hostname: 'debian', user: 'admin', sshAuthorizedKeys: [ADMIN, OPS], userData: join(DIR, 'user.yaml'), networkConfig: 'auto' });
  assert.equal(h.vms[1]!.cloudInit, undefined, 'a VM without cloudInit gets no seed, whatever the top level says');
  // {} takes the host-wide settings; without them, the defaults
  assert.deepEqual(host({ top: `cloudInit: { sshAuthorizedKeys: ["${ADMIN}"] }`, vm: '{}' }).vms[0]!.cloudInit, { hostname: 'deb', user: 'ops', sshAuthorizedKeys: [ADMIN], networkConfig: 'auto' });
  // a key line is normalised (spacing)
  const spaced = OPS.replace(' ', '   ');
  assert.deepEqual(host({ vm: `{ sshAuthorizedKeys: ["  ${spaced}  "] }` }).vms[0]!.cloudInit!.sshAuthorizedKeys, [OPS]);
  // a user-data file alone is enough (the user brings their own users)
  assert.deepEqual(host({ vm: '{ userData: setup.sh }' }).vms[0]!.cloudInit!.sshAuthorizedKeys, []);
});

test('cloudInit: bad values are refused with their path, before anything is read', () => {
  const [typ, b64] = OPS.split(' ') as [string, string];
  const cases: Array<[Parameters<typeof hostText>[0], string]> = [
    [{ vm: '{ sshAuthorizedKeys: ["ssh-ed25519 AAAA"] }' }, 'vms[0].cloudInit.sshAuthorizedKeys[0]: the key blob is truncated'],
    [{ vm: '{ sshAuthorizedKeys: ["ssh-ed25519 AAA$"] }' }, 'vms[0].cloudInit.sshAuthorizedKeys[0]: the key is not valid base64'],
    [{ vm: `{ sshAuthorizedKeys: ["${OPS}", "ssh-rsa ${b64}"] }` }, "vms[0].cloudInit.sshAuthorizedKeys[1]: the key blob says 'ssh-ed25519', the line says 'ssh-rsa'"],
    [{ vm: `{ sshAuthorizedKeys: ["ssh-dss ${b64}"] }` }, "vms[0].cloudInit.sshAuthorizedKeys[0]: unknown or refused key type 'ssh-dss'"],
    [{ vm: `{ sshAuthorizedKeys: ["from=\\"10.0.0.1\\" ${typ} ${b64}"] }` }, 'vms[0].cloudInit.sshAuthorizedKeys[0]: unknown or refused key type'],
    [{ vm: `{ sshAuthorizedKeys: "${OPS}" }` }, 'vms[0].cloudInit.sshAuthorizedKeys: expected a list of OpenSSH public key lines'],
    [{ top: 'cloudInit: { sshAuthorizedKeys: ["nope"] }', vm: '{}' }, 'cloudInit.sshAuthorizedKeys[0]: expected "TYPE BASE64 [COMMENT]"'],
    [{ vm: '{}' }, 'vms[0].cloudInit.sshAuthorizedKeys: a seed needs at least one ssh key'],
    [{ vm: `{ user: root, sshAuthorizedKeys: ["${OPS}"] }` }, 'vms[0].cloudInit.user: not root'],
    [{ vm: `{ user: "Ops", sshAuthorizedKeys: ["${OPS}"] }` }, 'vms[0].cloudInit.user: expected a user name'],
    [{ vm: `{ hostname: "web.lan", sshAuthorizedKeys: ["${OPS}"] }` }, 'vms[0].cloudInit.hostname: expected a DNS label'],
    [{ vm: `{ networkConfig: dhcp, sshAuthorizedKeys: ["${OPS}"] }` }, "vms[0].cloudInit.networkConfig: expected one of 'auto', 'none'"],
    [{ vm: `{ userData: "/proc/self/environ", sshAuthorizedKeys: ["${OPS}"] }` }, 'vms[0].cloudInit.userData: is under /proc'],
    [{ vm: `{ sshKeys: ["${OPS}"] }` }, "vms[0].cloudInit.sshKeys: unknown key 'sshKeys'"],
    [{ top: 'cloudInit: { hostname: x }', vm: `{ sshAuthorizedKeys: ["${OPS}"] }` }, "cloudInit.hostname: unknown key 'hostname'"],
  ];
  for (const [o, want] of cases) {
    const got = problems(o);
    assert.ok(got.some((p) => p.startsWith(want)), `${want}\n  got: ${got.join('\n       ')}`);
  }
  // a bad top level is reported once, not again as "no key" for each VM
  assert.deepEqual(problems({ top: 'cloudInit: { sshAuthorizedKeys: ["nope"] }', vm: '{}' }).length, 1);
});

test('user-data files are read as data: missing, not a file, too big, not user-data: a precondition error naming the field', () => {
  const bad = join(DIR, 'bad');
  mkdirSync(bad, { recursive: true });
  writeFileSync(join(bad, 'plain.txt'), 'hello\n');
  writeFileSync(join(bad, 'include'), '#include\nhttp://example.com/\n');
  writeFileSync(join(bad, 'broken.yaml'), '#cloud-config\nusers: [\n');
  writeFileSync(join(bad, 'big'), '');
  truncateSync(join(bad, 'big'), 1024 * 1024 + 1);
  symlinkSync('/dev/zero', join(bad, 'zero'));
  const cases: Array<[string, string, string]> = [
    ['vm', 'bad/none.yaml', 'no such file'],
    ['vm', 'bad', 'not a regular file'],
    ['vm', 'bad/zero', 'not a regular file'],
    ['vm', 'bad/big', 'a user-data file has at most 1048576'],
    ['vm', 'bad/plain.txt', "user-data must start with '#cloud-config' or be a script"],
    ['vm', 'bad/include', "user-data must start with '#cloud-config'"],
    ['vm', 'bad/broken.yaml', 'not valid YAML'],
    ['top', 'bad/none.yaml', 'no such file'],
  ];
  for (const [where, file, reason] of cases) {
    const h = where === 'vm' ? host({ vm: `{ userData: ${file} }` }) : host({ top: `cloudInit: { userData: ${file} }`, vm: '{}' });
    assert.throws(() => loadSeeds(h), (e: unknown) => {
      assert.ok(e instanceof HostPreconditionError, String(e));
      assert.equal(e.code, 'EHOST_PRECONDITION');
      assert.equal(e.field, where === 'vm' ? 'vms[0].cloudInit.userData' : 'cloudInit.userData');
      assert.equal(e.value, join(DIR, file));
      assert.ok(e.message.includes(reason), `${file}: ${e.message}`);
      return true;
    });
  }
  assert.deepEqual([...loadUserData(host({ vm: '{ userData: user.yaml }' }))], [[join(DIR, 'user.yaml'), '#cloud-config\npackages: [nginx]\n']]);
  assert.deepEqual(loadSeeds(host({ vm: '~' })).size, 0, 'no VM with cloudInit: nothing read');
});

interface Net { version: 2; ethernets: Record<string, Record<string, unknown>> }
const netOf = (h: ResolvedHost): Record<string, unknown> => Object.values((parse(loadSeeds(h).get('deb')!.networkConfig!, { version: '1.1' }) as Net).ethernets)[0]!;

test('the seed: the VM\'s addresses as the host serves them (routed: its /128, the RA\'s route, both DNS servers; proxy: IPv4 only)', () => {
  const routed = host();
  const eui = slaacAddress('2001:db8:1::/64', '52:54:00:12:34:56');
  assert.equal(routed.vms[0]!.ipv6, eui);
  const seed = loadSeeds(routed).get('deb')!;
  assert.match(seed.instanceId, /^deb-[0-9a-f]{16}$/);
  assert.match(seed.metaData, /^local-hostname: deb$/m);
  const ud = parse(seed.userData, { version: '1.1' }) as { fqdn: string; users: Array<{ name: string; ssh_authorized_keys: string[] }> };
  assert.equal(ud.fqdn, 'deb.lan');
  assert.deepEqual(ud.users.map((u) => [u.name, u.ssh_authorized_keys]), [['ops', [OPS]]]);
  assert.deepEqual(netOf(routed), {
    match: { macaddress: '52:54:00:12:34:56' },
    dhcp4: false,
    dhcp6: false,
    'accept-ra': true,
    addresses: ['198.51.100.10/24', `${eui}/128`],
    routes: [{ to: '0.0.0.0/0', via: '198.51.100.1' }],
    nameservers: { addresses: ['198.51.100.1', '2001:db8:1::1'], search: ['lan'] },
  });
  // proxy mode: the VM's public IPv6 address is the host's (on the uplink): none in the guest
  const proxy = netOf(host({ mode: 'proxy' }));
  assert.deepEqual(proxy.addresses, ['198.51.100.10/24']);
  assert.deepEqual(proxy.nameservers, { addresses: ['198.51.100.1'], search: ['lan'] });
  // routed without dnsmasq: no RA, so the default route via the bridge's link-local address; no DNS
  const bare = netOf(host({ dhcp: false }));
  assert.deepEqual(bare.routes, [{ to: '0.0.0.0/0', via: '198.51.100.1' }, { to: '::/0', via: linkLocalAddress('02:00:5e:10:00:01') }]);
  assert.equal(bare.nameservers, undefined);
  // networkConfig none: no network-config at all
  assert.equal(loadSeeds(host({ vm: `{ networkConfig: none, sshAuthorizedKeys: ["${OPS}"] }` })).get('deb')!.networkConfig, undefined);
  // the user's user-data is in the seed (a MIME part)
  assert.match(loadSeeds(host({ vm: `{ userData: user.yaml, sshAuthorizedKeys: ["${OPS}"] }` })).get('deb')!.userData, /^Content-Type: multipart\/mixed/);
});

test('the VM entry: the seed volume after the disks (raw, read-only), the instance-id in its line; a changed seed changes the fingerprint only', () => {
  const h = host();
  const seeds = loadSeeds(h);
  const want = desiredState(h, { dir: '/run/vmhost/ci', dataDir: '/var/lib/vmhost/ci', seeds }).filter((d) => d.entry.kind === 'vm');
  const [deb, tg] = want.map((d) => d.entry as VmEntry);
  assert.deepEqual(deb!.data.options.drives, [
    { file: '/srv/deb.qcow2', format: 'qcow2', cache: 'writeback', readOnly: false, interface: 'virtio' },
    { file: '/var/lib/vmhost/ci/seeds/deb.iso', format: 'raw', readOnly: true, interface: 'virtio' },
  ]);
  assert.deepEqual(deb!.data.seed, { file: '/var/lib/vmhost/ci/seeds/deb.iso', seed: seeds.get('deb') });
  assert.match(want[0]!.describe, new RegExp(`, cloud-init ${seeds.get('deb')!.instanceId}\\)$`));
  assert.equal(tg!.data.seed, undefined);
  assert.deepEqual(tg!.data.options.drives, []);

  // another key: another instance-id, the same QEMU options, another fingerprint
  const h2 = host({ vm: `{ sshAuthorizedKeys: ["${ADMIN}"] }` });
  const deb2 = desiredState(h2, { dir: '/run/vmhost/ci', dataDir: '/var/lib/vmhost/ci', seeds: loadSeeds(h2) }).find((d) => d.entry.id === 'vm:deb')!.entry as VmEntry;
  assert.notEqual(deb2.data.seed!.seed.instanceId, deb!.data.seed!.seed.instanceId);
  assert.deepEqual(deb2.data.options, deb!.data.options);
  assert.notEqual(vmFingerprint(deb2.data.options, deb2.data.seed!.seed.instanceId), vmFingerprint(deb!.data.options, deb!.data.seed!.seed.instanceId));
  // a VM without a seed keeps the fingerprint it always had (its options alone)
  assert.equal(vmFingerprint(tg!.data.options), vmFingerprint(tg!.data.options, undefined));
  // without seeds (recovery): described without them
  assert.equal((desiredState(h, { dir: '/run/vmhost/ci' }).find((d) => d.entry.id === 'vm:deb')!.entry as VmEntry).data.seed, undefined);
});
