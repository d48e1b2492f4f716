// A lab for host tests with real test guests: an `internet` namespace (203.0.113.1,
// 2001:db8:ffff::1, routing the VMs' IPv6 prefix 2001:db8:8:5688::/64 to the host) and a `host`
// namespace whose eth0 is the uplink (203.0.113.2, 2001:db8:ffff::2, default routes through the
// internet namespace); the host file's VMs run the test guest of .cache/guest (fast PVH boot).
// Plus waiting for a guest's console line, reading its watch lines, and a TCP banner.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { netns } from '@vmhost/net';
import { readTestGuest, type HostOptions } from '@vmhost/host';
import { cleanUp } from './cleanup.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const GUEST = join(ROOT, '.cache', 'guest');
/** The uplink's and the internet's addresses. */
export const NET = { host4: '203.0.113.2', internet4: '203.0.113.1', host6: '2001:db8:ffff::2', internet6: '2001:db8:ffff::1', prefix6: '2001:db8:8:5688::/64' } as const;

/** The VM lines of a host file for a test guest: `kernel`, `initrd` and `append` (with `vmhost.name=` and `extra`). */
export function guestLines(name: string, extra = ''): string {
  return `    kernel: ${join(GUEST, 'vmlinux')}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=${name}${extra ? ` ${extra}` : ''}"`;
}

/** The test guest must have its tool (UDP echo, router advertisements): setup.sh builds it with cc. */
export function requireGuestTool(): void {
  assert.equal(readTestGuest(GUEST)?.tool, true, `the test guest in ${GUEST} has no vmhost-tool: run scripts/setup.sh (it needs cc)`);
}

/**
 * The lab (closed when the test `t` ends); `opts` are the engine's options (the host namespace and
 * a state directory of its own). `downFirst(fn)`: `fn` (the test's down) runs when the test ends,
 * before the lab closes (node runs after-hooks in the order they were registered, so a down
 * registered by the test itself would run after the close, in a namespace that is gone).
 */
export async function vmLab(
  t: TestContext | undefined,
  prefix: string,
): Promise<{ lab: Lab; internet: string; host: string; opts: HostOptions & { netns: string; stateDir: string }; downFirst: (fn: () => Promise<unknown>) => void }> {
  const lab = await Lab.create({
    prefix,
    namespaces: { internet: { sysctls: { 'net.ipv6.conf.all.forwarding': 1 } }, host: {} },
    links: [{ a: { ns: 'internet', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: [`${NET.internet4}/24`, `${NET.internet6}/64`], b: [`${NET.host4}/24`, `${NET.host6}/64`] } }],
    routes: {
      host: [{ to: 'default', via: NET.internet4 }, { to: 'default', via: NET.internet6 }],
      internet: [{ to: NET.prefix6, via: NET.host6 }],
    },
  });
  const host = lab.ns('host');
  const stateDir = join('/run/vmhost-itest', host);
  const { downFirst } = t ? cleanUp(t, lab, stateDir) : { downFirst: (): void => undefined };
  return { lab, internet: lab.ns('internet'), host, opts: { netns: host, stateDir }, downFirst };
}

/**
 * The seed guide's network as a lab (the demo's): `internet`, a provider at 203.0.113.1 and
 * fe80::1 that routes the VMs' /64 2001:db8:8:5688::/64 on-link towards the host (so the host
 * answers for the VMs' addresses with proxy NDP) and has a client address 2001:db8:ffff::10; and
 * `host`, whose eth0 (203.0.113.2, 2001:db8:8:5688::2/64) is the uplink, with default routes
 * through the provider. Closing it is the caller's (cleanUp).
 */
export async function providerLab(prefix: string): Promise<{ lab: Lab; host: string; internet: string }> {
  const lab = await Lab.create({
    prefix,
    namespaces: { internet: {}, host: {} },
    links: [{ a: { ns: 'internet', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24', 'fe80::1/64'], b: ['203.0.113.2/24', '2001:db8:8:5688::2/64'] } }],
  });
  try {
    const ih = await lab.rtnl('internet');
    await ih.addresses.add('lo', '2001:db8:ffff::10/128', { nodad: true });
    await ih.routes.add({ to: '2001:db8:8:5688::/64', dev: 'up0' });
    const hh = await lab.rtnl('host');
    await hh.routes.add({ to: 'default', via: '203.0.113.1' });
    await hh.routes.add({ to: 'default', family: 6, via: 'fe80::1', dev: 'eth0' });
  } catch (err) {
    await lab.close();
    throw err;
  }
  return { lab, host: lab.ns('host'), internet: lab.ns('internet') };
}

/** The console log of a VM. */
export const consoleOf = (opts: { stateDir: string }, vm: string): string => join(opts.stateDir, 'vms', vm, 'console.log');

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Waits until the console log `file` has a line containing `marker` (polled: the guest gives no other signal); returns that line. */
export async function consoleLine(file: string, marker: string, ms = 90_000): Promise<string> {
  const end = performance.now() + ms;
  for (;;) {
    const line = readOr(file).split('\n').find((l) => l.includes(marker));
    if (line !== undefined) return line.trim();
    if (performance.now() > end) throw new Error(`no "${marker}" in ${file} within ${ms} ms:\n${readOr(file).slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a guest's watch line says (`vmhost.watch=1`): lease, DHCP server/router, global IPv6 addresses, routes. */
export interface Watch {
  lease: string;
  server: string;
  a6: string[];
  r6: string[];
  r4: string[];
}

/** The watch lines of a console log so far, parsed. */
export function watchLines(file: string): Watch[] {
  const list = (v: string | undefined): string[] => (v ?? '').split(',').filter(Boolean).map((x) => x.replace(/_+/g, ' ').trim()).sort();
  return readOr(file).split('\n').filter((l) => l.includes('VMHOST-GUEST: watch ')).map((l) => {
    const kv = Object.fromEntries(l.slice(l.indexOf('watch ') + 6).trim().split(' ').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    return { lease: kv.lease ?? '', server: kv.server ?? '', a6: list(kv.a6), r6: list(kv.r6), r4: list(kv.r4) };
  });
}

/** What a TCP service at `address`:`port` says first (the test guest's port 22 gives its name), '' when nothing answers within 3 s. */
export async function banner(ns: string, address: string, port: number): Promise<string> {
  const r = await netns.run(ns, 'busybox', ['nc', '-w', '3', address, String(port)], { input: '', timeoutMs: 10_000 });
  return r.stdout.trim();
}
