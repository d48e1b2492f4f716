/**
 * The host file's vocabulary, as one field table: every mapping with its keys, and every field
 * with its kind, limits, pattern, default and description. The resolvers read their limits from
 * here, and the JSON Schema (`schema/host.schema.json`, made by ./json-schema.ts) is generated
 * from it, so the two cannot drift. What a table cannot say (a VM address inside the bridge
 * subnet, ports used once) the resolvers check besides; docs/host-spec.md explains each limit.
 * @module
 */
import { createHash } from 'node:crypto';
import { IFNAMSIZ_MAX, IFNAME_RE, type ip } from '@vmhost/net';
import { HostSpecError } from '../errors.js';
import { SSH_KEY_TYPES } from '../guests/ssh-key.js';
import type { BaseDiskSpec, CloudInitDefaultsSpec, CloudInitSpec, DiskSpec, ForwardSpec, HostFile, VmSpec } from '../types.js';

// ---------------------------------------------------------------------------------------------
// Field kinds

interface Common {
  /** One line for people (the schema's `description`). */
  description: string;
  /** Must be given (`null` does not count). */
  required?: boolean;
}
/** A mapping with exactly these keys (each unknown key is a problem). */
export interface ObjectField<K extends string = string> extends Common { kind: 'object'; keys: Record<K, Field> }
/** A list of `items`, at most `maxItems` long (each item once, when `unique`). */
export interface ListField extends Common { kind: 'list'; items: Field; maxItems: number; unique?: boolean }
/** Exactly two `items`, such as `[first, last]`. */
export interface PairField extends Common { kind: 'pair'; items: Field }
/** An integer from `min` to `max`. */
export interface IntField extends Common { kind: 'int'; min: number; max: number; default?: number }
export interface BoolField extends Common { kind: 'bool'; default?: boolean }
/** One of `values`. */
export interface EnumField<T extends string = string> extends Common { kind: 'enum'; values: readonly T[]; default?: T }
/** A name matching `pattern` (ASCII, so characters are bytes). */
export interface NameField extends Common { kind: 'name'; pattern: RegExp; maxLength: number; hint: string; default?: string }
/** An interface name (@vmhost/net's `validateIfName`), not one of {@link RESERVED_IFNAMES}. */
export interface IfNameField extends Common { kind: 'ifname' }
/** A unicast MAC address. */
export interface MacField extends Common { kind: 'mac' }
/**
 * A bare address of `family` (no prefix length), not in the special-purpose ranges of `refuse`
 * (by family); or, with `word`, that word instead (`auto`: an address the host computes).
 */
export interface AddressField extends Common { kind: 'address'; family: 4 | 6 | 'any'; refuse?: { 4?: readonly SpecialKind[]; 6?: readonly SpecialKind[] }; word?: 'auto' }
/** `ADDRESS/LEN` of `family`, the length from `minLength` to `maxLength`, clear of every special-purpose range. */
export interface PrefixField extends Common { kind: 'prefix'; family: 4 | 6; minLength: number; maxLength: number }
/** A file path (resolved against the host file's directory). */
export interface PathField extends Common { kind: 'path' }
/** Printable ASCII text of at most `maxBytes` (a URL). */
export interface TextField extends Common { kind: 'text'; maxBytes: number }
/** A kernel command line: printable ASCII, at most `maxBytes`. */
export interface CmdlineField extends Common { kind: 'cmdline'; maxBytes: number }
/** dnsmasq's lease time: `infinite`, or seconds (`N` with an optional unit s, m, h, d, w) from `minSeconds` to `maxSeconds`. */
export interface LeaseTimeField extends Common { kind: 'leaseTime'; minSeconds: number; maxSeconds: number; default: string }
/** A port 1-65535 or a range `[first, last]`. */
export interface PortField extends Common { kind: 'port' }
/** A rate: a whole number with the unit kbit, mbit or gbit (decimal, as tc reads them), from `minBps` to `maxBps` bits per second. */
export interface RateField extends Common { kind: 'rate'; minBps: number; maxBps: number }
/** A size in bytes: an integer (a multiple of 512), or text `N` with a binary unit K, M, G or T; from `min` to `max` bytes. */
export interface SizeField extends Common { kind: 'size'; min: number; max: number }
/** A disk: a path, a {@link DISK} or {@link BASE_DISK} mapping, or a list of them. */
export interface DiskField extends Common { kind: 'disk'; item: ObjectField; baseItem: ObjectField; maxItems: number }
/** An OpenSSH public key line `TYPE BASE64 [COMMENT]` of one of {@link SSH_KEY_TYPES}, at most `maxBytes`. */
export interface SshKeyField extends Common { kind: 'sshKey'; maxBytes: number }

