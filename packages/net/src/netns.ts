/**
 * Named network namespaces, the way `ip netns` keeps them: a bind mount of the namespace on
 * `/run/netns/NAME`. Also: running synchronous code and spawning processes inside a namespace.
 *
 * Nothing here spawns `ip`: namespaces are made with `unshare(CLONE_NEWNET)` and `mount`, entered
 * with `setns` on the main thread and left again before control returns to the event loop.
 * @module
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError, ValidationError } from './errors.js';
import { CLONE_NEWNET, MNT_DETACH, MS_BIND, MS_REC, MS_SHARED, native } from './sys/native.js';

/** Where named namespaces are mounted (the same place as iproute2's). */
export const NETNS_RUN_DIR = '/run/netns';

/**
 * A network namespace: a name under /run/netns, a path to an nsfs file (`/proc/PID/ns/net`, a
 * bind mount), or the namespace of a process.
 */
export type NetnsRef = string | { name: string } | { path: string } | { pid: number };

/**
 * Validates a namespace name as iproute2 accepts it: 1-255 bytes, no '/', no NUL or whitespace,
 * not '.' or '..'.
 * @throws {ValidationError} naming `field`.
 */
export function validateNetnsName(name: unknown, field = 'netns'): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new ValidationError(field, name, 'expected a non-empty string');
  if (Buffer.byteLength(name) > 255) throw new ValidationError(field, name, 'longer than 255 bytes');
  if (name === '.' || name === '..' || /[/\s\0]/.test(name)) {
    throw new ValidationError(field, name, "must not be '.' or '..' nor contain '/', NUL or whitespace");
  }
}

/** The filesystem path that identifies `ref`. */
export function netnsPath(ref: NetnsRef, field = 'netns'): string {
  if (typeof ref === 'string') {
    validateNetnsName(ref, field);
    return join(NETNS_RUN_DIR, ref);
  }
  if (ref && typeof ref === 'object') {
    if ('name' in ref) return netnsPath(ref.name, `${field}.name`);
    if ('path' in ref) {
      if (typeof ref.path !== 'string' || !ref.path.startsWith('/')) {
        throw new ValidationError(`${field}.path`, ref.path, 'expected an absolute path');
      }
      return ref.path;
    }
    if ('pid' in ref) {
      if (!Number.isInteger(ref.pid) || ref.pid <= 0) throw new ValidationError(`${field}.pid`, ref.pid, 'expected a positive integer');
      return `/proc/${ref.pid}/ns/net`;
    }
  }
  throw new ValidationError(field, ref, 'expected a name, { name }, { path } or { pid }');
}

/** Opens `ref` and returns a file descriptor for setns(2). The caller closes it. */
export function openNetns(ref: NetnsRef, field = 'netns'): number {
  const path = netnsPath(ref, field);
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw SystemError.from(err, `network namespace ${describe(ref)} (${path})`);
  }
}

function describe(ref: NetnsRef): string {
  return typeof ref === 'string' ? `'${ref}'` : JSON.stringify(ref);
}

function currentNetnsFd(): number {
  return openSync('/proc/thread-self/ns/net', 'r');
}

function restore(orig: number): void {
  try {
    native().setns(orig, CLONE_NEWNET);
  } catch (err) {
    // The main thread could not return to its own namespace: continuing would act in the wrong one.
    process.stderr.write(`@vmhost/net: cannot return to the original network namespace: ${String(err)}\n`);
    process.abort();
  }
}

/**
 * Runs `fn` synchronously with the main thread inside `ref`'s network namespace and switches back
 * before returning (also when `fn` throws). Whatever `fn` creates that is bound to a namespace at
 * creation (sockets, /dev/net/tun interfaces, /proc/sys/net files opened, child processes) stays
 * in `ref`'s namespace. `fn` must not be async: the switch covers only its synchronous part.
 */
export function runIn<T>(ref: NetnsRef, fn: () => T): T {
  const target = openNetns(ref);
  let orig = -1;
  try {
    orig = currentNetnsFd();
    try {
      native().setns(target, CLONE_NEWNET);
    } catch (err) {
      throw SystemError.from(err, `entering network namespace ${describe(ref)}`);
    }
    try {
      const result = fn();
      if (result && typeof (result as { then?: unknown }).then === 'function') {
        throw new TypeError('netns.runIn: fn must be synchronous');
      }
      return result;
    } finally {
      restore(orig);
    }
  } finally {
    if (orig >= 0) closeSync(orig);
    closeSync(target);
  }
}

let sharedRunDir = false;

/** Makes /run/netns a shared mount point, as iproute2 does, so that namespaces show in every mount namespace. */
function ensureRunDir(): void {
  mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  if (sharedRunDir) return;
  const n = native();
  try {
    n.mount(null, NETNS_RUN_DIR, 'none', MS_SHARED | MS_REC, null);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EINVAL') throw SystemError.from(err, `making ${NETNS_RUN_DIR} shared`);
    try {
      n.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', MS_BIND | MS_REC, null);
      n.mount(null, NETNS_RUN_DIR, 'none', MS_SHARED | MS_REC, null);
    } catch (err2) {
      throw SystemError.from(err2, `mounting ${NETNS_RUN_DIR}`);
    }
  }
  sharedRunDir = true;
}

