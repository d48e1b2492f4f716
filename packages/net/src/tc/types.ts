/**
 * The plain data types of traffic control ({@link Rtnl.qdiscs}, {@link Rtnl.classes}): what the
 * operations take and return. Rates are bits per second, sizes bytes, times seconds. Plain data.
 * @module
 */

/** A rate: bits per second, or tc's text (`'10mbit'`, `'1gbit'`, `'500kbps'` = bytes/s). */
export type Rate = number | string;

/** What every qdisc spec has: the device and the place in its tree. */
export interface QdiscPlacement {
  /** The interface (name). */
  dev: string;
  /** `'root'` (default), or the class the qdisc is attached to (a leaf: `'1:10'`). */
  parent?: string;
  /** The qdisc's handle `'MAJOR:'` (hex, e.g. `'1:'`); default: the kernel picks one (`8001:`...). */
  handle?: string;
}

/** HTB, the hierarchical token bucket: a classful root whose classes shape. */
export interface HtbQdiscSpec extends QdiscPlacement {
  kind: 'htb';
  /** The class unclassified traffic goes to (`'1:20'`, or its minor number); default none: sent unshaped. */
  defaultClass?: string | number;
  /** Rate-to-quantum divisor for classes without `quantum` (default 10). */
  r2q?: number;
  /** Queue length of the direct (unclassified) queue, in packets. */
  directQlen?: number;
}

/** TBF, a token bucket filter: shapes everything to `rate`. */
export interface TbfQdiscSpec extends QdiscPlacement {
  kind: 'tbf';
  rate: Rate;
  /** Bucket size in bytes (at least the MTU; tc's `burst`). */
  burst: number;
  /** Longest a packet may wait, in seconds (`latency`); or give `limit`. */
  latency?: number;
  /** Queue size in bytes (`limit`); or give `latency`. */
  limit?: number;
  /** Peak rate (needs `mtu`). */
  peakrate?: Rate;
  /** Size of the peak-rate bucket in bytes (tc's `mtu`/`minburst`). */
  mtu?: number;
  /** Minimum packet size accounted, in bytes. */
  mpu?: number;
}

/** The ingress qdisc (handle `ffff:`, parent `ffff:fff1`): where filters on received traffic attach. */
export interface IngressQdiscSpec {
  kind: 'ingress';
  dev: string;
}

/** pfifo (limit in packets) or bfifo (limit in bytes): a plain FIFO, e.g. as an HTB leaf. */
export interface FifoQdiscSpec extends QdiscPlacement {
  kind: 'pfifo' | 'bfifo';
  /** Default: the device's txqueuelen (pfifo), times its MTU (bfifo). */
  limit?: number;
}

/** What `qdiscs.add` / `replace` / `change` take. */
export type QdiscSpec = HtbQdiscSpec | TbfQdiscSpec | IngressQdiscSpec | FifoQdiscSpec;

/** Which qdisc `qdiscs.delete` removes: the one at `parent` (default `'root'`) of `dev`, or the ingress qdisc. */
export interface QdiscRef {
  dev: string;
  /** `'root'` (default), `'ingress'`, or the class it is attached to. */
  parent?: string;
  /** Its handle, if it must be this one. */
  handle?: string;
}

/** Queueing statistics of a qdisc or class (TCA_STATS2). */
export interface TcStats {
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  requeues: number;
  /** Packets queued now. */
  qlen: number;
  /** Bytes queued now. */
  backlog: number;
}

/** A qdisc as the kernel reports it. */
export interface Qdisc {
  /** The interface's name (null if it could not be resolved) and index. */
  dev: string | null;
  index: number;
  kind: string;
  /** Its handle as tc prints it (`'1:'`, `'0:'` for a default qdisc). */
  handle: string;
  /** `'root'`, `'ffff:fff1'` (ingress), or the class it is attached to. */
  parent: string;
  /** htb: the root's settings. */
  htb?: { defaultClass: string | null; r2q: number; directQlen: number | null; directPackets: number; version: string };
  /** tbf: rate and peak rate in bits/s, burst and limit in bytes, latency in seconds (as tc prints them). */
  tbf?: { rate: number; burst: number; limit: number; latency: number; peakrate: number | null; mtu: number | null };
  /** pfifo (packets) / bfifo (bytes). */
  fifo?: { limit: number };
  stats: TcStats | null;
}

/** An HTB class: a share of its parent's rate. */
export interface HtbClassSpec {
  kind: 'htb';
  dev: string;
  /** The class id `'MAJOR:MINOR'`; MAJOR is the HTB qdisc's. */
  classid: string;
  /** The HTB qdisc (`'1:'`) for a top class, or the parent class (`'1:1'`). */
  parent: string;
  /** Guaranteed rate. */
  rate: Rate;
  /** Most it may borrow up to; default `rate`. */
  ceil?: Rate;
  /** Bytes it may send at once, at link speed, beyond `rate` (tc's `burst`); default rate/HZ + mtu (1600 bytes below 8 Gbit/s). */
  burst?: number;
  /** tc's `cburst`, the burst at `ceil`; default like `burst`. */
  cburst?: number;
  /** Bytes served per round when borrowing; default rate/r2q (the kernel clamps it to 1000..200000). */
  quantum?: number;
  /** Priority 0 (first) to 7. */
  prio?: number;
  /** Largest packet for the rate tables and the default bursts; default 1600. */
  mtu?: number;
  /** Minimum packet size accounted, in bytes. */
  mpu?: number;
  /** Bytes added to every packet for accounting. */
  overhead?: number;
}

