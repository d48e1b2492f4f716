/**
 * `vmhost vm stop <name>`: stop one VM by the shutdown ladder.
 * @module
 */
import type { HostOptions } from '../../types.js';
import { FILE_OPT, VM_FILE_HELP, type HostCommand } from '../command.js';
import { EXIT } from '../deps.js';
import { formatMs } from '../format.js';

/** `vmhost vm stop`. */
export const vmStopCommand: HostCommand = {
  name: 'vm stop',
  usage: 'vm stop [options] <name>',
  summary: 'Stop one VM (powerdown, quit, SIGTERM, SIGKILL)',
  options: { ...FILE_OPT, timeout: { type: 'string' } },
  args: ['name'],
  hostOptions: true,
  file: 'option',
  help: `Stops the VM <name> by the shutdown ladder: ACPI powerdown, then QMP quit, SIGTERM, SIGKILL.
Prints the step that ended it (powerdown, quit, sigterm, sigkill or not-running).

Options:
${VM_FILE_HELP}
  --timeout SECONDS How long the guest may take to power down before QEMU is told to quit

Examples:
  sudo vmhost vm stop web
  sudo vmhost vm stop web --timeout 5 -f host.yaml`,
  async run(ctx, host, _file, { values, args }) {
    const [name = ''] = args;
    const stopOptions: HostOptions & { timeoutMs?: number } = { ...ctx.options };
    if (typeof values.timeout === 'string') stopOptions.timeoutMs = Math.round(Number(values.timeout) * 1000);
    const r = await ctx.deps.stopVm(host, name, stopOptions);
    if (ctx.json) ctx.io.out(JSON.stringify({ vm: name, step: r.step, ms: r.ms }, null, 2));
    else if (r.step === 'not-running') ctx.io.out(`vm ${name} was not running.`);
    else ctx.io.out(`Stopped vm ${name} by ${r.step} in ${formatMs(r.ms)}.`);
    return EXIT.ok;
  },
};
