// The host file: parsing, validation and defaults (packages/host/src/spec.ts). Pure, no root.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ip, SystemError, ValidationError } from '@vmhost/net';
import { stableMac } from '@vmhost/kvm';
import { HostSpecError } from '../../packages/host/src/errors.js';
import { loadHostFile } from '../../packages/host/src/spec/load.js';
import { parseHostFile } from '../../packages/host/src/spec/parse.js';
import { nestingDepth, resolveHost } from '../../packages/host/src/spec/resolve.js';
import { bridgeMac } from '../../packages/host/src/spec/bridge.js';
import { slaacAddress } from '../../packages/host/src/guests/ipv6.js';
import { tapTag } from '../../packages/host/src/spec/schema.js';
import { firewallModel } from '../../packages/host/src/engine/desired.js';
import { render } from '@vmhost/firewall';
import type { HostFile, ResolvedHost } from '../../packages/host/src/types.js';
import { seedDir, seedHost, seedHostFile, seedJsonPath, seedYamlPath } from './fixtures/seed.js';

/** What the seed resolves to (baseDir = the fixtures directory). */
const seedResolved: ResolvedHost = {
  name: 'seed',
  uplink: 'eth0',
  qemu: { user: 'auto' },
  bridge: {
    name: 'br0',
    mac: 'de:ad:be:ef:24:31',
    veth: { name: 'veth0', peer: 'veth1' },
    ipv4: { family: 4, address: '192.168.0.1', prefixLength: 24, cidr: '192.168.0.1/24', network: '192.168.0.0/24' },
    ipv6: { family: 6, address: '2001:db8:8:5688::1', prefixLength: 64, cidr: '2001:db8:8:5688::1/64', network: '2001:db8:8:5688::/64' },
    stp: false,
    adopt: false,
  },
  dhcp: { range: ['192.168.0.100', '192.168.0.150'], leaseTime: '72h', domain: 'lan' },
  ipv6: {
    prefix: { family: 6, address: '2001:db8:8:5688::', prefixLength: 64, cidr: '2001:db8:8:5688::/64', network: '2001:db8:8:5688::/64' },
    mode: 'routed',
    acceptRa: false,
    learn: false,
    learnLimit: 16,
    proxy: { maxConnections: 256, maxConnectionsPerSource: 32, maxTotalConnections: 4096, idleTimeoutMs: 300000, connectTimeoutMs: 5000, firstByteTimeoutMs: 10000, maxLifetimeMs: 3600000 },
  },
  vms: [
    {
      name: 'web',
      mac: 'de:ad:be:ef:32:10',
      ipv4: '192.168.0.100',
      ipv6: '2001:db8:8:5688::100',
      tap: 'vdu-web', // the tag of host 'seed'
      memoryMiB: 256,
      cpus: 1,
      accel: 'auto',
      machine: 'q35',
      sandbox: 'auto',
      disks: [{ file: `${seedDir}/images/web.qcow2`, format: 'qcow2', cache: 'writeback', readOnly: false }],
      forwards: [
        { protocol: 'tcp', port: 1234, toPort: 22 },
        { protocol: 'tcp', port: 80, toPort: 80 },
      ],
      autostart: true,
      restart: 'on-failure',
      adopt: false,
      isolation: true,
      linkLocal: 'eui64',
    },
    {
      name: 'mail',
      mac: 'a2:41:a6:39:97:df', // stableMac('mail', 0)
      ipv4: '192.168.0.200',
      ipv6: '2001:db8:8:5688::200',
      tap: 'vdu-mail',
      memoryMiB: 512,
      cpus: 1,
      accel: 'auto',
      machine: 'q35',
      sandbox: 'auto',
      kernel: '/boot/vmlinuz',
      initrd: `${seedDir}/images/initrd.img`,
      append: 'console=ttyS0',
      disks: [{ file: `${seedDir}/images/mail.img`, format: 'raw', cache: 'none', readOnly: false }],
      forwards: [
        { protocol: 'tcp', port: 5678, toPort: 22 },
        { protocol: 'tcp', port: 25, toPort: 25 },
      ],
      autostart: true,
      restart: 'on-failure',
      adopt: false,
      isolation: true,
      linkLocal: 'eui64',
    },
  ],
  onStop: 'shutdown',
};

/** The seed, changed by `edit`, resolved against the fixtures directory. */
function resolveSeed(edit: (h: HostFile & Record<string, unknown>) => void): ResolvedHost {
  const h = seedHost() as HostFile & Record<string, unknown>;
  edit(h);
  return resolveHost(h, seedDir);
}

/** Runs `fn`, expects a HostSpecError whose first problem is at `path` and whose message names `value`. */
function rejects(fn: () => unknown, path: string, value?: string): HostSpecError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof HostSpecError, `expected a HostSpecError, got ${String(err)}`);
  assert.ok(err instanceof ValidationError);
  assert.equal(err.code, 'EVALIDATION');
  assert.equal(err.field, path, err.message);
  if (value !== undefined) assert.ok(err.message.includes(value), `message should mention ${value}: ${err.message}`);
  return err;
}

const vm = (h: HostFile, i: number) => h.vms![i]!;

test('the seed, as YAML and as JSON, resolves to the expected host', async () => {
  const yaml = parseHostFile(readFileSync(seedYamlPath, 'utf8'), { baseDir: seedDir });
  assert.deepEqual(yaml, seedResolved);
  const json = parseHostFile(readFileSync(seedJsonPath, 'utf8'), { format: 'json', baseDir: seedDir });
  assert.deepEqual(json, seedResolved);
  // JSON is YAML too
  assert.deepEqual(parseHostFile(readFileSync(seedJsonPath, 'utf8'), { baseDir: seedDir }), seedResolved);
  assert.deepEqual(await loadHostFile(seedYamlPath), seedResolved);
  assert.deepEqual(await loadHostFile(seedJsonPath), seedResolved);
  assert.equal(seedResolved.vms[1]!.mac, stableMac('mail', 0));
});

test('resolveHost does not change its input and returns fresh objects in a fixed key order', () => {
  const input = seedHost();
  const r = resolveHost(input, seedDir);
  assert.deepEqual(input, seedHostFile);
  assert.deepEqual(r, seedResolved);
  assert.notEqual(r.dhcp!.range, input.dhcp!.range);
  assert.deepEqual(Object.keys(r), ['name', 'uplink', 'qemu', 'bridge', 'dhcp', 'ipv6', 'vms', 'onStop']);
  assert.deepEqual(Object.keys(r.bridge), ['name', 'mac', 'veth', 'ipv4', 'ipv6', 'stp', 'adopt']);
  assert.deepEqual(Object.keys(r.vms[1]!), [
    'name', 'mac', 'ipv4', 'ipv6', 'tap', 'memoryMiB', 'cpus', 'accel', 'machine', 'sandbox', 'kernel', 'initrd', 'append', 'disks', 'forwards', 'autostart', 'restart', 'adopt', 'isolation', 'linkLocal',
  ]);
});