/** A special-purpose range kind (@vmhost/net's `ip.specialRange`). */
export type SpecialKind = ip.SpecialKind;
/** Every special-purpose range kind. */
export const SPECIAL_KINDS: readonly SpecialKind[] = ['unspecified', 'loopback', 'link-local', 'multicast', 'broadcast', 'reserved', 'ipv4-mapped'];

/** One field of the host file. */
export type Field =
  | ObjectField | ListField | PairField | IntField | BoolField | EnumField | NameField | IfNameField | MacField
  | AddressField | PrefixField | PathField | TextField | CmdlineField | LeaseTimeField | PortField | SizeField | DiskField | SshKeyField | RateField;

// ---------------------------------------------------------------------------------------------
// Limits (docs/host-spec.md says why each is what it is)

/** The largest host file read: 1 MiB (a 50 MB file once took more than 4 GB of memory to resolve). */
export const MAX_FILE_BYTES = 1024 * 1024;

/** The error of a host file over {@link MAX_FILE_BYTES} (`bytes`: how big, or where reading stopped). */
export const tooBig = (bytes: string, source: string | undefined): HostSpecError =>
  new HostSpecError([{ path: '', value: undefined, message: `the host file is larger than ${MAX_FILE_BYTES} bytes (1 MiB): ${bytes}` }], source);
/** The deepest nesting of mappings and lists (a real host file needs 5). */
export const MAX_DEPTH = 32;
/** At most this many problems are listed (then a count of the rest). */
export const MAX_PROBLEMS = 100;
/** Longest path (PATH_MAX 4096 with its NUL). */
export const MAX_PATH_BYTES = 4095;
/** Longest kernel command line: Linux's COMMAND_LINE_SIZE on x86 (2048) with its NUL. */
export const MAX_CMDLINE_BYTES = 2047;
/** At most this many VMs: a Linux bridge has 1023 ports (BR_MAX_PORTS - 1), the veth takes one. */
export const MAX_VMS = 1000;
/** At most this many forwards per VM. */
export const MAX_FORWARDS = 4096;
/** Ports the IPv6 proxy listens on (proxy mode): one socket each, within its open-file budget. */
export const MAX_PROXY_PORTS = 1024;
/** Connections per proxied port, and per source: the proxy's total default cap (two descriptors each). */
export const MAX_PROXY_CONNECTIONS = 4096;
/** Connections of the whole proxy (two descriptors each; the service lowers it to fit its open-file limit). */
export const MAX_PROXY_TOTAL_CONNECTIONS = 65_536;
/** dnsmasq's shortest lease (it raises shorter ones to 2 minutes). */
export const MIN_LEASE_SECONDS = 120;
/** The longest finite lease: a year. */
export const MAX_LEASE_SECONDS = 365 * 24 * 3600;
/** The most learnt IPv6 addresses per VM (ipv6.learnLimit). */
export const MAX_LEARNED = 1024;
/** The lowest VM bandwidth: below 64 kbit/s one full-size frame (1514 bytes) takes longer than TCP's shortest retransmission timeout (200 ms). */
export const MIN_RATE_BPS = 64_000;
/** The highest VM bandwidth: 100 Gbit/s, beyond what a TAP carries (the kernel's 64-bit rates take more). */
export const MAX_RATE_BPS = 100_000_000_000;
/** The smallest disk made from a base image: 1 MiB. */
export const MIN_DISK_BYTES = 1024 * 1024;
/** The largest: 64 TiB. */
export const MAX_DISK_BYTES = 64 * 1024 ** 4;
/** Largest delay setTimeout takes. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** At most this many ssh keys in a `cloudInit` (each level). */
export const MAX_SSH_KEYS = 64;
/** Longest ssh public key line (a 16384-bit RSA key is about 2.8 KB). */
export const MAX_SSH_KEY_BYTES = 16_384;

