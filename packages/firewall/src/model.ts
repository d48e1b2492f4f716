/**
 * The typed firewall model: what a VM host wants from netfilter, independent of how it is applied.
 * Plain data; {@link validateModel} checks it and {@link render} turns it into iptables-restore text.
 * @module
 */

/** Address family of a rule: 4 (iptables) or 6 (ip6tables). */
export type Family = 4 | 6;

/** What a batch is for: iptables (4), ip6tables (6) or ebtables (`'bridge'`). */
export type TableFamily = Family | 'bridge';

/** A port or an inclusive port range `[first, last]`. */
export type PortSpec = number | readonly [number, number];

/** What a rule does with a matching packet. */
export type Action = 'accept' | 'drop' | 'reject' | 'return';

/** Conntrack states a rule may match (`-m conntrack --ctstate`). */
export type CtState = 'INVALID' | 'NEW' | 'RELATED' | 'ESTABLISHED' | 'UNTRACKED' | 'SNAT' | 'DNAT';

/**
 * A filter rule in the private INPUT, FORWARD or OUTPUT chain. Fields left out match anything.
 * A rule with IPv4 addresses goes to iptables only, one with IPv6 addresses to ip6tables only, one
 * without addresses to both unless `family` says otherwise.
 */
export interface Rule {
  /** Restrict the rule to one family. Must agree with `source`/`destination` when those are given. */
  family?: Family;
  /** `-i`: the interface the packet came in on (not in OUTPUT). */
  inInterface?: string;
  /** `-o`: the interface the packet leaves on (not in INPUT). */
  outInterface?: string;
  /** `-s`: source address or prefix (`192.168.0.0/24`, `2001:db8::1`). */
  source?: string;
  /** `-d`: destination address or prefix. */
  destination?: string;
  /** `-p`: `tcp`, `udp`, `icmp` (IPv4 only) or `ipv6-icmp` (IPv6 only). */
  protocol?: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp';
  /** Destination port or range; needs `protocol` tcp or udp. */
  port?: PortSpec;
  /** Source port or range; needs `protocol` tcp or udp. */
  sourcePort?: PortSpec;
  /** Conntrack states, e.g. `['NEW']`. */
  state?: readonly CtState[];
  /** What to do. */
  action: Action;
  /** A comment stored with the rule (`-m comment`): letters, digits, space and `_-.,:;/+=@()#`. */
  comment?: string;
  /**
   * `forward` rules only: the group (e.g. one VM) the rule belongs to. It then lives in the
   * group's FORWARD chain (`VMHOST-<owner>-<group>-F`, after the accepts of the group's port
   * forwards), so that replacing one group's rules leaves every other chain alone.
   */
  group?: string;
}

/**
 * Source NAT for traffic leaving the VM subnet through the uplink: MASQUERADE, or SNAT when
 * `toSource` is given. Multicast and broadcast destinations are exempt, and so is traffic that
 * stays inside `source`.
 */
export interface Masquerade {
  /** The VM subnet, e.g. `192.168.0.0/24` (an IPv6 prefix gives NAT66 in ip6tables). */
  source: string;
  /** The uplink, e.g. `eth0`. */
  outInterface: string;
  /** Rewrite to this fixed address (SNAT) instead of the uplink's address (MASQUERADE). */
  toSource?: string;
  /** Comment stored with the rule. */
  comment?: string;
}

/**
 * A published port: connections to `[destination]:port` are sent to `to:toPort`.
 * The family is the family of `to`; `destination`, if given, must be of the same family.
 */
export interface PortForward {
  /** `tcp` or `udp`. */
  protocol: 'tcp' | 'udp';
  /** The public port or range. A range maps one to one onto `toPort ... toPort + (last - first)`. */
  port: PortSpec;
  /** The VM's address. */
  to: string;
  /** The VM's port (the first one for a range). Default: the same as `port`. */
  toPort?: number;
  /** Accept from this interface only (the uplink, e.g. `eth0`). Default: any interface. */
  inInterface?: string;
  /** The public address. Default: any address of the host (`-m addrtype --dst-type LOCAL`). */
  destination?: string;
  /**
   * Hairpin NAT: VMs on `lan` may use the public address:port too (their connections are
   * DNATed and then masqueraded on the LAN so that replies come back through the host). Needs `lan`.
   */
  hairpin?: boolean;
  /** Also reachable from the host itself (nat OUTPUT, `--dst-type LOCAL`). Default true. */
  fromHost?: boolean;
  /**
   * Also reachable from the host on 127.0.0.0/8 (IPv4 only; needs `net.ipv4.conf.*.route_localnet=1`,
   * reported by {@link requiredSysctls}). Default false.
   */
  localhost?: boolean;
  /** Name of a group (e.g. one VM): its forwards live in chains of their own and can be replaced or removed alone. */
  group?: string;
  /** Comment stored with the rules. */
  comment?: string;
}

