/**
 * dnsmasq as a supervised child process: DHCP (static leases by MAC plus a dynamic range) and DNS
 * for the VMs, on the bridge only, optionally inside a network namespace.
 *
 * Everything dnsmasq needs lives in one directory: `dnsmasq.conf` (rendered by
 * {@link renderDnsmasqConfig}; nothing under /etc is read), `dnsmasq.pid`, `dnsmasq.leases`,
 * `dnsmasq.log` (its log-facility) and `dnsmasq.out` (its stdout/stderr: startup errors). dnsmasq
 * runs in the foreground of its own session (`--keep-in-foreground`, spawned detached), so it
 * outlives the process that started it; {@link startDnsmasq} is idempotent and
 * {@link stopDnsmasq} signals it by pid after checking /proc/PID/cmdline. The directory is 0700
 * and every file 0600 (files.ts): the lease file and the log are created before dnsmasq opens
 * them, its pidfile and log are made 0600 again once it is up (it sets modes of its own); a link
 * planted in the directory fails the start.
 * @module
 */
import { closeSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isIP } from 'node:net';
import { ip, netns, parseMac, readPidfile, validateIfName, ValidationError, type NetnsRef } from '@vmhost/net';
import { DnsmasqError } from '../errors.js';
import { DHCP, leaseSeconds, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS } from '../spec/schema.js';
import { renderGuestDnsmasqLines, validateDnsName, type GuestIpv6Options } from '../guests/dnsmasq-guests.js';
import { makePrivate, openPrivateFile, readPrivateFile, touchPrivateFile, type FileErrorFactory } from './files.js';
import { howEnded, installConfig, serviceStatus, startDetached, stopProcess, stopService, tail, type ServiceSpec, type ServiceStartResult, type ServiceStatus } from './supervisor.js';
import type { Lease } from '../types.js';

/** What dnsmasq serves on the bridge. */
export interface DnsmasqOptions {
  /** Absolute; holds dnsmasq.conf, dnsmasq.pid, dnsmasq.leases, dnsmasq.log (created if missing). */
  dir: string;
  /** The bridge, e.g. `br0`. dnsmasq binds to it only. */
  interface: string;
  /** The bridge's IPv4 address: dnsmasq listens there; it is the DNS server and default router given to clients. */
  address: string;
  /** First and last address of the dynamic range (inside the subnet of `address`/`netmask`). */
  range: readonly [string, string];
  /** Dotted netmask of the bridge subnet, e.g. `255.255.255.0`. */
  netmask: string;
  /** dnsmasq lease time: `72h`, `30m`, `3600`, `infinite`. */
  leaseTime: string;
  /** Local DNS domain: `domain=` and `local=/domain/` (names of the domain are never forwarded). */
  domain?: string;
  /**
   * Static leases by MAC; `name` (and `name.domain`) resolves to `ipv4` and, when given, `ipv6`
   * (A, AAAA and the reverse entries, whether the VM has a lease or not). `ipv6` is also leased by
   * DHCPv6 when {@link DnsmasqOptions.ipv6} serves its prefix.
   */
  hosts: ReadonlyArray<{ mac: string; ipv4: string; name: string; ipv6?: string }>;
  /**
   * Router advertisements and stateful DHCPv6 on the bridge for the VMs' /64 (M=1 O=1, the prefix
   * off-link and without SLAAC, RDNSS and DNSSL; docs/host-guest-ipv6.md). Left out: IPv4 only.
   */
  ipv6?: GuestIpv6Options;
  /**
   * Upstream DNS servers (IP addresses) for names that are not local. Default none: dnsmasq reads
   * no resolv.conf and answers only the local names (DHCP hosts); other queries are refused.
   */
  servers?: readonly string[];
  /** Run dnsmasq inside this network namespace. Default: the caller's. */
  netns?: NetnsRef;
}

