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
import type { Known } from './records.js';
import { rebuild } from './recover.js';
import { putRecord, dropRecord, isCorrupt, loadState, moveAside, stateFile, writeState, type StateFile } from './state.js';

/** The record as read for a change, and the hash its journal is based on (state.ts `loadState`). */
export interface ForChange {
  state: StateFile;
  base: string | null;
}

/**
 * Reads the state of `ctx` for a change (a journal left by the last run is replayed and compacted
 * into the state file); a state file (or journal) that cannot be read as one is moved aside and
 * the record rebuilt from the live system (and written). `known`: what the run wants (records.ts `Known`).
 */
export async function loadForChange(ctx: Ctx, known: Known = {}): Promise<ForChange> {
  try {
    const { state, base, replayed } = loadState(ctx.dir, ctx.host.name, known);
    return { state, base: replayed ? writeState(ctx.dir, state) : base };
  } catch (err) {
    if (!isCorrupt(err)) throw err;
    const moved = moveAside(ctx.dir);
    const r = await rebuild(ctx);
    const state: StateFile = { version: 2, name: ctx.host.name, entries: r.entries, updatedAt: '' };
    const base = writeState(ctx.dir, state);
    ctx.notice(`${err.message}: moved to ${moved}; the record was rebuilt from the live system's owner marks (${r.entries.length} entries)`);
    for (const n of r.notices) ctx.notice(n);
    return { state, base };
  }
}

/**
 * Confirms or drops every `intended` record of `s.state` (see the module); writes the state when
 * one changed (and returns the new base), and then forgets the run's live view (a reconcile may
 * rename or delete links).
 */
export async function reconcileIntents(ctx: Ctx, s: ForChange): Promise<ForChange> {
  const { state } = s;
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
  if (!changed) return s;
  ctx.live.forget();
  return { state, base: writeState(ctx.dir, state) };
}
