/**
 * The IPv6 proxy as a detached service process of its own (`proxy6-main`), optionally inside a
 * network namespace, so that it outlives the CLI that applied the host: {@link startProxyService}
 * (idempotent, restarts on a changed config), {@link stopProxyService},
 * {@link proxyServiceStatus} and {@link proxyServiceStats}.
 *
 * The service's files live in one directory (0700; every file 0600, see files.ts):
 * `proxy6.json` (its config), `proxy6.pid`, `proxy6.log` (its stderr) and `proxy6.stats.json`
 * (rewritten on SIGUSR1). As root it raises its open-file limit, listens, writes its pidfile,
 * opens its stats file, and then drops to an unprivileged user (`nobody` by default) before it
 * accepts a single connection.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { netns, ValidationError, type NetnsRef, type NoFileLimit } from '@vmhost/net';
import { ProxyServiceError } from '../errors.js';
import { FROM_SOURCE, moduleFile } from '../package-root.js';
import { readPrivateFile, refuseLink, touchPrivateFile, type FileErrorFactory } from './files.js';
import { normalizeProxyOptions, type NormalizedProxyOptions, type ProxyOptions, type ProxyRouteStats } from './proxy6-options.js';
import { findService, howEnded, installConfig, serviceStatus, startDetached, stopService, tail, type ServiceSpec, type ServiceStartResult, type ServiceStatus } from './supervisor.js';

/** The uid and gid the service runs as after binding when none is given: `nobody`/`nogroup` (the kernel's overflow ids). */
export const DEFAULT_PROXY_UID = 65534;
/** See {@link DEFAULT_PROXY_UID}. */
export const DEFAULT_PROXY_GID = 65534;

/** Options of {@link startProxyService}. */
export type ProxyServiceOptions = ProxyOptions & {
  /** Absolute; holds proxy6.json, proxy6.pid, proxy6.log, proxy6.stats.json (created 0700 if missing). */
  dir: string;
  /** Run the service inside this network namespace. Default: the caller's. */
  netns?: NetnsRef;
  /**
   * The user (name or uid, not root) the service runs as once it listens. Default
   * 65534 (`nobody`). A dedicated user is better: processes of the same user
   * may signal or trace each other.
   */
  user?: string | number;
  /** The group (name or gid, not root); supplementary groups are dropped. Default 65534 (`nogroup`). */
  group?: string | number;
};

/** The config file the service reads (what `proxy6-main` gets as its argument). */
export interface ProxyServiceConfig extends NormalizedProxyOptions {
  version: 2;
  /** The service directory (pidfile, stats). */
  dir: string;
  user: string | number;
  group: string | number;
}

/** What {@link proxyServiceStats} returns: what the service wrote on SIGUSR1. */
export interface ProxyServiceStats {
  /** Increases with every write. */
  seq: number;
  /** When it was written (ISO 8601). */
  at: string;
  /** The service's pid. */
  pid: number;
  /** The uid of the service (real, effective and saved: its user after the privilege drop). */
  uid: number;
  /** Its gid (real, effective and saved). */
  gid: number;
  /** Its open-file limit, as raised at start. */
  fileLimit: NoFileLimit;
  /** Connections and sources over every route, and the total cap in force (lowered when the file limit could not be raised far enough). */
  totals: { active: number; sources: number; maxTotalConnections: number };
  /** The counters of each route, in the order of the routes. */
  routes: ProxyRouteStats[];
}

/** The files of a proxy service directory. */
export function proxyServiceFiles(dir: string): { config: string; pid: string; log: string; stats: string } {
  return { config: join(dir, 'proxy6.json'), pid: join(dir, 'proxy6.pid'), log: join(dir, 'proxy6.log'), stats: join(dir, 'proxy6.stats.json') };
}

