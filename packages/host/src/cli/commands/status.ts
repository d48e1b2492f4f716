/**
 * `vmhost status <file>`: links, VMs, forwards, IPv6, dnsmasq and leases.
 * @module
 */
import type { HostCommand } from '../command.js';
import { EXIT } from '../deps.js';
import { formatStatus } from '../format.js';

/** `vmhost status`. */
export const statusCommand: HostCommand = {
  name: 'status',
  usage: 'status [options] <file>',
  summary: 'Show links, VMs, forwards, IPv6, dnsmasq and leases',
  options: {},
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `Prints tables of the links (bridge, uplink), the VMs (running, QMP status, pid), the published
ports, the IPv6 mode with proxy neighbours and routes, dnsmasq and the DHCP leases.
With --json prints the status object.

Examples:
  vmhost status host.yaml
  vmhost status host.yaml --json | jq '.vms[] | select(.running | not) | .name'`,
  async run(ctx, host) {
    const s = await ctx.deps.status(host, { ...ctx.options });
    if (ctx.json) ctx.io.out(JSON.stringify(s, null, 2));
    else for (const line of formatStatus(s, ctx.io.isTTY === true && !process.env.NO_COLOR)) ctx.io.out(line);
    return EXIT.ok;
  },
};
