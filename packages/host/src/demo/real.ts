/**
 * The demo's real guest (`npm run demo -- --real`, {@link DemoOptions.real}): a Debian cloud image
 * (scripts/build-debian-guest.sh builds one) as a third VM of the demo's host, configured by
 * nothing but the host: a cloud-init seed with a fresh ssh key, `ipv6: auto`, router
 * advertisements and DHCPv6 from the host's dnsmasq, and the VMs' names. The checks log in with
 * the real OpenSSH client from the `internet` namespace, on the VM's own IPv6 address and through
 * the public IPv4 port forward.
 * @module
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { netns } from '@vmhost/net';
import { createOverlay } from '@vmhost/kvm';
import { GuestBuildError } from '../errors.js';
import { slaacAddress } from '../guests/ipv6.js';

/** A distribution cloud image with cloud-init, booted directly from its kernel and initrd. */
export interface RealGuest {
  /** The qcow2 base image (never written: the demo boots an overlay on it). */
  image: string;
  /** Its kernel (direct boot). */
  kernel: string;
  /** Its initial ramdisk. */
  initrd: string;
  /** The kernel command line, e.g. `root=/dev/vda rw console=ttyS0`. */
  append: string;
}

/** The real VM of the demo. */
export const REAL_VM = { name: 'deb', mac: '52:54:00:de:b1:20', ipv4: '192.168.0.50', forward: 2222, user: 'ops' } as const;

/**
 * Arguments of the OpenSSH client for one command: no user config, no known_hosts, key only,
 * bounded connect; `target` is `user@host` or `ssh://user@host:port`.
 */
export function sshArgs(key: string, target: string, command: string, connectTimeoutS = 10): string[] {
  return [
    '-F', '/dev/null', '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${connectTimeoutS}`, '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=6',
    target, command,
  ];
}

/** What {@link prepareRealVm} made: the ssh key, the overlay, the VM's lines of the host file. */
export interface RealVm {
  /** The private key file (its public half is in the seed). */
  key: string;
  /** The VM's own IPv6 address (`ipv6: auto` in `prefix`). */
  ipv6: string;
  /** The VM's entry of the host file's `vms` list (YAML). */
  yaml: string;
}

/**
 * Makes a fresh ed25519 key pair (ssh-keygen) and an overlay of `guest.image` in `work`, and the
 * VM's host-file lines.
 * @throws {GuestBuildError} when ssh-keygen fails.
 */
export async function prepareRealVm(work: string, guest: RealGuest, prefix: string): Promise<RealVm> {
  const key = join(work, 'id_ed25519');
  try {
    await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vmhost-demo', '-f', key]);
  } catch (err) {
    throw new GuestBuildError(`ssh-keygen (Debian package openssh-client) failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  const disk = join(work, `${REAL_VM.name}.qcow2`);
  await createOverlay({ file: disk, backing: guest.image });
  const yaml = `
  - name: ${REAL_VM.name}
    mac: "${REAL_VM.mac}"
    ipv4: ${REAL_VM.ipv4}
    ipv6: auto
    memoryMiB: 1024
    kernel: ${guest.kernel}
    initrd: ${guest.initrd}
    append: "${guest.append}"
    disk: ${disk}
    forwards: [{ port: ${REAL_VM.forward}, toPort: 22 }]
    cloudInit: { sshAuthorizedKeys: ["${pub}"] }`;
  return { key, ipv6: slaacAddress(prefix, REAL_VM.mac), yaml };
}

/** A check of the demo: runs `fn`, records its row. */
export type Check = (name: string, fn: () => Promise<string>) => Promise<boolean>;

/** `command` on the real VM over ssh from namespace `ns`; rejects on a non-zero exit. */
async function ssh(ns: string, key: string, target: string, command: string, connectTimeoutS = 10): Promise<string> {
  const r = await netns.run(ns, 'ssh', sshArgs(key, target, command, connectTimeoutS), { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`ssh ${target} ${command}: ${r.stderr.trim() || `exit ${String(r.code ?? r.signal)}`}`);
  return r.stdout;
}

/**
 * The real VM's checks, from the `internet` namespace `inet`: the first ssh login on its own IPv6
 * address (waited for up to `bootTimeoutMs`: a cloud image boots in 1-4 minutes on TCG), then
 * cloud-init done, the IPv4 forward, its addresses and routes as the host gives them, the other
 * VMs' names. `t0` is when apply started.
 */
export async function realChecks(check: Check, o: { inet: string; publicIPv4: string; vm: RealVm; t0: number; domain: string; other: string; bootTimeoutMs?: number }): Promise<void> {
  const target = `${REAL_VM.user}@${o.vm.ipv6}`;
  const booted = await check(`${REAL_VM.name}: ssh on its own IPv6 (seed, RA, DHCPv6)`, async () => {
    const end = performance.now() + (o.bootTimeoutMs ?? 900_000);
    let last = '';
    while (performance.now() < end) {
      try {
        const name = (await ssh(o.inet, o.vm.key, target, 'hostname', 5)).trim();
        return `hostname ${name}, first login ${((performance.now() - o.t0) / 1000).toFixed(0)} s after apply`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
    throw new Error(`no login within ${o.bootTimeoutMs ?? 900_000} ms (${last})`);
  });
  if (!booted) return;
  await check(`${REAL_VM.name}: cloud-init done`, async () => {
    // cloud-init restarts sshd late in its run: a login may be refused meanwhile
    for (let i = 0; ; i++) {
      try {
        const out = await ssh(o.inet, o.vm.key, target, 'cloud-init status --wait');
        if (!/status: done/.test(out)) throw new Error(out.trim());
        return `${out.replace(/^\.+/, '').trim()} at ${((performance.now() - o.t0) / 1000).toFixed(0)} s after apply`;
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
  });
  await check(`${REAL_VM.name}: ssh through IPv4 :${REAL_VM.forward}`, async () => `hostname ${(await ssh(o.inet, o.vm.key, `ssh://${REAL_VM.user}@${o.publicIPv4}:${REAL_VM.forward}`, 'hostname')).trim()}`);
  await check(`${REAL_VM.name}: its /128 and the RA's default route`, async () => {
    const addr = (await ssh(o.inet, o.vm.key, target, 'ip -6 -o addr show scope global')).trim();
    const route = (await ssh(o.inet, o.vm.key, target, 'ip -6 route show default')).trim();
    if (!addr.includes(`${o.vm.ipv6}/128`) || !/ proto ra /.test(route)) throw new Error(`${addr} | ${route}`);
    return `${o.vm.ipv6}/128, ${route.split(' ').slice(0, 3).join(' ')} proto ra`;
  });
  await check(`${REAL_VM.name}: ${o.other}.${o.domain} by name (A, AAAA)`, async () => {
    const out = await ssh(o.inet, o.vm.key, target, `getent ahostsv4 ${o.other}.${o.domain}; getent ahostsv6 ${o.other}.${o.domain}`);
    const addrs = [...new Set(out.split('\n').map((l) => l.split(/\s+/)[0]).filter((a): a is string => !!a))];
    if (addrs.length < 2) throw new Error(out.trim());
    return addrs.join(' ');
  });
}
