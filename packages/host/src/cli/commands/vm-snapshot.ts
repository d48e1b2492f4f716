/**
 * `vmhost vm snapshot <name>`: freeze a VM's disk and continue on a new overlay.
 * @module
 */
import { resolve } from 'node:path';
import type { HostOptions } from '../../types.js';
import { FILE_OPT, VM_FILE_HELP, type HostCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** `vmhost vm snapshot`. */
export const vmSnapshotCommand: HostCommand = {
  name: 'vm snapshot',
  usage: 'vm snapshot [options] <name>',
  summary: "Freeze a VM's disk and continue on a new overlay",
  options: { ...FILE_OPT, overlay: { type: 'string' } },
  args: ['name'],
  hostOptions: true,
  file: 'option',
  help: `Takes a live snapshot of the VM <name>: its current disk is frozen and the VM continues on a new
overlay file. Prints the overlay made and the frozen file.

Options:
${VM_FILE_HELP}
  --overlay PATH    Where to create the overlay (default: chosen by vmhost next to the disk)

Examples:
  sudo vmhost vm snapshot web
  sudo vmhost vm snapshot web --overlay /var/lib/vm/web-2024-05-01.qcow2`,
  async run(ctx, host, _file, { values, args }) {
    const [name = ''] = args;
    const snapOptions: HostOptions & { overlay?: string } = { ...ctx.options };
    if (typeof values.overlay === 'string') snapOptions.overlay = resolve(values.overlay);
    const r = await ctx.deps.snapshotVm(host, name, snapOptions);
    if (ctx.json) ctx.io.out(JSON.stringify({ vm: name, overlay: r.overlay, frozen: r.frozen }, null, 2));
    else {
      ctx.io.out(`Snapshot of vm ${name}: now writing to ${r.overlay}`);
      ctx.io.out(`Frozen: ${r.frozen}`);
    }
    return EXIT.ok;
  },
};
