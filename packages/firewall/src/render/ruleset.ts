/**
 * The generator: a validated model becomes the owner's private chains and the jumps into them, per
 * family and table, every rule written in the exact canonical text that iptables-save prints (so
 * the state read back compares equal, string for string). Pure and deterministic.
 * @module
 */
import type { Family, TableFamily } from '../model.js';
import type { NormalizedForward, NormalizedModel, NormalizedPort, NormalizedRule } from '../validate.js';
import { CHAIN_PREFIX } from '../validate.js';
import { portBridgeRules, portNdDispatch, portNdRules } from './bridge.js';
import { ownerComment, saveString } from './dialect.js';

export { ownerComment, restoreText, saveString } from './dialect.js';

/** The tables vmhost writes to: iptables `filter`, `nat` and `raw` (IPv6 only); ebtables `nat`. */
export type TableName = 'filter' | 'nat' | 'raw';

/** One private chain and its rules (each the text after `-A CHAIN `). */
export interface ChainSpec {
  name: string;
  rules: string[];
  /** ebtables only: the chain's policy (`DROP` for a port's chain; default `RETURN`). */
  policy?: string;
}

/** A jump from a built-in chain into a private chain (text after `-A CHAIN `, with the ownership comment). */
export interface JumpSpec {
  /** The built-in chain, e.g. `FORWARD`. */
  chain: string;
  /** e.g. `-m comment --comment "vmhost:lab" -j VMHOST-lab-FWD`. */
  spec: string;
}

/** What one owner has in one table. */
export interface TableSpec {
  name: TableName;
  chains: ChainSpec[];
  jumps: JumpSpec[];
}

/** What one owner has in one family (tables without content are left out). */
export interface FamilySpec {
  family: TableFamily;
  tables: TableSpec[];
}

/** The owner's complete rule set. */
export interface OwnedRuleset {
  owner: string;
  ipv4: FamilySpec;
  ipv6: FamilySpec;
  /** ebtables: the VM ports' chains. */
  bridge: FamilySpec;
}

/** The iptables tables in the order they are written. */
export const TABLES: readonly TableName[] = ['filter', 'nat', 'raw'];

/** Built-in chains of each table that vmhost jumps from, with the suffix of the private chain. */
export const HOOKS: Record<TableName, ReadonlyArray<readonly [builtin: string, suffix: string]>> = {
  filter: [
    ['FORWARD', 'FWD'],
    ['INPUT', 'IN'],
    ['OUTPUT', 'OUT'],
  ],
  nat: [
    ['PREROUTING', 'PRE'],
    ['OUTPUT', 'OUT'],
    ['POSTROUTING', 'POST'],
  ],
  raw: [['PREROUTING', 'RAW']],
};

/**
 * Group chain kinds: D = DNAT from PREROUTING, L = DNAT from nat OUTPUT, F = FORWARD accepts,
 * H = hairpin/localhost SNAT, N = a port's neighbour discovery checks (ip6tables raw),
 * S = a port's anti-spoofing chain (ebtables nat).
 */
export const GROUP_KINDS = { D: 'nat', L: 'nat', F: 'filter', H: 'nat', N: 'raw', S: 'nat' } as const;

/** The name of an owner's private chain, e.g. `VMHOST-lab-FWD`. */
export function ownerChain(owner: string, suffix: string): string {
  return `${CHAIN_PREFIX}${owner}-${suffix}`;
}

/** The name of a group chain, e.g. `VMHOST-lab-web-D`. */
export function groupChain(owner: string, group: string, kind: keyof typeof GROUP_KINDS): string {
  return `${CHAIN_PREFIX}${owner}-${group}-${kind}`;
}


/** Pieces of one rule, assembled in iptables-save's order. */
interface RuleParts {
  src?: string;
  notDst?: string;
  dst?: string;
  in?: string;
  out?: string;
  proto?: string;
  matches?: string[];
  comment?: string;
  target: string;
}

