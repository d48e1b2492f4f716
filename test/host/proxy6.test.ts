// The TCP proxy on loopback (in this process): relaying both ways, half-close, the connection
// limit, the idle timeout, a refused target, resets, option validation; and its defences, with
// IPv4 loopback addresses (127.0.0.N) as distinct sources: the per-source limit, eviction of the
// biggest holder's least active connection on a full route and on a full proxy, the first-byte
// timeout (either direction: a server banner counts), the lifetime timeout.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { ValidationError } from '@vmhost/net';
import { TcpProxy, normalizeProxyOptions, type ProxyOptions } from '../../packages/host/src/services/proxy6.js';

/** A target server on 127.0.0.1 with its own connection handler; closed after the test. */
async function target(t: TestContext, onConn: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onConn(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { server, port: (server.address() as { port: number }).port, sockets };
}

async function proxy(t: TestContext, targetPort: number, extra: Partial<ProxyOptions> = {}): Promise<{ p: TcpProxy; port: number }> {
  const p = await TcpProxy.listen({ routes: [{ name: 'r', listen: { address: '::1', port: 0 }, target: { host: '127.0.0.1', port: targetPort } }], ...extra });
  t.after(() => p.close());
  return { p, port: p.stats()[0]!.listen.port };
}

function client(port: number): Socket {
  const s = connect({ host: '::1', port, allowHalfOpen: true });
  s.on('error', () => undefined);
  return s;
}

/** Everything `s` sends until it ends or closes. */
function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const done = (): void => resolve(Buffer.concat(chunks));
    s.once('end', done);
    s.once('close', done);
  });
}

/** Resolves when the peer ended `s` or it closed (errors included, unlike events.once). */
function closed(s: Socket): Promise<void> {
  return new Promise((r) => {
    s.once('end', () => r());
    s.once('close', () => r());
    s.resume();
  });
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('relays both ways, byte for byte (8 MiB each way), IPv6 listener to an IPv4 target', async (t) => {
  const tgt = await target(t, (s) => s.pipe(s)); // echo
  const { p, port } = await proxy(t, tgt.port);
  const payload = randomBytes(8 << 20);
  const c = client(port);
  const got = readAll(c);
  c.end(payload);
  const back = await got;
  assert.equal(back.length, payload.length);
  assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  await until(() => p.stats()[0]!.active === 0);
  assert.deepEqual(
    (({ active, total, refused, errors }) => ({ active, total, refused, errors }))(p.stats()[0]!),
    { active: 0, total: 1, refused: 0, errors: 0 },
  );
  assert.equal(p.stats()[0]!.name, 'r');
  assert.deepEqual(p.stats()[0]!.target, { host: '127.0.0.1', port: tgt.port });
});

test('half-close: the client ends its side and still gets the answer; the target ends first and still gets data', async (t) => {
  // target answers only after the client's FIN
  const tgt = await target(t, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`got ${n} bytes`));
  });
  const { port } = await proxy(t, tgt.port);
  const c = client(port);
  const got = readAll(c);
  c.write('x'.repeat(1000));
  c.end();
  assert.equal((await got).toString(), 'got 1000 bytes');

  // target says hello and closes its side at once, then counts what the client sends after that
  let counted: (n: number) => void;
  const count = new Promise<number>((r) => (counted = r));
  const tgt2 = await target(t, (s) => {
    s.end('bye');
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => counted(n));
  });
  const { port: port2 } = await proxy(t, tgt2.port);
  const c2 = client(port2);
  const hello = readAll(c2);
  assert.equal((await hello).toString(), 'bye');
  assert.equal(c2.writable, true, 'the client may still write after the peer ended');
  c2.end('late data');
  assert.equal(await count, 'late data'.length);
});

test('beyond maxConnections new connections are closed at once and counted as refused', async (t) => {
  const tgt = await target(t, (s) => s.on('end', () => s.end())); // holds connections open until the client ends
  const { p, port } = await proxy(t, tgt.port, { maxConnections: 2 });
  const a = client(port);
  const b = client(port);
  await until(() => p.stats()[0]!.active === 2 && tgt.sockets.size === 2);
  const c = client(port);
  const t0 = Date.now();
  await closed(c);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(p.stats()[0]!.refused, 1);
  assert.equal(p.stats()[0]!.active, 2);
  assert.equal(tgt.sockets.size, 2, 'the refused connection never reached the target');
  a.destroy();
  await until(() => p.stats()[0]!.active === 1);
  const d = client(port);
  await until(() => p.stats()[0]!.active === 2);
  assert.equal(p.stats()[0]!.total, 3);
  b.destroy();
  d.destroy();
});

