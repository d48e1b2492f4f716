/**
 * The `ipv6` section: the provider's prefix (the VMs' addresses come from it), the mode (routed:
 * proxy NDP; proxy: the TCP proxy of plan B), router advertisements on the uplink, and the
 * proxy's limits. Checks the bridge's IPv6 address against the prefix.
 * @module
 */
import { ip } from '@vmhost/net';
import type { ResolvedHost } from '../types.js';
import { absent, at } from './checker.js';
import type { SpecContext } from './context.js';
import { DEFAULTS, IPV6, PROXY } from './schema.js';

const F = IPV6.keys;

/** Resolves `ipv6` (`v`, as written; left out: undefined); undefined after a problem. */
export function resolveIpv6(ctx: SpecContext, v: unknown): ResolvedHost['ipv6'] | undefined {
  const { c } = ctx;
  ctx.hasIpv6 = !absent(v);
  if (!ctx.hasIpv6) return undefined;
  const s = c.obj(v, 'ipv6', IPV6);
  if (!s) return undefined;
  const pv = at(s, 'prefix');
  let prefix6 = c.prefix(pv, 'ipv6.prefix', 6);
  if (prefix6 && prefix6.cidr !== prefix6.network) {
    prefix6 = c.add('ipv6.prefix', pv, `host bits are set; the network is ${prefix6.network}`);
  } else if (prefix6 && (prefix6.prefixLength < F.prefix.minLength || prefix6.prefixLength > F.prefix.maxLength)) {
    prefix6 = c.add('ipv6.prefix', pv, `prefix length must be ${F.prefix.minLength} to ${F.prefix.maxLength}: wider would claim most of IPv6 for the VMs, longer leaves no room for them`);
  } else if (prefix6 && !c.ordinary(prefix6, 'ipv6.prefix', pv)) {
    prefix6 = undefined;
  }
  ctx.prefix6 = prefix6;
  ctx.mode6 = c.oneOf(at(s, 'mode'), 'ipv6.mode', F.mode);
  const acceptRa = c.bool(at(s, 'acceptRa'), 'ipv6.acceptRa', F.acceptRa);
  const learnV = at(s, 'learn');
  const learn = c.bool(learnV, 'ipv6.learn', F.learn);
  const learnLimit = c.int(at(s, 'learnLimit'), 'ipv6.learnLimit', F.learnLimit);
  if (learn === true && ctx.mode6 === 'proxy') c.add('ipv6.learn', learnV, "needs ipv6.mode 'routed' (proxy neighbours and routes are what it adds)");
  const proxy = resolveProxyLimits(ctx, at(s, 'proxy'));
  const b6 = ctx.bridge6;
  if (prefix6 && b6 && !ip.contains(prefix6, b6)) {
    c.add('bridge.ipv6', ctx.bridge6Given, `not inside ipv6.prefix ${prefix6.network}`);
  }
  if (ctx.mode6 === 'routed' && ctx.hasBridge && absent(ctx.bridge6Given)) {
    c.add('bridge.ipv6', undefined, "required with ipv6.mode 'routed': it is the VMs' IPv6 gateway");
  }
  if (!prefix6 || !ctx.mode6 || !proxy || acceptRa === undefined || learn === undefined || learnLimit === undefined) return undefined;
  return { prefix: prefix6, mode: ctx.mode6, acceptRa, learn, learnLimit, proxy };
}

/** `ipv6.proxy`: the TCP proxy's limits, with defaults; undefined after a problem. */
function resolveProxyLimits(ctx: SpecContext, proxyV: unknown): NonNullable<ResolvedHost['ipv6']>['proxy'] | undefined {
  const keys = PROXY.keys;
  const proxy: NonNullable<ResolvedHost['ipv6']>['proxy'] = { ...DEFAULTS.proxy };
  if (absent(proxyV)) return proxy;
  const p = ctx.c.obj(proxyV, 'ipv6.proxy', PROXY);
  if (!p) return undefined;
  let ok = true;
  for (const key of Object.keys(keys) as Array<keyof typeof keys>) {
    const v = ctx.c.int(at(p, key), `ipv6.proxy.${key}`, keys[key]);
    if (v === undefined) ok = false;
    else proxy[key] = v;
  }
  return ok ? proxy : undefined;
}
