// Guest helpers: OpenSSH public keys (real keys from ssh-keygen accepted, forged or damaged ones
// refused with the reason), EUI-64 / SLAAC addresses (the values measured in the real guest), and
// the dnsmasq lines for RA + DHCPv6 + names (golden, validation, and `dnsmasq --test` as the
// independent syntax oracle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { parseSshPublicKey } from '../../packages/host/src/guests/ssh-key.js';
import { eui64InterfaceId, linkLocalAddress, slaacAddress } from '../../packages/host/src/guests/ipv6.js';
import { renderGuestDnsmasqLines, type GuestDnsmasqOptions } from '../../packages/host/src/guests/dnsmasq-guests.js';

const DIR = mkdtempSync(join(tmpdir(), 'vmhost-guests-'));
process.on('exit', () => rmSync(DIR, { recursive: true, force: true }));
function keygen(type: string, bits?: number): string {
  const f = join(DIR, `${type}-${bits ?? 0}-${Math.random().toString(16).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', 'me@example test', '-f', f]);
  return readFileSync(`${f}.pub`, 'utf8').trim();
}

/** An SSH wire blob from strings. */
function blob(...parts: Array<string | Buffer>): string {
  return Buffer.concat(parts.flatMap((p) => {
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    return [n, b];
  })).toString('base64');
}

test('ssh keys from ssh-keygen parse: ed25519, rsa, ecdsa 256/384/521; comment kept; spacing normalised', () => {
  for (const [type, bits, name] of [['ed25519', 0, 'ssh-ed25519'], ['rsa', 2048, 'ssh-rsa'], ['ecdsa', 256, 'ecdsa-sha2-nistp256'], ['ecdsa', 384, 'ecdsa-sha2-nistp384'], ['ecdsa', 521, 'ecdsa-sha2-nistp521']] as const) {
    const line = keygen(type, bits || undefined);
    const k = parseSshPublicKey(line);
    assert.equal(k.type, name);
    assert.equal(k.comment, 'me@example test');
    assert.equal(k.line, line);
    assert.equal(parseSshPublicKey(`\t${line.replace(/ /g, '  ')}\n`).line, line);
  }
  const ed = keygen('ed25519').split(' ').slice(0, 2).join(' ');
  assert.equal(parseSshPublicKey(ed).comment, undefined);
});

test('ssh keys: damaged or forged keys are refused with the field and the reason', () => {
  const ed = keygen('ed25519');
  const [, b64] = ed.split(' ') as [string, string];
  const rsa = keygen('rsa', 2048);
  const smallRsa = generateKeyPairSync('rsa', { modulusLength: 512 }).publicKey.export({ format: 'jwk' });
  const n = Buffer.from(smallRsa.n!, 'base64url');
  // 50 bytes: the last base64 digit before '=' carries 2 padding bits; setting one is not canonical.
  const b50 = blob('ssh-ed25519', Buffer.alloc(31));
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const nonCanonical = `${b50.slice(0, -2)}${A[A.indexOf(b50.at(-2)!) ^ 1]}=`;
  const cases: Array<[unknown, RegExp]> = [
    [42, /expected an OpenSSH public key line/],
    ['', /expected "TYPE BASE64/],
    [b64, /expected "TYPE BASE64/],
    [`ssh-dss ${b64}`, /unknown or refused key type 'ssh-dss'/],
    [`from="10.0.0.1" ${ed}`, /options before the type are not accepted/],
    [`ssh-ed25519 ${b64.slice(0, -4)}`, /truncated|32 bytes/],
    [`ssh-ed25519 ${b64.slice(0, -1)}`, /not valid base64/],
    [`ssh-ed25519 ${nonCanonical}`, /not canonical base64/],
    [`ssh-ed25519 ${b64}\nssh-ed25519 ${b64}`, /one line/],
    [`ssh-rsa ${b64}`, /the key blob says 'ssh-ed25519', the line says 'ssh-rsa'/],
    [`ssh-ed25519 ${rsa.split(' ')[1]}`, /the key blob says 'ssh-rsa'/],
    [`ssh-ed25519 ${blob('ssh-ed25519', Buffer.alloc(31))}`, /32 bytes, this blob holds 31/],
    [`ssh-ed25519 ${blob('ssh-ed25519', Buffer.alloc(32), 'x')}`, /trailing bytes/],
    [`ssh-rsa ${blob('ssh-rsa', Buffer.from([1, 0, 1]), Buffer.concat([Buffer.from([0]), n]))}`, /RSA modulus of 512 bits is too small/],
    [`ecdsa-sha2-nistp256 ${blob('ecdsa-sha2-nistp256', 'nistp384', Buffer.alloc(65, 4))}`, /names curve 'nistp384'/],
    [`ecdsa-sha2-nistp256 ${blob('ecdsa-sha2-nistp256', 'nistp256', Buffer.alloc(33, 2))}`, /not an uncompressed nistp256 point/],
    [`ssh-ed25519 ${Buffer.from([0, 0, 0, 200, 1]).toString('base64')}`, /truncated/],
  ];
  for (const [line, why] of cases) {
    assert.throws(() => parseSshPublicKey(line, 'cloudInit.sshAuthorizedKeys[3]'), (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.equal(e.field, 'cloudInit.sshAuthorizedKeys[3]');
      assert.match(e.message, why);
      return true;
    }, String(line).slice(0, 40));
  }
});

test('EUI-64: the SLAAC address the Debian guest formed with A=1, and the bridge link-local its default route used', () => {
  // Measured in the real guest (systemd-networkd) with a slaac RA: 2001:db8:1:0:5054:ff:fe12:3456/64.
  assert.equal(slaacAddress('2001:db8:1::/64', '52:54:00:12:34:56'), '2001:db8:1:0:5054:ff:fe12:3456');
  assert.equal(eui64InterfaceId('52:54:00:12:34:56').toString('hex'), '505400fffe123456');
  // The U/L bit is inverted both ways; RFC 5952 text (one zero group is not compressed).
  assert.equal(slaacAddress('2001:db8:8:5688::/64', '02:00:00:00:00:01'), '2001:db8:8:5688:0:ff:fe00:1');
  assert.equal(slaacAddress('2001:db8::/64', '00:1b:21:3a:4b:5c'), '2001:db8::21b:21ff:fe3a:4b5c');
  assert.equal(slaacAddress('2001:DB8:0:1::/64', '52-54-00-AB-CD-EF'), '2001:db8:0:1:5054:ff:feab:cdef');
  // The test bridge (MAC 02:00:5e:10:00:01) is the guest's RA default router fe80::5eff:fe10:1.
  assert.equal(linkLocalAddress('02:00:5e:10:00:01'), 'fe80::5eff:fe10:1');
  assert.equal(linkLocalAddress('52:54:00:12:34:56'), 'fe80::5054:ff:fe12:3456');
  for (const [prefix, mac, field] of [
    ['2001:db8::/48', '52:54:00:12:34:56', 'prefix'],
    ['2001:db8::1/64', '52:54:00:12:34:56', 'prefix'],
    ['2001:db8::', '52:54:00:12:34:56', 'prefix'],
    ['198.51.100.0/64', '52:54:00:12:34:56', 'prefix'],
    ['2001:db8::/64', '52:54:00:12:34', 'vms[1].mac'],
  ] as const) {
    assert.throws(() => slaacAddress(prefix, mac, { mac: 'vms[1].mac' }), (e: unknown) => e instanceof ValidationError && e.field === field, `${prefix} ${mac}`);
  }
});

const opts = (): GuestDnsmasqOptions => ({
  interface: 'br0',
  domain: 'lan',
  ipv6: { prefix: '2001:db8:1::/64', dnsServer: '2001:DB8:1::1' },
  hosts: [
    { name: 'web', mac: '52:54:00:12:34:56', ipv4: '198.51.100.10', ipv6: '2001:db8:1::100' },
    { name: 'tg', mac: '52-54-00-12-34-57', ipv4: '198.51.100.20', ipv6: '2001:db8:1:0::200' },
    { name: 'v4only', mac: '52:54:00:12:34:58', ipv4: '198.51.100.30' },
  ],
});

const GOLDEN = [
  'enable-ra',
  'dhcp-range=2001:db8:1::,static,off-link,64,1h',
  'ra-param=br0,60,1800',
  'dhcp-option=option6:dns-server,[2001:db8:1::1]',
  'dhcp-option=option6:domain-search,lan',
  'dhcp-host=52:54:00:12:34:56,198.51.100.10,[2001:db8:1::100],web',
  'dhcp-host=52:54:00:12:34:57,198.51.100.20,[2001:db8:1::200],tg',
  'dhcp-host=52:54:00:12:34:58,198.51.100.30,v4only',
  'host-record=web.lan,web,198.51.100.10,2001:db8:1::100',
  'host-record=tg.lan,tg,198.51.100.20,2001:db8:1::200',
  'host-record=v4only.lan,v4only,198.51.100.30',
];

test('dnsmasq guest lines: golden, and dnsmasq --test accepts them in a full config', () => {
  const lines = renderGuestDnsmasqLines(opts());
  assert.deepEqual(lines, GOLDEN);
  const noV6 = renderGuestDnsmasqLines({ ...opts(), ipv6: undefined, domain: undefined });
  assert.deepEqual(noV6, [
    'dhcp-host=52:54:00:12:34:56,198.51.100.10,web',
    'dhcp-host=52:54:00:12:34:57,198.51.100.20,tg',
    'dhcp-host=52:54:00:12:34:58,198.51.100.30,v4only',
    'host-record=web,198.51.100.10,2001:db8:1::100',
    'host-record=tg,198.51.100.20,2001:db8:1::200',
    'host-record=v4only,198.51.100.30',
  ]);
  // an address outside the served prefix is a name only (no lease)
  const outside = renderGuestDnsmasqLines({ ...opts(), hosts: [{ ...opts().hosts[0]!, ipv6: '2001:db8:2::100' }] });
  assert.deepEqual(outside.filter((l) => !GOLDEN.slice(0, 5).includes(l)), ['dhcp-host=52:54:00:12:34:56,198.51.100.10,web', 'host-record=web.lan,web,198.51.100.10,2001:db8:2::100']);
  const conf = join(DIR, 'dnsmasq.conf');
  writeFileSync(conf, ['interface=br0', 'bind-interfaces', 'no-resolv', 'no-hosts', 'domain=lan', 'dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,1h', ...lines, ''].join('\n'));
  const r = spawnSync('dnsmasq', ['--test', `--conf-file=${conf}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /syntax check OK/);
});

