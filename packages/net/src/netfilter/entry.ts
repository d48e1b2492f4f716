/**
 * The conntrack module's pure parts: a {@link ConntrackEntry} from a decoded message, filter and
 * delete-spec validation, the dump requests a filter needs (kernel-side CTA_FILTER) and the
 * client-side match that every listed entry passes. Pure.
 * @module
 */
import { canonicalAddress } from '../ip/address.js';
import * as C from '../codec/constants.js';
import type { ConntrackAttrs, ConntrackMessage, CtTupleAttrs } from '../codec/conntrack.js';
import * as N from '../codec/nf-constants.js';
import { ValidationError } from '../errors.js';
import { validateInt, validateIp } from '../validate.js';
import type {
  ConntrackDeleteSpec, ConntrackEntry, ConntrackFilter, ConntrackProtocol, ConntrackStatus, ConntrackTuple, ConntrackTupleSpec, TcpConntrackState,
} from './types.js';

const PROTOCOLS: Record<ConntrackProtocol, number> = {
  tcp: N.IPPROTO_TCP, udp: N.IPPROTO_UDP, icmp: N.IPPROTO_ICMP, icmpv6: N.IPPROTO_ICMPV6,
  sctp: N.IPPROTO_SCTP, udplite: N.IPPROTO_UDPLITE, dccp: N.IPPROTO_DCCP, gre: N.IPPROTO_GRE,
};
const PORTED = new Set([N.IPPROTO_TCP, N.IPPROTO_UDP, N.IPPROTO_SCTP, N.IPPROTO_UDPLITE, N.IPPROTO_DCCP]);
const ICMPS = new Set([N.IPPROTO_ICMP, N.IPPROTO_ICMPV6]);

const STATUS_BITS: Array<[keyof ConntrackStatus, number]> = [
  ['expected', N.IPS_EXPECTED], ['seenReply', N.IPS_SEEN_REPLY], ['assured', N.IPS_ASSURED], ['confirmed', N.IPS_CONFIRMED],
  ['srcNat', N.IPS_SRC_NAT], ['dstNat', N.IPS_DST_NAT], ['seqAdjust', N.IPS_SEQ_ADJUST], ['srcNatDone', N.IPS_SRC_NAT_DONE],
  ['dstNatDone', N.IPS_DST_NAT_DONE], ['dying', N.IPS_DYING], ['fixedTimeout', N.IPS_FIXED_TIMEOUT], ['template', N.IPS_TEMPLATE],
  ['untracked', N.IPS_UNTRACKED], ['helper', N.IPS_HELPER], ['offload', N.IPS_OFFLOAD], ['hwOffload', N.IPS_HW_OFFLOAD],
];

/** The number of a protocol given by name or number; `field` names it in errors. */
export function protocolNumber(p: unknown, field: string): number {
  if (typeof p === 'string' && Object.hasOwn(PROTOCOLS, p)) return PROTOCOLS[p as ConntrackProtocol];
  if (typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 255) return p;
  throw new ValidationError(field, p, `expected ${Object.keys(PROTOCOLS).join(', ')} or a protocol number 0-255`);
}

/** The name of protocol number `n`, or `n` itself. */
export function protocolName(n: number): ConntrackProtocol | number {
  for (const [name, num] of Object.entries(PROTOCOLS)) if (num === n) return name as ConntrackProtocol;
  return n;
}

function toTuple(t: CtTupleAttrs | undefined, proto: number): ConntrackTuple {
  const ip = t?.ip ?? {};
  const p = t?.proto ?? {};
  const icmp = proto === N.IPPROTO_ICMPV6
    ? { type: p.icmpv6Type ?? null, code: p.icmpv6Code ?? null, id: p.icmpv6Id ?? null }
    : { type: p.icmpType ?? null, code: p.icmpCode ?? null, id: p.icmpId ?? null };
  return {
    src: ip.v4Src ?? ip.v6Src ?? '',
    dst: ip.v4Dst ?? ip.v6Dst ?? '',
    srcPort: PORTED.has(proto) ? (p.srcPort ?? null) : null,
    dstPort: PORTED.has(proto) ? (p.dstPort ?? null) : null,
    icmp: ICMPS.has(proto) ? icmp : null,
  };
}

const counter = (v: bigint | undefined): number => (v === undefined ? 0 : Number(v));

