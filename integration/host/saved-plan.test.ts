// Saved plans through the real `vmhost` CLI in a lab namespace (issue 11 §4): `plan --json` shows
// each step's before and after; `plan --out FILE` + `apply FILE` carries out exactly those steps;
// apply of a saved plan refuses (exit 1, the namespace unchanged as `ip -j`, iptables-save and
// /proc/sys show it) when the live host moved, when the host file changed, or when other options
// are given than the plan's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import type { Plan } from '@vmhost/host';
import { vmhost, type CliResult } from '../helpers/cli.js';
import { hostSnapshot } from '../helpers/host-snapshot.js';
import { ipJson, sh } from '../helpers/ns.js';
import { cleanUp } from '../helpers/cleanup.js';

const HOST = (n: number): string => `name: sp
uplink: eth0
bridge: { name: brsp, mac: "de:ad:be:ef:44:01", ipv4: 192.168.${n}.1/24 }
vms: []
`;

function code(r: CliResult, want: number, what: string): CliResult {
  assert.equal(r.code, want, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
}

test('plan --json has before/after; plan --out + apply FILE applies the saved steps, and refuses when the host, the file or the options moved', async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-splan-', namespaces: { host: {} }, links: [{ a: { ns: 'host', name: 'eth0' }, b: { ns: 'host', name: 'peer0' } }] });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-saved-plan-'));
  const { downFirst } = cleanUp(t, lab, dir);
  const ns = lab.ns('host');
  const file = join(dir, 'host.yaml');
  writeFileSync(file, HOST(44));
  const g = ['--netns', ns, '--state-dir', join(dir, 'state'), '--data-dir', join(dir, 'data')];
  downFirst(() => vmhost([...g, 'down', file]));

  // before/after: the sysctl's live value before, the wanted one after; a missing bridge's before is null
  const p0 = JSON.parse(code(await vmhost([...g, 'plan', file, '--json']), 0, 'plan --json').stdout) as Plan;
  const fwd = p0.steps.find((s) => s.id === 'sysctl:net.ipv4.ip_forward');
  assert.equal((await sh(ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim(), '0', 'the live value (the oracle)');
  assert.deepEqual(fwd && { before: fwd.before, after: fwd.after }, { before: { key: 'net.ipv4.ip_forward', value: '0' }, after: { key: 'net.ipv4.ip_forward', value: '1' } });
  const br = p0.steps.find((s) => s.id === 'link:brsp');
  assert.equal(br?.before, null);
  assert.equal((br?.after as { mac?: string } | undefined)?.mac, 'de:ad:be:ef:44:01');

  // a saved plan, applied: the bridge exists as planned (ip -j)
  const p1 = join(dir, 'p1.plan');
  code(await vmhost([...g, 'plan', file, '--out', p1]), 0, 'plan --out');
  assert.equal(statSync(p1).mode & 0o777, 0o600);
  const applied = code(await vmhost([...g, 'apply', p1]), 0, 'apply of the saved plan');
  assert.match(applied.stdout, /Apply complete/);
  const links = await ipJson<Array<{ ifname: string; address: string }>>(ns, ['link', 'show', 'brsp']);
  assert.equal(links[0]?.address, 'de:ad:be:ef:44:01');

  // the live host moves after the plan: refused, nothing changed
  writeFileSync(file, HOST(45));
  const p2 = join(dir, 'p2.plan');
  code(await vmhost([...g, 'plan', file, '--out', p2]), 0, 'plan --out (new MAC)');
  await sh(ns, 'ip', ['link', 'set', 'brsp', 'down']);
  const moved = await hostSnapshot(ns);
  const stale = code(await vmhost([...g, 'apply', p2]), 1, 'apply of a stale plan');
  assert.match(stale.stderr, /saved plan is stale/);
  assert.match(stale.stderr, /new step: update bridge brsp/);
  assert.deepEqual(await hostSnapshot(ns), moved, 'refused: the namespace as it was');
  const js = JSON.parse(code(await vmhost([...g, '--json', 'apply', p2]), 1, 'apply --json of a stale plan').stdout) as { error: { code: string; differences: string[] } };
  assert.equal(js.error.code, 'EHOST_PLAN_STALE');
  assert.ok(js.error.differences.length > 0);

  // the host file changes after the plan: refused
  const p3 = join(dir, 'p3.plan');
  code(await vmhost([...g, 'plan', file, '--out', p3]), 0, 'plan --out');
  writeFileSync(file, HOST(46));
  const edited = code(await vmhost([...g, 'apply', p3]), 1, 'apply after the host file changed');
  assert.match(edited.stderr, /host\.yaml changed since the plan was made/);
  assert.deepEqual(await hostSnapshot(ns), moved);

  // other options than the plan's: refused, naming the option
  writeFileSync(file, HOST(45));
  const p4 = join(dir, 'p4.plan');
  code(await vmhost([...g, 'plan', file, '--out', p4]), 0, 'plan --out');
  const other = code(await vmhost(['--netns', ns, '--state-dir', join(dir, 'other'), 'apply', p4]), 1, 'apply with another --state-dir');
  assert.match(other.stderr, /--state-dir.*differs from the saved plan's/);
  // a plan file others may write is refused
  const p5 = join(dir, 'p5.plan');
  writeFileSync(p5, readFileSync(p4));
  chmodSync(p5, 0o666);
  code(await vmhost([...g, 'apply', p5]), 1, 'apply of a world-writable plan');
  assert.deepEqual(await hostSnapshot(ns), moved);

  // the fresh plan applies: the bridge is up again with the new address
  code(await vmhost([...g, 'apply', p4]), 0, 'apply of the fresh plan');
  const after = await ipJson<Array<{ ifname: string; flags: string[]; addr_info: Array<{ local: string }> }>>(ns, ['addr', 'show', 'brsp']);
  assert.ok(after[0]?.flags.includes('UP'));
  assert.deepEqual(after[0]?.addr_info.filter((a) => !a.local.startsWith('fe80')).map((a) => a.local), ['192.168.45.1']);
  code(await vmhost([...g, 'down', file]), 0, 'down');
});
