// QmpClient against an in-process fake QMP server: negotiation, correlation by id, events,
// every error path. No QEMU, no privilege.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  QmpAbortedError,
  QmpClient,
  QmpCommandError,
  QmpConnectError,
  QmpDisconnectedError,
  QmpNegotiationError,
  QmpProtocolError,
  QmpTimeoutError,
  type QmpEvent,
} from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';
import { FakeQmpServer, type FakeConn } from './fake-qmp.js';

async function setup(t: import('node:test').TestContext, opts: ConstructorParameters<typeof Object>[0] = {}): Promise<{ srv: FakeQmpServer; qmp: QmpClient; conn: FakeConn }> {
  const srv = await FakeQmpServer.start(opts as never);
  t.after(() => srv.close());
  const connP = srv.nextConnection();
  const qmp = await QmpClient.connect({ path: srv.path, timeoutMs: 5_000 });
  t.after(() => qmp.close());
  return { srv, qmp, conn: await connP };
}

test('negotiates capabilities, enabling oob when offered', async (t) => {
  const { qmp, conn } = await setup(t);
  assert.deepEqual(qmp.greeting.version.qemu, { major: 7, minor: 2, micro: 0 });
  assert.deepEqual(qmp.greeting.capabilities, ['oob']);
  assert.deepEqual(qmp.capabilities, ['oob']);
  assert.equal(qmp.oob, true);
  assert.deepEqual(conn.negotiation?.arguments, { enable: ['oob'] });
  assert.equal(qmp.state, 'running');
});

test('does not enable oob when not offered, or when the caller says oob: false', async (t) => {
  const { qmp, conn } = await setup(t, { capabilities: [] });
  assert.deepEqual(conn.negotiation?.arguments, { enable: [] });
  assert.equal(qmp.oob, false);
  await assert.rejects(qmp.execute('query-status', {}, { oob: true }), (e: unknown) => e instanceof ValidationError && e.field === 'options.oob');

  const srv2 = await FakeQmpServer.start();
  t.after(() => srv2.close());
  const c2 = srv2.nextConnection();
  const q2 = await QmpClient.connect({ path: srv2.path, oob: false });
  t.after(() => q2.close());
  assert.deepEqual((await c2).negotiation?.arguments, { enable: [] });
});

test('greeting split across chunks is reassembled', async (t) => {
  const g = `${JSON.stringify({ QMP: { version: { qemu: { micro: 1, minor: 0, major: 8 }, package: '' }, capabilities: ['oob'] } })}\r\n`;
  const chunks = [g.slice(0, 3), g.slice(3, 20), g.slice(20, g.length - 1), g.slice(g.length - 1)];
  const { qmp } = await setup(t, { greetingChunks: chunks });
  assert.deepEqual(qmp.greeting.version.qemu, { major: 8, minor: 0, micro: 1 });
});

test('a greeting that is not QMP is a negotiation error', async (t) => {
  for (const greeting of [`{"hello": 1}\r\n`, `{"QMP": {"version": {"qemu": {"major": "7"}}, "capabilities": []}}\r\n`, `{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": "oob"}}\r\n`]) {
    const srv = await FakeQmpServer.start({ greetingChunks: [greeting] });
    t.after(() => srv.close());
    await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 3_000 }), QmpNegotiationError);
  }
  const srv = await FakeQmpServer.start({ greetingChunks: ['this is not json\r\n'] });
  t.after(() => srv.close());
  await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 3_000 }), QmpProtocolError);
});

test('refused qmp_capabilities is a negotiation error', async (t) => {
  const srv = await FakeQmpServer.start({ refuseCapabilities: { class: 'GenericError', desc: 'nope' } });
  t.after(() => srv.close());
  await assert.rejects(QmpClient.connect({ path: srv.path }), (e: unknown) => e instanceof QmpNegotiationError && /nope/.test(e.message));
});

test('no greeting within the time limit is a negotiation error, not a hang', async (t) => {
  const srv = await FakeQmpServer.start({ greetingChunks: [] });
  t.after(() => srv.close());
  await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 300 }), QmpNegotiationError);
});

test('connect retries while the socket does not exist yet, then succeeds', async (t) => {
  const srv = await FakeQmpServer.start({}, false);
  t.after(() => srv.close());
  let attempts = 0;
  const p = QmpClient.connect({ path: srv.path, timeoutMs: 5_000, isAlive: () => (attempts++, true) });
  await new Promise((r) => setTimeout(r, 200));
  await srv.listen();
  const qmp = await p;
  t.after(() => qmp.close());
  assert.ok(attempts >= 2, `isAlive consulted on retries (${attempts})`);
  assert.equal(qmp.state, 'running');
});

