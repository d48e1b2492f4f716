/**
 * Where the engine works: the host, its options, its state directory, an Rtnl handle on its
 * network namespace (opened per call, closed by the caller) and the run's view of the live host.
 * @module
 */
import { rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { netns as ns, Rtnl, SystemError, ValidationError, type NetnsRef } from '@vmhost/net';
import type { HostOptions, ProgressEvent, ResolvedHost, ResolvedVm } from '../types.js';
import type { CloudInitSeed } from '../guests/cloud-init.js';
import { vmDir, type DesiredOptions } from './desired.js';
import { hostQemuIds, type QemuIds } from './qemu-user.js';
import { LiveView } from './live.js';
import { linkMark } from './marks.js';
import { checkStateDir } from './state-dir.js';

/** What every kind and step works with. */
export interface Ctx {
  host: ResolvedHost;
  options: HostOptions;
  /** The state directory. */
  dir: string;
  /** The persistent data directory ({@link dataDirFor}; made, checked, by the kinds that keep data there). */
  dataDir: string;
  /** A handle on the host's network namespace. */
  h: Rtnl;
  /** The live host as this run reads it: one dump per table, indexed (live.ts). */
  live: LiveView;
  netns?: NetnsRef;
  /** The owner mark of this host's links (`vmhost:<name>`). */
  mark: string;
  /** The VMs' cloud-init seeds by name, once read (engine/seeds.ts `readSeeds`: plan, apply, `vm start`). */
  seeds?: ReadonlyMap<string, CloudInitSeed>;
  /** Tells the caller something it should know (a progress event `notice`). */
  notice(message: string): void;
  /** The ids the VMs' QEMU drops to (`qemu.user`, qemu-user.ts); undefined: it keeps root. */
  qemuIds?: QemuIds;
}

/** The name of a named namespace reference, undefined for a path or pid. */
function netnsName(ref: NetnsRef | undefined): string | undefined {
  if (typeof ref === 'string') return ref;
  if (typeof ref === 'object' && ref !== null && 'name' in ref) return ref.name;
  return undefined;
}

/**
 * The key of a namespace given by path (an nsfs file such as /proc/PID/ns/net) or pid: its
 * device and inode, which name the namespace while it lives.
 * @throws {SystemError} when the namespace file cannot be read.
 */
function netnsKey(ref: NetnsRef): string {
  const path = ns.netnsPath(ref);
  try {
    const st = statSync(path);
    return `${st.dev}-${st.ino}`;
  } catch (err) {
    throw SystemError.from(err, `reading the namespace ${path}`);
  }
}

/**
 * The directory of a namespace's vmhost files under /run/vmhost: `/run/vmhost` itself without a
 * namespace, `/run/vmhost/<netns>` for a named one, `/run/vmhost/nsfs/<dev>-<inode>` for one given
 * by path or pid (the namespace file's device and inode, so that two namespaces never share it,
 * and a namespace given by path never shares it with no namespace at all). The default state
 * directories of the namespace's hosts and its shared record (shared.ts) are in it.
 * @throws {SystemError} when the namespace file cannot be read.
 */
export function namespaceRoot(netns: NetnsRef | undefined): string {
  if (netns === undefined) return RUN_ROOT;
  const name = netnsName(netns);
  return name !== undefined ? join(RUN_ROOT, name) : join(RUN_ROOT, 'nsfs', netnsKey(netns));
}

/** Where vmhost's volatile files live by default. */
export const RUN_ROOT = '/run/vmhost';

/**
 * Removes the directory `entry` (a state directory, the shared record's) when it is empty, and then
 * its parent when that is a namespace's directory under {@link RUN_ROOT} (never {@link RUN_ROOT}
 * itself) left empty: the namespace's last host has gone. A run making its state directory there
 * meanwhile walks its path again (state-dir.ts).
 */
export function removeIfEmptyUnderNamespace(entry: string): void {
  try {
    // rmdir fails on a directory that is not empty
    rmdirSync(entry);
    const parent = dirname(entry);
    if (parent.startsWith(`${RUN_ROOT}/`)) rmdirSync(parent);
  } catch {
    /* not empty, or gone */
  }
}

/**
 * The state directory of `host` under `options`: `options.stateDir`, else
 * `<namespace root>/<name>`: `/run/vmhost/<name>`,
 * `/run/vmhost/<netns>/<name>` in a named namespace, `/run/vmhost/nsfs/<dev>-<inode>/<name>` in a
 * namespace given by path or pid.
 */
export function stateDirFor(host: ResolvedHost, options: HostOptions = {}): string {
  if (options.stateDir !== undefined) {
    if (typeof options.stateDir !== 'string' || !options.stateDir.startsWith('/')) throw new ValidationError('stateDir', options.stateDir, 'expected an absolute path');
    return options.stateDir;
  }
  return join(namespaceRoot(options.netns), host.name);
}

/**
 * The persistent data directory of `host` under `options` (disk chains, cloud-init seeds):
 * `options.dataDir`, else `/var/lib/vmhost/<name>`, keyed by the namespace as
 * {@link stateDirFor} is (`/var/lib/vmhost/<netns>/<name>`, `/var/lib/vmhost/nsfs/<dev>-<inode>/<name>`).
 * Not created here: the kinds that keep data there create it, checked as the state directory is.
 */
export function dataDirFor(host: ResolvedHost, options: HostOptions = {}): string {
  if (options.dataDir !== undefined) {
    if (typeof options.dataDir !== 'string' || !options.dataDir.startsWith('/')) throw new ValidationError('dataDir', options.dataDir, 'expected an absolute path');
    return options.dataDir;
  }
  if (options.netns === undefined) return join(DATA_ROOT, host.name);
  const name = netnsName(options.netns);
  return name !== undefined ? join(DATA_ROOT, name, host.name) : join(DATA_ROOT, 'nsfs', netnsKey(options.netns), host.name);
}

/** Where persistent data lives by default. */
export const DATA_ROOT = '/var/lib/vmhost';

/** The run directory of one VM (QMP socket, pidfile, console log), under the state directory's real path. */
export function vmRunDir(host: ResolvedHost, name: string, options: HostOptions = {}): string {
  const dir = stateDirFor(host, options);
  return vmDir(checkStateDir(dir, false) ?? dir, name);
}

/** The VM `name` of `host`. @throws {ValidationError} when there is none. */
export function findVm(host: ResolvedHost, name: string): ResolvedVm {
  const vm = host.vms.find((v) => v.name === name);
  if (!vm) throw new ValidationError('name', name, `no VM of that name in host "${host.name}" (VMs: ${host.vms.map((v) => v.name).join(', ') || 'none'})`);
  return vm;
}

/** Calls `options.onProgress` with `ev`; a throwing callback does not break the engine. */
export function emit(options: HostOptions, ev: ProgressEvent): void {
  try {
    options.onProgress?.(ev);
  } catch {
    /* a progress callback must not break apply */
  }
}

/** Opens the context (an Rtnl handle in `options.netns`); close `ctx.h` when done. */
export async function openCtx(host: ResolvedHost, options: HostOptions): Promise<Ctx> {
  const dir = stateDirFor(host, options);
  const ids = hostQemuIds(host); // before the handle is opened: a refusal leaks nothing
  const h = await Rtnl.open(options.netns !== undefined ? { netns: options.netns } : {});
  const dataDir = dataDirFor(host, options);
  const ctx: Ctx = { host, options, dir, dataDir, h, live: new LiveView(h, options.netns), mark: linkMark(host.name), notice: (message) => emit(options, { type: 'notice', message }) };
  if (options.netns !== undefined) ctx.netns = options.netns;
  if (ids) ctx.qemuIds = ids;
  return ctx;
}

/** What {@link desiredState} needs of a context. */
export function desiredOptions(ctx: Pick<Ctx, 'dir' | 'netns' | 'dataDir' | 'seeds' | 'qemuIds'>): DesiredOptions {
  return {
    dir: ctx.dir,
    ...(ctx.netns !== undefined ? { netns: ctx.netns } : {}),
    dataDir: ctx.dataDir,
    ...(ctx.seeds !== undefined ? { seeds: ctx.seeds } : {}),
    ...(ctx.qemuIds !== undefined ? { runAs: ctx.qemuIds } : {}),
  };
}

/** `o` with the context's namespace (for the services, which take it in their options). */
export function withNetns<T extends object>(ctx: Ctx, o: T): T & { netns?: NetnsRef } {
  return ctx.netns !== undefined ? { ...o, netns: ctx.netns } : o;
}
