/**
 * What the `vmhost` command line works with: where it writes ({@link CliIO}), the engine
 * functions it calls ({@link CliDeps}; tests pass fakes, {@link defaultDeps} loads the real ones
 * lazily) and its exit codes ({@link EXIT}).
 * @module
 */
import type { TestGuest, TestGuestOptions } from '../guests/test-guest/build.js';
import type { RunHostOptions } from '../service/types.js';
import type { DiskOpOptions, SnapshotResult, VmSnapshots } from '../engine/disk-ops.js';
import type { DownOptions, HostOptions, HostStatus, Plan, RecoverReport, Report, ResolvedHost } from '../types.js';

/** Where the CLI writes. Each call prints one line (the entry point adds the newline). */
export interface CliIO {
  /** A line of normal output (stdout). */
  out(s: string): void;
  /** A line of diagnostics: progress, errors, usage (stderr). */
  err(s: string): void;
  /** Whether the output is a terminal: allows colours (unless `NO_COLOR` is set). */
  isTTY?: boolean;
}

/** The engine functions the CLI calls; {@link defaultDeps} loads the real ones. */
export interface CliDeps {
  /** Reads and validates a host file (the real one keeps its parse in /run/vmhost/cache: spec/parse-cache.ts); throws `HostSpecError` (with `.problems`) when it is invalid. */
  loadHostFile(path: string): Promise<ResolvedHost>;
  /** Starts reading the firewall's tables for the plan that follows (engine/live.ts `prefetchFirewallSaves`); optional. */
  prefetchFirewall?(options: HostOptions): void;
  /** The steps `apply` would carry out. */
  plan(host: ResolvedHost, options?: HostOptions): Promise<Plan>;
  /** Makes the host match the spec; throws `HostApplyError` after undoing what it did. */
  apply(host: ResolvedHost, options?: HostOptions): Promise<Report>;
  /** Tears down what apply made (`deleteDisks`: the VMs' disk chains too). */
  down(host: ResolvedHost, options?: DownOptions): Promise<Report>;
  /** Rebuilds the state file from the live system's owner marks (`force`: also a readable one). */
  recover(host: ResolvedHost, options?: HostOptions & { force?: boolean }): Promise<RecoverReport>;
  /** What is there now. */
  status(host: ResolvedHost, options?: HostOptions): Promise<HostStatus>;
  /** Starts one VM. */
  startVm(host: ResolvedHost, name: string, options?: HostOptions): Promise<void>;
  /** Stops one VM; `step` is the rung of the shutdown ladder that ended it. */
  stopVm(host: ResolvedHost, name: string, options?: HostOptions & { timeoutMs?: number }): Promise<{ step: string; ms: number }>;
  /** A snapshot point of a VM's disks (the VM continues on new overlays). */
  snapshotVm(host: ResolvedHost, name: string, options?: DiskOpOptions & { label?: string }): Promise<SnapshotResult>;
  /** A VM's snapshots and disk chains. */
  listVmSnapshots(host: ResolvedHost, name: string, options?: HostOptions): Promise<VmSnapshots>;
  /** Returns a VM to a snapshot (stopping and restarting it when it runs). */
  rollbackVm(host: ResolvedHost, name: string, label: string, options?: DiskOpOptions): Promise<{ vm: string; label: string; restarted: boolean; discarded: string[]; ms: number }>;
  /** Merges a VM's overlays into its disk (or into the snapshot `label`). */
  commitVm(host: ResolvedHost, name: string, options?: DiskOpOptions & { label?: string }): Promise<{ vm: string; label: string | null; live: boolean; disks: Array<{ index: number; into: string; merged: number }>; ms: number }>;
  /** Deletes a snapshot of a VM (its data merged into the next image). */
  deleteVmSnapshot(host: ResolvedHost, name: string, label: string, options?: DiskOpOptions): Promise<{ vm: string; label: string; live: boolean; ms: number }>;
  /** The VM's serial console log file (the real one is synchronous; the lazy loader is not). */
  consoleFile(host: ResolvedHost, name: string, options?: HostOptions): string | Promise<string>;
  /** The service of `vmhost run` (not started yet: `run()` runs it until `options.signal` is aborted; `reload()` is SIGHUP's). */
  service(host: ResolvedHost, options: RunHostOptions): Promise<{ run(): Promise<void>; reload(trigger?: string): void }>;
  /** The self-contained demo; true when every check passed. */
  runDemo(options?: { keep?: boolean; json?: boolean; out?: (line: string) => void }): Promise<boolean>;
  /** Builds the test guest (a no-op when a current build is there). */
  buildGuest(options?: TestGuestOptions): Promise<TestGuest>;
}

/** The real engine, loaded on first use (so `--help` and usage errors never load it). */
export const defaultDeps: CliDeps = {
  loadHostFile: async (path) => {
    const load = await import('../spec/load.js');
    return load.loadHostFile(path, { cacheDir: load.PARSE_CACHE_DIR });
  },
  prefetchFirewall: (options) =>
    void import('../engine/live.js')
      .then((live) => live.prefetchFirewallSaves(options.netns))
      .catch(() => undefined),
  plan: async (host, options) => (await import('../engine/run.js')).plan(host, options),
  apply: async (host, options) => (await import('../engine/run.js')).apply(host, options),
  down: async (host, options) => (await import('../engine/run.js')).down(host, options),
  recover: async (host, options) => (await import('../engine/recover.js')).recover(host, options),
  status: async (host, options) => (await import('../engine/status.js')).status(host, options),
  startVm: async (host, name, options) => (await import('../engine/vm-ops.js')).startVm(host, name, options),
  stopVm: async (host, name, options) => (await import('../engine/vm-ops.js')).stopVm(host, name, options),
  snapshotVm: async (host, name, options) => (await import('../engine/disk-ops.js')).snapshotVm(host, name, options),
  listVmSnapshots: async (host, name, options) => (await import('../engine/disk-ops.js')).listVmSnapshots(host, name, options),
  rollbackVm: async (host, name, label, options) => (await import('../engine/disk-ops.js')).rollbackVm(host, name, label, options),
  commitVm: async (host, name, options) => (await import('../engine/disk-ops.js')).commitVm(host, name, options),
  deleteVmSnapshot: async (host, name, label, options) => (await import('../engine/disk-ops.js')).deleteVmSnapshot(host, name, label, options),
  consoleFile: async (host, name, options) => (await import('../engine/vm-ops.js')).consoleFile(host, name, options),
  service: async (host, options) => new (await import('../service/service.js')).HostService(host, options),
  runDemo: async (options) => (await import('../demo/demo.js')).runDemo(options),
  buildGuest: async (options) => (await import('../guests/test-guest/build.js')).buildTestGuest(options),
};

/** Exit codes of `vmhost`. */
export const EXIT = {
  ok: 0,
  error: 1,
  /** Usage error (1 with `--detailed-exitcode`, whose 2 means changes pending only). */
  usage: 2,
  /** `plan --detailed-exitcode`: changes are pending. */
  changes: 2,
  /** The host file is invalid (1 with `--detailed-exitcode`). */
  spec: 3,
  /** Apply/down failed and undoing failed too: the host may be half-applied. */
  undoFailed: 4,
  /** Interrupted (SIGINT, SIGTERM): apply undid what it did; down stopped between steps. */
  interrupted: 130,
} as const;
