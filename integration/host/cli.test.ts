// The real `vmhost` CLI (no fakes) inside a lab namespace: plan, apply, status --json, re-plan with
// --detailed-exitcode, a bad host file, down; checked with `ip -j` and iptables-save.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { ROOT, vmhost } from '../helpers/cli.js';

const HOST = `name: clitest
uplink: eth0
bridge: { name: br0, mac: "de:ad:be:ef:24:31", veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150] }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed }
vms:
  - name: web
    ipv4: 192.168.0.100
    ipv6: "2001:db8:8:5688::100"
    kernel: ${join(ROOT, '.cache', 'guest', 'vmlinuz')}
    autostart: false
    forwards: [{ port: 1234, toPort: 22 }]
`;

test('vmhost plan/apply/status/down in a namespace, exit codes, and a bad host file', async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-cli-', namespaces: { host: {}, wan: {} }, links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-cli-'));
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ns = lab.ns('host');
  const file = join(dir, 'host.yaml');
  writeFileSync(file, HOST);
  const g = ['--netns', ns, '--state-dir', join(dir, 'state')];

  const p = await vmhost([...g, 'plan', file, '--detailed-exitcode']);
  assert.equal(p.code, 2, p.stderr);
  assert.match(p.stdout, /create bridge br0/);
  assert.match(p.stdout, /proxy neighbour 2001:db8:8:5688::100 on eth0/);

  const a = await vmhost([...g, 'apply', file]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /\[\d+\/\d+\]/, 'progress per step on stderr');
  const links = JSON.parse((await netns.run(ns, 'ip', ['-j', 'link', 'show', 'br0'])).stdout) as Array<{ address: string }>;
  assert.equal(links[0]?.address, 'de:ad:be:ef:24:31');
  assert.match((await netns.run(ns, 'iptables-save', ['-t', 'nat'])).stdout, /--dport 1234 -j DNAT --to-destination 192\.168\.0\.100:22/);

  const s = await vmhost([...g, 'status', file, '--json']);
  assert.equal(s.code, 0, s.stderr);
  const st = JSON.parse(s.stdout) as { bridge: { exists: boolean }; dnsmasq: { running: boolean }; applied: boolean; vms: Array<{ name: string; running: boolean }> };
  assert.equal(st.bridge.exists, true);
  assert.equal(st.dnsmasq.running, true);
  assert.equal(st.applied, true);
  assert.deepEqual(st.vms.map((v) => [v.name, v.running]), [['web', false]]);

  const again = await vmhost([...g, 'plan', file, '--detailed-exitcode']);
  assert.equal(again.code, 0, again.stdout);
  assert.match(again.stdout, /No changes/);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, HOST.replace('ipv4: 192.168.0.100', 'ipv4: 10.0.0.5').replace('forwards:', 'forwardz:'));
  const b = await vmhost([...g, 'apply', bad]);
  assert.equal(b.code, 3);
  assert.match(b.stderr, /vms\[0\]\.ipv4/);
  assert.match(b.stderr, /vms\[0\]\.forwardz/);
  // the bad file changed nothing: the applied host still plans no changes
  assert.equal((await vmhost([...g, 'plan', file, '--detailed-exitcode'])).code, 0);

  const d = await vmhost([...g, 'down', file]);
  assert.equal(d.code, 0, d.stderr);
  const after = JSON.parse((await netns.run(ns, 'ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  assert.deepEqual(after.map((l) => l.ifname).sort(), ['eth0', 'lo']);
  assert.deepEqual((await netns.pids(ns)).filter((pid) => pid !== process.pid), []);
});
