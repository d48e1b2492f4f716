/**
 * The `dhcp` section: dnsmasq's dynamic range (inside the bridge subnet, not its own address),
 * lease time, local domain and upstream DNS servers.
 * @module
 */
import { isIP } from 'node:net';
import { ip } from '@vmhost/net';
import type { ResolvedHost } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { DEFAULTS, DHCP_KEYS, DNS_LABEL_RE, LEASE_TIME_RE } from './schema.js';

/** Resolves `dhcp` (`v`, as written; left out: undefined); undefined after a problem. */
export function resolveDhcp(ctx: SpecContext, v: unknown): ResolvedHost['dhcp'] | undefined {
  const { c } = ctx;
  if (absent(v)) return undefined;
  const d = c.obj(v, 'dhcp', DHCP_KEYS);
  if (!d) return undefined;
  const range = resolveRange(ctx, at(d, 'range'));
  let leaseTime: string | undefined = DEFAULTS.leaseTime;
  const ltV = at(d, 'leaseTime');
  if (!absent(ltV)) {
    // YAML reads `leaseTime: 3600` as a number: take whole seconds as written.
    const lt = typeof ltV === 'number' && Number.isSafeInteger(ltV) && ltV >= 0 ? String(ltV) : ltV;
    leaseTime = typeof lt === 'string' && LEASE_TIME_RE.test(lt) ? lt : c.add('dhcp.leaseTime', ltV, "expected a number with an optional unit s, m, h, d or w (such as '12h'), or 'infinite'");
  }
  let domain: string | undefined;
  const domainV = at(d, 'domain');
  if (!absent(domainV)) {
    domain = c.str(domainV, 'dhcp.domain');
    if (domain !== undefined && (domain.length > 253 || !domain.split('.').every((l) => DNS_LABEL_RE.test(l)))) {
      domain = c.add('dhcp.domain', domainV, "expected DNS labels of a-z, 0-9 and '-' (1-63 characters each, not starting or ending with '-'), separated by '.'");
    }
  }
  const dnsServers = resolveDnsServers(ctx, at(d, 'dnsServers'));
  if (!range || leaseTime === undefined) return undefined;
  return { range, leaseTime, ...(domain !== undefined ? { domain } : {}), ...(dnsServers !== undefined ? { dnsServers } : {}) };
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
  if (!a || !b || !okA || !okB) return undefined;
  if (ip.compare(a, b) > 0) return c.add('dhcp.range', rangeV, `first address ${a} is after last address ${b}`);
  const own = ctx.bridge4?.address;
  if (own !== undefined && ip.compare(own, a) >= 0 && ip.compare(own, b) <= 0) return c.add('dhcp.range', rangeV, `includes the bridge's own address ${own}`);
  return [a, b];
}

/** `dhcp.dnsServers`: IPv4 or IPv6 addresses, canonical. */
function resolveDnsServers(ctx: SpecContext, serversV: unknown): string[] | undefined {
  const { c } = ctx;
  if (absent(serversV)) return undefined;
  if (!Array.isArray(serversV)) return c.add('dhcp.dnsServers', serversV, 'expected a list of IPv4 or IPv6 addresses');
  const ok: string[] = [];
  serversV.forEach((v, i) => {
    const fam = typeof v === 'string' ? isIP(v) : 0;
    const a = fam === 4 || fam === 6 ? c.addr(v, `dhcp.dnsServers[${i}]`, fam) : c.add(`dhcp.dnsServers[${i}]`, v, `expected an IPv4 or IPv6 address${typeof v === 'string' && v.includes('/') ? ' without a prefix length' : ''}`);
    if (a !== undefined) ok.push(a);
  });
  return ok.length === serversV.length ? ok : undefined;
}
