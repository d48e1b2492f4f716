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

// Filters (RTM_*TFILTER): tcmsg.tcm_info is TC_H_MAKE(prio << 16, htons(protocol)).
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;

// Ethernet protocols of a filter (linux/if_ether.h).
export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_IPV6 = 0x86dd;

// u32 classifier (TCA_U32_*, linux/pkt_cls.h).
export const TCA_U32_CLASSID = 1;
export const TCA_U32_HASH = 2;
export const TCA_U32_LINK = 3;
export const TCA_U32_DIVISOR = 4;
export const TCA_U32_SEL = 5;
export const TCA_U32_POLICE = 6;
export const TCA_U32_ACT = 7;
export const TCA_U32_INDEV = 8;
export const TCA_U32_PCNT = 9;
export const TCA_U32_MARK = 10;
export const TCA_U32_FLAGS = 11;
/** `tc_u32_sel.flags`: a match ends the classification (set by tc with a classid or an action). */
export const TC_U32_TERMINAL = 1;
/** `struct tc_u32_sel` without its keys. */
export const TC_U32_SEL_LEN = 16;
/** `struct tc_u32_key`. */
export const TC_U32_KEY_LEN = 16;
/** TCA_CLS_FLAGS_* (TCA_U32_FLAGS). */
export const TCA_CLS_FLAGS_SKIP_HW = 1;
export const TCA_CLS_FLAGS_SKIP_SW = 2;
export const TCA_CLS_FLAGS_IN_HW = 4;
export const TCA_CLS_FLAGS_NOT_IN_HW = 8;

// Actions (TCA_ACT_*, linux/pkt_cls.h): a list of nested attributes numbered by their order.
export const TCA_ACT_KIND = 1;
export const TCA_ACT_OPTIONS = 2;
export const TCA_ACT_INDEX = 3;
export const TCA_ACT_STATS = 4;
export const TCA_ACT_COOKIE = 6;
export const TCA_ACT_FLAGS = 7;
export const TCA_ACT_HW_STATS = 8;
export const TCA_ACT_USED_HW_STATS = 9;
export const TCA_ACT_IN_HW_COUNT = 10;
// Control actions (TC_ACT_*).
export const TC_ACT_OK = 0;
export const TC_ACT_RECLASSIFY = 1;
export const TC_ACT_SHOT = 2;
export const TC_ACT_PIPE = 3;
export const TC_ACT_STOLEN = 4;

// mirred (linux/tc_act/tc_mirred.h).
export const TCA_MIRRED_TM = 1;
export const TCA_MIRRED_PARMS = 2;
export const TCA_EGRESS_REDIR = 1;
export const TCA_EGRESS_MIRROR = 2;
export const TCA_INGRESS_REDIR = 3;
export const TCA_INGRESS_MIRROR = 4;
/** `struct tc_mirred`: tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex. */
export const TC_MIRRED_LEN = 28;