// ---------------------------------------------------------------------------------------------
// Names and patterns

/** The host's name: it names the firewall chains (`VMHOST-<name>-...`, @vmhost/firewall's owner) and the state directory. */
export const HOST_NAME_RE = /^[A-Za-z0-9_]{1,16}$/;
/** VM names: the TAP `<tag>-<name>` fits in 15 bytes; a DNS label (no '-' at either end). */
export const VM_NAME_RE = /^[a-z](?:[a-z0-9-]{0,9}[a-z0-9])?$/;
/** The longest VM name. */
export const VM_NAME_MAX = 11;
/** A user name cloud-init makes (Debian's rule; `root` is refused besides). */
export const CLOUD_USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
/** The key types accepted in `sshAuthorizedKeys`. */
export { SSH_KEY_TYPES };

/**
 * The tag of the host `owner`'s TAPs: three letters a-z from the sha-256 of its name (17,576
 * tags), so that two hosts with a VM of the same name in one namespace get different TAPs, and
 * one host gets the same ones on every apply (docs/host-owners.md).
 */
export function tapTag(owner: string): string {
  let tag = tags.get(owner);
  if (tag === undefined) {
    let n = createHash('sha256').update(owner).digest().readUInt32BE(0) % 26 ** 3;
    tag = '';
    for (let i = 0; i < 3; i++, n = Math.floor(n / 26)) tag = String.fromCharCode(97 + (n % 26)) + tag;
    if (tags.size > 64) tags.clear();
    tags.set(owner, tag);
  }
  return tag;
}

/** The tags of the owners seen (a host's TAP and ifb names all take its tag: hashed once). */
const tags = new Map<string, string>();

/** The TAP of the VM `vm` of the host `owner`: `<tag>-<vm>` ({@link tapTag}), at most 15 bytes. */
export function tapName(owner: string, vm: string): string {
  return `${tapTag(owner)}-${vm}`;
}
/**
 * The ifb of the VM `vm` of the host `owner` (it shapes what the VM sends, `bandwidth.fromVm`):
 * `<tag>_<vm>`, beside its TAP `<tag>-<vm>`, at most 15 bytes.
 */
export function ifbName(owner: string, vm: string): string {
  return `${tapTag(owner)}_${vm}`;
}
/** A rate as text: a whole number and kbit, mbit or gbit. */
export const RATE_RE = /^([1-9][0-9]{0,8})(kbit|mbit|gbit)$/;
/** A dnsmasq lease time as text. */
export const LEASE_TIME_RE = /^(?:infinite|[1-9][0-9]{0,9}[smhdw]?)$/;
/** One label of a DNS name. */
export const DNS_LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A DNS name of labels (at most 253 characters). */
export const DOMAIN_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** A size as text: digits and a binary unit (`8G`, `512M`). */
export const SIZE_RE = /^[1-9][0-9]{0,15}[KMGT]?$/;
/** Printable ASCII: a kernel command line. */
export const CMDLINE_RE = /^[\x20-\x7e]*$/;
/**
 * Characters no path may hold, as a regular-expression class body: C0 and C1 controls, DEL, and
 * the invisible format characters (zero-width, bidirectional overrides, BOM) that make a path
 * look like another in messages.
 */
export const PATH_FORBIDDEN_CHARS = '\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb';
/** One of {@link PATH_FORBIDDEN_CHARS}. */
export const PATH_FORBIDDEN_RE = new RegExp(`[${PATH_FORBIDDEN_CHARS}]`);
/** Interface names: @vmhost/net's rule (ASCII letters, digits, '-', '_', '.'; not starting with '-' or '.'), at most 15 bytes. */
export { IFNAME_RE, IFNAMSIZ_MAX };
/** Interface names the host file may not use: the loopback, and the kernel's reserved sysctl names. */
export const RESERVED_IFNAMES: readonly string[] = ['lo', 'all', 'default'];
/** Trees no kernel, initrd or disk may come from: kernel interfaces, not files. */
export const FORBIDDEN_PATH_TREES: readonly string[] = ['/proc', '/sys'];
/** Devices no kernel, initrd or disk may be: physical memory and I/O ports. */
export const FORBIDDEN_PATHS: readonly string[] = ['/dev/mem', '/dev/kmem', '/dev/port'];