test('defaults of a minimal host file', () => {
  const r = resolveHost(
    {
      uplink: 'eth0',
      bridge: { name: 'br0', ipv4: '10.1.2.1/24' },
      ipv6: { prefix: '2001:db8::/64', mode: 'proxy' },
      dhcp: { range: ['10.1.2.10', '10.1.2.20'] },
      vms: [{ name: 'a', ipv4: '10.1.2.5', disk: { file: '/srv/a.img' }, forwards: [{ port: [8000, 8009], toPort: 9000, protocol: 'udp' }] }],
    },
    '/etc/vmhost',
  );
  assert.deepEqual(r, {
    name: 'host',
    uplink: 'eth0',
    qemu: { user: 'auto' },
    bridge: {
      name: 'br0',
      // a stable MAC from the host's and the bridge's names: a stable link-local address
      mac: bridgeMac('host', 'br0'),
      ipv4: { family: 4, address: '10.1.2.1', prefixLength: 24, cidr: '10.1.2.1/24', network: '10.1.2.0/24' },
      stp: false,
      adopt: false,
    },
    dhcp: { range: ['10.1.2.10', '10.1.2.20'], leaseTime: '12h' },
    ipv6: {
      prefix: { family: 6, address: '2001:db8::', prefixLength: 64, cidr: '2001:db8::/64', network: '2001:db8::/64' },
      mode: 'proxy',
      acceptRa: false,
      learn: false,
      learnLimit: 16,
      proxy: { maxConnections: 256, maxConnectionsPerSource: 32, maxTotalConnections: 4096, idleTimeoutMs: 300000, connectTimeoutMs: 5000, firstByteTimeoutMs: 10000, maxLifetimeMs: 3600000 },
    },
    vms: [
      {
        name: 'a',
        mac: stableMac('a', 0),
        ipv4: '10.1.2.5',
        tap: 'krr-a', // the tag of the default host name 'host'
        memoryMiB: 256,
        cpus: 1,
        accel: 'auto',
        machine: 'q35',
        sandbox: 'auto',
        disks: [{ file: '/srv/a.img', format: 'qcow2', cache: 'writeback', readOnly: false }],
        forwards: [{ protocol: 'udp', port: [8000, 8009], toPort: 9000 }],
        autostart: true,
        restart: 'on-failure',
        adopt: false,
        isolation: true,
        linkLocal: 'eui64',
      },
    ],
    onStop: 'shutdown',
  });
  // no vms at all; null (an empty YAML value) counts as left out
  const bare = parseHostFile('uplink: eth0\nbridge: { name: br0, ipv4: 10.0.0.1/8 }\nvms:\ndhcp: ~\n', { baseDir: '/x' });
  assert.deepEqual(bare.vms, []);
  assert.equal('dhcp' in bare, false);
  assert.equal('ipv6' in bare, false);
});

test('addresses are canonicalised; YAML numbers for leaseTime are taken as seconds', () => {
  const r = resolveSeed((h) => {
    h.bridge.ipv6 = '2001:0DB8:0008:5688:0:0:0:1/64';
    h.ipv6!.prefix = '2001:db8:8:5688:0::/64';
    vm(h, 0).ipv6 = '2001:DB8:8:5688::0100';
    (h.dhcp as Record<string, unknown>).leaseTime = 3600;
  });
  assert.equal(r.bridge.ipv6!.cidr, '2001:db8:8:5688::1/64');
  assert.equal(r.ipv6!.prefix.address, '2001:db8:8:5688::');
  assert.equal(r.vms[0]!.ipv6, '2001:db8:8:5688::100');
  assert.equal(r.dhcp!.leaseTime, '3600');
  for (const lt of ['30m', '3600', 'infinite', '2w']) assert.equal(resolveSeed((h) => (h.dhcp!.leaseTime = lt)).dhcp!.leaseTime, lt);
  // upstream DNS servers: canonical text, both families; left out by default
  assert.equal('dnsServers' in r.dhcp!, false);
  const s = resolveSeed((h) => (h.dhcp!.dnsServers = ['198.51.100.53', '2001:DB8::0053']));
  assert.deepEqual(s.dhcp!.dnsServers, ['198.51.100.53', '2001:db8::53']);
});

test('relative paths are resolved against baseDir, absolute ones kept', () => {
  const r = resolveSeed((h) => {
    vm(h, 0).kernel = 'k/bzImage';
    vm(h, 0).disk = ['a.qcow2', { file: '/abs/b.raw', format: 'raw', readOnly: true }];
  });
  assert.equal(r.vms[0]!.kernel, join(seedDir, 'k/bzImage'));
  assert.deepEqual(r.vms[0]!.disks, [
    { file: join(seedDir, 'a.qcow2'), format: 'qcow2', cache: 'writeback', readOnly: false },
    { file: '/abs/b.raw', format: 'raw', cache: 'writeback', readOnly: true },
  ]);
  const rel = resolveHost(seedHost(), 'relative/dir');
  assert.equal(rel.vms[0]!.disks[0]!.file, join(process.cwd(), 'relative/dir/images/web.qcow2'));
});

test('disk: { base, size }: the base resolved as a path, size in bytes or binary units; base images can be shared, never written as a disk', () => {
  const r = resolveSeed((h) => {
    vm(h, 0).disk = { base: 'images/debian-12.qcow2', size: '8G' };
    vm(h, 1).disk = [{ base: '/srv/base.raw', format: 'raw', cache: 'none' }, { base: 'images/debian-12.qcow2', size: 1024 * 1024 * 1024 }];
  });
  assert.deepEqual(r.vms[0]!.disks, [{ file: join(seedDir, 'images/debian-12.qcow2'), format: 'qcow2', cache: 'writeback', readOnly: false, base: { sizeBytes: 8 * 1024 ** 3 } }]);
  assert.deepEqual(r.vms[1]!.disks, [
    { file: '/srv/base.raw', format: 'raw', cache: 'none', readOnly: false, base: {} },
    { file: join(seedDir, 'images/debian-12.qcow2'), format: 'qcow2', cache: 'writeback', readOnly: false, base: { sizeBytes: 1024 ** 3 } },
  ]);
  for (const [size, bytes] of [['512M', 512 * 1024 ** 2], ['1T', 1024 ** 4], ['2048K', 2 * 1024 ** 2], [4096 * 1024, 4096 * 1024]] as const) {
    assert.equal(resolveSeed((h) => (vm(h, 0).disk = { base: 'b.qcow2', size })).vms[0]!.disks[0]!.base!.sizeBytes, bytes);
  }
  for (const size of ['8 G', '8g', '8GiB', '-1G', '0', '1000', 1000, 1.5, '1K', '65T', true]) {
    rejects(() => resolveSeed((h) => (vm(h, 0).disk = { base: 'b.qcow2', size } as never)), 'vms[0].disk.size');
  }
  const both = rejects(() => resolveSeed((h) => (vm(h, 0).disk = { base: 'b.qcow2', file: 'x.qcow2' } as never)), 'vms[0].disk');
  assert.match(both.message, /file \(the disk itself\) or base .*not both/);
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = { base: 'b.qcow2', readOnly: true } as never)), 'vms[0].disk.readOnly');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = { base: '' })), 'vms[0].disk.base', 'non-empty path');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = { base: 'b.qcow2', format: 'vmdk' } as never)), 'vms[0].disk.format');
  // a base image is read by every VM made from it; no VM may write it as its own disk
  const taken = rejects(() => resolveSeed((h) => {
    vm(h, 0).disk = { base: 'images/mail.img', format: 'raw' };
  }), 'vms[1].disk[0].file', 'already used by vms[0].disk.base');
  assert.match(taken.message, /only read-only disks and base images can be shared/);
});

