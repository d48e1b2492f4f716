/**
 * The VM launcher: QEMU as a direct child spawned with an argument array, QMP to control it, a
 * stop ladder (system_powerdown → quit → SIGTERM → SIGKILL), "already running" detection and
 * re-attachment to a VM started by an earlier process.
 * @module
 */
import { spawn as nodeSpawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { netns, terminate, ValidationError } from '@vmhost/net';
import { QmpAbortedError, QmpError, VmAlreadyRunningError, VmError, VmStartError } from '../errors.js';
import { QmpClient } from '../qmp/client.js';
import { detectAccel, type AccelChoice } from './accel.js';
import { checkRunAs, hostFacts } from './host.js';
import { buildArgs, passedFds, resolveVmOptions, runFiles, type ResolvedVmOptions, type RunFiles, type VmOptions } from './args.js';
import { isAlive, isQemuServing, readPidfile } from './proc.js';
import { imageInfo, type QemuImgOptions } from '../disk/img.js';
import { liveCommit, liveSnapshot } from '../disk/live.js';

/** Which step of the ladder ended the VM. */
export type StopStep = 'powerdown' | 'quit' | 'sigterm' | 'sigkill' | 'not-running';

/** Result of {@link Vm.stop}. */
export interface StopResult {
  step: StopStep;
  /** QEMU's exit code when known (a VM not started by this process has none). */
  exitCode: number | null;
  /** Signal that ended QEMU, when known. */
  signal: NodeJS.Signals | null;
  /** Time stop() took, ms. */
  durationMs: number;
}

/** Options of {@link Vm.stop}. */
export interface StopOptions {
  /** Time the guest gets to power off after system_powerdown. Default 30,000 ms. */
  timeoutMs?: number;
  /** Time each later step (quit, SIGTERM, SIGKILL) gets. Default 5,000 ms. */
  stepTimeoutMs?: number;
  /** Skip system_powerdown and begin with quit. Default false. */
  force?: boolean;
}

/** Options of {@link Vm.start}. */
export interface StartOptions {
  /** Time for QEMU to come up (QMP answering, VM running). Default 30,000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Options of {@link Vm.attach}. */
export interface AttachOptions {
  /** Time to connect to QMP. Default 10,000 ms. */
  timeoutMs?: number;
}

/** What {@link Vm.status} reports. */
export interface VmStatus {
  running: boolean;
  pid?: number;
  /** QMP run state ('running', 'paused', 'shutdown', ...) when QMP answers. */
  status?: string;
}

/** What the run dir's vm.json holds, for {@link Vm.attach}. */
interface StateFile {
  options: VmOptions;
  accel: AccelChoice;
  pid: number;
  args: string[];
  startedAt: string;
}

const LOG_TAIL = 64 * 1024;

/**
 * A QEMU virtual machine.
 *
 * ```ts
 * const vm = new Vm({ name: 'web', runDir: '/run/vmhost/web', memoryMiB: 256, kernel, initrd,
 *   append: 'console=ttyS0', nics: [{ tap: 'tap-web' }], console: { file: '/run/vmhost/web/console.log' } });
 * vm.args();                      // the argument array, never a shell string
 * await vm.start();               // QMP up, VM running
 * await vm.qmp.execute('query-status');
 * const r = await vm.stop();      // r.step: 'powerdown' | 'quit' | 'sigterm' | 'sigkill'
 * ```
 */
export class Vm {
  /** Validated options with defaults. */
  readonly options: ResolvedVmOptions;
  /** Runtime file paths. */
  readonly files: RunFiles;
  #accel: AccelChoice | undefined;
  #child: ChildProcess | undefined;
  #pid: number | undefined;
  #qmp: QmpClient | undefined;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #exitWaiters: (() => void)[] = [];
  #starting = false;

  /**
   * Validates the options (nothing is touched yet).
   * @throws {ValidationError} naming the field.
   */
  constructor(options: VmOptions) {
    this.options = resolveVmOptions(options);
    checkRunAs(this.options);
    this.files = runFiles(this.options.runDir);
    if (this.options.accel !== 'auto') this.#accel = { accel: this.options.accel, reason: 'chosen by the caller' };
  }

  /** The VM's name. */
  get name(): string {
    return this.options.name;
  }

  /** The accelerator used (for 'auto', decided by {@link detectAccel} on first use). */
  get accel(): AccelChoice {
    this.#accel ??= detectAccel();
    return this.#accel;
  }

  /** QEMU's arguments (without the binary): an array, never a shell string. */
  args(): string[] {
    return buildArgs(this.options, this.accel.accel, hostFacts(this.options));
  }

  /** QEMU's pid while known. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** The QMP session of a started or attached VM. */
  get qmp(): QmpClient {
    if (!this.#qmp) throw new VmError('EVM_NOT_RUNNING', `VM '${this.name}' is not running (start() or Vm.attach() first)`);
    return this.#qmp;
  }

  /** Whether QEMU is alive (checked in /proc, so a zombie counts as dead). */
  get running(): boolean {
    return this.#pid !== undefined && this.#exit === undefined && isAlive(this.#pid);
  }

  /**
   * Starts QEMU and resolves when QMP answers and the VM runs.
   * @throws {VmAlreadyRunningError} when the run dir's pidfile names a live QEMU serving this VM's
   *   QMP socket (a stale pidfile or socket is removed instead). {@link VmStartError} when QEMU
   *   cannot be spawned, exits during start (with its stderr) or does not come up in time.
   */
  async start(options: StartOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ValidationError('timeoutMs', timeoutMs, 'expected a positive number');
    if (this.#starting || this.running) throw new VmAlreadyRunningError(this.name, this.#pid ?? 0);
    this.#starting = true;
    try {
      mkdirSync(this.options.runDir, { recursive: true, mode: 0o700 });
      await this.#refuseIfRunning();
      const args = this.args();
      const logFd = openSync(this.files.log, 'w', 0o600);
      let child: ChildProcess;
      try {
        const stdio: StdioOptions = ['ignore', logFd, logFd, ...passedFds(this.options)];
        const opts = { stdio, detached: true };
        child = this.options.netns !== undefined
          ? netns.spawn(this.options.netns, this.options.qemuBinary, args, opts)
          : nodeSpawn(this.options.qemuBinary, args, opts);
      } finally {
        closeSync(logFd);
      }
      this.#exit = undefined;
      this.#child = child;
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      child.once('exit', (code, signal) => this.#onExit(code, signal));
      if (child.pid === undefined) {
        const err = await spawnError;
        throw new VmStartError(`cannot run ${this.options.qemuBinary}: ${err.message}`, { stderr: '', cause: err });
      }
      this.#pid = child.pid;
      try {
        const qmp = await QmpClient.connect({ path: this.files.qmp, timeoutMs, isAlive: () => this.#exit === undefined, signal: options.signal });
        this.#qmp = qmp;
        const st = await qmp.execute('query-status', {}, { timeoutMs });
        if (!st.running && !this.options.extraArgs.includes('-S')) {
          const resumed = qmp.waitForEvent('RESUME', { timeoutMs });
          const again = await qmp.execute('query-status', {}, { timeoutMs });
          if (!again.running) await resumed;
        }
        this.#writeState(args);
      } catch (err) {
        // QEMU that fails during start closes the QMP socket as it exits, and the socket's close
        // can be seen before the child's exit: give the exit a moment to arrive, so that the error
        // says how QEMU ended (not on an abort by the caller).
        if (!(err instanceof QmpAbortedError)) await this.#waitExit(1_000);
        const exitedEarly = this.#exit as { code: number | null; signal: NodeJS.Signals | null } | undefined;
        await this.#abortStart();
        if (exitedEarly !== undefined) {
          throw new VmStartError(`QEMU exited during start (code ${exitedEarly.code}, signal ${exitedEarly.signal})`, {
            stderr: this.#logTail(),
            exitCode: exitedEarly.code,
            signal: exitedEarly.signal,
            cause: err,
          });
        }
        throw new VmStartError(`QEMU did not come up: ${(err as Error).message}`, { stderr: this.#logTail(), cause: err });
      }
    } finally {
      this.#starting = false;
    }
  }

  /** Refuses when a live QEMU serves this run dir; removes a stale pidfile/socket. */
  async #refuseIfRunning(): Promise<void> {
    const pid = readPidfile(this.files.pidfile);
    if (pid !== undefined && isQemuServing(pid, this.files.qmp)) throw new VmAlreadyRunningError(this.name, pid);
    if (existsSync(this.files.qmp)) {
      if (await socketAnswers(this.files.qmp)) {
        throw new VmError('EVM_SOCKET_BUSY', `VM '${this.name}': something answers on ${this.files.qmp} but no live QEMU is in ${this.files.pidfile}`);
      }
    }
    removeQuietly(this.files.pidfile);
    removeQuietly(this.files.qmp);
    removeQuietly(this.files.events);
  }

  async #abortStart(): Promise<void> {
    await this.#qmp?.close().catch(() => undefined);
    this.#qmp = undefined;
    if (this.#pid !== undefined && this.#exit === undefined) {
      try {
        process.kill(this.#pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await this.#waitExit(5_000);
    }
    this.#cleanupFiles();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exit = { code, signal };
    for (const w of this.#exitWaiters.splice(0)) w();
  }

  /** Resolves true when QEMU has exited within `ms`. Children: their exit event; others: /proc. */
  async #waitExit(ms: number): Promise<boolean> {
    if (this.#exit !== undefined || this.#pid === undefined) return true;
    if (this.#child) {
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.#exitWaiters = this.#exitWaiters.filter((w) => w !== done);
          resolve(this.#exit !== undefined);
        }, ms);
        const done = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        this.#exitWaiters.push(done);
      });
    }
    // Not our child (attached): /proc is the only witness; a zombie counts as exited.
    const deadline = performance.now() + ms;
    const pid = this.#pid;
    while (isAlive(pid)) {
      if (performance.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    this.#onExit(null, null);
    return true;
  }

  /** Whether QEMU runs, its pid, and the QMP run state when QMP answers. */
  async status(): Promise<VmStatus> {
    if (!this.running) return { running: false };
    const out: VmStatus = { running: true, pid: this.#pid! };
    if (this.#qmp && this.#qmp.state === 'running') {
      try {
        out.status = (await this.#qmp.execute('query-status', {}, { timeoutMs: 5_000 })).status;
      } catch (err) {
        if (!(err instanceof QmpError)) throw err;
      }
    }
    return out;
  }

  /**
   * Stops the VM through the ladder: `system_powerdown` (the guest powers off; waits `timeoutMs`),
   * then `quit`, then SIGTERM, then SIGKILL (each `stepTimeoutMs`). Removes the QMP socket, the
   * pidfile and vm.json. Reports the step that ended QEMU.
   * @throws {VmError} `EVM_STOP` only if QEMU survives SIGKILL.
   */
  async stop(options: StopOptions = {}): Promise<StopResult> {
    const t0 = performance.now();
    const timeoutMs = options.timeoutMs ?? 30_000;
    const stepMs = options.stepTimeoutMs ?? 5_000;
    const result = (step: StopStep): StopResult => ({
      step,
      exitCode: this.#exit?.code ?? null,
      signal: this.#exit?.signal ?? null,
      durationMs: performance.now() - t0,
    });
    try {
      if (!this.running) {
        await this.#waitExit(0);
        return result('not-running');
      }
      const qmp = this.#qmp?.state === 'running' ? this.#qmp : undefined;
      if (qmp && !options.force) {
        const sent = await qmp.execute('system_powerdown', {}, { timeoutMs: stepMs }).then(() => true, () => false);
        if (sent && (await this.#waitExit(timeoutMs))) return result('powerdown');
      }
      if (qmp && qmp.state === 'running') {
        await qmp.execute('quit', {}, { timeoutMs: stepMs }).catch(() => undefined);
        if (await this.#waitExit(stepMs)) return result('quit');
      }
      const ended = await terminate(this.#pid!, { ladder: [{ signal: 'SIGTERM', waitMs: stepMs }, { signal: 'SIGKILL', waitMs: stepMs }] });
      if (ended.gone && (await this.#waitExit(stepMs))) return result(ended.signal === 'SIGKILL' ? 'sigkill' : 'sigterm');
      throw new VmError('EVM_STOP', `VM '${this.name}' (pid ${this.#pid}) survived SIGKILL`);
    } finally {
      if (this.#exit !== undefined || !this.running) {
        await this.#qmp?.close().catch(() => undefined);
        this.#qmp = undefined;
        this.#cleanupFiles();
      }
    }
  }

  #drive(driveId: string): ResolvedVmOptions['drives'][number] {
    const d = this.options.drives.find((x) => x.id === driveId);
    if (!d) throw new ValidationError('driveId', driveId, `no such drive (have: ${this.options.drives.map((x) => x.id).join(', ') || 'none'})`);
    return d;
  }

  /**
   * Live external snapshot of a running VM's drive (`blockdev-snapshot-sync`): QEMU creates the
   * qcow2 `overlay` on top of the drive's current image and the VM continues on it; the old image
   * is frozen and kept (the seed's "copy the root filesystem before an upgrade, keep the old one").
   * The drive's file becomes `overlay` for later starts. Returns the frozen image.
   */
  async snapshotDisk(driveId: string, overlay: string, options: { timeoutMs?: number } = {}): Promise<{ frozen: string; overlay: string }> {
    const d = this.#drive(driveId);
    const frozen = d.file;
    await liveSnapshot(this.qmp, { device: driveId, overlay, ...options });
    d.file = overlay;
    d.format = 'qcow2';
    this.#writeState(this.args());
    return { frozen, overlay };
  }

  /**
   * Live commit of the drive's overlay into its backing image (the upgrade is kept): afterwards
   * the VM runs on the backing image, which becomes the drive's file; the overlay is deleted
   * unless `keepOverlay`.
   */
  async commitDisk(driveId: string, options: { timeoutMs?: number; keepOverlay?: boolean } & QemuImgOptions = {}): Promise<{ committedTo: string }> {
    const d = this.#drive(driveId);
    const overlay = d.file;
    const [info] = await imageInfo(overlay, { ...options, shared: true });
    const backing = info?.['full-backing-filename'] ?? info?.['backing-filename'];
    if (!backing) throw new ValidationError('driveId', driveId, `${overlay} has no backing image to commit into`);
    await liveCommit(this.qmp, { device: driveId, base: backing, timeoutMs: options.timeoutMs ?? 300_000 });
    d.file = backing;
    d.format = info?.['backing-filename-format'] === 'raw' ? 'raw' : 'qcow2';
    this.#writeState(this.args());
    if (!options.keepOverlay) removeQuietly(overlay);
    return { committedTo: backing };
  }

  /**
   * Rollback of a stopped VM's drive: deletes the top overlay (every change since the snapshot)
   * and makes its backing image the drive's file again, for the next start.
   * @throws {VmError} `EVM_NOT_STOPPED` while QEMU runs.
   */
  async rollbackDisk(driveId: string, options: QemuImgOptions = {}): Promise<{ restored: string; removed: string }> {
    const d = this.#drive(driveId);
    if (this.running) throw new VmError('EVM_NOT_STOPPED', `VM '${this.name}': stop it before rolling back ${driveId}`);
    const overlay = d.file;
    const [info] = await imageInfo(overlay, options);
    const backing = info?.['full-backing-filename'] ?? info?.['backing-filename'];
    if (!backing) throw new ValidationError('driveId', driveId, `${overlay} has no backing image to roll back to`);
    d.file = backing;
    d.format = info?.['backing-filename-format'] === 'raw' ? 'raw' : 'qcow2';
    unlinkSync(overlay);
    return { restored: backing, removed: overlay };
  }

  /** Lets the Node process exit while QEMU runs on (it was spawned detached). */
  unref(): void {
    this.#child?.unref();
  }

  /**
   * Leaves the VM running without this process: closes the QMP session (QEMU serves one client at
   * a time, so another process can then {@link Vm.attach}) and unrefs the child. The run dir's
   * pidfile, socket and vm.json stay.
   */
  async detach(): Promise<void> {
    await this.#qmp?.close();
    this.#qmp = undefined;
    this.#child?.unref();
  }

  /**
   * Re-attaches to a VM started earlier (by this or another process) from its run dir: checks
   * that the pidfile names a live QEMU serving the run dir's QMP socket and connects to QMP.
   * Note QEMU serves one QMP client at a time: the earlier client must have disconnected.
   * @throws {VmError} `EVM_NOT_RUNNING` (stale files are removed), or QMP errors.
   */
  static async attach(runDir: string, options: AttachOptions = {}): Promise<Vm> {
    if (typeof runDir !== 'string' || !runDir.startsWith('/')) throw new ValidationError('runDir', runDir, 'expected an absolute path');
    const files = runFiles(runDir);
    let state: StateFile;
    try {
      state = JSON.parse(readFileSync(files.state, 'utf8')) as StateFile;
    } catch (err) {
      throw new VmError('EVM_NOT_RUNNING', `no VM state in ${files.state}`, { cause: err });
    }
    const vm = new Vm({ ...state.options, runDir });
    vm.#accel = state.accel;
    const pid = readPidfile(files.pidfile) ?? state.pid;
    if (!isQemuServing(pid, files.qmp)) {
      vm.#cleanupFiles();
      throw new VmError('EVM_NOT_RUNNING', `VM '${vm.name}' is not running (pid ${pid} is not a live QEMU serving ${files.qmp})`);
    }
    vm.#pid = pid;
    vm.#qmp = await QmpClient.connect({ path: files.qmp, timeoutMs: options.timeoutMs ?? 10_000, isAlive: () => isAlive(pid) });
    return vm;
  }

  #writeState(args: string[]): void {
    const { nics, ...rest } = this.options;
    const options: VmOptions = { ...rest, nics: nics.map((n) => ({ ...n })) };
    if (options.netns !== undefined && typeof options.netns === 'object' && 'pid' in options.netns) delete options.netns;
    const state: StateFile = { options, accel: this.accel, pid: this.#pid!, args, startedAt: new Date().toISOString() };
    const tmp = `${this.files.state}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.files.state);
  }

  #cleanupFiles(): void {
    removeQuietly(this.files.qmp);
    removeQuietly(this.files.events);
    removeQuietly(this.files.pidfile);
    removeQuietly(this.files.state);
  }

  #logTail(): string {
    try {
      const size = statSync(this.files.log).size;
      const buf = readFileSync(this.files.log);
      return buf.subarray(Math.max(0, size - LOG_TAIL)).toString('utf8');
    } catch {
      return '';
    }
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}

/** Whether something accepts connections on a Unix socket path. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(false), 1_000).unref();
  });
}
