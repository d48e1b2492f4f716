// The host file shown in packages/host/README.md is a valid host file, and it is the seed's host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firewallModel, parseHostFile } from '@vmhost/host';

const readme = readFileSync(join(import.meta.dirname, '../../packages/host/README.md'), 'utf8');

test('the README host file parses, with the seed\'s forwards, static leases and upstream DNS', () => {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(yaml, 'a yaml block in the README');
  const host = parseHostFile(yaml, { baseDir: '/srv/vmhost' });
  assert.equal(host.name, 'demo');
  assert.deepEqual(host.vms.map((v) => [v.name, v.ipv4, v.ipv6]), [['web', '192.168.0.100', '2001:db8:8:5688::100'], ['mail', '192.168.0.200', '2001:db8:8:5688::200']]);
  assert.equal(host.vms[0]!.kernel, '/srv/vmhost/guest/vmlinuz', 'paths relative to the host file');
  assert.deepEqual(host.dhcp?.dnsServers, ['198.51.100.53']);
  assert.equal(host.ipv6?.mode, 'routed');
  const pf = firewallModel(host).portForwards ?? [];
  assert.deepEqual(pf.map((f) => `${String(f.port)}>${f.to}:${f.toPort}`), ['1234>192.168.0.100:22', '80>192.168.0.100:80', '5678>192.168.0.200:22', '25>192.168.0.200:25']);
});

test('the README\'s real-guest host file parses: ipv6 auto is the EUI-64 address its comment says, the host-wide key is merged into the VM\'s seed', () => {
  const yaml = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((y) => y.includes('cloudInit'));
  assert.ok(yaml, 'a yaml block with cloudInit in the README');
  const host = parseHostFile(yaml, { baseDir: '/srv/vmhost' });
  const web = host.vms[0]!;
  assert.equal(web.ipv6, /ipv6: auto\s+# (\S+)/.exec(yaml)?.[1]);
  assert.deepEqual(web.cloudInit, { hostname: 'web', user: 'ops', sshAuthorizedKeys: host.cloudInit!.sshAuthorizedKeys, userData: '/srv/vmhost/web.yaml', networkConfig: 'auto' });
  assert.equal(web.cloudInit.sshAuthorizedKeys.length, 1);
});