test('unknown keys are errors naming their path, with a suggestion', () => {
  const e = rejects(() => resolveSeed((h) => ((vm(h, 0) as unknown as Record<string, unknown>).memmory = 512)), 'vms[0].memmory', '512');
  assert.match(e.message, /unknown key 'memmory' \(did you mean 'memoryMiB'\?\)/);
  rejects(() => resolveSeed((h) => (h.vm = [])), 'vm', "did you mean 'vms'");
  rejects(() => resolveSeed((h) => ((h.bridge.veth as Record<string, unknown>).peerr = 'x')), 'bridge.veth.peerr');
  rejects(() => resolveSeed((h) => ((vm(h, 1).forwards![0] as unknown as Record<string, unknown>).proto = 'udp')), 'vms[1].forwards[0].proto');
  rejects(() => resolveSeed((h) => ((h.ipv6 as Record<string, unknown>).proxy = { maxConn: 5 })), 'ipv6.proxy.maxConn');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = { file: 'x', fromat: 'raw' } as never)), 'vms[0].disk.fromat');
  rejects(() => parseHostFile('uplink: eth0\n__proto__: { x: 1 }\nbridge: { name: br0, ipv4: 10.0.0.1/8 }\n', { baseDir: '/' }), '__proto__');
  rejects(() => resolveHost(JSON.parse('{"__proto__": {"x": 1}}'), '/'), '__proto__');
});

test('wrong types and missing required fields are errors', () => {
  rejects(() => resolveSeed((h) => ((h as Record<string, unknown>).uplink = 5)), 'uplink', '5');
  rejects(() => resolveSeed((h) => delete (h as Partial<HostFile>).uplink), 'uplink', 'required');
  rejects(() => resolveSeed((h) => ((h as Record<string, unknown>).vms = { web: {} })), 'vms', 'expected a list');
  rejects(() => resolveSeed((h) => ((vm(h, 0) as unknown as Record<string, unknown>).memoryMiB = '512')), 'vms[0].memoryMiB', '"512"');
  rejects(() => resolveSeed((h) => (vm(h, 0).memoryMiB = 8)), 'vms[0].memoryMiB', '16 to 1048576');
  rejects(() => resolveSeed((h) => (vm(h, 0).cpus = 65)), 'vms[0].cpus', '65');
  rejects(() => resolveSeed((h) => ((vm(h, 0) as unknown as Record<string, unknown>).autostart = 'yes')), 'vms[0].autostart', '"yes"');
  rejects(() => resolveSeed((h) => ((vm(h, 0) as unknown as Record<string, unknown>).accel = 'hvf')), 'vms[0].accel', '"hvf"');
  rejects(() => resolveSeed((h) => (vm(h, 0).forwards![0]!.port = '80' as never)), 'vms[0].forwards[0].port', '"80"');
  rejects(() => resolveSeed((h) => (vm(h, 0).forwards![0]!.protocol = 'sctp' as never)), 'vms[0].forwards[0].protocol', '"sctp"');
  rejects(() => resolveSeed((h) => (h.ipv6!.mode = 'bridged' as never)), 'ipv6.mode', '"bridged"');
  rejects(() => resolveSeed((h) => (h.ipv6!.proxy = { idleTimeoutMs: 0 })), 'ipv6.proxy.idleTimeoutMs', '0');
  rejects(() => resolveSeed((h) => (h.ipv6!.proxy = { maxConnections: 1_000_001 })), 'ipv6.proxy.maxConnections', '1000001');
  rejects(() => resolveSeed((h) => (h.ipv6!.proxy = { maxConnectionsPerSource: 0 })), 'ipv6.proxy.maxConnectionsPerSource', '0');
  rejects(() => resolveSeed((h) => (h.ipv6!.proxy = { maxTotalConnections: 1.5 })), 'ipv6.proxy.maxTotalConnections', '1.5');
  rejects(() => resolveSeed((h) => (h.ipv6!.proxy = { firstByteTimeoutMs: 2 ** 31 })), 'ipv6.proxy.firstByteTimeoutMs');
  rejects(() => resolveSeed((h) => (h.ipv6!.proxy = { maxLifetimeMs: -1 })), 'ipv6.proxy.maxLifetimeMs', '-1');
  rejects(() => resolveSeed((h) => (h.dhcp!.leaseTime = '12 hours')), 'dhcp.leaseTime', '"12 hours"');
  rejects(() => resolveSeed((h) => (h.dhcp!.domain = 'Lan_1')), 'dhcp.domain', '"Lan_1"');
  rejects(() => resolveSeed((h) => (h.dhcp!.domain = `${'a'.repeat(64)}.lan`)), 'dhcp.domain');
  rejects(() => resolveSeed((h) => (h.dhcp!.dnsServers = ['dns.example'])), 'dhcp.dnsServers[0]', '"dns.example"');
  rejects(() => resolveSeed((h) => (h.dhcp!.dnsServers = '198.51.100.53' as never)), 'dhcp.dnsServers', 'expected a list');
  rejects(() => resolveSeed((h) => (h.dhcp!.dnsServers = ['198.51.100.53/32'])), 'dhcp.dnsServers[0]', 'without a prefix length');
  rejects(() => resolveSeed((h) => (h.name = 'my-host')), 'name', '"my-host"');
  rejects(() => resolveSeed((h) => (h.name = 'a'.repeat(17))), 'name', '16');
  rejects(() => parseHostFile('uplink: eth0\nbridge:\n', { baseDir: '/' }), 'bridge', 'required');
  rejects(() => resolveHost([], '/'), '', 'must be a mapping');
  rejects(() => parseHostFile('', { baseDir: '/' }), '', 'must be a mapping');
});

