/**
 * `vmhost vm console <name> [--follow]`: a VM's serial console log.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { HostNoConsoleError } from '../../errors.js';
import { FILE_OPT, VM_FILE_HELP, type HostCommand } from '../command.js';
import { EXIT } from '../deps.js';
import { followFile } from '../follow.js';

/** `vmhost vm console`. */
export const vmConsoleCommand: HostCommand = {
  name: 'vm console',
  usage: 'vm console [options] <name>',
  summary: "Print a VM's serial console log (--follow to tail it)",
  options: { ...FILE_OPT, follow: { type: 'boolean' } },
  args: ['name'],
  hostOptions: true,
  file: 'option',
  help: `Prints the serial console log of the VM <name>. With --follow keeps printing what the guest
writes until Ctrl-C (like tail -f).

Options:
${VM_FILE_HELP}
  --follow          Keep printing new output until interrupted

Examples:
  vmhost vm console web
  vmhost vm console web --follow
  VMHOST_FILE=host.yaml vmhost vm console db | grep -i error`,
  async run(ctx, host, _file, { values, args }) {
    const [name = ''] = args;
    const path = await ctx.deps.consoleFile(host, name, { ...ctx.options });
    if (values.follow === true) {
      if (ctx.json) {
        ctx.io.err('vmhost: vm console: --follow cannot be combined with --json');
        return EXIT.usage;
      }
      const ac = new AbortController();
      const onSigint = (): void => ac.abort();
      process.once('SIGINT', onSigint);
      try {
        await followFile(path, (line) => ctx.io.out(line), ac.signal, {
          onWaiting: () => ctx.io.err(`vmhost: waiting for ${path} (vm ${name} has not written its console yet)`),
        });
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      return EXIT.ok;
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if (e instanceof Error && 'code' in e && e.code === 'ENOENT') throw new HostNoConsoleError(name, path);
      throw e;
    }
    if (ctx.json) {
      ctx.io.out(JSON.stringify({ vm: name, file: path, content: text }, null, 2));
      return EXIT.ok;
    }
    const body = text.replace(/\r\n?/g, '\n').replace(/\n$/, '');
    if (body !== '') ctx.io.out(body);
    return EXIT.ok;
  },
};
