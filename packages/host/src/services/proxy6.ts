/**
 * Plan B for the VMs' public IPv6: a TCP proxy that listens on each VM's IPv6 address and
 * published ports and forwards every connection to the VM's IPv4 address and port.
 *
 * {@link TcpProxy} is the proxy itself (Node `net` streams, in this process). The service
 * functions run it as a detached process of its own (`proxy6-main`), optionally inside a network
 * namespace, so that it outlives the CLI that applied the host: {@link startProxyService}
 * (idempotent, restarts on a changed config), {@link stopProxyService} and
 * {@link proxyServiceStatus}. The service's files live in one directory: `proxy6.json` (its
 * config), `proxy6.pid`, `proxy6.log` (its stderr) and, on SIGUSR1, `proxy6.stats.json`.
 * @module
 */
import { createRequire } from 'node:module';
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netns, SystemError, ValidationError, validateInt, type NetnsRef } from '@vmhost/net';
import { ProxyServiceError } from '../errors.js';
import { howEnded, installConfig, serviceStatus, startDetached, stopService, tail, type ServiceSpec, type ServiceStartResult, type ServiceStatus } from './supervisor.js';

/** One forwarded port: connections to `listen` are relayed to `target`. */
export interface ProxyRoute {
  /** Local address (IPv6 or IPv4) and port to listen on. Port 0: any free port (see {@link TcpProxy.stats}). */
  listen: { address: string; port: number };
  /** Where to connect: an IP address or a host name, and a port. */
  target: { host: string; port: number };
  /** A label for stats and logs. Default `[address]:port` of `listen`. */
  name?: string;
}

/** The proxy's routes and limits. */
export interface ProxyOptions {
  routes: ProxyRoute[];
  /** Open connections per route; more are closed at once (counted as `refused`). Default 256. */
  maxConnections?: number;
  /** A connection with no traffic either way for this long is closed on both sides. Default 300000. */
  idleTimeoutMs?: number;
  /** Connecting to the target may take this long; then the client is closed. Default 5000. */
  connectTimeoutMs?: number;
}

/** Counters of one route, from {@link TcpProxy.stats}. */
export interface ProxyRouteStats {
  name: string;
  /** The bound address and port (the real port when 0 was asked for). */
  listen: { address: string; port: number };
  target: { host: string; port: number };
  /** Connections open now. */
  active: number;
  /** Connections accepted and relayed (refused ones not included). */
  total: number;
  /** Connections closed at once because `maxConnections` were open. */
  refused: number;
  /** Connections that ended with an error: target refused or unreachable, connect timeout, reset. */
  errors: number;
}

/** Default {@link ProxyOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** Default {@link ProxyOptions.idleTimeoutMs}. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Default {@link ProxyOptions.connectTimeoutMs}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/i;
const MAX_TIMER = 2 ** 31 - 1;

/** A route label: `[2001:db8::2]:8080` or `192.168.0.1:80`. */
function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Checks `o` and returns it with every default filled in and the route names set (the form the
 * service writes to `proxy6.json`; equal options give equal JSON).
 * @throws {ValidationError} naming the field (`routes[1].listen.address`, `maxConnections`, ...).
 */