/** Converts a decoded conntrack message to the public {@link ConntrackEntry}. */
export function toConntrackEntry(m: ConntrackMessage): ConntrackEntry {
  const a = m.attrs;
  const proto = a.tupleOrig?.proto?.num ?? a.tupleReply?.proto?.num ?? 0;
  const raw = a.status ?? 0;
  const status = {} as ConntrackStatus;
  for (const [name, bit] of STATUS_BITS) status[name] = (raw & bit) !== 0;
  const tcp = a.protoinfo?.tcp;
  const co = a.countersOrig;
  const cr = a.countersReply;
  return {
    family: m.header.family === C.AF_INET6 ? 6 : 4,
    protocol: protocolName(proto),
    protocolNumber: proto,
    orig: toTuple(a.tupleOrig, proto),
    reply: toTuple(a.tupleReply, proto),
    id: a.id ?? null,
    status,
    rawStatus: raw,
    timeout: a.timeout ?? null,
    mark: a.mark ?? 0,
    zone: a.zone ?? 0,
    use: a.use ?? null,
    tcp: proto === N.IPPROTO_TCP
      ? {
          state: tcp?.state === undefined ? 'NONE' : (N.TCP_CONNTRACK_STATES[tcp.state] as TcpConntrackState | undefined) ?? tcp.state,
          wscaleOrig: tcp?.wscaleOriginal ?? null,
          wscaleReply: tcp?.wscaleReply ?? null,
        }
      : null,
    counters: co || cr
      ? { orig: { packets: counter(co?.packets), bytes: counter(co?.bytes) }, reply: { packets: counter(cr?.packets), bytes: counter(cr?.bytes) } }
      : null,
    helper: a.help?.name ?? null,
  };
}

// ----------------------------------------------------------------------------------------- filters

/** A validated filter: canonical addresses, the protocol as a number, the family if known. */
export interface CheckedFilter {
  family: 4 | 6 | undefined;
  proto: number | undefined;
  orig: TupleMatch;
  reply: TupleMatch;
  mark: number | undefined;
  markMask: number;
  zone: number | undefined;
}

interface TupleMatch {
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
}

const FILTER_KEYS = new Set([
  'family', 'protocol', 'origSrc', 'origDst', 'origSrcPort', 'origDstPort', 'replySrc', 'replyDst', 'replySrcPort', 'replyDstPort',
  'mark', 'markMask', 'zone',
]);

/** Checks a {@link ConntrackFilter}: ValidationError naming `filter.<field>`. */
export function checkFilter(filter: unknown): CheckedFilter {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) throw new ValidationError('filter', filter, 'expected an object');
  const f = filter as ConntrackFilter;
  for (const k of Object.keys(f)) if (!FILTER_KEYS.has(k)) throw new ValidationError(`filter.${k}`, (f as Record<string, unknown>)[k], 'unknown filter field');
  let family: 4 | 6 | undefined;
  if (f.family !== undefined) {
    if (f.family !== 4 && f.family !== 6) throw new ValidationError('filter.family', f.family, 'expected 4 or 6');
    family = f.family;
  }
  const proto = f.protocol === undefined ? undefined : protocolNumber(f.protocol, 'filter.protocol');
  const addr = (k: 'origSrc' | 'origDst' | 'replySrc' | 'replyDst'): string | undefined => {
    const v = f[k];
    if (v === undefined) return undefined;
    const fam = validateIp(v, `filter.${k}`, family);
    family = fam;
    return canonicalAddress(v);
  };
  const port = (k: 'origSrcPort' | 'origDstPort' | 'replySrcPort' | 'replyDstPort'): number | undefined => {
    const v = f[k];
    if (v === undefined) return undefined;
    validateInt(v, `filter.${k}`, 0, 65535);
    if (proto === undefined || !PORTED.has(proto)) {
      throw new ValidationError(`filter.${k}`, v, 'a port needs protocol tcp, udp, sctp, udplite or dccp');
    }
    return v;
  };
  const orig: TupleMatch = {};
  const reply: TupleMatch = {};
  const set = <K extends keyof TupleMatch>(t: TupleMatch, k: K, v: TupleMatch[K]): void => {
    if (v !== undefined) t[k] = v;
  };
  set(orig, 'src', addr('origSrc'));
  set(orig, 'dst', addr('origDst'));
  set(reply, 'src', addr('replySrc'));
  set(reply, 'dst', addr('replyDst'));
  set(orig, 'srcPort', port('origSrcPort'));
  set(orig, 'dstPort', port('origDstPort'));
  set(reply, 'srcPort', port('replySrcPort'));
  set(reply, 'dstPort', port('replyDstPort'));
  if (f.mark !== undefined) validateInt(f.mark, 'filter.mark', 0, 0xffffffff);
  if (f.markMask !== undefined) {
    validateInt(f.markMask, 'filter.markMask', 0, 0xffffffff);
    if (f.mark === undefined) throw new ValidationError('filter.markMask', f.markMask, 'needs filter.mark');
  }
  if (f.zone !== undefined) validateInt(f.zone, 'filter.zone', 0, 65535);
  const markMask = f.markMask ?? 0xffffffff;
  return { family, proto, orig, reply, mark: f.mark === undefined ? undefined : (f.mark & markMask) >>> 0, markMask, zone: f.zone };
}

