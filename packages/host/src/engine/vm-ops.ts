/**
 * Operations on one VM of an applied host: start (on the active top of each disk chain), stop
 * (through the shutdown ladder), and its console log file. Snapshots: disk-ops.ts.
 * @module
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { terminate } from '@vmhost/net';
import { Vm, VmError } from '@vmhost/kvm';
import { save as fwSave } from '@vmhost/firewall';
import { HostPreconditionError } from '../errors.js';
import type { HostOptions, ResolvedHost } from '../types.js';
import { desiredOptions, findVm, openCtx, vmRunDir } from './context.js';
import { vmDir, vmEntry, vmPort } from './desired.js';
import { liveQemuPid, vmKind } from './kinds/vm.js';
import { readSeeds } from './seeds.js';
import { checkStateDir, writePrivateFile } from './state-dir.js';

/**
 * The file in a VM's run directory that names the QEMU `vmhost vm stop` stopped (its pid): a
 * supervisor (`vmhost run`) then knows the exit was asked for and leaves the VM down whatever its
 * restart policy. `vm start` removes it; a file naming another pid than the QEMU that exited is stale.
 */
export const STOPPED_FILE = 'stopped';

/** The serial console log file of a VM of `host`. */
export function consoleFile(host: ResolvedHost, name: string, options: HostOptions = {}): string {
  findVm(host, name);
  return join(vmRunDir(host, name, options), 'console.log');
}

/**
 * Starts one VM of an applied host (its TAP must exist, and with isolation on its port's rules:
 * apply first; a VM never runs without them). No-op when it runs.
 * @throws {HostPreconditionError} no TAP, or no port rules of an isolated VM.
 */
export async function startVm(host: ResolvedHost, name: string, options: HostOptions = {}): Promise<void> {
  const vm = findVm(host, name);
  const ctx = await openCtx(host, options);
  try {
    ctx.dir = checkStateDir(ctx.dir, true) ?? ctx.dir;
    readSeeds(ctx);
    const entry = vmEntry(vm, desiredOptions(ctx));
    if (!(await ctx.h.links.find(vm.tap))) throw new HostPreconditionError('name', name, `TAP ${vm.tap} does not exist: apply the host first`);
    const port = vmPort(host, vm);
    if (port) {
      const s = await fwSave(ctx.netns !== undefined ? { netns: ctx.netns } : {});
      const chain = (suffix: string): RegExp => new RegExp(`^:VMHOST-${host.name}-${port.group}-${suffix} `, 'm');
      if (!chain('S').test(s.bridge) || !chain('N').test(s.ipv6)) {
        throw new HostPreconditionError('name', name, `the anti-spoofing rules of its port ${vm.tap} are not in place (no chain VMHOST-${host.name}-${port.group}-S): apply the host first`);
      }
    }
    // running (by its pidfile or a /proc scan of its run dir): nothing to do
    if ((await vmKind.inspect(ctx, entry, await vmKind.intent(ctx, entry))) !== 'missing') return;
    rmSync(join(vmDir(ctx.dir, name), STOPPED_FILE), { force: true });
    await vmKind.create(ctx, entry, await vmKind.intent(ctx, entry));
  } finally {
    ctx.h.close();
  }
}

/**
 * Stops one VM through the shutdown ladder; reports the rung that ended it. A QEMU of the VM's
 * run dir that QMP cannot reach (another client holds it, or its start was interrupted) is ended
 * by its pid (SIGTERM, then SIGKILL). The run directory's file `stopped` names it first, so
 * that `vmhost run` leaves it down.
 */
export async function stopVm(host: ResolvedHost, name: string, options: HostOptions & { timeoutMs?: number } = {}): Promise<{ step: string; ms: number }> {
  findVm(host, name);
  const runDir = vmRunDir(host, name, options);
  const t0 = performance.now();
  const running = liveQemuPid(runDir);
  if (running !== undefined) writePrivateFile(join(runDir, STOPPED_FILE), `${running}\n`);
  let vm: Vm;
  try {
    vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
  } catch {
    const pid = liveQemuPid(runDir);
    if (pid === undefined) return { step: 'not-running', ms: 0 };
    const r = await terminate(pid);
    if (!r.gone) throw new VmError('EVM_STOP', `VM '${name}' (pid ${pid}) survived SIGKILL`);
    return { step: r.signal === 'SIGKILL' ? 'sigkill' : 'sigterm', ms: Math.round(performance.now() - t0) };
  }
  const r = await vm.stop(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  return { step: r.step, ms: Math.round(r.durationMs) };
}