export function normalizeProxyOptions(o: ProxyOptions): Required<ProxyOptions> & { routes: Array<Required<ProxyRoute>> } {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (!Array.isArray(o.routes) || o.routes.length === 0) throw new ValidationError('routes', o.routes, 'expected a non-empty array');
  const maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  validateInt(maxConnections, 'maxConnections', 1, 1_000_000);
  const idleTimeoutMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  validateInt(idleTimeoutMs, 'idleTimeoutMs', 1, MAX_TIMER);
  const connectTimeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  validateInt(connectTimeoutMs, 'connectTimeoutMs', 1, MAX_TIMER);
  const seen = new Map<string, number>();
  const routes = o.routes.map((r, i): Required<ProxyRoute> => {
    const f = `routes[${i}]`;
    if (!r || typeof r !== 'object') throw new ValidationError(f, r, 'expected { listen, target }');
    if (!r.listen || typeof r.listen !== 'object') throw new ValidationError(`${f}.listen`, r.listen, 'expected { address, port }');
    if (typeof r.listen.address !== 'string' || isIP(r.listen.address) === 0) {
      throw new ValidationError(`${f}.listen.address`, r.listen.address, 'expected an IPv4 or IPv6 address');
    }
    validateInt(r.listen.port, `${f}.listen.port`, 0, 65535);
    if (!r.target || typeof r.target !== 'object') throw new ValidationError(`${f}.target`, r.target, 'expected { host, port }');
    if (typeof r.target.host !== 'string' || (isIP(r.target.host) === 0 && !HOSTNAME.test(r.target.host))) {
      throw new ValidationError(`${f}.target.host`, r.target.host, 'expected an IP address or a host name');
    }
    validateInt(r.target.port, `${f}.target.port`, 1, 65535);
    if (r.name !== undefined && (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 128 || /[\0-\x1f]/.test(r.name))) {
      throw new ValidationError(`${f}.name`, r.name, 'expected 1-128 printable characters');
    }
    if (r.listen.port !== 0) {
      const key = hostPort(r.listen.address, r.listen.port);
      const j = seen.get(key);
      if (j !== undefined) throw new ValidationError(`${f}.listen`, r.listen, `the same address and port as routes[${j}].listen`);
      seen.set(key, i);
    }
    return {
      listen: { address: r.listen.address, port: r.listen.port },
      target: { host: r.target.host, port: r.target.port },
      name: r.name ?? hostPort(r.listen.address, r.listen.port),
    };
  });
  return { routes, maxConnections, idleTimeoutMs, connectTimeoutMs };
}

interface RouteState {
  route: Required<ProxyRoute>;
  server: Server;
  port: number;
  active: number;
  total: number;
  refused: number;
  errors: number;
}

/**
 * A TCP proxy over one or more routes. Each accepted connection is paused until the target
 * connection is up, then piped both ways; a half-close (FIN) on one side is passed to the other
 * (allowHalfOpen), an error or reset on one side destroys the other, and nothing a peer does can
 * throw out of the proxy.
 */
export class TcpProxy {
  readonly #routes: RouteState[];
  readonly #opts: { maxConnections: number; idleTimeoutMs: number; connectTimeoutMs: number };
  readonly #sockets = new Set<Socket>();
  #closed = false;

  private constructor(routes: RouteState[], opts: { maxConnections: number; idleTimeoutMs: number; connectTimeoutMs: number }) {
    this.#routes = routes;
    this.#opts = opts;
  }