/** Seconds of a lease time (`N` with an optional unit s, m, h, d, w), `'infinite'`, or undefined when it is not one. */
export function leaseSeconds(text: string): number | 'infinite' | undefined {
  if (text === 'infinite') return text;
  const m = /^([1-9][0-9]{0,9})([smhdw]?)$/.exec(text);
  return m ? Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as '' | 's']! : undefined;
}

/** Bits per second of a rate (`'100mbit'`), or undefined when it is not one (units are decimal, as tc reads them). */
export function rateBps(text: string): number | undefined {
  const m = RATE_RE.exec(text);
  return m ? Number(m[1]) * { kbit: 1e3, mbit: 1e6, gbit: 1e9 }[m[2] as 'kbit'] : undefined;
}

/** A rate in bits per second as text with the largest unit that keeps it whole (`100mbit`, `64kbit`, `1500bit`). */
export function formatRate(bps: number): string {
  for (const [unit, n] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) if (bps >= n && bps % n === 0) return `${bps / n}${unit}`;
  return `${bps}bit`;
}

/** The firewall group of a VM's forwards: its name with '-' as '_' (group names are letters, digits and '_'). */
export const vmGroup = (vmName: string): string => vmName.replace(/-/g, '_');

// ---------------------------------------------------------------------------------------------
// The table

const ifname = (description: string, required = false): IfNameField => ({ kind: 'ifname', description, ...(required ? { required } : {}) });

/** `bridge.veth`. */
export const VETH = {
  kind: 'object',
  description: 'A veth pair whose first end is a port of the bridge (gives the bridge a stable MAC).',
  keys: { name: ifname('The end on the bridge.', true), peer: ifname('The other end.', true) },
} as const satisfies ObjectField<keyof NonNullable<HostFile['bridge']['veth']>>;

/** `bridge`. */
export const BRIDGE = {
  kind: 'object',
  required: true,
  description: "The VMs' bridge.",
  keys: {
    name: ifname('The bridge (created).', true),
    mac: { kind: 'mac', description: "The bridge's MAC (and the veth end's). Default: a stable locally administered MAC from the host's and the bridge's names (a stable link-local address: the VMs' IPv6 router); with adopt, none. A bridge that is adopted keeps its own MAC: this one is for a bridge vmhost makes." },
    veth: VETH,
    ipv4: { kind: 'prefix', family: 4, minLength: 8, maxLength: 30, required: true, description: "The bridge's address and the VM subnet, e.g. 192.168.0.1/24 (/8 to /30)." },
    ipv6: { kind: 'prefix', family: 6, minLength: 16, maxLength: 128, description: "The bridge's IPv6 address in ipv6.prefix (the VMs' IPv6 gateway), e.g. 2001:db8::1/64." },
    stp: { kind: 'bool', default: false, description: 'Spanning tree on the bridge vmhost makes (an adopted bridge keeps its own setting).' },
    adopt: { kind: 'bool', default: false, description: 'The bridge, its veth pair and its addresses may exist already, made by hand: vmhost records them as adopted, sets them up, and down leaves them in place (only undoing what it changed).' },
  },
} as const satisfies ObjectField<keyof HostFile['bridge']>;

/** `dhcp`. */
export const DHCP = {
  kind: 'object',
  description: 'DHCP and DNS for the VMs by dnsmasq on the bridge. Left out: no dnsmasq.',
  keys: {
    range: { kind: 'pair', required: true, items: { kind: 'address', family: 4, description: 'An address of the bridge subnet.' }, description: 'First and last address of the dynamic range (inside the bridge subnet).' },
    leaseTime: { kind: 'leaseTime', minSeconds: MIN_LEASE_SECONDS, maxSeconds: MAX_LEASE_SECONDS, default: '12h', description: "Lease time: 'infinite', or 2 minutes to a year as seconds or N with a unit s, m, h, d, w ('72h')." },
    domain: { kind: 'name', pattern: DOMAIN_RE, maxLength: 253, hint: "DNS labels of a-z, 0-9 and '-' (1-63 characters each, not starting or ending with '-'), separated by '.'", description: 'The local DNS domain of the VMs (e.g. lan).' },
    dnsServers: {
      kind: 'list',
      maxItems: 16,
      unique: true,
      // loopback (a resolver on the host) and IPv4 link-local (cloud resolvers) are fine; IPv6 link-local needs a zone
      items: { kind: 'address', family: 'any', refuse: { 4: ['unspecified', 'multicast', 'broadcast', 'reserved'], 6: ['unspecified', 'link-local', 'multicast', 'ipv4-mapped'] }, description: 'An upstream DNS server.' },
      description: "Upstream DNS servers for the VMs' other queries. Left out: local names only.",
    },
  },
} as const satisfies ObjectField<keyof NonNullable<HostFile['dhcp']>>;

