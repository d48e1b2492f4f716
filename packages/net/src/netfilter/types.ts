/**
 * The plain data types of the netfilter API ({@link Netfilter}): conntrack entries, their filters
 * and delete specs, and nf_tables generation events. Plain data, safe to serialise.
 * @module
 */

// -------------------------------------------------------------------------------------- conntrack

/** Layer-4 protocols conntrack tracks, by name. Others are given and reported by number. */
export type ConntrackProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp' | 'udplite' | 'dccp' | 'gre';

/** One direction of a connection (the original or the reply direction). */
export interface ConntrackTuple {
  src: string;
  dst: string;
  /** Ports of tcp, udp, sctp, udplite, dccp; null for other protocols. */
  srcPort: number | null;
  dstPort: number | null;
  /** icmp / icmpv6: type, code and id; null for other protocols. */
  icmp: { type: number | null; code: number | null; id: number | null } | null;
}

/** The status bits of an entry (IPS_*), decoded. */
export interface ConntrackStatus {
  /** An expected connection (of a helper such as FTP). */
  expected: boolean;
  /** A packet was seen in the reply direction ([UNREPLIED] when false). */
  seenReply: boolean;
  /** Assured: not dropped early when the table is full ([ASSURED]). */
  assured: boolean;
  confirmed: boolean;
  /** Source NAT applies (SNAT, MASQUERADE). */
  srcNat: boolean;
  /** Destination NAT applies (DNAT, REDIRECT): the reply source differs from the original destination. */
  dstNat: boolean;
  seqAdjust: boolean;
  srcNatDone: boolean;
  dstNatDone: boolean;
  dying: boolean;
  fixedTimeout: boolean;
  template: boolean;
  untracked: boolean;
  helper: boolean;
  offload: boolean;
  hwOffload: boolean;
}

/** TCP conntrack states, as conntrack(8) and /proc print them. */
export type TcpConntrackState =
  | 'NONE' | 'SYN_SENT' | 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT' | 'CLOSE_WAIT' | 'LAST_ACK' | 'TIME_WAIT' | 'CLOSE' | 'SYN_SENT2';

/** A connection tracking entry as the kernel reports it. */
export interface ConntrackEntry {
  family: 4 | 6;
  /** The protocol's name, or its number when it has none here. */
  protocol: ConntrackProtocol | number;
  /** The IP protocol number (6 for tcp, 17 for udp, ...). */
  protocolNumber: number;
  /** The original direction: as the first packet went (before NAT). */
  orig: ConntrackTuple;
  /** The reply direction: as replies are expected (after NAT: a DNAT shows as `reply.src`). */
  reply: ConntrackTuple;
  /** The kernel's id of the entry (CTA_ID), or null if not reported. */
  id: number | null;
  status: ConntrackStatus;
  /** The IPS_* bits as the kernel sent them. */
  rawStatus: number;
  /** Seconds until the entry expires, or null. */
  timeout: number | null;
  /** The connection mark (0 when unset). */
  mark: number;
  /** The conntrack zone (0: the default zone). */
  zone: number;
  /** Reference count (CTA_USE), or null. */
  use: number | null;
  /** TCP: the state and window scales; null for other protocols. */
  tcp: { state: TcpConntrackState | number; wscaleOrig: number | null; wscaleReply: number | null } | null;
  /** Packet and byte counters per direction, with net.netfilter.nf_conntrack_acct=1; else null. */
  counters: { orig: { packets: number; bytes: number }; reply: { packets: number; bytes: number } } | null;
  /** The helper attached (e.g. 'ftp'), or null. */
  helper: string | null;
}

/**
 * Which entries `conntrack.list` / `deleteMatching` select: every field given must match
 * (addresses exactly, in their canonical form). Tuple fields are matched in the kernel (CTA_FILTER)
 * where it can, and always again here.
 */
export interface ConntrackFilter {
  family?: 4 | 6;
  protocol?: ConntrackProtocol | number;
  /** Original direction: source, destination, ports (ports need a `protocol` with ports). */
  origSrc?: string;
  origDst?: string;
  origSrcPort?: number;
  origDstPort?: number;
  /** Reply direction (after NAT): e.g. `replySrc` is the DNAT target. */
  replySrc?: string;
  replyDst?: string;
  replySrcPort?: number;
  replyDstPort?: number;
  /** Connection mark, compared under `markMask` (default all bits). */
  mark?: number;
  markMask?: number;
  zone?: number;
}

/** One direction of the entry to delete: complete (addresses, and ports or ICMP type/code/id). */
export interface ConntrackTupleSpec {
  src: string;
  dst: string;
  srcPort?: number | null;
  dstPort?: number | null;
  icmp?: { type?: number | null; code?: number | null; id?: number | null } | null;
}

/**
 * The entry `conntrack.delete` removes, found by its original tuple (or, without `orig`, its reply
 * tuple). A {@link ConntrackEntry} from `list` is one.
 */
export interface ConntrackDeleteSpec {
  protocol: ConntrackProtocol | number;
  orig?: ConntrackTupleSpec;
  reply?: ConntrackTupleSpec;
  /** Default: the family of the tuple's addresses. */
  family?: 4 | 6;
  /** Default 0. */
  zone?: number;
  /** Delete only if the entry still has this id (CTA_ID): not a newer entry with the same tuple. */
  id?: number | null;
}

/** What `conntrack.deleteMatching` did. */
export interface ConntrackDeleteResult {
  /** Entries deleted. */
  deleted: ConntrackEntry[];
  /** Entries listed that were gone before their delete arrived (expired, or deleted by others). */
  vanished: ConntrackEntry[];
}

// ------------------------------------------------------------------------------------- nf_tables

/** The nf_tables ruleset generation: what NFT_MSG_GETGEN answers. */
export interface NftGeneration {
  /** The generation id; every committed ruleset change increments it. */
  id: number;
}

/** One event of an nf_tables monitor. */
export type NftEvent =
  | {
      type: 'generation';
      /** The new generation id. */
      id: number;
      /** The process that committed the change, and its name (e.g. 'iptables-nft-re'), if reported. */
      pid: number | null;
      processName: string | null;
      /** Other nf_tables notifications (tables, chains, rules, sets...) of this change received before it. */
      changes: number;
    }
  /** Notifications were lost (the queue overflowed): the ruleset may have changed in between. */
  | { type: 'overrun' };
