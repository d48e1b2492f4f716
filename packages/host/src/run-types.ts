/**
 * The shapes of a run of @vmhost/host: its options ({@link HostOptions}), plans and their steps,
 * progress events, reports and the host's status. Re-exported by types.ts.
 * @module
 */
import type { NetnsRef } from '@vmhost/net';
import type { ServiceStatusFile } from './service/types.js';
import type { PortSpec, ResolvedHost, ResolvedVm } from './types.js';

/** Where and how the engine works. */
export interface HostOptions {
  /** Act inside this network namespace (the CLI's `--netns`). Default: the caller's. */
  netns?: NetnsRef;
  /**
   * Directory of the state file, dnsmasq's and the proxy's files and the VMs' run dirs. Default
   * `/run/vmhost/<name>`, `/run/vmhost/<netns>/<name>` with a named netns, and
   * `/run/vmhost/nsfs/<dev>-<inode>/<name>` with a netns given by path or pid. It and every parent
   * must be root's (or the running user's) and not writable by others (a sticky parent such as
   * /tmp is allowed above a directory of ours): see docs/host-engine.md.
   */
  stateDir?: string;
  /**
   * Directory of what must outlive a reboot: the VMs' disk chains (overlays on their base images,
   * snapshots) and their cloud-init seeds. Default `/var/lib/vmhost/<name>`,
   * `/var/lib/vmhost/<netns>/<name>` with a named netns, and
   * `/var/lib/vmhost/nsfs/<dev>-<inode>/<name>` with a netns given by path or pid. The same trust
   * rules as {@link HostOptions.stateDir}; `down` keeps it (a VM's disks are its data).
   */
  dataDir?: string;
  /**
   * Stops plan, apply or down when aborted (the CLI aborts it on SIGINT and SIGTERM): apply
   * finishes the step it is in and undoes what this run did; down finishes the step it is in and
   * stops, keeping an accurate record of the rest. Both then throw `HostAbortedError`.
   */
  signal?: AbortSignal;
  /**
   * apply only: the steps of a plan made earlier ({@link plan}, or a saved plan's `steps`). apply
   * plans again under its lock and, unless the steps come out equal (ids, actions, descriptions,
   * before and after), refuses with `HostPlanStaleError` before changing anything.
   */
  expectSteps?: readonly Step[];
  /** Progress of long steps, as they happen. */
  onProgress?: (event: ProgressEvent) => void;
  /**
   * Called before each step of apply; when it throws (or rejects), that step fails and the steps
   * before it are undone. For confirmation prompts, and for fault injection in tests.
   */
  beforeStep?: (step: Step, index: number) => void | Promise<void>;
  /**
   * Called at each point of a step where the state file has just been written or the system just
   * changed (see {@link Checkpoint}); for fault injection in tests (the CLI kills itself at one
   * when `VMHOST_TEST=1` and `VMHOST_TEST_KILL=<command>:<phase>:<index>` are set) and tracing.
   * What it throws fails the step as `beforeStep` does.
   */
  checkpoint?: (point: Checkpoint) => void | Promise<void>;
}

/** The options of `down`. */
export interface DownOptions extends HostOptions {
  /**
   * Also delete the VMs' disk chains in the data directory: the overlays vmhost made (a disk made
   * from a base image is then gone; a plain disk's file stays as it was at its oldest snapshot)
   * and their records. The host file's own images are never deleted. Default false: `down` keeps
   * every VM's disk as it is, and the next apply starts each VM on it.
   */
  deleteDisks?: boolean;
}

/**
 * A point inside a step of apply or down: `intended` (the record of what the step will make was
 * written; nothing touched yet), `changed` (the system was changed; the record not yet
 * confirmed), `recorded` (the record was confirmed: the step is complete). The disk operations
 * (`command` the operation: `init` (a base disk's first overlay), `snapshot`, `rollback`,
 * `commit`, `delete`) have the same points: the intent written (`index` 0), disk `index`'s files
 * or QEMU changed (an active commit: pivoted, the guest paused), its chain switched in the record.
 */
export interface Checkpoint {
  command: 'apply' | 'down' | 'init' | 'snapshot' | 'rollback' | 'commit' | 'delete';
  phase: 'intended' | 'changed' | 'recorded';
  step: Step;
  index: number;
}

/** What a step does. */
/**
 * What a step does. `adopt`: an existing object the host file adopts is recorded (and set up as
 * wanted); `release`: an adopted one is left in place, put back as it was before it was adopted.
 */
export type StepAction = 'create' | 'update' | 'delete' | 'start' | 'stop' | 'restart' | 'set' | 'adopt' | 'release';

/** One step of a plan. */
export interface Step {
  /** Stable id, e.g. `link:br0`, `address:br0:192.168.0.1/24`, `vm:web`, `firewall`, `sysctl:net.ipv4.ip_forward`. */
  id: string;
  action: StepAction;
  /** One line for people: `create bridge br0 (mac de:ad:be:ef:24:31, stp off)`. */
  description: string;
  /**
   * In a {@link Plan} only: what the host has now, in the entry's terms — the live object as read
   * (a link's kind, master, state and MAC; a sysctl's value) or, for kinds that keep no live
   * reading, what the state file records of the last apply; null when it does not exist.
   */
  before?: StepState;
  /** In a {@link Plan} only: what the step makes it (the desired entry's data); null for a removal. */
  after?: StepState;
}

