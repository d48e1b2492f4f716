/**
 * `vmhost run <file>`: the host kept as the file declares, in the foreground (for systemd), until
 * SIGTERM or SIGINT; SIGHUP reads the file again (docs/host-service.md).
 * @module
 */
import { resolve } from 'node:path';
import { ValidationError } from '@vmhost/net';
import type { RunHostOptions } from '../../service/types.js';
import type { HostCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** `vmhost run`. */
export const runCommand: HostCommand = {
  name: 'run',
  usage: 'run [options] <file>',
  summary: 'Keep the host as the file says: repair drift, restart VMs (foreground, for systemd)',
  options: { metrics: { type: 'string' } },
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `Applies the file, then keeps the host as it says until stopped, one line per action on stdout:
- a link, address, route or proxy neighbour of the host deleted or changed by someone else is put
  back (only that entry), seen from rtnetlink notifications; a change of the firewall by another
  process (iptables -F, a firewall reload) is seen from nf_tables generation events and only this
  host's rules are written again (legacy iptables: compared every 30 s);
- a VM whose QEMU exits is started again as its \`restart\` says (always, on-failure: not after a
  poweroff by the guest, never), with exponential backoff; 5 restarts within 10 minutes and a
  failure more is a crash loop: left down (vmhost status shows it) until a reload or vm start;
  dnsmasq and the IPv6 proxy are always started again;
- SIGHUP, or a change of the file: the file is read again and applied (a bad file is reported and
  the running host stays as it is);
- SIGTERM or SIGINT: stops as the file's onStop says (shutdown: every VM through the shutdown
  ladder; keep: VMs and services keep running for the next run), then exits 0.
The service holds the state directory's lock: apply and down of others wait for it to stop;
vm start and vm stop work (a VM stopped by vm stop is left down). The status file
<state dir>/service.json is what vmhost status shows of it.

Options:
  --metrics ADDR    Serve Prometheus metrics on HOST:PORT (127.0.0.1:9464) or a Unix socket path
  --json            One JSON object per line (for journald and log shippers)

Examples:
  sudo vmhost run host.yaml
  sudo vmhost --netns lab run host.yaml --json --metrics 127.0.0.1:9464
  vmhost systemd-unit host.yaml > /etc/systemd/system/vmhost-web.service`,
  async run(ctx, host, file, { values }) {
    const options: RunHostOptions = {
      ...ctx.options,
      file: resolve(file),
      loadHostFile: (p) => ctx.deps.loadHostFile(p),
      onEvent: (e) => ctx.io.out(ctx.json ? JSON.stringify(e) : `${e.time} ${e.type}: ${e.message}`),
    };
    if (typeof values.metrics === 'string') {
      if (values.metrics === '') throw new ValidationError('--metrics', values.metrics, 'expected HOST:PORT or the absolute path of a Unix socket');
      options.metrics = values.metrics;
    }
    const service = await ctx.deps.service(host, options);
    ctx.onHangup?.(() => service.reload('SIGHUP'));
    await service.run();
    return EXIT.ok;
  },
};