/** The VM-side network: the bridge and the VM subnets on it. */
export interface Lan {
  /** The bridge (or other interface) the VMs are on, e.g. `br0`. */
  interface: string;
  /** The VM subnets on it, IPv4 and/or IPv6. LAN rules are rendered for the families present here. */
  subnets: readonly string[];
  /** Accept bridge-local traffic (`-i br0 -o br0`, needed because bridged frames traverse FORWARD). Default true. */
  bridgeLocal?: boolean;
  /** Drop unsolicited connections towards the LAN (published ports and replies still pass). Default true. */
  isolate?: boolean;
  /** Accept DHCP (udp 67; DHCPv6 udp 547) from the LAN to the host. Default false. */
  dhcp?: boolean;
  /** Accept DNS (udp and tcp 53) from the LAN to the host. Default false. */
  dns?: boolean;
}

/**
 * Which IPv6 link-local sources a VM port may use. `'eui64'`: only the address derived from the
 * port's MAC (fe80::/64 with the modified EUI-64 interface identifier), what the kernel configures
 * by default (`addr_gen_mode` 0) and what the test guest and Debian guests use. `'any'`: any
 * fe80::/10 source and neighbour-advertisement target, for guests with stable-privacy link-local
 * addresses (NetworkManager's default); weaker: such a VM can claim another VM's, or the host's,
 * link-local address. A stable-privacy address known in advance can instead be listed in `ipv6`.
 */
export type LinkLocalPolicy = 'eui64' | 'any';

/**
 * A VM's port on the bridge (its TAP, or a veth standing in for one): what the VM may send into
 * the bridge. With `isolation` on (the default), frames from the port must carry the VM's MAC as
 * source; ARP must announce the VM's IPv4 addresses (sender IP, and sender MAC = the VM's); IPv4
 * must come from the VM's addresses (or 0.0.0.0 for DHCP discovery, UDP 68→67); IPv6 from the VM's
 * addresses, its link-local address (see {@link LinkLocalPolicy}) or `::` (duplicate address
 * detection and MLD reports to their multicast groups, router solicitations); neighbour
 * advertisements only for the VM's own addresses, and link-layer address options in neighbour
 * discovery only with the VM's MAC. Whatever else it sends is dropped, and so are, always, DHCP
 * and DHCPv6 server replies, router advertisements and ICMP/ICMPv6 redirects. Rendered into
 * ebtables (bridge family, nat PREROUTING, a chain per port) and, for the neighbour discovery
 * checks, ip6tables (raw PREROUTING, `-m physdev`, `-m u32`); see docs/firewall-isolation.md.
 */
export interface Port {
  /** The bridge port the VM's frames come in on: its TAP, e.g. `vmtap0`. */
  interface: string;
  /**
   * The group (normally the VM's name, as for its port forwards) whose chains hold the port's
   * rules: `VMHOST-<owner>-<group>-S` (ebtables) and `-N` (ip6tables). One port per group.
   */
  group: string;
  /** The VM's MAC address on this port. */
  mac: string;
  /** The VM's IPv4 addresses or prefixes (usually one address). None: only DHCP discovery. */
  ipv4?: readonly string[];
  /** The VM's IPv6 addresses or prefixes (global or ULA; link-local ones may be listed too). */
  ipv6?: readonly string[];
  /** Which link-local sources the VM may use. Default `'eui64'`. */
  linkLocal?: LinkLocalPolicy;
  /** Anti-spoofing and guards for this port. Default true; false renders nothing for it. */
  isolation?: boolean;
}

/** Everything one owner wants. Rendering puts all of it in the owner's private chains. */
export interface FirewallModel {
  /**
   * Names the private chains (`VMHOST-<owner>-FWD`, ...): letters, digits and `_`, at most 16
   * characters (chain names are limited to 28).
   */
  owner: string;
  /** The VM-side network. */
  lan?: Lan;
  /** Source NAT out of the uplink. */
  masquerade?: readonly Masquerade[];
  /** Filter rules for forwarded traffic, after the built-in ones (established, bridge-local, published ports). */
  forward?: readonly Rule[];
  /** Filter rules for traffic to the host. */
  input?: readonly Rule[];
  /** Filter rules for traffic from the host. */
  output?: readonly Rule[];
  /** Published ports. */
  portForwards?: readonly PortForward[];
  /** Accept the ICMPv6 messages IPv6 needs (errors, echo; on input also NDP and MLD). Default false. */
  allowIcmpv6?: boolean;
  /** Accept conntrack RELATED,ESTABLISHED first in the forward chain. Default true. */
  established?: boolean;
  /** The VMs' bridge ports: anti-spoofing and guards per port (see {@link Port}). */
  ports?: readonly Port[];
}
