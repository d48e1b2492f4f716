/**
 * The kernel's side of `vmhost run`'s drift watch, in the host's network namespace: an rtnetlink
 * monitor (links, addresses, routes, neighbours; an overrun means notifications were lost) and
 * an nf_tables monitor (NFT_MSG_NEWGEN: every committed ruleset change, iptables-nft's and
 * ebtables-nft's included, with the pid and name of the process that made it). With legacy
 * iptables no NEWGEN is sent for iptables changes: the caller then compares the firewall on a
 * timer (@vmhost/firewall's `iptablesBackend` tells which).
 * @module
 */
import { Netfilter, procStat, Rtnl, type NetnsRef, type NftEvent, type NftMonitor, type RtnlEvent, type RtnlMonitor } from '@vmhost/net';

/** The names (comm, 15 bytes) of the programs that commit vmhost's own firewall batches. */
const OWN_PROGRAMS = new Set(['iptables-restor', 'ip6tables-resto', 'ebtables-nft-re', 'iptables-nft-re', 'ip6tables-nft-r', 'ebtables-resto']);

/**
 * Whether a generation event was made by this process: by one of its children (still there to be
 * asked), or by one of the programs vmhost commits with, at or before `ownGeneration` (the
 * generation read after this process's last change).
 */
export function isOwnChange(ev: Extract<NftEvent, { type: 'generation' }>, ownGeneration: number | undefined): boolean {
  if (ev.pid !== null && procStat(ev.pid)?.ppid === process.pid) return true;
  return ev.processName !== null && OWN_PROGRAMS.has(ev.processName) && ownGeneration !== undefined && ev.id <= ownGeneration;
}

/** What {@link NetWatch} reports. */
export interface NetWatchHooks {
  /** A notification of links, addresses, routes or neighbours (or an overrun). */
  onRtnl(ev: RtnlEvent): void;
  /** An nf_tables generation event (or an overrun). */
  onNft(ev: NftEvent): void;
  /** A monitor failed (the caller re-plans everything and carries on without it). */
  onError(what: string, err: unknown): void;
}

/** The monitors of one namespace. */
export class NetWatch {
  private constructor(
    private readonly rtnl: Rtnl,
    private readonly rtnlMonitor: RtnlMonitor,
    private readonly nf: Netfilter | undefined,
    private readonly nftMonitor: NftMonitor | undefined,
  ) {}

  /**
   * Opens the monitors in `netns` (default: this namespace) and starts reading them. The nf_tables
   * monitor is optional: when Netfilter cannot be opened, `onError` says so and only rtnetlink is
   * watched.
   */
  static async open(netns: NetnsRef | undefined, hooks: NetWatchHooks): Promise<NetWatch> {
    const where = netns !== undefined ? { netns } : {};
    const rtnl = await Rtnl.open(where);
    let rm: RtnlMonitor;
    try {
      rm = rtnl.monitor(['link', 'address', 'route', 'neighbor']);
    } catch (err) {
      rtnl.close();
      throw err;
    }
    let nf: Netfilter | undefined;
    let nm: NftMonitor | undefined;
    try {
      nf = await Netfilter.open(where);
      nm = nf.nftables.monitor();
    } catch (err) {
      nf?.close();
      nf = undefined;
      hooks.onError('the nf_tables monitor', err);
    }
    const w = new NetWatch(rtnl, rm, nf, nm);
    void w.pump(rm, hooks.onRtnl, (err) => hooks.onError('the rtnetlink monitor', err));
    if (nm) void w.pump(nm, hooks.onNft, (err) => hooks.onError('the nf_tables monitor', err));
    return w;
  }

  private async pump<T>(m: AsyncIterable<T>, on: (ev: T) => void, fail: (err: unknown) => void): Promise<void> {
    try {
      for await (const ev of m) on(ev);
    } catch (err) {
      if (!this.closed) fail(err);
    }
  }

  private closed = false;

  /** The current nf_tables generation, or undefined without the nf_tables handle. */
  async generation(): Promise<number | undefined> {
    if (!this.nf) return undefined;
    try {
      return (await this.nf.nftables.generation()).id;
    } catch {
      return undefined;
    }
  }

  /** Whether generation events are watched. */
  get watchesNft(): boolean {
    return this.nftMonitor !== undefined;
  }

  /** The rtnetlink handle of the namespace (link counters for the metrics, the bridge's neighbours). */
  get handle(): Rtnl {
    return this.rtnl;
  }

  /** Closes the monitors and handles. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rtnlMonitor.close();
    this.nftMonitor?.close();
    this.nf?.close();
    this.rtnl.close();
  }
}
