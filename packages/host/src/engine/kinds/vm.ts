/**
 * VMs: QEMU started from the host file's definition (the engine lets go of QMP after start: QEMU
 * serves one client at a time), stopped through the shutdown ladder; a changed definition (its
 * fingerprint) restarts it. A VM is found by its run directory alone (`<stateDir>/vms/<name>`):
 * the QEMU its pidfile names, or, when the pidfile is not written yet or lost, the QEMU whose
 * command line names the run directory's QMP socket (a /proc scan), always checked against
 * /proc/PID/cmdline. So a VM that runs is always found, stopped by `down`, and never started
 * twice, also after an apply was killed while QEMU started. When another client holds the QMP
 * socket, a live QEMU still counts as running and is ended by its pid.
 *
 * A VM with `cloudInit` has its seed volume written before QEMU starts (`<dataDir>/seeds/<vm>.iso`)
 * and removed when the VM is removed; the seed's instance-id is part of the fingerprint, so a
 * changed seed restarts the VM: cloud-init reads its seed at boot only (and QEMU keeps the old
 * file open), so a new seed takes effect with a new boot, which apply then does.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { allPids, readPidfile, terminate, VmhostError } from '@vmhost/net';
import { Vm, VmAlreadyRunningError, VmError, isQemuServing, runFiles, type VmOptions } from '@vmhost/kvm';
import { desiredOptions, type Ctx } from '../context.js';
import type { LiveView } from '../live.js';
import { seedFile, vmDir, vmEntry } from '../desired.js';
import { writeSeed } from '../../guests/cloud-init.js';
import type { VmEntry } from '../entries.js';
import type { VmRecord } from '../records.js';
import { prepareDrives, type VmDisks } from '../disks/session.js';
import { checkStateDir, privateDir } from '../state-dir.js';
import { done, intended, settledPool, stableJson, type KindOps } from './kind.js';

/**
 * The fingerprint of a VM definition: sha256 of its QEMU options (keys sorted) and, with a
 * cloud-init seed, the seed's instance-id (a hash of everything in the seed): a changed seed is a
 * changed definition.
 */
export function vmFingerprint(o: VmOptions, seedInstanceId?: string): string {
  return createHash('sha256').update(stableJson(seedInstanceId === undefined ? o : { options: o, seed: seedInstanceId })).digest('hex');
}

/** The fingerprint of a VM entry. */
const fingerprintOf = (e: VmEntry): string => vmFingerprint(e.data.options, e.data.seed?.seed.instanceId);

/**
 * Writes the VM's seed volume before QEMU starts: in `<dataDir>/seeds` (the data directory made
 * and checked as the state directory is, `seeds` 0700), 0600, through a new temp file renamed over
 * the old one (never through a link; nothing written when the bytes are there already). A VM
 * without a seed gets a stale one removed.
 */
function writeVmSeed(ctx: Ctx, e: VmEntry): void {
  const s = e.data.seed;
  if (!s) return removeVmSeed(ctx, e.data.name);
  const dir = privateDir(checkStateDir(ctx.dataDir, true, { keepSearchable: true }) ?? ctx.dataDir, 'seeds');
  writeSeed(join(dir, basename(s.file)), s.seed);
}

/** Removes the seed volume of VM `name` (the path derived from the data directory and the name; a link is removed, never followed). */
function removeVmSeed(ctx: Ctx, name: string): void {
  const real = checkStateDir(ctx.dataDir, false);
  if (real === undefined) return;
  const dir = join(real, 'seeds');
  if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return;
  rmSync(join(dir, basename(seedFile(real, name))), { force: true });
}

/**
 * The pid of the live QEMU of the run directory `runDir`: the one its pidfile names, else one
 * found in /proc whose command line names the run directory's QMP socket: with `live`, in the
 * run's one scan of /proc (live.ts), else in a scan of its own.
 */
export function liveQemuPid(runDir: string, live?: LiveView): number | undefined {
  const files = runFiles(runDir);
  const pid = readPidfile(files.pidfile);
  if (pid !== undefined && isQemuServing(pid, files.qmp)) return pid;
  if (live) return live.qemuServing(files.qmp);
  return allPids().find((p) => p !== pid && p !== process.pid && isQemuServing(p, files.qmp));
}

/** What {@link vmState} finds. */
export interface VmState {
  running: boolean;
  pid?: number;
  /** QEMU's run state, when QMP answered. */
  status?: string;
  /** Another client holds the QMP socket: running is known from the pidfile and /proc only. */
  qmpBusy?: true;
}

/**
 * Whether the VM of `runDir` runs: a live QEMU of the run directory (pidfile or /proc scan); its
 * run state over QMP when QMP answers (QEMU serves one QMP client at a time: when another tool or
 * a concurrent `vmhost status` holds it, `qmpBusy`). A QEMU whose start was interrupted (no
 * vm.json yet) is running without a QMP state. `live`: the run's view (one /proc scan for all VMs).
 */
export async function vmState(runDir: string, live?: LiveView): Promise<VmState> {
  const pid = liveQemuPid(runDir, live);
  if (pid === undefined) return { running: false };
  if (!existsSync(join(runDir, 'vm.json'))) return { running: true, pid };
  let vm: Vm;
  try {
    vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
  } catch {
    return liveQemuPid(runDir) !== undefined ? { running: true, pid, qmpBusy: true } : { running: false };
  }
  try {
    const st = await vm.status();
    const out: VmState = { running: st.running };
    if (st.pid !== undefined) out.pid = st.pid;
    if (st.status !== undefined) out.status = st.status;
    return out;
  } finally {
    await vm.detach().catch(() => undefined);
  }
}

