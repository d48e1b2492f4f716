/**
 * VMs: QEMU started from the host file's definition (the engine lets go of QMP after start: QEMU
 * serves one client at a time), stopped through the shutdown ladder; a changed definition (its
 * fingerprint) restarts it. A VM is found by its run directory alone (`<stateDir>/vms/<name>`):
 * the QEMU its pidfile names, or, when the pidfile is not written yet or lost, the QEMU whose
 * command line names the run directory's QMP socket (a /proc scan), always checked against
 * /proc/PID/cmdline. So a VM that runs is always found, stopped by `down`, and never started
 * twice, also after an apply was killed while QEMU started. When another client holds the QMP
 * socket, a live QEMU still counts as running and is ended by its pid.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { allPids, readPidfile, terminate, VmhostError } from '@vmhost/net';
import { Vm, VmAlreadyRunningError, VmError, isQemuServing, runFiles, type VmOptions } from '@vmhost/kvm';
import { desiredOptions, type Ctx } from '../context.js';
import type { LiveView } from '../live.js';
import { vmDir, vmEntry } from '../desired.js';
import type { VmEntry } from '../entries.js';
import type { VmRecord } from '../records.js';
import { prepareDrives, type VmDisks } from '../disks/session.js';
import { privateDir } from '../state-dir.js';
import { done, intended, settledPool, stableJson, type KindOps } from './kind.js';

/** The fingerprint of a VM definition: sha256 of its QEMU options (keys sorted). */
export function vmFingerprint(o: VmOptions): string {
  return createHash('sha256').update(stableJson(o)).digest('hex');
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
  intent: async (_ctx, e) => ({ ...intended(e), data: { name: e.data.name, fingerprint: vmFingerprint(e.data.options) } }),
  async inspect(ctx, e, recorded) {
    if (liveQemuPid(vmDir(ctx.dir, e.data.name), ctx.live) === undefined) return 'missing';
    return recorded?.data.fingerprint === vmFingerprint(e.data.options) ? 'ok' : 'differs';
  },
  async create(ctx, e, intent) {
    const o = e.data.options;
    privateDir(ctx.dir, 'vms', e.data.name);
    const running = liveQemuPid(o.runDir, ctx.live);
    if (running !== undefined) throw new VmAlreadyRunningError(e.data.name, running);
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
    return { removed: await stopVmIn(vmDir(ctx.dir, r.data.name), r.data.name, ctx.live) };
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
