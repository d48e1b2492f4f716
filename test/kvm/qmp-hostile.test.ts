// A hostile or broken QMP server (issue 10 §8): whatever it sends — 100k-deep JSON anywhere,
// over-long lines, invalid UTF-8, JSON that is not an object, replies and events of the wrong
// shape, replies to nothing — every pending command, event stream and event wait settles with
// the right error, and no exception escapes into the process. Fake server, no QEMU.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  exceedsDepth,
  MAX_JSON_DEPTH,
  QmpClient,
  QmpDisconnectedError,
  QmpNegotiationError,
  QmpProtocolError,
} from '@vmhost/kvm';
import { ValidationError } from '@vmhost/net';
import { FakeQmpServer, type FakeConn } from './fake-qmp.js';

// Anything thrown out of a socket handler would arrive here (and fail the run).
const escaped: unknown[] = [];
const onUncaught = (err: unknown): void => void escaped.push(err);
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);
after(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  assert.deepEqual(escaped, [], 'nothing escaped into the process');
});

const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
const deepObj = (n: number): string => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}';

async function session(t: import('node:test').TestContext, maxLineBytes?: number): Promise<{ qmp: QmpClient; conn: FakeConn }> {
  const srv = await FakeQmpServer.start();
  t.after(() => srv.close());
  const connP = srv.nextConnection();
  const qmp = await QmpClient.connect({ path: srv.path, timeoutMs: 5_000, ...(maxLineBytes ? { maxLineBytes } : {}) });
  t.after(() => qmp.close());
  return { qmp, conn: await connP };
}

/**
 * Two in-band commands, one out-of-band, an event stream and an event wait are pending when the
 * server sends `bytes`: each must settle with a QmpProtocolError matching `why`, and the session
 * must end with reason 'error'.
 */
async function expectFatal(t: import('node:test').TestContext, bytes: string | Buffer | ((conn: FakeConn) => void), why: RegExp, maxLineBytes?: number): Promise<void> {
  const { qmp, conn } = await session(t, maxLineBytes);
  const a = qmp.executeRaw('a');
  const b = qmp.executeRaw('b', { x: 1 });
  const o = qmp.executeRaw('o', undefined, { oob: true });
  const stream = qmp.events();
  const wait = qmp.waitForEvent('NEVER', { timeoutMs: 30_000 });
  await conn.commands(3);
  if (typeof bytes === 'function') bytes(conn);
  else conn.sendRaw(bytes);
  const isIt = (e: unknown): boolean => e instanceof QmpProtocolError && e.code === 'EQMP_PROTOCOL' && why.test(e.message) && e.excerpt.length <= 203;
  for (const p of [a, b, o, wait]) await assert.rejects(p, isIt);
  await assert.rejects(stream.next(), isIt);
  const info = await qmp.closed;
  assert.equal(info.reason, 'error');
  assert.ok(isIt(info.error));
  assert.equal(qmp.inFlight, 0);
  await assert.rejects(qmp.executeRaw('after'), isIt);
}

test('100k-deep JSON in error, desc, return, event data or a plain message is a protocol error', async (t) => {
  const cases: [string, string][] = [
    ['error', `{"error": ${deep(100_000)}}\r\n`],
    ['error object', `{"error": ${deepObj(100_000)}}\r\n`],
    ['desc', `{"error": {"class": "GenericError", "desc": ${deep(100_000)}}}\r\n`],
    ['class', `{"error": {"class": ${deep(100_000)}, "desc": "x"}}\r\n`],
    ['return', `{"return": ${deep(100_000)}}\r\n`],
    ['event data', `{"event": "X", "data": {"d": ${deep(100_000)}}, "timestamp": {"seconds": 1, "microseconds": 2}}\r\n`],
    ['timestamp', `{"event": "X", "timestamp": ${deepObj(100_000)}}\r\n`],
    ['unknown member', `{"whatever": ${deep(100_000)}}\r\n`],
    ['just over the limit', `{"return": ${deep(MAX_JSON_DEPTH)}}\r\n`],
  ];
  for (const [, line] of cases) await expectFatal(t, line, /nests deeper than 1024/);
});

