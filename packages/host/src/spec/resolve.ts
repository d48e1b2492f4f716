/**
 * Resolution of a host file's data: every section is checked by its own resolver (bridge.ts,
 * dhcp.ts, ipv6.ts, cloud-init.ts, vms.ts) in document order, sharing one {@link SpecContext}; defaults are
 * filled in. Turns what users write ({@link HostFile}) into the {@link ResolvedHost} every other
 * module works on, or throws one {@link HostSpecError} listing every problem found, each with the
 * path of the bad field (`vms[1].forwards[0].port`). No I/O.
 * @module
 */
import { ip } from '@vmhost/net';
import { formatValue, HostSpecError, type HostSpecProblem } from '../errors.js';
import type { QemuUser, ResolvedHost } from '../types.js';
import { resolveBridge } from './bridge.js';
import { resolveCloudInitDefaults } from './cloud-init.js';
import { absent, at, droppedProblem } from './checker.js';
import { SpecContext } from './context.js';
import { resolveDhcp } from './dhcp.js';
import { resolveIpv6 } from './ipv6.js';
import { HOST, MAX_DEPTH, QEMU } from './schema.js';
import { resolveVms } from './vms.js';

/**
 * Validates a host file's data (as parsed from YAML/JSON, or written in code) and fills in the
 * defaults documented in types.ts. Everything is checked before anything is returned; the result
 * is a fresh object (the input is not modified) with keys in a fixed order. No I/O: whether the
 * kernel, disks or uplink exist is checked when applying.
 *
 * In optional places `null` (YAML `~` or an empty value) counts as left out. Data nested deeper
 * than 32 levels (or cyclic) is refused as a whole.
 * @param baseDir Directory relative paths are resolved against (itself resolved against the cwd).
 * @throws {HostSpecError} listing every problem found.
 */
export function resolveHost(input: unknown, baseDir: string): ResolvedHost {
  return resolveSpec(input, baseDir);
}

/**
 * How deep `v` nests mappings and lists, counted up to `limit + 1` (a cycle counts as too deep).
 * Iterative, so that no input can overflow the stack; each object is walked again only when
 * reached deeper than before, so shared subtrees (YAML aliases) cost no more than their depth.
 */
export function nestingDepth(v: unknown, limit: number): number {
  let max = 0;
  const seen = new Map<object, number>();
  // objects and their depths side by side, not a pair per object (a 300-VM file has ~2,000 objects)
  const objects: unknown[] = [v];
  const depths: number[] = [1];
  const push = (y: unknown, d: number): void => {
    if (typeof y === 'object' && y !== null) {
      objects.push(y);
      depths.push(d);
    }
  };
  while (objects.length > 0) {
    const x = objects.pop();
    const d = depths.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    if ((seen.get(x) ?? 0) >= d) continue;
    seen.set(x, d);
    if (d > max) max = d;
    if (max > limit) return max;
    if (Array.isArray(x)) for (let i = 0; i < x.length; i++) push(x[i], d + 1);
    else for (const k in x) if (Object.prototype.hasOwnProperty.call(x, k)) push((x as Record<string, unknown>)[k], d + 1);
  }
  return max;
}

/** The `qemu` section (`v`, as written): `user` as {@link QemuUser}. */
function resolveQemu(ctx: SpecContext, v: unknown): { user: QemuUser } | undefined {
  const { c } = ctx;
  if (absent(v)) return { user: 'auto' };
  const q = c.obj(v, 'qemu', QEMU);
  if (!q) return undefined;
  const userV = at(q, 'user');
  const text = absent(userV) ? QEMU.keys.user.default : c.name(userV, 'qemu.user', QEMU.keys.user);
  if (text === undefined) return undefined;
  if (text === 'auto' || text === 'root') return { user: text };
  const ids = /^(\d+):(\d+)$/.exec(text);
  if (!ids) return { user: { user: text } };
  const uid = Number(ids[1]);
  const gid = Number(ids[2]);
  if (uid > 0xfffffffe || gid > 0xfffffffe) {
    c.add('qemu.user', userV, 'UID and GID are at most 4294967294');
    return undefined;
  }
  return { user: { uid, gid } };
}

