// The lab kit (@vmhost/lab): a client — router — server lab with IPv4 and IPv6 and
// real traffic across (busybox ping, httpd, wget, nc), checked against `ip -j` as an independent
// oracle; close removes namespaces and processes; a crashed run's leftovers are swept by the next
// create while a live lab's are not; validation before anything is made; rollback of a failed
// declaration; imperative additions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { netns, NetlinkError, SystemError, ValidationError } from '@vmhost/net';
import { Lab, LabSetupError, LAB_OWNER_DIR } from '@vmhost/lab';
import { isAlive } from '@vmhost/kvm';

const pexec = promisify(execFile);
/** The prefix of every lab these tests make (swept by scripts/run-tests.mjs, see helpers/sweep.ts). */
const P = 'vmhl-';

async function ipj<T = any>(ns: string, args: string[]): Promise<T> {
  const { stdout } = await pexec('ip', ['-j', '-n', ns, ...args]);
  return JSON.parse(stdout.trim() || '[]') as T;
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('client — router — server: IPv4 and IPv6 traffic across, checked with ip -j; close removes everything', async (t) => {
  const t0 = performance.now();
  const lab = await Lab.create({
    prefix: `${P}t-`,
    namespaces: {
      client: {},
      router: {
        bridges: { br0: {} },
        addresses: { br0: ['198.51.100.1/24', '2001:db8:2::1/64', 'fe80::1/64'] },
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 },
      },
      server: { addresses: { lo: ['198.51.100.200/32'] } },
    },
    links: [
      {
        a: { ns: 'client', name: 'eth0', mac: '52:54:00:00:00:02' },
        b: { ns: 'router', name: 'c0' },
        addresses: { a: ['203.0.113.2/24', '2001:db8:1::2/64'], b: ['203.0.113.1/24', '2001:db8:1::1/64'] },
      },
      { a: { ns: 'server', name: 'eth0' }, b: { ns: 'router', name: 's0', master: 'br0' }, addresses: { a: ['198.51.100.2/24', '2001:db8:2::2/64'] } },
    ],
    routes: {
      client: [{ to: 'default', via: '203.0.113.1' }, { to: 'default', via: '2001:db8:1::1' }],
      server: [{ to: 'default', via: '198.51.100.1' }, { to: 'default', via: 'fe80::1', dev: 'eth0' }],
      router: [{ to: '198.51.100.200/32', via: '198.51.100.2' }],
    },
  });
  const created = performance.now() - t0;
  let closed = false;
  t.after(() => (closed ? undefined : lab.close()));
  const names = lab.names;
  assert.deepEqual(Object.keys(names).sort(), ['client', 'router', 'server']);
  for (const [k, real] of Object.entries(names)) {
    assert.equal(real, `${P}t-${lab.id}-${k}`);
    assert.equal(lab.ns(k), real);
    assert.ok(await netns.exists(real));
    assert.ok(existsSync(join(LAB_OWNER_DIR, real)), 'owner recorded');
  }

  // The oracle: addresses, link state, bridge port, routes.
  const cl = lab.ns('client');
  const ro = lab.ns('router');
  const sv = lab.ns('server');
  const [eth0] = await ipj(cl, ['addr', 'show', 'dev', 'eth0']);
  assert.equal(eth0.address, '52:54:00:00:00:02');
  assert.ok(eth0.flags.includes('UP'));
  const locals = eth0.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
  assert.ok(locals.includes('203.0.113.2/24') && locals.includes('2001:db8:1::2/64'), locals.join(' '));
  assert.ok(!eth0.addr_info.some((a: any) => a.tentative), 'no tentative IPv6 address (DAD off)');
  for (const ns of [cl, ro, sv]) {
    const [lo] = await ipj(ns, ['link', 'show', 'dev', 'lo']);
    assert.ok(lo.flags.includes('UP'), `lo up in ${ns}`);
  }
  const [s0] = await ipj(ro, ['link', 'show', 'dev', 's0']);
  assert.equal(s0.master, 'br0');
  const [lo] = await ipj(sv, ['addr', 'show', 'dev', 'lo']);
  assert.ok(lo.addr_info.some((a: any) => a.local === '198.51.100.200'));
  const r4 = await ipj(cl, ['route', 'show', 'default']);
  assert.deepEqual(r4.map((r: any) => [r.gateway, r.dev]), [['203.0.113.1', 'eth0']]);
  const r6 = await ipj(sv, ['-6', 'route', 'show', 'default']);
  assert.deepEqual(r6.map((r: any) => [r.gateway, r.dev]), [['fe80::1', 'eth0']]);
  assert.equal(netns.readFileIn(ro, '/proc/sys/net/ipv4/ip_forward').trim(), '1');
  assert.equal(netns.readFileIn(cl, '/proc/sys/net/ipv4/ip_forward').trim(), '0');

  // The Rtnl handle agrees.
  const h = await lab.rtnl('router');
  assert.equal(h, await lab.rtnl('router'), 'cached');
  assert.equal((await h.links.get('c0')).flags.up, true);

  // Traffic: ping both families, through the router.
  for (const dst of ['198.51.100.2', '2001:db8:2::2', '198.51.100.200']) {
    const r = await lab.run('client', 'busybox', ['ping', '-c1', '-W2', dst], { timeoutMs: 10000 });
    assert.equal(r.code, 0, `ping ${dst}: ${r.stdout}${r.stderr}`);
  }
  // HTTP: busybox httpd in server, wget from client.
  const www = mkdtempSync(join(tmpdir(), 'vmhost-lab-www-'));
  t.after(() => rmSync(www, { recursive: true, force: true }));
  writeFileSync(join(www, 'index.html'), 'hello from the lab\n');
  const httpd = lab.spawn('server', 'busybox', ['httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
  const httpdPid = httpd.pid!;
  await waitFor('httpd listening', () => ssListening(sv, 8080));
  for (const url of ['http://198.51.100.2:8080/', 'http://[2001:db8:2::2]:8080/']) {
    const body = await lab.exec('client', 'busybox', ['wget', '-q', '-O-', url], { timeoutMs: 10000 });
    assert.equal(body, 'hello from the lab\n', url);
  }
  // nc: a line from client to a listener in server (IPv6), through the router.
  // The listener's stdin stays open (a pipe never written): with /dev/null it would half-close
  // the connection at once, and the client, seeing that FIN before Node has written its stdin
  // (under load), would exit without sending anything.
  const listener = lab.spawn('server', 'busybox', ['nc', '-l', '-p', '9000'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let got = '';
  listener.stdout!.on('data', (d: Buffer) => (got += d.toString()));
  await waitFor('nc listening', () => ssListening(sv, 9000));
  const sent = await lab.run('client', 'busybox', ['nc', '-w', '2', '2001:db8:2::2', '9000'], { input: 'over the router\n', timeoutMs: 10000 });
  assert.equal(sent.code, 0, sent.stderr);
  await waitFor('nc received', async () => got.includes('over the router'));

  // A process the lab did not track (started with netns.spawn) is also killed by close.
  const stray = netns.spawn(sv, 'sleep', ['600'], { stdio: 'ignore' });
  const strayPid = stray.pid!;
  const inServer = await lab.pids('server');
  assert.ok(inServer.includes(httpdPid) && inServer.includes(strayPid));

  const t1 = performance.now();
  await lab.close();
  closed = true;
  const closing = performance.now() - t1;
  t.diagnostic(`3-namespace lab: create ${created.toFixed(1)} ms, close ${closing.toFixed(1)} ms`);
  const left = await netns.list();
  for (const real of Object.values(names)) {
    assert.ok(!left.includes(real), `${real} removed`);
    assert.ok(!existsSync(join(LAB_OWNER_DIR, real)), 'owner record removed');
  }
  assert.ok(!isAlive(httpdPid) && !isAlive(strayPid), 'processes killed');
  assert.equal(lab.closed, true);
  await lab.close(); // idempotent
  assert.throws(() => lab.spawn('client', 'true'), /closed/);
  await assert.rejects(lab.addRoute('client', { to: '192.0.2.0/24', via: '203.0.113.1' }), /closed/);
});

async function ssListening(ns: string, port: number): Promise<boolean> {
  const { stdout } = await pexec('ss', ['-N', ns, '-ltnH', `sport = :${port}`]).catch(() => ({ stdout: '' }));
  return stdout.trim().length > 0;
}

test('a crashed lab (its process killed) is swept by the next create with the prefix; a live lab is not', async (t) => {
  const prefix = `${P}c-`;
  const live = await Lab.create({ prefix, namespaces: { keep: {} } });
  t.after(() => live.close());
  const liveSleeper = live.spawn('keep', 'sleep', ['600'], { stdio: 'ignore' });

  // A child process makes a lab with a process inside, reports its names, and is SIGKILLed.
  const code = `
    import { Lab } from ${JSON.stringify(new URL('../../packages/lab/src/index.ts', import.meta.url).pathname)};
    const lab = await Lab.create({ prefix: ${JSON.stringify(prefix)}, namespaces: { a: {}, b: {} },
      links: [{ a: { ns: 'a', name: 'x0' }, b: { ns: 'b', name: 'x1' } }] });
    const s = lab.spawn('a', 'sleep', ['600'], { stdio: 'ignore', detached: true });
    process.stdout.write(JSON.stringify({ names: lab.names, sleeper: s.pid }) + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = await new Promise<{ names: Record<string, string>; sleeper: number }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out));
    });
    child.once('exit', (c) => reject(new Error(`child exited ${String(c)}`)));
  });
  t.after(async () => {
    for (const n of Object.values(info.names)) if (await netns.exists(n)) await netns.delete(n).catch(() => undefined);
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const crashed = Object.values(info.names);
  for (const n of crashed) assert.ok(await netns.exists(n), `${n} left behind by the crash`);
  assert.ok(isAlive(info.sleeper), 'the crashed lab left a process');

  // A new lab with the same prefix sweeps the leftovers (and kills what ran inside) first.
  const next = await Lab.create({ prefix, namespaces: { n: {} } });
  t.after(() => next.close());
  for (const n of crashed) {
    assert.equal(await netns.exists(n), false, `${n} swept`);
    assert.ok(!existsSync(join(LAB_OWNER_DIR, n)));
  }
  await waitFor('the leftover process killed', async () => !isAlive(info.sleeper));
  // The live lab of this process was not touched.
  assert.ok(await netns.exists(live.ns('keep')));
  assert.equal(liveSleeper.exitCode, null);
  assert.ok((await live.pids('keep')).includes(liveSleeper.pid!));
  // An explicit sweep leaves both live labs.
  assert.deepEqual(await Lab.sweep(prefix), []);
});

test('validation errors name the field and nothing is created', async () => {
  const prefix = `${P}v-`;
  const before = (await netns.list()).filter((n) => n.startsWith(prefix));
  const ok = { a: {}, b: {} };
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['prefix', () => Lab.create({ prefix: 'bad/prefix', namespaces: ok })],
    ['namespaces', () => Lab.create({ prefix, namespaces: {} })],
    ['namespaces.bad name', () => Lab.create({ prefix, namespaces: { 'bad name': {} } })],
    ['namespaces.' + 'x'.repeat(60), () => Lab.create({ prefix, namespaces: { ['x'.repeat(60)]: {} } })],
    ['links[0].b.ns', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'e0' }, b: { ns: 'nope', name: 'e0' } }] })],
    ['links[0].a.name', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'much-too-long-name' }, b: { ns: 'b', name: 'e0' } }] })],
    ['links[0].a.mac', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'e0', mac: '01:00:5e:00:00:01' }, b: { ns: 'b', name: 'e0' } }] })],
    ['links[0].addresses.b[1]', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'e0' }, addresses: { b: ['203.0.113.1/24', '203.0.113.300/24'] } }] })],
    ['links[1].a.name', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'e0' } }, { a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'e1' } }] })],
    ['links[0].a.name', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'lo' }, b: { ns: 'b', name: 'e0' } }] })],
    ['links[0].b.master', () => Lab.create({ prefix, namespaces: ok, links: [{ a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'e0', master: 'br9' } }] })],
    ['namespaces.a.addresses.eth9', () => Lab.create({ prefix, namespaces: { a: { addresses: { eth9: ['203.0.113.1/24'] } } } })],
    ['namespaces.a.sysctls', () => Lab.create({ prefix, namespaces: { a: { sysctls: { 'kernel.hostname': 'x' } } } })],
    ['routes.c', () => Lab.create({ prefix, namespaces: ok, routes: { c: [] } })],
    ['routes.a[0].via', () => Lab.create({ prefix, namespaces: ok, routes: { a: [{ to: 'default', via: 'not-an-ip' }] } })],
    ['routes.a[0].to', () => Lab.create({ prefix, namespaces: ok, routes: { a: [{ to: '198.51.100.0/33' }] } })],
  ];
  for (const [field, fn] of cases) {
    await assert.rejects(fn(), (e: unknown) => {
      assert.ok(e instanceof ValidationError, `${field}: ${String(e)}`);
      assert.equal(e.field, field);
      return true;
    });
  }
  assert.deepEqual((await netns.list()).filter((n) => n.startsWith(prefix)), before);
});

test('a declaration that fails half-way is rolled back before the error propagates', async () => {
  const prefix = `${P}r-`;
  const base = {
    prefix,
    namespaces: { a: {}, b: { bridges: { br0: {} } } },
    links: [{ a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'e0', master: 'br0' }, addresses: { a: ['203.0.113.1/24'] } }],
  };
  // A gateway no prefix reaches: the kernel refuses it after namespaces, links and addresses exist.
  await assert.rejects(Lab.create({ ...base, routes: { a: [{ to: 'default', via: '192.0.2.1' }] } }), (e: unknown) => {
    assert.ok(e instanceof LabSetupError, String(e));
    assert.match(e.step, /^route .*192\.0\.2\.1.* in a$/);
    assert.ok(e.cause instanceof NetlinkError);
    assert.equal((e.cause as NetlinkError).code, 'ENETUNREACH');
    assert.deepEqual(e.rollbackErrors, []);
    return true;
  });
  // A sysctl the kernel does not have.
  await assert.rejects(Lab.create({ ...base, namespaces: { ...base.namespaces, a: { sysctls: { 'net.ipv4.no_such_knob': 1 } } } }), (e: unknown) => {
    assert.ok(e instanceof LabSetupError, String(e));
    assert.match(e.step, /no_such_knob/);
    assert.ok(e.cause instanceof SystemError || e.cause instanceof ValidationError, String(e.cause));
    return true;
  });
  // An addition to an open lab that fails removes only what it made; the lab stays usable.
  const lab = await Lab.create({ prefix, namespaces: { a: {} } });
  try {
    await assert.rejects(lab.addNamespace('b', { sysctls: { 'net.ipv4.no_such_knob': 1 } }), LabSetupError);
    assert.deepEqual(Object.keys(lab.names), ['a']);
    assert.deepEqual((await netns.list()).filter((n) => n.startsWith(prefix)), [lab.ns('a')]);
    await lab.addNamespace('b');
    await lab.addLink({ a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'e0' } });
  } finally {
    await lab.close();
  }
  assert.deepEqual((await netns.list()).filter((n) => n.startsWith(prefix)), [], 'nothing left');
  await new Promise((r) => setTimeout(r, 10));
  const records = existsSync(LAB_OWNER_DIR) ? readdirSync(LAB_OWNER_DIR).filter((n) => n.startsWith(prefix)) : [];
  assert.deepEqual(records, [], 'no owner record left');
});

test('imperative additions: namespaces, bridges, links, addresses (DAD kept on request), routes, sysctls; asyncDispose', async (t) => {
  const lab = await Lab.create({ prefix: `${P}i-`, namespaces: { a: {} }, dad: true });
  t.after(() => lab.close());
  const b = await lab.addNamespace('b');
  assert.equal(b, lab.ns('b'));
  await assert.rejects(lab.addNamespace('b'), ValidationError);
  await lab.addBridge('b', 'br0');
  await lab.addLink({ a: { ns: 'a', name: 'e0' }, b: { ns: 'b', name: 'p0', master: 'br0' }, addresses: { a: ['2001:db8:5::1/64'] } });
  await lab.addAddress('b', 'br0', '2001:db8:5::2/64', { nodad: true });
  await lab.addAddress('b', 'br0', '198.51.100.9/24');
  await lab.addRoute('a', { to: '2001:db8:6::/64', via: '2001:db8:5::2' });
  await lab.setSysctl('b', 'net.ipv6.conf.all.forwarding', 1);
  const [e0] = await ipj(lab.ns('a'), ['-6', 'addr', 'show', 'dev', 'e0', 'scope', 'global']);
  assert.equal(e0.addr_info[0].local, '2001:db8:5::1');
  // DAD kept: a fresh address without nodad is tentative at first (or already past DAD), never nodad.
  const h = await lab.rtnl('a');
  const [addr] = await h.addresses.list({ link: 'e0', family: 6 }).then((l) => l.filter((x) => x.address === '2001:db8:5::1'));
  assert.equal(addr?.flags.nodad, false);
  const [br] = await ipj(lab.ns('b'), ['-6', 'addr', 'show', 'dev', 'br0', 'scope', 'global']);
  assert.ok(br.addr_info.some((a: any) => a.local === '2001:db8:5::2'));
  const routes = await ipj(lab.ns('a'), ['-6', 'route', 'show', '2001:db8:6::/64']);
  assert.equal(routes[0]?.gateway, '2001:db8:5::2');
  assert.equal(netns.readFileIn(lab.ns('b'), '/proc/sys/net/ipv6/conf/all/forwarding').trim(), '1');
  await assert.rejects(lab.addAddress('nope', 'e0', '203.0.113.1/24'), (e: unknown) => e instanceof ValidationError && e.field === 'ns');
  // Symbol.asyncDispose closes the lab.
  const names = Object.values(lab.names);
  await lab[Symbol.asyncDispose]();
  for (const n of names) assert.equal(await netns.exists(n), false);
});

test('a process exit with the lab still open removes it (exit hook)', async () => {
  const prefix = `${P}x-`;
  const code = `
    import { Lab } from ${JSON.stringify(new URL('../../packages/lab/src/index.ts', import.meta.url).pathname)};
    const lab = await Lab.create({ prefix: ${JSON.stringify(prefix)}, namespaces: { a: {} } });
    lab.spawn('a', 'sleep', ['600'], { stdio: 'ignore' });
    process.stdout.write(JSON.stringify(lab.names));
    process.exit(0);
  `;
  const { stdout } = await pexec(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', '--input-type=module', '-e', code]);
  const names = Object.values(JSON.parse(stdout) as Record<string, string>);
  assert.equal(names.length, 1);
  for (const n of names) {
    assert.equal(await netns.exists(n), false, `${n} removed at exit`);
    assert.ok(!existsSync(join(LAB_OWNER_DIR, n)));
  }
});
