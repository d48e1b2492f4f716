/**
 * The `dhcp` section: dnsmasq's dynamic range (inside the bridge subnet, not its own address),
 * lease time (2 minutes to a year, or infinite), local domain and upstream DNS servers.
 * @module
 */
import { isIP } from 'node:net';
import { ip } from '@vmhost/net';
import type { ResolvedHost } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { DHCP, LEASE_TIME_RE, leaseSeconds } from './schema.js';

const F = DHCP.keys;

/** Resolves `dhcp` (`v`, as written; left out: undefined); undefined after a problem. */
export function resolveDhcp(ctx: SpecContext, v: unknown): ResolvedHost['dhcp'] | undefined {
  const { c } = ctx;
  if (absent(v)) return undefined;
  const d = c.obj(v, 'dhcp', DHCP);
  if (!d) return undefined;
  const range = resolveRange(ctx, at(d, 'range'));
  const leaseTime = resolveLeaseTime(ctx, at(d, 'leaseTime'));
  const domainV = at(d, 'domain');
  const domain = absent(domainV) ? undefined : c.name(domainV, 'dhcp.domain', F.domain);
  const dnsServers = resolveDnsServers(ctx, at(d, 'dnsServers'));
  if (!range || leaseTime === undefined) return undefined;
  return { range, leaseTime, ...(domain !== undefined ? { domain } : {}), ...(dnsServers !== undefined ? { dnsServers } : {}) };
}

/**
 * `dhcp.leaseTime`: `infinite`, or seconds with an optional unit, from dnsmasq's minimum (2
 * minutes: it raises shorter ones silently) to a year. YAML reads `leaseTime: 3600` as a number:
 * whole seconds, taken as written.
 */
function resolveLeaseTime(ctx: SpecContext, ltV: unknown): string | undefined {
  const f = F.leaseTime;
  if (absent(ltV)) return f.default;
  const lt = typeof ltV === 'number' && Number.isSafeInteger(ltV) && ltV > 0 ? String(ltV) : ltV;
  const seconds = typeof lt === 'string' && LEASE_TIME_RE.test(lt) ? leaseSeconds(lt) : undefined;
  if (typeof lt !== 'string' || seconds === undefined) {
    return ctx.c.add('dhcp.leaseTime', ltV, "expected 'infinite' or a number with an optional unit s, m, h, d or w (such as '12h')");
  }
  if (seconds !== 'infinite' && (seconds < f.minSeconds || seconds > f.maxSeconds)) {
    return ctx.c.add('dhcp.leaseTime', ltV, `expected from 2 minutes (dnsmasq's shortest lease) to a year (${f.maxSeconds} s), or 'infinite'`);
  }
  return lt;
}

/** `dhcp.range`: two usable addresses of the bridge subnet, in order, around not the bridge's own. */
function resolveRange(ctx: SpecContext, rangeV: unknown): [string, string] | undefined {
  const { c } = ctx;
  if (!Array.isArray(rangeV) || rangeV.length !== 2) {
    return c.add('dhcp.range', rangeV, rangeV === undefined ? 'required' : 'expected [first, last] (two IPv4 addresses)');
  }
  const a = c.addr(rangeV[0], 'dhcp.range[0]', 4);
  const b = c.addr(rangeV[1], 'dhcp.range[1]', 4);
  const okA = a !== undefined && ctx.inBridgeSubnet(a, 'dhcp.range[0]', rangeV[0]);
  const okB = b !== undefined && ctx.inBridgeSubnet(b, 'dhcp.range[1]', rangeV[1]);
  if (a === undefined || b === undefined || !okA || !okB) return undefined;
  if (ip.compare(a, b) > 0) return c.add('dhcp.range', rangeV, `first address ${a} is after last address ${b}`);
  const own = ctx.bridge4?.address;
  if (own !== undefined && ip.compare(own, a) >= 0 && ip.compare(own, b) <= 0) return c.add('dhcp.range', rangeV, `includes the bridge's own address ${own}`);
  return [a, b];
}

/**
 * `dhcp.dnsServers`: at most 16 IPv4 or IPv6 addresses, canonical, each once; not unspecified,
 * multicast, broadcast or reserved (nothing answers there), not IPv6 link-local (it needs a zone
 * dnsmasq.conf cannot be given here) nor IPv4-mapped (write the IPv4 address). Loopback (a
 * resolver on the host) and IPv4 link-local (cloud resolvers such as 169.254.169.253) are fine.
 */
function resolveDnsServers(ctx: SpecContext, serversV: unknown): string[] | undefined {
  const { c } = ctx;
  if (absent(serversV)) return undefined;
  if (!Array.isArray(serversV)) return c.add('dhcp.dnsServers', serversV, 'expected a list of IPv4 or IPv6 addresses');
  if (serversV.length > F.dnsServers.maxItems) return c.add('dhcp.dnsServers', serversV, `at most ${F.dnsServers.maxItems} servers`);
  const ok: string[] = [];
  const seen = new Map<string, string>();
  serversV.forEach((v, i) => {
    const path = `dhcp.dnsServers[${i}]`;
    const fam = typeof v === 'string' ? isIP(v) : 0;
    const a = fam === 4 || fam === 6 ? c.addr(v, path, fam) : c.add(path, v, `expected an IPv4 or IPv6 address${typeof v === 'string' && v.includes('/') ? ' without a prefix length' : ''}`);
    if (a === undefined) return;
    if (!c.ordinary(a, path, v, F.dnsServers.items.refuse[fam === 4 ? 4 : 6])) return;
    const other = seen.get(a);
    if (other !== undefined) return void c.add(path, v, `${a} is already listed as ${other}`);
    seen.set(a, path);
    ok.push(a);
  });
  return ok.length === serversV.length ? ok : undefined;
}
