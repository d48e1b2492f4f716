/**
 * The host file's vocabulary: the keys of each mapping, the patterns of names, the defaults and
 * the allowed values.
 * @module
 */
import type { DiskSpec, HostFile } from '../types.js';

/** The keys of the host file. */
export const TOP_KEYS = ['uplink', 'name', 'publicIPv4', 'bridge', 'dhcp', 'ipv6', 'vms'] as const satisfies readonly (keyof HostFile)[];
/** The keys of `bridge`. */
export const BRIDGE_KEYS = ['name', 'mac', 'veth', 'ipv4', 'ipv6', 'stp'] as const satisfies readonly (keyof HostFile['bridge'])[];
/** The keys of `bridge.veth`. */
export const VETH_KEYS = ['name', 'peer'] as const;
/** The keys of `dhcp`. */
export const DHCP_KEYS = ['range', 'leaseTime', 'domain', 'dnsServers'] as const;
/** The keys of `ipv6`. */
export const IPV6_KEYS = ['prefix', 'mode', 'acceptRa', 'proxy'] as const;
/** The keys of `ipv6.proxy`. */
export const PROXY_KEYS = ['maxConnections', 'maxConnectionsPerSource', 'maxTotalConnections', 'idleTimeoutMs', 'connectTimeoutMs', 'firstByteTimeoutMs', 'maxLifetimeMs'] as const;
/** The keys of a VM. */
export const VM_KEYS = [
  'name', 'mac', 'ipv4', 'ipv6', 'memoryMiB', 'cpus', 'accel', 'kernel', 'initrd', 'append', 'disk', 'forwards', 'autostart',
] as const;
/** The keys of a disk mapping. */
export const DISK_KEYS = ['file', 'format', 'cache', 'readOnly'] as const satisfies readonly (keyof DiskSpec)[];
/** The keys of a forward. */
export const FORWARD_KEYS = ['port', 'toPort', 'protocol'] as const;

/** The host's name: it names the firewall chains. */
export const HOST_NAME_RE = /^[A-Za-z0-9_]{1,16}$/;
/** VM names: the TAP `vmt-<name>` must fit in 15 bytes. */
export const VM_NAME_RE = /^[a-z][a-z0-9-]{0,10}$/;
/** The longest VM name. */
export const VM_NAME_MAX = 11;
/** A VM's TAP is this and its name. */
export const TAP_PREFIX = 'vmt-';
/** A dnsmasq lease time. */
export const LEASE_TIME_RE = /^(\d+[smhdw]?|infinite)$/;
/** One label of a DNS name. */
export const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Largest delay setTimeout takes. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Largest connection count of the proxy's limits (two descriptors each). */
export const MAX_PROXY_CONNECTIONS = 1_000_000;

/** The defaults of what may be left out. */
export const DEFAULTS = {
  name: 'host',
  stp: false,
  leaseTime: '12h',
  acceptRa: false,
  proxy: { maxConnections: 256, maxConnectionsPerSource: 32, maxTotalConnections: 4096, idleTimeoutMs: 300_000, connectTimeoutMs: 5_000, firstByteTimeoutMs: 10_000, maxLifetimeMs: 3_600_000 },
  memoryMiB: 256,
  cpus: 1,
  accel: 'auto',
  diskFormat: 'qcow2',
  diskCache: 'writeback',
  protocol: 'tcp',
} as const;

/** `accel` values. */
export const ACCELS = ['auto', 'kvm', 'tcg'] as const;
/** Disk formats. */
export const DISK_FORMATS = ['qcow2', 'raw'] as const;
/** Disk cache modes. */
export const DISK_CACHES = ['writeback', 'none', 'writethrough', 'directsync', 'unsafe'] as const;
/** Forward protocols. */
export const PROTOCOLS = ['tcp', 'udp'] as const;
/** `ipv6.mode` values. */
export const IPV6_MODES = ['routed', 'proxy'] as const;
