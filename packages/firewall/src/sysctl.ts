/**
 * The kernel settings the rules need: {@link requiredSysctls} reports them (pure), and
 * {@link applySysctls} writes them inside a namespace through `/proc/sys/net`, opened with the
 * main thread inside the namespace (`netns.runIn`), never through the `sysctl` program.
 * @module
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { SystemError, ValidationError, netns, validateIfName, type NetnsRef } from '@vmhost/net';
import type { FirewallModel } from './model.js';
import { validateModel } from './validate.js';

/** One kernel setting. */
export interface Sysctl {
  /** Dotted key, e.g. `net.ipv4.ip_forward`. */
  key: string;
  /** Value to write. */
  value: string;
  /** Why the rules need it. */
  reason: string;
}

/** Options of {@link requiredSysctls}. */
export interface SysctlOptions {
  /**
   * Uplinks that learn their IPv6 default route from router advertisements: with forwarding on they
   * need `accept_ra=2`, or they stop accepting RAs.
   */
  raInterfaces?: readonly string[];
}

/**
 * The sysctls `model` needs: `net.ipv4.ip_forward` when anything IPv4 is forwarded,
 * `net.ipv6.conf.all.forwarding` (and `accept_ra=2` on `raInterfaces`) for IPv6, and
 * `route_localnet` (on the LAN interface, or `all`) when a forward asks for `localhost`. Pure.
 * @throws {ValidationError} for a bad model or interface name.
 */
export function requiredSysctls(model: FirewallModel, options: SysctlOptions = {}): Sysctl[] {
  const m = validateModel(model);
  const forwards = (f: 4 | 6): boolean =>
    m.portForwards.some((p) => p.family === f) ||
    m.masquerade.some((q) => q.family === f) ||
    m.forward.some((r) => r.families.includes(f)) ||
    (m.lan?.subnets[f].length ?? 0) > 0;
  const out: Sysctl[] = [];
  if (forwards(4)) out.push({ key: 'net.ipv4.ip_forward', value: '1', reason: 'IPv4 packets are forwarded between the uplink and the VMs' });
  if (forwards(6)) {
    out.push({ key: 'net.ipv6.conf.all.forwarding', value: '1', reason: 'IPv6 packets are forwarded between the uplink and the VMs' });
    (options.raInterfaces ?? []).forEach((i, n) => {
      validateIfName(i, `raInterfaces[${n}]`);
      out.push({ key: `net.ipv6.conf.${i}.accept_ra`, value: '2', reason: `${i} learns its route from router advertisements, which forwarding would otherwise ignore` });
    });
  }
  if (m.portForwards.some((p) => p.localhost)) {
    const dev = m.lan?.interface ?? 'all';
    out.push({ key: `net.ipv4.conf.${dev}.route_localnet`, value: '1', reason: 'forwards from 127.0.0.0/8 are routed to the VMs' });
  }
  return out;
}

function procPath(key: string): string {
  if (!/^net\.[A-Za-z0-9_.-]+$/.test(key) || key.includes('..')) throw new ValidationError('key', key, 'expected a net.* sysctl key');
  // Interface names may contain '.', which /proc/sys keeps as is: split only the fixed parts.
  const m = /^net\.(ipv4|ipv6)\.conf\.(.+)\.([a-z_]+)$/.exec(key);
  if (m) return `/proc/sys/net/${m[1]}/conf/${m[2]}/${m[3]}`;
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/**
 * Writes `sysctls` inside `options.netns` (or the caller's namespace when none is given) and
 * returns the previous values, so a caller can put them back.
 * Note: @vmhost/net has no sysctl API yet; this writes `/proc/sys/net` files directly, opened
 * inside the namespace.
 * @throws {SystemError} when a file cannot be opened or written (e.g. an interface that does not exist).
 */
export function applySysctls(sysctls: readonly Sysctl[], options: { netns?: NetnsRef } = {}): Sysctl[] {
  const previous: Sysctl[] = [];
  for (const s of sysctls) {
    const path = procPath(s.key);
    const open = (): number => openSync(path, 'r+');
    let fd: number;
    try {
      fd = options.netns === undefined ? open() : netns.runIn(options.netns, open);
    } catch (err) {
      throw SystemError.from(err, `sysctl ${s.key} (${path})`);
    }
    try {
      const old = readFileSync(fd, 'utf8').trim();
      writeSync(fd, `${s.value}\n`, 0);
      previous.push({ key: s.key, value: old, reason: 'previous value' });
    } catch (err) {
      throw SystemError.from(err, `writing sysctl ${s.key} (${path})`);
    } finally {
      closeSync(fd);
    }
  }
  return previous;
}
