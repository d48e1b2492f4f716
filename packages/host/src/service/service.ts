/**
 * `vmhost run`: the host kept as its file declares, until stopped (docs/host-service.md).
 *
 * It applies the host file, then repairs what changes, from events rather than polls: an
 * rtnetlink monitor (a link, address, route or proxy neighbour of the host's deleted or changed:
 * only that entry is applied again; a burst is gathered first; an overrun re-plans everything),
 * nf_tables generation events (a change by another process: the owner's chains are compared and
 * only the owner's batch re-applied; legacy iptables: a periodic comparison), the VMs' QEMU and
 * the services by pidfd and QMP events (supervise.ts), the host file by inotify (and SIGHUP: read
 * again and applied; a bad file is reported and the running host stays). Every change goes through
 * the engine, one operation at a time (the lane): `apply`/`applyEntries` (engine/run.ts), with
 * the engine's write-ahead record. The service holds the state directory's lock for its whole
 * life: one `run` per state directory, and no `apply` or `down` of others meanwhile.
 * @module
 */
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Server } from 'node:http';
import { procStat, type NftEvent, type RtnlEvent } from '@vmhost/net';
import { iptablesBackend } from '@vmhost/firewall';
import { dataDirFor, desiredOptions, stateDirFor } from '../engine/context.js';
import { desiredState } from '../engine/desired.js';
import { applyEntries } from '../engine/run.js';
import { checkStateDir, lock } from '../engine/state-dir.js';
import type { HostOptions, Report, ResolvedHost } from '../types.js';
import { RepairBatch } from './batch.js';
import { driftIndex, driftOf, type DriftIndex } from './drift.js';
import { Learner, type LearnChange } from './learn6.js';
import { errorFields, event, stepsText } from './log.js';
import { parseMetricsAddress, serveMetrics } from './metrics.js';
import { collectMetrics } from './service-metrics.js';
import { isOwnChange, NetWatch } from './net-watch.js';
import { writeServiceStatus } from './status-file.js';
import { Supervisor } from './supervise.js';
import { DEFAULT_TUNING, type FirewallWatch, type RunHostOptions, type ServiceEvent, type ServiceStatusFile, type ServiceTuning } from './types.js';
import { fileHash, watchFiles, type DirWatch } from './watchers.js';

type StepDone = Report['steps'][number];

/** The service of one host; {@link runHost} runs one until its signal is aborted. */
export class HostService {
  #host: ResolvedHost;
  readonly #o: RunHostOptions;
  /** The timings and limits in force (the defaults with `options.tuning` over them). */
  readonly tuning: ServiceTuning;
  #dir = '';
  readonly #learner: Learner;
  #ix!: DriftIndex;
  #net: NetWatch | undefined;
  readonly #sup: Supervisor;
  #chain: Promise<void> = Promise.resolve();
  #busy = false;
  #touched = new Set<string>();
  #stopping = false;
  readonly #stop = new AbortController();
  // the repair batch
  readonly #batch: RepairBatch;
  // the firewall
  #fwWatch: FirewallWatch = 'events';
  #ownGen: number | undefined;
  #deferredNft: NftEvent[] = [];
  #poll: NodeJS.Timeout | undefined;
  #neighborPoll: NodeJS.Timeout | undefined;
  // a failed full apply, retried
  #applied = false;
  #retry: NodeJS.Timeout | undefined;
  #retryMs: number;
  // files
  #files: DirWatch | undefined;
  #runDirs: DirWatch | undefined;
  #fileHash: string | undefined;
  #metrics: Server | undefined;
  #status: Omit<ServiceStatusFile, 'vms' | 'services' | 'updatedAt' | 'state'> & { state: ServiceStatusFile['state'] };

