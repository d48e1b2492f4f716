/**
 * The plain data types of the rtnetlink API: what {@link Rtnl}'s methods take and return.
 * Returned objects are plain data (no methods, no live state), safe to serialise.
 * @module
 */
import type { NetnsRef } from './netns.js';

// ------------------------------------------------------------------------------------------ links

/** Interface flags (IFF_*), decoded. */
export interface LinkFlags {
  up: boolean;
  broadcast: boolean;
  loopback: boolean;
  pointToPoint: boolean;
  noarp: boolean;
  promisc: boolean;
  allmulti: boolean;
  multicast: boolean;
  running: boolean;
  /** The driver signals carrier (IFF_LOWER_UP). */
  lowerUp: boolean;
  dormant: boolean;
  /** A bond master (IFF_MASTER). Bridge ports are told by {@link Link.master}. */
  master: boolean;
  slave: boolean;
}

/** RFC 2863 operational state. */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';

/** macvlan modes. */
export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';

/** A bridge port's STP state. */
export type BridgePortState = 'disabled' | 'listening' | 'learning' | 'forwarding' | 'blocking';

/** A network interface as the kernel reports it. */
export interface Link {
  index: number;
  name: string;
  /** The rtnetlink kind ('veth', 'bridge', 'tun', 'vlan', 'macvlan', 'vxlan', ...); null for devices without one (lo, physical NICs). */
  kind: string | null;
  /** Hardware type: 'ether', 'loopback', 'none', or the ARPHRD number as text. */
  type: string;
  /** Hardware address, lower-case, or null if the device has none. */
  mac: string | null;
  /** Link-layer broadcast address. */
  broadcast: string | null;
  mtu: number;
  flags: LinkFlags;
  /** The IFF_* bits as the kernel sent them. */
  rawFlags: number;
  operstate: OperState;
  /** Name of the master (the bridge this interface is a port of), or null. */
  master: string | null;
  masterIndex: number | null;
  /** IFLA_LINK: the lower device (vlan/macvlan parent, veth peer), or null. In another namespace when {@link linkNetnsId} is set. */
  parentIndex: number | null;
  /** IFLA_LINK_NETNSID: the namespace (as an id local to this one) of {@link parentIndex}, or null for this namespace. */
  linkNetnsId: number | null;
  alias: string | null;
  txQueueLen: number | null;
  /** The link's group (IFLA_GROUP; 0 is the default group). */
  group: number;
  /** How many promiscuity requests are active (a bridge port counts one). */
  promiscuity: number;
  /** veth: the peer's index (in the namespace told by `peerNetnsId`, this one if null). */
  veth?: { peerIndex: number | null; peerNetnsId: number | null };
  /** bridge settings; times in seconds (the kernel keeps centiseconds). */
  bridge?: {
    stp: boolean;
    forwardDelay: number | null;
    helloTime: number | null;
    maxAge: number | null;
    ageingTime: number | null;
    priority: number | null;
    vlanFiltering: boolean;
  };
  vlan?: { id: number | null; protocol: '802.1Q' | '802.1ad' | null };
  macvlan?: { mode: MacvlanMode | null };
  vxlan?: {
    vni: number | null;
    /** Remote (unicast) or group (multicast) address. */
    remote: string | null;
    local: string | null;
    /** UDP destination port. */
    port: number | null;
    ttl: number | null;
    learning: boolean | null;
    /** Index of the underlying device, if bound to one. */
    devIndex: number | null;
  };
  tun?: {
    mode: 'tun' | 'tap' | null;
    persist: boolean;
    vnetHdr: boolean;
    multiQueue: boolean;
    /** Packet information header (IFF_NO_PI off). */
    pi: boolean;
    owner: number | null;
    group: number | null;
  };
  /** Port settings when the master is a bridge. */
  bridgePort?: { state: BridgePortState | null; priority: number | null; cost: number | null };
}

