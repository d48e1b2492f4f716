/**
 * The snapshot commands besides `vm snapshot`: `vmhost vm snapshots <name>` (list),
 * `vm rollback <name> <label>`, `vm commit <name> [label]`, `vm snapshot-delete <name> <label>`.
 * @module
 */
import { FILE_OPT, VM_FILE_HELP, withNotes, type HostCommand } from '../command.js';
import { EXIT } from '../deps.js';
import { formatMs, formatTable } from '../format.js';

/** Bytes for people: `12.0 MiB`. */
function bytes(n: number | null): string {
  if (n === null) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** `vmhost vm snapshots`. */
export const vmSnapshotsCommand: HostCommand = {
  name: 'vm snapshots',
  usage: 'vm snapshots [options] <name>',
  summary: "List a VM's snapshots and disk chains",
  options: { ...FILE_OPT },
  args: ['name'],
  hostOptions: true,
  file: 'option',
  help: `Lists the snapshots of the VM <name> (label, when taken, the bytes their frozen images hold) and
each disk's chain, root first, down to the image the VM writes. With --json: every image file of
each chain, the labels that went (and how), and an interrupted operation if there is one.

Options:
${VM_FILE_HELP}

Examples:
  vmhost vm snapshots web
  vmhost vm snapshots web --json | jq '.snapshots[].label'`,
  async run(ctx, host, _file, { args }) {
    const [name = ''] = args;
    const r = await ctx.deps.listVmSnapshots(host, name, { ...withNotes(ctx) });
    if (ctx.json) {
      ctx.io.out(JSON.stringify(r, null, 2));
      return EXIT.ok;
    }
    if (r.snapshots.length === 0) ctx.io.out(`vm ${name} has no snapshots.`);
    else ctx.io.out(formatTable(['LABEL', 'TAKEN', 'SIZE', 'DISKS'], r.snapshots.map((s) => [s.label, s.takenAt, bytes(s.bytes), s.disks.join(',')])));
    for (const d of r.disks) {
      ctx.io.out('');
      ctx.io.out(`disk ${d.index}${d.base ? ` (on base ${d.base})` : ''}:`);
      ctx.io.out(formatTable(null, d.images.map((i) => [i.top ? '*' : ' ', i.label ?? '', bytes(i.bytes), i.file]), '  '));
    }
    if (r.pending) ctx.io.out(`\nAn interrupted ${r.pending.op}${r.pending.label ? ` ${r.pending.label}` : ''} is pending: the next command on the VM (or apply) finishes it.`);
    return EXIT.ok;
  },
};

/** `vmhost vm rollback`. */
export const vmRollbackCommand: HostCommand = {
  name: 'vm rollback',
  usage: 'vm rollback [options] <name> <label>',
  summary: 'Return a VM to a snapshot (stops and restarts it)',
  options: { ...FILE_OPT },
  args: ['name', 'label'],
  hostOptions: true,
  file: 'option',
  help: `Returns the VM <name> to its snapshot <label>: stops the VM through the shutdown ladder when it
runs, deletes what was written since (and the snapshots taken after <label>), puts a new empty
overlay on the snapshot (which stays as it is: it can be returned to again), and starts the VM
again when it ran.

Options:
${VM_FILE_HELP}

Examples:
  sudo vmhost vm rollback web before-upgrade`,
  async run(ctx, host, _file, { args }) {
    const [name = '', label = ''] = args;
    const r = await ctx.deps.rollbackVm(host, name, label, { ...withNotes(ctx) });
    if (ctx.json) ctx.io.out(JSON.stringify(r, null, 2));
    else ctx.io.out(`Rolled vm ${name} back to ${label} (${r.discarded.length} image(s) discarded${r.restarted ? ', started again' : ''}) in ${formatMs(r.ms)}.`);
    return EXIT.ok;
  },
};

/** `vmhost vm commit`. */
export const vmCommitCommand: HostCommand = {
  name: 'vm commit',
  usage: 'vm commit [options] <name> [label]',
  summary: "Merge a VM's overlays into its disk (or into a snapshot)",
  options: { ...FILE_OPT, timeout: { type: 'string' } },
  args: ['name'],
  optionalArgs: ['label'],
  hostOptions: true,
  file: 'option',
  help: `Merges the overlays of the VM <name> into its disk: a plain disk's own image, or the VM's own
overlay on its base image (a base image is never written). With [label], into that snapshot
instead. The snapshots merged (the target's too) go. Live (block-commit; the guest is paused for
the instant of the switch) when the VM runs, with qemu-img when it is stopped.

Options:
${VM_FILE_HELP}
  --timeout SECONDS How long each block job may take (default 300)

Examples:
  sudo vmhost vm commit web
  sudo vmhost vm commit web before-upgrade`,
  async run(ctx, host, _file, { values, args }) {
    const [name = '', label] = args;
    const options = { ...withNotes(ctx), ...(label !== undefined ? { label } : {}), ...(typeof values.timeout === 'string' ? { timeoutMs: Math.round(Number(values.timeout) * 1000) } : {}) };
    const r = await ctx.deps.commitVm(host, name, options);
    if (ctx.json) ctx.io.out(JSON.stringify(r, null, 2));
    else if (r.disks.length === 0) ctx.io.out(`vm ${name}: nothing to commit.`);
    else for (const d of r.disks) ctx.io.out(`Committed ${d.merged} image(s) of vm ${name} disk ${d.index} into ${d.into} (${r.live ? 'live' : 'stopped'}, ${formatMs(r.ms)}).`);
    return EXIT.ok;
  },
};

/** `vmhost vm snapshot-delete`. */
export const vmSnapshotDeleteCommand: HostCommand = {
  name: 'vm snapshot-delete',
  usage: 'vm snapshot-delete [options] <name> <label>',
  summary: 'Delete a snapshot of a VM (its data merged into the next)',
  options: { ...FILE_OPT, timeout: { type: 'string' } },
  args: ['name', 'label'],
  hostOptions: true,
  file: 'option',
  help: `Deletes the snapshot <label> of the VM <name>: the image above it is merged into it, so the
later snapshots and the disk keep their data. Live when the VM runs, with qemu-img when stopped.

Options:
${VM_FILE_HELP}
  --timeout SECONDS How long each block job may take (default 300)

Examples:
  sudo vmhost vm snapshot-delete web snap-20240501-120000`,
  async run(ctx, host, _file, { values, args }) {
    const [name = '', label = ''] = args;
    const r = await ctx.deps.deleteVmSnapshot(host, name, label, { ...withNotes(ctx), ...(typeof values.timeout === 'string' ? { timeoutMs: Math.round(Number(values.timeout) * 1000) } : {}) });
    if (ctx.json) ctx.io.out(JSON.stringify(r, null, 2));
    else ctx.io.out(`Deleted snapshot ${label} of vm ${name} (${r.live ? 'live' : 'stopped'}, ${formatMs(r.ms)}).`);
    return EXIT.ok;
  },
};
