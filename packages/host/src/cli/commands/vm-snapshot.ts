/**
 * `vmhost vm snapshot <name>`: a snapshot point of a VM's disks; the VM continues on new overlays.
 * @module
 */
import { FILE_OPT, VM_FILE_HELP, withNotes, type HostCommand } from '../command.js';
import { EXIT } from '../deps.js';
import { formatMs } from '../format.js';

/** `vmhost vm snapshot`. */
export const vmSnapshotCommand: HostCommand = {
  name: 'vm snapshot',
  usage: 'vm snapshot [options] <name>',
  summary: "Take a snapshot of a VM's disks (live when it runs)",
  options: { ...FILE_OPT, name: { type: 'string' } },
  args: ['name'],
  hostOptions: true,
  file: 'option',
  help: `Takes a snapshot of the VM <name>: the image each of its disks writes is frozen and kept as the
point LABEL, and the VM continues on a new overlay in the data directory (the next start, by
apply, vm start or after down, uses it). Live when the VM runs (QEMU switches without a pause),
with qemu-img when it is stopped. Return to the point with 'vm rollback', list the points with
'vm snapshots', merge them with 'vm commit', drop one with 'vm snapshot-delete'.

Options:
${VM_FILE_HELP}
  --name LABEL      The snapshot's label: 1-64 letters, digits, '.', '_', '-' (default
                    snap-<UTC time>, e.g. snap-20240501-120000)

Examples:
  sudo vmhost vm snapshot web
  sudo vmhost vm snapshot web --name before-upgrade -f host.yaml`,
  async run(ctx, host, _file, { values, args }) {
    const [name = ''] = args;
    const r = await ctx.deps.snapshotVm(host, name, { ...withNotes(ctx), ...(typeof values.name === 'string' ? { label: values.name } : {}) });
    if (ctx.json) ctx.io.out(JSON.stringify(r, null, 2));
    else {
      ctx.io.out(`Snapshot ${r.label} of vm ${name} (${r.live ? 'live' : 'stopped'}, ${formatMs(r.ms)}):`);
      for (const d of r.disks) ctx.io.out(`  disk ${d.index}: frozen ${d.frozen}; now writing ${d.top}`);
    }
    return EXIT.ok;
  },
};
