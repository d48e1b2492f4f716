/**
 * `vmhost down <file>`: tear down everything the file made.
 * @module
 */
import type { HostCommand } from '../command.js';
import { runChange } from './change.js';

/** `vmhost down`. */
export const downCommand: HostCommand = {
  name: 'down',
  usage: 'down [options] <file>',
  summary: 'Tear down everything the file made',
  options: { 'delete-disks': { type: 'boolean' } },
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `Stops the VMs, dnsmasq and the IPv6 proxy, removes firewall rules, addresses, routes and links
that apply made (a recorded link is deleted only when it carries this host's owner mark) and puts
back the sysctls it changed. Progress on stderr as for apply. On Ctrl-C (SIGINT) or SIGTERM the
step under way is finished and down stops (exit 130); run it again to finish. The VMs' disks (their
overlays and snapshots in the data directory) are kept: the next apply starts each VM on its disk
as it was.

Options:
  --delete-disks    Also delete the VMs' disk chains in the data directory: the overlays vmhost
                    made (a disk made from a base image is gone; a plain disk's file stays as it
                    was at its oldest snapshot). The host file's own images are never deleted.

Examples:
  sudo vmhost down host.yaml
  sudo vmhost down host.yaml --delete-disks
  sudo vmhost --netns lab down host.yaml --json`,
  run: (ctx, host, file, { values }) => runChange(ctx, host, file, 'down', values['delete-disks'] === true ? { deleteDisks: true } : {}),
};
