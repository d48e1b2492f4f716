/**
 * The live host as one run of the engine sees it: read once, indexed by identity, kept up to date
 * with what the run itself changes.
 *
 * Each table (links by name; addresses, routes, proxy neighbours by device and prefix; the QEMUs
 * by QMP socket) is read with one dump (or one scan of /proc) when a kind first asks for it, so
 * planning a host of N VMs costs a few dumps, not N of them. The kinds that read the view
 * ({@link KindOps.keepsLive}) tell it what they make and remove (`set`), so it stays the live
 * host's for the rest of the run; after a step of a kind that does not, the engine forgets the
 * whole view ({@link LiveView.forget}) and the next question reads it again. A run holds the state
 * directory's lock, so only things outside vmhost change the host meanwhile; what they change
 * after a table was read is not seen until the next run, as it was not before between one
 * kind's look and its change. The firewall's tables (what iptables-save, ip6tables-save and
 * ebtables-save print) are read by child processes: a run starts them early
 * ({@link LiveView.prefetchFirewall}; `vmhost plan` even before it reads the host file,
 * {@link prefetchFirewallSaves}) at a lower priority, so that they run while it computes what the
 * host file wants without taking the CPU from it, and the firewall kind forgets them when it
 * changes the rules. Where a look guards a
 * removal (owner marks), the removal itself names the exact object looked at (a link by index),
 * or fails harmlessly when it is gone.
 * @module
 */
import { allPids, cmdline, isAlive, type Address, type Link, type NetnsRef, type Neighbor, type Route, type Rtnl } from '@vmhost/net';
import { isQemuServing } from '@vmhost/kvm';
import { defaultStarter, save as firewallSave, type Starter } from '@vmhost/firewall';
import { getPriority, setPriority } from 'node:os';

/** What iptables-save, ip6tables-save and ebtables-save print in the run's namespace. */
export type FirewallSaves = Awaited<ReturnType<typeof firewallSave>>;

/** What the view keeps of a live address. */
export type LiveAddress = Pick<Address, 'address' | 'prefixLength' | 'protocol'>;
/** What the view keeps of a live route. */
export type LiveRoute = Pick<Route, 'to' | 'protocol'>;
/** What the view keeps of a live proxy neighbour. */
export type LiveNeighbor = Pick<Neighbor, 'to' | 'protocol'>;

/** The tables of the view and what each holds. */
export interface LiveTables {
  /** By name. */
  links: Link;
  /** By {@link liveKey}(device, `address/prefixLength`). */
  addresses: LiveAddress;
  /** Routes of the main table, by {@link liveKey}(device, `to`). */
  routes: LiveRoute;
  /** IPv6 proxy neighbours, by {@link liveKey}(device, address). */
  proxyNeighbors: LiveNeighbor;
}

/** A table of the view. */
export type LiveTable = keyof LiveTables;

/** The key of an object on device `dev` (an address, route or neighbour). */
export const liveKey = (dev: string, what: string): string => `${dev} ${what}`;

/** Keeps the first object of each key (the kernel may hold several routes of one prefix on a device). */
function index<T>(items: Iterable<[string, T]>): Map<string, T> {
  const m = new Map<string, T>();
  for (const [k, v] of items) if (!m.has(k)) m.set(k, v);
  return m;
}

/**
 * Firewall saves started before a run, by namespace ({@link prefetchFirewallSaves}): the first
 * view of that namespace to want them takes them instead of starting its own.
 */
const early = new Map<string, Promise<FirewallSaves>>();
const netnsKey = (netns: NetnsRef | undefined): string => (netns === undefined ? '' : JSON.stringify(netns));

/**
 * Starts reading the firewall's tables of `netns` now, for the next run there to take: `vmhost
 * plan` starts them before it reads the host file, so that the save programs run meanwhile. For a
 * read-only run only (a plan): what it shows was read a moment earlier. A failure is seen by the
 * run that takes them.
 */