/** `ipv6.proxy`. */
export const PROXY = {
  kind: 'object',
  description: 'Limits of the IPv6 TCP proxy (proxy mode).',
  keys: {
    maxConnections: { kind: 'int', min: 1, max: MAX_PROXY_CONNECTIONS, default: 256, description: 'Open connections per proxied port.' },
    maxConnectionsPerSource: { kind: 'int', min: 1, max: MAX_PROXY_CONNECTIONS, default: 32, description: 'Open connections of one source (an IPv6 /64) across all ports; a flood from one source cannot starve others.' },
    maxTotalConnections: { kind: 'int', min: 1, max: MAX_PROXY_TOTAL_CONNECTIONS, default: 4096, description: "Open connections of the whole proxy (lowered at start to fit its open-file limit)." },
    idleTimeoutMs: { kind: 'int', min: 1000, max: MAX_TIMER_MS, default: 300_000, description: 'A connection without traffic this long is closed (ms).' },
    connectTimeoutMs: { kind: 'int', min: 100, max: MAX_TIMER_MS, default: 5_000, description: "Connecting to the VM's IPv4 may take this long (ms)." },
    firstByteTimeoutMs: { kind: 'int', min: 100, max: MAX_TIMER_MS, default: 10_000, description: 'A connection must carry a first byte, in either direction, within this long (ms); slowloris.' },
    maxLifetimeMs: { kind: 'int', min: 1000, max: MAX_TIMER_MS, default: 3_600_000, description: 'A connection is closed after this long whatever it does (ms); a backstop, raise it for long sessions.' },
  },
} as const satisfies ObjectField<keyof NonNullable<NonNullable<HostFile['ipv6']>['proxy']>>;

/** `ipv6`. */
export const IPV6 = {
  kind: 'object',
  description: "The VMs' public IPv6 addresses.",
  keys: {
    prefix: { kind: 'prefix', family: 6, minLength: 16, maxLength: 126, required: true, description: 'The prefix the provider routes to the uplink, host bits zero, e.g. 2001:db8::/64 (/16 to /126).' },
    mode: { kind: 'enum', values: ['routed', 'proxy'], required: true, description: 'routed: proxy NDP and a route per VM; proxy: a TCP proxy to each VM\'s IPv4 (plan B).' },
    acceptRa: { kind: 'bool', default: false, description: 'The uplink keeps its default route from router advertisements (accept_ra=2).' },
    learn: { kind: 'bool', default: false, description: "routed mode, under `vmhost run`: publish the other global addresses the VMs use (SLAAC, privacy), learnt from the bridge's neighbour table, with a proxy neighbour and a /128 route each (and the VM's published ports). Needs isolation: false on the VMs (an isolated VM sends only from its own addresses)." },
    learnLimit: { kind: 'int', min: 1, max: MAX_LEARNED, default: 16, description: 'With learn: at most this many learnt addresses per VM (more are not published).' },
    proxy: PROXY,
  },
} as const satisfies ObjectField<keyof NonNullable<HostFile['ipv6']>>;

/** A disk mapping. */
export const DISK = {
  kind: 'object',
  description: 'A disk image.',
  keys: {
    file: { kind: 'path', required: true, description: 'The image (relative to the host file).' },
    format: { kind: 'enum', values: ['qcow2', 'raw'], default: 'qcow2', description: 'Image format.' },
    cache: { kind: 'enum', values: ['writeback', 'none', 'writethrough', 'directsync', 'unsafe'], default: 'writeback', description: 'QEMU cache mode.' },
    readOnly: { kind: 'bool', default: false, description: 'Read-only (may then be shared by VMs).' },
  },
} as const satisfies ObjectField<keyof DiskSpec>;

