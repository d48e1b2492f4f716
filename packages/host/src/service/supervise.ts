/**
 * The processes `vmhost run` keeps: each VM's QEMU (watched by pidfd and its QMP event socket,
 * watchers.ts) under its restart policy (policy.ts), dnsmasq and the IPv6 proxy (watched by
 * pidfd, always restarted), with backoff and, for VMs, a crash-loop limit. Restarts go through
 * the engine (`applyEntries(['vm:web'])`), one engine operation at a time (the service's lane).
 * An exit seen while an engine operation runs waits for its end: when that operation carried out
 * a step of the same entry (a changed definition restarts a VM; the bridge made again restarts
 * dnsmasq), the exit was its own and is not a failure.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { procStat, terminate, type ExitWatch } from '@vmhost/net';
import { vmDir } from '../engine/desired.js';
import { liveQemuPid, stopVmIn } from '../engine/kinds/vm.js';
import { STOPPED_FILE } from '../engine/vm-ops.js';
import { dnsmasqStatus, stopDnsmasq } from '../services/dnsmasq.js';
import { proxyServiceStatus, stopProxyService } from '../services/proxy6.js';
import type { Report, ResolvedHost } from '../types.js';
import { errorFields, event } from './log.js';
import { classifyExit, exitText, Restarts } from './policy.js';
import type { ExitCause, ServiceEvent, ServiceStatusFile, ServiceTuning, VmServiceStatus } from './types.js';
import { VmWatch, watchPid } from './watchers.js';

/** What the supervisor needs of the service. */
export interface SupervisorHost {
  /** The state directory (real path). */
  readonly dir: string;
  readonly tuning: ServiceTuning;
  /** The host as the file says now. */
  host(): ResolvedHost;
  /** Whether an engine operation runs. */
  busy(): boolean;
  stopping(): boolean;
  /** Runs `fn` as the next engine operation (one at a time). */
  exclusive(fn: () => Promise<void>): Promise<void>;
  /** One engine apply of the entries `select` takes, within an operation; resolves to the steps' ids. */
  engine(select: (id: string) => boolean): Promise<Report['steps']>;
  /** Marks an entry as touched by the current operation (its process's exit is expected). */
  touched(id: string): void;
  emit(e: ServiceEvent): void;
}

type Svc = 'dnsmasq' | 'proxy6';

interface VmSup {
  restarts: Restarts;
  watch?: VmWatch;
  /** The service started it or watched it run, and has not seen it end: a VM found gone without a watch died unseen. */
  expected?: boolean;
  down?: string;
  timer?: NodeJS.Timeout;
  nextAt?: number;
  lastExit?: { at: string; cause: ExitCause };
}

interface SvcSup {
  restarts: Restarts;
  watch?: ExitWatch;
  /** Started or watched by the service and not seen to end: found gone without a watch, it died unseen. */
  expected?: boolean;
  timer?: NodeJS.Timeout;
  nextAt?: number;
  lastExit?: { at: string; cause: ExitCause };
}

interface Deferred {
  id: string;
  handle(): void;
}