/** Where the service's entry is, and the node flags to run it: the .ts source through tsx, or dist's .js. */
function serviceEntry(): { entry: string; flags: string[] } {
  const entry = moduleFile('services/proxy6-main');
  if (FROM_SOURCE) {
    let tsx: string;
    try {
      tsx = import.meta.resolve('tsx');
    } catch {
      const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
      tsx = new URL('dist/loader.mjs', `file://${dirname(pkg)}/`).href;
    }
    return { entry, flags: ['--conditions=vmhost-source', '--import', tsx] };
  }
  return { entry, flags: [] };
}

/** The error of a proxy service file that cannot be used safely. */
const fileError: FileErrorFactory = (path, reason, cause) => new ProxyServiceError('EPROXY_FILE', `proxy service file ${path}: ${reason}`, cause !== undefined ? { cause } : {});

/** The supervised proxy service of `dir` (see supervisor.ts). */
function service(dir: string): ServiceSpec {
  const f = proxyServiceFiles(dir);
  return {
    dir,
    config: f.config,
    pidFile: f.pid,
    // a proxy6-main whose argument is this directory's config file
    matches: (argv, config) => argv.length >= 3 && argv[argv.length - 1] === config && /proxy6-main\.[jt]s$/.test(argv[argv.length - 2] ?? ''),
    stuckError: (pid) => new ProxyServiceError('EPROXY_STOP', `proxy service (pid ${pid}) did not exit after SIGKILL`),
    fileError,
  };
}

const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,30}\$?$/i;

/** A user or group: a name, or an id other than 0 (root). */
function validateAccount(v: unknown, field: string): asserts v is string | number {
  if (typeof v === 'number' ? !(Number.isSafeInteger(v) && v > 0 && v < 2 ** 32 - 1) : typeof v !== 'string' || !ACCOUNT_NAME.test(v) || v === 'root') {
    throw new ValidationError(field, v, 'expected a user or group name, or an id other than 0 (the service must not keep root)');
  }
}

/** What {@link proxyServiceStatus} reports: running, the pid, and the sha256 of the proxy6.json the service was started with, when present. */
export type ProxyServiceStatus = ServiceStatus;

/** Whether the proxy service for `dir` runs (pidfile or /proc scan, checked against /proc/PID/cmdline), and its config hash. */
export function proxyServiceStatus(dir: string): ProxyServiceStatus {
  return serviceStatus(service(dir));
}

/**
 * Result of {@link startProxyService}: the pid; `restarted` when a service of ours ran with another
 * config (or in another namespace) and was replaced; `changed` false only when the running
 * service already had this config (then nothing was done).
 */
export type ProxyServiceStartResult = ServiceStartResult;

/**
 * Starts the proxy as a detached service process (`node proxy6-main <dir>/proxy6.json`, inside
 * `o.netns` when given), idempotently like dnsmasq: same config and namespace → nothing done;
 * changed → stopped and started again; a stale pidfile is removed. Resolves when the service has
 * raised its open-file limit, listened on every route, dropped to `o.user`/`o.group` and said
 * `ready`; it then runs on after this process exits.
 * @throws {ValidationError} for bad options (before anything is touched).
 * @throws {ProxyServiceError} `EPROXY_EXIT` when the service exits during startup (its stderr
 *   included, e.g. `EADDRNOTAVAIL` for an address not assigned, an unknown user), `EPROXY_TIMEOUT`
 *   when not ready within `timeoutMs` (default 10000; it is killed then), `EPROXY_SPAWN` when it
 *   cannot start, `EPROXY_FILE` when a file of its directory is a symbolic link (or otherwise
 *   unusable): nothing is written through it and nothing started.
 */