test('overlapping forwards (same protocol, any VMs) name both paths', () => {
  const e = rejects(
    () => resolveSeed((h) => (vm(h, 1).forwards![0]!.port = 80)),
    'vms[1].forwards[0].port',
    'port 80/tcp is already forwarded by vms[0].forwards[1]',
  );
  assert.match(e.message, /^invalid host file: vms\[1\]\.forwards\[0\]\.port: 80: port 80\/tcp is already forwarded by vms\[0\]\.forwards\[1\]$/);
  // within one VM, and by ranges
  rejects(
    () => resolveSeed((h) => vm(h, 0).forwards!.push({ port: [1200, 1300] })),
    'vms[0].forwards[2].port',
    'ports 1200-1300/tcp overlap port 1234/tcp forwarded by vms[0].forwards[0]',
  );
  rejects(
    () => resolveSeed((h) => {
      vm(h, 0).forwards = [{ port: [8000, 8010] }];
      vm(h, 1).forwards = [{ port: [8010, 8020], toPort: 9000 }];
    }),
    'vms[1].forwards[0].port',
    'ports 8010-8020/tcp overlap ports 8000-8010/tcp forwarded by vms[0].forwards[0]',
  );
  rejects(
    () => resolveSeed((h) => (vm(h, 1).forwards = [{ port: 8005, protocol: 'tcp' }, { port: [8000, 8010] }])),
    'vms[1].forwards[1].port',
    'vms[1].forwards[0]',
  );
  // the same port with another protocol is fine
  const r = resolveSeed((h) => vm(h, 1).forwards!.push({ port: 80, protocol: 'udp' }));
  assert.deepEqual(r.vms[1]!.forwards[2], { protocol: 'udp', port: 80, toPort: 80 });
});

test('reversed ranges and port bounds', () => {
  rejects(() => resolveSeed((h) => (vm(h, 0).forwards![0]!.port = [90, 80])), 'vms[0].forwards[0].port', '[90,80]');
  rejects(() => resolveSeed((h) => (h.dhcp!.range = ['192.168.0.150', '192.168.0.100'])), 'dhcp.range', '192.168.0.150');
  rejects(() => resolveSeed((h) => (vm(h, 0).forwards![0]!.port = 0)), 'vms[0].forwards[0].port', '1 to 65535');
  rejects(() => resolveSeed((h) => (vm(h, 0).forwards![0]!.port = [1, 70000])), 'vms[0].forwards[0].port', '70000');
  rejects(() => resolveSeed((h) => (vm(h, 0).forwards![0]!.toPort = 65536)), 'vms[0].forwards[0].toPort', '65536');
  rejects(
    () => resolveSeed((h) => (vm(h, 0).forwards![0] = { port: [2000, 2010], toPort: 65530 })),
    'vms[0].forwards[0].toPort',
    '65530',
  );
  // [p, p] is a valid one-port range, kept as written
  assert.deepEqual(resolveSeed((h) => (vm(h, 0).forwards![0] = { port: [2000, 2000] })).vms[0]!.forwards[0], {
    protocol: 'tcp', port: [2000, 2000], toPort: 2000,
  });
});

test('IPv4 addresses outside the bridge subnet, and its special addresses', () => {
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv4 = '10.0.0.5')), 'vms[1].ipv4', '"10.0.0.5": not inside the bridge subnet 192.168.0.0/24');
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv4 = '192.168.0.0')), 'vms[1].ipv4', 'network address');
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv4 = '192.168.0.255')), 'vms[1].ipv4', 'broadcast address');
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv4 = '192.168.0.1')), 'vms[1].ipv4', "bridge's own address");
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv4 = '192.168.0.20/24')), 'vms[1].ipv4', 'without a prefix length');
  rejects(() => resolveSeed((h) => (h.dhcp!.range = ['192.168.0.100', '192.168.1.150'])), 'dhcp.range[1]', '192.168.1.150');
  rejects(() => resolveSeed((h) => (h.dhcp!.range = ['192.168.0.1', '192.168.0.150'])), 'dhcp.range[0]', "bridge's own address");
  rejects(() => resolveSeed((h) => (h.bridge.ipv4 = '192.168.0.120/24')), 'dhcp.range', 'includes the bridge');
  rejects(() => resolveSeed((h) => (h.dhcp!.range = ['192.168.0.100'] as never)), 'dhcp.range', '["192.168.0.100"]');
  rejects(() => resolveSeed((h) => (h.bridge.ipv4 = '192.168.0.0/24')), 'bridge.ipv4', 'network address of 192.168.0.0/24');
  rejects(() => resolveSeed((h) => (h.bridge.ipv4 = '192.168.0.255/24')), 'bridge.ipv4', 'broadcast');
  rejects(() => resolveSeed((h) => (h.bridge.ipv4 = '192.168.0.1')), 'bridge.ipv4', 'prefix length');
  rejects(() => resolveSeed((h) => (h.bridge.ipv4 = '192.168.0.1/31')), 'bridge.ipv4', 'at most 30');
  rejects(() => resolveSeed((h) => (h.bridge.ipv4 = '2001:db8::1/64')), 'bridge.ipv4', 'IPv4');
  rejects(() => resolveSeed((h) => (h.publicIPv4 = '203.0.113.7/32')), 'publicIPv4', '203.0.113.7/32');
  assert.equal(resolveSeed((h) => (h.publicIPv4 = '203.0.113.7')).publicIPv4, '203.0.113.7');
});

test('IPv6 addresses outside the prefix, and the ipv6 section rules', () => {
  rejects(
    () => resolveSeed((h) => (vm(h, 0).ipv6 = '2001:db8:9::100')),
    'vms[0].ipv6',
    '"2001:db8:9::100": not inside ipv6.prefix 2001:db8:8:5688::/64',
  );
  rejects(() => resolveSeed((h) => (h.bridge.ipv6 = '2001:db8:9::1/64')), 'bridge.ipv6', '2001:db8:9::1/64');
  rejects(() => resolveSeed((h) => (h.bridge.ipv6 = '2001:db8:8:5688::1/48')), 'bridge.ipv6', 'not inside ipv6.prefix');
  rejects(() => resolveSeed((h) => (h.bridge.ipv6 = '2001:db8:8:5688::1')), 'bridge.ipv6', 'prefix length');
  rejects(() => resolveSeed((h) => (vm(h, 0).ipv6 = '2001:db8:8:5688::1')), 'vms[0].ipv6', "bridge's own address");
  rejects(() => resolveSeed((h) => (vm(h, 0).ipv6 = '192.168.0.9')), 'vms[0].ipv6', 'IPv6');
  rejects(() => resolveSeed((h) => (h.ipv6!.prefix = '2001:db8:8:5688::1/64')), 'ipv6.prefix', 'host bits');
  rejects(() => resolveSeed((h) => delete h.ipv6), 'vms[0].ipv6', 'needs the ipv6 section');
  rejects(() => resolveSeed((h) => delete h.bridge.ipv6), 'bridge.ipv6', "ipv6.mode 'routed'");
  // plan B needs no bridge address; a bridge address without the ipv6 section is allowed
  assert.equal(resolveSeed((h) => ((h.ipv6!.mode = 'proxy'), delete h.bridge.ipv6)).bridge.ipv6, undefined);
  const noV6 = resolveSeed((h) => {
    delete h.ipv6;
    for (const v of h.vms!) delete v.ipv6;
  });
  assert.equal(noV6.bridge.ipv6!.cidr, '2001:db8:8:5688::1/64');
  assert.equal(noV6.ipv6, undefined);
});

