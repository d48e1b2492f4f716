// Runs the example of packages/firewall/README.md (the seed guide's firewall) in a fresh namespace
// and checks what it did with iptables-save as the oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { freshNetns, sh } from '../helpers/ns.js';
import { readmeExamples } from '../helpers/readme.js';

const root = join(import.meta.dirname, '../..');

test('the README example reproduces the seed guide\'s rules', async (t) => {
  // the seed's example; the ports example (<!-- example:ports -->) has its own test below
  const examples = readmeExamples('firewall');
  assert.equal(examples.length, 2, 'two example blocks: the seed, then the ports');
  const ns = await freshNetns(t, 'fwreadme');
  // A TypeScript file inside the repo, so that '@vmhost/firewall' resolves through node_modules.
  const dir = mkdtempSync(join(root, 'integration/firewall/.readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'seed.ts');
  writeFileSync(file, examples[0]!.code);
  const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', file], {
    cwd: root,
    env: { ...process.env, NETNS: ns },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = await netns.collect(child);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /-A VMHOST-seed-web-D -i eth0 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 1234 -j DNAT --to-destination 192.168.0.100:22/);
  assert.match(r.stdout, /net\.ipv4\.ip_forward=1 net\.ipv6\.conf\.all\.forwarding=1/);
  assert.match(r.stdout, /applied: true, re-applied: false/);
  assert.match(r.stdout, /removed chains: .*VMHOST-seed-mail-D/);

  const v4 = await sh(ns, 'iptables-save', []);
  const v6 = await sh(ns, 'ip6tables-save', []);
  // The seed's rules, as they are now in the namespace:
  for (const [port, to] of [[1234, '192.168.0.100:22'], [80, '192.168.0.100:80'], [5678, '192.168.0.200:22'], [25, '192.168.0.200:25']] as const) {
    assert.match(v4, new RegExp(`-i eth0 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport ${port} -j DNAT --to-destination ${to}\\n`));
  }
  assert.match(v4, /-A VMHOST-seed-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n/);
  assert.match(v4, /-A VMHOST-seed-FWD -s 192\.168\.0\.0\/24 -i br0 -j ACCEPT\n/);
  assert.match(v4, /-A VMHOST-seed-FWD -d 192\.168\.0\.0\/24 -i eth0 -j ACCEPT\n/);
  assert.match(v4, /-A VMHOST-seed-POST -s 192\.168\.0\.0\/24 ! -d 192\.168\.0\.0\/24 -o eth0 -j MASQUERADE\n/);
  assert.match(v4, /-A VMHOST-seed-OUT -d 192\.168\.0\.0\/24 -o br0 -m conntrack --ctstate NEW -j ACCEPT\n/);
  assert.match(v6, /-A VMHOST-seed-FWD -p ipv6-icmp -j ACCEPT\n/);
  assert.match(v6, /-A VMHOST-seed-FWD -i br0 -p udp -m udp --dport 33434 -j ACCEPT\n/);
  // each rule once, whatever the example applied twice
  assert.equal(v4.split('\n').filter((l) => l.includes('--dport 5678')).length, 2, 'one DNAT from PREROUTING and one from OUTPUT');
  assert.equal(netns.readFileIn(ns, '/proc/sys/net/ipv4/ip_forward').trim(), '1');
});

test('the README ports example isolates two VM ports and removes them without a trace', async (t) => {
  const readme = readFileSync(join(root, 'packages/firewall/README.md'), 'utf8');
  const m = /<!-- example:ports -->\n```ts\n([\s\S]*?)```\n\nWhat it prints:\n\n```\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'example block and its output found');
  const ns = await freshNetns(t, 'fwreadme');
  // A TypeScript file inside the repo (the example is typed), so that '@vmhost/firewall' resolves through node_modules.
  const dir = mkdtempSync(join(root, 'integration/firewall/.readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ports.ts');
  writeFileSync(file, m[1]!);
  const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', file], {
    cwd: root,
    env: { ...process.env, NETNS: ns },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = await netns.collect(child);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, m[2], 'prints what the README says');
  assert.equal(await sh(ns, 'ebtables-nft-save', []), '');
  assert.doesNotMatch(await sh(ns, 'ip6tables-save', []), /VMHOST/);
});
