/**
 * Plan B for the VMs' public IPv6: a TCP proxy that listens on each VM's IPv6 address and
 * published ports and forwards every connection to the VM's IPv4 address and port.
 *
 * {@link TcpProxy} is the proxy itself (Node `net` streams, in this process), hardened against
 * abuse: a per-source limit (an IPv6 /64 or an IPv4 address), a per-route and a total cap with
 * eviction of the biggest holders' least active connections (proxy6-table.ts), and idle,
 * first-byte (either direction) and lifetime timeouts. Its options are in proxy6-options.ts.
 * The service that runs it as a detached, unprivileged process of its own is in
 * proxy6-service.ts ({@link startProxyService}, {@link stopProxyService},
 * {@link proxyServiceStatus}, {@link proxyServiceStats}); both are re-exported here.
 * @module
 */
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { SystemError } from '@vmhost/net';
import { hostPort, normalizeProxyOptions, sourceKey, type NormalizedProxyOptions, type ProxyOptions, type ProxyRoute, type ProxyRouteStats } from './proxy6-options.js';
import { admit, SourceGroups } from './proxy6-table.js';

export * from './proxy6-options.js';
export * from './proxy6-service.js';

/** Totals over every route, from {@link TcpProxy.totals}. */
export interface ProxyTotals {
  /** Connections open now. */
  active: number;
  /** Sources (IPv6 /64s, IPv4 addresses) holding a connection now. */
  sources: number;
  /** The total cap in force. */
  maxTotalConnections: number;
}

interface RouteState {
  route: Required<ProxyRoute>;
  server: Server;
  port: number;
  conns: SourceGroups<Conn>;
  stats: Omit<ProxyRouteStats, 'name' | 'listen' | 'target' | 'active'>;
}

/** One relayed connection: the client's socket and the target's. */
interface Conn {
  st: RouteState;
  source: string;
  client: Socket;
  upstream: Socket;
  /** When a byte last moved either way, or when it was accepted (performance.now()). */
  last: number;
  /** A byte has moved (either way). */
  moved: boolean;
  timers: NodeJS.Timeout[];
  /** Taken out of the tables (closed, or being closed). */
  released: boolean;
}

type Limits = Omit<NormalizedProxyOptions, 'routes'>;

/**
 * A TCP proxy over one or more routes. Each accepted connection is paused until the target
 * connection is up, then piped both ways; a half-close (FIN) on one side is passed to the other
 * (allowHalfOpen), an error or reset on one side destroys the other, and nothing a peer does can
 * throw out of the proxy. Admission (per-source limit, caps, eviction) is proxy6-table.ts.
 */
export class TcpProxy {
  readonly #routes: RouteState[];
  readonly #limits: Limits;
  readonly #all = new SourceGroups<Conn>();
  #closed = false;

  private constructor(routes: RouteState[], limits: Limits) {
    this.#routes = routes;
    this.#limits = limits;
  }

