/**
 * The `ipv6` section: the provider's prefix (the VMs' addresses come from it), the mode (routed:
 * proxy NDP; proxy: the TCP proxy of plan B), router advertisements on the uplink, and the
 * proxy's limits. Checks the bridge's IPv6 address against the prefix.
 * @module
 */
import { contains, prefixText, toCidr } from '../ip.js';
import type { ResolvedHost } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { DEFAULTS, IPV6_KEYS, IPV6_MODES, MAX_PROXY_CONNECTIONS, MAX_TIMER_MS, PROXY_KEYS } from './schema.js';

/** Resolves `ipv6` (`v`, as written; left out: undefined); undefined after a problem. */
export function resolveIpv6(ctx: SpecContext, v: unknown): ResolvedHost['ipv6'] | undefined {
  const { c } = ctx;
  ctx.hasIpv6 = !absent(v);
  if (!ctx.hasIpv6) return undefined;
  const s = c.obj(v, 'ipv6', IPV6_KEYS);
  if (!s) return undefined;
  const pv = at(s, 'prefix');
  let prefix6 = c.prefix(pv, 'ipv6.prefix', 6);
  if (prefix6 && prefix6.addr.value !== prefix6.first) {
    prefix6 = c.add('ipv6.prefix', pv, `host bits are set; the network is ${prefixText(prefix6)}`);
  }
  ctx.prefix6 = prefix6;
  const mode = c.oneOf(at(s, 'mode'), 'ipv6.mode', IPV6_MODES);
  const acceptRa = c.bool(at(s, 'acceptRa'), 'ipv6.acceptRa', DEFAULTS.acceptRa);
  const proxy = resolveProxyLimits(ctx, at(s, 'proxy'));
  const b6 = ctx.bridge6;
  if (prefix6 && b6 && (!contains(prefix6, b6.addr.value) || b6.length < prefix6.length)) {
    c.add('bridge.ipv6', ctx.bridge6Given, `not inside ipv6.prefix ${prefixText(prefix6)}`);
  }
  if (mode === 'routed' && ctx.hasBridge && absent(ctx.bridge6Given)) {
    c.add('bridge.ipv6', undefined, "required with ipv6.mode 'routed': it is the VMs' IPv6 gateway");
  }
  if (!prefix6 || !mode || !proxy) return undefined;
  return { prefix: toCidr(prefix6), mode, acceptRa, proxy };
}

/** `ipv6.proxy`: the TCP proxy's limits, with defaults; undefined after a problem. */
function resolveProxyLimits(ctx: SpecContext, proxyV: unknown): NonNullable<ResolvedHost['ipv6']>['proxy'] | undefined {
  const proxy: NonNullable<ResolvedHost['ipv6']>['proxy'] = { ...DEFAULTS.proxy };
  if (absent(proxyV)) return proxy;
  const p = ctx.c.obj(proxyV, 'ipv6.proxy', PROXY_KEYS);
  if (!p) return undefined;
  const n = MAX_PROXY_CONNECTIONS;
  const limits = { maxConnections: n, maxConnectionsPerSource: n, maxTotalConnections: n, idleTimeoutMs: MAX_TIMER_MS, connectTimeoutMs: MAX_TIMER_MS, firstByteTimeoutMs: MAX_TIMER_MS, maxLifetimeMs: MAX_TIMER_MS };
  let ok = true;
  for (const key of PROXY_KEYS) {
    const v = ctx.c.int(at(p, key), `ipv6.proxy.${key}`, 1, limits[key], DEFAULTS.proxy[key]);
    if (v === undefined) ok = false;
    else proxy[key] = v;
  }
  return ok ? proxy : undefined;
}
