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
that apply made. Progress on stderr as for apply.

Examples:
  sudo vmhost down host.yaml
  sudo vmhost --netns lab down host.yaml --json`,
  run: (ctx, host, file) => runChange(ctx, host, file, 'down'),
};