  /**
   * A service for `host` (validated: `loadHostFile`); nothing is done before {@link run}.
   * `options.signal` stops it ({@link stop}); `options.file` is watched and read again on changes.
   */
  constructor(host: ResolvedHost, options: RunHostOptions = {}) {
    this.#host = host;
    this.#o = options;
    this.tuning = { ...DEFAULT_TUNING, ...options.tuning };
    this.#retryMs = this.tuning.retryMs;
    this.#batch = new RepairBatch(this.tuning, () => void this.#exclusive(() => this.#repairNow()));
    this.#learner = new Learner(host);
    this.#reindex();
    const self = this;
    this.#sup = new Supervisor({
      get dir() {
        return self.#dir;
      },
      tuning: this.tuning,
      host: () => this.#host,
      busy: () => this.#busy,
      stopping: () => this.#stopping,
      exclusive: (fn) => this.#exclusive(fn),
      engine: (select) => this.#engine(select),
      touched: (id) => void this.#touched.add(id),
      emit: (e) => this.#emit(e),
    });
    const me = procStat(process.pid);
    this.#status = { version: 1, pid: process.pid, startTime: me?.startTime ?? 0, host: host.name, state: 'starting', since: new Date().toISOString(), repairs: { byKind: {}, last: [] } };
    // the file as it is now is the host given (loaded a moment ago): a change after this is a reload
    if (options.file !== undefined) {
      this.#status.file = resolvePath(options.file);
      this.#fileHash = fileHash(this.#status.file);
    }
    if (options.signal) {
      if (options.signal.aborted) this.#stop.abort();
      else options.signal.addEventListener('abort', () => this.stop(), { once: true });
    }
  }

  /** The state directory (its real path, once running). */
  get stateDir(): string {
    return this.#dir;
  }

  /** Reads the host file again and applies it (what SIGHUP does). */
  reload(trigger = 'reload requested'): void {
    if (this.#stopping) return;
    void this.#exclusive(() => this.#reloadNow(trigger));
  }

  /** Stops the service (as the host file's `onStop` says); {@link run} then returns. */
  stop(): void {
    this.#stop.abort();
  }

  /**
   * Runs the service: takes the state directory's lock, opens the monitors, applies the host file,
   * then keeps it until stopped; then stops as `onStop` says and resolves.
   * @throws {HostBusyError} when another vmhost holds the state directory; {@link HostStateError}
   *   for an unsafe state directory; what opening the monitors throws.
   */
  async run(): Promise<void> {
    const dir0 = stateDirFor(this.#host, this.#o);
    this.#dir = checkStateDir(dir0, true) ?? dir0;
    const unlock = lock(this.#dir);
    try {
      this.#writeStatus();
      this.#fwWatch = this.tuning.firewallWatch !== 'auto' ? this.tuning.firewallWatch : (await iptablesBackend()) === 'legacy' ? 'poll' : 'events';
      this.#status.firewallWatch = this.#fwWatch;
      this.#net = await NetWatch.open(this.#o.netns, {
        onRtnl: (ev) => this.#onRtnl(ev),
        onNft: (ev) => this.#onNft(ev),
        onError: (what, err) => this.#emit(event('error', `${what} failed: ${errorFields(err).message}; re-planning everything`, { error: errorFields(err) })),
      });
      if (this.#fwWatch === 'poll' || !this.#net.watchesNft) {
        this.#fwWatch = 'poll';
        this.#status.firewallWatch = 'poll';
        this.#poll = setInterval(() => this.#schedule(['firewall'], 'the periodic firewall check'), this.tuning.firewallPollMs);
      }
      this.#neighborPoll = setInterval(() => void this.#checkProxyNeighbors(), this.tuning.proxyNeighborPollMs);
      await this.#learnFromTable();
      this.#watchFiles();
      this.#emit(event('start', `vmhost run: host ${this.#host.name} (state ${this.#dir}, firewall watched by ${this.#fwWatch === 'events' ? 'nf_tables events' : `a check every ${this.tuning.firewallPollMs / 1000} s`}, onStop ${this.#host.onStop})`));
      await this.#exclusive(() => this.#fullApply('start'));
      if (this.#o.metrics !== undefined) {
        this.#metrics = await serveMetrics(parseMetricsAddress(this.#o.metrics), () => collectMetrics(this.#metricsView()));
      }
      this.#status.state = 'running';
      this.#writeStatus();
      await new Promise<void>((r) => (this.#stop.signal.aborted ? r() : this.#stop.signal.addEventListener('abort', () => r(), { once: true })));
    } finally {
      await this.#shutdown();
      unlock();
    }
  }

  // ------------------------------------------------------------------------------- the lane

  /** Runs `fn` as the next engine operation; afterwards exits seen meanwhile and our firewall changes are sorted out. */
  #exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(async () => {
      if (this.#stopping) return;
      this.#busy = true;
      this.#touched = new Set();
      try {
        await fn();
      } catch (err) {
        this.#emit(event('error', errorFields(err).message, { error: errorFields(err) }));
      } finally {
        this.#ownGen = (await this.#net?.generation()) ?? this.#ownGen;
        this.#busy = false;
        const nft = this.#deferredNft;
        this.#deferredNft = [];
        for (const ev of nft) this.#onNft(ev);
        this.#sup.afterOp(this.#touched);
        this.#writeStatus();
      }
    });
    this.#chain = run.catch(() => undefined);
    return this.#chain;
  }

  /** One engine apply of the entries `select` takes (within an operation); the steps done. */
  async #engine(select: (id: string) => boolean): Promise<StepDone[]> {
    const o: HostOptions = { stateDir: this.#dir, dataDir: dataDirFor(this.#host, this.#o), onProgress: (ev) => void (ev.type === 'notice' && this.#emit(event('notice', ev.message))) };
    if (this.#o.netns !== undefined) o.netns = this.#o.netns;
    const report = await applyEntries(this.#learner.effective(this.#host), select, o);
    for (const s of report.steps) this.#touched.add(s.id);
    return report.steps;
  }

  /** Everything but the VMs left down (the policy, a pending restart). */
  #fullSelect(): (id: string) => boolean {
    const skip = this.#sup.excluded();
    return (id) => !skip.has(id);
  }

  async #fullApply(why: 'start' | 'retry' | 'overrun' | 'repair-retry'): Promise<void> {
    const t0 = performance.now();
    try {
      const steps = await this.#engine(this.#fullSelect());
      this.#applied = true;
      this.#retryMs = this.tuning.retryMs;
      const ms = Math.round(performance.now() - t0);
      if (why === 'overrun') this.#repaired('notifications were lost (overrun): everything compared', steps, ms);
      else if (why === 'repair-retry') this.#repaired('a failed repair tried again: everything compared', steps, ms);
      else this.#emit(event('applied', `host ${this.#host.name} applied: ${steps.length} step(s) in ${ms} ms`, { steps, ms }));
      await this.#after(steps);
    } catch (err) {
      if (why !== 'repair-retry' && why !== 'overrun') this.#applied = false;
      this.#emit(event('error', `apply failed (${errorFields(err).message}); trying again in ${this.#retryMs} ms`, { error: errorFields(err), delayMs: this.#retryMs }));
      this.#retryLater(why === 'start' ? 'retry' : why);
    }
  }

  /** A full apply after the retry delay, which doubles up to backoffMaxMs until one succeeds. */
  #retryLater(why: 'retry' | 'overrun' | 'repair-retry'): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#exclusive(() => this.#fullApply(why)), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, this.tuning.backoffMaxMs);
  }

  /**
   * The steps of an operation, completed: the bridge made again gets everything on it at once (its
   * addresses, ports and routes: one full apply within the operation, its steps added).
   */
  async #complete(steps: readonly StepDone[]): Promise<StepDone[]> {
    const all = [...steps];
    if (steps.some((s) => s.action === 'create' && s.id === `link:${this.#host.bridge.name}`)) all.push(...(await this.#engine(this.#fullSelect())));
    return all;
  }

  /**
   * The restarts an operation calls for: the bridge made again restarts dnsmasq (its sockets were
   * bound to the old bridge) unless the operation started it; a TAP made again restarts its VM
   * (QEMU's NIC went with the old TAP).
   */
  async #after(steps: readonly StepDone[]): Promise<void> {
    const made = new Set(steps.filter((s) => s.action === 'create').map((s) => s.id));
    if (made.has(`link:${this.#host.bridge.name}`) && !steps.some((s) => s.id === 'dnsmasq')) await this.#sup.restartDnsmasq(`the bridge ${this.#host.bridge.name} was made again`);
    for (const vm of this.#host.vms) if (made.has(`link:${vm.tap}`) && !steps.some((s) => s.id === `vm:${vm.name}`)) await this.#sup.restartRunningVm(vm.name, `its TAP ${vm.tap} was made again`);
  }

  // ------------------------------------------------------------------------------- repairs

  #schedule(ids: readonly string[], trigger: string, full = false): void {
    if (!this.#stopping) this.#batch.add(ids, trigger, full);
  }

  async #repairNow(): Promise<void> {
    const b = this.#batch.take();
    const ids = b.ids;
    const full = b.full || !this.#applied;
    const trigger = b.trigger;
    if (ids.size === 0 && !full) return;
    if (full) return this.#fullApply(this.#applied ? 'overrun' : 'retry');
    const skip = this.#sup.excluded();
    const t0 = performance.now();
    try {
      const steps = await this.#complete(await this.#engine((id) => ids.has(id) && !skip.has(id)));
      this.#repaired(trigger, steps, Math.round(performance.now() - t0));
      await this.#after(steps);
    } catch (err) {
      const e = errorFields(err);
      this.#status.repairs.last.push({ at: new Date().toISOString(), trigger, steps: [], ms: Math.round(performance.now() - t0), error: e.message });
      this.#emit(event('error', `repair failed (${trigger}): ${e.message}; everything is compared in ${this.#retryMs} ms`, { trigger, ids: [...ids], error: e, delayMs: this.#retryMs }));
      // something it needed changed meanwhile (the bridge deleted again): a full re-plan, with backoff
      this.#retryLater('repair-retry');
    }
  }

  #repaired(trigger: string, steps: readonly StepDone[], ms: number): void {
    if (steps.length === 0) return;
    for (const s of steps) {
      const kind = s.id.split(':')[0]!;
      this.#status.repairs.byKind[kind] = (this.#status.repairs.byKind[kind] ?? 0) + 1;
    }
    const last = this.#status.repairs.last;
    last.push({ at: new Date().toISOString(), trigger, steps: steps.map((s) => `${s.action} ${s.id}`), ms });
    if (last.length > 20) last.splice(0, last.length - 20);
    this.#emit(event('repair', `${trigger}: ${stepsText(steps)} (${ms} ms)`, { trigger, steps: [...steps], ms }));
  }

  // ------------------------------------------------------------------------------- events

  #onRtnl(ev: RtnlEvent): void {
    if (this.#stopping) return;
    if (ev.type === 'overrun') {
      this.#schedule([], 'rtnetlink notifications were lost', true);
      void this.#learnFromTable();
      return;
    }
    if (ev.type === 'neighbor' && ev.neighbor.dev === this.#host.bridge.name && !ev.neighbor.proxy) {
      this.#learned(this.#learner.feed(ev.neighbor, ev.action === 'del'));
      return;
    }
    if (ev.type === 'link' && ev.action === 'new' && ev.link.name === this.#host.uplink && !this.#applied) {
      this.#schedule([], `the uplink ${this.#host.uplink} appeared`, true);
      return;
    }
    const hit = driftOf(this.#ix, ev);
    if (hit) this.#schedule(hit.ids, hit.what);
  }

  #onNft(ev: NftEvent): void {
    if (this.#stopping) return;
    if (ev.type === 'overrun') return this.#schedule(['firewall'], 'nf_tables notifications were lost');
    if (this.#busy) {
      this.#deferredNft.push(ev);
      return;
    }
    if (isOwnChange(ev, this.#ownGen)) return;
    this.#schedule(['firewall'], `nf_tables generation ${ev.id} by ${ev.processName ?? '?'} (pid ${ev.pid ?? '?'})`);
  }

  /**
   * The proxy neighbours the host wants that the kernel's table lacks (deleted by someone: no
   * notification says so), scheduled for repair; nothing while the uplink is missing (the apply
   * that brings it back makes them) or an operation runs.
   */
  async #checkProxyNeighbors(): Promise<void> {
    const want = this.#ix.proxyNeighbors;
    if (want.size === 0 || this.#busy || this.#stopping || !this.#net || !this.#applied) return;
    try {
      if (!(await this.#net.handle.links.find(this.#host.uplink))) return;
      const live = await this.#net.handle.neighbors.list({ family: 6, proxy: true });
      const have = new Set(live.map((n) => `${n.dev}|${n.to}`));
      for (const [key, id] of want) {
        if (have.has(key) || this.#batch.has(id)) continue;
        const [dev, to] = key.split('|');
        this.#schedule([id], `proxy neighbour ${to} on ${dev} gone (found by the table check)`);
      }
    } catch {
      /* the namespace is going, or the dump failed: the next check tries again */
    }
  }

  #learned(changes: readonly LearnChange[]): void {
    for (const c of changes) {
      if (c.action === 'skip') {
        this.#emit(event('skip', `VM ${c.vm} uses ${c.address}: over ipv6.learnLimit ${this.#host.ipv6?.learnLimit}, not published`, { vm: c.vm, address: c.address }));
        continue;
      }
      this.#emit(event(c.action, `${c.action === 'learn' ? 'publishing' : 'withdrawing'} ${c.address} of VM ${c.vm}`, { vm: c.vm, address: c.address }));
      this.#schedule(this.#learner.idsOf(c.address, c.vm), `${c.address} of VM ${c.vm} ${c.action === 'learn' ? 'learnt' : 'gone'}`);
    }
    if (changes.length > 0) this.#reindex();
  }

  /** Feeds the bridge's neighbour table as it is now to the learner (start, reload, overrun). */
  async #learnFromTable(): Promise<void> {
    if (!this.#learner.enabled || !this.#net) return;
    try {
      const ns = await this.#net.handle.neighbors.list({ family: 6, dev: this.#host.bridge.name });
      for (const n of ns) this.#learned(this.#learner.feed(n, false));
    } catch {
      /* no bridge yet: its neighbours come as events */
    }
  }

  #reindex(): void {
    const entries = desiredState(this.#learner.effective(this.#host), desiredOptions({ dir: this.#dir || '/', dataDir: dataDirFor(this.#host, this.#o) })).map((d) => d.entry);
    this.#ix = driftIndex(entries, this.#host.uplink, this.#host.bridge.name);
  }

  // ------------------------------------------------------------------------------- the host file

  #watchFiles(): void {
    this.#runDirs = watchFiles(50, (_d, n) => n === 'qemu.pid' || n === 'stopped' || !n.includes('.'), (d, n) => {
      if (d === join(this.#dir, 'vms') && n !== '') this.#runDirs?.add(join(d, n));
      if (!this.#busy && !this.#stopping) this.#sup.sync();
    });
    this.#runDirs.add(join(this.#dir, 'vms'));
    for (const vm of this.#host.vms) this.#runDirs.add(join(this.#dir, 'vms', vm.name));
    const file = this.#o.file;
    if (file === undefined) return;
    const abs = resolvePath(file);
    const names = new Set([abs]);
    this.#files = watchFiles(this.tuning.fileDebounceMs, (d, n) => names.has(join(d, n)), () => {
      const h = fileHash(abs);
      if (h === this.#fileHash) return;
      this.#fileHash = h;
      this.reload('the host file changed');
    });
    this.#files.add(dirname(abs));
  }

  async #reloadNow(trigger: string): Promise<void> {
    const file = this.#o.file;
    if (file === undefined) {
      this.#emit(event('reload-failed', 'no host file to read again (runHost was given a host, not a file)', { trigger }));
      return;
    }
    this.#fileHash = fileHash(resolvePath(file));
    let host: ResolvedHost;
    try {
      host = await (this.#o.loadHostFile ?? (async (p: string) => (await import('../spec/load.js')).loadHostFile(p)))(file);
    } catch (err) {
      this.#emit(event('reload-failed', `${file}: ${errorFields(err).message}; the host stays as it is`, { trigger, error: errorFields(err) }));
      return;
    }
    if (host.name !== this.#host.name) {
      this.#emit(event('reload-failed', `${file}: the host's name changed (${this.#host.name} → ${host.name}): it names the state directory and the firewall chains; stop this service and start one for the new name`, { trigger }));
      return;
    }
    this.#learned(this.#learner.setHost(host));
    this.#host = host;
    this.#reindex();
    // learning just turned on (or a higher limit, a new VM, a new bridge): the addresses the VMs
    // use already are in the table, and no event may come for them
    await this.#learnFromTable();
    this.#sup.forget(host);
    for (const vm of host.vms) this.#runDirs?.add(join(this.#dir, 'vms', vm.name));
    const t0 = performance.now();
    try {
      const steps = await this.#engine(this.#fullSelect());
      this.#applied = true;
      const ms = Math.round(performance.now() - t0);
      this.#emit(event('reload', `${trigger}: ${steps.length > 0 ? stepsText(steps) : 'no change'} (${ms} ms)`, { trigger, steps, ms }));
      await this.#after(steps);
    } catch (err) {
      this.#emit(event('error', `${trigger}: applying ${file} failed (${errorFields(err).message}); what it changed was undone`, { trigger, error: errorFields(err) }));
    }
  }

  // ------------------------------------------------------------------------------- status, stop

  #emit(e: ServiceEvent): void {
    if (e.type === 'error') this.#status.lastError = { at: e.time, message: e.message };
    try {
      this.#o.onEvent?.(e);
    } catch {
      /* a callback must not break the service */
    }
    if (!this.#busy) this.#writeStatus();
  }

  #writeStatus(): void {
    if (this.#dir === '') return;
    const s: ServiceStatusFile = { ...this.#status, ...this.#sup.snapshot(this.#learner.snapshot()), updatedAt: new Date().toISOString() };
    try {
      writeServiceStatus(this.#dir, s);
    } catch (err) {
      this.#status.lastError = { at: new Date().toISOString(), message: `cannot write the status file: ${errorFields(err).message}` };
    }
  }

  #metricsView(): Parameters<typeof collectMetrics>[0] {
    return { host: this.#host, status: { ...this.#status, ...this.#sup.snapshot(this.#learner.snapshot()), updatedAt: '' }, rtnl: this.#net?.handle, netns: this.#o.netns };
  }

  async #shutdown(): Promise<void> {
    this.#stopping = true;
    this.#batch.close();
    clearTimeout(this.#retry);
    clearInterval(this.#poll);
    clearInterval(this.#neighborPoll);
    this.#files?.close();
    this.#runDirs?.close();
    await this.#chain;
    this.#busy = true; // nothing below is to be taken as a repair
    this.#status.state = 'stopping';
    this.#writeStatus();
    if (this.#dir !== '' && this.#host.onStop === 'shutdown') {
      this.#emit(event('stop', 'stopping: shutting the VMs down (onStop: shutdown)'));
      await this.#sup.shutdownAll();
    } else {
      this.#sup.close();
      this.#emit(event('stop', 'stopping: the VMs and services keep running (onStop: keep)'));
    }
    this.#net?.close();
    await new Promise<void>((r) => (this.#metrics ? this.#metrics.close(() => r()) : r()));
    this.#status.state = 'stopped';
    this.#busy = false;
    this.#writeStatus();
  }
}

/**
 * Runs `vmhost run` for `host` until `options.signal` is aborted (the CLI: SIGTERM, SIGINT), then
 * stops as the host file's `onStop` says and resolves. See {@link HostService} (and its
 * `reload()`, what SIGHUP does) and docs/host-service.md.
 * @throws as {@link HostService.run}.
 */
export async function runHost(host: ResolvedHost, options: RunHostOptions = {}): Promise<void> {
  await new HostService(host, options).run();
}