/**
 * Creates the named network namespace `/run/netns/NAME` (like `ip netns add NAME`).
 * The new namespace has only a loopback device, which is down.
 * @throws {ValidationError} for a bad name. {@link SystemError} with code `EEXIST` if it exists.
 */
export async function add(name: string): Promise<void> {
  validateNetnsName(name, 'name');
  ensureRunDir();
  const path = join(NETNS_RUN_DIR, name);
  try {
    closeSync(openSync(path, 'wx', 0o444));
  } catch (err) {
    throw SystemError.from(err, `network namespace '${name}'`);
  }
  const n = native();
  const orig = currentNetnsFd();
  try {
    n.unshare(CLONE_NEWNET);
    try {
      n.mount('/proc/thread-self/ns/net', path, 'none', MS_BIND, null);
    } finally {
      restore(orig);
    }
  } catch (err) {
    try {
      unlinkSync(path);
    } catch {
      /* already gone */
    }
    throw SystemError.from(err, `creating network namespace '${name}'`);
  } finally {
    closeSync(orig);
  }
}

/**
 * Removes the named namespace (like `ip netns delete NAME`). The namespace itself lives on while
 * processes or open sockets still use it; its links go away with it.
 * @throws {SystemError} with code `ENOENT` if there is no such namespace.
 */
async function del(name: string): Promise<void> {
  validateNetnsName(name, 'name');
  const path = join(NETNS_RUN_DIR, name);
  try {
    native().umount2(path, MNT_DETACH);
  } catch (err) {
    const code = (err as { code?: string }).code;
    // EINVAL: not a mount point (a stale file); go on and unlink it.
    if (code !== 'EINVAL') throw SystemError.from(err, `network namespace '${name}'`);
  }
  try {
    unlinkSync(path);
  } catch (err) {
    throw SystemError.from(err, `network namespace '${name}'`);
  }
}
export { del as delete };

/** Names of the namespaces under /run/netns, sorted. */
export async function list(): Promise<string[]> {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw SystemError.from(err, `listing ${NETNS_RUN_DIR}`);
  }
}

/** Whether a namespace of that name exists. */
export async function exists(name: string): Promise<boolean> {
  validateNetnsName(name, 'name');
  try {
    statSync(join(NETNS_RUN_DIR, name));
    return true;
  } catch {
    return false;
  }
}

/** The pids of the processes whose network namespace is `ref` (like `ip netns pids`). */
export async function pids(ref: NetnsRef): Promise<number[]> {
  return pidsSync(ref);
}

/**
 * {@link pids}, synchronously (usable in a process 'exit' handler): the pids, sorted, of the
 * processes whose network namespace is `ref`.
 * @throws the fs error of `stat` when `ref` does not exist; {@link ValidationError} for a bad ref.
 */
export function pidsSync(ref: NetnsRef): number[] {
  const target = statSync(netnsPath(ref));
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      if (st.ino === target.ino && st.dev === target.dev) out.push(Number(entry));
    } catch {
      /* the process went away, or is a kernel thread we may not inspect */
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * Spawns `command` with `args` inside `ref`'s network namespace, like `ip netns exec` but without
 * a shell or a helper program: the child is forked while the main thread is in the namespace.
 * Returns Node's ChildProcess. `options` are child_process.spawn's (`shell` is refused).
 */
export function spawn(ref: NetnsRef, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
  if (typeof command !== 'string' || command.length === 0) throw new ValidationError('command', command, 'expected a program');
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
    throw new ValidationError('args', args, 'expected an array of strings');
  }
  if (options.shell) throw new ValidationError('options.shell', options.shell, 'vmhost never runs a shell');
  return runIn(ref, () => nodeSpawn(command, args, { ...options, shell: false }));
}

/** Result of {@link run}. */
export interface RunResult {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Written to the child's standard input, which is then closed. */
  input?: string | Buffer;
  /** Kill the child (SIGKILL) after this long. Default: no limit. */
  timeoutMs?: number;
  /** Abort: kills the child. */
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Runs a program inside `ref`'s network namespace to completion and collects its output.
 * Never throws for a non-zero exit: look at `code`. Rejects if the program cannot be started.
 */
export function run(ref: NetnsRef, command: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const spawnOpts: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'] };
  if (options.env) spawnOpts.env = options.env;
  if (options.cwd) spawnOpts.cwd = options.cwd;
  if (options.signal) spawnOpts.signal = options.signal;
  const child = spawn(ref, command, args, spawnOpts);
  return collect(child, options);
}

/** Collects a spawned child's output (shared with callers that spawn without a namespace). */
export function collect(child: ChildProcess, options: Pick<RunOptions, 'input' | 'timeoutMs'> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin?.on('error', () => {
      /* the child may exit before reading its input; the exit status tells */
    });
    if (child.stdin) child.stdin.end(options.input ?? '');
  });
}

/** Reads a small file inside `ref`'s namespace (e.g. under /proc/sys/net or /proc/net). */
export function readFileIn(ref: NetnsRef, path: string): string {
  const fd = runIn(ref, () => openSync(path, 'r'));
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
