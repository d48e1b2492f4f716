/**
 * Whose is a live object the host file wants (docs/host-owners.md): this host's, another host's,
 * or nobody's that vmhost knows, from the kernel's marks first and the state files second.
 *
 * - a link: its owner mark (ifalias `vmhost:<owner>`, marks.ts); an unmarked link is this host's
 *   when its state file records it as adopted (same interface index), another host's when that
 *   host's state file does, else not created by vmhost.
 * - an address, route or proxy neighbour (protocol 118 names vmhost, not which host): the owner of
 *   the link it sits on when that link carries a mark; on an unmarked link (the uplink, an adopted
 *   bridge), the host whose state file records it; else not created by vmhost (or, with protocol
 *   118, made by a vmhost host that no longer records it).
 * - a published port: another host whose recorded firewall model forwards the same port.
 *
 * The other hosts are the owners of the namespace's shared record (shared.ts), their state files
 * read strictly with the trust checks. {@link findConflicts} turns what it finds into the plan's
 * conflicts (apply refuses: another host's object is never changed or deleted, and an unmarked one
 * only when the host file adopts it) and the set of entries to adopt.
 * @module
 */
import type { Link } from '@vmhost/net';
import type { PortForward } from '@vmhost/firewall';
import { HostStateError } from '../errors.js';
import type { Conflict } from '../types.js';
import type { Ctx } from './context.js';
import type { Desired, Entry } from './entries.js';
import { isMarkedProtocol, MARK_PROTOCOL } from './marks.js';
import type { StateFile, StateRecord } from './records.js';
import { ownerState, readShared } from './shared.js';

/** Who holds a live object. */
export type Holder =
  | { is: 'none' }
  | { is: 'self' }
  | { is: 'other'; owner: string; why: string }
  | { is: 'unmarked'; why: string };

/** The host named by an owner mark, if `alias` is one. */
export function ownerOfMark(alias: string | null): string | undefined {
  return /^vmhost:([A-Za-z0-9_]{1,16})$/.exec(alias ?? '')?.[1];
}

/** The records of the other hosts of the namespace, by id (an id may be recorded by several). */
export type OthersRecords = Map<string, Array<{ owner: string; record: StateRecord }>>;

/** Reads the records of the namespace's other hosts (those whose state cannot be read are left out). */
export function othersRecords(ctx: Pick<Ctx, 'netns' | 'dir'>): OthersRecords {
  const out: OthersRecords = new Map();
  let owners: Record<string, string>;
  try {
    owners = readShared(ctx.netns).owners;
  } catch (err) {
    if (err instanceof HostStateError) return out;
    throw err;
  }
  for (const [dir, owner] of Object.entries(owners)) {
    if (dir === ctx.dir) continue;
    const st: StateFile | 'gone' | 'unknown' = ownerState(dir, owner);
    if (typeof st === 'string') continue;
    for (const record of st.entries) {
      const list = out.get(record.id) ?? [];
      list.push({ owner, record });
      out.set(record.id, list);
    }
  }
  return out;
}

/** What the host file wants, said for people: `bridge br0`, `TAP abc-web`, `address ... on br0`. */
export function objectText(e: Entry): string {
  switch (e.kind) {
    case 'link':
      return `${e.data.kind === 'tap' ? 'TAP' : e.data.kind} ${e.data.name}`;
    case 'address':
      return `address ${e.data.cidr} on ${e.data.dev}`;
    case 'route':
      return `route ${e.data.to} dev ${e.data.dev}`;
    case 'proxyNeighbor':
      return `proxy neighbour ${e.data.to} on ${e.data.dev}`;
    default:
      return e.id;
  }
}

/** Whether two forwards' public ports meet (same protocol, ranges overlapping, destinations not told apart). */
function portsMeet(a: PortForward, b: PortForward): boolean {
  if ((a.protocol ?? 'tcp') !== (b.protocol ?? 'tcp')) return false;
  if (a.destination !== undefined && b.destination !== undefined && a.destination !== b.destination) return false;
  const r = (p: PortForward['port']): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);
  const [a0, a1] = r(a.port);
  const [b0, b1] = r(b.port);
  return a0 <= b1 && b0 <= a1;
}

const portText = (f: PortForward): string => `${f.protocol ?? 'tcp'} port ${typeof f.port === 'number' ? f.port : `${f.port[0]}-${f.port[1]}`}`;

