/**
 * The IPv6 proxy's options, their defaults and validation, and the pure rules behind its limits:
 * what counts as one source ({@link sourceKey}) and how many connections a file limit allows
 * ({@link connectionBudget}). See docs/host-dnsmasq-and-proxy.md for why these values.
 * @module
 */
import { isIP } from 'node:net';
import { ip, ValidationError, validateInt } from '@vmhost/net';

/** One forwarded port: connections to `listen` are relayed to `target`. */
export interface ProxyRoute {
  /** Local address (IPv6 or IPv4) and port to listen on. Port 0: any free port (see `TcpProxy.stats`). */
  listen: { address: string; port: number };
  /** Where to connect: an IP address or a host name, and a port. */
  target: { host: string; port: number };
  /** A label for stats and logs. Default `[address]:port` of `listen`. */
  name?: string;
}

/**
 * The proxy's routes and limits. A source is an IPv6 /64 or an IPv4 address (`sourceKey` in proxy6-table.ts).
 * When a route (or the whole proxy) is full, a new connection from a source that holds fewer
 * connections there than the biggest holder takes the place of the least recently active
 * connection of a biggest holder (`evicted`); one from a biggest holder is refused.
 */
export interface ProxyOptions {
  /** The forwarded ports (at least one). */
  routes: ProxyRoute[];
  /** Open connections per route. Default 256. */
  maxConnections?: number;
  /** Open connections of one source over all routes; more are refused at once. Default 32. */
  maxConnectionsPerSource?: number;
  /**
   * Open connections over all routes. Default 4096. The service raises its open-file limit to
   * fit (two descriptors per connection); when it cannot, it lowers this cap to what fits.
   */
  maxTotalConnections?: number;
  /** A connection with no traffic either way for this long is closed on both sides. Default 300000. */
  idleTimeoutMs?: number;
  /** Connecting to the target may take this long; then the client is closed. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * A connection that has moved no byte in either direction this long after it was accepted is
   * closed. Either direction: a server that speaks first (SSH, SMTP banners) satisfies it for a
   * client that waits for the banner. Default 10000.
   */
  firstByteTimeoutMs?: number;
  /** Every connection is closed this long after it was accepted, busy or not. Default 3600000 (1 h). */
  maxLifetimeMs?: number;
}

/** The limits of {@link ProxyOptions} (everything but the routes): the host file's `ipv6.proxy`. */
export type ProxyLimits = Omit<ProxyOptions, 'routes'>;

/** {@link ProxyOptions} with every default filled in and every route named. */
export type NormalizedProxyOptions = Required<ProxyOptions> & { routes: Array<Required<ProxyRoute>> };

/** Counters of one route, from `TcpProxy.stats`. */
export interface ProxyRouteStats {
  /** The route's name (`ProxyRoute.name`). */
  name: string;
  /** The bound address and port (the real port when 0 was asked for). */
  listen: { address: string; port: number };
  /** Where connections are relayed to. */
  target: { host: string; port: number };
  /** Connections open now. */
  active: number;
  /** Connections accepted and relayed (refused ones not included). */
  total: number;
  /** Connections closed at once, unrelayed: the route or proxy was full and their source a biggest holder, or the per-source limit. */
  refused: number;
  /** Of `refused`, those of a source at `maxConnectionsPerSource`. */
  sourceLimited: number;
  /** Connections closed to make room for a connection of a source holding fewer. */
  evicted: number;
  /** Connections closed by a timeout (idle, no first byte, lifetime). */
  timeouts: { idle: number; firstByte: number; lifetime: number };
  /** Connections that ended with an error: target refused or unreachable, connect timeout, reset. */
  errors: number;
}

/** Default {@link ProxyOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** Default {@link ProxyOptions.maxConnectionsPerSource}. */
export const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 32;
/** Default {@link ProxyOptions.maxTotalConnections}. */
export const DEFAULT_MAX_TOTAL_CONNECTIONS = 4096;
/** Default {@link ProxyOptions.idleTimeoutMs}. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Default {@link ProxyOptions.connectTimeoutMs}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default {@link ProxyOptions.firstByteTimeoutMs}. */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/** Default {@link ProxyOptions.maxLifetimeMs}. */
export const DEFAULT_MAX_LIFETIME_MS = 3_600_000;
/** Upper bound of the connection counts (a million connections need two million descriptors). */
export const MAX_CONNECTIONS_LIMIT = 1_000_000;

