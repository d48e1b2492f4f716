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
  options: {},
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `Stops the VMs, dnsmasq and the IPv6 proxy, removes firewall rules, addresses, routes and links
that apply made (a recorded link is deleted only when it carries this host's owner mark) and puts
back the sysctls it changed. Progress on stderr as for apply. On Ctrl-C (SIGINT) or SIGTERM the
step under way is finished and down stops (exit 130); run it again to finish.

Examples:
  sudo vmhost down host.yaml
  sudo vmhost --netns lab down host.yaml --json`,
  run: (ctx, host, file) => runChange(ctx, host, file, 'down'),
};