test('dnsmasq guest lines: validation names the field', () => {
  const cases: Array<[(o: GuestDnsmasqOptions) => void, string]> = [
    [(o) => void (o.interface = 'br 0'), 'interface'],
    [(o) => void (o.domain = 'a..b'), 'domain'],
    [(o) => void (o.ipv6!.prefix = '2001:db8:1::/56'), 'ipv6.prefix'],
    [(o) => void (o.ipv6!.prefix = '2001:db8:1::1/64'), 'ipv6.prefix'],
    [(o) => void (o.ipv6!.dnsServer = '198.51.100.1'), 'ipv6.dnsServer'],
    [(o) => void (o.ipv6!.leaseTime = '1y'), 'ipv6.leaseTime'],
    [(o) => void (o.ipv6!.raIntervalS = 2), 'ipv6.raIntervalS'],
    [(o) => void (o.ipv6!.routerLifetimeS = 30), 'ipv6.routerLifetimeS'],
    [(o) => void (o.hosts = 'x' as never), 'hosts'],
    [(o) => void (o.hosts[1]!.name = 'tg.lan'), 'hosts[1].name'],
    [(o) => void (o.hosts[1]!.name = 'WEB'), 'hosts[1].name'],
    [(o) => void (o.hosts[1]!.mac = '52:54:00:12:34:56'), 'hosts[1].mac'],
    [(o) => void (o.hosts[1]!.mac = 'nope'), 'hosts[1].mac'],
    [(o) => void (o.hosts[1]!.ipv4 = '198.51.100.10'), 'hosts[1].ipv4'],
    [(o) => void (o.hosts[1]!.ipv4 = '2001:db8::1'), 'hosts[1].ipv4'],
    [(o) => void (o.hosts[1]!.ipv6 = '2001:db8:1::100'), 'hosts[1].ipv6'],
    [(o) => void (o.hosts[1]!.ipv6 = '2001:db8:1::200/128'), 'hosts[1].ipv6'],
  ];
  for (const [mutate, field] of cases) {
    const o = opts();
    mutate(o);
    assert.throws(() => renderGuestDnsmasqLines(o), (e: unknown) => e instanceof ValidationError && e.field === field, field);
  }
});