function tupleMatches(t: ConntrackTuple, m: TupleMatch): boolean {
  // Decoded addresses are canonical already (the ip module formats them).
  if (m.src !== undefined && t.src !== m.src) return false;
  if (m.dst !== undefined && t.dst !== m.dst) return false;
  if (m.srcPort !== undefined && t.srcPort !== m.srcPort) return false;
  if (m.dstPort !== undefined && t.dstPort !== m.dstPort) return false;
  return true;
}

/** Whether `e` passes the filter (the client-side check every listed entry goes through). */
export function matches(e: ConntrackEntry, f: CheckedFilter): boolean {
  if (f.family !== undefined && e.family !== f.family) return false;
  if (f.proto !== undefined && e.protocolNumber !== f.proto) return false;
  if (f.mark !== undefined && ((e.mark & f.markMask) >>> 0) !== f.mark) return false;
  if (f.zone !== undefined && e.zone !== f.zone) return false;
  return tupleMatches(e.orig, f.orig) && tupleMatches(e.reply, f.reply);
}

function filterFlags(m: TupleMatch, proto: number | undefined, withProto: boolean): number {
  let flags = 0;
  if (m.src !== undefined) flags |= N.CTA_FILTER_F_CTA_IP_SRC;
  if (m.dst !== undefined) flags |= N.CTA_FILTER_F_CTA_IP_DST;
  if (m.srcPort !== undefined) flags |= N.CTA_FILTER_F_CTA_PROTO_SRC_PORT;
  if (m.dstPort !== undefined) flags |= N.CTA_FILTER_F_CTA_PROTO_DST_PORT;
  // The kernel compares ports only together with the protocol number.
  if (proto !== undefined && (withProto || m.srcPort !== undefined || m.dstPort !== undefined)) flags |= N.CTA_FILTER_F_CTA_PROTO_NUM;
  return flags;
}

function filterTuple(m: TupleMatch, family: 4 | 6, proto: number | undefined): CtTupleAttrs {
  const t: CtTupleAttrs = { ip: {} };
  if (m.src !== undefined) t.ip![family === 4 ? 'v4Src' : 'v6Src'] = m.src;
  if (m.dst !== undefined) t.ip![family === 4 ? 'v4Dst' : 'v6Dst'] = m.dst;
  if (proto !== undefined) {
    t.proto = { num: proto };
    if (m.srcPort !== undefined) t.proto.srcPort = m.srcPort;
    if (m.dstPort !== undefined) t.proto.dstPort = m.dstPort;
  }
  return t;
}

/**
 * The dump requests for a filter: `{ family, attrs }` per dump. Tuple fields go to the kernel as
 * CTA_FILTER (which needs a family: without one, one dump per family), the mark as
 * CTA_MARK/CTA_MARK_MASK; the zone is matched here only. With `kernelFilter: false`, only the
 * family is sent (the fallback for kernels that refuse the filter).
 */
