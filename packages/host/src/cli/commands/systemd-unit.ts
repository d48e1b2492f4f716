/**
 * `vmhost systemd-unit <file>`: prints the systemd unit that runs `vmhost run <file>`.
 * @module
 */
import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FROM_SOURCE, HOST_ROOT, moduleFile } from '../../package-root.js';
import { systemdUnit, type UnitOptions } from '../../service/systemd.js';
import type { HostCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** The node options this process runs with that the unit needs too (the source condition, a loader), made absolute. */
function nodeArgs(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--conditions=')) out.push(a);
    else if (a === '--import' && argv[i + 1] !== undefined) {
      const spec = argv[++i]!;
      let url = spec;
      try {
        url = spec.startsWith('/') || spec.startsWith('file:') ? spec : import.meta.resolve(spec);
      } catch {
        /* left as given */
      }
      out.push('--import', url.startsWith('file:') ? fileURLToPath(url) : url);
    }
  }
  return out;
}

/** `vmhost systemd-unit`. */
export const systemdUnitCommand: HostCommand = {
  name: 'systemd-unit',
  usage: 'systemd-unit [options] <file>',
  summary: 'Print a systemd unit that runs vmhost run for the file at boot',
  options: { metrics: { type: 'string' } },
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `Prints a service unit for "vmhost run <file>": after network-online.target, Restart=on-failure,
KillMode=process (systemd never signals QEMU or dnsmasq: the service stops the VMs as onStop says),
the state directory /run/vmhost (RuntimeDirectory, kept across restarts of the service) and the
data directory /var/lib/vmhost (StateDirectory: disk chains, seeds), ExecReload sending SIGHUP.
The global options given (--netns, --state-dir, --data-dir, --json) and --metrics are passed on.
After a reboot /run is empty: run applies the host from nothing and reuses the data directory's
disk chains and seeds.

Examples:
  vmhost systemd-unit host.yaml > /etc/systemd/system/vmhost-web.service
  systemctl daemon-reload && systemctl enable --now vmhost-web.service`,
  async run(ctx, host, file, { values }) {
    const args: string[] = [];
    const o = ctx.options;
    const ns = o.netns;
    if (ns !== undefined) args.push('--netns', typeof ns === 'string' ? ns : 'name' in ns ? ns.name : 'path' in ns ? ns.path : `/proc/${ns.pid}/ns/net`);
    if (o.stateDir !== undefined) args.push('--state-dir', o.stateDir);
    if (o.dataDir !== undefined) args.push('--data-dir', o.dataDir);
    if (ctx.json) args.push('--json');
    if (typeof values.metrics === 'string') args.push('--metrics', values.metrics);
    // the command users run: the single-file bundle (the source's entry when running from source)
    const script = realpathSync(FROM_SOURCE ? moduleFile('cli') : join(HOST_ROOT, 'dist', 'vmhost.js'));
    const unit: UnitOptions = { node: process.execPath, nodeArgs: nodeArgs(), cli: script, file: resolve(file), name: host.name, onStop: host.onStop, args, kill: '/bin/kill' };
    for (const line of systemdUnit(unit).trimEnd().split('\n')) ctx.io.out(line);
    return EXIT.ok;
  },
};