function ruleText(p: RuleParts): string {
  const parts: string[] = [];
  if (p.src) parts.push(`-s ${p.src}`);
  if (p.notDst) parts.push(`! -d ${p.notDst}`);
  if (p.dst) parts.push(`-d ${p.dst}`);
  if (p.in) parts.push(`-i ${p.in}`);
  if (p.out) parts.push(`-o ${p.out}`);
  if (p.proto) parts.push(`-p ${p.proto}`);
  for (const m of p.matches ?? []) parts.push(m);
  if (p.comment) parts.push(`-m comment --comment ${saveString(p.comment)}`);
  parts.push(`-j ${p.target}`);
  return parts.join(' ');
}

function portText([a, b]: readonly [number, number], sep = ':'): string {
  return a === b ? String(a) : `${a}${sep}${b}`;
}

const LOOPBACK: Record<Family, string> = { 4: '127.0.0.0/8', 6: '::1/128' };
const REJECT: Record<Family, string> = { 4: 'REJECT --reject-with icmp-port-unreachable', 6: 'REJECT --reject-with icmp6-port-unreachable' };
const ICMPV6_FORWARD = [1, 2, 3, 4, 128, 129];
const ICMPV6_INPUT = [1, 2, 3, 4, 128, 129, 130, 131, 132, 133, 134, 135, 136, 143];

function userRule(r: NormalizedRule, family: Family): string {
  const matches: string[] = [];
  if ((r.protocol === 'tcp' || r.protocol === 'udp') && (r.port || r.sourcePort)) {
    let m = `-m ${r.protocol}`;
    if (r.sourcePort) m += ` --sport ${portText(r.sourcePort)}`;
    if (r.port) m += ` --dport ${portText(r.port)}`;
    matches.push(m);
  }
  if (r.state) matches.push(`-m conntrack --ctstate ${r.state.join(',')}`);
  const target = r.action === 'reject' ? REJECT[family] : r.action.toUpperCase();
  return ruleText({
    ...(r.source ? { src: r.source } : {}),
    ...(r.destination ? { dst: r.destination } : {}),
    ...(r.inInterface ? { in: r.inInterface } : {}),
    ...(r.outInterface ? { out: r.outInterface } : {}),
    ...(r.protocol ? { proto: r.protocol } : {}),
    matches,
    ...(r.comment ? { comment: r.comment } : {}),
    target,
  });
}

function dnatTarget(f: NormalizedForward): string {
  const span = f.port[1] - f.port[0];
  const host = f.family === 6 ? `[${f.to}]` : f.to;
  if (span === 0) return `DNAT --to-destination ${host}:${f.toPort}`;
  if (f.toPort === f.port[0]) return `DNAT --to-destination ${f.to}`;
  return `DNAT --to-destination ${host}:${f.toPort}-${f.toPort + span}/${f.port[0]}`;
}

/** The rules of each kind of group chain (or of the owner chains, for ungrouped forwards). */
interface ForwardChains {
  D: string[];
  L: string[];
  F: string[];
  H: string[];
  N: string[];
}

const LOCAL = '-m addrtype --dst-type LOCAL';
const DNAT_STATE = '-m conntrack --ctstate DNAT';

/**
 * Appends the rules of one forward to `out`. Hot at 10,000 forwards, so each rule is one template
 * (no intermediate objects); the text is exactly what {@link ruleText} would give for the same
 * parts, i.e. iptables-save's order (`-s ! -d -d -i -o -p`, matches, comment, target).
 */