test('the service fields: onStop, vms[].restart, ipv6.learn and learnLimit (routed mode only; learn only without isolation)', () => {
  const h = resolveSeed((x) => {
    x.onStop = 'keep';
    vm(x, 0).restart = 'always';
    vm(x, 1).restart = 'never';
    x.ipv6!.learn = true;
    x.ipv6!.learnLimit = 4;
    vm(x, 0).isolation = false;
    vm(x, 1).isolation = false;
  });
  assert.deepEqual([h.onStop, h.vms.map((v) => v.restart), h.ipv6?.learn, h.ipv6?.learnLimit], ['keep', ['always', 'never'], true, 4]);
  rejects(() => resolveSeed((x) => (x.onStop = 'stop' as never)), 'onStop', "expected one of 'shutdown', 'keep'");
  rejects(() => resolveSeed((x) => (vm(x, 1).restart = 'unless-stopped' as never)), 'vms[1].restart', "'always', 'on-failure', 'never'");
  rejects(() => resolveSeed((x) => (x.ipv6!.learnLimit = 0)), 'ipv6.learnLimit', 'from 1 to 1024');
  rejects(() => resolveSeed((x) => (x.ipv6!.learn = 'yes' as never)), 'ipv6.learn', 'true or false');
  rejects(() => resolveSeed((x) => ((x.ipv6!.mode = 'proxy'), (x.ipv6!.learn = true))), 'ipv6.learn', "needs ipv6.mode 'routed'");
  // an isolated VM sends only from its own addresses: its other ones would never reach the host
  const e = rejects(() => resolveSeed((x) => ((x.ipv6!.learn = true), (vm(x, 0).isolation = false))), 'ipv6.learn');
  assert.match(e.message, /sends only from its own addresses.*set isolation: false on vms\[1\] \(mail\), or leave learn out/);
  assert.doesNotMatch(e.message, /vms\[0\]/, 'web, without isolation, is not named');
});

test('ipv6: auto is the EUI-64 address of the MAC in the /64 prefix (what SLAAC forms), then checked like a written address', () => {
  const r = resolveSeed((h) => (vm(h, 0).ipv6 = 'auto'));
  // de:ad:be:ef:32:10 -> dcad:beff:feef:3210 (the universal/local bit flipped, ff:fe inserted)
  assert.equal(r.vms[0]!.ipv6, '2001:db8:8:5688:dcad:beff:feef:3210');
  assert.equal(r.vms[0]!.ipv6, slaacAddress('2001:db8:8:5688::/64', 'de:ad:be:ef:32:10'));
  // the default MAC of a VM without one
  const m = resolveSeed((h) => (vm(h, 1).ipv6 = 'auto'));
  assert.equal(m.vms[1]!.ipv6, slaacAddress('2001:db8:8:5688::/64', stableMac('mail', 0)));
  assert.equal(resolveSeed((h) => ((h.ipv6!.mode = 'proxy'), (vm(h, 0).ipv6 = 'auto'))).vms[0]!.ipv6, '2001:db8:8:5688:dcad:beff:feef:3210');
  rejects(() => resolveSeed((h) => ((h.ipv6!.prefix = '2001:db8:8::/48'), (vm(h, 0).ipv6 = 'auto'))), 'vms[0].ipv6', 'auto needs ipv6.prefix to be a /64');
  rejects(() => resolveSeed((h) => (delete h.ipv6, (vm(h, 0).ipv6 = 'auto'))), 'vms[0].ipv6', 'needs the ipv6 section');
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv6 = '2001:db8:8:5688:dcad:beff:feef:3210', (vm(h, 0).ipv6 = 'auto'))), 'vms[1].ipv6', 'already used by vms[0].ipv6');
  rejects(() => resolveSeed((h) => (vm(h, 0).ipv6 = 'Auto')), 'vms[0].ipv6', 'expected an IPv6 address');
});

test('duplicate MACs (among VMs and with the bridge)', () => {
  rejects(() => resolveSeed((h) => (vm(h, 1).mac = 'DE:AD:BE:EF:32:10')), 'vms[1].mac', 'MAC de:ad:be:ef:32:10 is already used by vms[0].mac');
  rejects(() => resolveSeed((h) => (vm(h, 0).mac = 'de-ad-be-ef-24-31')), 'vms[0].mac', 'already used by bridge.mac');
  // a default MAC counts too
  rejects(() => resolveSeed((h) => (vm(h, 0).mac = stableMac('mail', 0))), 'vms[1].mac', 'the default for this name');
});

test('duplicate IP addresses and VM names', () => {
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv4 = '192.168.0.100')), 'vms[1].ipv4', 'IPv4 address 192.168.0.100 is already used by vms[0].ipv4');
  rejects(() => resolveSeed((h) => (vm(h, 1).ipv6 = '2001:db8:8:5688:0::100')), 'vms[1].ipv6', 'already used by vms[0].ipv6');
  rejects(() => resolveSeed((h) => (vm(h, 1).name = 'web')), 'vms[1].name', 'VM name web is already used by vms[0].name');
});

test('names too long: VM names (TAP <tag>-<name>) and interface names', () => {
  rejects(() => resolveSeed((h) => (vm(h, 0).name = 'abcdefghijkl')), 'vms[0].name', '"abcdefghijkl": longer than 11 characters');
  assert.equal(resolveSeed((h) => (vm(h, 0).name = 'abcdefghijk')).vms[0]!.tap, 'vdu-abcdefghijk');
  rejects(() => resolveSeed((h) => (vm(h, 0).name = 'Web')), 'vms[0].name', '1 to 11 characters');
  rejects(() => resolveSeed((h) => (vm(h, 0).name = '1web')), 'vms[0].name', 'starting with a letter');
  rejects(() => resolveSeed((h) => (h.bridge.name = 'abcdefghijklmnop')), 'bridge.name', '"abcdefghijklmnop": longer than 15 bytes');
  rejects(() => resolveSeed((h) => (h.uplink = 'ééééééééé')), 'uplink', 'longer than 15 bytes'); // 9 characters, 18 bytes
  rejects(() => resolveSeed((h) => (h.bridge.veth!.peer = 've th')), 'bridge.veth.peer', '"ve th"');
});

