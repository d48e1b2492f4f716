// Shared set-up of the @vmhost/kvm integration tests (and bench/kvm-boot.ts): the test guest from
// .cache/guest, a namespace with a bridge (made with @vmhost/net's Rtnl), dnsmasq for DHCP on it,
// and waits on the guest's serial console and TCP service. Everything registered for removal.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { netns, Rtnl } from '@vmhost/net';
import type { VmOptions } from '@vmhost/kvm';

const root = resolve(new URL('../..', import.meta.url).pathname);

/** The test guest: kernel, initrd, command line and console markers. */
export interface Guest {
  /** The compressed kernel (bzImage). */
  kernel: string;
  /** The same kernel uncompressed (ELF, booted by QEMU through its PVH entry). */
  vmlinux: string;
  initrd: string;
  append: string;
  markers: { init: string; ip: string; ready: string; powerdown: string };
}

/** The test guest built into .cache/guest (`vmhost guest build --dir .cache/guest`, run by `npm test`'s set-up). */
export function guest(): Guest {
  const dir = join(root, '.cache/guest');
  const info = join(dir, 'guest.json');
  if (!existsSync(info)) throw new Error('no test guest in .cache/guest: run npm run setup (npm test does)');
  const meta = JSON.parse(readFileSync(info, 'utf8')) as { append: string; markers: Guest['markers'] };
  return { kernel: join(dir, 'vmlinuz'), vmlinux: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.img'), append: meta.append, markers: meta.markers };
}

/** A fresh run dir under /tmp, removed after the test. */
export function runDir(t: TestContext | undefined, tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `vmhost-${tag}-`));
  t?.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Kills a process by pid (SIGKILL), ignoring one that is gone. */
export function killPid(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** The guest's LAN inside the test namespace (a documentation range). */
export const LAN = { bridge: 'br0', gateway: '198.51.100.1', prefix: 24, first: '198.51.100.10', last: '198.51.100.60' };

/**
 * Bridge `br0` with 198.51.100.1/24 in namespace `ns`, made with @vmhost/net's rtnetlink API.
 * Optionally persistent TAPs enslaved to it.
 */
export async function makeBridge(ns: string, taps: string[] = []): Promise<void> {
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.set('lo', { up: true });
    await h.links.add({ kind: 'bridge', name: LAN.bridge });
    await h.addresses.add(LAN.bridge, `${LAN.gateway}/${LAN.prefix}`);
    await h.links.set(LAN.bridge, { up: true });
    for (const tap of taps) {
      await h.links.add({ kind: 'tap', name: tap, vnetHdr: true });
      await h.links.set(tap, { master: LAN.bridge, up: true });
    }
  } finally {
    h.close();
  }
}

/** Enslaves an existing link (e.g. a TAP opened by fd) to br0 and sets it up. */
export async function enslave(ns: string, link: string): Promise<void> {
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.set(link, { master: LAN.bridge, up: true });
  } finally {
    h.close();
  }
}

/**
 * dnsmasq serving DHCP on br0 inside `ns` (foreground child, argument array), with fixed leases
 * `hosts` (MAC → IP). Killed by pid when the test ends (`t`) or by the caller.
 */
export function startDnsmasq(t: TestContext | undefined, ns: string, dir: string, hosts: Record<string, string> = {}): ChildProcess {
  const args = [
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--port=0',
    `--interface=${LAN.bridge}`, '--bind-interfaces', '--except-interface=lo',
    `--dhcp-range=${LAN.first},${LAN.last},255.255.255.0,1h`, '--dhcp-authoritative',
    `--dhcp-option=option:router,${LAN.gateway}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    ...Object.entries(hosts).map(([mac, ip]) => `--dhcp-host=${mac},${ip}`),
  ];
  const child = netns.spawn(ns, 'dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.resume();
  t?.after(() => killPid(child.pid));
  return child;
}

/**
 * Options of a test VM booting the test guest with its console in `dir`: the uncompressed kernel
 * (PVH entry, ~2.3 s to TCP instead of ~5.7 s with the bzImage under TCG: docs/kvm-machine.md).
 */
export function guestVmOptions(name: string, dir: string, extra: Partial<VmOptions> = {}): VmOptions {
  const g = guest();
  return {
    name,
    runDir: join(dir, 'run'),
    memoryMiB: 256,
    cpus: 1,
    accel: 'auto',
    kernel: g.vmlinux,
    initrd: g.initrd,
    append: g.append,
    console: { file: join(dir, 'console.log') },
    ...extra,
  };
}

/**
 * Resolves when `file` contains `marker` (the guest's serial console), rejects after `timeoutMs`
 * with the console's contents. Watches the file; the deadline is generous for a loaded machine.
 */
export async function waitForConsole(file: string, marker: string, timeoutMs = 120_000, isAlive: () => boolean = () => true): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (text.includes(marker)) return text;
    if (!isAlive()) throw new Error(`the VM exited before '${marker}' appeared on its console:\n${text}`);
    if (performance.now() > deadline) throw new Error(`'${marker}' not on the console within ${timeoutMs} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * HTTP/1.0 GET from inside `ns` with `busybox nc` (the oracle; busybox wget hangs here on the
 * guest's httpd): the body, or throws when nothing or no 200 answered.
 */
export async function httpGet(ns: string, url: string, timeoutS = 5): Promise<string> {
  const m = /^http:\/\/([0-9.]+)(?::(\d+))?(\/.*)?$/.exec(url);
  if (!m) throw new Error(`httpGet: unsupported URL ${url}`);
  const [, host, port = '80', path = '/'] = m;
  const r = await netns.run(ns, 'busybox', ['nc', '-w', String(timeoutS), host!, port], {
    input: `GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`,
    timeoutMs: (timeoutS + 5) * 1000,
  });
  const sep = /\r?\n\r?\n/.exec(r.stdout); // CGI output ends its headers with a bare LF
  if (r.code !== 0 || !/^HTTP\/1\.[01] 200 /.test(r.stdout) || !sep) {
    throw new Error(`GET ${url} in ${ns}: exit ${r.code}: ${r.stdout.slice(0, 200)}${r.stderr}`);
  }
  return r.stdout.slice(sep.index + sep[0].length);
}

/**
 * GETs `url` from inside `ns` until it answers, up to `timeoutMs` (for the bench's start-to-TCP
 * figure and after a console marker: the service may need a moment for ARP). Returns the body.
 */
export async function waitForHttp(ns: string, url: string, timeoutMs = 60_000): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      return await httpGet(ns, url, 1);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** Spawns a QEMU with `-machine none -S` and QMP on `sock` (for client tests); killed in t.after. */
export function spawnBareQemu(t: TestContext, sock: string): { child: ChildProcess; alive: () => boolean } {
  const child = spawn('qemu-system-x86_64', ['-machine', 'none', '-S', '-display', 'none', '-nodefaults', '-no-user-config', '-qmp', `unix:${sock},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.resume();
  let exited = false;
  child.on('exit', () => (exited = true));
  t.after(() => killPid(child.pid));
  return { child, alive: () => !exited };
}
