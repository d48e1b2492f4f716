/**
 * The systemd unit of `vmhost run` (`vmhost systemd-unit FILE`), pure. The choices
 * (docs/host-service.md):
 * - ordered after and wanting `network-online.target` (the uplink should be up; a missing one is
 *   retried anyway), `Restart=on-failure` (a crash of the service: the next one adopts what runs);
 * - `ExecStart` with absolute paths of node, the CLI and the host file; `ExecReload` sends SIGHUP
 *   (re-read the file and apply it);
 * - `KillMode=process`: systemd signals the service only, never QEMU, dnsmasq or the proxy. The
 *   service itself does what `onStop` says (shutdown: each VM through the ladder, a clean guest
 *   shutdown; keep: nothing), so the VMs survive a restart of the service with `keep`, and with
 *   `shutdown` a guest is never killed by systemd while its shutdown runs (`control-group` would
 *   SIGTERM QEMU at once: no guest shutdown at all). `TimeoutStopSec` covers the ladder;
 * - `RuntimeDirectory=vmhost` (/run/vmhost, the state directories) with
 *   `RuntimeDirectoryPreserve=yes` (the record must outlive a restart of the service: the VMs and
 *   links it names are still there), `StateDirectory=vmhost` (/var/lib/vmhost, the data directory:
 *   disk chains, seeds), both 0700.
 * @module
 */

/** What the unit is made of. */
export interface UnitOptions {
  /** Absolute path of node. */
  node: string;
  /** Node options before the script (absolute paths only), e.g. a loader. */
  nodeArgs?: readonly string[];
  /** Absolute path of the CLI script. */
  cli: string;
  /** Absolute path of the host file. */
  file: string;
  /** The host's name. */
  name: string;
  onStop: 'shutdown' | 'keep';
  /** Options of `run` (global ones such as `--netns`, `--state-dir`, and `--json`, `--metrics`). */
  args: readonly string[];
  /** Absolute path of kill (ExecReload). */
  kill: string;
}

/** Quotes one word of a command line for systemd (only when needed). */
export function systemdQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

/** The text of the unit. */
export function systemdUnit(o: UnitOptions): string {
  const exec = [o.node, ...(o.nodeArgs ?? []), o.cli, ...o.args, 'run', o.file].map(systemdQuote).join(' ');
  const stopSec = o.onStop === 'shutdown' ? 90 : 30;
  return `# The host "${o.name}" of ${o.file}, kept as declared by vmhost run.
# Made by: vmhost systemd-unit ${o.file}
# Install: vmhost systemd-unit ${o.file} > /etc/systemd/system/vmhost-${o.name}.service
#          systemctl daemon-reload && systemctl enable --now vmhost-${o.name}.service
# Reload the file: systemctl reload vmhost-${o.name} (SIGHUP; a change of the file is seen anyway)
[Unit]
Description=vmhost: host ${o.name} (${o.file})
Documentation=https://www.npmjs.com/package/@vmhost/host
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${exec}
ExecReload=${systemdQuote(o.kill)} -HUP $MAINPID
Restart=on-failure
RestartSec=2s
# vmhost run stops the VMs itself as the host file's onStop says (now: ${o.onStop}); systemd must
# never signal QEMU, dnsmasq or the IPv6 proxy behind its back.
KillMode=process
TimeoutStopSec=${stopSec}s
# /run/vmhost: the state directories (the record of what runs), kept across restarts of the service
RuntimeDirectory=vmhost
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
# /var/lib/vmhost: the data directories (disk chains, cloud-init seeds)
StateDirectory=vmhost
StateDirectoryMode=0700

[Install]
WantedBy=multi-user.target
`;
}
