// Shared pieces of the real-guest integration tests: the Debian image built by
// scripts/build-debian-guest.sh, an ssh key pair made with ssh-keygen, the OpenSSH client run
// inside a lab namespace, dnsmasq started by hand with the guest lines of
// packages/host/src/guests/dnsmasq-guests.ts, and waits with deadlines sized for TCG on a busy
// 2-core machine.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Lab } from '@vmhost/lab';

const root = resolve(new URL('../..', import.meta.url).pathname);

/** The Debian guest of .cache/debian-guest. */
export interface DebianGuest {
  image: string;
  kernel: string;
  initrd: string;
  append: string;
  info: Record<string, unknown>;
}

/** The image built by scripts/build-debian-guest.sh (run by scripts/setup.sh, so by `npm test`). */
export function debianGuest(): DebianGuest {
  const dir = join(root, '.cache/debian-guest');
  const info = join(dir, 'guest.json');
  if (!existsSync(info) || !existsSync(join(dir, 'stamp'))) {
    throw new Error('no Debian guest in .cache/debian-guest: run scripts/build-debian-guest.sh (scripts/setup.sh does)');
  }
  const meta = JSON.parse(readFileSync(info, 'utf8')) as Record<string, unknown> & { image: string; append: string };
  return { image: join(dir, meta.image), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), append: meta.append, info: meta };
}

/** A fresh ed25519 key pair in `dir` (ssh-keygen); returns the private key path and the public line. */
export function sshKeygen(dir: string, comment = 'vmhost-test'): { key: string; pub: string } {
  const key = join(dir, 'id_ed25519');
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return { key, pub: readFileSync(`${key}.pub`, 'utf8').trim() };
}

/** Arguments of the OpenSSH client: no user config, no known_hosts, key only, bounded connect. */
export function sshArgs(key: string, target: string, command: string, connectTimeoutS = 10): string[] {
  return [
    '-F', '/dev/null', '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${connectTimeoutS}`, '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=6',
    target, command,
  ];
}

/** Runs `command` on the guest over ssh from the lab namespace `ns`; rejects on a non-zero exit. */
export async function ssh(lab: Lab, ns: string, key: string, target: string, command: string, timeoutMs = 300_000): Promise<string> {
  const r = await lab.run(ns, 'ssh', sshArgs(key, target, command), { timeoutMs });
  if (r.code !== 0) throw new Error(`ssh ${target} '${command}' exited ${String(r.code ?? r.signal)}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Runs `ssh target command` every few seconds until it exits 0 (sshd up, cloud-init has put the
 * key, and `command` succeeds), the VM dies, or `timeoutMs` passes. Returns the ms waited and the
 * output. While cloud-init runs, sshd is restarted (cc_set_passwords), so a login can be refused
 * after an earlier one worked: wait with `cloud-init status --wait` before relying on ssh.
 */
export async function waitForSsh(lab: Lab, ns: string, key: string, target: string, timeoutMs: number, alive: () => boolean, command = 'true'): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  let last = '';
  while (performance.now() - t0 < timeoutMs) {
    if (!alive()) throw new Error(`the VM exited while waiting for ssh on ${target} (last: ${last})`);
    const r = await lab.run(ns, 'ssh', sshArgs(key, target, command, 5), { timeoutMs: Math.max(60_000, timeoutMs - (performance.now() - t0)) });
    if (r.code === 0) return { ms: performance.now() - t0, stdout: r.stdout };
    last = r.stderr.trim() || String(r.code ?? r.signal);
    await new Promise((res) => setTimeout(res, 3000));
  }
  throw new Error(`no ssh login on ${target} within ${timeoutMs} ms (last: ${last})`);
}

/** Pings `addr` from the lab namespace `ns` (busybox, one echo per try) until it answers; throws after `timeoutMs`. */
export async function waitForPing(lab: Lab, ns: string, addr: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  let last = '';
  while (performance.now() - t0 < timeoutMs) {
    const r = await lab.run(ns, 'busybox', ['ping', '-c', '1', '-W', '2', addr], { timeoutMs: 30_000 });
    if (r.code === 0) return performance.now() - t0;
    last = `${r.stdout}${r.stderr}`.trim();
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`${addr} did not answer a ping from ${ns} within ${timeoutMs} ms: ${last}`);
}

/** Waits until `file` exists and is not empty (e.g. dnsmasq's pid file), or throws after `timeoutMs`. */
export async function waitForFile(file: string, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const t0 = performance.now();
  while (!(existsSync(file) && readFileSync(file, 'utf8').trim() !== '')) {
    if (!alive()) throw new Error(`the process exited before ${file} appeared`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * The base lines of a dnsmasq.conf for the bridge (IPv4 DHCP range, router and DNS options, own
 * files); the guest lines are appended by the caller. Written to `dir/dnsmasq.conf`.
 */
export function writeDnsmasqConf(dir: string, o: { bridge: string; ipv4: string; range: [string, string]; domain: string }, guestLines: string[]): string {
  const conf = join(dir, 'dnsmasq.conf');
  const lines = [
    `interface=${o.bridge}`, 'except-interface=lo', 'bind-interfaces', 'no-resolv', 'no-hosts', 'domain-needed', 'bogus-priv',
    `domain=${o.domain}`, `local=/${o.domain}/`,
    `dhcp-range=${o.range[0]},${o.range[1]},255.255.255.0,1h`, 'dhcp-authoritative',
    `dhcp-option=option:router,${o.ipv4}`, `dhcp-option=option:dns-server,${o.ipv4}`, `dhcp-option=option:domain-name,${o.domain}`,
    ...guestLines,
    `dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, `pid-file=${join(dir, 'dnsmasq.pid')}`, `log-facility=${join(dir, 'dnsmasq.log')}`, 'log-dhcp',
    '',
  ];
  writeFileSync(conf, lines.join('\n'));
  return conf;
}