/** {@link resolveHost}, naming `source` (a path) in the error. */
export function resolveSpec(input: unknown, baseDir: string, source?: string): ResolvedHost {
  if (nestingDepth(input, MAX_DEPTH) > MAX_DEPTH) {
    throw new HostSpecError([{ path: '', value: undefined, message: `the host file nests mappings and lists deeper than ${MAX_DEPTH} levels (or is cyclic)` }], source);
  }
  const ctx = new SpecContext(baseDir);
  const { c } = ctx;
  const top = c.obj(input, '', HOST);
  if (!top) {
    // `obj` reported '' as "required"/"expected a mapping"; make the message say what the file is.
    c.problems[0] = { path: '', value: input, message: `the host file must be a mapping (got ${formatValue(input)})` };
    throw new HostSpecError(c.problems, source);
  }

  const schemaV = at(top, '$schema'); // for editors only
  if (!absent(schemaV)) c.text(schemaV, '$schema', HOST.keys.$schema);
  const nameV = at(top, 'name');
  const name = absent(nameV) ? HOST.keys.name.default : c.name(nameV, 'name', HOST.keys.name);
  ctx.hostName = name;
  const uplink = c.ifName(at(top, 'uplink'), 'uplink');
  ctx.claimIf(uplink, 'uplink');
  const publicV = at(top, 'publicIPv4');
  let publicIPv4 = absent(publicV) ? undefined : c.addr(publicV, 'publicIPv4', 4);
  if (publicIPv4 !== undefined && !c.ordinary(publicIPv4, 'publicIPv4', publicV, HOST.keys.publicIPv4.refuse[4])) publicIPv4 = undefined;

  const qemu = resolveQemu(ctx, at(top, 'qemu'));
  const bridge = resolveBridge(ctx, at(top, 'bridge'));
  if (publicIPv4 !== undefined && ctx.bridge4 && ip.contains(ctx.bridge4, publicIPv4)) {
    c.add('publicIPv4', publicV, `is inside the bridge subnet ${ctx.bridge4.network}: it must be the host's address on the uplink`);
  }
  const dhcp = resolveDhcp(ctx, at(top, 'dhcp'));
  const ipv6 = resolveIpv6(ctx, at(top, 'ipv6'));
  const cloudInit = resolveCloudInitDefaults(ctx, at(top, 'cloudInit'));
  const vms = resolveVms(ctx, at(top, 'vms'), cloudInit);
  const onStop = c.oneOf(at(top, 'onStop'), 'onStop', HOST.keys.onStop);
  if (ipv6?.learn && vms.ok) {
    // anti-spoofing drops whatever an isolated VM sends from another address, its answers to
    // neighbour solicitations included: the host would never see (nor reach) what it learns
    const isolated = vms.vms.flatMap((v, i) => (v.isolation ? [`vms[${i}] (${v.name})`] : []));
    if (isolated.length > 0) {
      c.add('ipv6.learn', true, `a VM with isolation (the default) sends only from its own addresses, so its other ones never reach the host: set isolation: false on ${isolated.join(', ')}, or leave learn out`);
    }
  }

  if (c.failed || !uplink || !bridge || !name || !vms.ok || !qemu || !onStop) {
    // every failure above has added a problem; this only guards against a check that forgot to
    if (!c.failed) c.add('', undefined, 'invalid host file (no problem recorded: a bug)');
    const more = droppedProblem(c);
    const problems: HostSpecProblem[] = more ? [...c.problems, more] : c.problems;
    throw new HostSpecError(problems, source);
  }
  return {
    name,
    uplink,
    ...(publicIPv4 !== undefined ? { publicIPv4 } : {}),
    qemu,
    bridge,
    ...(dhcp ? { dhcp } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    ...(cloudInit !== undefined && cloudInit !== 'failed' ? { cloudInit } : {}),
    vms: vms.vms,
    onStop,
  };
}