test('deep JSON split into 1-byte writes is refused the same way', async (t) => {
  const line = Buffer.from(`{"error": {"class": "GenericError", "desc": ${deep(5_000)}}}\r\n`);
  await expectFatal(t, (conn) => {
    for (let i = 0; i < line.length; i += 997) conn.sendRaw(line.subarray(i, i + 997));
  }, /nests deeper/);
});

test('nesting up to the limit is delivered', async (t) => {
  const { qmp, conn } = await session(t);
  const p = qmp.executeRaw('ok');
  conn.sendRaw(`{"return": ${deep(MAX_JSON_DEPTH - 1)}}\r\n`); // 1024 levels with the message itself
  await conn.nextCommand();
  let v = (await p) as unknown[];
  let depth = 1;
  while (Array.isArray(v[0])) (v = v[0] as unknown[]), depth++;
  assert.equal(depth, MAX_JSON_DEPTH - 1);
  assert.equal(qmp.state, 'running');
});

test('a line over the cap, in one piece or many, is a protocol error', async (t) => {
  await expectFatal(t, `{"return": "${'x'.repeat(10_000)}"}\r\n`, /exceeds the cap/, 4096);
  await expectFatal(t, (conn) => {
    for (let i = 0; i < 20; i++) conn.sendRaw('y'.repeat(500)); // never a newline
  }, /exceeds the cap/, 4096);
});

test('invalid UTF-8 is a protocol error (a correctly encoded U+FFFD is not)', async (t) => {
  for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]]) {
    await expectFatal(t, Buffer.concat([Buffer.from('{"return": "'), Buffer.from(bad), Buffer.from('"}\r\n')]), /not valid UTF-8/);
  }
  const { qmp, conn } = await session(t);
  const p = qmp.executeRaw('ok');
  await conn.nextCommand();
  conn.sendRaw('{"return": "\ufffd é"}\r\n');
  assert.equal(await p, '\ufffd é');
});

test('JSON that is not an object, or not JSON, is a protocol error', async (t) => {
  for (const line of ['42', '"str"', 'null', 'true', '[{"return": 1}]', '{"return": 1', '{"return": 1}}', 'NaN', '{"return": 1, }']) {
    await expectFatal(t, `${line}\r\n`, /is not a JSON object|bad JSON/);
  }
});

test('replies and events of the wrong shape are protocol errors', async (t) => {
  const cases: [string, RegExp][] = [
    ['{"error": "bad"}', /error reply is not/],
    ['{"error": {"class": 1, "desc": "x"}}', /error reply is not/],
    ['{"error": {"class": "GenericError"}}', /error reply is not/],
    ['{"error": {"class": "GenericError", "desc": ["x"]}}', /error reply is not/],
    ['{"error": null}', /error reply is not/],
    ['{"return": 1, "error": {"class": "A", "desc": "b"}}', /both return and error/],
    ['{"event": 5}', /event name is not a string/],
    ['{"event": "X", "timestamp": {"seconds": "1", "microseconds": 0}}', /timestamp/],
    ['{"event": "X", "timestamp": 7}', /timestamp/],
    ['{"event": "X", "data": [1]}', /data is not an object/],
  ];
  for (const [line, why] of cases) await expectFatal(t, `${line}\r\n`, why);
});

test('replies to nothing, and late replies, are dropped; the session goes on', async (t) => {
  const { qmp, conn } = await session(t);
  const sync = qmp.waitForEvent('SYNC');
  conn.send({ return: 'to nobody' });
  conn.send({ error: { class: 'GenericError', desc: 'to nobody' } });
  conn.send({ return: 1, id: 12345 });
  conn.send({ return: 1, id: [1, [2]] });
  conn.send({ something: 'new' });
  conn.event('SYNC');
  await sync;
  assert.equal(qmp.stats.droppedReplies, 5);
  const p = qmp.executeRaw('real');
  conn.reply(await conn.nextCommand(), { __proto__: { polluted: true }, ok: 1 } as never);
  const v = (await p) as Record<string, unknown>;
  assert.equal(v.ok, 1);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
  assert.equal(qmp.state, 'running');
});