test('interface names must be distinct (uplink, bridge, veth ends, TAPs)', () => {
  rejects(() => resolveSeed((h) => (h.bridge.name = 'eth0')), 'bridge.name', 'interface name eth0 is already used by uplink');
  rejects(() => resolveSeed((h) => (h.bridge.veth = { name: 'veth0', peer: 'veth0' })), 'bridge.veth.peer', 'already used by bridge.veth.name');
  rejects(() => resolveSeed((h) => (h.uplink = 'vdu-web')), 'vms[0].name', 'TAP name vdu-web is already used by uplink');
});

test("a VM's TAP is <tag>-<name>: the tag three letters from the host's name, the same on every resolve, another for another host", () => {
  const tap = (name: string | undefined, vmName = 'vma'): string =>
    resolveHost({ ...(name !== undefined ? { name } : {}), uplink: 'eth0', bridge: { name: 'br0', ipv4: '10.1.2.1/24' }, vms: [{ name: vmName, ipv4: '10.1.2.5', disk: '/srv/a.img' }] }, '/x').vms[0]!.tap;
  assert.equal(tap('ha'), 'doe-vma');
  assert.equal(tap('hb'), 'aip-vma');
  assert.equal(tap(undefined), 'krr-vma');
  assert.equal(tap('ha'), tap('ha'));
  assert.equal(tap('ha', 'abcdefghijk').length, 15);
  // the tag is sha-256 based: the first 4 bytes modulo 26^3, as three letters
  for (const name of ['ha', 'hb', 'seed', 'host', 'x', 'A_long_name_0123']) {
    const n = createHash('sha256').update(name).digest().readUInt32BE(0) % 17576;
    const want = [Math.floor(n / 676), Math.floor(n / 26) % 26, n % 26].map((d) => String.fromCharCode(97 + d)).join('');
    assert.equal(tapTag(name), want, name);
  }
  // 200 host names: tags are three letters, and differ for most of them (17,576 tags)
  const tags = new Set(Array.from({ length: 200 }, (_, i) => tapTag(`host${i}`)));
  for (const t of tags) assert.match(t, /^[a-z]{3}$/);
  assert.ok(tags.size >= 195, `${tags.size} distinct tags of 200`);
});

test('adopt: bridge.adopt and vms[].adopt are booleans, false by default', () => {
  const r = resolveSeed((h) => {
    h.bridge.adopt = true;
    vm(h, 1).adopt = true;
  });
  assert.equal(r.bridge.adopt, true);
  assert.deepEqual(r.vms.map((v) => v.adopt), [false, true]);
  // a bridge that may be adopted gets no default MAC (a hand-made one keeps its own); a written one stays
  const noMac = resolveSeed((h) => {
    delete h.bridge.mac;
    h.bridge.adopt = true;
  });
  assert.equal(noMac.bridge.mac, undefined);
  const notAdopted = resolveSeed((h) => delete h.bridge.mac);
  assert.equal(notAdopted.bridge.mac, bridgeMac(notAdopted.name, notAdopted.bridge.name));
  assert.equal(resolveSeed((h) => (h.bridge.mac = '02:00:00:00:10:01')).bridge.mac, '02:00:00:00:10:01');
  rejects(() => resolveSeed((h) => ((h.bridge as unknown as Record<string, unknown>).adopt = 'yes')), 'bridge.adopt', '"yes"');
  rejects(() => resolveSeed((h) => ((vm(h, 0) as unknown as Record<string, unknown>).adopt = 1)), 'vms[0].adopt', '1');
});

test('multicast and malformed MACs', () => {
  rejects(() => resolveSeed((h) => (vm(h, 0).mac = '01:00:5e:00:00:01')), 'vms[0].mac', '"01:00:5e:00:00:01": is a multicast address');
  rejects(() => resolveSeed((h) => (h.bridge.mac = 'ff:ff:ff:ff:ff:ff')), 'bridge.mac', 'multicast');
  rejects(() => resolveSeed((h) => (vm(h, 0).mac = 'de:ad:be:ef:32')), 'vms[0].mac', 'six hex pairs');
});

test('boot: initrd and append need a kernel; a VM needs a kernel or a disk; writable disks are not shared', () => {
  rejects(() => resolveSeed((h) => delete vm(h, 1).kernel), 'vms[1].initrd', 'needs kernel');
  rejects(() => resolveSeed((h) => delete vm(h, 0).disk), 'vms[0]', 'a VM needs a kernel or at least one disk');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = [])), 'vms[0]', '"web"');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = '')), 'vms[0].disk', 'non-empty path');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = [{ file: 'x.img', format: 'vmdk' as never }])), 'vms[0].disk[0].format', '"vmdk"');
  rejects(() => resolveSeed((h) => (vm(h, 0).disk = 'images/mail.img')), 'vms[1].disk[0].file', 'already used by vms[0].disk');
  // read-only disks may be shared
  const r = resolveSeed((h) => {
    vm(h, 0).disk = [{ file: 'images/base.img', readOnly: true }, 'images/web.qcow2'];
    vm(h, 1).disk = { file: 'images/base.img', readOnly: true };
  });
  assert.equal(r.vms[1]!.disks[0]!.file, r.vms[0]!.disks[0]!.file);
  // a kernel alone is enough
  assert.deepEqual(resolveSeed((h) => delete vm(h, 1).disk).vms[1]!.disks, []);
});

test('bad YAML and JSON syntax: path "" with line and column', () => {
  const yaml = 'uplink: eth0\nbridge:\n  name: br0\n  ipv4: 192.168.0.1/24: x\nvms: []\n';
  const e = rejects(() => parseHostFile(yaml, { baseDir: '/', source: 'host.yaml' }), '', 'line 4');
  assert.match(e.message, /^invalid host file host\.yaml: YAML syntax error at line 4, column \d+: .*"ipv4: 192\.168\.0\.1\/24: x"$/);
  assert.equal(e.source, 'host.yaml');
  // a key given twice: a problem at its path (YAML and JSON alike: JSON.parse would keep the last)
  rejects(() => parseHostFile('uplink: eth0\nuplink: eth1\n', { baseDir: '/' }), 'uplink', 'line 2, column 1; first at line 1, column 1');
  rejects(() => parseHostFile('{"uplink": "eth0",\n "bridge": {"name": "br0", "name": "br1"}}', { format: 'json', baseDir: '/' }), 'bridge.name', 'line 2, column 28; first at line 2, column 13');
  const j = rejects(() => parseHostFile('{\n  "uplink": "eth0",\n}\n', { format: 'json', baseDir: '/' }), '', 'JSON syntax error at line 3, column 1');
  assert.equal(j.problems.length, 1);
  rejects(() => parseHostFile('uplink: *eth\n', { baseDir: '/' }), '', 'alias');
});