export function prefetchFirewallSaves(netns?: NetnsRef): void {
  const p = backgroundSaves(netns);
  p.catch(() => undefined);
  early.set(netnsKey(netns), p);
}

/**
 * How much nicer than the run the save programs it starts ahead of need are: they yield the CPU
 * to the run that reads them early, whose own work comes first (on 2 cores, the three programs
 * beside the run's process otherwise delay its reads: docs/host-scale.md).
 */
export const PREFETCH_NICENESS = 10;

/** The firewall's saves read in the background: the save programs {@link PREFETCH_NICENESS} nicer than this process (at most 19). */
function backgroundSaves(netns: NetnsRef | undefined): Promise<FirewallSaves> {
  const at = netns !== undefined ? { netns } : {};
  return firewallSave({ ...at, starter: lowPriority(defaultStarter(at), Math.min(19, getPriority() + PREFETCH_NICENESS)) });
}

/** `start`, with each program it starts set to `niceness` right after it started (a program that exited already is left as it was). */
export function lowPriority(start: Starter, niceness: number): Starter {
  return (command, args) => {
    const p = start(command, args);
    try {
      if (p.pid !== undefined) setPriority(p.pid, niceness);
    } catch {
      /* exited already: nothing to lower */
    }
    return p;
  };
}

/** The live host of one run (see the module). */
export class LiveView {
  private readonly tables = new Map<LiveTable, Promise<Map<string, unknown>>>();
  private qemus: Map<string, number[]> | undefined;
  private saves: Promise<FirewallSaves> | undefined;

  /** @param netns The namespace `h` is in (the firewall's save programs run there). */
  constructor(
    private readonly h: Rtnl,
    private readonly netns?: NetnsRef,
  ) {}

  /**
   * The firewall's tables as the save programs print them, read once per run (until
   * {@link forget}`('firewall')`). A failed read is not kept.
   * @throws {FirewallError} (from @vmhost/firewall) when a save program fails.
   */
  firewall(): Promise<FirewallSaves> {
    return this.saves ?? this.keepSaves(() => firewallSave(this.netns !== undefined ? { netns: this.netns } : {}));
  }

  /**
   * Starts reading the firewall's tables now, in child processes at a lower priority, so that they
   * are read while the run does other work; a failure is seen by whoever asks {@link firewall} next.
   */
  prefetchFirewall(): void {
    if (this.saves === undefined) this.keepSaves(() => backgroundSaves(this.netns)).catch(() => undefined);
  }

  /**
   * Keeps the saves {@link prefetchFirewallSaves} started for this namespace, else those `read`
   * starts, as the run's saves; a failed read is not kept.
   */
  private keepSaves(read: () => Promise<FirewallSaves>): Promise<FirewallSaves> {
    const key = netnsKey(this.netns);
    const p = early.get(key) ?? read();
    early.delete(key);
    this.saves = p;
    p.catch(() => this.saves === p && (this.saves = undefined));
    return p;
  }

  private load<T extends LiveTable>(t: T): Promise<Map<string, LiveTables[T]>> {
    let p = this.tables.get(t);
    if (p === undefined) {
      p = this.read(t);
      this.tables.set(t, p);
      // a failed read is not kept: the next question reads again
      p.catch(() => this.tables.get(t) === p && this.tables.delete(t));
    }
    return p as Promise<Map<string, LiveTables[T]>>;
  }

  private async read(t: LiveTable): Promise<Map<string, unknown>> {
    switch (t) {
      case 'links':
        return new Map((await this.h.links.list()).map((l) => [l.name, l]));
      case 'addresses':
        return index((await this.h.addresses.list()).filter((a) => a.link !== null).map((a) => [liveKey(a.link!, `${a.address}/${a.prefixLength}`), a]));
      case 'routes':
        return index((await this.h.routes.list()).filter((r) => r.dev !== null).map((r) => [liveKey(r.dev!, r.to), r]));
      case 'proxyNeighbors':
        return index((await this.h.neighbors.list({ family: 6, proxy: true })).filter((n) => n.dev !== null).map((n) => [liveKey(n.dev!, n.to), n]));
    }
  }

