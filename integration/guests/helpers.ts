// Shared pieces of the real-guest tests: the Debian image built by scripts/build-debian-guest.sh,
// an ssh key pair made with ssh-keygen, the OpenSSH client run inside a lab namespace (with the
// arguments of the demo's real guest, packages/host/src/demo/real.ts), and waits with deadlines
// sized for TCG on a busy 2-core machine.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Lab } from '@vmhost/lab';
import { sshArgs } from '../../packages/host/src/demo/real.js';

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