test('an idle connection is closed on both sides; traffic keeps it open', async (t) => {
  const tgt = await target(t, (s) => s.pipe(s));
  const { p, port } = await proxy(t, tgt.port, { idleTimeoutMs: 300 });
  // kept alive by a byte every 100 ms for 900 ms
  const busy = client(port);
  busy.on('data', () => undefined);
  await once(busy, 'connect');
  for (let i = 0; i < 9; i++) {
    busy.write('.');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(busy.destroyed, false);
  // idle: timed from before it connects (the proxy's idle timer starts at its accept; a t0 taken
  // after waiting for the target's side missed that wait on a busy machine: "closed after 152 ms")
  const t0 = Date.now();
  const idle = client(port);
  await once(idle, 'connect');
  await until(() => tgt.sockets.size === 2);
  await closed(idle);
  const ms = Date.now() - t0;
  assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms`);
  await until(() => tgt.sockets.size === 1, 1000); // the target's side went too
  busy.destroy();
  await until(() => tgt.sockets.size === 0 && p.stats()[0]!.active === 0);
});

test('a refused target closes the client and counts an error; a target reset destroys the client', async (t) => {
  const gone = createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const deadPort = (gone.address() as { port: number }).port;
  gone.close();
  const { p, port } = await proxy(t, deadPort);
  const c = client(port);
  const got = readAll(c);
  c.write('hello?');
  assert.equal((await got).length, 0);
  await until(() => p.stats()[0]!.errors === 1 && p.stats()[0]!.active === 0);

  const tgt = await target(t, (s) => s.once('data', () => s.resetAndDestroy()));
  const { p: p2, port: port2 } = await proxy(t, tgt.port);
  const c2 = client(port2);
  c2.write('boom');
  await closed(c2);
  await until(() => p2.stats()[0]!.errors === 1 && p2.stats()[0]!.active === 0);

  // a client that resets mid-stream does not disturb the proxy
  const tgt3 = await target(t, (s) => s.pipe(s));
  const { p: p3, port: port3 } = await proxy(t, tgt3.port);
  const c3 = client(port3);
  c3.write(randomBytes(1 << 20));
  c3.resetAndDestroy();
  await until(() => p3.stats()[0]!.active === 0 && tgt3.sockets.size === 0);
  const c4 = client(port3);
  const got4 = readAll(c4);
  c4.end('still here');
  assert.equal((await got4).toString(), 'still here');
});

test('close() stops listening and ends open connections', async (t) => {
  const tgt = await target(t, () => undefined);
  const p = await TcpProxy.listen({ routes: [{ listen: { address: '127.0.0.1', port: 0 }, target: { host: 'localhost', port: tgt.port } }] });
  const port = p.stats()[0]!.listen.port;
  assert.equal(p.stats()[0]!.name, `127.0.0.1:0`);
  const c = connect({ host: '127.0.0.1', port });
  c.on('error', () => undefined);
  await until(() => p.stats()[0]!.active === 1);
  await p.close();
  await closed(c);
  const c2 = connect({ host: '127.0.0.1', port });
  const err = await once(c2, 'error').then(([e]) => e as NodeJS.ErrnoException);
  assert.equal(err.code, 'ECONNREFUSED');
});

test('a listen failure names the route and closes the listeners already open', async () => {
  const busy = createServer();
  busy.listen(0, '::1');
  await once(busy, 'listening');
  const port = (busy.address() as { port: number }).port;
  try {
    await assert.rejects(
      TcpProxy.listen({
        routes: [
          { name: 'first', listen: { address: '::1', port: 0 }, target: { host: '127.0.0.1', port: 1 } },
          { name: 'second', listen: { address: '::1', port }, target: { host: '127.0.0.1', port: 1 } },
        ],
      }),
      (e: unknown) => (e as { code?: string }).code === 'EADDRINUSE' && /second/.test((e as Error).message),
    );
  } finally {
    busy.close();
  }
});

test('options are validated with the field named; defaults are filled in', () => {
  const r = { listen: { address: '2001:db8::2', port: 8080 }, target: { host: '192.168.0.10', port: 80 } };
  assert.deepEqual(normalizeProxyOptions({ routes: [r] }), {
    routes: [{ ...r, name: '[2001:db8::2]:8080' }],
    maxConnections: 256,
    maxConnectionsPerSource: 32,
    maxTotalConnections: 4096,
    idleTimeoutMs: 300000,
    connectTimeoutMs: 5000,
    firstByteTimeoutMs: 10000,
    maxLifetimeMs: 3600000,
  });
  const bad = (o: unknown, field: string): void => {
    assert.throws(() => normalizeProxyOptions(o as ProxyOptions), (e: unknown) => e instanceof ValidationError && e.field === field);
  };
  bad({ routes: [] }, 'routes');
  bad({ routes: [{ ...r, listen: { address: '2001:db8::zz', port: 80 } }] }, 'routes[0].listen.address');
  bad({ routes: [{ ...r, listen: { address: '::1', port: 65536 } }] }, 'routes[0].listen.port');
  bad({ routes: [{ ...r, target: { host: 'bad host', port: 80 } }] }, 'routes[0].target.host');
  bad({ routes: [{ ...r, target: { host: '192.168.0.10', port: 0 } }] }, 'routes[0].target.port');
  bad({ routes: [{ ...r, name: 'a\nb' }] }, 'routes[0].name');
  bad({ routes: [r, { ...r, target: { host: '192.168.0.11', port: 80 } }] }, 'routes[1].listen');
  bad({ routes: [r], maxConnections: 0 }, 'maxConnections');
  bad({ routes: [r], idleTimeoutMs: 1.5 }, 'idleTimeoutMs');
  bad({ routes: [r], connectTimeoutMs: -1 }, 'connectTimeoutMs');
  bad({ routes: [r], maxConnections: 1_000_001 }, 'maxConnections');
  bad({ routes: [r], maxConnectionsPerSource: 0 }, 'maxConnectionsPerSource');
  bad({ routes: [r], maxTotalConnections: 2e6 }, 'maxTotalConnections');
  bad({ routes: [r], firstByteTimeoutMs: 0 }, 'firstByteTimeoutMs');
  bad({ routes: [r], maxLifetimeMs: 2 ** 31 }, 'maxLifetimeMs');
});

// ------------------------------------------------------------------------------- defences

/** A proxy on 127.0.0.1 (any port) per target port, with `extra` limits. */
async function proxy4(t: TestContext, targetPorts: number[], extra: Partial<ProxyOptions> = {}): Promise<{ p: TcpProxy; ports: number[] }> {
  const p = await TcpProxy.listen({
    routes: targetPorts.map((port, i) => ({ name: `r${i}`, listen: { address: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port } })),
    ...extra,
  });
  t.after(() => p.close());
  return { p, ports: p.stats().map((s) => s.listen.port) };
}

/** A client from 127.0.0.`from` (a source of its own). */
function client4(port: number, from: number): Socket {
  const s = connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${from}`, allowHalfOpen: true });
  s.on('error', () => undefined);
  return s;
}

