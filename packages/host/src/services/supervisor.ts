/**
 * Supervision of a detached service process, shared by dnsmasq (`startDnsmasq` in dnsmasq.ts)
 * and the IPv6 proxy service (`startProxyService` in proxy6.ts).
 *
 * A service here is a long-running process that is identified by the path of its config file in
 * its command line (/proc/PID/cmdline) and writes its pid to a pidfile; both files live in one
 * directory. It is spawned detached (its own session, optionally inside a network namespace) so
 * that it outlives the process that started it. The helpers:
 *
 * - {@link findService} and {@link serviceStatus}: the running service (pidfile, else a scan of
 *   /proc, always checked against the cmdline) and the hash of its config;
 * - {@link installConfig}: the idempotent first half of a start (nothing to do when the same
 *   config runs in the same namespace; otherwise stop the old one and write the new config);
 * - {@link startDetached}: spawn and wait until ready, detecting an early exit and a timeout;
 * - {@link stopService} and {@link stopProcess}: SIGTERM, then SIGKILL, to the service's whole
 *   process group.
 *
 * Whether a pid is alive (a zombie is not), its command line, what a pidfile holds, and the
 * signal ladder come from @vmhost/net's process module, which the lab kit and QEMU's `Vm` use too.
 * The files are private (files.ts): the directory 0700, every file 0600 whatever the umask,
 * nothing written or read through a symbolic link planted in the directory.
 *
 * Errors are the caller's: every failure is built by a factory from the {@link ServiceSpec} or
 * the {@link DetachedStartOptions}, so each service keeps its own error class (a subclass of
 * `ServiceError`, errors.ts) and codes.
 * @module
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, rmSync, statSync } from 'node:fs';
import { allPids, cmdline, isAlive, netns, readPidfile, terminate, type NetnsRef } from '@vmhost/net';
import { ensurePrivateDir, openPrivateFile, readPrivateFile, writePrivateFile, type FileErrorFactory } from './files.js';

/** How to recognise and stop one service instance. */
export interface ServiceSpec {
  /** The service directory (created by {@link installConfig} if missing). */
  dir: string;
  /** Absolute path of the config file; the service gets it on its command line. */
  config: string;
  /** Absolute path of the pidfile the service writes. */
  pidFile: string;
  /**
   * Whether the (non-empty) command line `argv` of a live process is this service started with
   * `config`.
   */
  matches(argv: readonly string[], config: string): boolean;
  /** The error thrown when process `pid` is still alive after SIGKILL. */
  stuckError(pid: number): Error;
  /** The error thrown for a file of the service that cannot be used safely (a planted link, ...). */
  fileError: FileErrorFactory;
}

/** What the status of a supervised service reports (`dnsmasqStatus`, `proxyServiceStatus`). */
export interface ServiceStatus {
  /** Whether the service of this directory runs. */
  running: boolean;
  pid?: number;
  /** sha256 of the config file in the directory, when present. */
  configHash?: string;
}

/** What a start reports (`startDnsmasq`, `startProxyService`). */
export interface ServiceStartResult {
  pid: number;
  /** A service of ours ran with another config (or in another namespace) and was replaced. */
  restarted: boolean;
  /** False only when the running service already had this config: then nothing was done. */
  changed: boolean;
}

/** sha256 of `s`, hex. */
export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Whether `pid` is a live process of the service `spec` (checked against its cmdline). */
export function isService(spec: ServiceSpec, pid: number): boolean {
  if (!isAlive(pid)) return false;
  const argv = cmdline(pid);
  if (!argv?.length) return false;
  return spec.matches(argv, spec.config);
}

/** The pid of the running service: from the pidfile, else by a scan of /proc (pidfile lost). */
export function findService(spec: ServiceSpec): number | undefined {
  const pid = readPidfile(spec.pidFile);
  if (pid !== undefined && isService(spec, pid)) return pid;
  return allPids().find((p) => p !== pid && isService(spec, p));
}

