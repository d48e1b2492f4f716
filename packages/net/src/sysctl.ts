/**
 * Kernel parameters under /proc/sys/net, read and written in the handle's network namespace.
 *
 * A /proc/sys/net file belongs to the namespace of the thread that opened it, so the file is
 * opened synchronously inside the namespace ({@link runIn}) and then read or written through
 * the descriptor. Nothing is spawned (no `sysctl`).
 * @module
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { SystemError, ValidationError } from './errors.js';
import { netnsPath, runIn, type NetnsRef } from './netns.js';

/** Values `sysctl.set` takes: booleans become 1/0, arrays are joined by tabs (e.g. tcp_rmem). */
export type SysctlValue = string | number | boolean | readonly number[];

/**
 * Validates a dotted key under `net.` and returns its /proc/sys path. As sysctl(8) does, a '/'
 * inside a component stands for a '.' in the file name (interface names with dots:
 * `net.ipv4.conf.eth0/42.forwarding` → /proc/sys/net/ipv4/conf/eth0.42/forwarding).
 * @throws {ValidationError} with field `key`.
 */
export function sysctlPath(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512) throw new ValidationError('key', key, 'expected a dotted key such as net.ipv4.ip_forward');
  const parts = key.split('.');
  if (parts[0] !== 'net' || parts.length < 2) throw new ValidationError('key', key, "only keys under 'net.' belong to a network namespace");
  const out: string[] = [];
  for (const p of parts) {
    if (p.length === 0) throw new ValidationError('key', key, 'empty component');
    if (/[\s\0]/.test(p)) throw new ValidationError('key', key, 'whitespace or NUL in a component');
    const name = p.replace(/\//g, '.');
    if (name === '.' || name === '..') throw new ValidationError('key', key, "a component may not be '.' or '..'");
    out.push(name);
  }
  return `/proc/sys/${out.join('/')}`;
}

function formatValue(v: unknown): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new ValidationError('value', v, 'expected an integer');
    return String(v);
  }
  if (typeof v === 'string') {
    if (/[\n\0]/.test(v)) throw new ValidationError('value', v, 'newline or NUL in the value');
    return v;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v.join('\t');
  throw new ValidationError('value', v, 'expected a string, an integer, a boolean or an array of integers');
}

/** sysctls of one {@link Rtnl} handle's namespace. */
export class Sysctl {
  /** @internal */
  constructor(private readonly nsPath: string) {}

  /**
   * sysctls of a namespace without a netlink handle: `Sysctl.in('lab')`, or the caller's own
   * namespace when `ref` is left out. The namespace is entered for each open, by its path.
   * @throws {ValidationError} a bad namespace reference.
   */
  static in(ref?: NetnsRef): Sysctl {
    return new Sysctl(ref === undefined ? '/proc/thread-self/ns/net' : netnsPath(ref));
  }

  private open(key: string, flags: 'r' | 'w' | 'r+'): number {
    const path = sysctlPath(key);
    try {
      return runIn({ path: this.nsPath }, () => openSync(path, flags));
    } catch (err) {
      throw SystemError.from(err, `sysctl ${key} (${path})`);
    }
  }

  /**
   * Reads a value, trimmed (e.g. '0'; multi-value entries keep their tabs).
   * @throws {ValidationError} bad key. {@link SystemError} `ENOENT` when there is no such key.
   */
  async get(key: string): Promise<string> {
    const fd = this.open(key, 'r');
    try {
      return readFileSync(fd, 'utf8').trim();
    } catch (err) {
      throw SystemError.from(err, `sysctl ${key}`);
    } finally {
      closeSync(fd);
    }
  }

  /** Reads a value as an integer. @throws {ValidationError} bad key; {@link VmhostError} when it is not one integer. */
  async getInt(key: string): Promise<number> {
    const v = await this.get(key);
    if (!/^-?\d+$/.test(v)) throw new ValidationError('key', key, `value ${JSON.stringify(v)} is not one integer`);
    return Number(v);
  }

  /**
   * Writes a value.
   * @throws {ValidationError} bad key or value. {@link SystemError} e.g. `ENOENT`, `EINVAL` (refused by the kernel).
   */
  async set(key: string, value: SysctlValue): Promise<void> {
    const text = formatValue(value);
    const fd = this.open(key, 'w');
    try {
      writeSync(fd, text);
    } catch (err) {
      throw SystemError.from(err, `sysctl ${key}=${text}`);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Writes a value and returns the one it replaced (trimmed), reading and writing through one
   * descriptor (so the key must be readable): what a caller records to put the setting back later.
   * @throws {ValidationError} bad key or value. {@link SystemError} e.g. `ENOENT`, `EINVAL`.
   */
  async exchange(key: string, value: SysctlValue): Promise<string> {
    const text = formatValue(value);
    const fd = this.open(key, 'r+');
    try {
      const previous = readFileSync(fd, 'utf8').trim();
      writeSync(fd, text, 0);
      return previous;
    } catch (err) {
      throw SystemError.from(err, `sysctl ${key}=${text}`);
    } finally {
      closeSync(fd);
    }
  }
}
