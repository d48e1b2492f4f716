/**
 * What `vmhost run` watches processes and files with, none of it polled:
 * - {@link VmWatch}: one QEMU, by a pidfd (its exit, whoever its parent is) and its second QMP
 *   monitor `evt.sock` (SHUTDOWN with the guest/host reason, GUEST_PANICKED, STOP, RESUME), so an
 *   exit is told as a poweroff, a stop from the host, a panic or a crash (policy.ts);
 * - {@link watchPid}: a service process (dnsmasq, the IPv6 proxy), by a pidfd;
 * - {@link watchFiles}: directories by inotify (`fs.watch`), for the host file and the VMs' run
 *   directories, debounced.
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import { cmdline, isAlive, watchExit, type ExitWatch } from '@vmhost/net';
import { QmpClient, runFiles, type QmpEvent } from '@vmhost/kvm';
import { liveQemuPid } from '../engine/kinds/vm.js';
import type { ExitEvidence } from './policy.js';

/** How long an exit waits for the last events of the event socket (QEMU closes it as it exits). */
const DRAIN_MS = 2000;

/** What a {@link VmWatch} reports besides the exit. */
export interface VmWatchHooks {
  /** GUEST_PANICKED came (the caller ends a QEMU that stays paused in the panicked state). */
  onPanic?(pid: number): void;
  /** The run state QEMU announced (STOP: paused; RESUME: running). */
  onRunState?(pid: number, running: boolean): void;
}

/** One QEMU watched: its exit, and what its event socket said before. */
export class VmWatch {
  /** Resolves once QEMU exits, with what was seen before (never when the watch is closed first). */
  readonly exited: Promise<Omit<ExitEvidence, 'stoppedByVmStop'>>;
  readonly #exit: ExitWatch;
  #qmp: QmpClient | undefined;
  #closed = false;
  #evidence: Omit<ExitEvidence, 'stoppedByVmStop'> = { qmp: false, panicked: false };
  #drained: Promise<void> = Promise.resolve();

  private constructor(
    readonly runDir: string,
    readonly pid: number,
    exit: ExitWatch,
    hooks: VmWatchHooks,
  ) {
    this.#exit = exit;
    const argv = cmdline(pid) ?? [];
    const events = runFiles(runDir).events;
    // a QEMU started before evt.sock existed is watched by its pid only
    if (argv.some((a) => a.includes(events))) this.#drained = this.#listen(events, hooks);
    this.exited = exit.exited.then(async () => {
      await Promise.race([this.#drained, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
      await this.#qmp?.close().catch(() => undefined);
      return { ...this.#evidence };
    });
  }

  /**
   * Watches the QEMU of the run directory `runDir` (pidfile, else a /proc scan: engine/kinds/vm.ts),
   * or undefined when none runs. The pid is checked again once the pidfd is open (it then names
   * that process for good).
   */
  static start(runDir: string, hooks: VmWatchHooks = {}): VmWatch | undefined {
    const pid = liveQemuPid(runDir);
    if (pid === undefined) return undefined;
    const exit = watchExit(pid);
    if (liveQemuPid(runDir) !== pid) {
      exit.close();
      return VmWatch.start(runDir, hooks);
    }
    return new VmWatch(runDir, pid, exit, hooks);
  }

  async #listen(path: string, hooks: VmWatchHooks): Promise<void> {
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect({ path, timeoutMs: 30_000, isAlive: () => !this.#exit.done && !this.#closed && isAlive(this.pid) });
    } catch {
      return; // gone meanwhile, or the socket refused: the exit is still seen by the pidfd
    }
    if (this.#closed) {
      await qmp.close().catch(() => undefined);
      return;
    }
    this.#qmp = qmp;
    this.#evidence.qmp = true;
    const stream = qmp.events({ name: ['SHUTDOWN', 'GUEST_PANICKED', 'STOP', 'RESUME'] });
    try {
      for await (const ev of stream) this.#take(ev, hooks);
    } catch {
      /* the connection ended: QEMU exited (or closed the monitor) */
    }
  }

  #take(ev: QmpEvent, hooks: VmWatchHooks): void {
    const data = (ev.data ?? {}) as { guest?: unknown; reason?: unknown };
    switch (ev.event) {
      case 'SHUTDOWN':
        this.#evidence.shutdown = { guest: data.guest === true, reason: typeof data.reason === 'string' ? data.reason : 'none' };
        break;
      case 'GUEST_PANICKED':
        this.#evidence.panicked = true;
        hooks.onPanic?.(this.pid);
        break;
      case 'STOP':
      case 'RESUME':
        hooks.onRunState?.(this.pid, ev.event === 'RESUME');
        break;
      default:
        break;
    }
  }

  /** Whether QEMU has exited (as the pidfd saw it). */
  get done(): boolean {
    return this.#exit.done;
  }

  /** Stops watching (`exited` never resolves then). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#exit.close();
    void this.#qmp?.close().catch(() => undefined);
  }
}

/** A service process watched by its pid: `exited` resolves when it exits. */
export function watchPid(pid: number): ExitWatch {
  return watchExit(pid);
}

/** A debounced inotify watch of some directories. */
export interface DirWatch {
  /** Adds a directory (a no-op when it is watched, or cannot be: it may not exist yet). */
  add(dir: string): void;
  close(): void;
}

/**
 * Watches directories with inotify (`fs.watch`); `onChange(dir, name)` is called once the changes
 * of a (dir, name) pair have been quiet for `debounceMs`. `filter(dir, name)` picks the names that
 * count. A directory that cannot be watched (missing) is skipped: add it again later.
 */
export function watchFiles(debounceMs: number, filter: (dir: string, name: string) => boolean, onChange: (dir: string, name: string) => void): DirWatch {
  const watchers = new Map<string, FSWatcher>();
  const timers = new Map<string, NodeJS.Timeout>();
  const fire = (dir: string, name: string): void => {
    const key = `${dir}\0${name}`;
    clearTimeout(timers.get(key));
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        onChange(dir, name);
      }, debounceMs),
    );
  };
  return {
    add(dir) {
      if (watchers.has(dir)) return;
      try {
        const w = watch(dir, { persistent: true }, (_type, name) => {
          const n = name === null ? '' : basename(String(name));
          if (filter(dir, n)) fire(dir, n);
        });
        w.on('error', () => {
          w.close();
          watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        /* not there (yet) */
      }
    },
    close() {
      for (const w of watchers.values()) w.close();
      watchers.clear();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}

/** sha256 of a file's bytes ('' when it cannot be read): whether the host file really changed. */
export function fileHash(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '';
  }
}
