// Legacy iptables (the `iptables-legacy` alternative): its restore programs take the global xtables
// lock for their whole run, so apply runs them one at a time instead of holding one per table
// section side by side (which waited on the lock until the timeout). The programs are the legacy
// ones through PATH, as `update-alternatives --set iptables /usr/sbin/iptables-legacy` would make
// them; checked with iptables-legacy-save and real traffic (the whole traffic test and the demo,
// run again).
import { spawn } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, defaultStarter, remove, type Starter } from '@vmhost/firewall';
import { netns } from '@vmhost/net';
import { freshNetns, sh } from '../helpers/ns.js';
import { seedModel } from '../../test/firewall/models.js';

const ROOT = join(import.meta.dirname, '..', '..');
const LEGACY = ['iptables', 'ip6tables'].flatMap((t) => ['', '-save', '-restore'].map((s) => [`${t}${s}`, `/usr/sbin/${t}-legacy${s}`] as const));
const missing = LEGACY.filter(([, target]) => !existsSync(target)).map(([, target]) => target);

/** A directory whose iptables programs are the legacy ones, first in PATH while the test runs. */
function legacyPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-legacy-'));
  for (const [name, target] of LEGACY) symlinkSync(target, join(dir, name));
  const path = `${dir}:${process.env.PATH ?? ''}`;
  const before = process.env.PATH;
  process.env.PATH = path;
  t.after(() => {
    process.env.PATH = before;
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

test('legacy iptables: apply runs one restore at a time, the rules land in the legacy tables; remove takes the owner\'s chains out (the tables stay: legacy cannot delete them)', { skip: missing.length > 0 ? `no legacy iptables here (${missing.join(', ')})` : false }, async (t) => {
  legacyPath(t);
  const ns = await freshNetns(t, 'fwlegacy');
  // how many iptables/ip6tables restore programs are alive at once (their --version aside)
  let alive = 0;
  let most = 0;
  const real = defaultStarter({ netns: ns });
  const starter: Starter = (cmd, args) => {
    const p = real(cmd, args);
    if (!/^ip6?tables-restore$/.test(cmd) || args.includes('--version')) return p;
    most = Math.max(most, ++alive);
    let counted = true;
    const done = <T>(x: T): T => {
      if (counted) alive--;
      counted = false;
      return x;
    };
    return { ...p, end: (text) => p.end(text).then(done), kill: () => p.kill().then(done) };
  };
  const first = await apply(seedModel, { netns: ns, starter });
  assert.equal(first.changed, true);
  assert.equal(most, 1, 'never two legacy restore programs at once (each holds the xtables lock)');
  const nat = await sh(ns, 'iptables-legacy-save', ['-t', 'nat']);
  assert.match(nat, /^-A VMHOST-seed-PRE /m, 'the owner\'s chains are in the legacy nat table');
  assert.match(await sh(ns, 'ip6tables-legacy-save', []), /^:VMHOST-seed-/m, 'and in the legacy IPv6 tables');
  assert.equal((await apply(seedModel, { netns: ns, starter })).changed, false, 're-applying is a no-op');

  await remove('seed', { netns: ns });
  for (const save of ['iptables-legacy-save', 'ip6tables-legacy-save']) {
    const after = await sh(ns, save, []);
    assert.doesNotMatch(after, /VMHOST-seed/, `${save}: nothing of the owner is left`);
    assert.doesNotMatch(after, /^-A /m, `${save}: no rule is left`);
  }
});

test('legacy iptables: the traffic test passes with the legacy programs (DNAT, masquerade, hairpin, isolation, group removal; IPv4 and IPv6)', { skip: missing.length > 0 ? `no legacy iptables here (${missing.join(', ')})` : false, timeout: 300_000 }, async (t) => {
  const path = legacyPath(t);
  // a test run of its own (not a subtest of this one: node's runner tells its children so in NODE_TEST_CONTEXT)
  const { NODE_TEST_CONTEXT: _child, ...env } = process.env;
  const r = await netns.collect(spawn(process.execPath, [join(ROOT, 'scripts', 'run-tests.mjs'), 'integration/firewall/traffic.test.ts'], { cwd: ROOT, env: { ...env, PATH: path }, stdio: ['ignore', 'pipe', 'pipe'] }), {
    timeoutMs: 280_000,
  });
  const summary = r.stdout.trim().split('\n').pop() ?? '';
  assert.equal(r.code, 0, `${summary}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  assert.match(summary, /^\d+ passed, 0 failed, 0 skipped$/);
});

test('legacy iptables: the demo passes with the legacy programs (the seed\'s host applied, served, switched to plan B and taken down; nothing left but the empty tables legacy cannot delete)', { skip: missing.length > 0 ? `no legacy iptables here (${missing.join(', ')})` : false, timeout: 300_000 }, async (t) => {
  const path = legacyPath(t);
  const r = await netns.collect(spawn(process.execPath, [join(ROOT, 'packages', 'host', 'dist', 'vmhost.js'), 'demo'], { cwd: ROOT, env: { ...process.env, PATH: path }, stdio: ['ignore', 'pipe', 'pipe'] }), { timeoutMs: 280_000 });
  const summary = r.stdout.trim().split('\n').pop() ?? '';
  assert.equal(r.code, 0, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  assert.match(summary, /^(\d+)\/\1 checks passed/);
});
