/**
 * Fault injection for the fault suite (integration/host/faults.test.ts), active only when
 * `VMHOST_TEST=1`: `VMHOST_TEST_FAULT=<SIGNAL>@<command>:<phase>:<index>` (e.g.
 * `SIGKILL@apply:changed:3`, `SIGINT@down:recorded:0`, `SIGKILL@commit:changed:0` for a disk
 * operation) makes the process send itself that signal
 * at that checkpoint of the engine (`HostOptions.checkpoint`) and, for a signal it handles, wait
 * until its handler ran: the engine goes on only once the signal is taken, so the outcome is
 * deterministic, with no timing involved.
 * @module
 */
import type { HostOptions } from '../types.js';

const FAULT = /^(SIGKILL|SIGINT|SIGTERM)@(apply|down|init|snapshot|rollback|commit|delete):(intended|changed|recorded):(\d+)$/;

/** The checkpoint hook `VMHOST_TEST_FAULT` asks for, if any (see the module). */
export function faultCheckpoint(env: NodeJS.ProcessEnv = process.env): HostOptions['checkpoint'] | undefined {
  const spec = env.VMHOST_TEST_FAULT;
  if (env.VMHOST_TEST !== '1' || !spec) return undefined;
  const m = FAULT.exec(spec);
  if (!m) throw new Error(`VMHOST_TEST_FAULT: expected <SIGKILL|SIGINT|SIGTERM>@<apply|down|init|snapshot|rollback|commit|delete>:<intended|changed|recorded>:<index>, got ${JSON.stringify(spec)}`);
  const [, signal, command, phase, index] = m;
  let fired = false;
  return async (p) => {
    if (fired || p.command !== command || p.phase !== phase || p.index !== Number(index)) return;
    fired = true;
    const sig = signal as NodeJS.Signals;
    if (sig === 'SIGKILL') process.kill(process.pid, sig);
    // a signal listener does not keep the event loop alive: this timer does, until it is taken
    const alive = setInterval(() => undefined, 1_000);
    const taken = new Promise<void>((resolve) => process.once(sig, () => resolve()));
    process.kill(process.pid, sig);
    await taken;
    clearInterval(alive);
  };
}
