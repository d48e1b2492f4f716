/**
 * VMs: QEMU started from the recorded options (the engine lets go of QMP after start: QEMU serves
 * one client at a time), stopped through the shutdown ladder; a changed definition restarts it.
 * When another client holds the QMP socket, a VM whose pidfile names a live QEMU serving that
 * socket still counts as running, and is ended by its pid.
 * @module
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readPidfile, terminate } from '@vmhost/net';
import { Vm, VmError, isQemuServing, runFiles } from '@vmhost/kvm';
import type { VmEntry } from '../entries.js';
import { sameOptions, type KindOps } from './kind.js';

/** The pid of the live QEMU that serves `runDir`'s QMP socket (by its pidfile and /proc), if any. */
function liveQemuPid(runDir: string): number | undefined {
  const files = runFiles(runDir);
  const pid = readPidfile(files.pidfile);
  return pid !== undefined && isQemuServing(pid, files.qmp) ? pid : undefined;
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
 * Whether the VM of `runDir` runs: over QMP (its run state) when QMP answers; otherwise by its
 * pidfile and /proc (a live QEMU serving this run dir's QMP socket), since QEMU serves one QMP
 * client at a time and another tool (or a concurrent `vmhost status`) may hold it: `qmpBusy`.
 */
export async function vmState(runDir: string): Promise<VmState> {
  if (!existsSync(join(runDir, 'vm.json'))) return { running: false };
  let vm: Vm;
  try {
    vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
  } catch {
    const pid = liveQemuPid(runDir);
    return pid !== undefined ? { running: true, pid, qmpBusy: true } : { running: false };
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

/** The VM kind. */
export const vmKind: KindOps<VmEntry> = {
  style: 'process',
  async inspect(_ctx, e, recorded) {
    const st = await vmState(e.data.options.runDir);
    if (!st.running) return 'missing';
    return recorded && sameOptions(recorded.data.options, e.data.options) ? 'ok' : 'differs';
  },
  async create(_ctx, e) {
    const o = e.data.options;
    // a stopped VM's run dir (stale pidfile, console log of the last boot) is cleaned by start()
    mkdirSync(o.runDir, { recursive: true });
    const vm = new Vm(o);
    await vm.start({ timeoutMs: 60_000 });
    // QEMU's QMP socket serves one client at a time: let go, so that status, stop and later
    // applies (this process or another) can attach.
    await vm.detach();
    return e;
  },
  async destroy(_ctx, e) {
    const runDir = e.data.options.runDir;
    let vm: Vm;
    try {
      vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
    } catch {
      // QMP does not answer (or another client holds it): if a QEMU of this run dir still lives,
      // end it by its pid (SIGTERM, then SIGKILL).
      const pid = liveQemuPid(runDir);
      if (pid !== undefined && !(await terminate(pid)).gone) throw new VmError('EVM_STOP', `VM '${e.data.name}' (pid ${pid}) survived SIGKILL`);
      return;
    }
    await vm.stop({ timeoutMs: 20_000 });
  },
};