/** A disk made from a base image. */
export const BASE_DISK = {
  kind: 'object',
  description: "A disk made from a base image: the VM's own qcow2 overlay on it, in the data directory (the base is never written; VMs may share it).",
  keys: {
    base: { kind: 'path', required: true, description: 'The base image (relative to the host file).' },
    size: { kind: 'size', min: MIN_DISK_BYTES, max: MAX_DISK_BYTES, description: "The VM's disk size: bytes, or N with K, M, G or T (binary, e.g. 8G); at least the base's virtual size. Default: the base's." },
    format: { ...DISK.keys.format, description: "The base image's format." },
    cache: DISK.keys.cache,
  },
} as const satisfies ObjectField<keyof BaseDiskSpec>;

/** A forward. */
export const FORWARD = {
  kind: 'object',
  description: 'A published port.',
  keys: {
    port: { kind: 'port', required: true, description: 'The public port or range [first, last] on the host.' },
    toPort: { kind: 'int', min: 1, max: 65535, description: "The VM's port (first of the range). Default: port." },
    protocol: { kind: 'enum', values: ['tcp', 'udp'], default: 'tcp', description: 'tcp or udp.' },
  },
} as const satisfies ObjectField<keyof ForwardSpec>;

const cloudInitKeys = {
  user: { kind: 'name', pattern: CLOUD_USER_RE, maxLength: 32, default: 'ops', hint: "a user name of 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or '_' (not root)", description: 'The user made with the keys (sudo without password, password locked).' },
  sshAuthorizedKeys: {
    kind: 'list',
    maxItems: MAX_SSH_KEYS,
    items: { kind: 'sshKey', maxBytes: MAX_SSH_KEY_BYTES, description: `An OpenSSH public key line: TYPE BASE64 [COMMENT], TYPE one of ${SSH_KEY_TYPES.join(', ')}.` },
    description: "The user's ssh public keys.",
  },
  userData: { kind: 'path', description: "A user-data file: a #cloud-config (merged with vmhost's) or a script starting with #! (at most 1 MiB; read when planning and applying)." },
  networkConfig: { kind: 'enum', values: ['auto', 'none'], default: 'auto', description: "auto: network-config v2 with the VM's addresses, gateway and DNS; none: cloud-init's fallback (DHCP)." },
} as const;

/** The top-level `cloudInit`: host-wide defaults. */
export const CLOUD_INIT_DEFAULTS = {
  kind: 'object',
  description: "Host-wide cloud-init defaults, merged into each VM's cloudInit (its own fields win; the ssh keys of both are given).",
  keys: cloudInitKeys,
} as const satisfies ObjectField<keyof CloudInitDefaultsSpec>;

/** A VM's `cloudInit`. */
export const CLOUD_INIT = {
  kind: 'object',
  description: "A cloud-init NoCloud seed for the VM (a read-only CIDATA volume after its disks); {} takes the host-wide cloudInit. Needs an ssh key (here or host-wide) or a userData file.",
  keys: {
    hostname: { kind: 'name', pattern: DNS_LABEL_RE, maxLength: 63, hint: "a DNS label: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'", description: "The guest's host name. Default: the VM's name." },
    ...cloudInitKeys,
  },
} as const satisfies ObjectField<keyof CloudInitSpec>;

/** A VM's `bandwidth`. */
export const BANDWIDTH = {
  kind: 'object',
  description: "The VM's bandwidth limits (shaped, not policed: docs/host-bandwidth.md). Left out: unlimited.",
  keys: {
    toVm: { kind: 'rate', minBps: MIN_RATE_BPS, maxBps: MAX_RATE_BPS, description: 'Traffic to the VM, at most this rate (e.g. 100mbit): a qdisc on its TAP.' },
    fromVm: { kind: 'rate', minBps: MIN_RATE_BPS, maxBps: MAX_RATE_BPS, description: "Traffic from the VM, at most this rate (e.g. 50mbit): its TAP's ingress redirected to an ifb with a qdisc." },
  },
} as const satisfies ObjectField<keyof NonNullable<VmSpec['bandwidth']>>;

