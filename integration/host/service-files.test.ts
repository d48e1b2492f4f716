// The files of the services (dnsmasq, the IPv6 proxy) are private and never written through a
// planted link: with umask 0, the directory is 0700 and every file 0600 (also those dnsmasq
// creates: its lease file and log, made first by vmhost, and its pidfile); a symbolic link (owned
// by `nobody`, as an attacker would plant it) at dnsmasq.out, dnsmasq.conf.tmp, dnsmasq.conf, the
// log or the lease file, at proxy6.log, proxy6.json(.tmp), proxy6.stats.json or proxy6.pid.tmp,
// a FIFO, a hard link, or a linked service directory fails the start with EDNSMASQ_FILE /
// EPROXY_FILE naming the file, starts nothing, and leaves the root-owned canary the link points
// to untouched.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lchownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Rtnl, netns } from '@vmhost/net';
import { freshNetns } from '../helpers/ns.js';
import { DnsmasqError, ProxyServiceError } from '../../packages/host/src/errors.js';
import { readLeases, startDnsmasq, stopDnsmasq, type DnsmasqOptions } from '../../packages/host/src/services/dnsmasq.js';
import { startProxyService, type ProxyServiceOptions } from '../../packages/host/src/services/proxy6.js';

async function bridgeNs(t: TestContext): Promise<string> {
  const ns = await freshNetns(t, 'files');
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.add({ kind: 'bridge', name: 'br0', stp: false, up: true });
    await h.addresses.add('br0', '192.168.0.1/24');
    await h.addresses.add('lo', '2001:db8::2/128', { nodad: true });
    await h.links.set('lo', { up: true });
  } finally {
    h.close();
  }
  return ns;
}

function tmp(t: TestContext): string {
  const dir = mkdtempSync('/tmp/vmht-files-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function dnsmasqOptions(dir: string, ns: string): DnsmasqOptions {
  return { dir, interface: 'br0', address: '192.168.0.1', range: ['192.168.0.100', '192.168.0.150'], netmask: '255.255.255.0', leaseTime: '12h', hosts: [], netns: ns };
}

function proxyOptions(dir: string, ns: string): ProxyServiceOptions {
  return { dir, netns: ns, routes: [{ listen: { address: '2001:db8::2', port: 8080 }, target: { host: '192.168.0.1', port: 80 } }] };
}

/** A root-owned file and what it looks like now: content, mode, owner, size, mtime. */
function canary(t: TestContext): { path: string; snapshot(): string } {
  const path = join(tmp(t), 'canary');
  writeFileSync(path, 'root-owned canary\n', { mode: 0o644 });
  const snapshot = (): string => {
    const st = statSync(path);
    return JSON.stringify([readFileSync(path, 'utf8'), st.mode, st.uid, st.size, st.mtimeMs]);
  };
  return { path, snapshot };
}

/** `target` planted as a symbolic link at `at`, owned by nobody (as the attacker did). */
function plant(at: string, target: string): void {
  symlinkSync(target, at);
  lchownSync(at, 65534, 65534);
}

test('dnsmasq files are 0600 in a 0700 directory with umask 0, across a restart', async (t) => {
  const ns = await bridgeNs(t);
  const dir = join(tmp(t), 'dnsmasq');
  const umask = process.umask(0);
  t.after(() => process.umask(umask));
  const o = dnsmasqOptions(dir, ns);
  await startDnsmasq(o);
  t.after(() => stopDnsmasq(dir));
  const check = (): void => {
    assert.equal((lstatSync(dir).mode & 0o7777).toString(8), '700');
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['dnsmasq.conf', 'dnsmasq.leases', 'dnsmasq.log', 'dnsmasq.out', 'dnsmasq.pid']);
    for (const f of files) {
      const st = lstatSync(join(dir, f));
      assert.ok(st.isFile(), f);
      assert.equal((st.mode & 0o7777).toString(8), '600', f);
    }
  };
  check();
  await startDnsmasq({ ...o, leaseTime: '1h' }); // a changed config: a new dnsmasq
  check();
  assert.deepEqual(readLeases(dir), []);
});

