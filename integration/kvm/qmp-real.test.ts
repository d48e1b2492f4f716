// QmpClient against a real QEMU (`-machine none -S`): negotiation, typed commands, errors,
// 32 in flight, HMP, and that the committed generated types match the installed QEMU's schema.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { QmpClient, QmpCommandError, QmpDisconnectedError, QMP_SCHEMA_QEMU_VERSION } from '@vmhost/kvm';
import { runDir, spawnBareQemu } from './helpers.js';

async function bare(t: import('node:test').TestContext): Promise<QmpClient> {
  const sock = join(runDir(t, 'qmp'), 'qmp.sock');
  const { alive } = spawnBareQemu(t, sock);
  const qmp = await QmpClient.connect({ path: sock, timeoutMs: 30_000, isAlive: alive });
  t.after(() => qmp.close());
  return qmp;
}

test('real QEMU: greeting, oob negotiated, typed query-status and query-version', async (t) => {
  const qmp = await bare(t);
  assert.equal(qmp.greeting.version.qemu.major, 7);
  assert.ok(qmp.greeting.capabilities.includes('oob'));
  assert.equal(qmp.oob, true);
  const st = await qmp.execute('query-status');
  assert.equal(st.status, 'prelaunch');
  assert.equal(st.running, false);
  const v = await qmp.execute('query-version');
  assert.deepEqual(v.qemu, qmp.greeting.version.qemu);
});

test('real QEMU: command errors carry class and desc; 32 in flight; HMP passthrough', async (t) => {
  const qmp = await bare(t);
  await assert.rejects(qmp.executeRaw('no-such-command', { x: 1 }), (e: unknown) => {
    assert.ok(e instanceof QmpCommandError);
    assert.equal(e.errorClass, 'CommandNotFound');
    assert.match(e.desc, /no-such-command/);
    assert.deepEqual(e.arguments, { x: 1 });
    return true;
  });
  await assert.rejects(qmp.execute('query-cpus-fast', { bogus: 1 } as never), (e: unknown) => e instanceof QmpCommandError && e.errorClass === 'GenericError');
  const names = await Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 ? qmp.execute('query-name') : qmp.execute('query-status'))));
  names.forEach((r, i) => assert.ok(i % 2 ? !('status' in r) : (r as { status: string }).status === 'prelaunch'));
  assert.equal(qmp.stats.droppedReplies, 0);
  assert.match(await qmp.hmp('info status'), /VM status: paused \(prelaunch\)/);
});

test('real QEMU: quit ends the session; later commands reject as disconnected', async (t) => {
  const qmp = await bare(t);
  const shutdown = qmp.waitForEvent('SHUTDOWN', { timeoutMs: 30_000 });
  await qmp.execute('quit').catch((e: unknown) => assert.ok(e instanceof QmpDisconnectedError));
  const ev = await shutdown;
  assert.equal(ev.data.guest, false);
  assert.equal(ev.data.reason, 'host-qmp-quit');
  const info = await qmp.closed;
  assert.equal(info.reason, 'eof');
  await assert.rejects(qmp.execute('query-status'), QmpDisconnectedError);
});

test('the committed schema snapshot is the installed QEMU\'s query-qmp-schema', async (t) => {
  const qmp = await bare(t);
  const live = (await qmp.executeRaw('query-qmp-schema', undefined, { timeoutMs: 60_000 })) as { name: string }[];
  const file = new URL('../../packages/kvm/schema/qmp-schema.json', import.meta.url);
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { qemu: string; schema: { name: string }[] };
  const v = qmp.greeting.version.qemu;
  assert.equal(snap.qemu, `${v.major}.${v.minor}.${v.micro}`, 'regenerate with scripts/gen-qmp-types.ts');
  assert.equal(QMP_SCHEMA_QEMU_VERSION, snap.qemu);
  const sort = (a: { name: string }, b: { name: string }): number => a.name.localeCompare(b.name, 'en', { numeric: true });
  assert.deepEqual([...live].sort(sort), snap.schema);
});

test('the committed QMP docs are the installed QEMU\'s qemu-qmp-ref(7), parsed', async () => {
  const { readQmpRefMan } = await import('../../scripts/qmp-docs.js');
  const file = new URL('../../packages/kvm/schema/qmp-docs.json', import.meta.url);
  const committed = JSON.parse(readFileSync(file, 'utf8')) as { qemu: string; entries: Record<string, unknown> };
  const installed = readQmpRefMan();
  assert.equal(committed.qemu, installed.qemu, 'regenerate with scripts/gen-qmp-types.ts');
  assert.equal(committed.qemu, QMP_SCHEMA_QEMU_VERSION);
  assert.deepEqual(committed.entries, JSON.parse(JSON.stringify(installed.entries)));
});

test('real QEMU: 200 in-band commands of four kinds, failures and out-of-band ones interleaved, each answer reaches its caller', async (t) => {
  const qmp = await bare(t);
  const kinds = ['query-status', 'query-name', 'query-version', 'no-such-command'] as const;
  const calls = Array.from({ length: 200 }, (_, i) => {
    const kind = kinds[i % 4]!;
    const p = qmp.executeRaw(kind).then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));
    // every tenth also an out-of-band command, answered ahead of the queued in-band ones
    const oob = i % 10 === 0 ? qmp.executeRaw('migrate-pause', undefined, { oob: true }).then(() => 'ok', (e: unknown) => e) : undefined;
    return { kind, p, oob };
  });
  for (const { kind, p, oob } of calls) {
    const r = await p;
    if (kind === 'query-status') assert.equal(r.ok && (r.v as { status: string }).status, 'prelaunch');
    if (kind === 'query-name') assert.deepEqual(r.ok && r.v, {});
    if (kind === 'query-version') assert.equal(r.ok && (r.v as { qemu: { major: number } }).qemu.major, 7);
    if (kind === 'no-such-command') assert.ok(!r.ok && r.e instanceof QmpCommandError && r.e.errorClass === 'CommandNotFound');
    if (oob) {
      const e = await oob;
      assert.ok(e instanceof QmpCommandError && e.command === 'migrate-pause' && /postcopy/.test(e.desc), String(e));
    }
  }
  assert.equal(qmp.stats.droppedReplies, 0);
  assert.equal(qmp.inFlight, 0);
});
