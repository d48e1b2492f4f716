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
