/**
 * A lab: a set of network namespaces for a test, declared in one object ({@link LabOptions}):
 * veth links between them, bridges, addresses, sysctls, routes and default gateways; processes
 * run inside; everything is removed when the lab closes, and what a crashed run left behind
 * (namespaces with the lab's name prefix whose creating process is gone) is removed by the next
 * {@link Lab.create}.
 *
 * Built on @vmhost/net only (rtnetlink, `netns` and the process module): nothing here spawns
 * `ip`, `brctl` or `sysctl`, and nothing touches the caller's own (root) network namespace.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { Rtnl, ValidationError, netns, parseCidr, sendSignal, validateIfName, type RouteSpec, type RunOptions, type RunResult, type SysctlValue } from '@vmhost/net';
import { LabClosedError, LabCloseError, LabCommandError, LabSetupError } from './errors.js';
import { trackOpen } from './exit.js';
import { claimOwner, releaseOwner, removeNamespace, removeNamespaceSync, sweepNamespaces, validatePrefix } from './ownership.js';
import { DEFAULT_LAB_PREFIX, type LabAddressOptions, type LabBridgeSpec, type LabLinkSpec, type LabNamespaceSpec, type LabOptions } from './types.js';
import { checkBridge, checkLink, checkRoute, macMtu, validateDeclaration, type LabPlan, type NsState } from './validate.js';

/**
 * A set of network namespaces made for a test, removed by {@link Lab.close}.
 *
 * ```ts
 * const lab = await Lab.create({
 *   namespaces: { client: {}, server: {} },
 *   links: [{ a: { ns: 'client', name: 'eth0' }, b: { ns: 'server', name: 'eth0' },
 *             addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24'] } }],
 * });
 * try {
 *   const r = await lab.run('client', 'busybox', ['ping', '-c1', '-W2', '203.0.113.2']);
 * } finally {
 *   await lab.close();
 * }
 * ```
 */
export class Lab {
  /** The prefix of this lab's namespace names. */
  readonly prefix: string;
  /** The short random id in this lab's namespace names. */
  readonly id: string;
  /** Whether IPv6 duplicate address detection is kept. */
  readonly dad: boolean;
  readonly #ns = new Map<string, NsState>();
  readonly #handles = new Map<string, Promise<Rtnl>>();
  readonly #children = new Set<ChildProcess>();
  readonly #cleanupOnExit: boolean;
  #closing: Promise<void> | undefined;

  private constructor(prefix: string, dad: boolean, cleanupOnExit: boolean) {
    this.prefix = prefix;
    this.dad = dad;
    this.#cleanupOnExit = cleanupOnExit;
    this.id = randomBytes(3).toString('hex');
  }

  /**
   * Validates the whole declaration (throwing {@link ValidationError} naming the field before
   * anything is made), sweeps leftovers of the prefix, then creates the namespaces, brings `lo`
   * up, creates bridges and links (all up), sets sysctls, adds addresses and routes.
   * @throws {ValidationError} bad declaration (nothing was created).
   * @throws {LabSetupError} a step failed; what was made is removed first.
   */
  static async create(options: LabOptions): Promise<Lab> {
    if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
    const prefix = options.prefix ?? DEFAULT_LAB_PREFIX;
    validatePrefix(prefix);
    if (options.dad !== undefined && typeof options.dad !== 'boolean') throw new ValidationError('dad', options.dad, 'expected a boolean');
    const lab = new Lab(prefix, options.dad ?? false, options.cleanupOnExit ?? true);
    const plan = lab.#validate(options, false);
    if (options.sweep ?? true) await Lab.sweep(prefix);
    await lab.#build(plan);
    return lab;
  }

  /**
   * Removes leftover lab namespaces: those whose name starts with `prefix` and whose creating
   * process is gone (or was never recorded), after killing (SIGKILL, by pid) what runs inside.
   * Namespaces of a live process (another lab running in parallel) are left alone.
   * @returns the names removed.
   */
  static async sweep(prefix: string = DEFAULT_LAB_PREFIX): Promise<string[]> {
    return sweepNamespaces(prefix);
  }

