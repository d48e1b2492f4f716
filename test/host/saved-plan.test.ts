// Saved plans (plan --out / apply FILE): the file's shape is checked strictly, files others could
// have written are refused, and apply's comparison of steps names every difference.
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { HostPlanStaleError } from '../../packages/host/src/errors.js';
import { checkSavedPlan, checkSteps, fileSha256, isSavedPlanFile, netnsText, readSavedPlan, savePlan } from '../../packages/host/src/engine/saved-plan.js';
import type { Step } from '../../packages/host/src/types.js';

const steps: Step[] = [
  { id: 'sysctl:net.ipv4.ip_forward', action: 'set', description: 'set sysctl net.ipv4.ip_forward=1', before: { key: 'net.ipv4.ip_forward', value: '0' }, after: { key: 'net.ipv4.ip_forward', value: '1' } },
  { id: 'link:br0', action: 'create', description: 'create bridge br0', before: null, after: { kind: 'bridge', name: 'br0', stp: false } },
];

function dir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'vmhost-saved-plan-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('savePlan writes a 0600 JSON file that readSavedPlan gives back; isSavedPlanFile tells it from a host file', (t) => {
  const d = dir(t);
  const hostFile = join(d, 'host.yaml');
  writeFileSync(hostFile, 'name: demo\n');
  const old = process.umask(0);
  try {
    savePlan(join(d, 'p.plan'), { created: '2026-12-01T00:00:00.000Z', host: 'demo', hostFile: { path: hostFile, sha256: fileSha256(hostFile) }, netns: 'lab', stateDir: null }, { steps, conflicts: [] });
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(join(d, 'p.plan')).mode & 0o777, 0o600);
  const back = readSavedPlan(join(d, 'p.plan'));
  assert.deepEqual(back.steps, steps);
  assert.equal(back.hostFile.sha256, createHash('sha256').update('name: demo\n').digest('hex'));
  assert.equal(back.netns, 'lab');
  assert.equal(isSavedPlanFile(join(d, 'p.plan')), true);
  assert.equal(isSavedPlanFile(hostFile), false);
  assert.equal(isSavedPlanFile(join(d, 'missing')), false);
  assert.equal(isSavedPlanFile(d), false);
  // never written through a link planted at the path
  symlinkSync(join(d, 'elsewhere'), join(d, 'planted.plan'));
  assert.throws(() => savePlan(join(d, 'planted.plan'), back, { steps, conflicts: [] }), /symbolic link/);
});

test('readSavedPlan refuses files others may write, and content that is not a saved plan, naming the field', (t) => {
  const d = dir(t);
  const good = { format: 'vmhost-plan', version: 1, created: 'x', host: 'demo', hostFile: { path: '/h.yaml', sha256: 'a'.repeat(64) }, netns: null, stateDir: null, steps };
  const f = join(d, 'p.plan');
  writeFileSync(f, JSON.stringify(good), { mode: 0o600 });
  assert.equal(readSavedPlan(f).host, 'demo');
  chmodSync(f, 0o666);
  assert.throws(() => readSavedPlan(f), (e: unknown) => e instanceof ValidationError && e.field === 'plan' && /writable by group or others/.test(e.message));
  chmodSync(f, 0o600);
  const bad = (mut: (p: Record<string, unknown>) => void, field: RegExp): void => {
    const p = structuredClone(good) as unknown as Record<string, unknown>;
    mut(p);
    assert.throws(() => checkSavedPlan(p, f), (e: unknown) => e instanceof ValidationError && field.test(e.field), JSON.stringify(p));
  };
  bad((p) => (p.format = 'other'), /^plan\.format$/);
  bad((p) => (p.version = 2), /^plan\.version$/);
  bad((p) => (p.qemuBinary = '/tmp/evil'), /^plan\.top\.qemuBinary$/);
  bad((p) => ((p.hostFile as Record<string, unknown>).path = 'relative.yaml'), /^plan\.hostFile\.path$/);
  bad((p) => ((p.hostFile as Record<string, unknown>).sha256 = 'xyz'), /^plan\.hostFile\.sha256$/);
  bad((p) => ((p.steps as Array<Record<string, unknown>>)[0]!.action = 'exec'), /^plan\.steps\[0\]\.action$/);
  bad((p) => ((p.steps as Array<Record<string, unknown>>)[1]!.before = [1]), /^plan\.steps\[1\]\.before$/);
  bad((p) => ((p.steps as Array<Record<string, unknown>>)[1]!.command = 'rm -rf /'), /^plan\.steps\[1\]\.command$/);
  writeFileSync(f, '{"format": "vmhost-plan", ');
  assert.throws(() => readSavedPlan(f), /is not JSON/);
});

test('checkSteps: equal steps pass whatever the key order; each difference is named', () => {
  const reordered = steps.map((s) => ({ after: s.after, before: s.before, description: s.description, action: s.action, id: s.id }) as Step);
  checkSteps(steps, reordered);
  const differs = (now: Step[], re: RegExp): void => {
    assert.throws(() => checkSteps(steps, now), (e: unknown) => e instanceof HostPlanStaleError && e.code === 'EHOST_PLAN_STALE' && e.differences.some((d) => re.test(d)), JSON.stringify(now));
  };
  differs([steps[0]!], /^no longer needed: create bridge br0$/);
  differs([...steps, { id: 'link:br1', action: 'create', description: 'create bridge br1', before: null, after: {} }], /^new step: create bridge br1$/);
  differs([{ ...steps[0]!, before: { key: 'net.ipv4.ip_forward', value: '2' } }, steps[1]!], /^changed: set sysctl net.ipv4.ip_forward=1 \(what the host has now differs\)$/);
  differs([steps[0]!, { ...steps[1]!, action: 'update', description: 'update bridge br0' }], /^changed: create bridge br0 → update bridge br0$/);
  differs([steps[1]!, steps[0]!], /another order/);
  assert.deepEqual([netnsText(undefined), netnsText('lab'), netnsText({ path: '/run/netns/x' }), netnsText({ pid: 7 })], [null, 'lab', '/run/netns/x', 'pid:7']);
});