/** The pid `vmhost vm stop` wrote into the run directory, if any. */
function stoppedPid(runDir: string): number | undefined {
  try {
    const n = Number(readFileSync(join(runDir, STOPPED_FILE), 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The VMs and services of one host under supervision. */
export class Supervisor {
  private readonly vms = new Map<string, VmSup>();
  private readonly svcs = new Map<Svc, SvcSup>();
  private deferred: Deferred[] = [];

  constructor(private readonly s: SupervisorHost) {}

  private vm(name: string): VmSup {
    let v = this.vms.get(name);
    if (!v) this.vms.set(name, (v = { restarts: new Restarts(this.s.tuning, this.s.host().vms.find((x) => x.name === name)?.restart ?? 'on-failure') }));
    return v;
  }

  private svc(name: Svc): SvcSup {
    let v = this.svcs.get(name);
    if (!v) this.svcs.set(name, (v = { restarts: new Restarts(this.s.tuning, undefined) }));
    return v;
  }

  /** The services the host has. */
  private services(): Svc[] {
    const h = this.s.host();
    const out: Svc[] = [];
    if (h.dhcp) out.push('dnsmasq');
    if (h.ipv6?.mode === 'proxy') out.push('proxy6');
    return out;
  }

  private svcPid(name: Svc): number | undefined {
    return (name === 'dnsmasq' ? dnsmasqStatus(join(this.s.dir, 'dnsmasq')) : proxyServiceStatus(join(this.s.dir, 'proxy6'))).pid;
  }

  /** The VM ids a full re-plan leaves alone: VMs the policy leaves down, or whose restart waits (backoff). */
  excluded(): Set<string> {
    const out = new Set<string>();
    for (const [name, v] of this.vms) if (v.down !== undefined || v.timer !== undefined) out.add(`vm:${name}`);
    return out;
  }

  /** Watches what runs now: a new QEMU or service pid gets a watch (a VM running again is no longer down). */
  sync(): void {
    if (this.s.stopping()) return;
    const host = this.s.host();
    for (const vm of host.vms) {
      const v = this.vm(vm.name);
      const runDir = vmDir(this.s.dir, vm.name);
      const pid = liveQemuPid(runDir);
      if (pid === undefined && v.expected && !v.watch && v.timer === undefined && v.down === undefined) {
        // started (or watched) and gone before a watch could see it exit (killed at once): a failure
        v.expected = false;
        v.lastExit = { at: new Date().toISOString(), cause: 'crash' };
        this.vmDecide(vm.name, 'crash');
        continue;
      }
      if (pid === undefined || v.watch?.pid === pid) continue;
      if (v.watch && !v.watch.done) v.watch.close();
      const w = VmWatch.start(runDir, { onPanic: (p) => this.panicked(vm.name, p) });
      v.watch = w;
      if (!w) continue;
      v.expected = true;
      if (v.down !== undefined) {
        // started again by someone (vmhost vm start, apply): supervised as before, a crash loop forgotten
        v.down = undefined;
        v.restarts.reset();
      }
      void w.exited.then((ev) => this.vmExited(vm.name, w, classifyExit({ ...ev, stoppedByVmStop: stoppedPid(runDir) === w.pid })));
    }
    for (const name of this.services()) {
      const v = this.svc(name);
      const pid = this.svcPid(name);
      if (pid === undefined && v.expected && !v.watch && v.timer === undefined) {
        // its exit came during an operation that touched it, or its start within a repair failed
        v.expected = false;
        v.lastExit = { at: new Date().toISOString(), cause: 'unknown' };
        this.svcDecide(name, v);
        continue;
      }
      if (pid === undefined || v.watch?.pid === pid) continue;
      v.watch?.close();
      const w = watchPid(pid);
      if (this.svcPid(name) !== pid) {
        w.close();
        continue;
      }
      v.watch = w;
      v.expected = true;
      void w.exited.then(() => this.svcExited(name, w));
    }
  }

  /** A host file without some VMs: their watches end (the engine stops them). */
  forget(host: ResolvedHost): void {
    for (const [name, v] of this.vms) {
      if (host.vms.some((x) => x.name === name)) continue;
      v.watch?.close();
      clearTimeout(v.timer);
      this.vms.delete(name);
    }
    for (const vm of host.vms) {
      const v = this.vms.get(vm.name);
      if (!v?.restarts.gaveUp) continue;
      // a reload gives a crash-looping VM another go
      v.restarts.reset();
      v.down = undefined;
    }
  }

  /** A guest panicked: a QEMU that stays paused in that state is ended after the grace time (then its exit counts as a panic). */
  private panicked(name: string, pid: number): void {
    setTimeout(() => {
      if (this.vms.get(name)?.watch?.pid === pid && procStat(pid) !== undefined) void terminate(pid).catch(() => undefined);
    }, this.s.tuning.panicGraceMs).unref();
  }

  private vmExited(name: string, w: VmWatch, cause: ExitCause): void {
    const v = this.vms.get(name);
    if (!v || v.watch !== w || this.s.stopping()) return;
    v.watch = undefined;
    v.expected = false;
    v.lastExit = { at: new Date().toISOString(), cause };
    if (this.s.busy()) this.deferred.push({ id: `vm:${name}`, handle: () => this.vmDecide(name, cause) });
    else this.vmDecide(name, cause);
  }

  private vmDecide(name: string, cause: ExitCause): void {
    const v = this.vms.get(name);
    const vm = this.s.host().vms.find((x) => x.name === name);
    if (!v || !vm) return;
    this.s.emit(event('exit', `VM ${name} exited: ${exitText(cause)}`, { vm: name, cause }));
    if (!vm.autostart) {
      v.down = `${exitText(cause)}; not autostarted`;
      this.s.emit(event('skip', `VM ${name} stays down (autostart: false)`, { vm: name, cause }));
      return;
    }
    const d = v.restarts.decide(cause, Date.now(), vm.restart);
    if (d.action === 'leave') {
      v.down = d.why;
      this.s.emit(event('skip', `VM ${name} stays down: ${d.why}`, { vm: name, cause }));
    } else if (d.action === 'give-up') {
      v.down = `crash loop: ${d.restarts} restarts within ${Math.round(this.s.tuning.crashLoopWindowMs / 1000)} s, then ${exitText(cause)}`;
      this.s.emit(event('give-up', `VM ${name} is crash-looping (${d.restarts} restarts within ${Math.round(this.s.tuning.crashLoopWindowMs / 1000)} s): left down until a reload or vmhost vm start`, { vm: name, cause, attempt: d.restarts }));
    } else {
      this.later(v, d.delayMs, () => this.restartVm(name, d.attempt, cause));
      if (d.delayMs > 0) this.s.emit(event('notice', `VM ${name}: restart ${d.attempt} in ${d.delayMs} ms (backoff)`, { vm: name, delayMs: d.delayMs, attempt: d.attempt }));
    }
  }

  /** Runs `fn` as an engine operation after `delayMs` (at once for 0), remembered as the pending restart of `v`. */
  private later(v: VmSup | SvcSup, delayMs: number, fn: () => Promise<void>): void {
    clearTimeout(v.timer);
    v.nextAt = Date.now() + delayMs;
    v.timer = setTimeout(() => {
      v.timer = undefined;
      v.nextAt = undefined;
      void this.s.exclusive(fn);
    }, delayMs);
  }

  private async restartVm(name: string, attempt: number, cause: ExitCause): Promise<void> {
    const v = this.vms.get(name);
    if (!v || this.s.stopping() || !this.s.host().vms.some((x) => x.name === name)) return;
    if (liveQemuPid(vmDir(this.s.dir, name)) !== undefined) return; // started meanwhile (vm start): sync() watches it
    v.restarts.record(Date.now());
    const t0 = performance.now();
    try {
      const steps = await this.s.engine((id) => id === `vm:${name}`);
      this.s.emit(event('restart', `VM ${name} started again (${exitText(cause)}; restart ${attempt} within the window) in ${Math.round(performance.now() - t0)} ms`, { vm: name, cause, attempt, ms: Math.round(performance.now() - t0), steps }));
    } catch (err) {
      this.s.emit(event('error', `VM ${name}: restart ${attempt} failed: ${errorFields(err).message}`, { vm: name, attempt, error: errorFields(err) }));
      const d = v.restarts.decide('crash', Date.now(), this.s.host().vms.find((x) => x.name === name)?.restart);
      if (d.action === 'restart') this.later(v, Math.max(d.delayMs, this.s.tuning.backoffMs), () => this.restartVm(name, d.attempt, cause));
      else if (d.action === 'give-up') {
        v.down = `crash loop: ${d.restarts} restarts failed or crashed within ${Math.round(this.s.tuning.crashLoopWindowMs / 1000)} s`;
        this.s.emit(event('give-up', `VM ${name}: ${v.down}; left down until a reload or vmhost vm start`, { vm: name, attempt: d.restarts }));
      }
    }
  }

  /** Restarts a running VM now (its TAP was made again: QEMU's NIC went with the old one). Within an operation. */
  async restartRunningVm(name: string, why: string): Promise<void> {
    const runDir = vmDir(this.s.dir, name);
    if (liveQemuPid(runDir) === undefined) return;
    this.s.touched(`vm:${name}`);
    const t0 = performance.now();
    await stopVmIn(runDir, name);
    const steps = await this.s.engine((id) => id === `vm:${name}`);
    this.s.emit(event('restart', `VM ${name} started again: ${why} (${Math.round(performance.now() - t0)} ms)`, { vm: name, trigger: why, ms: Math.round(performance.now() - t0), steps }));
  }

  private svcExited(name: Svc, w: ExitWatch): void {
    const v = this.svcs.get(name);
    if (!v || v.watch !== w || this.s.stopping()) return;
    v.watch = undefined;
    v.lastExit = { at: new Date().toISOString(), cause: 'unknown' };
    const handle = (): void => {
      v.expected = false;
      this.svcDecide(name, v);
    };
    if (this.s.busy()) this.deferred.push({ id: name, handle });
    else handle();
  }

  /** A service found exited: started again (at once, then with backoff). */
  private svcDecide(name: Svc, v: SvcSup): void {
    this.s.emit(event('exit', `${name} exited`, { service: name, cause: 'unknown' }));
    const d = v.restarts.decide('unknown', Date.now());
    if (d.action === 'restart') this.later(v, d.delayMs, () => this.restartSvc(name, d.attempt));
  }

  private async restartSvc(name: Svc, attempt: number): Promise<void> {
    const v = this.svcs.get(name);
    if (!v || this.s.stopping() || !this.services().includes(name) || this.svcPid(name) !== undefined) return;
    v.restarts.record(Date.now());
    const t0 = performance.now();
    try {
      const steps = await this.s.engine((id) => id === name);
      this.s.emit(event('restart', `${name} started again (restart ${attempt} within the window) in ${Math.round(performance.now() - t0)} ms`, { service: name, attempt, ms: Math.round(performance.now() - t0), steps }));
    } catch (err) {
      this.s.emit(event('error', `${name}: restart failed: ${errorFields(err).message}`, { service: name, error: errorFields(err) }));
      this.later(v, Math.max(v.restarts.delay(Date.now()), this.s.tuning.backoffMs), () => this.restartSvc(name, attempt + 1));
    }
  }

  /** Restarts dnsmasq now (the bridge was made again: its sockets were bound to the old one). Within an operation. */
  async restartDnsmasq(why: string): Promise<void> {
    if (!this.services().includes('dnsmasq')) return;
    this.s.touched('dnsmasq');
    const t0 = performance.now();
    await stopDnsmasq(join(this.s.dir, 'dnsmasq'));
    const steps = await this.s.engine((id) => id === 'dnsmasq');
    this.s.emit(event('restart', `dnsmasq started again: ${why} (${Math.round(performance.now() - t0)} ms)`, { service: 'dnsmasq', trigger: why, ms: Math.round(performance.now() - t0), steps }));
  }

  /** After an engine operation: exits seen meanwhile, unless the operation touched that entry; then the watches. */
  afterOp(touched: ReadonlySet<string>): void {
    // a VM the operation started is expected to run from now on
    for (const vm of this.s.host().vms) if (vm.autostart && touched.has(`vm:${vm.name}`)) this.vm(vm.name).expected = true;
    for (const name of this.services()) if (touched.has(name)) this.svc(name).expected = true;
    const d = this.deferred;
    this.deferred = [];
    for (const x of d) if (!touched.has(x.id)) x.handle();
    this.sync();
  }

  /** Ends every watch and pending restart (stopping). */
  close(): void {
    for (const v of [...this.vms.values(), ...this.svcs.values()]) {
      v.watch?.close();
      clearTimeout(v.timer);
      v.timer = undefined;
    }
    this.deferred = [];
  }

  /** onStop shutdown: every VM of the state directory through the ladder (together), then the proxy and dnsmasq. */
  async shutdownAll(): Promise<void> {
    this.close();
    const names = this.s.host().vms.map((v) => v.name);
    await Promise.all(
      names.map(async (name) => {
        const t0 = performance.now();
        try {
          if (await stopVmIn(vmDir(this.s.dir, name), name)) this.s.emit(event('stop', `VM ${name} shut down (${Math.round(performance.now() - t0)} ms)`, { vm: name, ms: Math.round(performance.now() - t0) }));
        } catch (err) {
          this.s.emit(event('error', `VM ${name}: could not be stopped: ${errorFields(err).message}`, { vm: name, error: errorFields(err) }));
        }
      }),
    );
    for (const [name, stop] of [['proxy6', stopProxyService], ['dnsmasq', stopDnsmasq]] as const) {
      try {
        if (await stop(join(this.s.dir, name))) this.s.emit(event('stop', `${name} stopped`, { service: name }));
      } catch (err) {
        this.s.emit(event('error', `${name}: could not be stopped: ${errorFields(err).message}`, { service: name, error: errorFields(err) }));
      }
    }
  }

  /** The VMs and services for the status file. */
  snapshot(learned: Record<string, string[]>): Pick<ServiceStatusFile, 'vms' | 'services'> {
    const vms: Record<string, VmServiceStatus> = {};
    for (const vm of this.s.host().vms) {
      const v = this.vms.get(vm.name);
      const pid = v?.watch && !v.watch.done ? v.watch.pid : undefined;
      const row: VmServiceStatus = { policy: vm.restart, running: pid !== undefined, restarts: v?.restarts.total ?? 0, crashLoop: v?.restarts.gaveUp ?? false };
      if (pid !== undefined) row.pid = pid;
      if (v?.lastExit) row.lastExit = v.lastExit;
      if (v?.down !== undefined) row.down = v.down;
      if (v?.nextAt !== undefined) row.nextRestartAt = new Date(v.nextAt).toISOString();
      const l = learned[vm.name];
      if (l && l.length > 0) row.learned = l;
      vms[vm.name] = row;
    }
    const services: ServiceStatusFile['services'] = {};
    for (const name of this.services()) {
      const v = this.svcs.get(name);
      const pid = v?.watch && !v.watch.done ? v.watch.pid : undefined;
      services[name] = { running: pid !== undefined, restarts: v?.restarts.total ?? 0, ...(pid !== undefined ? { pid } : {}), ...(v?.lastExit ? { lastExit: v.lastExit } : {}) };
    }
    return { vms, services };
  }
}