/** Sends `text` on `s` and resolves with the echo (an echo target). */
function echo(s: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) {
        s.off('data', onData);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)));
    s.write(text);
  });
}

test('one source gets maxConnectionsPerSource connections over all routes; more are refused; others are served', async (t) => {
  const tgt = await target(t, (s) => s.pipe(s));
  const { p, ports } = await proxy4(t, [tgt.port, tgt.port], { maxConnectionsPerSource: 3 });
  const held = [client4(ports[0]!, 2), client4(ports[0]!, 2), client4(ports[1]!, 2)];
  await until(() => p.totals().active === 3 && tgt.sockets.size === 3);
  const extra = client4(ports[1]!, 2);
  await closed(extra);
  assert.deepEqual([p.stats()[1]!.refused, p.stats()[1]!.sourceLimited, p.totals().active], [1, 1, 3]);
  const other = client4(ports[1]!, 3);
  assert.equal(await echo(other, 'from another source'), 'from another source');
  assert.deepEqual(p.totals(), { active: 4, sources: 2, maxTotalConnections: 4096 });
  for (const s of [...held, other]) s.destroy();
  await until(() => p.totals().active === 0);
});

test('a full route: a source holding fewer takes the least recently active connection of the biggest holder', async (t) => {
  const tgt = await target(t, (s) => s.pipe(s));
  const { p, ports } = await proxy4(t, [tgt.port], { maxConnections: 4 });
  const a = [0, 1, 2, 3].map(() => client4(ports[0]!, 2));
  await until(() => p.totals().active === 4);
  // a[1..3] move bytes: a[0] is the least recently active
  for (const s of a.slice(1)) assert.equal(await echo(s, 'x'), 'x');
  const b = client4(ports[0]!, 3);
  await closed(a[0]!);
  assert.equal(await echo(b, 'in'), 'in');
  assert.deepEqual(a.map((s) => s.readableEnded || s.destroyed), [true, false, false, false], 'only a[0] was closed by the proxy');
  assert.deepEqual([p.stats()[0]!.evicted, p.stats()[0]!.active], [1, 4]);
  // a, the biggest holder of the full route, is refused
  const again = client4(ports[0]!, 2);
  await closed(again);
  assert.deepEqual([p.stats()[0]!.refused, p.stats()[0]!.sourceLimited, p.stats()[0]!.active], [1, 0, 4]);
  for (const s of [...a, b]) s.destroy();
});