test('connect gives up within its time limit, and at once when the process is gone', async (t) => {
  const srv = await FakeQmpServer.start({}, false);
  t.after(() => srv.close());
  await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 300 }), (e: unknown) => e instanceof QmpConnectError && e.path === srv.path);
  let alive = true;
  setTimeout(() => (alive = false), 100);
  await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 60_000, isAlive: () => alive }), (e: unknown) => e instanceof QmpConnectError && /exited/.test(e.message));
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('stop')), 100);
  await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 60_000, signal: ac.signal }), QmpAbortedError);
  await assert.rejects(QmpClient.connect({ path: '' }), ValidationError);
});

test('in-band commands go out without id or newline and are answered in order; out-of-band ones overtake by id', async (t) => {
  const { qmp, conn } = await setup(t);
  const a = qmp.executeRaw('cmd-a', { n: 1 });
  const b = qmp.executeRaw('cmd-b');
  const d = qmp.executeRaw('migrate-pause', undefined, { oob: true });
  const c = qmp.executeRaw('cmd-c', { n: 3 });
  const [ma, mb, md, mc] = await conn.commands(4);
  assert.deepEqual(conn.wire.slice(1), ['{"execute":"cmd-a","arguments":{"n":1}}', '{"execute":"cmd-b"}', `{"exec-oob":"migrate-pause","id":${String(md!.id)}}`, '{"execute":"cmd-c","arguments":{"n":3}}']);
  assert.equal(ma!.id, undefined);
  assert.equal(typeof md!.id, 'number');
  conn.reply(md!, 'D'); // the out-of-band reply overtakes
  conn.reply(ma!, 'A');
  conn.reply(mb!, 'B');
  conn.reply(mc!, 'C');
  assert.deepEqual(await Promise.all([a, b, c, d]), ['A', 'B', 'C', 'D']);
  assert.equal(qmp.stats.replies, 4);
  assert.equal(qmp.inFlight, 0);
});

test('32 commands in flight with events interleaved; 32 out-of-band ones answered in reverse', async (t) => {
  const { qmp, conn } = await setup(t);
  const seen: QmpEvent[] = [];
  const stream = qmp.events();
  const collecting = (async () => {
    for await (const e of stream) {
      seen.push(e);
      if (seen.length === 32) break;
    }
  })();
  const ps = Array.from({ length: 32 }, (_, i) => qmp.executeRaw('echo', { i }));
  assert.equal(qmp.inFlight, 32);
  const msgs = await conn.commands(32);
  for (const m of msgs) {
    conn.event('TICK', { i: m.arguments!.i });
    conn.reply(m, { i: m.arguments!.i });
  }
  const results = await Promise.all(ps);
  results.forEach((r, i) => assert.deepEqual(r, { i }));
  await collecting;
  assert.deepEqual(
    seen.map((e) => (e.data as { i: number }).i),
    Array.from({ length: 32 }, (_, i) => i),
  );
  assert.equal(seen[0]!.timestamp.seconds, 1700000000);

  const oob = Array.from({ length: 32 }, (_, i) => qmp.executeRaw('x-oob', { i }, { oob: true }));
  const om = await conn.commands(32);
  assert.equal(new Set(om.map((m) => m.id)).size, 32, 'ids are unique');
  for (const m of om.reverse()) conn.reply(m, { i: m.arguments!.i });
  (await Promise.all(oob)).forEach((r, i) => assert.deepEqual(r, { i }));
  assert.equal(qmp.inFlight, 0);
});

test('command errors carry class, desc and what was sent', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.executeRaw('device_del', { id: 'nic9' });
  const m = await conn.nextCommand();
  conn.error(m, 'DeviceNotFound', "Device 'nic9' not found");
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof QmpCommandError);
    assert.equal(e.errorClass, 'DeviceNotFound');
    assert.equal(e.desc, "Device 'nic9' not found");
    assert.equal(e.command, 'device_del');
    assert.deepEqual(e.arguments, { id: 'nic9' });
    assert.equal(e.code, 'EQMP_COMMAND');
    return true;
  });
});

test('replies with ids that match no out-of-band command are dropped and counted, never mis-delivered', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.executeRaw('real');
  const o = qmp.executeRaw('real-oob', undefined, { oob: true });
  const [m, mo] = await conn.commands(2);
  conn.send({ return: 'wrong', id: 999 });
  conn.send({ return: 'wrong', id: String(mo!.id) }); // same digits, other JSON type
  conn.send({ return: 'wrong', id: { deep: [mo!.id] } });
  conn.send({ error: { class: 'GenericError', desc: 'wrong' }, id: -1 });
  conn.reply(mo!, 'right-oob');
  conn.send({ return: 'wrong', id: mo!.id }); // a second reply to the same id
  conn.reply(m!, 'right');
  assert.equal(await p, 'right');
  assert.equal(await o, 'right-oob');
  assert.equal(qmp.stats.droppedReplies, 5);
  // an in-band reply with nothing pending is dropped too
  const sync = qmp.waitForEvent('SYNC');
  conn.send({ return: 'unsolicited' });
  conn.event('SYNC');
  await sync; // the stream is handled in order: the reply before it has been seen
  const q = qmp.executeRaw('after');
  conn.reply(await conn.nextCommand(), 'ok');
  assert.equal(await q, 'ok');
  assert.equal(qmp.stats.droppedReplies, 6);
});