/** The live view one plan judges by: the links, the other hosts' records. */
export class OwnerView {
  private own: Map<string, StateRecord> | undefined;
  private others: OthersRecords | undefined;
  /** Dumps of the namespace, one per kind and family, read once per view and indexed by what {@link holderOf} looks up. */
  private readonly dumps = new Map<string, Promise<Map<string, unknown[]>>>();

  constructor(
    private readonly ctx: Ctx,
    private readonly state: StateFile,
  ) {}

  /** The link `name` from the run's view (live.ts: one dump of the links per run). */
  private link(name: string): Promise<Link | undefined> {
    return this.ctx.live.link(name);
  }

  /**
   * The objects of dump `key` (read once) whose `by` is `value`, in the dump's order: each entry
   * looks up its own, so a 300-VM host's routes are not each compared with every route.
   */
  private async dump<T>(key: string, read: () => Promise<T[]>, by: (x: T) => string, value: string): Promise<readonly T[]> {
    let d = this.dumps.get(key);
    if (!d) {
      d = read().then((all) => {
        const m = new Map<string, T[]>();
        for (const x of all) {
          const k = by(x);
          const list = m.get(k);
          if (list) list.push(x);
          else m.set(k, [x]);
        }
        return m as Map<string, unknown[]>;
      });
      this.dumps.set(key, d);
    }
    return ((await d).get(value) ?? []) as T[];
  }

  /** The other hosts' records of `id`. */
  recordedByOthers(id: string): Array<{ owner: string; record: StateRecord }> {
    this.others ??= othersRecords(this.ctx);
    return this.others.get(id) ?? [];
  }

  private ownRecord(id: string): StateRecord | undefined {
    this.own ??= new Map(this.state.entries.map((r) => [r.id, r]));
    return this.own.get(id);
  }

  /** Whose the link `name` is (see the module). */
  async linkHolder(name: string): Promise<Holder> {
    const l = await this.link(name);
    if (!l) return { is: 'none' };
    const marked = ownerOfMark(l.alias);
    if (marked !== undefined) {
      if (l.alias === this.ctx.mark && name !== this.ctx.host.uplink) return { is: 'self' };
      if (marked !== this.ctx.host.name) return { is: 'other', owner: marked, why: `its owner mark: ifalias "${l.alias}"` };
    }
    const own = this.ownRecord(`link:${name}`);
    if (own?.kind === 'link' && own.adopted && (own.ifindex === null || own.ifindex === l.index)) return { is: 'self' };
    const other = this.recordedByOthers(`link:${name}`)[0];
    if (other) return { is: 'other', owner: other.owner, why: `host ${other.owner}'s state file records it${other.record.kind === 'link' && other.record.adopted ? ' as adopted' : ''}` };
    return { is: 'unmarked', why: l.alias ? `not created by vmhost (its ifalias is "${l.alias}")` : 'not created by vmhost' };
  }

  /**
   * Whose an address, route or proxy neighbour (`id` as this host would record it) on the link
   * `dev` is, `protocol` its protocol (see the module).
   */
  async onLinkHolder(dev: string, id: string, protocol: string | number | null): Promise<Holder> {
    const l = await this.link(dev);
    const marked = ownerOfMark(l?.alias ?? null);
    if (marked !== undefined && dev !== this.ctx.host.uplink) {
      if (marked === this.ctx.host.name) return { is: 'self' };
      return { is: 'other', owner: marked, why: `it is on host ${marked}'s link ${dev}` };
    }
    if (this.ownRecord(id)) return { is: 'self' };
    const other = this.recordedByOthers(id)[0];
    if (other) return { is: 'other', owner: other.owner, why: `host ${other.owner}'s state file records it` };
    if (isMarkedProtocol(protocol)) return { is: 'unmarked', why: `made by vmhost (protocol ${MARK_PROTOCOL}) but recorded by no host of this namespace` };
    return { is: 'unmarked', why: 'not created by vmhost' };
  }