/** Whether `pid` runs in the network namespace `ref` (undefined: this process's namespace). */
export function sameNetns(pid: number, ref: NetnsRef | undefined): boolean {
  try {
    const a = statSync(`/proc/${pid}/ns/net`);
    const b = statSync(ref === undefined ? '/proc/self/ns/net' : netns.netnsPath(ref));
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/**
 * The last `max` bytes of the file `path` as text ('' when it cannot be read, or is a link: the
 * service's output files are read without following links).
 */
export function tail(path: string, max = 2000): string {
  return readPrivateFile(path, max)?.toString('utf8') ?? '';
}

/** How a child ended, for messages: `exited with code 2` or `was killed by SIGKILL`. */
export function howEnded(code: number | null, signal: NodeJS.Signals | null): string {
  return code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
}

/**
 * Ends the service process `pid`: SIGTERM, up to `termMs`, then SIGKILL, up to 5 s more
 * (@vmhost/net's `terminate`). When `pid` leads its own process group (a service spawned detached
 * by {@link startDetached} does), the whole group is signalled and waited for, so that whatever the
 * service started itself (for example the esbuild helper of tsx when the proxy runs from source)
 * ends with it.
 * @throws the error `stuck(pid)` when it (or a member of its group) survives SIGKILL.
 */
export async function stopProcess(pid: number, termMs: number, stuck: (pid: number) => Error): Promise<void> {
  const r = await terminate(pid, { group: 'auto', ladder: [{ signal: 'SIGTERM', waitMs: termMs }, { signal: 'SIGKILL', waitMs: 5_000 }] });
  if (!r.gone) throw stuck(pid);
}

/**
 * Whether the service runs (see {@link findService}), its pid, and the hash of the config file
 * in its directory (the one a running service was started with).
 */
export function serviceStatus(spec: ServiceSpec): ServiceStatus {
  const out: ServiceStatus = { running: false };
  const config = readPrivateFile(spec.config);
  if (config !== undefined) out.configHash = sha256(config.toString('utf8'));
  const pid = findService(spec);
  if (pid !== undefined) {
    out.running = true;
    out.pid = pid;
  }
  return out;
}

/**
 * The idempotent first half of a start. When the service runs with exactly `config` (by hash) in
 * the namespace `ref`, nothing is done (its pidfile is rewritten if it lost it) and its pid is
 * returned as `unchanged`. Otherwise a running instance is stopped (SIGTERM, SIGKILL after 5 s;
 * `restarted: true`), the stale pidfile removed, the directory created (0700) and `config`
 * written atomically to the config file (0600, see files.ts); the caller then starts the service
 * ({@link startDetached}).
 * @throws the spec's `fileError` for a planted link (or other unusable file) in the directory.
 */
export async function installConfig(spec: ServiceSpec, config: string, ref: NetnsRef | undefined): Promise<{ unchanged?: number; restarted: boolean }> {
  const hash = sha256(config);
  let restarted = false;
  const running = findService(spec);
  if (running !== undefined) {
    if (serviceStatus(spec).configHash === hash && sameNetns(running, ref)) {
      if (readPidfile(spec.pidFile) !== running) writePrivateFile(spec.pidFile, `${running}\n`, spec.fileError);
      return { unchanged: running, restarted: false };
    }
    await stopProcess(running, 5000, spec.stuckError);
    restarted = true;
  }
  ensurePrivateDir(spec.dir, spec.fileError);
  rmSync(spec.pidFile, { force: true });
  writePrivateFile(spec.config, config, spec.fileError);
  return { restarted };
}

/** Options of {@link startDetached}. */
export interface DetachedStartOptions {
  command: string;
  args: readonly string[];
  /** Spawn inside this network namespace. Default: the caller's. */
  netns?: NetnsRef;
  /**
   * The file (truncated; private, see files.ts) that gets the service's stderr, and also its
   * stdout unless `pipeStdout`.
   */
  output: string;
  /** Pipe stdout to this process for {@link DetachedStartOptions.ready}; it is closed once the start is over. */
  pipeStdout?: boolean;
  /** Give up (and kill the service) when it is not ready within this long. */
  timeoutMs: number;
  /**
   * Whether the service is ready: called every 5 ms and after each chunk of stdout, with the
   * child's pid and everything it printed on stdout so far (with `pipeStdout`).
   */
  ready(pid: number | undefined, stdout: string): boolean;
  /** The errors thrown: spawn threw (`cause`), the child emitted 'error', exited early, timed out. */
  errors: {
    spawnThrew(cause: unknown): Error;
    spawnFailed(err: Error): Error;
    exited(code: number | null, signal: NodeJS.Signals | null): Error;
    timedOut(): Error;
  };
}

/**
 * Spawns the service detached (its own session, cwd its directory, stdin closed) and resolves
 * with its pid once `o.ready` says so; the child is unref'd and runs on after this process
 * exits. When it cannot be spawned, exits during startup or is not ready within `o.timeoutMs`,
 * a still-live child is terminated, the pidfile removed and the matching error of `o.errors`
 * (built after that cleanup, so output excerpts are complete) is thrown.
 * @throws the spec's `fileError` when the output file is a link or otherwise unusable (nothing is spawned).
 */
export async function startDetached(spec: ServiceSpec, o: DetachedStartOptions): Promise<number> {
  const outFd = openPrivateFile(o.output, 'truncate', spec.fileError);
  let child: ChildProcess;
  try {
    const spawnOpts: SpawnOptions = { detached: true, stdio: ['ignore', o.pipeStdout ? 'pipe' : outFd, outFd], cwd: spec.dir };
    child = o.netns !== undefined ? netns.spawn(o.netns, o.command, o.args, spawnOpts) : nodeSpawn(o.command, o.args, spawnOpts);
  } catch (err) {
    closeSync(outFd);
    throw o.errors.spawnThrew(err);
  }
  closeSync(outFd);
  const failure = await new Promise<(() => Error) | undefined>((resolve) => {
    let out = '';
    const settle = (result: (() => Error) | undefined): void => {
      clearTimeout(timer);
      clearInterval(poll);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      resolve(result);
    };
    const check = (): void => {
      if (o.ready(child.pid, out)) settle(undefined);
    };
    const onData = (d: Buffer): void => {
      out += d.toString();
      check();
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void => settle(() => o.errors.exited(code, sig));
    const onError = (e: Error): void => settle(() => o.errors.spawnFailed(e));
    const timer = setTimeout(() => settle(() => o.errors.timedOut()), o.timeoutMs);
    const poll = setInterval(check, 5);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
  child.on('error', () => undefined);
  child.stdout?.destroy();
  if (failure !== undefined) {
    if (child.pid !== undefined && isAlive(child.pid)) await stopProcess(child.pid, 1000, spec.stuckError).catch(() => undefined);
    rmSync(spec.pidFile, { force: true });
    throw failure();
  }
  child.unref();
  return child.pid!;
}

/**
 * Stops the service: SIGTERM by pid (found by {@link findService}, so checked against
 * /proc/PID/cmdline), SIGKILL after 5 s; removes the pidfile. Resolves true if it was running.
 * @throws the error `spec.stuckError(pid)` when it survives SIGKILL.
 */
export async function stopService(spec: ServiceSpec): Promise<boolean> {
  const pid = findService(spec);
  if (pid !== undefined) await stopProcess(pid, 5000, spec.stuckError);
  rmSync(spec.pidFile, { force: true });
  return pid !== undefined;
}
