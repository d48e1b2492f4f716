/**
 * The shared types of @vmhost/host: the host file as users write it ({@link HostFile}), the
 * validated and resolved form every other module works on ({@link ResolvedHost}); the shapes of
 * options, plans, reports and status are in run-types.ts, re-exported here.
 * @module
 */
import type { ServiceStatusFile } from './service/types.js';
import type { NetnsRef, Prefix } from '@vmhost/net';
import type { ProxyLimits } from './services/proxy6-options.js';

/** A port or an inclusive port range `[first, last]`. */
export type PortSpec = number | readonly [number, number];

/** One published port of a VM, as written in the host file. */
export interface ForwardSpec {
  /** The public port or range on the host. */
  port: PortSpec;
  /** The VM's port (first of the range). Default: `port` (its first port for a range). */
  toPort?: number;
  /** Default `tcp`. */
  protocol?: 'tcp' | 'udp';
}

/** A disk of a VM, as written in the host file (paths relative to the host file's directory). */
export interface DiskSpec {
  file: string;
  format?: 'qcow2' | 'raw';
  cache?: 'writeback' | 'none' | 'writethrough' | 'directsync' | 'unsafe';
  readOnly?: boolean;
}

/**
 * A disk made from a base image, as written in the host file: the VM's own qcow2 overlay on the
 * base, made by the first apply in the data directory and resized to `size`; the base is never
 * written (several VMs may share it).
 */
export interface BaseDiskSpec {
  /** The base image (relative to the host file). */
  base: string;
  /** The VM's disk size: bytes (a multiple of 512), or `N` with K, M, G or T (binary: `8G`). At least the base's virtual size. Default: the base's. */
  size?: number | string;
  /** The base image's format. Default qcow2. */
  format?: 'qcow2' | 'raw';
  /** QEMU's cache mode of the VM's disk. Default writeback. */
  cache?: 'writeback' | 'none' | 'writethrough' | 'directsync' | 'unsafe';
}

/**
 * The host-wide cloud-init defaults (the top-level `cloudInit`), merged into the `cloudInit` of
 * each VM that has one: its own fields win, the ssh keys of both are given.
 */
export interface CloudInitDefaultsSpec {
  /** The user made with the keys (sudo without password, password locked). Default `ops`. */
  user?: string;
  /** OpenSSH public key lines (`ssh-ed25519 AAAA... comment`) for `user`. */
  sshAuthorizedKeys?: string[];
  /**
   * A user-data file (path, relative to the host file), read as data when planning and applying:
   * a `#cloud-config` (merged with vmhost's: its lists appended, vmhost's keys kept) or a script
   * starting with `#!` (run once per instance); at most 1 MiB.
   */
  userData?: string;
  /**
   * `auto` (default): a network-config v2 with the VM's addresses, gateway and DNS (so guests
   * without a DHCPv6 client are configured too); `none`: none (cloud-init's fallback, DHCP).
   */
  networkConfig?: 'auto' | 'none';
}

/**
 * A VM's cloud-init NoCloud seed (a read-only `CIDATA` volume after its disks): the host name,
 * a user with ssh keys, network-config and the user's own user-data. Needs at least one ssh key
 * (here or in the host-wide `cloudInit`) or a `userData` file.
 */
export interface CloudInitSpec extends CloudInitDefaultsSpec {
  /** The guest's host name (a DNS label). Default: the VM's name. */
  hostname?: string;
}

