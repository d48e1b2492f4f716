/**
 * The shapes of `vmhost run` (docs/host-service.md): its options and tuning, the events it
 * reports (one per action: a repair, a restart, a skip, a reload...), and the status file it keeps
 * in the state directory for `vmhost status`.
 * @module
 */
import type { HostOptions, ResolvedHost, RestartPolicy, Step } from '../types.js';

/** How the service watches the firewall: NFT_MSG_NEWGEN events (iptables-nft), or a periodic check (legacy iptables). */
export type FirewallWatch = 'events' | 'poll';

/** Timings and limits of the service; each has a default ({@link DEFAULT_TUNING}). */
export interface ServiceTuning {
  /** Network events are gathered until none came for this long, then repaired together (ms). Default 30. */
  debounceMs: number;
  /** ... but no longer than this after the first (ms). Default 200. */
  maxDebounceMs: number;
  /** A change of the host file is acted on once it has been quiet this long (ms; editors write in steps). Default 200. */
  fileDebounceMs: number;
  /** The delay before the second restart of a VM or service within the window; it doubles each time (ms). Default 1000 (the first restart is at once). */
  backoffMs: number;
  /** The longest delay between restarts (ms). Default 60000. */
  backoffMaxMs: number;
  /** This many restarts of a VM within {@link ServiceTuning.crashLoopWindowMs}, and it fails again: given up (a crash loop). Default 5. */
  crashLoopCount: number;
  /** Default 600000 (10 minutes). */
  crashLoopWindowMs: number;
  /** With legacy iptables (no NEWGEN events), the firewall is compared this often (ms). Default 30000. */
  firewallPollMs: number;
  /**
   * The proxy neighbours are compared with the kernel's table this often (ms): the kernel sends no
   * notification when a proxy entry is deleted (seen on 6.18), so this one is checked (one dump of
   * the proxy entries, only while the host has some). Default 1000.
   */
  proxyNeighborPollMs: number;
  /** `auto` (default): events when iptables-save says nf_tables, else a periodic check. */
  firewallWatch: 'auto' | FirewallWatch;
  /** A failed apply (at start, or of a reload) is tried again after this, doubling up to {@link ServiceTuning.backoffMaxMs} (ms). Default 1000. */
  retryMs: number;
  /** How long a VM is given to leave the guest-panicked pause before it is ended (ms). Default 2000. */
  panicGraceMs: number;
}

/** The defaults of {@link ServiceTuning}. */
export const DEFAULT_TUNING: Readonly<ServiceTuning> = Object.freeze({
  debounceMs: 30,
  maxDebounceMs: 200,
  fileDebounceMs: 200,
  backoffMs: 1000,
  backoffMaxMs: 60_000,
  crashLoopCount: 5,
  crashLoopWindowMs: 600_000,
  firewallPollMs: 30_000,
  proxyNeighborPollMs: 1000,
  firewallWatch: 'auto',
  retryMs: 1000,
  panicGraceMs: 2000,
});

/** Options of {@link runHost} (and `HostService`). */
export interface RunHostOptions extends Omit<HostOptions, 'beforeStep' | 'checkpoint'> {
  /**
   * The host file the host came from: watched (inotify on its directory, debounced) and read
   * again when it changes or on {@link HostService.reload} (SIGHUP in the CLI). Without it the
   * host stays as given.
   */
  file?: string;
  /** Every action, as it happens (the CLI prints one line each). A throwing callback is ignored. */
  onEvent?: (event: ServiceEvent) => void;
  /**
   * Serve Prometheus metrics: `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`) or the absolute path
   * of a Unix socket (made 0600). Default: none.
   */
  metrics?: string;
  /** Timings and limits (tests shorten them). */
  tuning?: Partial<ServiceTuning>;
  /** Reads a host file (default: `loadHostFile`). */
  loadHostFile?: (path: string) => Promise<ResolvedHost>;
}

/** What an event is about. */
export type ServiceEventType =
  /** The service started (its options), or applied the host file. */
  | 'start'
  | 'applied'
  /** Something of the host's was found changed or gone and put back (its steps). */
  | 'repair'
  /** A VM, dnsmasq or the IPv6 proxy exited (`exit.cause`). */
  | 'exit'
  /** A VM or service was started again. */
  | 'restart'
  /** An exit the policy leaves as it is (the VM stays down), or a learnt address over the limit. */
  | 'skip'
  /** A VM restarted too often (a crash loop): left down until a reload or `vmhost vm start`. */
  | 'give-up'
  /** The host file was read again and applied (SIGHUP, or the file changed). */
  | 'reload'
  /** The host file could not be read or is invalid: the running host stays as it is. */
  | 'reload-failed'
  /** An IPv6 address a VM uses was published (`ipv6.learn`), or withdrawn. */
  | 'learn'
  | 'unlearn'
  /** Something went wrong (a failed repair or restart: retried). */
  | 'error'
  /** Something to know (an engine notice, the firewall watch chosen). */
  | 'notice'
  /** The service is stopping (as `onStop` says), and what it stopped. */
  | 'stop';

