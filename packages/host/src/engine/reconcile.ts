/**
 * What apply and down do first, under the lock: read the state file (a corrupt one is moved
 * aside and the record rebuilt from the live system's owner marks, recover.ts), then reconcile
 * the records an interrupted run left `intended` with the live system: each kind finds out
 * whether what the record stands for exists (a link of that name with this host's mark, a live
 * QEMU of the VM's run directory, the owner's chains, the sysctl at the value it was set to,
 * ...) and the record is confirmed (adopted) or dropped, anything half-made (a link under its
 * temporary name) removed. Each outcome is a notice.
 * @module
 */
import type { Ctx } from './context.js';
import { forRecord } from './kinds/index.js';
import { rebuild } from './recover.js';
import { putRecord, dropRecord, isCorrupt, moveAside, readState, stateFile, writeState, type StateFile } from './state.js';

/**
 * Reads the state of `ctx` for a change; a state file that cannot be read as one is moved aside
 * and the record rebuilt from the live system (and written).
 */
export async function loadForChange(ctx: Ctx): Promise<StateFile> {
  try {
    return readState(ctx.dir, ctx.host.name);
  } catch (err) {
    if (!isCorrupt(err)) throw err;
    const moved = moveAside(ctx.dir);
    const r = await rebuild(ctx);
    const state: StateFile = { version: 2, name: ctx.host.name, entries: r.entries, updatedAt: '' };
    writeState(ctx.dir, state);
    ctx.notice(`${err.message}: moved to ${moved}; the record was rebuilt from the live system's owner marks (${r.entries.length} entries)`);
    for (const n of r.notices) ctx.notice(n);
    return state;
  }
}

/** Confirms or drops every `intended` record of `state` (see the module); writes the state when one changed. */
export async function reconcileIntents(ctx: Ctx, state: StateFile): Promise<void> {
  let changed = false;
  for (const r of state.entries.filter((e) => e.status === 'intended')) {
    const kept = await forRecord(r).reconcile(ctx);
    changed = true;
    if (kept) {
      putRecord(state, kept);
      ctx.notice(`${r.id}: an interrupted run had made it; it is recorded now (${stateFile(ctx.dir)})`);
    } else {
      dropRecord(state, r.id);
      ctx.notice(`${r.id}: an interrupted run had not made it (or it is gone); its intent is dropped`);
    }
  }
  if (changed) writeState(ctx.dir, state);
}