/** A VM. */
export const VM = {
  kind: 'object',
  description: 'A VM.',
  keys: {
    name: { kind: 'name', pattern: VM_NAME_RE, maxLength: VM_NAME_MAX, required: true, hint: `1 to ${VM_NAME_MAX} characters of a-z, 0-9 and '-', starting with a letter and not ending with '-' (the TAP <tag>-<name> fits in 15 bytes)`, description: "The VM's name (its TAP is <tag>-<name>, the tag three letters from the host's name)." },
    mac: { kind: 'mac', description: 'The NIC\'s MAC. Default: a stable locally administered MAC from the name.' },
    ipv4: { kind: 'address', family: 4, required: true, description: 'Static DHCP lease by MAC, inside the bridge subnet.' },
    ipv6: { kind: 'address', family: 6, word: 'auto', description: "The VM's own public IPv6 address, inside ipv6.prefix; or auto: the EUI-64 address of its MAC in ipv6.prefix (a /64), as SLAAC would form it, computed by the host." },
    memoryMiB: { kind: 'int', min: 16, max: 1_048_576, default: 256, description: 'Memory in MiB.' },
    cpus: { kind: 'int', min: 1, max: 64, default: 1, description: 'Virtual CPUs.' },
    accel: { kind: 'enum', values: ['auto', 'kvm', 'tcg'], default: 'auto', description: 'Accelerator (auto: KVM only where it really works).' },
    machine: { kind: 'enum', values: ['q35', 'microvm'], default: 'q35', description: "QEMU machine: q35 (PCI, firmware, boots any guest) or microvm (no PCI or firmware, virtio-mmio devices; needs kernel, best an uncompressed PVH vmlinux with virtio_mmio: about 2.3 s to a TCP service on TCG against 5.7 s for q35 with a bzImage)." },
    sandbox: { kind: 'enum', values: ['auto', 'on', 'off'], default: 'auto', description: "QEMU's seccomp sandbox (-sandbox on, obsolete, spawn, resourcecontrol and elevateprivileges denied): auto uses it when the QEMU binary has it, on requires it, off leaves it out." },
    kernel: { kind: 'path', description: 'Kernel for direct boot.' },
    initrd: { kind: 'path', description: 'Initial ramdisk (needs kernel).' },
    append: { kind: 'cmdline', maxBytes: MAX_CMDLINE_BYTES, description: `Kernel command line (needs kernel): printable ASCII, at most ${MAX_CMDLINE_BYTES} bytes.` },
    disk: { kind: 'disk', item: DISK, baseItem: BASE_DISK, maxItems: 16, description: 'One disk (a path, a mapping, or a disk from a base image) or a list of them.' },
    forwards: { kind: 'list', maxItems: MAX_FORWARDS, items: FORWARD, description: 'Published ports.' },
    autostart: { kind: 'bool', default: true, description: 'Start the VM on apply.' },
    restart: { kind: 'enum', values: ['always', 'on-failure', 'never'], default: 'on-failure', description: 'Under `vmhost run`, when the VM stops by itself: always start it again, only after a failure (a crash, kill, guest panic; not a poweroff by the guest), or never. With backoff; 5 restarts in 10 minutes give up.' },
    cloudInit: CLOUD_INIT,
    isolation: { kind: 'bool', default: true, description: "Anti-spoofing on the VM's port: it sends only with its own MAC and addresses, and never as a DHCP server or router (docs/firewall-isolation.md). false turns it off." },
    linkLocal: { kind: 'enum', values: ['eui64', 'any'], default: 'eui64', description: "IPv6 link-local sources the VM may use: eui64, the address from its MAC (what Linux does by default); any, all of fe80::/10 (stable-privacy guests such as NetworkManager's; weaker)." },
    bandwidth: BANDWIDTH,
    adopt: { kind: 'bool', default: false, description: "The VM's TAP and its IPv6 route, proxy neighbour or uplink address may exist already, made by hand: vmhost records them as adopted, and down leaves them in place (only undoing what it changed)." },
  },
} as const satisfies ObjectField<keyof VmSpec>;

/** A user name, as QEMU's -runas and /etc/passwd take it. */
export const USER_NAME_RE = /^[a-z_][a-z0-9_-]{0,30}\$?$/;
/** `qemu.user`: `auto`, `root`, a user name, or `UID:GID`. */
export const QEMU_USER_RE = /^(?:auto|root|[a-z_][a-z0-9_-]{0,30}\$?|[1-9][0-9]{0,9}:[0-9]{1,10})$/;