  /** Whose the live object an entry names is, and whether it sits where the entry wants it (else it is in the way elsewhere). */
  async holderOf(e: Entry): Promise<{ holder: Holder; elsewhere?: string }> {
    const h = this.ctx.h;
    switch (e.kind) {
      case 'link':
        return { holder: await this.linkHolder(e.data.name) };
      case 'address': {
        const ipOf = e.data.cidr.split('/')[0]!;
        const family = ipOf.includes(':') ? 6 : 4;
        const all = await this.dump(`address${family}`, () => h.addresses.list({ family }), (a) => a.address, ipOf);
        const here = all.find((a) => a.link === e.data.dev && a.cidr === e.data.cidr) ?? all.find((a) => a.link === e.data.dev);
        const a = here ?? all[0];
        if (!a || a.link === null) return { holder: { is: 'none' } };
        const holder = await this.onLinkHolder(a.link, `address:${a.link}:${a.cidr}`, a.protocol);
        return here ? { holder } : { holder, elsewhere: `address ${a.cidr} on ${a.link}` };
      }
      case 'route': {
        const family = e.data.to.includes(':') ? 6 : 4;
        const all = (await this.dump(`route${family}`, () => h.routes.list({ family }), (r) => r.to, e.data.to)).filter((r) => r.dev !== null);
        const here = all.find((r) => r.dev === e.data.dev);
        const r = here ?? all[0];
        if (!r) return { holder: { is: 'none' } };
        const holder = await this.onLinkHolder(r.dev!, `route:${r.to}`, r.protocol);
        return here ? { holder } : { holder, elsewhere: `route ${r.to} dev ${r.dev}` };
      }
      case 'proxyNeighbor': {
        if (!(await this.link(e.data.dev))) return { holder: { is: 'none' } };
        const dev = e.data.dev;
        const n = (await this.dump(`proxy:${dev}`, () => h.neighbors.list({ family: 6, proxy: true, dev }), (x) => x.to, e.data.to))[0];
        if (!n) return { holder: { is: 'none' } };
        return { holder: await this.onLinkHolder(e.data.dev, e.id, n.protocol) };
      }
      default:
        return { holder: { is: 'none' } };
    }
  }

  /** The published ports of `e` (the firewall entry) that another host forwards already. */
  portConflicts(e: Entry): Conflict[] {
    if (e.kind !== 'firewall') return [];
    const out: Conflict[] = [];
    this.others ??= othersRecords(this.ctx);
    for (const [, list] of this.others) {
      for (const { owner, record } of list) {
        if (record.kind !== 'firewall') continue;
        for (const want of e.data.model.portForwards ?? []) {
          const theirs = (record.data.model.portForwards ?? []).find((f) => portsMeet(want, f));
          if (!theirs) continue;
          out.push({ id: e.id, object: portText(want), owner, message: `${portText(want)} is published by host ${owner} (to ${theirs.to}${theirs.toPort !== undefined ? `:${theirs.toPort}` : ''}): a port is forwarded to one VM only` });
        }
      }
    }
    return out;
  }
}

/**
 * The conflicts of the entries `want` with what is live (see the module), and the ids of the
 * entries whose unmarked objects the host file adopts.
 */
export async function findConflicts(ctx: Ctx, state: StateFile, want: readonly Desired[]): Promise<{ conflicts: Conflict[]; adopt: Set<string> }> {
  const view = new OwnerView(ctx, state);
  const conflicts: Conflict[] = [];
  const adopt = new Set<string>();
  for (const { entry } of want) {
    if (entry.kind === 'firewall') {
      conflicts.push(...view.portConflicts(entry));
      continue;
    }
    if (entry.kind !== 'link' && entry.kind !== 'address' && entry.kind !== 'route' && entry.kind !== 'proxyNeighbor') continue;
    const { holder, elsewhere } = await view.holderOf(entry);
    const object = objectText(entry);
    if (holder.is === 'none' || holder.is === 'self') continue;
    const where = elsewhere !== undefined ? `${object}: ${elsewhere} is there` : object;
    if (holder.is === 'other') {
      conflicts.push({ id: entry.id, object: elsewhere ?? object, owner: holder.owner, message: `${where} belongs to host ${holder.owner} (${holder.why})` });
      continue;
    }
    const a = elsewhere === undefined ? entry.adopt : undefined;
    if (a?.allowed) {
      adopt.add(entry.id);
      continue;
    }
    const conflict: Conflict = { id: entry.id, object: elsewhere ?? object, owner: null, message: `${where} exists and was ${holder.why}${a ? ` (set ${a.field}: true to adopt it)` : ''}` };
    if (a) conflict.adopt = a.field;
    conflicts.push(conflict);
  }
  return { conflicts, adopt };
}