/** Descriptors the service keeps for itself besides two per connection and one per listener. */
export const FD_RESERVE = 128;

const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/i;
const MAX_TIMER = 2 ** 31 - 1;

/** A route label: `[2001:db8::2]:8080` or `192.168.0.1:80`. */
export function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Checks `o` and returns it with every default filled in and the route names set (the form the
 * service writes to `proxy6.json`; equal options give equal JSON).
 * @throws {ValidationError} naming the field (`routes[1].listen.address`, `maxConnections`, ...).
 */
export function normalizeProxyOptions(o: ProxyOptions): NormalizedProxyOptions {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (!Array.isArray(o.routes) || o.routes.length === 0) throw new ValidationError('routes', o.routes, 'expected a non-empty array');
  const count = (v: number | undefined, field: string, dflt: number): number => {
    const n = v ?? dflt;
    validateInt(n, field, 1, MAX_CONNECTIONS_LIMIT);
    return n;
  };
  const timer = (v: number | undefined, field: string, dflt: number): number => {
    const n = v ?? dflt;
    validateInt(n, field, 1, MAX_TIMER);
    return n;
  };
  const maxConnections = count(o.maxConnections, 'maxConnections', DEFAULT_MAX_CONNECTIONS);
  const maxConnectionsPerSource = count(o.maxConnectionsPerSource, 'maxConnectionsPerSource', DEFAULT_MAX_CONNECTIONS_PER_SOURCE);
  const maxTotalConnections = count(o.maxTotalConnections, 'maxTotalConnections', DEFAULT_MAX_TOTAL_CONNECTIONS);
  const idleTimeoutMs = timer(o.idleTimeoutMs, 'idleTimeoutMs', DEFAULT_IDLE_TIMEOUT_MS);
  const connectTimeoutMs = timer(o.connectTimeoutMs, 'connectTimeoutMs', DEFAULT_CONNECT_TIMEOUT_MS);
  const firstByteTimeoutMs = timer(o.firstByteTimeoutMs, 'firstByteTimeoutMs', DEFAULT_FIRST_BYTE_TIMEOUT_MS);
  const maxLifetimeMs = timer(o.maxLifetimeMs, 'maxLifetimeMs', DEFAULT_MAX_LIFETIME_MS);
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
  return { routes, maxConnections, maxConnectionsPerSource, maxTotalConnections, idleTimeoutMs, connectTimeoutMs, firstByteTimeoutMs, maxLifetimeMs };
}

/**
 * The source a peer address counts for: its /64 for IPv6 (`2001:db8:1:2::/64`), the address
 * itself for IPv4 (also written IPv4-mapped, `::ffff:192.0.2.1`). One host (or LAN) holds a whole
 * /64 and picks addresses from it freely, so a per-address limit would not limit it. A zone
 * (`%eth0`) is ignored. An address that does not parse is its own source.
 */
export function sourceKey(address: string): string {
  const pct = address.indexOf('%');
  const text = pct >= 0 ? address.slice(0, pct) : address;
  let b: Uint8Array;
  try {
    b = ip.parseAddress(text);
  } catch {
    return text;
  }
  if (b.length === 4) return ip.formatAddress(b);
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return ip.formatAddress(b.subarray(12));
  const net = new Uint8Array(16);
  net.set(b.subarray(0, 8));
  return `${ip.formatAddress(net)}/64`;
}

/**
 * How many connections fit in `fileLimit` descriptors: two per connection (the client's and the
 * target's), after one per listener and {@link FD_RESERVE} for the process itself. The
 * service's total cap is the smaller of this and `maxTotalConnections`.
 */
export function connectionBudget(fileLimit: number, routes: number): number {
  return Math.max(0, Math.floor((fileLimit - routes - FD_RESERVE) / 2));
}

/** The open-file limit that {@link connectionBudget} needs for `connections` connections over `routes` listeners. */
export function filesNeeded(connections: number, routes: number): number {
  return 2 * connections + routes + FD_RESERVE;
}