  /**
   * Validates `o` and listens on every route (IPv6 addresses with `ipv6Only`); resolves when all
   * listen. When one cannot listen, those already listening are closed again.
   * @throws {ValidationError} for bad options. {@link SystemError} (`EADDRNOTAVAIL`,
   *   `EADDRINUSE`, `EACCES`, ...) naming the route when a listen fails.
   */
  static async listen(o: ProxyOptions): Promise<TcpProxy> {
    const n = normalizeProxyOptions(o);
    const states: RouteState[] = [];
    const proxy = new TcpProxy(states, { maxConnections: n.maxConnections, idleTimeoutMs: n.idleTimeoutMs, connectTimeoutMs: n.connectTimeoutMs });
    try {
      for (const route of n.routes) {
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
        const st: RouteState = { route, server, port: route.listen.port, active: 0, total: 0, refused: 0, errors: 0 };
        server.on('connection', (s) => proxy.#accept(st, s));
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: route.listen.address, port: route.listen.port, ipv6Only: isIP(route.listen.address) === 6, exclusive: true, backlog: 511 }, () => {
            server.off('error', reject);
            resolve();
          });
        }).catch((err: unknown) => {
          throw SystemError.from(err, `proxy route ${route.name}: listening on ${hostPort(route.listen.address, route.listen.port)}`);
        });
        server.on('error', () => {
          /* accept errors (EMFILE, ...): the server keeps listening */
        });
        const addr = server.address();
        if (addr && typeof addr === 'object') st.port = addr.port;
        states.push(st);
      }
    } catch (err) {
      await proxy.close();
      throw err;
    }
    return proxy;
  }

  #accept(st: RouteState, client: Socket): void {
    if (this.#closed || st.active >= this.#opts.maxConnections) {
      st.refused++;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    st.active++;
    st.total++;
    this.#sockets.add(client);
    const upstream = connect({ host: st.route.target.host, port: st.route.target.port, allowHalfOpen: true });
    this.#sockets.add(upstream);
    let failed = false;
    let open = 2;
    const fail = (): void => {
      if (!failed) {
        failed = true;
        st.errors++;
      }
      client.destroy();
      upstream.destroy();
    };
    const closed = (s: Socket) => (): void => {
      this.#sockets.delete(s);
      // a side that closed cleanly while the other still waits for nothing: end the pair
      if (--open === 0) st.active--;
    };
    client.on('close', closed(client));
    upstream.on('close', closed(upstream));
    client.on('error', fail);
    upstream.on('error', fail);
    const connectTimer = setTimeout(fail, this.#opts.connectTimeoutMs);
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      const idle = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.setTimeout(this.#opts.idleTimeoutMs, idle);
      upstream.setTimeout(this.#opts.idleTimeoutMs, idle);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      client.pipe(upstream);
      upstream.pipe(client);
      // both sides finished (FIN each way): release the sockets
      let ended = 0;
      const done = (): void => {
        if (++ended === 2) {
          client.destroy();
          upstream.destroy();
        }
      };
      client.once('end', () => upstream.once('finish', done));
      upstream.once('end', () => client.once('finish', done));
      client.resume();
    });
    upstream.once('close', () => clearTimeout(connectTimer));
    // the client hung up before the target answered
    client.once('close', () => {
      if (upstream.connecting) upstream.destroy();
    });
  }

  /** Counters per route, in the order of the routes. */
  stats(): ProxyRouteStats[] {
    return this.#routes.map((s) => ({
      name: s.route.name,
      listen: { address: s.route.listen.address, port: s.port },
      target: { ...s.route.target },
      active: s.active,
      total: s.total,
      refused: s.refused,
      errors: s.errors,
    }));
  }

  /** Stops listening and destroys every open connection. Resolves when the listeners are closed. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await Promise.all(
      this.#routes.map((r) => new Promise<void>((resolve) => (r.server.listening ? r.server.close(() => resolve()) : resolve()))),
    );
  }
}

// ------------------------------------------------------------------------------ the service

/** Options of {@link startProxyService}. */
export type ProxyServiceOptions = ProxyOptions & {
  /** Absolute; holds proxy6.json, proxy6.pid, proxy6.log (created if missing). */
  dir: string;
  /** Run the service inside this network namespace. Default: the caller's. */
  netns?: NetnsRef;
};

/** The config file the service reads (what `proxy6-main` gets as its argument). */
export interface ProxyServiceConfig extends Required<ProxyOptions> {
  version: 1;
  /** The service directory (pidfile, stats). */
  dir: string;
}

function serviceFiles(dir: string): { config: string; pid: string; log: string; stats: string } {
  return { config: join(dir, 'proxy6.json'), pid: join(dir, 'proxy6.pid'), log: join(dir, 'proxy6.log'), stats: join(dir, 'proxy6.stats.json') };
}

/** Where the service's entry is, and the node flags to run it: the .ts source through tsx, or dist's .js. */
function serviceEntry(): { entry: string; flags: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    let tsx: string;
    try {
      tsx = import.meta.resolve('tsx');
    } catch {
      const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
      tsx = new URL('dist/loader.mjs', `file://${dirname(pkg)}/`).href;
    }
    return { entry: join(dirname(here), 'proxy6-main.ts'), flags: ['--conditions=vmhost-source', '--import', tsx] };
  }
  return { entry: join(dirname(here), 'proxy6-main.js'), flags: [] };
}