/** What `classes.add` / `replace` / `change` take. */
export type ClassSpec = HtbClassSpec;

/** Which class `classes.delete` removes. */
export interface ClassRef {
  dev: string;
  classid: string;
}

/** A traffic class as the kernel reports it. */
export interface TrafficClass {
  dev: string | null;
  index: number;
  kind: string;
  /** `'1:10'`. */
  classid: string;
  /** `'root'` for a top class, or its parent class. */
  parent: string;
  /** The qdisc attached to it (`'20:'`), or null. */
  leaf: string | null;
  /** htb: rates in bits/s, bursts in bytes (as tc prints them), the level in the tree (0 = leaf). */
  htb?: { rate: number; ceil: number; burst: number; cburst: number; quantum: number; prio: number; level: number };
  stats: TcStats | null;
}

/** Filter of `qdiscs.list`. */
export interface QdiscFilter {
  dev?: string;
  kind?: string;
}

// ------------------------------------------------------------------------------------- filters

/** A filter's protocol: tc's names, or the EtherType as a number (`'all'`: every frame). */
export type FilterProtocol = 'all' | 'ip' | 'ipv6' | 'arp' | '802.1Q' | number;

/** One key of a u32 match: tc's `match u32 VALUE MASK at OFFSET` (the 32 bits at `offset`, in network order). */
export interface U32Match {
  value: number;
  mask: number;
  /** Bytes from the network header, a multiple of 4 (negative reaches into the link-layer header). Default 0. */
  offset?: number;
}

/** The mirred action: sends the packet to `dev` (tc's `action mirred egress redirect dev DEV`). */
export interface MirredActionSpec {
  kind: 'mirred';
  /** `redirect` takes the packet (the filter's verdict: stolen); `mirror` sends a copy and goes on (pipe). */
  action: 'redirect' | 'mirror';
  /** Onto `dev`'s egress (its qdisc, e.g. an ifb's shaper) or into its ingress. Default `'egress'`. */
  direction?: 'egress' | 'ingress';
  /** The interface (name); it must exist. */
  dev: string;
}

/** A u32 filter (`tc filter add ... u32`). */
export interface U32FilterSpec {
  kind: 'u32';
  /** The interface (name). */
  dev: string;
  /** The qdisc or class it is attached to: `'ingress'` (the ingress qdisc `ffff:`), `'1:'`, `'1:10'`. */
  parent: string;
  /** Which frames it sees. Default `'all'`. */
  protocol?: FilterProtocol;
  /** Its priority, 1 (first) to 65535 (tc's `prio`/`pref`): one classifier instance per priority. */
  prio: number;
  /** The node's handle as tc writes it (`'800::800'`); default: the kernel picks one in the instance's table. */
  handle?: string;
  /** Keys that must all match. Default `[{ value: 0, mask: 0 }]`: every packet (tc's `match u32 0 0`). */
  match?: readonly U32Match[];
  /** The class matching packets go to (tc's `flowid`/`classid`, `'1:10'`). */
  classid?: string;
  /** Actions run on matching packets, in order (at most 32). */
  actions?: readonly MirredActionSpec[];
}

/** What `filters.add` / `replace` take. */
export type FilterSpec = U32FilterSpec;

/**
 * Which filter `filters.delete` removes: without `handle`, the whole classifier instance at `prio`
 * (every node and hash table of it); with `handle` (a u32 node), that node only (the instance and
 * its table stay).
 */
export interface FilterRef {
  dev: string;
  /** As in {@link U32FilterSpec.parent}. */
  parent: string;
  prio: number;
  /** Default: any. */
  protocol?: FilterProtocol;
  /** A u32 node handle (`'800::800'`). */
  handle?: string;
}

/** An action of a filter as the kernel reports it. */
export interface TcAction {
  /** Its place in the list (from 1). */
  order: number;
  kind: string;
  /** The action's index in the kernel's table of its kind. */
  index: number | null;
  /** mirred: what it does and to which interface (`dev` null when it cannot be resolved). */
  mirred?: { action: 'redirect' | 'mirror'; direction: 'egress' | 'ingress'; dev: string | null; ifindex: number };
}

/** A filter as the kernel reports it: one entry per message, as `tc -j filter show` lists them. */
export interface TcFilter {
  dev: string | null;
  index: number;
  kind: string;
  /** The qdisc or class it hangs off (`'ffff:'`, `'1:'`). */
  parent: string;
  /** tc's name of the protocol, or `0x` and the EtherType in hex. */
  protocol: string;
  prio: number;
  /** Its handle as tc prints it (u32: `'800:'` for a hash table, `'800::800'` for a node); null for the classifier's own entry. */
  handle: string | null;
  chain: number | null;
  /** u32 tables and nodes. */
  u32?: {
    /** A hash table's size (its entry), else null. */
    divisor: number | null;
    /** The node's table (`'800'`), else null. */
    hashTable: string | null;
    classid: string | null;
    /** The selector ends classification (with a classid or an action). */
    terminal: boolean;
    match: Array<Required<U32Match>>;
    actions: TcAction[];
  };
}