test('timeout rejects, the late reply is dropped and counted, the session goes on', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.executeRaw('slow', undefined, { timeoutMs: 50 });
  const m = await conn.nextCommand();
  await assert.rejects(p, (e: unknown) => e instanceof QmpTimeoutError && e.timeoutMs === 50);
  conn.reply(m, 'late');
  const q = qmp.executeRaw('fast');
  const m2 = await conn.nextCommand();
  conn.reply(m2, 'ok');
  assert.equal(await q, 'ok');
  assert.equal(qmp.stats.droppedReplies, 1);
  assert.equal(qmp.inFlight, 0);
});

test('abort rejects the command with QmpAbortedError carrying the reason', async (t) => {
  const { qmp, conn } = await setup(t);
  const ac = new AbortController();
  const p = qmp.executeRaw('slow', undefined, { signal: ac.signal });
  await conn.nextCommand();
  const reason = new Error('user cancelled');
  ac.abort(reason);
  await assert.rejects(p, (e: unknown) => e instanceof QmpAbortedError && e.cause === reason);
  await assert.rejects(qmp.executeRaw('x', undefined, { signal: ac.signal }), QmpAbortedError);
  assert.equal(qmp.inFlight, 0);
});

test('QEMU closing mid-command rejects every pending command and ends event streams with an error', async (t) => {
  const { qmp, conn } = await setup(t);
  const ps = Array.from({ length: 5 }, (_, i) => qmp.executeRaw('c', { i }));
  const stream = qmp.events();
  const wait = qmp.waitForEvent('NEVER');
  await conn.commands(5);
  conn.destroy();
  for (const p of ps) await assert.rejects(p, QmpDisconnectedError);
  await assert.rejects(wait, QmpDisconnectedError);
  await assert.rejects(stream.next(), QmpDisconnectedError);
  assert.deepEqual(await stream.next(), { value: undefined, done: true });
  const info = await qmp.closed;
  assert.equal(info.reason, 'eof');
  assert.equal(qmp.state, 'closed');
  await assert.rejects(qmp.executeRaw('after'), QmpDisconnectedError);
});

test('garbage from the server is a protocol error that closes the session', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.executeRaw('x');
  await conn.nextCommand();
  conn.sendRaw('{"return": {}, "id": \r\n');
  await assert.rejects(p, (e: unknown) => e instanceof QmpProtocolError && e.excerpt.startsWith('{"return"'));
  const info = await qmp.closed;
  assert.equal(info.reason, 'error');
  assert.ok(info.error instanceof QmpProtocolError);
});

test('a JSON value that is not an object is a protocol error', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.executeRaw('x');
  await conn.nextCommand();
  conn.sendRaw('[1,2,3]\r\n');
  await assert.rejects(p, QmpProtocolError);
});

test('a line over the size cap is a protocol error, and memory stays bounded', async (t) => {
  const srv = await FakeQmpServer.start();
  t.after(() => srv.close());
  const connP = srv.nextConnection();
  const qmp = await QmpClient.connect({ path: srv.path, maxLineBytes: 4096 });
  t.after(() => qmp.close());
  const conn = await connP;
  const p = qmp.executeRaw('big');
  const m = await conn.nextCommand();
  conn.sendRaw(`{"return": "${'x'.repeat(3000)}`);
  conn.sendRaw(`${'y'.repeat(3000)}", "id": ${String(m.id)}}\r\n`);
  await assert.rejects(p, (e: unknown) => e instanceof QmpProtocolError && /exceeds the cap/.test(e.message));
});

test('unknown message kinds and unknown events are tolerated', async (t) => {
  const { qmp, conn } = await setup(t);
  const ev = qmp.waitForEvent('FUTURE_EVENT_OF_QEMU_12');
  conn.send({ something: 'new' });
  conn.event('FUTURE_EVENT_OF_QEMU_12', { extra: [1] });
  const e = await ev;
  assert.deepEqual(e.data, { extra: [1] });
  const p = qmp.executeRaw('still-works');
  conn.reply(await conn.nextCommand(), { unknownField: true });
  assert.deepEqual(await p, { unknownField: true });
});