test('all problems are collected (unknown keys of a mapping first), one per line', () => {
  const text = [
    'uplink: eth0',
    'bridge: { name: br0, ipv4: 192.168.0.1/24 }',
    'vms:',
    '  - name: web',
    '    ipv4: 10.0.0.5',
    '    memmory: 512',
    '    disk: web.qcow2',
    '    forwards: [{ port: 80 }]',
    '  - name: this-is-too-long',
    '    mac: 01:00:5e:00:00:01',
    '    ipv4: 192.168.0.20',
    '    disk: other.qcow2',
    '    forwards: [{ port: [79, 81] }]',
  ].join('\n');
  const e = rejects(() => parseHostFile(text, { baseDir: '/srv', source: 'h.yaml' }), 'vms[0].memmory', '512');
  assert.deepEqual(
    e.problems.map((p) => [p.path, p.value]),
    [
      ['vms[0].memmory', 512],
      ['vms[0].ipv4', '10.0.0.5'],
      ['vms[1].name', 'this-is-too-long'],
      ['vms[1].mac', '01:00:5e:00:00:01'],
      ['vms[1].forwards[0].port', [79, 81]],
    ],
  );
  const lines = e.message.split('\n');
  assert.equal(lines[0], 'invalid host file h.yaml (5 problems):');
  assert.equal(lines.length, 6);
  assert.equal(lines[5], '  vms[1].forwards[0].port: [79,81]: ports 79-81/tcp overlap port 80/tcp forwarded by vms[0].forwards[0]');
  for (const [i, p] of e.problems.entries()) assert.ok(lines[i + 1]!.includes(p.path) && lines[i + 1]!.includes(p.message));
  assert.equal(e.value, 512);
});

test('loadHostFile: an unreadable file is a SystemError', async () => {
  await assert.rejects(loadHostFile(join(seedDir, 'no-such-file.yaml')), (err: unknown) => {
    assert.ok(err instanceof SystemError);
    assert.equal(err.code, 'ENOENT');
    assert.match(err.message, /cannot read host file .*no-such-file\.yaml/);
    return true;
  });
});

test('limits: the boundaries themselves are accepted (no false refusal)', () => {
  // lease times from dnsmasq's 2 minutes to a year, or infinite; a YAML number is seconds
  for (const lt of ['2m', '120', '120s', '365d', '52w', '8760h', 'infinite']) assert.equal(resolveSeed((h) => (h.dhcp!.leaseTime = lt)).dhcp!.leaseTime, lt);
  assert.equal(resolveSeed((h) => ((h.dhcp as Record<string, unknown>).leaseTime = 31_536_000)).dhcp!.leaseTime, '31536000');
  rejects(() => resolveSeed((h) => ((h.dhcp as Record<string, unknown>).leaseTime = 31_536_001)), 'dhcp.leaseTime', 'to a year');
  // bridge subnets /8 to /30; a /30 has two host addresses (bridge and one VM)
  const wide = resolveHost({ uplink: 'eth0', bridge: { name: 'br0', ipv4: '10.0.0.1/8' }, vms: [{ name: 'a', ipv4: '10.200.0.1', kernel: '/k' }] }, '/');
  assert.equal(wide.bridge.ipv4.network, '10.0.0.0/8');
  assert.equal(resolveHost({ uplink: 'eth0', bridge: { name: 'br0', ipv4: '10.0.0.1/30' }, vms: [{ name: 'a', ipv4: '10.0.0.2', kernel: '/k' }] }, '/').vms[0]!.ipv4, '10.0.0.2');
  // upstream DNS on the host's own loopback and a cloud's link-local resolver
  assert.deepEqual(resolveSeed((h) => (h.dhcp!.dnsServers = ['127.0.0.53', '169.254.169.253', '::1'])).dhcp!.dnsServers, ['127.0.0.53', '169.254.169.253', '::1']);
  // ipv6.prefix /16 and /126
  for (const prefix of ['2001::/16', '2001:db8::/126']) {
    assert.equal(resolveSeed((h) => ((h.ipv6!.prefix = prefix), (h.ipv6!.mode = 'proxy'), delete h.bridge.ipv6, h.vms!.forEach((v) => delete v.ipv6))).ipv6!.prefix.network, prefix);
  }
  // a command line of 2047 printable bytes; paths with commas and spaces (QEMU gets them escaped)
  const long = `console=ttyS0 ${'q'.repeat(2047 - 14)}`;
  assert.equal(resolveSeed((h) => (vm(h, 1).append = long)).vms[1]!.append, long);
  rejects(() => resolveSeed((h) => (vm(h, 1).append = `${long}q`)), 'vms[1].append', 'longer than 2047 bytes');
  assert.equal(resolveSeed((h) => (vm(h, 1).kernel = '/srv/my images/vmlinuz,v2')).vms[1]!.kernel, '/srv/my images/vmlinuz,v2');
  // proxy mode: exactly 1024 proxied ports; UDP and VMs without IPv6 do not count
  const proxied = resolveSeed((h) => {
    h.ipv6!.mode = 'proxy';
    vm(h, 0).forwards = [{ port: [10_000, 11_021] }, { port: [20_000, 29_999], protocol: 'udp' }];
    vm(h, 1).forwards = [{ port: 25 }, { port: 587 }];
  });
  assert.equal(proxied.vms[0]!.forwards.length, 2);
  rejects(() => resolveSeed((h) => ((h.ipv6!.mode = 'proxy'), (vm(h, 0).forwards = [{ port: [10_000, 11_022] }]))), 'vms[1].forwards[1].port', 'at most 1024');
  // 1000 VMs (a /22 for their addresses) and the 4096 forwards of one VM resolve, in O(n log n)
  const many = resolveHost(
    { uplink: 'eth0', bridge: { name: 'br0', ipv4: '10.0.0.1/22' }, vms: Array.from({ length: 1000 }, (_, i) => ({ name: `v${i}`, ipv4: ip.nth('10.0.0.0/22', i + 2), kernel: '/k', forwards: i === 0 ? Array.from({ length: 4096 }, (_, j) => ({ port: 1 + 2 * j, toPort: 80 })) : [] })) },
    '/',
  );
  assert.equal(many.vms.length, 1000);
  assert.equal(many.vms[0]!.forwards.length, 4096);
  // VM names with '-' and forwards: the firewall group is the name with '_' (group names are letters, digits, '_')
  const dashed = resolveSeed((h) => (vm(h, 0).name = 'web-1'));
  assert.deepEqual([...new Set(firewallModel(dashed).portForwards!.map((f) => f.group))], ['web_1', 'mail']);
  assert.doesNotThrow(() => render(firewallModel(dashed)));
  // core YAML tags, JSON nested up to 32 levels, a YAML 1.2 directive, a file of exactly 1 MiB
  assert.equal(parseHostFile(readFileSync(seedYamlPath, 'utf8').replace('uplink: eth0', 'uplink: !!str eth0'), { baseDir: seedDir }).uplink, 'eth0');
  assert.equal(parseHostFile(`%YAML 1.2\n---\n${readFileSync(seedYamlPath, 'utf8')}`, { baseDir: seedDir }).name, 'seed');
  const seedText = readFileSync(seedYamlPath, 'utf8');
  assert.equal(parseHostFile(`${seedText}#`.padEnd(1024 * 1024, 'x'), { baseDir: seedDir }).name, 'seed');
  rejects(() => parseHostFile(`${seedText}#`.padEnd(1024 * 1024 + 1, 'x'), { baseDir: seedDir }), '', 'larger than 1048576 bytes');
  // the one key editors need and the validator ignores
  assert.equal(resolveSeed((h) => (h.$schema = 'https://unpkg.com/@vmhost/host@0.1.0/schema/host.schema.json')).name, 'seed');
  rejects(() => resolveSeed((h) => (h.$schema = 'x\ny')), '$schema', 'printable ASCII');
  const deepJson = JSON.stringify({ ...seedHostFile, vms: undefined }).replace(/}$/, `,"vms":[{"name":"a","ipv4":"192.168.0.9","kernel":"/k","disk":[{"file":"/x"}]}]}`);
  assert.equal(parseHostFile(deepJson, { format: 'json', baseDir: '/' }).vms[0]!.name, 'a');
});

