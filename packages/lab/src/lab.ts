/**
 * A lab kit for namespace-based tests: declare network namespaces, veth links between them,
 * bridges, addresses, sysctls, routes and default gateways; run processes inside; everything is
 * removed when the lab closes, and what a crashed run left behind (namespaces with the lab's name
 * prefix whose creating process is gone) is removed by the next {@link Lab.create}.
 *
 * Built on @vmhost/net only (rtnetlink and `netns`): nothing here spawns `ip`, `brctl` or
 * `sysctl`, and nothing touches the caller's own (root) network namespace.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Rtnl,
  ValidationError,
  VmhostError,
  netns,
  parseCidr,
  parseMac,
  validateIfName,
  validateInt,
  validateIp,
  type RouteSpec,
  type RunOptions,
  type RunResult,
  type SysctlValue,
} from '@vmhost/net';

/** The namespace name prefix of a lab when none is given. */
export const DEFAULT_LAB_PREFIX = 'vmhlab-';

/**
 * Where each lab namespace is recorded with its creating process (`PID STARTTIME`), so that
 * {@link Lab.sweep} removes only namespaces whose creator is gone.
 */
export const LAB_OWNER_DIR = '/run/vmhost-labs';

/** Longest real namespace name a lab makes (`${prefix}${id}-${name}`). */
export const LAB_NAME_MAX = 60;

/** A bridge inside a lab namespace (always created up). */
export interface LabBridgeSpec {
  /** MAC address of the bridge. Default: chosen by the kernel. */
  mac?: string;
  /** MTU, 68-65535. */
  mtu?: number;
  /** Spanning tree (default off: ports forward at once). */
  stp?: boolean;
}

/** One namespace of a lab. */
export interface LabNamespaceSpec {
  /**
   * Addresses by interface name, e.g. `{ lo: ['198.51.100.10/32'], br0: ['192.168.0.1/24'] }`.
   * The interface must be `lo`, a bridge of this namespace or a link end in it.
   */
  addresses?: Record<string, readonly string[]>;
  /** Sysctls set in this namespace (keys start with `net.`), after its links exist. */
  sysctls?: Record<string, SysctlValue>;
  /** Bridges to create in this namespace, by name. Link ends join one with `master`. */
  bridges?: Record<string, LabBridgeSpec>;
}

/** One end of a veth link. */
export interface LabLinkEnd {
  /** The lab's name of the namespace (a key of `namespaces`). */
  ns: string;
  /** Interface name inside that namespace (1-15 bytes). */
  name: string;
  /** MAC address. Default: random (kernel). */
  mac?: string;
  /** MTU, 68-65535. */
  mtu?: number;
  /** A bridge of the same namespace to enslave this end to. */
  master?: string;
}

/** A veth link between two namespaces (or within one); both ends come up. */
export interface LabLinkSpec {
  /** The end created first (in its namespace's handle). */
  a: LabLinkEnd;
  /** The peer, created directly in its namespace. */
  b: LabLinkEnd;
  /** Addresses of each end (CIDR, e.g. `203.0.113.1/24`, `fe80::1/64`). */
  addresses?: { a?: readonly string[]; b?: readonly string[] };
}

/** What {@link Lab.create} takes. */
export interface LabOptions {
  /**
   * Prefix of the real namespace names (`${prefix}${id}-${name}`); default {@link DEFAULT_LAB_PREFIX}.
   * Treat it as reserved: {@link Lab.sweep} removes namespaces with this prefix whose creator is gone.
   */
  prefix?: string;
  /** The namespaces, by the lab's own (short) names. */
  namespaces: Record<string, LabNamespaceSpec>;
  /** veth links between the namespaces. */
  links?: readonly LabLinkSpec[];
  /** Routes by namespace, as Rtnl's `routes.add` takes them (`{ to: 'default', via: ... }` is a default gateway). */
  routes?: Record<string, readonly RouteSpec[]>;
  /**
   * Keep IPv6 duplicate address detection. Default false: every lab namespace gets
   * `accept_dad=0` and IPv6 addresses are added with `nodad`, so they are usable at once.
   */
  dad?: boolean;
  /** Run {@link Lab.sweep} for the prefix first. Default true. */
  sweep?: boolean;
  /**
   * On a normal process exit (also after an uncaught exception) with the lab still open, kill
   * its processes and delete its namespaces synchronously. Default true. A process killed by a
   * signal cannot do this: the next {@link Lab.create} (or {@link Lab.sweep}) with the prefix does.
   */
  cleanupOnExit?: boolean;
}

