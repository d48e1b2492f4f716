/**
 * The disk chains in the host's life: apply finishes the disk operations a kill interrupted
 * (before it starts or stops any VM: a paused guest is resumed, a half-made overlay made or
 * removed), and `down --delete-disks` deletes the chains of the data directory.
 * @module
 */
import { lstatSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import { vmDisks } from '../kinds/vm.js';
import { VM_NAME } from '../records.js';
import { checkStateDir, privateDir } from '../state-dir.js';
import { readChainRecord } from './record.js';
import { chainDisks, openDiskDir, withSession } from './session.js';

/**
 * Finishes the interrupted disk operation of every VM of the host that has one (its record holds
 * an intent): a session on its disks runs it to its end. VMs without a disk directory, or whose
 * record has no intent, are only read.
 */
export async function finishDiskIntents(ctx: Ctx): Promise<void> {
  for (const vm of ctx.host.vms) {
    if (chainDisks(vm).length === 0) continue;
    const v = vmDisks(ctx, vm.name);
    const dir = openDiskDir(v, false);
    if (dir === undefined || !readChainRecord(dir, vm.name)?.intent) continue;
    await withSession(v, dir, async () => undefined);
  }
}

/**
 * Deletes the disk directories of the data directory (`<dataDir>/disks/<vm>`: the overlays
 * vmhost made and their records; each checked to be a directory of ours, not a symlink), then
 * `disks` and the data directory itself when empty. Returns the VMs whose chains went.
 */
export function deleteDiskChains(ctx: Pick<Ctx, 'dataDir'>): string[] {
  const real = checkStateDir(ctx.dataDir, false);
  if (real === undefined) return [];
  const root = join(real, 'disks');
  let names: string[];
  try {
    if (!lstatSync(root).isDirectory()) return [];
    names = readdirSync(root).filter((n) => VM_NAME.test(n));
  } catch {
    return [];
  }
  const gone: string[] = [];
  for (const name of names.sort()) {
    rmSync(privateDir(real, 'disks', name), { recursive: true, force: true });
    gone.push(name);
  }
  for (const dir of [root, real]) {
    try {
      rmdirSync(dir);
    } catch {
      break; // not empty (other data of the host, such as cloud-init seeds): kept
    }
  }
  return gone;
}