/**
 * Stops the VM of `runDir`: through the shutdown ladder over QMP when it answers, else by pid
 * (SIGTERM, then SIGKILL). Resolves true when a QEMU was running. `live`: the run's view (told
 * that the QEMU is gone).
 * @throws {VmError} `EVM_STOP` when it survives SIGKILL.
 */
export async function stopVmIn(runDir: string, name: string, live?: LiveView): Promise<boolean> {
  const pid = liveQemuPid(runDir, live);
  if (pid === undefined) return false;
  if (existsSync(join(runDir, 'vm.json'))) {
    let vm: Vm | undefined;
    try {
      vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
    } catch {
      vm = undefined; // QMP busy or not up yet: by pid below
    }
    if (vm) {
      await vm.stop({ timeoutMs: 20_000 });
      live?.setQemu(runFiles(runDir).qmp, undefined);
      return true;
    }
  }
  const left = liveQemuPid(runDir, live);
  if (left !== undefined && !(await terminate(left)).gone) throw new VmError('EVM_STOP', `VM '${name}' (pid ${left}) survived SIGKILL`);
  live?.setQemu(runFiles(runDir).qmp, undefined);
  return true;
}

/** Stops every QEMU of a run directory under `<dir>/vms` (recorded or not); the names stopped. `live`: the run's view. */
export async function stopAllVms(dir: string, live?: LiveView): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(join(dir, 'vms'));
  } catch {
    return [];
  }
  const stopped: string[] = [];
  for (const name of names) if (await stopVmIn(vmDir(dir, name), name, live)) stopped.push(name);
  return stopped;
}

/** The disks of VM `name` of the context's host. */
export function vmDisks(ctx: Ctx, name: string): VmDisks {
  const vm = ctx.host.vms.find((v) => v.name === name);
  if (!vm) throw new VmhostError('EHOST_INTERNAL', `VM ${name} is not in the host file`);
  const v: VmDisks = { host: ctx.host, vm, vmIndex: ctx.host.vms.indexOf(vm), options: ctx.options, stateDir: ctx.dir, dataDir: ctx.dataDir, notice: ctx.notice };
  if (ctx.qemuIds) v.owner = ctx.qemuIds;
  return v;
}

/** How many VMs a batch of removals stops at a time. */
export const STOP_TOGETHER = 16;

/** The VM kind. */
export const vmKind: KindOps<VmEntry, VmRecord> = {
  style: 'process',
  keepsLive: true,
  intent: async (_ctx, e) => ({ ...intended(e), data: { name: e.data.name, fingerprint: fingerprintOf(e) } }),
  async inspect(ctx, e, recorded) {
    if (liveQemuPid(vmDir(ctx.dir, e.data.name), ctx.live) === undefined) return 'missing';
    return recorded?.data.fingerprint === fingerprintOf(e) ? 'ok' : 'differs';
  },
  async create(ctx, e, intent) {
    const o = e.data.options;
    privateDir(ctx.dir, 'vms', e.data.name);
    const running = liveQemuPid(o.runDir, ctx.live);
    if (running !== undefined) throw new VmAlreadyRunningError(e.data.name, running);
    writeVmSeed(ctx, e);
    // every start runs on the active top of each disk chain (the lock on the chain is held until
    // QEMU has opened its images)
    const { drives, release } = await prepareDrives(vmDisks(ctx, e.data.name), o.drives ?? []);
    try {
      // a stopped VM's run dir (stale pidfile, console log of the last boot) is cleaned by start()
      const vm = new Vm({ ...o, drives });
      await vm.start({ timeoutMs: 60_000 });
      ctx.live.setQemu(runFiles(o.runDir).qmp, vm.pid);
      // QEMU's QMP socket serves one client at a time: let go, so that status, stop and later
      // applies (this process or another) can attach.
      await vm.detach();
    } finally {
      release();
    }
    return done(intent);
  },
  async update(ctx, e, recorded) {
    // the new seed first: a seed that cannot be written leaves the VM running as it was (QEMU
    // keeps the old one open)
    writeVmSeed(ctx, e);
    await stopVmIn(vmDir(ctx.dir, e.data.name), e.data.name, ctx.live);
    const made = await vmKind.create(ctx, e, await vmKind.intent(ctx, e));
    return {
      record: made,
      undo: async () => {
        await stopVmIn(vmDir(ctx.dir, e.data.name), e.data.name, ctx.live);
        throw new VmhostError(
          'EHOST_NO_UNDO',
          `VM '${e.data.name}' was stopped and not started again with its previous definition: the state file keeps no command lines${recorded ? '' : ' (it was not started by vmhost)'}; apply a host file that defines it to start it`,
        );
      },
    };
  },
  async destroy(ctx, r) {
    const removed = await stopVmIn(vmDir(ctx.dir, r.data.name), r.data.name, ctx.live);
    // its seed holds the user's keys and user-data: it goes with the VM (apply writes it again)
    removeVmSeed(ctx, r.data.name);
    return { removed };
  },
  // several VMs are stopped side by side: each waits for its guest (ACPI power-off, up to 20 s)
  destroyMany: (ctx, rs) => settledPool(rs, STOP_TOGETHER, (r) => vmKind.destroy(ctx, r)),
  reconcile: async (ctx, r) => (liveQemuPid(vmDir(ctx.dir, r.data.name), ctx.live) !== undefined ? done(r) : undefined),
  remake(ctx, r) {
    const vm = ctx.host.vms.find((v) => v.name === r.data.name);
    return vm ? vmEntry(vm, desiredOptions(ctx)) : undefined;
  },
  removalText: (r) => `VM ${r.data.name}`,
};