/** Settings every `links.add` takes. */
export interface LinkAddCommon {
  /** Interface name, 1-15 bytes. */
  name: string;
  /** Unicast MAC address. Default: random (kernel). */
  mac?: string;
  /** MTU, 68-65535. */
  mtu?: number;
  /** Bring it up once created. */
  up?: boolean;
  /** Promiscuous mode. */
  promisc?: boolean;
  /** Name of a bridge to enslave it to (looked up in the handle's namespace; not with `netns`). */
  master?: string;
  alias?: string;
  /**
   * Create the link directly in this namespace (IFLA_NET_NS_FD on the RTM_NEWLINK), as
   * `ip link add NAME netns NS ...` does. A `link` parent (vlan, macvlan) and a veth peer without
   * `peer.netns` stay in the handle's namespace. Not for `tap` (made by ioctl in the handle's
   * namespace: move it with `links.set(name, { netns })`) nor with `master`.
   */
  netns?: NetnsRef;
  txQueueLen?: number;
}

/** A veth pair. */
export interface VethSpec extends LinkAddCommon {
  kind: 'veth';
  peer: {
    name: string;
    mac?: string;
    mtu?: number;
    /** Create the peer in this namespace (IFLA_NET_NS_FD). Default: the handle's. */
    netns?: NetnsRef;
  };
}

/** A bridge. */
export interface BridgeSpec extends LinkAddCommon {
  kind: 'bridge';
  /** Spanning tree on (kernel STP) or off. Default off (kernel default). */
  stp?: boolean;
  /** Forward delay in seconds (0-30, 0.01 resolution; with STP on the kernel wants 2-30). */
  forwardDelay?: number;
  /** Hello time in seconds (1-10 with STP). */
  helloTime?: number;
  /** Max age in seconds (6-40 with STP). */
  maxAge?: number;
  /** FDB ageing time in seconds. */
  ageingTime?: number;
  /** Bridge priority 0-65535. */
  priority?: number;
  /** VLAN filtering (needs CONFIG_BRIDGE_VLAN_FILTERING in the kernel). */
  vlanFiltering?: boolean;
}

/** A persistent TAP, created by ioctl on /dev/net/tun in the handle's namespace. */
export interface TapSpec extends LinkAddCommon {
  kind: 'tap';
  owner?: number;
  group?: number;
  multiQueue?: boolean;
  vnetHdr?: boolean;
}

/** An 802.1Q / 802.1ad VLAN on top of `link`. */
export interface VlanSpec extends LinkAddCommon {
  kind: 'vlan';
  /** The parent interface. */
  link: string;
  /** VLAN id 1-4094. */
  id: number;
  protocol?: '802.1Q' | '802.1ad';
}

/** A macvlan on top of `link`. */
export interface MacvlanSpec extends LinkAddCommon {
  kind: 'macvlan';
  link: string;
  /** Default 'bridge'. */
  mode?: MacvlanMode;
}

/** A VXLAN tunnel endpoint. */
export interface VxlanSpec extends LinkAddCommon {
  kind: 'vxlan';
  /** VXLAN network identifier, 0-16777215. */
  vni: number;
  /** Unicast remote endpoint (IPv4 or IPv6). */
  remote?: string;
  /** Multicast group (instead of `remote`); needs `dev`. */
  group?: string;
  /** Local source address. */
  local?: string;
  /** Underlying device. */
  dev?: string;
  /** UDP destination port; default 4789 (IANA). */
  port?: number;
  ttl?: number;
  /** Learn remote MACs (default true, as the kernel). */
  learning?: boolean;
}

/** An ifb (intermediate functional block): a device to shape redirected traffic on. */
export interface IfbSpec extends LinkAddCommon {
  kind: 'ifb';
}

/**
 * Any other rtnetlink kind, passed to the kernel as is (IFLA_INFO_KIND, no kind data). The kernel
 * refuses kinds it does not have with EOPNOTSUPP ("Unknown device type").
 */
export interface OtherKindSpec extends LinkAddCommon {
  kind: string;
}