export function dumpRequests(f: CheckedFilter, kernelFilter = true): Array<{ family: number; attrs: ConntrackAttrs }> {
  const attrs: ConntrackAttrs = {};
  if (kernelFilter && f.mark !== undefined) {
    attrs.mark = f.mark;
    attrs.markMask = f.markMask;
  }
  const origFlags = kernelFilter ? filterFlags(f.orig, f.proto, true) : 0;
  const replyFlags = kernelFilter ? filterFlags(f.reply, f.proto, false) : 0;
  const familyNumber = (fam: 4 | 6): number => (fam === 4 ? C.AF_INET : C.AF_INET6);
  if (origFlags === 0 && replyFlags === 0) return [{ family: f.family === undefined ? C.AF_UNSPEC : familyNumber(f.family), attrs }];
  const families: Array<4 | 6> = f.family === undefined ? [4, 6] : [f.family];
  return families.map((fam) => {
    const a: ConntrackAttrs = { ...attrs, filter: {} };
    if (origFlags) {
      a.tupleOrig = filterTuple(f.orig, fam, f.proto);
      a.filter!.origFlags = origFlags;
    }
    if (replyFlags) {
      a.tupleReply = filterTuple(f.reply, fam, f.proto);
      a.filter!.replyFlags = replyFlags;
    }
    return { family: familyNumber(fam), attrs: a };
  });
}

// ---------------------------------------------------------------------------------------- deletes

function checkTuple(t: unknown, field: string, proto: number, family: 4 | 6 | undefined): { tuple: CtTupleAttrs; family: 4 | 6 } {
  if (t === null || typeof t !== 'object') throw new ValidationError(field, t, 'expected { src, dst, ... }');
  const s = t as ConntrackTupleSpec;
  const fam = validateIp(s.src, `${field}.src`, family);
  validateIp(s.dst, `${field}.dst`, fam);
  const tuple: CtTupleAttrs = {
    ip: fam === 4 ? { v4Src: s.src, v4Dst: s.dst } : { v6Src: s.src, v6Dst: s.dst },
    proto: { num: proto },
  };
  if (PORTED.has(proto)) {
    validateInt(s.srcPort, `${field}.srcPort`, 0, 65535);
    validateInt(s.dstPort, `${field}.dstPort`, 0, 65535);
    tuple.proto!.srcPort = s.srcPort;
    tuple.proto!.dstPort = s.dstPort;
  } else if (ICMPS.has(proto)) {
    const icmp = s.icmp;
    if (icmp === null || icmp === undefined || typeof icmp !== 'object') throw new ValidationError(`${field}.icmp`, icmp, 'expected { type, code, id }');
    validateInt(icmp.type, `${field}.icmp.type`, 0, 255);
    validateInt(icmp.code, `${field}.icmp.code`, 0, 255);
    validateInt(icmp.id, `${field}.icmp.id`, 0, 65535);
    Object.assign(tuple.proto!, proto === N.IPPROTO_ICMP
      ? { icmpType: icmp.type, icmpCode: icmp.code, icmpId: icmp.id }
      : { icmpv6Type: icmp.type, icmpv6Code: icmp.code, icmpv6Id: icmp.id });
  }
  return { tuple, family: fam };
}

/** Checks a {@link ConntrackDeleteSpec} and builds the IPCTNL_MSG_CT_DELETE attributes; `op` names it in errors. */
export function deleteRequest(spec: unknown): { family: number; attrs: ConntrackAttrs; op: string } {
  if (spec === null || typeof spec !== 'object') throw new ValidationError('entry', spec, 'expected an object');
  const s = spec as ConntrackDeleteSpec;
  const proto = protocolNumber(s.protocol, 'protocol');
  if (s.family !== undefined && s.family !== 4 && s.family !== 6) throw new ValidationError('family', s.family, 'expected 4 or 6');
  const which = s.orig !== undefined ? 'orig' : s.reply !== undefined ? 'reply' : undefined;
  if (which === undefined) throw new ValidationError('orig', s.orig, 'give the orig (or the reply) tuple of the entry');
  const { tuple, family } = checkTuple(s[which], which, proto, s.family);
  const attrs: ConntrackAttrs = which === 'orig' ? { tupleOrig: tuple } : { tupleReply: tuple };
  if (s.zone !== undefined) {
    validateInt(s.zone, 'zone', 0, 65535);
    if (s.zone !== 0) attrs.zone = s.zone;
  }
  if (s.id !== undefined && s.id !== null) {
    validateInt(s.id, 'id', 0, 0xffffffff);
    attrs.id = s.id;
  }
  const t = s[which]!;
  const ports = PORTED.has(proto) ? `:${String(t.srcPort)} -> ${t.dst}:${String(t.dstPort)}` : ` -> ${t.dst}`;
  const op = `conntrack.delete ${String(protocolName(proto))} ${which} ${t.src}${ports}`;
  return { family: family === 4 ? C.AF_INET : C.AF_INET6, attrs, op };
}