/** One VM, as written in the host file. */
export interface VmSpec {
  /** 1-11 characters of [a-z0-9-], starting with a letter (the TAP is `<tag>-<name>`, at most 15 bytes: the tag is three letters from the host's name). */
  name: string;
  /** The NIC's MAC (unicast). Default: a stable locally administered MAC from the name. */
  mac?: string;
  /** Static DHCP lease by MAC; inside the bridge's IPv4 subnet, not the bridge's own address. */
  ipv4: string;
  /**
   * The VM's own public IPv6 address, inside `ipv6.prefix`; or `auto`: the EUI-64 address of its
   * MAC in `ipv6.prefix` (a /64), what SLAAC would form, computed by the host and then handled as
   * a fixed address (DHCPv6 lease, proxy entry, route; the RA keeps SLAAC off).
   */
  ipv6?: string;
  /** Default 256. */
  memoryMiB?: number;
  /** Default 1. */
  cpus?: number;
  /** Default 'auto' (KVM only where it really works). */
  accel?: 'auto' | 'kvm' | 'tcg';
  /**
   * QEMU machine. Default 'q35' (PCI and firmware: boots any guest). 'microvm' has no PCI bus and no
   * firmware (virtio-mmio devices) and needs `kernel`: with an uncompressed PVH `vmlinux` that has
   * virtio_mmio, a guest serves TCP in about 2.3 s on TCG against 5.7 s for q35 (docs/kvm-machine.md).
   */
  machine?: 'q35' | 'microvm';
  /**
   * QEMU's seccomp sandbox. Default 'auto': on when the QEMU binary has it; 'on' requires it (the
   * VM's start fails with `EVM_SANDBOX` otherwise); 'off' leaves it out.
   */
  sandbox?: 'auto' | 'on' | 'off';
  /** Kernel for direct boot (path). */
  kernel?: string;
  /** Initial ramdisk (path); needs `kernel`. */
  initrd?: string;
  /** Kernel command line; needs `kernel`. */
  append?: string;
  /** One disk (path, mapping, or a disk from a base image) or several. */
  disk?: string | DiskSpec | BaseDiskSpec | Array<string | DiskSpec | BaseDiskSpec>;
  /** Published ports. */
  forwards?: ForwardSpec[];
  /** Start the VM on apply. Default true. */
  autostart?: boolean;
  /** A cloud-init seed for the VM (`{}` takes the host-wide `cloudInit` as it is). Left out: none. */
  cloudInit?: CloudInitSpec;
  /**
   * The VM's TAP and its IPv6 route, proxy neighbour or uplink address may exist already, not
   * made by vmhost: apply records them as adopted instead of refusing, and down leaves them in
   * place (only undoing what it changed: a TAP is taken off the bridge and set down again if it
   * was). Default false. Another host's objects are never adopted.
   */
  adopt?: boolean;
  /**
   * Under `vmhost run`, when the VM stops by itself: `always` start it again, `on-failure` only
   * after a failure (QEMU crashed or was killed, the guest panicked; not a poweroff the guest
   * asked for), `never`. Restarts back off exponentially; 5 restarts in 10 minutes give up (a
   * crash loop, shown by `vmhost status`). Default `on-failure`.
   */
  restart?: RestartPolicy;
  /**
   * Anti-spoofing on the VM's port (its TAP): frames only with its MAC, ARP and IP only with its
   * addresses, no DHCP server replies, router advertisements or redirects. Default true.
   */
  isolation?: boolean;
  /** IPv6 link-local sources the VM may use: `'eui64'` (default, from its MAC) or `'any'` (fe80::/10). */
  linkLocal?: 'eui64' | 'any';
  /** Bandwidth limits, as rates `'100mbit'` (kbit, mbit, gbit). Left out: unlimited. */
  bandwidth?: { toVm?: string; fromVm?: string };
}

/** When `vmhost run` starts a VM again (see {@link VmSpec.restart}). */
export type RestartPolicy = 'always' | 'on-failure' | 'never';

/** The status file of `vmhost run` (see {@link HostStatus.service}). */
export type { ServiceStatusFile, VmServiceStatus, ExitCause } from './service/types.js';

