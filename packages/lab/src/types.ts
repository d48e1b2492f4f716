/**
 * The declaration a lab is built from ({@link LabOptions}) and the lab kit's constants.
 * @module
 */
import type { RouteSpec, SysctlValue } from '@vmhost/net';

/** The namespace name prefix of a lab when none is given. */
export const DEFAULT_LAB_PREFIX = 'vmhlab-';

/** Longest real namespace name a lab makes (`${prefix}${id}-${name}`). */
export const LAB_NAME_MAX = 60;

/** A bridge inside a lab namespace (always created up). */
export interface LabBridgeSpec {
  /** MAC address of the bridge. Default: chosen by the kernel. */
  mac?: string;
  /** MTU, 68-65535. */
  mtu?: number;
  /** Spanning tree (default off: ports forward at once). */
  stp?: boolean;
}

/** One namespace of a lab. */
export interface LabNamespaceSpec {
  /**
   * Addresses by interface name, e.g. `{ lo: ['198.51.100.10/32'], br0: ['192.168.0.1/24'] }`.
   * The interface must be `lo`, a bridge of this namespace or a link end in it.
   */
  addresses?: Record<string, readonly string[]>;
  /** Sysctls set in this namespace (keys start with `net.`), after its links exist. */
  sysctls?: Record<string, SysctlValue>;
  /** Bridges to create in this namespace, by name. Link ends join one with `master`. */
  bridges?: Record<string, LabBridgeSpec>;
}

/** One end of a veth link. */
export interface LabLinkEnd {
  /** The lab's name of the namespace (a key of `namespaces`). */
  ns: string;
  /** Interface name inside that namespace (1-15 bytes). */
  name: string;
  /** MAC address. Default: random (kernel). */
  mac?: string;
  /** MTU, 68-65535. */
  mtu?: number;
  /** A bridge of the same namespace to enslave this end to. */
  master?: string;
}

/** A veth link between two namespaces (or within one); both ends come up. */
export interface LabLinkSpec {
  /** The end created first (in its namespace's handle). */
  a: LabLinkEnd;
  /** The peer, created directly in its namespace. */
  b: LabLinkEnd;
  /** Addresses of each end (CIDR, e.g. `203.0.113.1/24`, `fe80::1/64`). */
  addresses?: { a?: readonly string[]; b?: readonly string[] };
}

/** What {@link Lab.create} takes. */
export interface LabOptions {
  /**
   * Prefix of the real namespace names (`${prefix}${id}-${name}`); default {@link DEFAULT_LAB_PREFIX}.
   * Treat it as reserved: {@link Lab.sweep} removes namespaces with this prefix whose creator is gone.
   */
  prefix?: string;
  /** The namespaces, by the lab's own (short) names. */
  namespaces: Record<string, LabNamespaceSpec>;
  /** veth links between the namespaces. */
  links?: readonly LabLinkSpec[];
  /** Routes by namespace, as Rtnl's `routes.add` takes them (`{ to: 'default', via: ... }` is a default gateway). */
  routes?: Record<string, readonly RouteSpec[]>;
  /**
   * Keep IPv6 duplicate address detection. Default false: every lab namespace gets
   * `accept_dad=0` and IPv6 addresses are added with `nodad`, so they are usable at once.
   */
  dad?: boolean;
  /** Run {@link Lab.sweep} for the prefix first. Default true. */
  sweep?: boolean;
  /**
   * On a normal process exit (also after an uncaught exception) with the lab still open, kill
   * its processes and delete its namespaces synchronously. Default true. A process killed by a
   * signal cannot do this: the next {@link Lab.create} (or {@link Lab.sweep}) with the prefix does.
   */
  cleanupOnExit?: boolean;
}

/** Options of {@link Lab.addAddress}. */
export interface LabAddressOptions {
  /** IPv6: skip duplicate address detection. Default: true unless the lab keeps DAD. */
  nodad?: boolean;
}