test('a full proxy (maxTotalConnections): eviction across routes', async (t) => {
  const tgt = await target(t, (s) => s.pipe(s));
  const { p, ports } = await proxy4(t, [tgt.port, tgt.port], { maxTotalConnections: 3 });
  const a = [0, 1, 2].map(() => client4(ports[0]!, 2));
  await until(() => p.totals().active === 3);
  for (const s of a.slice(1)) assert.equal(await echo(s, 'x'), 'x');
  const b = client4(ports[1]!, 3);
  await closed(a[0]!);
  assert.equal(await echo(b, 'other route'), 'other route');
  assert.deepEqual([p.stats()[0]!.evicted, p.stats()[0]!.active, p.stats()[1]!.active, p.totals().active], [1, 2, 1, 3]);
  for (const s of [...a, b]) s.destroy();
});

test('first-byte timeout: a connection that moves no byte either way is closed; a server banner or a client byte counts', async (t) => {
  const silent = await target(t, () => undefined);
  const banner = await target(t, (s) => s.write('220 ready\r\n'));
  const { p, ports } = await proxy4(t, [silent.port, banner.port], { firstByteTimeoutMs: 500 });
  const mute = client4(ports[0]!, 2);
  const talks = client4(ports[0]!, 3);
  talks.write('hello');
  const listens = client4(ports[1]!, 4);
  const greeting = new Promise<string>((r) => listens.once('data', (d: Buffer) => r(d.toString())));
  await closed(mute);
  assert.equal(await greeting, '220 ready\r\n');
  assert.equal(p.stats()[0]!.timeouts.firstByte, 1);
  // three times the timeout later, both others are still open
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual([talks, listens].map((s) => s.readableEnded || s.destroyed), [false, false]);
  assert.deepEqual([p.stats()[0]!.timeouts.firstByte, p.stats()[1]!.timeouts.firstByte, p.totals().active], [1, 0, 2]);
  talks.destroy();
  listens.destroy();
});

test('lifetime timeout: a busy connection is closed maxLifetimeMs after it was accepted', async (t) => {
  const tgt = await target(t, (s) => s.pipe(s));
  const { p, ports } = await proxy4(t, [tgt.port], { maxLifetimeMs: 300 });
  const c = client4(ports[0]!, 2);
  c.on('data', () => undefined);
  const ticker = setInterval(() => c.write('.'), 20);
  t.after(() => clearInterval(ticker));
  await closed(c);
  clearInterval(ticker);
  assert.deepEqual(p.stats()[0]!.timeouts, { idle: 0, firstByte: 0, lifetime: 1 });
  await until(() => p.totals().active === 0 && tgt.sockets.size === 0);
});
