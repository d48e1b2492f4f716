/**
 * `vmhost recover <file>`: rebuild the state file from the live system's owner marks.
 * @module
 */
import type { HostCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** `vmhost recover`. */
export const recoverCommand: HostCommand = {
  name: 'recover',
  usage: 'recover [options] <file>',
  summary: "Rebuild the state file from the live system's owner marks",
  options: { force: { type: 'boolean' } },
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `When the state file is lost or cannot be read (truncated, not JSON, tampered with, of another
version), moves it aside to state.json.corrupt-<time> and records what the live system shows as
this host's: links with its owner mark (ip -j link: "ifalias": "vmhost:<name>"), addresses, routes
and proxy neighbours with vmhost's protocol mark, the firewall owner's chains (VMHOST-<name>-*),
dnsmasq and the IPv6 proxy of the state directory, and every QEMU with a QMP socket in it. Then
'vmhost down' removes all of it. apply and down do this by themselves on a corrupt state file.

Not recoverable: the values sysctls had before vmhost changed them. They are left as they are
(down does not touch them) and listed.

A readable state file is left alone (it knows more than the marks do) unless --force.

Options:
  --force   Rebuild even when the state file is readable (it is moved aside too)

Examples:
  sudo vmhost recover host.yaml && sudo vmhost down host.yaml
  sudo vmhost --netns lab recover host.yaml --json`,
  async run(ctx, host, _file, { values }) {
    const r = await ctx.deps.recover(host, { ...ctx.options, ...(values.force === true ? { force: true } : {}) });
    if (ctx.json) {
      ctx.io.out(JSON.stringify(r, null, 2));
      return EXIT.ok;
    }
    for (const n of r.notices) ctx.io.err(`note: ${n}`);
    if (!r.changed) return EXIT.ok;
    if (r.movedAside) ctx.io.out(`Moved ${r.file} aside to ${r.movedAside}.`);
    ctx.io.out(`Recovered ${r.records.length} entr${r.records.length === 1 ? 'y' : 'ies'} into ${r.file}${r.records.length ? ':' : '.'}`);
    for (const e of r.records) ctx.io.out(`  ${e.description}`);
    return EXIT.ok;
  },
};