/** Options of {@link Lab.addAddress}. */
export interface LabAddressOptions {
  /** IPv6: skip duplicate address detection. Default: true unless the lab keeps DAD. */
  nodad?: boolean;
}

/**
 * Building a lab failed at a step (after validation): everything made so far was removed
 * (rollback) before this was thrown. `cause` is the original error.
 */
export class LabSetupError extends VmhostError {
  /** The step that failed, e.g. `link internet:up0 <-> host:eth0`. */
  readonly step: string;
  /** Errors met while rolling back (empty when the rollback was clean). */
  readonly rollbackErrors: unknown[];
  constructor(step: string, cause: unknown, rollbackErrors: unknown[] = []) {
    super('ELABSETUP', `lab: ${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.step = step;
    this.rollbackErrors = rollbackErrors;
  }
}

/** {@link Lab.close} could not do everything; it still tried every step. */
export class LabCloseError extends VmhostError {
  /** What failed, in order. */
  readonly errors: unknown[];
  constructor(errors: unknown[]) {
    super('ELABCLOSE', `lab close: ${errors.length} step(s) failed: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`);
    this.errors = errors;
  }
}

// ------------------------------------------------------------------------------- owner records

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') return undefined;
    return rest[19]; // field 22, starttime
  } catch {
    return undefined;
  }
}

let selfStart: string | undefined;
function ownerRecord(): string {
  selfStart ??= procStartTime(process.pid) ?? '0';
  return `${process.pid} ${selfStart}\n`;
}

/** Whether the process recorded for `name` still runs (same pid and start time). */
function ownerAlive(name: string): boolean {
  let text: string;
  try {
    text = readFileSync(join(LAB_OWNER_DIR, name), 'utf8');
  } catch {
    return false;
  }
  const [pidS, start] = text.trim().split(/\s+/);
  const pid = Number(pidS);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const now = procStartTime(pid);
  if (now === undefined) return false;
  return start === undefined || start === now;
}

function isAlive(pid: number): boolean {
  return procStartTime(pid) !== undefined;
}

/** Pids whose network namespace is the named one (synchronous; usable in an 'exit' handler); [] when it is gone. */
function pidsInSync(name: string): number[] {
  try {
    return netns.pidsSync({ path: join(netns.NETNS_RUN_DIR, name) });
  } catch {
    return [];
  }
}

function killPid(pid: number): void {
  if (pid === process.pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Kills (SIGKILL, by pid) every process in the namespace until none is left (bounded). */
async function emptyNamespace(name: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const pids = pidsInSync(name).filter((p) => p !== process.pid && isAlive(p));
    if (pids.length === 0) return;
    for (const p of pids) killPid(p);
    const until = Date.now() + 2000;
    while (Date.now() < until && pids.some(isAlive)) await sleep(5);
  }
  const left = pidsInSync(name).filter((p) => p !== process.pid && isAlive(p));
  if (left.length) throw new Error(`processes ${left.join(' ')} survive in namespace '${name}'`);
}

/**
 * Records this process as the owner of the namespace `name` before it is made. Refuses (EEXIST)
 * when a live process owns that name already: a lab never takes over another's namespace.
 */
function claimOwner(name: string): void {
  mkdirSync(LAB_OWNER_DIR, { recursive: true });
  const path = join(LAB_OWNER_DIR, name);
  try {
    writeFileSync(path, ownerRecord(), { flag: 'wx' });
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST' || ownerAlive(name) || existsSync(join(netns.NETNS_RUN_DIR, name))) throw err;
    writeFileSync(path, ownerRecord()); // a stale record of a dead owner, without its namespace
  }
}

/** Empties and deletes a namespace and its owner record; deletes it even if a process survives. */
async function removeNamespace(name: string): Promise<void> {
  let survivor: unknown;
  try {
    await emptyNamespace(name);
  } catch (err) {
    survivor = err;
  }
  if (await netns.exists(name)) await netns.delete(name);
  rmSync(join(LAB_OWNER_DIR, name), { force: true });
  if (survivor !== undefined) throw survivor;
}

function validatePrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(prefix)) {
    throw new ValidationError('prefix', prefix, 'expected 1-32 characters from [A-Za-z0-9_.-], starting with a letter or digit');
  }
}

// ------------------------------------------------------------------------------ exit cleanup

const openLabs = new Set<Lab>();
let exitHookInstalled = false;
function exitHook(): void {
  for (const lab of openLabs) lab.closeSync();
}
function trackOpen(lab: Lab, on: boolean): void {
  if (on) openLabs.add(lab);
  else openLabs.delete(lab);
  if (openLabs.size > 0 && !exitHookInstalled) {
    process.on('exit', exitHook);
    exitHookInstalled = true;
  } else if (openLabs.size === 0 && exitHookInstalled) {
    process.off('exit', exitHook);
    exitHookInstalled = false;
  }
}

// ------------------------------------------------------------------------------------ the lab

interface NsState {
  real: string;
  /** Interfaces the lab knows in this namespace (for validation of addresses and masters). */
  devs: Set<string>;
  bridges: Set<string>;
}

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
    const plan = lab.#validate(options);
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
    validatePrefix(prefix);
    const removed: string[] = [];
    for (const name of await netns.list()) {
      if (!name.startsWith(prefix) || ownerAlive(name)) continue;
      try {
        await removeNamespace(name);
        removed.push(name);
      } catch {
        /* try again at the next sweep */
      }
    }
    let records: string[] = [];
    try {
      records = readdirSync(LAB_OWNER_DIR);
    } catch {
      /* none yet */
    }
    const present = new Set(await netns.list());
    for (const r of records) {
      if (r.startsWith(prefix) && !present.has(r) && !ownerAlive(r)) rmSync(join(LAB_OWNER_DIR, r), { force: true });
    }
    return removed;
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
      throw new VmhostError('ECOMMAND', `${command} ${args.join(' ')} (in lab namespace '${name}') exited ${String(r.code ?? r.signal)}: ${r.stderr.trim()}`);
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
    this.#checkBridge(`bridges.${bridge}`, bridge, spec, st);
    const h = await this.rtnl(name);
    await h.links.add({ kind: 'bridge', name: bridge, up: true, stp: spec.stp ?? false, ...pick(spec) });
    st.devs.add(bridge);
    st.bridges.add(bridge);
  }

  /** Adds a veth link (both ends up) and its addresses. */
  async addLink(link: LabLinkSpec): Promise<void> {
    this.#open();
    const ends = this.#checkLink('link', link, false);
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
    for (const c of this.#children) if (c.pid !== undefined) killPid(c.pid);
    for (const st of this.#ns.values()) {
      for (const p of pidsInSync(st.real)) killPid(p);
      // netns.delete does its work (umount2, unlink) synchronously before returning its promise.
      netns.delete(st.real).catch(() => undefined);
      rmSync(join(LAB_OWNER_DIR, st.real), { force: true });
    }
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
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) killPid(c.pid);
    }
    const results = await Promise.allSettled([...this.#ns.values()].map((st) => removeNamespace(st.real)));
    for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
    this.#children.clear();
    trackOpen(this, false);
    if (errors.length) throw new LabCloseError(errors);
  }

  // -------------------------------------------------------------------------------- internals

  #open(): void {
    if (this.#closing) throw new VmhostError('ELABCLOSED', 'the lab is closed');
  }

  #state(name: string, field = 'ns'): NsState {
    const st = typeof name === 'string' ? this.#ns.get(name) : undefined;
    if (!st) throw new ValidationError(field, name, `no namespace of that name in this lab (${[...this.#ns.keys()].join(', ')})`);
    return st;
  }

  #checkBridge(field: string, name: string, spec: LabBridgeSpec, st: NsState): void {
    validateIfName(name, field);
    if (st.devs.has(name)) throw new ValidationError(field, name, 'interface name already used in this namespace');
    if (spec === null || typeof spec !== 'object') throw new ValidationError(field, spec, 'expected an object');
    if (spec.mac !== undefined) parseMac(spec.mac, `${field}.mac`);
    if (spec.mtu !== undefined) validateInt(spec.mtu, `${field}.mtu`, 68, 65535);
    if (spec.stp !== undefined && typeof spec.stp !== 'boolean') throw new ValidationError(`${field}.stp`, spec.stp, 'expected a boolean');
  }

  /** Validates a link against the known namespaces, and records its interface names. */
  #checkLink(field: string, link: LabLinkSpec, commit: boolean, pending?: Map<string, NsState>): Array<[NsState, string]> {
    if (link === null || typeof link !== 'object') throw new ValidationError(field, link, 'expected { a, b }');
    const lookup = (n: string, f: string): NsState => {
      const st = pending?.get(n) ?? this.#ns.get(n);
      if (!st) throw new ValidationError(f, n, 'no namespace of that name in this lab');
      return st;
    };
    const ends: Array<[LabLinkEnd, string]> = [
      [link.a, `${field}.a`],
      [link.b, `${field}.b`],
    ];
    const added: Array<[NsState, string]> = [];
    for (const [end, f] of ends) {
      if (end === null || typeof end !== 'object') throw new ValidationError(f, end, 'expected { ns, name }');
      const st = lookup(end.ns, `${f}.ns`);
      validateIfName(end.name, `${f}.name`);
      if (st.devs.has(end.name) || added.some(([s, n]) => s === st && n === end.name)) {
        throw new ValidationError(`${f}.name`, end.name, `interface name already used in namespace '${end.ns}'`);
      }
      if (end.mac !== undefined) parseMac(end.mac, `${f}.mac`);
      if (end.mtu !== undefined) validateInt(end.mtu, `${f}.mtu`, 68, 65535);
      if (end.master !== undefined && !st.bridges.has(end.master)) {
        throw new ValidationError(`${f}.master`, end.master, `no bridge of that name in namespace '${end.ns}'`);
      }
      added.push([st, end.name]);
    }
    if (link.addresses !== undefined) {
      if (link.addresses === null || typeof link.addresses !== 'object') throw new ValidationError(`${field}.addresses`, link.addresses, 'expected { a?, b? }');
      for (const side of ['a', 'b'] as const) {
        const list = link.addresses[side];
        if (list === undefined) continue;
        if (!Array.isArray(list)) throw new ValidationError(`${field}.addresses.${side}`, list, 'expected an array of CIDRs');
        list.forEach((c, i) => parseCidr(c, `${field}.addresses.${side}[${i}]`));
      }
    }
    if (commit) for (const [st, n] of added) st.devs.add(n);
    return added;
  }

  /** Validates a declaration; returns the plan, and registers its namespaces (not yet created). */
  #validate(options: Pick<LabOptions, 'namespaces' | 'links' | 'routes'>, adding = false): Plan {
    const nsDecl = options.namespaces;
    if (nsDecl === null || typeof nsDecl !== 'object' || Array.isArray(nsDecl)) {
      throw new ValidationError('namespaces', nsDecl, 'expected an object of namespace declarations');
    }
    const pending = new Map<string, NsState>();
    for (const [name, spec] of Object.entries(nsDecl)) {
      const f = `namespaces.${name}`;
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) throw new ValidationError(f, name, 'a lab namespace name is [A-Za-z0-9_-], starting with a letter or digit');
      if (this.#ns.has(name)) throw new ValidationError(f, name, 'the lab already has a namespace of that name');
      const real = `${this.prefix}${this.id}-${name}`;
      if (real.length > LAB_NAME_MAX) throw new ValidationError(f, name, `the namespace name '${real}' would be longer than ${LAB_NAME_MAX}`);
      if (spec === null || typeof spec !== 'object') throw new ValidationError(f, spec, 'expected an object');
      const st: NsState = { real, devs: new Set(['lo']), bridges: new Set() };
      for (const [br, bs] of Object.entries(spec.bridges ?? {})) {
        this.#checkBridge(`${f}.bridges.${br}`, br, bs, st);
        st.devs.add(br);
        st.bridges.add(br);
      }
      if (spec.sysctls !== undefined) {
        for (const [k, v] of Object.entries(spec.sysctls)) {
          if (!k.startsWith('net.')) throw new ValidationError(`${f}.sysctls`, k, "sysctl keys must start with 'net.'");
          if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
            throw new ValidationError(`${f}.sysctls.${k}`, v, 'expected a string, number or boolean');
          }
        }
      }
      pending.set(name, st);
    }
    if (!adding && pending.size === 0) throw new ValidationError('namespaces', nsDecl, 'declare at least one namespace');
    const links = options.links ?? [];
    if (!Array.isArray(links)) throw new ValidationError('links', links, 'expected an array');
    links.forEach((l, i) => this.#checkLink(`links[${i}]`, l, true, pending));
    for (const [name, spec] of Object.entries(nsDecl)) {
      const st = pending.get(name)!;
      for (const [dev, list] of Object.entries(spec.addresses ?? {})) {
        const f = `namespaces.${name}.addresses.${dev}`;
        if (!st.devs.has(dev)) throw new ValidationError(f, dev, `no interface of that name in namespace '${name}' (lo, its bridges and link ends)`);
        if (!Array.isArray(list)) throw new ValidationError(f, list, 'expected an array of CIDRs');
        list.forEach((c, i) => parseCidr(c, `${f}[${i}]`));
      }
    }
    const routes = options.routes ?? {};
    if (routes === null || typeof routes !== 'object') throw new ValidationError('routes', routes, 'expected an object of route lists by namespace');
    for (const [name, list] of Object.entries(routes)) {
      const st = pending.get(name);
      if (!st) throw new ValidationError(`routes.${name}`, name, 'no namespace of that name in this lab');
      if (!Array.isArray(list)) throw new ValidationError(`routes.${name}`, list, 'expected an array of routes');
      list.forEach((r: RouteSpec, i) => {
        checkRoute(`routes.${name}[${i}]`, r);
        if (r.dev !== undefined && !st.devs.has(r.dev)) throw new ValidationError(`routes.${name}[${i}].dev`, r.dev, `no interface of that name in namespace '${name}'`);
      });
    }
    return { namespaces: nsDecl, links, routes, pending };
  }

  /** Creates what a validated plan declares; on failure removes what it made, then throws. */
  async #build(plan: Plan, closeOnFailure = true): Promise<void> {
    let step = 'namespaces';
    const made: string[] = [];
    /** Runs the tasks concurrently; the first failure (in declaration order) names the step. */
    const phase = async (tasks: Task[]): Promise<void> => {
      const rs = await Promise.allSettled(tasks.map(([, fn]) => fn()));
      const bad = rs.findIndex((r) => r.status === 'rejected');
      if (bad >= 0) {
        const label = tasks[bad]![0];
        step = typeof label === 'function' ? label() : label;
        throw (rs[bad] as PromiseRejectedResult).reason;
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
          rmSync(join(LAB_OWNER_DIR, st.real), { force: true });
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
            async () => (await this.rtnl(n)).links.add({ kind: 'bridge', name: br, up: true, stp: bs.stp ?? false, ...pick(bs) }),
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
    await ha.links.add({ kind: 'veth', name: l.a.name, up: true, ...pick(l.a), ...(l.a.master !== undefined ? { master: l.a.master } : {}), peer });
    await hb.links.set(l.b.name, { up: true, ...(l.b.master !== undefined ? { master: l.b.master } : {}) });
  }
}

/** A step of a build phase: its name (or a function giving it at failure time) and its work. */
type Task = [string | (() => string), () => Promise<unknown>];

interface Plan {
  namespaces: Record<string, LabNamespaceSpec>;
  links: readonly LabLinkSpec[];
  routes: Record<string, readonly RouteSpec[]>;
  pending: Map<string, NsState>;
}

function pick(spec: { mac?: string; mtu?: number }): { mac?: string; mtu?: number } {
  const out: { mac?: string; mtu?: number } = {};
  if (spec.mac !== undefined) out.mac = spec.mac;
  if (spec.mtu !== undefined) out.mtu = spec.mtu;
  return out;
}

function checkRoute(field: string, r: RouteSpec): void {
  if (r === null || typeof r !== 'object') throw new ValidationError(field, r, 'expected a route such as { to, via }');
  if (r.to !== 'default') parseCidr(r.to, `${field}.to`, { defaultFull: true });
  if (r.via !== undefined) validateIp(r.via, `${field}.via`);
  if (r.dev !== undefined) validateIfName(r.dev, `${field}.dev`);
}
