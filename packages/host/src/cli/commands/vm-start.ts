/**
 * `vmhost vm start <name>`: start one VM of the host file.
 * @module
 */
import { FILE_OPT, VM_FILE_HELP, withNotes, type HostCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** `vmhost vm start`. */
export const vmStartCommand: HostCommand = {
  name: 'vm start',
  usage: 'vm start [options] <name>',
  summary: 'Start one VM',
  options: { ...FILE_OPT },
  args: ['name'],
  hostOptions: true,
  file: 'option',
  help: `Starts the VM <name> of the host file (its TAP and the host must be applied).

Options:
${VM_FILE_HELP}

Examples:
  sudo vmhost vm start web
  sudo vmhost vm start web -f /etc/vmhost/host.yaml`,
  async run(ctx, host, _file, { args }) {
    const [name = ''] = args;
    await ctx.deps.startVm(host, name, { ...withNotes(ctx) });
    if (ctx.json) ctx.io.out(JSON.stringify({ vm: name, started: true }, null, 2));
    else ctx.io.out(`Started vm ${name}.`);
    return EXIT.ok;
  },
};