  /** The object of table `t` under `key`, if the live host has it. */
  async get<T extends LiveTable>(t: T, key: string): Promise<LiveTables[T] | undefined> {
    return (await this.load(t)).get(key);
  }

  /** Every object of table `t`, by key. */
  async all<T extends LiveTable>(t: T): Promise<ReadonlyMap<string, LiveTables[T]>> {
    return this.load(t);
  }

  /** The link named `name`, if any. */
  link(name: string): Promise<Link | undefined> {
    return this.get('links', name);
  }

  /**
   * Tells the view that this run made (`value`) or removed (undefined) the object of table `t`
   * under `key`. A table not read yet stays unread (it will be read when asked for).
   */
  set<T extends LiveTable>(t: T, key: string, value: LiveTables[T] | undefined): void {
    const p = this.tables.get(t) as Promise<Map<string, LiveTables[T]>> | undefined;
    if (p === undefined) return;
    // settle the change on the table as read (a read in flight gets it when it lands)
    this.tables.set(
      t,
      p.then((m) => {
        if (value === undefined) m.delete(key);
        else m.set(key, value);
        return m;
      }),
    );
  }

  /**
   * Tells the view that this run deleted the links `names`: with them went the addresses, routes
   * and neighbours on them (those tables are read again when next asked), and the ports of a
   * bridge among them lost their master (the links too, then).
   */
  linksGone(names: readonly string[]): void {
    for (const t of ['addresses', 'routes', 'proxyNeighbors'] as const) this.tables.delete(t);
    const p = this.tables.get('links') as Promise<Map<string, Link>> | undefined;
    if (p === undefined) return;
    const next = p.then((m) => {
      for (const n of names) m.delete(n);
      const gone = new Set(names);
      if ([...m.values()].some((l) => l.master !== null && gone.has(l.master))) this.tables.delete('links');
      return m;
    });
    this.tables.set('links', next);
  }

  /** Forgets table `t` (every table when undefined): the next question reads it again. */
  forget(t?: LiveTable | 'qemus' | 'firewall'): void {
    if (t === undefined || t === 'qemus') this.qemus = undefined;
    if (t === undefined || t === 'firewall') this.saves = undefined;
    if (t === undefined) this.tables.clear();
    else if (t !== 'qemus' && t !== 'firewall') this.tables.delete(t);
  }

  /**
   * The pid of a live QEMU whose command line names the QMP socket `qmp`, from one scan of /proc
   * per run (kept up to date by {@link setQemu}), checked against its /proc/PID/cmdline now.
   */
  qemuServing(qmp: string): number | undefined {
    this.qemus ??= scanQemus();
    return this.qemus.get(qmp)?.find((pid) => isQemuServing(pid, qmp));
  }

  /** Tells the view that the QEMU of `qmp` is now `pid` (started by this run), or none (stopped). */
  setQemu(qmp: string, pid: number | undefined): void {
    if (this.qemus === undefined) return;
    if (pid === undefined) this.qemus.delete(qmp);
    else this.qemus.set(qmp, [pid]);
  }
}

/**
 * The socket paths a QEMU command-line argument may name (after `path=` or `unix:`, up to a comma
 * that is not doubled; `,,` is a comma), and the argument itself: a superset of what
 * `isQemuServing` accepts, which then decides.
 */
function qmpPaths(arg: string): string[] {
  const out = [arg];
  for (const m of arg.matchAll(/(?:path=|unix:)((?:[^,]|,,)*)/g)) out.push(m[1]!.replace(/,,/g, ','));
  return out;
}

/** Every live QEMU by the socket paths its command line names (one scan of /proc). */
function scanQemus(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const argv = cmdline(pid);
    if (!argv?.length || !(argv[0]!.split('/').pop() ?? '').startsWith('qemu-system-') || !isAlive(pid)) continue;
    for (const a of argv) for (const p of qmpPaths(a)) m.set(p, [...(m.get(p) ?? []), pid]);
  }
  return m;
}