/** What `links.add` takes. */
export type LinkSpec = VethSpec | BridgeSpec | TapSpec | VlanSpec | MacvlanSpec | VxlanSpec | IfbSpec;

/** Changes `links.set` applies (only the fields given). */
export interface LinkChanges {
  up?: boolean;
  promisc?: boolean;
  allmulti?: boolean;
  /** ARP on (true) or off (IFF_NOARP). */
  arp?: boolean;
  mac?: string;
  mtu?: number;
  /** Enslave to this bridge; null releases it. */
  master?: string | null;
  /** Rename (the kernel wants the link down). */
  name?: string;
  /** Set the alias; null or '' clears it. */
  alias?: string | null;
  txQueueLen?: number;
  /** Put the link in this group (IFLA_GROUP, 0 to 4294967295; 0 is the default group). See `links.deleteGroup`. */
  group?: number;
  /** Move the link to this namespace (IFLA_NET_NS_FD). Done last, after the other changes. */
  netns?: NetnsRef;
}

/**
 * A link's counters (`links.stats()`, from IFLA_STATS64), as the kernel counts them since the link
 * was made. Exact up to 2^53.
 */
export interface LinkStats {
  index: number;
  name: string;
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  rxErrors: number;
  txErrors: number;
  rxDropped: number;
  txDropped: number;
  multicast: number;
}

/** Filter of `links.list`. */
export interface LinkFilter {
  kind?: string;
  /** Only ports of this master. */
  master?: string;
  /** Only links that are up. */
  up?: boolean;
}

// -------------------------------------------------------------------------------------- addresses

/** RT_SCOPE_* as names. */
export type Scope = 'global' | 'site' | 'link' | 'host' | 'nowhere';

/** An interface address. */
export interface Address {
  family: 4 | 6;
  /** The interface's own address (IFA_LOCAL, or IFA_ADDRESS where there is no local). */
  address: string;
  prefixLength: number;
  /** `address/prefixLength`. */
  cidr: string;
  /** Interface index and name. */
  index: number;
  link: string | null;
  /** Scope name, or the number if it has no name. */
  scope: Scope | number;
  label: string | null;
  broadcast: string | null;
  /** Peer address of a point-to-point address, or null. */
  peer: string | null;
  flags: {
    permanent: boolean;
    secondary: boolean;
    tentative: boolean;
    deprecated: boolean;
    nodad: boolean;
    noprefixroute: boolean;
    dadfailed: boolean;
    optimistic: boolean;
    homeaddress: boolean;
    managetempaddr: boolean;
    stablePrivacy: boolean;
  };
  /** Who added the address (IFA_PROTO; Linux 6.3 and later), or null when it carries none. */
  protocol: number | null;
  /** Seconds left, or null for forever. */
  validLifetime: number | null;
  preferredLifetime: number | null;
}

/** Options of `addresses.add`. */
export interface AddressOptions {
  /** IPv6: skip duplicate address detection (IFA_F_NODAD). */
  nodad?: boolean;
  /** Do not add the prefix route (IFA_F_NOPREFIXROUTE). */
  noprefixroute?: boolean;
  /** IPv4 broadcast address, or true to derive it from the prefix (like `brd +`). */
  broadcast?: string | true;
  /** IPv4 label (must start with the interface name). */
  label?: string;
  scope?: Scope | number;
  /** Peer address (point-to-point). */
  peer?: string;
  /** Lifetimes in seconds (default forever). */
  validLifetime?: number;
  preferredLifetime?: number;
  /** Metric of the prefix route (IFA_RT_PRIORITY). */
  metric?: number;
  /**
   * Who added the address (IFA_PROTO, 0-255; Linux 6.3 and later keep it, older kernels ignore
   * it): an owner mark, as the protocol of a route.
   */
  protocol?: number;
}

/** Filter of `addresses.list`. */
export interface AddressFilter {
  /** Interface name or index. */
  link?: string | number;
  family?: 4 | 6;
}

// ----------------------------------------------------------------------------------------- routes

