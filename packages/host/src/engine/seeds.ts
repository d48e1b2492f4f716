/**
 * The VMs' cloud-init seeds: the user-data files read (as data: a regular file of at most 1 MiB,
 * `#cloud-config` or a script, checked before anything is touched; each error names the host
 * file's field), and each seed rendered from the resolved host: the VM's host name and domain,
 * its user and keys, and (`networkConfig: auto`) its addresses as the host serves them — the IPv4
 * lease with the bridge as gateway, in routed mode its own IPv6 address as a /128 with the
 * default route from the router advertisements (or, without dnsmasq, via the bridge's link-local
 * address), the bridge's addresses as DNS servers when dnsmasq answers there. The seed file is
 * `<dataDir>/seeds/<vm>.iso` (desired.ts's `seedFile`); the VM kind writes it before QEMU starts (vm.ts).
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { HostPreconditionError } from '../errors.js';
import { checkUserData, MAX_USER_DATA_BYTES, renderCloudInit, type CloudInitInput, type CloudInitNetwork, type CloudInitSeed } from '../guests/cloud-init.js';
import { linkLocalAddress } from '../guests/ipv6.js';
import type { ResolvedHost, ResolvedVm } from '../types.js';
import type { Ctx } from './context.js';
import { guestPrefix6 } from './desired.js';
import { checkStateDir } from './state-dir.js';

/**
 * Reads the user-data file `path` as data: opened without blocking (a FIFO does not hang it),
 * a regular file of at most {@link MAX_USER_DATA_BYTES}, UTF-8 text that is a `#cloud-config`
 * mapping or a script; else the reason.
 */
function readUserData(path: string): { text: string } | { reason: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? String(err.code) : '';
    return { reason: code === 'ENOENT' ? 'no such file' : `cannot be read (${code || String(err)})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { reason: 'not a regular file' };
    if (st.size > MAX_USER_DATA_BYTES) return { reason: `${st.size} bytes: a user-data file has at most ${MAX_USER_DATA_BYTES}` };
    // one byte more than the limit: a file that grew after fstat is refused, never cut
    const buf = Buffer.alloc(MAX_USER_DATA_BYTES + 1);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, null);
      if (n === 0) break;
      off += n;
    }
    if (off > MAX_USER_DATA_BYTES) return { reason: `more than ${MAX_USER_DATA_BYTES} bytes` };
    const text = buf.subarray(0, off).toString('utf8');
    try {
      checkUserData(text, 'userData');
    } catch (err) {
      return { reason: err instanceof Error && 'reason' in err ? String(err.reason) : String(err) };
    }
    return { text };
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and checks every user-data file of `host` (each file once).
 * @returns the texts by path.
 * @throws {HostPreconditionError} naming the field that gives the file (`cloudInit.userData` for
 *   the host-wide one, `vms[i].cloudInit.userData` for a VM's own) and the reason.
 */
export function loadUserData(host: ResolvedHost): Map<string, string> {
  const out = new Map<string, string>();
  const read = (path: string, field: string): void => {
    if (out.has(path)) return;
    const r = readUserData(path);
    if ('reason' in r) throw new HostPreconditionError(field, path, r.reason);
    out.set(path, r.text);
  };
  if (host.cloudInit?.userData !== undefined) read(host.cloudInit.userData, 'cloudInit.userData');
  host.vms.forEach((vm, i) => {
    if (vm.cloudInit?.userData !== undefined) read(vm.cloudInit.userData, `vms[${i}].cloudInit.userData`);
  });
  return out;
}

/** The addresses of `vm`'s NIC as the host serves them (see the module). */
function seedNetwork(host: ResolvedHost, vm: ResolvedVm): CloudInitNetwork {
  const b = host.bridge;
  const n: CloudInitNetwork = { mac: vm.mac, ipv4: `${vm.ipv4}/${b.ipv4.prefixLength}`, gateway4: b.ipv4.address };
  const ra = host.dhcp !== undefined && guestPrefix6(host) !== undefined;
  if (host.ipv6?.mode === 'routed' && vm.ipv6 !== undefined) {
    n.ipv6 = vm.ipv6;
    // without router advertisements the default route is the bridge's link-local address
    if (!ra && b.mac !== undefined) n.gateway6 = linkLocalAddress(b.mac);
  }
  if (host.dhcp) {
    n.dns = ra ? [b.ipv4.address, b.ipv6!.address] : [b.ipv4.address];
    if (host.dhcp.domain !== undefined) n.search = [host.dhcp.domain];
  }
  return n;
}

/** The seed input of `vm` (which has `cloudInit`), with the user-data texts of {@link loadUserData}. */
export function seedInput(host: ResolvedHost, vm: ResolvedVm, userData: ReadonlyMap<string, string>): CloudInitInput {
  const ci = vm.cloudInit!;
  const input: CloudInitInput = { vm: vm.name, hostname: ci.hostname, user: ci.user, sshAuthorizedKeys: ci.sshAuthorizedKeys, networkConfig: ci.networkConfig };
  if (host.dhcp?.domain !== undefined) input.domain = host.dhcp.domain;
  if (ci.userData !== undefined) {
    const text = userData.get(ci.userData);
    if (text === undefined) throw new HostPreconditionError('userData', ci.userData, 'not read (loadUserData first)');
    input.userData = text;
  }
  if (ci.networkConfig === 'auto') input.network = seedNetwork(host, vm);
  return input;
}

/**
 * The seeds of the VMs of `host` that have `cloudInit`, by VM name: reads the user-data files
 * ({@link loadUserData}) and renders each seed (pure from there).
 * @throws {HostPreconditionError} for a user-data file that is missing or not user-data.
 */
export function loadSeeds(host: ResolvedHost): Map<string, CloudInitSeed> {
  const seeds = new Map<string, CloudInitSeed>();
  if (!host.vms.some((vm) => vm.cloudInit !== undefined)) return seeds;
  const userData = loadUserData(host);
  for (const vm of host.vms) if (vm.cloudInit) seeds.set(vm.name, renderCloudInit(seedInput(host, vm, userData)));
  return seeds;
}

/**
 * Reads the seeds of `ctx`'s host into `ctx.seeds` (for the VM entries) and, when there are any,
 * takes the data directory's real path when it exists (the seed paths in the VMs' definitions
 * are the same whether the directory is named through a link or not). Touches nothing.
 * @throws {HostPreconditionError} for a user-data file that is missing or not user-data.
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` for an unsafe data directory.
 */
export function readSeeds(ctx: Ctx): void {
  ctx.seeds = loadSeeds(ctx.host);
  if (ctx.seeds.size > 0) ctx.dataDir = checkStateDir(ctx.dataDir, false) ?? ctx.dataDir;
}