/** The program run; found on PATH (dnsmasq-base installs /usr/sbin/dnsmasq). */
const DNSMASQ = existsExecutable('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq';

function existsExecutable(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The files of a dnsmasq directory. */
function files(dir: string): { conf: string; pid: string; leases: string; log: string; out: string } {
  return {
    conf: join(dir, 'dnsmasq.conf'),
    pid: join(dir, 'dnsmasq.pid'),
    leases: join(dir, 'dnsmasq.leases'),
    log: join(dir, 'dnsmasq.log'),
    out: join(dir, 'dnsmasq.out'),
  };
}

// ------------------------------------------------------------------------------- validation

function validateIpv4(v: unknown, field: string): asserts v is string {
  if (typeof v !== 'string' || isIP(v) !== 4) throw new ValidationError(field, v, 'expected an IPv4 address such as 192.168.0.1');
}

/** Upstream servers refused (the host file's rule): nothing answers there, or dnsmasq cannot be given a zone. */
const DNS_SERVER_REFUSED: Record<4 | 6, readonly ip.SpecialKind[]> = DHCP.keys.dnsServers.items.refuse;

/**
 * Checks every option of {@link DnsmasqOptions} and returns them with normalised MACs.
 * @throws {ValidationError} naming the field (`interface`, `range[1]`, `hosts[2].mac`, ...).
 */
export function validateDnsmasqOptions(o: DnsmasqOptions): DnsmasqOptions {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (typeof o.dir !== 'string' || !isAbsolute(o.dir) || /[\0-\x1f\x7f,]/.test(o.dir)) {
    throw new ValidationError('dir', o.dir, 'expected an absolute path without control characters (NUL, newline, ...) or comma');
  }
  validateIfName(o.interface, 'interface');
  validateIpv4(o.address, 'address');
  validateIpv4(o.netmask, 'netmask');
  // contiguous ones from the left, not all-zero
  let len = 1;
  while (len <= 32 && ip.netmask(4, len) !== o.netmask) len++;
  if (len > 32) throw new ValidationError('netmask', o.netmask, 'expected a contiguous netmask such as 255.255.255.0');
  const subnet = ip.parsePrefix(`${o.address}/${len}`);
  const inSubnet = (a: string): boolean => ip.contains(subnet, a);
  // not the network or broadcast address (a /31 or /32 has neither)
  const usable = (a: string): boolean => ip.isHostAddress(`${a}/${len}`);
  if (!usable(o.address)) throw new ValidationError('address', o.address, `is the network or broadcast address of ${o.netmask}`);
  if (!Array.isArray(o.range) || o.range.length !== 2) throw new ValidationError('range', o.range, 'expected [first, last]');
  o.range.forEach((a, i) => {
    validateIpv4(a, `range[${i}]`);
    if (!inSubnet(a)) throw new ValidationError(`range[${i}]`, a, `outside the subnet of ${o.address}/${o.netmask}`);
    if (!usable(a)) throw new ValidationError(`range[${i}]`, a, 'is the network or broadcast address');
  });
  if (ip.compare(o.range[0], o.range[1]) > 0) throw new ValidationError('range', o.range, 'the first address is after the last');
  const lease = typeof o.leaseTime === 'string' ? leaseSeconds(o.leaseTime) : undefined;
  if (lease === undefined || (lease !== 'infinite' && (lease < MIN_LEASE_SECONDS || lease > MAX_LEASE_SECONDS))) {
    throw new ValidationError('leaseTime', o.leaseTime, "expected 'infinite', or 2 minutes (dnsmasq's shortest) to a year as a number with an optional unit s, m, h, d, w (e.g. '12h')");
  }
  if (o.domain !== undefined) validateDnsName(o.domain, 'domain', false);
  if (o.servers !== undefined) {
    if (!Array.isArray(o.servers)) throw new ValidationError('servers', o.servers, 'expected an array of IP addresses');
    o.servers.forEach((s, i) => {
      const fam = typeof s === 'string' && !s.includes('%') ? isIP(s) : 0;
      if (fam !== 4 && fam !== 6) throw new ValidationError(`servers[${i}]`, s, 'expected an IPv4 or IPv6 address');
      const special = ip.specialRange(s);
      if (special && DNS_SERVER_REFUSED[fam].includes(special.kind)) throw new ValidationError(`servers[${i}]`, s, `is a ${special.kind} address (${special.range}): no DNS server answers there`);
    });
  }
  // names, MACs, addresses used once, the IPv6 options: the guest lines' own checks
  guestLines(o);
  const hosts = o.hosts.map((h, i) => {
    validateIpv4(h.ipv4, `hosts[${i}].ipv4`);
    if (!inSubnet(h.ipv4)) throw new ValidationError(`hosts[${i}].ipv4`, h.ipv4, `outside the subnet of ${o.address}/${o.netmask}`);
    if (!usable(h.ipv4)) throw new ValidationError(`hosts[${i}].ipv4`, h.ipv4, 'is the network or broadcast address');
    if (h.ipv4 === o.address) throw new ValidationError(`hosts[${i}].ipv4`, h.ipv4, "is the bridge's own address");
    return { ...h, mac: parseMac(h.mac, `hosts[${i}].mac`) };
  });
  if (o.netns !== undefined) netns.netnsPath(o.netns, 'netns');
  return { ...o, hosts };
}

// -------------------------------------------------------------------------------- rendering

/** The lines of the VMs (dhcp-host, host-record) and of IPv6 (RA, DHCPv6): guests/dnsmasq-guests.ts. */
function guestLines(o: DnsmasqOptions): string[] {
  if (!Array.isArray(o.hosts)) throw new ValidationError('hosts', o.hosts, 'expected an array');
  return renderGuestDnsmasqLines({
    interface: o.interface,
    ...(o.domain !== undefined ? { domain: o.domain } : {}),
    ...(o.ipv6 !== undefined ? { ipv6: o.ipv6 } : {}),
    hosts: o.hosts,
  });
}

/**
 * Renders dnsmasq.conf for `o`: pure and deterministic (the same options give the same bytes;
 * static hosts are written in the given order). Validates first.
 *
 * Choices: `bind-interfaces` + `interface=` + `except-interface=lo` (dnsmasq binds the bridge's
 * address only and fails at startup when the bridge is missing), `no-resolv` + `no-hosts` (nothing
 * from /etc; upstream servers only when `servers` is given), `dhcp-authoritative`, the router and
 * DNS options pointing at `address`, a `dhcp-host` and a `host-record` per static host (A, AAAA
 * and PTR for `name.domain` and `name`, before or without a lease; the FQDN first, so the reverse
 * entries name it), with `ipv6` router advertisements and stateful DHCPv6 (the guest lines of
 * guests/dnsmasq-guests.ts, docs/host-guest-ipv6.md), and dnsmasq's default privilege drop to
 * `nobody` (it opens its pid, lease and log files as root first; see docs/host-dnsmasq-and-proxy.md).
 * @throws {ValidationError} for bad options.
 */
export function renderDnsmasqConfig(o: DnsmasqOptions): string {
  const v = validateDnsmasqOptions(o);
  const f = files(v.dir);
  const lines: string[] = [
    '# Generated by @vmhost/host; rewritten on every start. Do not edit.',
    `interface=${v.interface}`,
    'except-interface=lo',
    'bind-interfaces',
    `listen-address=${v.address}`,
    'no-resolv',
    'no-hosts',
    'domain-needed',
    'bogus-priv',
  ];
  for (const s of v.servers ?? []) lines.push(`server=${s}`);
  if (v.domain !== undefined) lines.push(`domain=${v.domain}`, `local=/${v.domain}/`);
  lines.push(
    `dhcp-range=${v.range[0]},${v.range[1]},${v.netmask},${v.leaseTime}`,
    'dhcp-authoritative',
    `dhcp-option=option:router,${v.address}`,
    `dhcp-option=option:dns-server,${v.address}`,
  );
  if (v.domain !== undefined) lines.push(`dhcp-option=option:domain-name,${v.domain}`);
  // the static leases, the names (also before or without a lease), RA and DHCPv6
  lines.push(...guestLines(v));
  lines.push(
    `dhcp-leasefile=${f.leases}`,
    `pid-file=${f.pid}`,
    `log-facility=${f.log}`,
    'log-dhcp',
    '',
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------- processes

/** The error of a dnsmasq file that cannot be used safely. */
const fileError: FileErrorFactory = (path, reason, cause) => new DnsmasqError('EDNSMASQ_FILE', `dnsmasq file ${path}: ${reason}`, cause !== undefined ? { cause } : {});

/** The supervised dnsmasq of `dir` (see service.ts). */
function service(dir: string): ServiceSpec {
  const f = files(dir);
  return {
    dir,
    config: f.conf,
    pidFile: f.pid,
    // a dnsmasq started with this directory's conf-file
    matches: (argv, conf) => (argv[0]!.split('/').pop() ?? '') === 'dnsmasq' && argv.includes(`--conf-file=${conf}`),
    stuckError: (pid) => new DnsmasqError('EDNSMASQ_STOP', `dnsmasq (pid ${pid}) did not exit after SIGKILL`),
    fileError,
  };
}

/**
 * Whether the process `pid` holds a UDP socket bound to port 67 (its socket inodes in
 * /proc/PID/fd against /proc/PID/net/udp, its namespace's table): its own, not another dnsmasq's
 * of the same namespace (each host of a namespace runs its own on its bridge).
 */
function dhcpBound(pid: number): boolean {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        /* closed meanwhile */
      }
    }
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    return readFileSync(`/proc/${pid}/net/udp`, 'utf8')
      .split('\n')
      .some((l) => {
        const f = l.trim().split(/\s+/);
        return /:0043$/i.test(f[1] ?? '') && inodes.has(f[9] ?? '');
      });
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------- the API

/**
 * What {@link dnsmasqStatus} reports: whether our dnsmasq for the directory runs, its pid, and the
 * sha256 of the dnsmasq.conf in the directory (the one the running dnsmasq read), when present.
 */
export type DnsmasqStatus = ServiceStatus;

/**
 * Whether dnsmasq runs for `dir` (pidfile, else a /proc scan, checked against
 * /proc/PID/cmdline), its pid, and the hash of the config it was started with.
 */
export function dnsmasqStatus(dir: string): DnsmasqStatus {
  return serviceStatus(service(dir));
}

/**
 * Result of {@link startDnsmasq}: the pid; `restarted` when a dnsmasq of ours was running with
 * another config (or in another namespace) and was replaced; `changed` false only when the
 * running dnsmasq already had this config (then nothing was done).
 */
export type DnsmasqStartResult = ServiceStartResult;

/**
 * Starts dnsmasq for `o`, idempotently: when our dnsmasq for `o.dir` runs with the same config in
 * the same namespace nothing happens (`changed: false`); when its config differs it is stopped and
 * a new one started (`restarted: true`); a stale pidfile is removed. Resolves once dnsmasq has
 * written its pidfile and bound the DHCP port; dnsmasq then runs on in its own session, after
 * this process exits too.
 * @throws {ValidationError} for bad options (before anything is touched).
 * @throws {DnsmasqError} `EDNSMASQ_EXIT` when dnsmasq exits during startup (its stderr and log
 *   excerpt included: unknown interface, address in use, ...), `EDNSMASQ_TIMEOUT` when it is not
 *   ready within `timeoutMs` (default 10000; it is killed then), `EDNSMASQ_SPAWN` when it cannot
 *   be started at all, `EDNSMASQ_FILE` when a file of its directory is a symbolic link (or a FIFO,
 *   a hard link, a directory of another user): nothing is written through it and nothing started.
 */
export async function startDnsmasq(o: DnsmasqOptions, opts: { timeoutMs?: number } = {}): Promise<DnsmasqStartResult> {
  const config = renderDnsmasqConfig(o);
  const svc = service(o.dir);
  const f = files(o.dir);
  const { unchanged, restarted } = await installConfig(svc, config, o.netns);
  if (unchanged !== undefined) return { pid: unchanged, restarted: false, changed: false };

  // dnsmasq opens (and follows links to) its lease file and log as root: make them ours first,
  // private; it keeps their mode (and makes the log its user's, to reopen it)
  touchPrivateFile(f.leases, fileError);
  closeSync(openPrivateFile(f.log, 'append', fileError));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const excerpt = (): string => [tail(f.out), tail(f.log, 1000)].filter((s) => s.trim()).join('\n');
  const pid = await startDetached(svc, {
    command: DNSMASQ,
    args: ['--keep-in-foreground', `--conf-file=${f.conf}`],
    ...(o.netns !== undefined ? { netns: o.netns } : {}),
    output: f.out,
    timeoutMs,
    // it has written its pidfile and bound the DHCP port
    ready: (pid) => pid !== undefined && readPidfile(f.pid) === pid && dhcpBound(pid),
    errors: {
      spawnThrew: (cause) => new DnsmasqError('EDNSMASQ_SPAWN', `cannot start ${DNSMASQ}`, { cause }),
      spawnFailed: (e) => new DnsmasqError('EDNSMASQ_SPAWN', `cannot start ${DNSMASQ}: ${e.message}`, { cause: e }),
      exited: (code, signal) =>
        new DnsmasqError('EDNSMASQ_EXIT', `dnsmasq on ${o.interface} ${howEnded(code, signal)} during startup`, { exitCode: code, signal, stderr: excerpt() }),
      timedOut: () => new DnsmasqError('EDNSMASQ_TIMEOUT', `dnsmasq on ${o.interface} was not ready within ${timeoutMs} ms`, { stderr: excerpt() }),
    },
  });
  // dnsmasq writes its pidfile 0644 (it sets its own umask) and makes a root-group log 0660
  // (when it hands the log to its user): private like the rest
  try {
    makePrivate(f.pid, fileError);
    makePrivate(f.log, fileError);
  } catch (err) {
    await stopProcess(pid, 1000, svc.stuckError).catch(() => undefined);
    throw err;
  }
  return { pid, restarted, changed: true };
}

/**
 * Stops our dnsmasq for `dir`: SIGTERM by pid (checked against /proc/PID/cmdline), SIGKILL after
 * 5 s; removes the pidfile and keeps the leases. Resolves true if it was running.
 */
export async function stopDnsmasq(dir: string): Promise<boolean> {
  return stopService(service(dir));
}

/**
 * Parses dnsmasq's lease file (`EXPIRY MAC IP HOSTNAME CLIENTID` per line; expiry 0 means an
 * infinite lease, hostname `*` none). IPv6 leases and the `duid` line are skipped; a missing file
 * gives `[]`.
 */
export function parseLeases(text: string): Lease[] {
  const out: Lease[] = [];
  for (const line of text.split('\n')) {
    const p = line.trim().split(/\s+/);
    if (p.length < 4 || p[0] === 'duid') continue;
    const [exp, mac, addr, name] = p as [string, string, string, string];
    if (!/^\d+$/.test(exp) || isIP(addr) !== 4) continue;
    const secs = Number(exp);
    out.push({
      expires: secs === 0 ? null : new Date(secs * 1000),
      mac: mac.toLowerCase(),
      ipv4: addr,
      hostname: name === '*' ? null : name,
    });
  }
  return out;
}

/**
 * The IPv4 leases in `<dir>/dnsmasq.leases` (see {@link parseLeases}); `[]` when there is no file.
 * @throws {DnsmasqError} `EDNSMASQ_FILE` when the lease file is a symbolic link or not a regular
 *   file (it is never followed).
 */
export function readLeases(dir: string): Lease[] {
  const text = readPrivateFile(files(dir).leases, undefined, fileError);
  return text === undefined ? [] : parseLeases(text.toString('utf8'));
}