/** The host file (YAML or JSON). */
export interface HostFile {
  /** The URL of the host file's JSON Schema, for editors (`@vmhost/host/schema.json`). Ignored. */
  $schema?: string;
  /** The uplink interface (e.g. `eth0`); must exist when applying. */
  uplink: string;
  /**
   * Names this host's objects: the firewall owner (chains `VMHOST-<name>-...`) and the default state
   * directory. Letters, digits, `_`, at most 16. Default: `host`.
   */
  name?: string;
  /** The host's public IPv4 address on the uplink, when forwards should match it only. Default: any local address. */
  publicIPv4?: string;
  /** How the VMs' QEMU runs. */
  qemu?: {
    /**
     * The user QEMU drops to after it has opened its TAPs, images and sockets (`-runas`):
     * `auto` (default) a dedicated uid/gid of this host from 61184-65519, unused by /etc/passwd
     * and /etc/group; `root` keeps root; a user name of /etc/passwd; or `UID:GID`.
     */
    user?: string;
  };
  bridge: {
    name: string;
    /**
     * The bridge's MAC (and the veth end's, as in the seed). Default: a stable locally
     * administered MAC from the host's and the bridge's names, so that the bridge's link-local
     * address, the VMs' IPv6 default router, never changes.
     */
    mac?: string;
    /** A veth pair whose first end is enslaved to the bridge (gives the bridge a stable MAC). */
    veth?: { name: string; peer: string };
    /** The bridge's address and the VM subnet, e.g. `192.168.0.1/24`. */
    ipv4: string;
    /** The bridge's IPv6 address in the VMs' prefix, e.g. `2001:db8:8:5688::1/64` (the VMs' IPv6 gateway). */
    ipv6?: string;
    /** Default false (as in the seed: `brctl stp br0 off`). */
    stp?: boolean;
    /**
     * The bridge, its veth pair and its addresses may exist already, not made by vmhost (a bridge
     * of /etc/network/interfaces): apply records them as adopted instead of refusing, and down
     * leaves them in place (only undoing what it changed: set down again if it was down).
     * Default false. Another host's objects are never adopted.
     */
    adopt?: boolean;
  };
  /** DHCP/DNS by dnsmasq on the bridge. Left out: no dnsmasq. */
  dhcp?: {
    /** First and last address of the dynamic range (inside the bridge subnet). */
    range: [string, string];
    /** dnsmasq lease time (`72h`, `30m`, `3600`, `infinite`). Default `12h`. */
    leaseTime?: string;
    /** Local DNS domain (`domain=` / `local=/lan/`). */
    domain?: string;
    /**
     * Upstream DNS servers (IPv4 or IPv6 addresses) that dnsmasq forwards the VMs' other queries
     * to. Left out: dnsmasq answers only the local names (it reads no resolv.conf; inside a
     * network namespace the host's resolver is often unreachable anyway).
     */
    dnsServers?: string[];
  };
  ipv6?: {
    /** The /64 (or other prefix) the provider gives the uplink, e.g. `2001:db8:8:5688::/64`. */
    prefix: string;
    /**
     * `routed`: each VM answers on its own address (proxy NDP on the uplink, a /128 route per VM via
     * the bridge, IPv6 forwarding). `proxy` (plan B): the VM addresses are put on the uplink and a
     * TCP proxy forwards each VM's published ports to its IPv4 address.
     */
    mode: 'routed' | 'proxy';
    /** The uplink learns its default route from router advertisements (sets accept_ra=2). Default false. */
    acceptRa?: boolean;
    /**
     * Limits of the plan-B proxy (defaults: 256 per port, 32 per source — an IPv6 /64 —, 4096 in
     * all; idle 300 s, connect 5 s, first byte either way 10 s, lifetime 1 h). When a port or the
     * proxy is full, the source holding the most connections loses its least active one to a
     * source holding fewer (docs/host-dnsmasq-and-proxy.md).
     */
    proxy?: ProxyLimits;
    /**
     * Routed mode, under `vmhost run`: publish the other global addresses the VMs use (SLAAC,
     * privacy addresses), learnt from the bridge's neighbour table, with a proxy neighbour and a
     * /128 route each (and the VM's published ports accepted to them), added and removed as they
     * come and go. Needs `isolation: false` on every VM: an isolated VM sends only from its own
     * addresses. Default false.
     */
    learn?: boolean;
    /** With `learn`: at most this many learnt addresses per VM (1-1024; more are not published). Default 16. */
    learnLimit?: number;
  };
  /** Host-wide cloud-init defaults for the VMs that have a `cloudInit` of their own. */
  cloudInit?: CloudInitDefaultsSpec;
  vms?: VmSpec[];
  /**
   * When `vmhost run` stops (SIGTERM, SIGINT): `shutdown` the VMs through the shutdown ladder and
   * stop dnsmasq and the IPv6 proxy (links, addresses, routes and the firewall stay for the next
   * start), or `keep` everything running for the next `run` to adopt. Default `shutdown`.
   */
  onStop?: 'shutdown' | 'keep';
}

/** A forward after defaults. */
export interface ResolvedForward {
  protocol: 'tcp' | 'udp';
  port: PortSpec;
  toPort: number;
}

/** A disk after defaults, with an absolute path. */
export interface ResolvedDisk {
  /** The image: the disk itself, or (with {@link ResolvedDisk.base}) the base image of the VM's own overlay. */
  file: string;
  format: 'qcow2' | 'raw';
  cache: 'writeback' | 'none' | 'writethrough' | 'directsync' | 'unsafe';
  readOnly: boolean;
  /**
   * Present for `disk: { base, size }`: `file` is the base image, never written; the VM writes its
   * own overlay on it in the data directory, made `sizeBytes` large (default: the base's size).
   */
  base?: { sizeBytes?: number };
}