  /**
   * Validates `o` and listens on every route (IPv6 addresses with `ipv6Only`); resolves when all
   * listen. When one cannot listen, those already listening are closed again.
   * @throws {ValidationError} for bad options. {@link SystemError} (`EADDRNOTAVAIL`,
   *   `EADDRINUSE`, `EACCES`, ...) naming the route when a listen fails.
   */
  static async listen(o: ProxyOptions): Promise<TcpProxy> {
    const { routes, ...limits } = normalizeProxyOptions(o);
    const states: RouteState[] = [];
    const proxy = new TcpProxy(states, limits);
    try {
      for (const route of routes) {
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
        const st: RouteState = {
          route,
          server,
          port: route.listen.port,
          conns: new SourceGroups(),
          stats: { total: 0, refused: 0, sourceLimited: 0, evicted: 0, timeouts: { idle: 0, firstByte: 0, lifetime: 0 }, errors: 0 },
        };
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

  #refuse(st: RouteState, client: Socket, bySource: boolean): void {
    st.stats.refused++;
    if (bySource) st.stats.sourceLimited++;
    client.on('error', () => undefined);
    client.resetAndDestroy();
  }

  #accept(st: RouteState, client: Socket): void {
    const peer = client.remoteAddress;
    if (this.#closed || peer === undefined) {
      // closed, or the peer is gone already (reset before the accept was handled)
      this.#refuse(st, client, false);
      return;
    }
    const source = sourceKey(peer);
    const a = admit({ source, all: this.#all, route: st.conns, perSource: this.#limits.maxConnectionsPerSource, routeCap: this.#limits.maxConnections, totalCap: this.#limits.maxTotalConnections });
    if (!a.ok) {
      this.#refuse(st, client, a.reason === 'source');
      return;
    }
    if (a.evict) {
      a.evict.st.stats.evicted++;
      this.#end(a.evict);
    }
    const upstream = connect({ host: st.route.target.host, port: st.route.target.port, allowHalfOpen: true });
    const c: Conn = { st, source, client, upstream, last: performance.now(), moved: false, timers: [], released: false };
    st.conns.add(source, c);
    this.#all.add(source, c);
    st.stats.total++;
    this.#relay(c);
  }

  /** Takes `c` out of the tables and stops its timers (once). */
  #release(c: Conn): void {
    if (c.released) return;
    c.released = true;
    for (const t of c.timers) clearTimeout(t);
    c.st.conns.delete(c.source, c);
    this.#all.delete(c.source, c);
  }

  /** Closes both sides of `c` now. */
  #end(c: Conn): void {
    this.#release(c);
    c.client.destroy();
    c.upstream.destroy();
  }

  #relay(c: Conn): void {
    const { st, client, upstream } = c;
    const l = this.#limits;
    let failed = false;
    let open = 2;
    const fail = (): void => {
      if (!failed) {
        failed = true;
        st.stats.errors++;
      }
      this.#end(c);
    };
    const timeout = (which: keyof ProxyRouteStats['timeouts']) => (): void => {
      if (c.released) return;
      st.stats.timeouts[which]++;
      this.#end(c);
    };
    const closed = (): void => {
      if (--open === 0) this.#release(c);
    };
    client.on('close', closed);
    upstream.on('close', closed);
    client.on('error', fail);
    upstream.on('error', fail);
    const connectTimer = setTimeout(fail, l.connectTimeoutMs);
    // no byte either way within firstByteTimeoutMs of the accept (cleared by the first byte)
    const firstByte = setTimeout(timeout('firstByte'), l.firstByteTimeoutMs);
    c.timers.push(connectTimer, firstByte, setTimeout(timeout('lifetime'), l.maxLifetimeMs));
    const moved = (): void => {
      c.last = performance.now();
      if (!c.moved) {
        c.moved = true;
        clearTimeout(firstByte);
      }
    };
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      if (c.released) return;
      const idle = timeout('idle');
      client.setTimeout(l.idleTimeoutMs, idle);
      upstream.setTimeout(l.idleTimeoutMs, idle);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      client.on('data', moved);
      upstream.on('data', moved);
      client.pipe(upstream);
      upstream.pipe(client);
      // both sides finished (FIN each way): release the sockets
      let ended = 0;
      const done = (): void => {
        if (++ended === 2) this.#end(c);
      };
      client.once('end', () => upstream.once('finish', done));
      upstream.once('end', () => client.once('finish', done));
      client.resume();
    });
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
      active: s.conns.size,
      ...s.stats,
      timeouts: { ...s.stats.timeouts },
    }));
  }

  /** Connections and sources over every route, and the total cap in force. */
  totals(): ProxyTotals {
    return { active: this.#all.size, sources: this.#all.sources, maxTotalConnections: this.#limits.maxTotalConnections };
  }

  /** Stops listening and destroys every open connection. Resolves when the listeners are closed. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const c of [...this.#all.all()]) this.#end(c);
    await Promise.all(
      this.#routes.map((r) => new Promise<void>((resolve) => (r.server.listening ? r.server.close(() => resolve()) : resolve()))),
    );
  }
}
