// The test guest's pure parts: the cpio newc writer (busybox cpio, the program the old shell
// builder used, is the oracle that reads it back), the cache location, and the current-build
// check. The build itself (apt-get download, dpkg-deb) runs in scripts/setup.sh and is booted by
// the kvm and host integration tests; integration/packaging runs `vmhost guest build` installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { cpioNewc } from '../../packages/host/src/guests/test-guest/cpio.js';
import { buildTestGuest, defaultGuestDir, readTestGuest } from '../../packages/host/src/guests/test-guest/build.js';

function tempDir(t: import('node:test').TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'vmhost-guest-test-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('cpioNewc: busybox cpio extracts the same tree, modes and bytes (sizes not multiples of 4 included)', (t) => {
  const files = { 'bin/a': Buffer.from('#!/bin/sh\necho a\n'), 'etc/x': Buffer.alloc(0), 'etc/deep/y': Buffer.from([0, 1, 2, 3, 4]), init: Buffer.from('init') };
  const archive = cpioNewc([
    { type: 'dir', name: 'bin', mode: 0o755 },
    { type: 'file', name: 'bin/a', mode: 0o755, data: files['bin/a'] },
    { type: 'dir', name: 'etc', mode: 0o750 },
    { type: 'dir', name: 'etc/deep', mode: 0o700 },
    { type: 'file', name: 'etc/deep/y', mode: 0o600, data: files['etc/deep/y'] },
    { type: 'file', name: 'etc/x', mode: 0o644, data: files['etc/x'] },
    { type: 'file', name: 'init', mode: 0o755, data: files.init },
  ]);
  assert.equal(archive.length % 4, 0);
  const listed = execFileSync('busybox', ['cpio', '-t'], { input: archive, stdio: ['pipe', 'pipe', 'ignore'] }).toString().trim().split('\n');
  assert.deepEqual(listed, ['bin', 'bin/a', 'etc', 'etc/deep', 'etc/deep/y', 'etc/x', 'init']);
  const out = tempDir(t);
  execFileSync('busybox', ['cpio', '-i', '-d'], { cwd: out, input: archive, stdio: ['pipe', 'ignore', 'ignore'] });
  for (const [name, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(out, name)), data, name);
  assert.equal(statSync(join(out, 'bin/a')).mode & 0o7777, 0o755);
  assert.equal(statSync(join(out, 'etc/deep/y')).mode & 0o7777, 0o600);
  assert.ok(statSync(join(out, 'etc/deep')).isDirectory());
  // the same entries give the same bytes (no timestamps, no inode numbers from the disk)
  assert.deepEqual(cpioNewc([{ type: 'file', name: 'init', mode: 0o755, data: files.init }]), cpioNewc([{ type: 'file', name: 'init', mode: 0o755, data: files.init }]));
  assert.throws(() => cpioNewc([{ type: 'dir', name: '/abs', mode: 0o755 }]), TypeError);
});

test('defaultGuestDir: $XDG_CACHE_HOME/vmhost/guest when absolute, else ~/.cache/vmhost/guest', () => {
  assert.equal(defaultGuestDir({ XDG_CACHE_HOME: '/var/cache/me' }), '/var/cache/me/vmhost/guest');
  const home = join(process.env.HOME ?? '/root', '.cache/vmhost/guest');
  assert.equal(defaultGuestDir({}), home);
  assert.equal(defaultGuestDir({ XDG_CACHE_HOME: 'relative/cache' }), home, 'a relative XDG_CACHE_HOME is ignored (XDG base directory spec)');
});

test('readTestGuest: only a complete build of this builder counts as current', (t) => {
  const dir = tempDir(t);
  assert.equal(readTestGuest(dir), undefined, 'empty');
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  writeFileSync(join(dir, 'guest.json'), JSON.stringify({ package: 'p', kernel: 'k', modules: [] }));
  assert.equal(readTestGuest(dir), undefined, 'a build without this builder\'s stamp (the old shell builder) is rebuilt');
  writeFileSync(join(dir, 'guest.json'), '{');
  assert.equal(readTestGuest(dir), undefined, 'unreadable guest.json');
});

test('buildTestGuest refuses a relative, group/world-writable or symlinked directory before it builds anything', async (t) => {
  await assert.rejects(buildTestGuest({ dir: 'relative/guest' }), (e: unknown) => e instanceof ValidationError && e.field === 'dir');
  const parent = tempDir(t);
  const open = join(parent, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  await assert.rejects(buildTestGuest({ dir: open, busybox: '/bin/busybox', kernelPackage: 'linux-image-none-amd64' }), (e: unknown) => e instanceof ValidationError && /group\/world-writable/.test(e.message));
  await assert.rejects(buildTestGuest({ dir: join(parent, 'g'), kernelPackage: 'not a package; rm -rf /' }), (e: unknown) => e instanceof ValidationError && e.field === 'kernelPackage');
});
