/**
 * Resolution of a host file's data: every section is checked by its own resolver (bridge.ts,
 * dhcp.ts, ipv6.ts, vms.ts) in document order, sharing one {@link SpecContext}; defaults are
 * filled in. Turns what users write ({@link HostFile}) into the {@link ResolvedHost} every other
 * module works on, or throws one {@link HostSpecError} listing every problem found, each with the
 * path of the bad field (`vms[1].forwards[0].port`). No I/O.
 * @module
 */
import { formatValue, HostSpecError } from '../errors.js';
import type { ResolvedHost } from '../types.js';
import { resolveBridge } from './bridge.js';
import { absent, at } from './checker.js';
import { SpecContext } from './context.js';
import { resolveDhcp } from './dhcp.js';
import { resolveIpv6 } from './ipv6.js';
import { DEFAULTS, HOST_NAME_RE, TOP_KEYS } from './schema.js';
import { resolveVms } from './vms.js';

/**
 * Validates a host file's data (as parsed from YAML/JSON, or written in code) and fills in the
 * defaults documented in types.ts. Everything is checked before anything is returned; the result
 * is a fresh object (the input is not modified) with keys in a fixed order. No I/O: whether the
 * kernel, disks or uplink exist is checked when applying.
 *
 * In optional places `null` (YAML `~` or an empty value) counts as left out.
 * @param baseDir Directory relative paths are resolved against (itself resolved against the cwd).
 * @throws {HostSpecError} listing every problem found.
 */
export function resolveHost(input: unknown, baseDir: string): ResolvedHost {
  return resolveSpec(input, baseDir);
}

/** {@link resolveHost}, naming `source` (a path) in the error. */
export function resolveSpec(input: unknown, baseDir: string, source?: string): ResolvedHost {
  const ctx = new SpecContext(baseDir);
  const { c } = ctx;
  const top = c.obj(input, '', TOP_KEYS);
  if (!top) {
    // `obj` reported '' as "required"/"expected a mapping"; make the message say what the file is.
    c.problems[0] = { path: '', value: input, message: `the host file must be a mapping (got ${formatValue(input)})` };
    throw new HostSpecError(c.problems, source);
  }

  let name: string | undefined = DEFAULTS.name;
  const nameV = at(top, 'name');
  if (!absent(nameV)) {
    name = c.str(nameV, 'name');
    if (name !== undefined && !HOST_NAME_RE.test(name)) {
      name = c.add('name', nameV, 'expected 1 to 16 letters, digits or _ (it names the firewall chains VMHOST-<name>-...)');
    }
  }
  const uplink = c.ifName(at(top, 'uplink'), 'uplink');
  ctx.claimIf(uplink, 'uplink');
  const publicV = at(top, 'publicIPv4');
  const publicIPv4 = absent(publicV) ? undefined : c.addr(publicV, 'publicIPv4', 4);

  const bridge = resolveBridge(ctx, at(top, 'bridge'));
  const dhcp = resolveDhcp(ctx, at(top, 'dhcp'));
  const ipv6 = resolveIpv6(ctx, at(top, 'ipv6'));
  const vms = resolveVms(ctx, at(top, 'vms'));

  if (c.problems.length > 0 || !uplink || !bridge || !name || !vms.ok) {
    // every failure above has added a problem; this only guards against a check that forgot to
    if (c.problems.length === 0) c.add('', undefined, 'invalid host file (no problem recorded: a bug)');
    throw new HostSpecError(c.problems, source);
  }
  return {
    name,
    uplink,
    ...(publicIPv4 !== undefined ? { publicIPv4 } : {}),
    bridge,
    ...(dhcp ? { dhcp } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    vms: vms.vms,
  };
}