test('a hostile greeting or negotiation reply fails connect with a protocol or negotiation error', async (t) => {
  const protocol: (string | Buffer)[] = [
    `{"QMP": {"version": {"qemu": ${deep(100_000)}}, "capabilities": []}}\r\n`,
    `{"QMP": ${deepObj(100_000)}}\r\n`,
    `${deep(100_000)}\r\n`,
    `{"QMP": "${'x'.repeat(20_000)}"}\r\n`,
    Buffer.concat([Buffer.from('{"QMP": "'), Buffer.from([0xfe, 0xfe]), Buffer.from('"}\r\n')]),
    '42\r\n',
    'not json\r\n',
  ];
  for (const g of protocol) {
    const srv = await FakeQmpServer.start({ greetingChunks: [g as string] });
    t.after(() => srv.close());
    await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 5_000, maxLineBytes: 16_384 }), (e: unknown) => {
      assert.ok(e instanceof QmpProtocolError, `${String(e)} for ${String(g).slice(0, 40)}`);
      return true;
    });
  }
  const negotiation = [
    `{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "desc": ${deep(100_000)}}, "capabilities": []}}\r\n`, // deep but wrong-shaped: still too deep
  ];
  for (const g of negotiation) {
    const srv = await FakeQmpServer.start({ greetingChunks: [g] });
    t.after(() => srv.close());
    await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 5_000 }), QmpProtocolError);
  }
  // a valid greeting, then a deep or broken reply to qmp_capabilities
  for (const reply of [`{"return": ${deep(100_000)}}\r\n`, `{"error": {"class": ${deep(100_000)}, "desc": "x"}}\r\n`, '{"return": \r\n']) {
    const srv = await FakeQmpServer.start({ greetingChunks: [`${GREETING}\r\n`], onNegotiation: (c) => c.sendRaw(reply) });
    t.after(() => srv.close());
    await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 5_000 }), QmpProtocolError);
  }
  // refused with a desc of the wrong type: a negotiation error naming what it can
  const srv = await FakeQmpServer.start({ greetingChunks: [`${GREETING}\r\n`], onNegotiation: (c) => c.sendRaw('{"error": {"class": "GenericError", "desc": {"x": 1}}}\r\n') });
  t.after(() => srv.close());
  await assert.rejects(QmpClient.connect({ path: srv.path, timeoutMs: 5_000 }), (e: unknown) => e instanceof QmpNegotiationError && /GenericError/.test(e.message));
});

test('arguments QEMU would choke on are refused before anything is sent', async (t) => {
  const { qmp, conn } = await session(t);
  let nested: unknown = 1;
  for (let i = 0; i < MAX_JSON_DEPTH; i++) nested = [nested];
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (const args of [{ v: nested }, cyclic, { n: 10n }, { big: 'x'.repeat(2_000_001) }]) {
    await assert.rejects(qmp.executeRaw('x', args), (e: unknown) => e instanceof ValidationError && e.field === 'args');
  }
  const p = qmp.executeRaw('after');
  conn.reply(await conn.nextCommand(), 'ok');
  assert.equal(await p, 'ok');
  assert.equal(conn.received.length, 1, 'only the valid command reached the server');
  assert.equal(qmp.stats.sent, 1);
});

test('the server closing after garbage still ends everything once, with the first error', async (t) => {
  const { qmp, conn } = await session(t);
  const p = qmp.executeRaw('x');
  await conn.nextCommand();
  conn.sendRaw(`{"return": ${deep(2_000)}}\r\n`);
  conn.destroy();
  await assert.rejects(p, QmpProtocolError);
  assert.ok((await qmp.closed).error instanceof QmpProtocolError);
  await assert.rejects(qmp.waitForEvent('X'), (e: unknown) => e instanceof QmpProtocolError || e instanceof QmpDisconnectedError);
});

test('exceedsDepth skips strings and escapes, and is exact at the limit', () => {
  assert.equal(exceedsDepth(deep(5), 5), false);
  assert.equal(exceedsDepth(deep(6), 5), true);
  assert.equal(exceedsDepth(`{"s": "${'['.repeat(50)}"}`, 5), false);
  assert.equal(exceedsDepth(`{"s": "\\"${'['.repeat(50)}"}`, 5), false);
  assert.equal(exceedsDepth(`{"s": "\\\\", "t": ${deep(6)}}`, 5), true);
  assert.equal(exceedsDepth(`${'{"a":'.repeat(6)}1${'}'.repeat(6)}`, 5), true);
  assert.equal(exceedsDepth('[]'.repeat(5000), 5), false);
});