/** `qemu`. */
export const QEMU = {
  kind: 'object',
  description: "How the VMs' QEMU runs.",
  keys: {
    user: {
      kind: 'name',
      pattern: QEMU_USER_RE,
      maxLength: 32,
      default: 'auto',
      hint: "auto, root, a user name of /etc/passwd, or UID:GID (UID not 0)",
      description: "The user QEMU drops to after opening its TAPs, images and sockets (-runas): auto (default) a dedicated uid/gid of this host, unused by /etc/passwd and /etc/group, from systemd's dynamic range 61184-65519 (the same on every run); root keeps root; a user name or UID:GID. The VMs' disk chains are that user's; a writable disk file of the host file is chowned to it (docs/kvm-unprivileged.md).",
    },
  },
} as const satisfies ObjectField<keyof NonNullable<HostFile['qemu']>>;

/** The host file. */
export const HOST = {
  kind: 'object',
  description: 'A vmhost host file (https://www.npmjs.com/package/@vmhost/host).',
  keys: {
    $schema: { kind: 'text', maxBytes: 2048, description: 'The URL of this schema, for editors (JSON files; YAML files name it in a `# yaml-language-server: $schema=...` comment). Ignored.' },
    uplink: ifname('The uplink interface (must exist when applying).', true),
    name: { kind: 'name', pattern: HOST_NAME_RE, maxLength: 16, default: 'host', hint: '1 to 16 letters, digits or _ (it names the firewall chains VMHOST-<name>-...)', description: "Names this host's objects: the firewall chains VMHOST-<name>-... and the state directory." },
    publicIPv4: { kind: 'address', family: 4, refuse: { 4: SPECIAL_KINDS }, description: "The host's public IPv4 address, when forwards should match it only." },
    qemu: QEMU,
    bridge: BRIDGE,
    dhcp: DHCP,
    ipv6: IPV6,
    cloudInit: CLOUD_INIT_DEFAULTS,
    vms: { kind: 'list', maxItems: MAX_VMS, items: VM, description: 'The VMs.' },
    onStop: { kind: 'enum', values: ['shutdown', 'keep'], default: 'shutdown', description: 'When `vmhost run` stops (SIGTERM, SIGINT): shut the VMs down through the ladder (and stop dnsmasq and the IPv6 proxy), or keep everything running for the next run to adopt.' },
  },
} as const satisfies ObjectField<keyof HostFile>;

/** The keys of a mapping field, in table order. */
export const keysOf = (f: ObjectField): readonly string[] => Object.keys(f.keys);

/** The defaults of what may be left out (from the table). */
export const DEFAULTS = {
  name: HOST.keys.name.default,
  qemuUser: QEMU.keys.user.default,
  stp: BRIDGE.keys.stp.default,
  adoptBridge: BRIDGE.keys.adopt.default,
  adoptVm: VM.keys.adopt.default,
  leaseTime: DHCP.keys.leaseTime.default,
  acceptRa: IPV6.keys.acceptRa.default,
  learn: IPV6.keys.learn.default,
  learnLimit: IPV6.keys.learnLimit.default,
  onStop: HOST.keys.onStop.default,
  restart: VM.keys.restart.default,
  proxy: {
    maxConnections: PROXY.keys.maxConnections.default,
    maxConnectionsPerSource: PROXY.keys.maxConnectionsPerSource.default,
    maxTotalConnections: PROXY.keys.maxTotalConnections.default,
    idleTimeoutMs: PROXY.keys.idleTimeoutMs.default,
    connectTimeoutMs: PROXY.keys.connectTimeoutMs.default,
    firstByteTimeoutMs: PROXY.keys.firstByteTimeoutMs.default,
    maxLifetimeMs: PROXY.keys.maxLifetimeMs.default,
  },
  memoryMiB: VM.keys.memoryMiB.default,
  cpus: VM.keys.cpus.default,
  accel: VM.keys.accel.default,
  machine: VM.keys.machine.default,
  sandbox: VM.keys.sandbox.default,
  diskFormat: DISK.keys.format.default,
  diskCache: DISK.keys.cache.default,
  protocol: FORWARD.keys.protocol.default,
  isolation: VM.keys.isolation.default,
  linkLocal: VM.keys.linkLocal.default,
} as const;