test('a link planted at a dnsmasq file fails the start with EDNSMASQ_FILE; the canary is untouched; nothing runs', async (t) => {
  const ns = await bridgeNs(t);
  const c = canary(t);
  const before = c.snapshot();
  for (const name of ['dnsmasq.out', 'dnsmasq.conf.tmp', 'dnsmasq.conf', 'dnsmasq.log', 'dnsmasq.leases']) {
    const dir = join(tmp(t), 'dnsmasq');
    mkdirSync(dir, { mode: 0o700 });
    plant(join(dir, name), c.path);
    await assert.rejects(startDnsmasq(dnsmasqOptions(dir, ns)), (e: unknown) => {
      assert.ok(e instanceof DnsmasqError, `${name}: ${String(e)}`);
      assert.equal(e.code, 'EDNSMASQ_FILE', name);
      assert.match(e.message, new RegExp(`${name.replace('.', '\\.')}: it is a symbolic link`), name);
      return true;
    });
    assert.equal(c.snapshot(), before, `${name}: the canary is untouched`);
    assert.ok(lstatSync(join(dir, name)).isSymbolicLink(), `${name}: the link is left for inspection`);
    assert.deepEqual(await netns.pids(ns), [], `${name}: no dnsmasq runs`);
  }
  // the lease file is read without following the link
  const dir = join(tmp(t), 'dnsmasq');
  mkdirSync(dir, { mode: 0o700 });
  plant(join(dir, 'dnsmasq.leases'), c.path);
  assert.throws(() => readLeases(dir), (e: unknown) => e instanceof DnsmasqError && e.code === 'EDNSMASQ_FILE');
});

test('a FIFO, a hard link, or a linked service directory is refused as well', async (t) => {
  const ns = await bridgeNs(t);
  const c = canary(t);
  const before = c.snapshot();
  const fifoDir = join(tmp(t), 'dnsmasq');
  mkdirSync(fifoDir, { mode: 0o700 });
  assert.equal(spawnSync('mkfifo', [join(fifoDir, 'dnsmasq.out')]).status, 0);
  await assert.rejects(startDnsmasq(dnsmasqOptions(fifoDir, ns)), (e: unknown) => e instanceof DnsmasqError && e.code === 'EDNSMASQ_FILE' && /dnsmasq\.out: it is not a regular file/.test(e.message));

  const hardDir = join(tmp(t), 'dnsmasq');
  mkdirSync(hardDir, { mode: 0o700 });
  linkSync(c.path, join(hardDir, 'dnsmasq.log'));
  await assert.rejects(startDnsmasq(dnsmasqOptions(hardDir, ns)), (e: unknown) => e instanceof DnsmasqError && e.code === 'EDNSMASQ_FILE' && /dnsmasq\.log: it has 2 hard links/.test(e.message));

  const base = tmp(t);
  const elsewhere = join(base, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  plant(join(base, 'dnsmasq'), elsewhere);
  await assert.rejects(startDnsmasq(dnsmasqOptions(join(base, 'dnsmasq'), ns)), (e: unknown) => e instanceof DnsmasqError && e.code === 'EDNSMASQ_FILE' && /symbolic link; refusing to use it as a service directory/.test(e.message));
  assert.deepEqual(readdirSync(elsewhere), [], 'nothing was written into the linked directory');
  assert.equal(c.snapshot(), before);
  assert.deepEqual(await netns.pids(ns), []);
});

test('a link planted at a proxy file (log, config and its .tmp, stats, the pidfile\'s .tmp) fails the start with EPROXY_FILE; the canary is untouched', async (t) => {
  const ns = await bridgeNs(t);
  const c = canary(t);
  const before = c.snapshot();
  for (const name of ['proxy6.log', 'proxy6.json.tmp', 'proxy6.json', 'proxy6.stats.json', 'proxy6.pid.tmp']) {
    const dir = join(tmp(t), 'proxy6');
    mkdirSync(dir, { mode: 0o700 });
    plant(join(dir, name), c.path);
    await assert.rejects(startProxyService(proxyOptions(dir, ns)), (e: unknown) => {
      assert.ok(e instanceof ProxyServiceError, `${name}: ${String(e)}`);
      assert.equal(e.code, 'EPROXY_FILE', name);
      assert.match(e.message, /it is a symbolic link/, name);
      return true;
    });
    assert.equal(c.snapshot(), before, `${name}: the canary is untouched`);
    assert.deepEqual(await netns.pids(ns), [], `${name}: no proxy runs`);
  }
});