test('depth: 32 levels pass nestingDepth, 33 do not; cycles and shared subtrees are cheap', () => {
  let v: unknown = 1;
  for (let i = 0; i < 32; i++) v = [v];
  assert.equal(nestingDepth(v, 32), 32);
  assert.equal(nestingDepth([v], 32), 33);
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assert.equal(nestingDepth(cyclic, 32), 33);
  // 2^40 paths through shared nodes, 41 levels: stops at the limit without walking them
  let shared: unknown = 'x';
  for (let i = 0; i < 40; i++) shared = [shared, shared];
  assert.equal(nestingDepth(shared, 32), 33);
  rejects(() => resolveHost(cyclic, '/'), '', 'deeper than 32 levels');
});

test('problem values and keys are shown safely: control, invisible and bidirectional characters escaped, long keys cut', () => {
  const e = rejects(() => resolveSeed((h) => ((h as Record<string, unknown>)['x\u001b[31m\u202e'] = 'a\u009b2J\u200b')), '["x\\u001b[31m\\u202e"]');
  assert.ok(!/[\u0000-\u001f\u007f-\u009f\u200b\u202e]/.test(e.message.replace(/\n/g, '')), e.message);
  assert.match(e.message, /"a\\u009b2J\\u200b"/);
  const big = rejects(() => resolveSeed((h) => ((h as Record<string, unknown>)['k'.repeat(10_000)] = 1)), `["${'k'.repeat(64)}..."]`);
  assert.ok(big.message.length < 500, big.message);
  // at most 100 problems are listed, then a count of the rest
  const flood = rejects(() => resolveSeed((h) => Object.assign(h, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x${i}`, i])))), 'x0');
  assert.equal(flood.problems.length, 101);
  assert.match(flood.problems[100]!.message, /and 200 more problem/);
});

test('isolation, linkLocal and bandwidth per VM: defaults, rates in bits per second, limits, the ifb name claimed', () => {
  const d = resolveSeed(() => undefined).vms[0]!;
  assert.deepEqual([d.isolation, d.linkLocal, d.bandwidth, d.ifb], [true, 'eui64', undefined, undefined]);
  const r = resolveSeed((h) => {
    Object.assign(vm(h, 0), { isolation: false, linkLocal: 'any', bandwidth: { toVm: '100mbit', fromVm: '64kbit' } });
    Object.assign(vm(h, 1), { bandwidth: { toVm: '1gbit' } });
  });
  assert.deepEqual([r.vms[0]!.isolation, r.vms[0]!.linkLocal, r.vms[0]!.bandwidth, r.vms[0]!.ifb], [false, 'any', { toVm: 100e6, fromVm: 64e3 }, 'vdu_web']);
  assert.deepEqual([r.vms[1]!.bandwidth, r.vms[1]!.ifb], [{ toVm: 1e9 }, undefined]);
  assert.deepEqual(resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: {} })).vms[0]!.bandwidth, undefined);
  rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { isolation: 'off' })), 'vms[0].isolation', '"off"');
  rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { linkLocal: 'stable' })), 'vms[0].linkLocal', '"stable"');
  for (const bad of ['100 mbit', '100Mbps', '100', '1.5mbit', '0mbit', 'fast']) rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: { toVm: bad } })), 'vms[0].bandwidth.toVm', JSON.stringify(bad));
  rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: { fromVm: 100_000_000 } })), 'vms[0].bandwidth.fromVm', '100000000');
  const low = rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: { toVm: '63kbit' } })), 'vms[0].bandwidth.toVm', '"63kbit"');
  assert.match(low.message, /expected 64kbit to 100gbit/);
  rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: { fromVm: '101gbit' } })), 'vms[0].bandwidth.fromVm', '"101gbit"');
  rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: { up: '1mbit' } })), 'vms[0].bandwidth.up', 'expected one of: toVm, fromVm');
  rejects(() => resolveSeed((h) => Object.assign(vm(h, 0), { bandwidth: '1mbit' })), 'vms[0].bandwidth', 'expected a mapping');
  // the ifb's name (`<tag>_<vm>`, beside the TAP `<tag>-<vm>`) is an interface name of the host like the TAPs
  rejects(() => resolveSeed((h) => {
    h.bridge.name = 'vdu_web';
    Object.assign(vm(h, 0), { bandwidth: { fromVm: '1mbit' } });
  }), 'vms[0].name', 'vdu_web');
  // the port chains of an isolated VM must fit, as forwards' do; isolation off lifts it for a VM without forwards
  const long = (iso: boolean) => () => resolveSeed((h) => {
    h.name = 'a_very_long_name';
    vm(h, 0).name = 'abcdefghijk';
    delete vm(h, 0).forwards;
    vm(h, 1).isolation = false;
    delete vm(h, 1).forwards;
    vm(h, 0).isolation = iso;
  });
  rejects(long(true), 'vms[0].name', 'abcdefghijk');
  assert.equal(long(false)().vms[0]!.name, 'abcdefghijk');
});