/** The supervised proxy service of `dir` (see service.ts). */
function service(dir: string): ServiceSpec {
  const f = serviceFiles(dir);
  return {
    dir,
    config: f.config,
    pidFile: f.pid,
    // a proxy6-main whose argument is this directory's config file
    matches: (argv, config) => argv.length >= 3 && argv[argv.length - 1] === config && /proxy6-main\.[jt]s$/.test(argv[argv.length - 2] ?? ''),
    stuckError: (pid) => new ProxyServiceError('EPROXY_STOP', `proxy service (pid ${pid}) did not exit after SIGKILL`),
  };
}

/** What {@link proxyServiceStatus} reports: running, the pid, and the sha256 of the proxy6.json the service was started with, when present. */
export type ProxyServiceStatus = ServiceStatus;

/** Whether the proxy service for `dir` runs (pidfile or /proc scan, checked against /proc/PID/cmdline), and its config hash. */
export function proxyServiceStatus(dir: string): ProxyServiceStatus {
  return serviceStatus(service(dir));
}

/**
 * Result of {@link startProxyService}: the pid; `restarted` when a service of ours ran with another
 * config (or in another namespace) and was replaced; `changed` false only when the running
 * service already had this config (then nothing was done).
 */
export type ProxyServiceStartResult = ServiceStartResult;

/**
 * Starts the proxy as a detached service process (`node proxy6-main <dir>/proxy6.json`, inside
 * `o.netns` when given), idempotently like dnsmasq: same config and namespace → nothing done;
 * changed → stopped and started again; a stale pidfile is removed. Resolves when the service has
 * listened on every route and said `ready`; it then runs on after this process exits.
 * @throws {ValidationError} for bad options (before anything is touched).
 * @throws {ProxyServiceError} `EPROXY_EXIT` when the service exits during startup (its stderr
 *   included, e.g. `EADDRNOTAVAIL` for an address not assigned), `EPROXY_TIMEOUT` when not ready
 *   within `timeoutMs` (default 10000; it is killed then), `EPROXY_SPAWN` when it cannot start.
 */
export async function startProxyService(o: ProxyServiceOptions, opts: { timeoutMs?: number } = {}): Promise<ProxyServiceStartResult> {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (typeof o.dir !== 'string' || !isAbsolute(o.dir) || o.dir.includes('\0')) throw new ValidationError('dir', o.dir, 'expected an absolute path');
  const n = normalizeProxyOptions(o);
  if (o.netns !== undefined) netns.netnsPath(o.netns, 'netns');
  const f = serviceFiles(o.dir);
  const cfg: ProxyServiceConfig = { version: 1, dir: o.dir, ...n };
  const svc = service(o.dir);
  const { unchanged, restarted } = await installConfig(svc, `${JSON.stringify(cfg, null, 2)}\n`, o.netns);
  if (unchanged !== undefined) return { pid: unchanged, restarted: false, changed: false };

  const { entry, flags } = serviceEntry();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pid = await startDetached(svc, {
    command: process.execPath,
    args: [...flags, entry, f.config],
    ...(o.netns !== undefined ? { netns: o.netns } : {}),
    output: f.log,
    pipeStdout: true,
    timeoutMs,
    // it has listened on every route and said so
    ready: (_pid, stdout) => /^ready$/m.test(stdout),
    errors: {
      spawnThrew: (cause) => new ProxyServiceError('EPROXY_SPAWN', `cannot start the proxy service (${process.execPath})`, { cause }),
      spawnFailed: (e) => new ProxyServiceError('EPROXY_SPAWN', `cannot start the proxy service: ${e.message}`, { cause: e }),
      exited: (code, signal) =>
        new ProxyServiceError('EPROXY_EXIT', `the proxy service ${howEnded(code, signal)} during startup`, { exitCode: code, signal, stderr: tail(f.log) }),
      timedOut: () => new ProxyServiceError('EPROXY_TIMEOUT', `the proxy service did not get ready within ${timeoutMs} ms`, { stderr: tail(f.log) }),
    },
  });
  return { pid, restarted, changed: true };
}

/**
 * Stops the proxy service for `dir`: SIGTERM by pid (checked against /proc/PID/cmdline; the
 * service closes its listeners and connections), SIGKILL after 5 s; removes the pidfile.
 * Resolves true if it was running.
 */
export async function stopProxyService(dir: string): Promise<boolean> {
  return stopService(service(dir));
}