test('waitForEvent subscribes before the triggering command (no race), with a predicate', async (t) => {
  const { qmp } = await setup(t, {
    onCommand: (m: { execute?: string; id?: unknown }, c: FakeConn) => {
      // The event arrives before the reply, as QEMU does for quit/system_powerdown.
      c.event('BLOCK_JOB_COMPLETED', { device: 'other' });
      c.event('BLOCK_JOB_COMPLETED', { device: 'drive0' });
      c.reply(m, {});
    },
  });
  const done = qmp.waitForEvent('BLOCK_JOB_COMPLETED', {
    timeoutMs: 5_000,
    predicate: (e) => (e.data as { device?: string }).device === 'drive0',
  });
  await qmp.execute('block-commit', { device: 'drive0' });
  const e = await done;
  assert.equal(e.event, 'BLOCK_JOB_COMPLETED');
  assert.equal(e.data?.device, 'drive0');
});

test('waitForEvent times out and aborts; an unawaited rejection does not crash', async (t) => {
  const { qmp } = await setup(t);
  await assert.rejects(qmp.waitForEvent('SHUTDOWN', { timeoutMs: 30 }), QmpTimeoutError);
  const ac = new AbortController();
  const w = qmp.waitForEvent('SHUTDOWN', { signal: ac.signal });
  ac.abort();
  await assert.rejects(w, QmpAbortedError);
  qmp.waitForEvent('SHUTDOWN', { timeoutMs: 10 }); // never awaited
  await new Promise((r) => setTimeout(r, 50));
});

test('each event subscriber has its own queue; name filters; slow readers lose nothing', async (t) => {
  const { qmp, conn } = await setup(t);
  const all = qmp.events();
  const stops = qmp.events({ name: ['STOP', 'RESUME'] });
  conn.event('STOP');
  conn.event('RTC_CHANGE', { offset: 1 });
  conn.event('RESUME');
  const p = qmp.executeRaw('sync');
  conn.reply(await conn.nextCommand(), {});
  await p; // every event above has been dispatched by now
  assert.equal(all.pending, 3);
  assert.equal(stops.pending, 2);
  const names: string[] = [];
  for await (const e of stops) {
    names.push(e.event);
    if (names.length === 2) break;
  }
  assert.deepEqual(names, ['STOP', 'RESUME']);
  const first = await all.next();
  assert.equal(first.value?.event, 'STOP');
  assert.equal(first.value?.data, undefined);
  all.close();
  assert.deepEqual(await all.next(), { value: undefined, done: true });
});

test('a full subscriber queue drops the oldest and counts it', async (t) => {
  const { qmp, conn } = await setup(t);
  const s = qmp.events({ maxQueue: 2 });
  for (let i = 0; i < 5; i++) conn.event('E', { i });
  const p = qmp.executeRaw('sync');
  conn.reply(await conn.nextCommand(), {});
  await p;
  assert.equal(s.dropped, 3);
  assert.deepEqual((await s.next()).value?.data, { i: 3 });
  s.close();
});

test('close() rejects pending commands, ends iterators cleanly, and is idempotent', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.executeRaw('pending');
  await conn.nextCommand();
  const s = qmp.events();
  const next = s.next();
  const rejected = assert.rejects(p, QmpDisconnectedError);
  await qmp.close();
  await rejected;
  assert.deepEqual(await next, { value: undefined, done: true });
  assert.equal((await qmp.closed).reason, 'closed');
  await qmp.close();
  const late = qmp.events();
  assert.deepEqual(await late.next(), { value: undefined, done: true });
});

test('hmp() passes a command line through human-monitor-command', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.hmp('info status');
  const m = await conn.nextCommand();
  assert.equal(m.execute, 'human-monitor-command');
  assert.deepEqual(m.arguments, { 'command-line': 'info status' });
  conn.reply(m, 'VM status: running\r\n');
  assert.equal(await p, 'VM status: running\r\n');
});

test('exec-oob is sent when asked', async (t) => {
  const { qmp, conn } = await setup(t);
  const p = qmp.execute('migrate-pause', {}, { oob: true });
  const m = await conn.nextCommand();
  assert.equal(m['exec-oob'], 'migrate-pause');
  assert.equal(m.execute, undefined);
  conn.reply(m, {});
  assert.deepEqual(await p, {});
});

test('invalid arguments are rejected before anything is sent', async (t) => {
  const { qmp, conn } = await setup(t);
  await assert.rejects(qmp.executeRaw(''), (e: unknown) => e instanceof ValidationError && e.field === 'name');
  await assert.rejects(qmp.executeRaw('x', [] as never), (e: unknown) => e instanceof ValidationError && e.field === 'args');
  await assert.rejects(qmp.executeRaw('x', {}, { timeoutMs: -1 }), (e: unknown) => e instanceof ValidationError && e.field === 'options.timeoutMs');
  assert.equal(conn.received.length, 0);
  assert.equal(qmp.stats.sent, 0);
});