/** Why a VM's QEMU (or a service) exited, as the service tells it. */
export type ExitCause =
  /** The guest powered off (QMP SHUTDOWN, reason guest-shutdown or another guest-* reason). */
  | 'poweroff'
  /** Stopped from the host: QMP quit, a signal to QEMU (SHUTDOWN reason host-*). */
  | 'host'
  /** `vmhost vm stop` stopped it. */
  | 'stopped'
  /** The guest panicked (GUEST_PANICKED, or SHUTDOWN reason guest-panic). */
  | 'panic'
  /** It died without a shutdown: killed (kill -9), crashed, out of memory; or host-error. */
  | 'crash'
  /** A process watched by pid only (no event socket): how it ended is not known; counted as a failure. */
  | 'unknown';

/** One action of the service. */
export interface ServiceEvent {
  /** ISO 8601. */
  time: string;
  /** What the event is about. */
  type: ServiceEventType;
  /** One line for people. */
  message: string;
  /** What set it off (`link br0 deleted`, `nf_tables generation 41 by iptables (pid 812)`, `SIGHUP`). */
  trigger?: string;
  /** The entries the action looked at. */
  ids?: string[];
  /** The steps it carried out. */
  steps?: Array<Step & { ms: number }>;
  /** How long it took. */
  ms?: number;
  /** The VM it concerns. */
  vm?: string;
  /** The service it concerns. */
  service?: 'dnsmasq' | 'proxy6';
  /** How the VM or service exited. */
  cause?: ExitCause;
  /** Restarts within the crash-loop window so far. */
  attempt?: number;
  /** When a restart waits (backoff). */
  delayMs?: number;
  /** The IPv6 address learnt, withdrawn or over the limit. */
  address?: string;
  /** The error (its code when it has one). */
  error?: { code?: string; message: string };
}

/** One VM in the status file. */
export interface VmServiceStatus {
  /** Its restart policy. */
  policy: RestartPolicy;
  /** Whether its QEMU runs (as the service watches it). */
  running: boolean;
  /** The QEMU's pid. */
  pid?: number;
  /** Restarts by the service since it started. */
  restarts: number;
  /** When and how its QEMU last exited. */
  lastExit?: { at: string; cause: ExitCause };
  /** Why the service leaves it down (a poweroff under on-failure, `vm stop`, a crash loop...). */
  down?: string;
  /** Given up as a crash loop (until a reload or `vmhost vm start`). */
  crashLoop: boolean;
  /** When the next restart is due (backoff). */
  nextRestartAt?: string;
  /** IPv6 addresses learnt and published (`ipv6.learn`). */
  learned?: string[];
}

/** The status file (`<stateDir>/service.json`, 0600, replaced atomically on every change). */
export interface ServiceStatusFile {
  /** The format's version. */
  version: 1;
  /** The service's pid. */
  pid: number;
  /** The process's start time (field 22 of /proc/PID/stat): with the pid, which process it was. */
  startTime: number;
  /** The host's name. */
  host: string;
  /** The host file (absolute), when the service watches one. */
  file?: string;
  /** Where the service is in its life. */
  state: 'starting' | 'running' | 'stopping' | 'stopped';
  /** When it started (ISO 8601). */
  since: string;
  /** When this file was written. */
  updatedAt: string;
  /** How the firewall is watched. */
  firewallWatch?: FirewallWatch;
  /** The VMs, by name. */
  vms: Record<string, VmServiceStatus>;
  /** dnsmasq and the IPv6 proxy: running, pid, restarts, last exit. */
  services: Partial<Record<'dnsmasq' | 'proxy6', { running: boolean; pid?: number; restarts: number; lastExit?: { at: string; cause: ExitCause } }>>;
  /** What the repairs of drift did. */
  repairs: {
    /** Steps carried out by repairs, by entry kind (`link`, `firewall`, ...). */
    byKind: Record<string, number>;
    /** The latest repairs (at most 20), newest last. */
    last: Array<{ at: string; trigger: string; steps: string[]; ms: number; error?: string }>;
  };
  /** The latest error (a failed repair, restart or apply). */
  lastError?: { at: string; message: string };
}