  // ---------------------------------------------------------------------------- accessors

  /** The real namespace name of the lab's namespace `name` (to pass to other APIs). */
  ns(name: string): string {
    return this.#state(name).real;
  }

  /** The lab's namespaces: lab name → real namespace name. */
  get names(): Record<string, string> {
    return Object.fromEntries([...this.#ns].map(([k, v]) => [k, v.real]));
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** An Rtnl handle on the namespace `name` (one per namespace, closed by {@link close}). */
  rtnl(name: string): Promise<Rtnl> {
    this.#open();
    const real = this.ns(name);
    let h = this.#handles.get(name);
    if (!h) {
      h = Rtnl.open({ netns: real });
      this.#handles.set(name, h);
      h.catch(() => this.#handles.delete(name));
    }
    return h;
  }

  // ------------------------------------------------------------------------------ processes

  /**
   * Spawns a program inside the namespace `name` (no shell). The child is tracked and killed
   * (SIGKILL, by pid) by {@link close} if still running.
   */
  spawn(name: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.#open();
    const child = netns.spawn(this.ns(name), command, args, options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /**
   * Runs a program inside the namespace `name` to completion and collects its output. Never
   * throws for a non-zero exit: look at `code`. `timeoutMs` kills it (SIGKILL).
   */
  run(name: string, command: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
    const spawnOpts: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'] };
    if (options.env) spawnOpts.env = options.env;
    if (options.cwd) spawnOpts.cwd = options.cwd;
    if (options.signal) spawnOpts.signal = options.signal;
    let child: ChildProcess;
    try {
      child = this.spawn(name, command, args, spawnOpts);
    } catch (err) {
      return Promise.reject(err);
    }
    return netns.collect(child, options);
  }

  /**
   * Like {@link run} but resolves to stdout, and rejects when the program exits non-zero (the
   * error's message holds its stderr).
   */
  async exec(name: string, command: string, args: readonly string[] = [], options: RunOptions = {}): Promise<string> {
    const r = await this.run(name, command, args, options);
    if (r.code !== 0) {
      throw new LabCommandError(`${command} ${args.join(' ')} (in lab namespace '${name}')`, r);
    }
    return r.stdout;
  }

  /** Pids of the processes running in the namespace `name` (any process, not only the lab's). */
  async pids(name: string): Promise<number[]> {
    return netns.pids(this.ns(name));
  }

  // ------------------------------------------------------------------ imperative additions

  /** Adds a namespace to the open lab (validated like those of {@link create}). */
  async addNamespace(name: string, spec: LabNamespaceSpec = {}): Promise<string> {
    this.#open();
    const plan = this.#validate({ namespaces: { [name]: spec } }, true);
    await this.#build(plan, false);
    return this.ns(name);
  }

  /** Adds a bridge (up) in the namespace `name`. */
  async addBridge(name: string, bridge: string, spec: LabBridgeSpec = {}): Promise<void> {
    this.#open();
    const st = this.#state(name, 'ns');
    checkBridge(`bridges.${bridge}`, bridge, spec, st);
    const h = await this.rtnl(name);
    await h.links.add({ kind: 'bridge', name: bridge, up: true, stp: spec.stp ?? false, ...macMtu(spec) });
    st.devs.add(bridge);
    st.bridges.add(bridge);
  }

  /** Adds a veth link (both ends up) and its addresses. */
  async addLink(link: LabLinkSpec): Promise<void> {
    this.#open();
    const ends = checkLink('link', link, (n) => this.#ns.get(n));
    await this.#makeLink(link);
    for (const [st, n] of ends) st.devs.add(n);
    await Promise.all([
      ...(link.addresses?.a ?? []).map((c) => this.addAddress(link.a.ns, link.a.name, c)),
      ...(link.addresses?.b ?? []).map((c) => this.addAddress(link.b.ns, link.b.name, c)),
    ]);
  }

  /** Adds an address (CIDR) to interface `dev` of the namespace `name`. */
  async addAddress(name: string, dev: string, cidr: string, options: LabAddressOptions = {}): Promise<void> {
    this.#open();
    this.#state(name, 'ns');
    validateIfName(dev, 'dev');
    const c = parseCidr(cidr, 'cidr');
    const h = await this.rtnl(name);
    const nodad = c.family === 6 && (options.nodad ?? !this.dad);
    await h.addresses.add(dev, cidr, nodad ? { nodad: true } : {});
  }

  /** Adds a route in the namespace `name` (`{ to: 'default', via }` for a default gateway). */
  async addRoute(name: string, route: RouteSpec): Promise<void> {
    this.#open();
    this.#state(name, 'ns');
    checkRoute('route', route);
    const h = await this.rtnl(name);
    await h.routes.add(route);
  }

  /** Sets a sysctl (a `net.` key) in the namespace `name`. */
  async setSysctl(name: string, key: string, value: SysctlValue): Promise<void> {
    this.#open();
    const h = await this.rtnl(name);
    await h.sysctl.set(key, value);
  }

  // ----------------------------------------------------------------------------------- close

  /**
   * Removes the lab: closes the Rtnl handles, kills (SIGKILL, by pid) the tracked children and
   * every process left in the lab's namespaces, deletes the namespaces and their owner records.
   * Tries every step even when one fails, then rejects with {@link LabCloseError}. Idempotent:
   * later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  /** `await using lab = await Lab.create(...)`: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Synchronous best-effort removal, used by the process 'exit' hook: kills the processes and
   * unmounts the namespaces without waiting for anything. Prefer {@link close}.
   * @internal
   */
  closeSync(): void {
    if (this.#closing) return;
    this.#closing = Promise.resolve();
    trackOpen(this, false);
    for (const c of this.#children) if (c.pid !== undefined) sendSignal(c.pid, 'SIGKILL');
    for (const st of this.#ns.values()) removeNamespaceSync(st.real);
  }

  async #doClose(): Promise<void> {
    const errors: unknown[] = [];
    for (const [, h] of this.#handles) {
      try {
        (await h).close();
      } catch {
        /* never opened */
      }
    }
    this.#handles.clear();
    for (const c of this.#children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) sendSignal(c.pid, 'SIGKILL');
    }
    const results = await Promise.allSettled([...this.#ns.values()].map((st) => removeNamespace(st.real)));
    for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
    this.#children.clear();
    trackOpen(this, false);
    if (errors.length) throw new LabCloseError(errors);
  }

  // -------------------------------------------------------------------------------- internals

  #open(): void {
    if (this.#closing) throw new LabClosedError();
  }

  #state(name: string, field = 'ns'): NsState {
    const st = typeof name === 'string' ? this.#ns.get(name) : undefined;
    if (!st) throw new ValidationError(field, name, `no namespace of that name in this lab (${[...this.#ns.keys()].join(', ')})`);
    return st;
  }

  /** Validates a declaration against this lab's namespaces; returns the plan (nothing made yet). */
  #validate(options: Pick<LabOptions, 'namespaces' | 'links' | 'routes'>, adding: boolean): LabPlan {
    return validateDeclaration(options, this.#ns, (name) => `${this.prefix}${this.id}-${name}`, adding);
  }

  /** Creates what a validated plan declares; on failure removes what it made, then throws. */
  async #build(plan: LabPlan, closeOnFailure = true): Promise<void> {
    let step = 'namespaces';
    const made: string[] = [];
    /** Runs the tasks concurrently; the first failure (in declaration order) names the step. */
    const phase = async (tasks: Task[]): Promise<void> => {
      const rs = await Promise.allSettled(tasks.map(([, fn]) => fn()));
      for (const [i, r] of rs.entries()) {
        if (r.status !== 'rejected') continue;
        const label = tasks[i]?.[0] ?? 'unknown step';
        step = typeof label === 'function' ? label() : label;
        throw r.reason;
      }
    };
    try {
      if (this.#cleanupOnExit) trackOpen(this, true);
      for (const [name, st] of plan.pending) {
        step = `namespace ${name} (${st.real})`;
        claimOwner(st.real);
        try {
          await netns.add(st.real);
        } catch (err) {
          releaseOwner(st.real);
          throw err;
        }
        this.#ns.set(name, st);
        made.push(name);
      }
      const names = [...plan.pending.keys()];
      const decl = (n: string): LabNamespaceSpec => plan.namespaces[n] ?? {};
      await phase(
        names.map((n) => [
          `loopback of ${n}`,
          async () => {
            const h = await this.rtnl(n);
            if (!this.dad) {
              await h.sysctl.set('net.ipv6.conf.all.accept_dad', 0);
              await h.sysctl.set('net.ipv6.conf.default.accept_dad', 0);
            }
            await h.links.set('lo', { up: true });
          },
        ]),
      );
      await phase(
        names.flatMap((n) =>
          Object.entries(decl(n).bridges ?? {}).map(([br, bs]): Task => [
            `bridge ${br} in ${n}`,
            async () => (await this.rtnl(n)).links.add({ kind: 'bridge', name: br, up: true, stp: bs.stp ?? false, ...macMtu(bs) }),
          ]),
        ),
      );
      await phase(plan.links.map((l) => [`link ${l.a.ns}:${l.a.name} <-> ${l.b.ns}:${l.b.name}`, () => this.#makeLink(l)]));
      await phase(
        names.flatMap((n) =>
          Object.entries(decl(n).sysctls ?? {}).map(([k, v]): Task => [
            `sysctl ${k} in ${n}`,
            async () => (await this.rtnl(n)).sysctl.set(k, v),
          ]),
        ),
      );
      const addrTasks: Array<Task> = [];
      const addAddr = (n: string, dev: string, c: string): void => {
        addrTasks.push([`address ${c} on ${n}:${dev}`, () => this.addAddress(n, dev, c)]);
      };
      for (const n of names) for (const [dev, list] of Object.entries(decl(n).addresses ?? {})) for (const c of list) addAddr(n, dev, c);
      for (const l of plan.links) {
        for (const c of l.addresses?.a ?? []) addAddr(l.a.ns, l.a.name, c);
        for (const c of l.addresses?.b ?? []) addAddr(l.b.ns, l.b.name, c);
      }
      await phase(addrTasks);
      // Namespaces in parallel; within one, routes in declaration order (a route may need an earlier one).
      await phase(
        Object.entries(plan.routes).map(([n, list]): Task => {
          let current = `routes of ${n}`;
          return [
            () => current,
            async () => {
              for (const r of list) {
                current = `route ${JSON.stringify(r)} in ${n}`;
                await this.addRoute(n, r);
              }
            },
          ];
        }),
      );
    } catch (err) {
      const rollback: unknown[] = [];
      if (closeOnFailure) {
        try {
          await this.close();
        } catch (e) {
          rollback.push(...(e instanceof LabCloseError ? e.errors : [e]));
        }
      } else {
        // An addition to an open lab: remove only the namespaces it made.
        for (const n of made) {
          const st = this.#ns.get(n);
          const h = this.#handles.get(n);
          this.#handles.delete(n);
          this.#ns.delete(n);
          await h?.then((x) => x.close(), () => undefined);
          if (st) await removeNamespace(st.real).catch((e: unknown) => rollback.push(e));
        }
      }
      throw new LabSetupError(step, err, rollback);
    }
  }

  async #makeLink(l: LabLinkSpec): Promise<void> {
    const ha = await this.rtnl(l.a.ns);
    const hb = await this.rtnl(l.b.ns);
    const peer: { name: string; mac?: string; mtu?: number; netns?: string } = { name: l.b.name };
    if (l.b.mac !== undefined) peer.mac = l.b.mac;
    if (l.b.mtu !== undefined) peer.mtu = l.b.mtu;
    if (l.b.ns !== l.a.ns) peer.netns = this.ns(l.b.ns);
    await ha.links.add({ kind: 'veth', name: l.a.name, up: true, ...macMtu(l.a), ...(l.a.master !== undefined ? { master: l.a.master } : {}), peer });
    await hb.links.set(l.b.name, { up: true, ...(l.b.master !== undefined ? { master: l.b.master } : {}) });
  }
}

/** A step of a build phase: its name (or a function giving it at failure time) and its work. */
type Task = [string | (() => string), () => Promise<unknown>];
