// The TCP proxy on loopback (in this process): relaying both ways, half-close, the connection
// limit, the idle timeout, a refused target, resets, option validation.
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
  // idle
  const idle = client(port);
  await once(idle, 'connect');
  await until(() => tgt.sockets.size === 2);
  const t0 = Date.now();
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
    idleTimeoutMs: 300000,
    connectTimeoutMs: 5000,
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
});
