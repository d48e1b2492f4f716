/**
 * Traffic-control constants of rtnetlink (linux/rtnetlink.h RTM_*QDISC/TCLASS and TCA_*,
 * linux/pkt_sched.h, linux/gen_stats.h), as numbers. Only what the codec and the API use; the
 * kernel's names are kept so they can be looked up.
 * @module
 */

/* eslint-disable @typescript-eslint/naming-convention */

// Message types.
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_GETQDISC = 38;
export const RTM_NEWTCLASS = 40;
export const RTM_DELTCLASS = 41;
export const RTM_GETTCLASS = 42;

/** The multicast group of qdisc/class/filter changes. */
export const RTNLGRP_TC = 4;

/** `struct tcmsg` (20 bytes). */
export const TCMSG_LEN = 20;

// TCA_* (enum in linux/rtnetlink.h).
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
export const TCA_STATS = 3;
export const TCA_XSTATS = 4;
export const TCA_RATE = 5;
export const TCA_FCNT = 6;
export const TCA_STATS2 = 7;
export const TCA_STAB = 8;
export const TCA_PAD = 9;
export const TCA_DUMP_INVISIBLE = 10;
export const TCA_CHAIN = 11;
export const TCA_HW_OFFLOAD = 12;
export const TCA_INGRESS_BLOCK = 13;
export const TCA_EGRESS_BLOCK = 14;
export const TCA_DUMP_FLAGS = 15;
export const TCA_EXT_WARN_MSG = 16;

// Handles (linux/pkt_sched.h).
export const TC_H_UNSPEC = 0;
export const TC_H_ROOT = 0xffffffff;
export const TC_H_INGRESS = 0xfffffff1;
export const TC_H_MAJ_MASK = 0xffff0000;
export const TC_H_MIN_MASK = 0x0000ffff;

// enum tc_link_layer.
export const TC_LINKLAYER_UNAWARE = 0;
export const TC_LINKLAYER_ETHERNET = 1;

/** Size of `struct tc_ratespec`. */
export const TC_RATESPEC_LEN = 12;
/** A rate table: 256 u32 transmission times. */
export const TC_RTAB_SIZE = 1024;

// TCA_STATS_* (linux/gen_stats.h), nested in TCA_STATS2.
export const TCA_STATS_BASIC = 1;
export const TCA_STATS_RATE_EST = 2;
export const TCA_STATS_QUEUE = 3;
export const TCA_STATS_APP = 4;
export const TCA_STATS_RATE_EST64 = 5;
export const TCA_STATS_PAD = 6;
export const TCA_STATS_BASIC_HW = 7;
export const TCA_STATS_PKT64 = 8;

// HTB (TCA_HTB_*).
export const TCA_HTB_PARMS = 1;
export const TCA_HTB_INIT = 2;
export const TCA_HTB_CTAB = 3;
export const TCA_HTB_RTAB = 4;
export const TCA_HTB_DIRECT_QLEN = 5;
export const TCA_HTB_RATE64 = 6;
export const TCA_HTB_CEIL64 = 7;
export const TCA_HTB_PAD = 8;
export const TCA_HTB_OFFLOAD = 9;
/** `tc_htb_glob.version`: HTB's protocol version. */
export const TC_HTB_PROTOVER = 3;
/** HTB class priorities are 0..TC_HTB_NUMPRIO-1. */
export const TC_HTB_NUMPRIO = 8;

// TBF (TCA_TBF_*).
export const TCA_TBF_PARMS = 1;
export const TCA_TBF_RTAB = 2;
export const TCA_TBF_PTAB = 3;
export const TCA_TBF_RATE64 = 4;
export const TCA_TBF_PRATE64 = 5;
export const TCA_TBF_BURST = 6;
export const TCA_TBF_PBURST = 7;
export const TCA_TBF_PAD = 8;