/** The state of one object before or after a step (JSON data), or null when there is none. */
export type StepState = { readonly [key: string]: unknown } | null;

/**
 * Something the host file wants that exists already and is not this host's: another host's (its
 * owner mark, or its state file records it), or not made by vmhost at all (`owner` null: the host
 * file can adopt it, at `adopt`). apply refuses while there is one (`HostOwnerError`); plan and
 * status list them.
 */
export interface Conflict {
  /** The step id of what the host file wants: `link:br0`, `address:br0:192.168.0.1/24`, `firewall`. */
  id: string;
  /** What is in the way: `bridge br0`, `TAP abc-web`, `address 192.168.0.1/24 on br1`, `tcp port 2222`. */
  object: string;
  /** The host (its file's `name`) it belongs to; null when it was not created by vmhost. */
  owner: string | null;
  /** One line for people, naming the owner (or saying "not created by vmhost"). */
  message: string;
  /** When it may be adopted: the host file's field that says so (`bridge.adopt`, `vms[0].adopt`). */
  adopt?: string;
}

/**
 * A plan: the steps apply would carry out, in order. Empty when the host is as the spec says.
 * `conflicts` lists what apply would refuse to touch (it then changes nothing).
 */
export interface Plan {
  /** The steps, in the order apply carries them out. */
  steps: Step[];
  /** What apply would refuse on, each naming its owner; empty when none. */
  conflicts: Conflict[];
}

/** A progress event of apply/down. */
export type ProgressEvent =
  | { type: 'step-start'; step: Step; index: number; total: number }
  | { type: 'step-done'; step: Step; index: number; total: number; ms: number }
  | { type: 'step-failed'; step: Step; index: number; total: number; error: Error }
  | { type: 'undo-start'; step: Step }
  | { type: 'undo-done'; step: Step }
  | { type: 'undo-failed'; step: Step; error: Error }
  /**
   * Something to know that is not a step: an interrupted run's intended record adopted or dropped,
   * a recorded link left alone because it lacks this host's owner mark, a corrupt state file moved
   * aside and the record rebuilt.
   */
  | { type: 'notice'; message: string };

/** What apply or down did. */
export interface Report {
  /** The steps carried out, in order. */
  steps: Array<Step & { ms: number }>;
  /** False when nothing needed doing. */
  changed: boolean;
  ms: number;
}

/** What `recover` did. */
export interface RecoverReport {
  /** The state file. */
  file: string;
  /** False when the state file was readable and left as it was. */
  changed: boolean;
  /** Where the unreadable (or, with `force`, the readable) state file was moved. */
  movedAside?: string;
  /** The records rebuilt from the live system's owner marks. */
  records: Array<{ id: string; description: string }>;
  /** What could not be recovered (sysctls' old values) and other things to know. */
  notices: string[];
}

/** One DHCP lease (from dnsmasq's lease file). */
export interface Lease {
  /** null for an infinite lease. */
  expires: Date | null;
  mac: string;
  ipv4: string;
  hostname: string | null;
}

/** What `status` shows. */
export interface HostStatus {
  name: string;
  netns?: string;
  bridge: { name: string; exists: boolean; up: boolean; addresses: string[] };
  uplink: { name: string; exists: boolean; up: boolean; addresses: string[] };
  /**
   * The VMs. `qmpStatus` is QEMU's run state (`running`, `paused`, ...) when QMP answered;
   * `qmpBusy` when another client holds the VM's QMP socket (QEMU serves one at a time): the VM is
   * then known to run from its pidfile and /proc only.
   */
  vms: Array<{ name: string; running: boolean; qmpStatus?: string; qmpBusy?: boolean; pid?: number; mac: string; ipv4: string; ipv6?: string; tap: string }>;
  forwards: Array<{ vm: string; protocol: 'tcp' | 'udp'; port: PortSpec; to: string; toPort: number }>;
  ipv6?: { mode: 'routed' | 'proxy'; prefix: string; proxyNeighbors: string[]; routes: string[]; proxy?: { running: boolean; pid?: number } };
  dnsmasq?: { running: boolean; pid?: number };
  leases: Lease[];
  /** Whether the state file records something apply made (a confirmed record). */
  applied: boolean;
  /**
   * Steps an interrupted apply or down recorded as intended but did not confirm (ids): the next
   * apply or down reconciles them with the live system. Absent when there are none.
   */
  pending?: string[];
  /**
   * What the host file wants that belongs to another host or exists without being vmhost's (and
   * is not adopted), each naming its owner: apply refuses while there is one. Absent when none.
   */
  conflicts?: Conflict[];
  /**
   * The namespace-wide sysctls this host holds in the namespace's shared record: the value set,
   * the original the last holder puts back, and the other hosts holding it. Absent when none.
   */
  shared?: Array<{ key: string; value: string; original: string; heldWith: string[] }>;
  /**
   * The view of `vmhost run` from its status file (`<stateDir>/service.json`): whether the service
   * runs (the pid it names is alive with the start time recorded), its VMs' restarts and crash
   * loops, the services' restarts, the last repairs. Absent when no service ever ran here.
   */
  service?: ServiceStatusFile & { running: boolean };
}