function forwardRules(f: NormalizedForward, lanIf: string | undefined, lanSubnets: readonly string[] | undefined, out: ForwardChains): void {
  const p = f.protocol;
  const dport = `-m ${p} --dport ${f.port[0] === f.port[1] ? f.port[0] : `${f.port[0]}:${f.port[1]}`}`;
  const last = f.toPort + f.port[1] - f.port[0];
  const toDport = `-m ${p} --dport ${last === f.toPort ? f.toPort : `${f.toPort}:${last}`}`;
  const cm = f.comment ? ` -m comment --comment ${saveString(f.comment)}` : '';
  const tail = `${cm} -j ${dnatTarget(f)}`;
  const dst = f.destination;
  // PREROUTING: to the given address, or to any local one
  const match = dst ? `-p ${p} ${dport}${tail}` : `-p ${p} ${LOCAL} ${dport}${tail}`;
  const d = dst ? `-d ${dst} ` : '';
  out.D.push(f.inInterface ? `${d}-i ${f.inInterface} ${match}` : `${d}${match}`);
  if (f.hairpin && f.inInterface !== undefined && lanIf !== undefined && f.inInterface !== lanIf) out.D.push(`${d}-i ${lanIf} ${match}`);
  // nat OUTPUT: the host itself
  if (f.fromHost) {
    if (dst) {
      out.L.push(`-d ${dst} -p ${p} ${dport}${tail}`);
      if (f.localhost) out.L.push(`-d ${LOOPBACK[4]} -p ${p} ${dport}${tail}`);
    } else if (f.localhost) {
      out.L.push(`-p ${p} ${LOCAL} ${dport}${tail}`);
    } else {
      out.L.push(`! -d ${LOOPBACK[f.family]} -p ${p} ${LOCAL} ${dport}${tail}`);
    }
  }
  // FORWARD accept of what this DNAT made, and the hairpin/localhost SNAT
  const toHost = `-d ${f.to}/${f.family === 4 ? 32 : 128} -p ${p} ${toDport} ${DNAT_STATE}${cm}`;
  out.F.push(`${toHost} -j ACCEPT`);
  if (f.hairpin && lanSubnets) for (const s of lanSubnets) out.H.push(`-s ${s} ${toHost} -j MASQUERADE`);
  if (f.localhost) out.H.push(`-s ${LOOPBACK[4]} ${toHost} -j MASQUERADE`);
}