export async function startProxyService(o: ProxyServiceOptions, opts: { timeoutMs?: number } = {}): Promise<ProxyServiceStartResult> {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (typeof o.dir !== 'string' || !isAbsolute(o.dir) || o.dir.includes('\0')) throw new ValidationError('dir', o.dir, 'expected an absolute path');
  const n = normalizeProxyOptions(o);
  const user = o.user ?? DEFAULT_PROXY_UID;
  const group = o.group ?? DEFAULT_PROXY_GID;
  validateAccount(user, 'user');
  validateAccount(group, 'group');
  if (o.netns !== undefined) netns.netnsPath(o.netns, 'netns');
  const f = proxyServiceFiles(o.dir);
  const cfg: ProxyServiceConfig = { version: 2, dir: o.dir, ...n, user, group };
  const svc = service(o.dir);
  const { unchanged, restarted } = await installConfig(svc, `${JSON.stringify(cfg, null, 2)}\n`, o.netns);
  if (unchanged !== undefined) return { pid: unchanged, restarted: false, changed: false };

  // what the service writes itself (as root, before its drop), checked here too so that a
  // planted link is EPROXY_FILE before anything runs
  touchPrivateFile(f.stats, fileError);
  refuseLink(`${f.pid}.tmp`, fileError);
  const { entry, flags } = serviceEntry();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pid = await startDetached(svc, {
    command: process.execPath,
    args: [...flags, entry, f.config],
    ...(o.netns !== undefined ? { netns: o.netns } : {}),
    output: f.log,
    pipeStdout: true,
    timeoutMs,
    // it has listened on every route, dropped its privileges and said so
    ready: (_pid, stdout) => /^ready$/m.test(stdout),
    errors: {
      spawnThrew: (cause) => new ProxyServiceError('EPROXY_SPAWN', `cannot start the proxy service (${process.execPath})`, { cause }),
      spawnFailed: (e) => new ProxyServiceError('EPROXY_SPAWN', `cannot start the proxy service: ${e.message}`, { cause: e }),
      exited: (code, signal) =>
        new ProxyServiceError('EPROXY_EXIT', `the proxy service ${howEnded(code, signal)} during startup`, { exitCode: code, signal, stderr: tail(f.log) }),
      timedOut: () => new ProxyServiceError('EPROXY_TIMEOUT', `the proxy service did not get ready within ${timeoutMs} ms`, { stderr: tail(f.log) }),
    },
  });
  return { pid, restarted, changed: true };
}

/**
 * Stops the proxy service for `dir`: SIGTERM by pid (checked against /proc/PID/cmdline; the
 * service closes its listeners and connections), SIGKILL after 5 s; removes the pidfile (the
 * unprivileged service cannot). Resolves true if it was running.
 */
export async function stopProxyService(dir: string): Promise<boolean> {
  return stopService(service(dir));
}

/** The stats file's content when it is complete (its `seq` also closes it as `end`), else undefined. */
function parseStats(buf: Buffer | undefined): ProxyServiceStats | undefined {
  if (buf === undefined) return undefined;
  try {
    const s = JSON.parse(buf.toString('utf8')) as ProxyServiceStats & { end?: number };
    if (typeof s.seq !== 'number' || s.end !== s.seq) return undefined;
    delete s.end;
    return s;
  } catch {
    return undefined; // being rewritten
  }
}

/**
 * Asks the running service of `dir` for its counters (SIGUSR1) and returns them once it has
 * written them (`proxy6.stats.json`, read without following links; written in place by the
 * unprivileged service, so a read during a rewrite is retried).
 * @throws {ProxyServiceError} `EPROXY_STATS` when the service does not run or writes nothing
 *   within `timeoutMs` (default 3000).
 */
export async function proxyServiceStats(dir: string, opts: { timeoutMs?: number } = {}): Promise<ProxyServiceStats> {
  const svc = service(dir);
  const file = proxyServiceFiles(dir).stats;
  const pid = findService(svc);
  if (pid === undefined) throw new ProxyServiceError('EPROXY_STATS', `the proxy service of ${dir} does not run`);
  const prev = parseStats(readPrivateFile(file));
  const before = prev?.pid === pid ? prev.seq : 0;
  process.kill(pid, 'SIGUSR1');
  const end = performance.now() + (opts.timeoutMs ?? 3000);
  for (;;) {
    const s = parseStats(readPrivateFile(file));
    if (s && s.pid === pid && s.seq > before) return s;
    if (performance.now() > end) throw new ProxyServiceError('EPROXY_STATS', `the proxy service (pid ${pid}) wrote no stats to ${file} within ${opts.timeoutMs ?? 3000} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