/** Route types (RTN_*). */
export type RouteType = 'unicast' | 'local' | 'broadcast' | 'anycast' | 'multicast' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | 'nat';

/** A routing table: a number or one of the named ones. */
export type RouteTable = number | 'main' | 'local' | 'default';

/** A route as the kernel reports it. */
export interface Route {
  family: 4 | 6;
  /** 'default' or `prefix/len`. */
  to: string;
  dstLength: number;
  table: number;
  type: RouteType | number;
  /** 'kernel', 'boot', 'static', 'ra', 'dhcp', ... or the number. */
  protocol: string;
  scope: Scope | number;
  via: string | null;
  dev: string | null;
  devIndex: number | null;
  /** RTA_PRIORITY. */
  metric: number | null;
  /** Preferred source (RTA_PREFSRC). */
  src: string | null;
  mtu: number | null;
  flags: { onlink: boolean; linkdown: boolean; dead: boolean };
}

/** What `routes.add` / `replace` / `delete` take. */
export interface RouteSpec {
  /** 'default' or a prefix (host bits must be zero); a bare address is a /32 or /128. */
  to: string;
  /** Needed only for `to: 'default'` without an IPv6 `via`/`src`; default 4. */
  family?: 4 | 6;
  via?: string;
  dev?: string;
  table?: RouteTable;
  metric?: number;
  scope?: Scope | number;
  src?: string;
  type?: RouteType;
  protocol?: 'boot' | 'static' | 'kernel' | number;
  mtu?: number;
  /** Gateway is on-link even if no prefix says so. */
  onlink?: boolean;
}

/** Filter of `routes.list`. */
export interface RouteFilter {
  family?: 4 | 6;
  /** Default 'main'; 'all' for every table. */
  table?: RouteTable | 'all';
  dev?: string;
  type?: RouteType;
}

// ------------------------------------------------------------------------------------- neighbours

/** NUD_* states as names. */
export type NeighborState = 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'noarp' | 'permanent' | 'none';

/** A neighbour (ARP/NDP) entry, or a proxy entry. */
export interface Neighbor {
  family: 4 | 6;
  to: string;
  index: number;
  dev: string | null;
  lladdr: string | null;
  /** The NUD state bits as names (one for almost every entry; `[]` for a proxy entry). */
  state: NeighborState[];
  /** A proxy entry (NTF_PROXY: the kernel answers for `to` on `dev`). */
  proxy: boolean;
  router: boolean;
  /** Who added the entry (NDA_PROTOCOL), or null when it carries none. */
  protocol: number | null;
}

/** What `neighbors.add` / `replace` take. */
export interface NeighborSpec {
  /** IPv4 or IPv6 address. */
  to: string;
  dev: string;
  /** Link-layer address (not for proxy entries). */
  lladdr?: string;
  /** A proxy entry (like `ip neigh add proxy ADDR dev DEV`). */
  proxy?: boolean;
  router?: boolean;
  /** Who adds the entry (NDA_PROTOCOL, 0-255): an owner mark, as the protocol of a route. */
  protocol?: number;
  /** Default 'permanent'. */
  state?: 'permanent' | 'noarp' | 'reachable' | 'stale';
}

/** Filter of `neighbors.list`. */
export interface NeighborFilter {
  family?: 4 | 6;
  dev?: string;
  /** true: only the proxy table; false/undefined: only ordinary entries. */
  proxy?: boolean;
}

// ----------------------------------------------------------------------------------------- events

/** Kinds a monitor can follow. */
export type MonitorKind = 'link' | 'address' | 'route' | 'neighbor';

/** One change notification. */
export type RtnlEvent =
  | { type: 'link'; action: 'new' | 'del'; link: Link }
  | { type: 'address'; action: 'new' | 'del'; address: Address }
  | { type: 'route'; action: 'new' | 'del'; route: Route }
  | { type: 'neighbor'; action: 'new' | 'del'; neighbor: Neighbor }
  /** Notifications were lost (the kernel's queue overflowed): re-read what you track. */
  | { type: 'overrun' };
