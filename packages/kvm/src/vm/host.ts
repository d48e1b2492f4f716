/**
 * What the launcher probes on the host: users of /etc/passwd (for `runAs`), whether the QEMU
 * binary has a seccomp sandbox (asked once per binary, cached), the TSC frequency (for `microvm`
 * under TCG). Files are read as data; the only program run is the QEMU binary itself (`-h`).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ValidationError } from '@vmhost/net';
import { VmError } from '../errors.js';
import type { HostFacts, ResolvedVmOptions } from './args.js';

/** A user as /etc/passwd has it. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/**
 * getpwnam from a passwd file (default /etc/passwd): the entry of `name`, or undefined. Only the
 * file: users of other NSS sources (LDAP, systemd's dynamic users) are not seen; give those as
 * `{ uid, gid }`. Malformed lines are skipped.
 */
export function lookupUser(name: string, passwd = '/etc/passwd'): PasswdEntry | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || f[0] !== name) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!) || !Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) continue;
    return { name, uid, gid, home: f[5]! };
  }
  return undefined;
}

/**
 * Checks a `runAs` user name against /etc/passwd.
 * @throws {ValidationError} `runAs` when there is no such user or it is uid 0.
 */
export function checkRunAs(r: ResolvedVmOptions, passwd = '/etc/passwd'): void {
  if (!r.runAs || !('user' in r.runAs)) return;
  const e = lookupUser(r.runAs.user, passwd);
  if (!e) throw new ValidationError('runAs', r.runAs.user, `no such user in ${passwd} (give { uid, gid } for users from elsewhere)`);
  if (e.uid === 0) throw new ValidationError('runAs', r.runAs.user, 'has uid 0: QEMU would keep root');
}

const sandboxCache = new Map<string, boolean>();

/** Whether `qemuBinary` has `-sandbox` (built with seccomp): its `-h` lists it. Asked once per binary. */
export function qemuHasSandbox(qemuBinary: string): boolean {
  let known = sandboxCache.get(qemuBinary);
  if (known === undefined) {
    try {
      const help = execFileSync(qemuBinary, ['-h'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 4 << 20 });
      known = /^-sandbox /m.test(help);
    } catch {
      known = false; // cannot run it: start() will say so
    }
    sandboxCache.set(qemuBinary, known);
  }
  return known;
}

/**
 * The host's TSC frequency in kHz as /proc/cpuinfo's first `cpu MHz` says, or undefined when it
 * says nothing usable. Exact where the CPU frequency is fixed (the kernel then shows its TSC
 * calibration); an approximation under frequency scaling.
 */
export function hostTscKhz(cpuinfo = '/proc/cpuinfo'): number | undefined {
  try {
    const mhz = Number(/^cpu MHz\s*:\s*([0-9.]+)\s*$/m.exec(readFileSync(cpuinfo, 'utf8'))?.[1]);
    return Number.isFinite(mhz) && mhz > 1 ? Math.round(mhz * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The facts {@link buildArgs} needs for `r`, probed only when `r` needs them.
 * @throws {VmError} `EVM_SANDBOX` when `sandbox: true` and this QEMU has no -sandbox.
 */
export function hostFacts(r: ResolvedVmOptions): HostFacts {
  const facts: HostFacts = {};
  if (r.machine === 'microvm' && r.tscKhz === undefined) facts.tscKhz = hostTscKhz();
  if (r.sandbox !== false) {
    facts.sandbox = qemuHasSandbox(r.qemuBinary);
    if (r.sandbox === true && !facts.sandbox) throw new VmError('EVM_SANDBOX', `VM '${r.name}': sandbox requested but ${r.qemuBinary} has no -sandbox (built without seccomp)`);
  }
  return facts;
}
