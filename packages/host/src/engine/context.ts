/**
 * Where the engine works: the host, its options, its state directory, and an Rtnl handle on its
 * network namespace (opened per call, closed by the caller).
 * @module
 */
import { join } from 'node:path';
import { Rtnl, ValidationError, type NetnsRef } from '@vmhost/net';
import type { HostOptions, ResolvedHost, ResolvedVm } from '../types.js';
import { vmDir, type DesiredOptions } from './desired.js';

/** What every kind and step works with. */
export interface Ctx {
  host: ResolvedHost;
  options: HostOptions;
  /** The state directory. */
  dir: string;
  /** A handle on the host's network namespace. */
  h: Rtnl;
  netns?: NetnsRef;
}

/** The state directory of `host` under `options`. */
export function stateDirFor(host: ResolvedHost, options: HostOptions = {}): string {
  if (options.stateDir !== undefined) {
    if (!options.stateDir.startsWith('/')) throw new ValidationError('stateDir', options.stateDir, 'expected an absolute path');
    return options.stateDir;
  }
  const ns = typeof options.netns === 'string' ? options.netns : typeof options.netns === 'object' && options.netns && 'name' in options.netns ? options.netns.name : undefined;
  return ns ? join('/run/vmhost', ns, host.name) : join('/run/vmhost', host.name);
}

/** The run directory of one VM (QMP socket, pidfile, console log). */
export function vmRunDir(host: ResolvedHost, name: string, options: HostOptions = {}): string {
  return vmDir(stateDirFor(host, options), name);
}

/** The VM `name` of `host`. @throws {ValidationError} when there is none. */
export function findVm(host: ResolvedHost, name: string): ResolvedVm {
  const vm = host.vms.find((v) => v.name === name);
  if (!vm) throw new ValidationError('name', name, `no VM of that name in host "${host.name}" (VMs: ${host.vms.map((v) => v.name).join(', ') || 'none'})`);
  return vm;
}

/** Opens the context (an Rtnl handle in `options.netns`); close `ctx.h` when done. */
export async function openCtx(host: ResolvedHost, options: HostOptions): Promise<Ctx> {
  const h = await Rtnl.open(options.netns !== undefined ? { netns: options.netns } : {});
  const ctx: Ctx = { host, options, dir: stateDirFor(host, options), h };
  if (options.netns !== undefined) ctx.netns = options.netns;
  return ctx;
}

/** What {@link desiredState} needs of a context. */
export function desiredOptions(ctx: Pick<Ctx, 'dir' | 'netns'>): DesiredOptions {
  return ctx.netns !== undefined ? { dir: ctx.dir, netns: ctx.netns } : { dir: ctx.dir };
}

/** `o` with the context's namespace (for the services, which take it in their options). */
export function withNetns<T extends object>(ctx: Ctx, o: T): T & { netns?: NetnsRef } {
  return ctx.netns !== undefined ? { ...o, netns: ctx.netns } : o;
}