/** A VM's cloud-init settings after the host-wide defaults are merged and defaults filled in. */
export interface ResolvedCloudInit {
  /** The guest's host name (default: the VM's name). */
  hostname: string;
  /** The user made with the keys (default `ops`). */
  user: string;
  /** The keys of the host-wide defaults, then the VM's own (each once), as normalised lines. */
  sshAuthorizedKeys: string[];
  /** Absolute path of the user-data file (read when planning and applying). */
  userData?: string;
  /** `auto`: network-config v2 with the VM's addresses; `none`: none. */
  networkConfig: 'auto' | 'none';
}

/** A VM after validation and defaults. */
export interface ResolvedVm {
  name: string;
  mac: string;
  ipv4: string;
  /** The VM's own IPv6 address (for `ipv6: auto`, the address the host computed). */
  ipv6?: string;
  /** `<tag>-<name>`: the tag is three letters from the host's name (`tapName` of spec/schema.ts). */
  tap: string;
  memoryMiB: number;
  cpus: number;
  accel: 'auto' | 'kvm' | 'tcg';
  /** QEMU machine: 'q35' (default) or 'microvm' (which needs `kernel`). */
  machine: 'q35' | 'microvm';
  /** QEMU's seccomp sandbox: 'auto' (default: where the binary has it), 'on' (required) or 'off'. */
  sandbox: 'auto' | 'on' | 'off';
  /** Absolute paths. */
  kernel?: string;
  initrd?: string;
  append?: string;
  disks: ResolvedDisk[];
  forwards: ResolvedForward[];
  autostart: boolean;
  /** See {@link VmSpec.restart}. */
  restart: RestartPolicy;
  /**
   * Other global IPv6 addresses this VM uses, learnt by `vmhost run` (`ipv6.learn`); never from
   * the host file. Each gets a proxy neighbour and a /128 route, as {@link ResolvedVm.ipv6}.
   */
  learnedIpv6?: readonly string[];
  /** Its cloud-init seed's settings; absent: no seed. */
  cloudInit?: ResolvedCloudInit;
  /** Its TAP and IPv6 objects may exist already (adopted). */
  adopt: boolean;
  /** Anti-spoofing on its port. */
  isolation: boolean;
  linkLocal: 'eui64' | 'any';
  /** Bits per second; a direction left out is unlimited. */
  bandwidth?: { toVm?: number; fromVm?: number };
  /** `<tag>_<name>` (`ifbName` of spec/schema.ts): the ifb whose qdisc shapes what the VM sends (with `bandwidth.fromVm`). */
  ifb?: string;
}

/** `qemu.user` resolved: `auto`, `root`, a user name, or ids. */
export type QemuUser = 'auto' | 'root' | { user: string } | { uid: number; gid: number };

/** The host file after validation and defaults: what plan/apply/down/status take. */
export interface ResolvedHost {
  /** Default `host`. */
  name: string;
  uplink: string;
  publicIPv4?: string;
  /** How the VMs' QEMU runs (docs/kvm-unprivileged.md). */
  qemu: { user: QemuUser };
  bridge: {
    name: string;
    mac?: string;
    veth?: { name: string; peer: string };
    /** The bridge's address with the VM subnet's length (@vmhost/net's `Prefix`: address, network, canonical). */
    ipv4: Prefix;
    ipv6?: Prefix;
    stp: boolean;
    /** The bridge, its veth pair and its addresses may exist already (adopted). */
    adopt: boolean;
  };
  dhcp?: { range: [string, string]; leaseTime: string; domain?: string; dnsServers?: string[] };
  ipv6?: {
    prefix: Prefix;
    mode: 'routed' | 'proxy';
    acceptRa: boolean;
    learn: boolean;
    learnLimit: number;
    proxy: Required<ProxyLimits>;
  };
  /** The host-wide cloud-init defaults as given (already merged into each VM's `cloudInit`). */
  cloudInit?: { user?: string; sshAuthorizedKeys: string[]; userData?: string; networkConfig?: 'auto' | 'none' };
  vms: ResolvedVm[];
  /** See {@link HostFile.onStop}. */
  onStop: 'shutdown' | 'keep';
}

export type * from './run-types.js';