function familyRuleset(m: NormalizedModel, family: Family): FamilySpec {
  const o = m.owner;
  const lan = m.lan && m.lan.subnets[family].length > 0 ? m.lan : undefined;
  const forwards = m.portForwards.filter((f) => f.family === family);

  // Ungrouped forwards inline in the owner chains; grouped ones in chains of their own.
  const inline: ForwardChains = { D: [], L: [], F: [], H: [], N: [] };
  const groups = new Map<string, ForwardChains>();
  const lanIf = m.lan?.interface;
  const lanSubnets = m.lan?.subnets[family];
  for (const f of forwards) {
    let dest = inline;
    if (f.group !== undefined) {
      const g = groups.get(f.group);
      if (g) dest = g;
      else groups.set(f.group, (dest = { D: [], L: [], F: [], H: [], N: [] }));
    }
    forwardRules(f, lanIf, lanSubnets, dest);
  }
  // grouped forward rules after their group's port-forward accepts, in the group's F chain
  const shared: NormalizedRule[] = [];
  for (const r of m.forward) {
    if (!r.families.includes(family)) continue;
    if (r.group === undefined) {
      shared.push(r);
      continue;
    }
    let g = groups.get(r.group);
    if (!g) groups.set(r.group, (g = { D: [], L: [], F: [], H: [], N: [] }));
    g.F.push(userRule(r, family));
  }
  // raw PREROUTING (IPv6): each isolated port's neighbour solicitations and advertisements to its group's N chain
  const raw: string[] = [];
  if (family === 6) {
    for (const p of isolatedPorts(m)) {
      let g = groups.get(p.group);
      if (!g) groups.set(p.group, (g = { D: [], L: [], F: [], H: [], N: [] }));
      g.N.push(...portNdRules(p));
      raw.push(...portNdDispatch(p, groupChain(o, p.group, 'N')));
    }
  }
  const groupNames = [...groups.keys()].sort();
  const groupJumps = (kind: 'D' | 'L' | 'F' | 'H'): string[] =>
    groupNames.filter((g) => (groups.get(g)?.[kind].length ?? 0) > 0).map((g) => `-j ${groupChain(o, g, kind)}`);

  // filter FORWARD
  const fwd: string[] = [];
  if (family === 6 && m.allowIcmpv6) {
    for (const t of ICMPV6_FORWARD) fwd.push(`-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`);
  }
  if (lan?.bridgeLocal) fwd.push(ruleText({ in: lan.interface, out: lan.interface, target: 'ACCEPT' }));
  fwd.push(...inline.F, ...groupJumps('F'));
  for (const r of shared) fwd.push(userRule(r, family));
  if (lan?.isolate) fwd.push(ruleText({ out: lan.interface, target: 'DROP' }));
  if (fwd.length > 0 && m.established) fwd.unshift('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');

  // filter INPUT
  const inp: string[] = [];
  if (family === 6 && m.allowIcmpv6) {
    for (const t of ICMPV6_INPUT) inp.push(`-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`);
  }
  if (lan?.dhcp) {
    const port = family === 4 ? 67 : 547;
    inp.push(ruleText({ in: lan.interface, proto: 'udp', matches: [`-m udp --dport ${port}`], target: 'ACCEPT' }));
  }
  if (lan?.dns) {
    inp.push(ruleText({ in: lan.interface, proto: 'udp', matches: ['-m udp --dport 53'], target: 'ACCEPT' }));
    inp.push(ruleText({ in: lan.interface, proto: 'tcp', matches: ['-m tcp --dport 53'], target: 'ACCEPT' }));
  }
  for (const r of m.input) if (r.families.includes(family)) inp.push(userRule(r, family));

  // filter OUTPUT
  const out: string[] = [];
  for (const r of m.output) if (r.families.includes(family)) out.push(userRule(r, family));

  // nat
  const pre = [...inline.D, ...groupJumps('D')];
  const natOut = [...inline.L, ...groupJumps('L')];
  const post = [...inline.H, ...groupJumps('H')];
  for (const q of m.masquerade) {
    if (q.family !== family) continue;
    const exempt = family === 4 ? ['224.0.0.0/4', '255.255.255.255/32'] : ['ff00::/8'];
    for (const d of exempt) post.push(ruleText({ src: q.source, dst: d, target: 'RETURN' }));
    const target = q.toSource ? `SNAT --to-source ${q.toSource}` : 'MASQUERADE';
    post.push(ruleText({ src: q.source, notDst: q.source, out: q.outInterface, ...(q.comment ? { comment: q.comment } : {}), target }));
  }

  const content: Record<TableName, Record<string, string[]>> = {
    filter: { FWD: fwd, IN: inp, OUT: out },
    nat: { PRE: pre, OUT: natOut, POST: post },
    raw: { RAW: raw },
  };
  const tables: TableSpec[] = [];
  for (const name of TABLES) {
    const chains: ChainSpec[] = [];
    const jumps: JumpSpec[] = [];
    for (const [builtin, suffix] of HOOKS[name]) {
      const rules = content[name][suffix] ?? [];
      if (rules.length === 0) continue;
      const chain = ownerChain(o, suffix);
      chains.push({ name: chain, rules });
      jumps.push({ chain: builtin, spec: `-m comment --comment ${saveString(ownerComment(o))} -j ${chain}` });
    }
    for (const g of groupNames) {
      for (const kind of ['D', 'F', 'H', 'L', 'N'] as const) {
        if (GROUP_KINDS[kind] !== name) continue;
        const rules = groups.get(g)?.[kind] ?? [];
        if (rules.length > 0) chains.push({ name: groupChain(o, g, kind), rules });
      }
    }
    if (chains.length > 0) tables.push({ name, chains, jumps });
  }
  return { family, tables };
}

/** The ports with isolation on, by group name (the order of the model does not matter). */
function isolatedPorts(m: NormalizedModel): NormalizedPort[] {
  return m.ports.filter((p) => p.isolation).sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
}

/** The ebtables part: a DROP-policy chain per isolated port, jumped to from nat PREROUTING. */
function bridgeRuleset(m: NormalizedModel): FamilySpec {
  const ports = isolatedPorts(m);
  if (ports.length === 0) return { family: 'bridge', tables: [] };
  const chains: ChainSpec[] = [];
  const jumps: JumpSpec[] = [];
  for (const p of ports) {
    const name = groupChain(m.owner, p.group, 'S');
    chains.push({ name, rules: portBridgeRules(p), policy: 'DROP' });
    jumps.push({ chain: 'PREROUTING', spec: `-i ${p.interface} -j ${name}` });
  }
  return { family: 'bridge', tables: [{ name: 'nat', chains, jumps }] };
}

/** Builds the owner's rule set from a validated model. Pure. */
export function buildRuleset(m: NormalizedModel): OwnedRuleset {
  return { owner: m.owner, ipv4: familyRuleset(m, 4), ipv6: familyRuleset(m, 6), bridge: bridgeRuleset(m) };
}
