/**
 * The host file: parsing (YAML or JSON), validation and defaults. Turns what users write
 * ({@link HostFile}) into the {@link ResolvedHost} every other module works on, or throws one
 * {@link HostSpecError} listing every problem found, each with the path of the bad field
 * (`vms[1].forwards[0].port`). Pure except for {@link loadHostFile}, which reads the file.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { codec, parseMac, SystemError, validateIfName, ValidationError } from '@vmhost/net';
import { stableMac } from '@vmhost/kvm';
import type {
  Cidr,
  DiskSpec,
  HostFile,
  PortSpec,
  ResolvedDisk,
  ResolvedForward,
  ResolvedHost,
  ResolvedVm,
} from '../types.js';
import { formatValue, HostSpecError, type HostSpecProblem } from '../errors.js';

/** Options of {@link parseHostFile}. */
export interface ParseHostFileOptions {
  /**
   * `yaml` (the default; YAML 1.2 is a superset of JSON, so JSON text parses too) or `json`
   * (strict `JSON.parse`).
   */
  format?: 'yaml' | 'json';
  /** Directory that relative paths (kernel, initrd, disks) are resolved against. */
  baseDir: string;
  /** Where the text came from (a path), named in error messages. */
  source?: string;
}

/**
 * Parses a host file's text and resolves it ({@link resolveHost}).
 * Syntax errors are reported as problems with path `''` and their line and column.
 * @throws {HostSpecError} listing every syntax problem, or else every validation problem.
 */
export function parseHostFile(text: string, options: ParseHostFileOptions): ResolvedHost {
  const input = options.format === 'json' ? parseJson(text, options.source) : parseYaml(text, options.source);
  return resolve(input, options.baseDir, options.source);
}

/**
 * Reads and resolves a host file. The format follows the extension (`.json`: JSON, anything else:
 * YAML); relative paths in it are resolved against the file's directory.
 * @throws {SystemError} (from @vmhost/net, with the errno code such as `ENOENT`) when the file cannot be read.
 * @throws {HostSpecError} when it does not parse or validate.
 */
export async function loadHostFile(path: string): Promise<ResolvedHost> {
  const abs = resolvePath(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw SystemError.from(err, `cannot read host file ${path}`);
  }
  const format = extname(abs).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseHostFile(text, { format, baseDir: dirname(abs), source: path });
}

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
  return resolve(input, baseDir);
}

// ---------------------------------------------------------------------------------------------
// Parsing

function parseYaml(text: string, source: string | undefined): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const lines = text.split(/\r?\n/);
    throw new HostSpecError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return syntaxProblem('YAML', e.message, line, col, lines[line - 1]);
      }),
      source,
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // unresolved or excessive aliases
    const message = err instanceof Error ? err.message : String(err);
    throw new HostSpecError([{ path: '', value: undefined, message: `YAML error: ${message}` }], source);
  }
}

function parseJson(text: string, source: string | undefined): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = /at position (\d+)/.exec(message);
    if (!at) throw new HostSpecError([{ path: '', value: undefined, message: `JSON syntax error: ${message}` }], source);
    const before = text.slice(0, Number(at[1])).split(/\r?\n/);
    const line = before.length;
    const col = (before[before.length - 1]?.length ?? 0) + 1;
    const reason = message.replace(/ in JSON at position \d+.*$/, '');
    throw new HostSpecError([syntaxProblem('JSON', reason, line, col, text.split(/\r?\n/)[line - 1])], source);
  }
}

function syntaxProblem(kind: string, reason: string, line: number, col: number, lineText: string | undefined): HostSpecProblem {
  const near = lineText === undefined || lineText.trim() === '' ? '' : `: ${formatValue(lineText.trim())}`;
  return { path: '', value: lineText, message: `${kind} syntax error at line ${line}, column ${col}: ${reason}${near}` };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** The reason of a ValidationError thrown by @vmhost/net, without its `invalid FIELD: VALUE: ` head. */
function reasonOf(err: ValidationError): string {
  const head = new ValidationError(err.field, err.value, '').message;
  return err.message.startsWith(head) ? err.message.slice(head.length) : err.message;
}

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function suggest(key: string, allowed: readonly string[]): string {
  const k0 = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of allowed) {
    // compare without the unit too: `memmory` is close to `memory`(MiB)
    const k1 = k.toLowerCase();
    const d = Math.min(distance(k0, k1), distance(k0, k.replace(/(MiB|Ms)$/, '').toLowerCase()));
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best !== undefined && (bestD <= Math.max(2, Math.floor(key.length / 3)) || best.toLowerCase().startsWith(k0))) {
    return ` (did you mean '${best}'?)`;
  }
  return ` (expected one of: ${allowed.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// Addresses (bigint arithmetic on @vmhost/net's codec)

/** A parsed address. */
interface Addr {
  family: 4 | 6;
  /** Canonical text (RFC 5952 for IPv6). */
  text: string;
  value: bigint;
}

/** A parsed `ADDRESS/LEN`. */
interface Prefix {
  addr: Addr;
  length: number;
  /** First and last address of the network. */
  first: bigint;
  last: bigint;
}

const bitsOf = (family: 4 | 6): number => (family === 4 ? 32 : 128);

function toBigint(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function formatBigint(v: bigint, family: 4 | 6): string {
  const bytes = new Uint8Array(bitsOf(family) / 8);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return codec.formatIp(bytes);
}

function makePrefix(addr: Addr, length: number): Prefix {
  const hostMask = (1n << BigInt(bitsOf(addr.family) - length)) - 1n;
  const first = addr.value & ~hostMask;
  return { addr, length, first, last: first | hostMask };
}

const prefixText = (p: Prefix): string => `${formatBigint(p.first, p.addr.family)}/${p.length}`;
const contains = (p: Prefix, v: bigint): boolean => v >= p.first && v <= p.last;

function toCidr(p: Prefix): Cidr {
  return {
    family: p.addr.family,
    address: p.addr.text,
    prefixLength: p.length,
    cidr: `${p.addr.text}/${p.length}`,
    network: prefixText(p),
  };
}

// ---------------------------------------------------------------------------------------------
// The checker: collects problems instead of throwing at the first one

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (o: Obj, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined);
/** Left out: missing, `undefined` or `null` (an empty YAML value). */
const absent = (v: unknown): v is undefined | null => v === undefined || v === null;
const join = (base: string, key: string): string => (base === '' ? key : `${base}.${key}`);

class Checker {
  readonly problems: HostSpecProblem[] = [];

  add(path: string, value: unknown, message: string): undefined {
    this.problems.push({ path, value, message });
    return undefined;
  }

  /** A mapping with only `allowed` keys (each unknown key is a problem; the known ones are still checked). */
  obj(v: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    if (!isObj(v)) return this.add(path, v, 'expected a mapping');
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key)) this.add(join(path, key), v[key], `unknown key '${key}'${suggest(key, allowed)}`);
    }
    return v;
  }

  str(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return this.add(path, undefined, 'required');
    if (typeof v !== 'string') return this.add(path, v, 'expected a string');
    return v;
  }

  /** A non-empty path without NUL, resolved against `baseDir`. */
  path(v: unknown, path: string, baseDir: string): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    if (s === '' || s.includes('\0')) return this.add(path, v, 'expected a non-empty path without NUL');
    return resolvePath(baseDir, s);
  }

  bool(v: unknown, path: string, dflt: boolean): boolean {
    if (absent(v)) return dflt;
    if (typeof v !== 'boolean') return this.add(path, v, 'expected true or false') ?? dflt;
    return v;
  }

  int(v: unknown, path: string, min: number, max: number, dflt?: number): number | undefined {
    if (absent(v)) return dflt ?? this.add(path, undefined, 'required');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.add(path, v, `expected an integer from ${min} to ${max}`);
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, values: readonly T[], dflt?: T): T | undefined {
    if (absent(v)) return dflt ?? this.add(path, undefined, `required: one of ${values.map((x) => `'${x}'`).join(', ')}`);
    if (!values.includes(v as T)) return this.add(path, v, `expected one of ${values.map((x) => `'${x}'`).join(', ')}`);
    return v as T;
  }

  /** An interface name (@vmhost/net's validateIfName). */
  ifName(v: unknown, path: string): string | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    try {
      validateIfName(v, path);
      return v;
    } catch (err) {
      if (err instanceof ValidationError) return this.add(path, v, reasonOf(err));
      throw err;
    }
  }

  /** A unicast MAC, normalised (@vmhost/net's parseMac). */
  mac(v: unknown, path: string): string | undefined {
    try {
      return parseMac(v, path, { unicast: true });
    } catch (err) {
      if (err instanceof ValidationError) return this.add(path, v, reasonOf(err));
      throw err;
    }
  }

  /** A bare address of `family` (no prefix length, no zone index). */
  addr(v: unknown, path: string, family: 4 | 6): Addr | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    if (typeof v !== 'string' || isIP(v) !== family || v.includes('%')) {
      const hint = typeof v === 'string' && v.includes('/') ? ' without a prefix length' : '';
      return this.add(path, v, `expected an IPv${family} address${hint}`);
    }
    const bytes = codec.parseIp(v, family);
    return { family, text: codec.formatIp(bytes), value: toBigint(bytes) };
  }

  /** `ADDRESS/LEN` of `family`. */
  prefix(v: unknown, path: string, family: 4 | 6): Prefix | undefined {
    if (absent(v)) return this.add(path, undefined, 'required');
    const max = bitsOf(family);
    const m = typeof v === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(v) : null;
    if (!m || isIP(m[1]!) !== family || m[1]!.includes('%') || Number(m[2]) > max) {
      return this.add(path, v, `expected an IPv${family} address with a prefix length 0-${max}, such as ${family === 4 ? '192.168.0.1/24' : '2001:db8::1/64'}`);
    }
    const bytes = codec.parseIp(m[1]!, family);
    return makePrefix({ family, text: codec.formatIp(bytes), value: toBigint(bytes) }, Number(m[2]));
  }
}

// ---------------------------------------------------------------------------------------------
// Resolution

const TOP_KEYS = ['uplink', 'name', 'publicIPv4', 'bridge', 'dhcp', 'ipv6', 'vms'] as const satisfies readonly (keyof HostFile)[];
const BRIDGE_KEYS = ['name', 'mac', 'veth', 'ipv4', 'ipv6', 'stp'] as const satisfies readonly (keyof HostFile['bridge'])[];
const VETH_KEYS = ['name', 'peer'] as const;
const DHCP_KEYS = ['range', 'leaseTime', 'domain', 'dnsServers'] as const;
const IPV6_KEYS = ['prefix', 'mode', 'acceptRa', 'proxy'] as const;
const PROXY_KEYS = ['maxConnections', 'idleTimeoutMs', 'connectTimeoutMs'] as const;
const VM_KEYS = [
  'name', 'mac', 'ipv4', 'ipv6', 'memoryMiB', 'cpus', 'accel', 'kernel', 'initrd', 'append', 'disk', 'forwards', 'autostart',
] as const;
const DISK_KEYS = ['file', 'format', 'cache', 'readOnly'] as const satisfies readonly (keyof DiskSpec)[];
const FORWARD_KEYS = ['port', 'toPort', 'protocol'] as const;

const HOST_NAME_RE = /^[A-Za-z0-9_]{1,16}$/;
/** VM names: the TAP `vmt-<name>` must fit in 15 bytes. */
const VM_NAME_RE = /^[a-z][a-z0-9-]{0,10}$/;
const VM_NAME_MAX = 11;
const TAP_PREFIX = 'vmt-';
const LEASE_TIME_RE = /^(\d+[smhdw]?|infinite)$/;
const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Largest delay setTimeout takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const DEFAULTS = {
  name: 'host',
  stp: false,
  leaseTime: '12h',
  acceptRa: false,
  proxy: { maxConnections: 256, idleTimeoutMs: 300_000, connectTimeoutMs: 5_000 },
  memoryMiB: 256,
  cpus: 1,
  accel: 'auto',
  diskFormat: 'qcow2',
  diskCache: 'writeback',
  protocol: 'tcp',
} as const;

const ACCELS = ['auto', 'kvm', 'tcg'] as const;
const DISK_FORMATS = ['qcow2', 'raw'] as const;
const DISK_CACHES = ['writeback', 'none', 'writethrough', 'directsync', 'unsafe'] as const;
const PROTOCOLS = ['tcp', 'udp'] as const;
const IPV6_MODES = ['routed', 'proxy'] as const;

/** A forward's public ports, for the overlap check. */
interface PortUse {
  path: string;
  protocol: 'tcp' | 'udp';
  first: number;
  last: number;
}

const portsText = (first: number, last: number): string => (first === last ? `port ${first}` : `ports ${first}-${last}`);

function resolve(input: unknown, baseDir: string, source?: string): ResolvedHost {
  const c = new Checker();
  const base = resolvePath(baseDir);
  const top = c.obj(input, '', TOP_KEYS);
  if (!top) {
    // `obj` reported '' as "required"/"expected a mapping"; make the message say what the file is.
    c.problems[0] = { path: '', value: input, message: `the host file must be a mapping (got ${formatValue(input)})` };
    throw new HostSpecError(c.problems, source);
  }

  /** Interface names in use, to the path that uses them. */
  const ifNames = new Map<string, string>();
  const claimIf = (name: string | undefined, path: string, what = 'interface name'): void => {
    if (name === undefined) return;
    const other = ifNames.get(name);
    if (other !== undefined) c.add(path, name, `${what} ${name} is already used by ${other}`);
    else ifNames.set(name, path);
  };
  /** MACs in use, to the path that uses them. */
  const macs = new Map<string, string>();
  const claimMac = (mac: string | undefined, path: string, note = ''): void => {
    if (mac === undefined) return;
    const other = macs.get(mac);
    if (other !== undefined) c.add(path, mac, `MAC ${mac}${note} is already used by ${other}`);
    else macs.set(mac, path);
  };

  // name, uplink, publicIPv4
  let name: string | undefined = DEFAULTS.name;
  const nameV = at(top, 'name');
  if (!absent(nameV)) {
    name = c.str(nameV, 'name');
    if (name !== undefined && !HOST_NAME_RE.test(name)) {
      name = c.add('name', nameV, 'expected 1 to 16 letters, digits or _ (it names the firewall chains VMHOST-<name>-...)');
    }
  }
  const uplink = c.ifName(at(top, 'uplink'), 'uplink');
  claimIf(uplink, 'uplink');
  const publicV = at(top, 'publicIPv4');
  const publicIPv4 = absent(publicV) ? undefined : c.addr(publicV, 'publicIPv4', 4);

  // bridge
  let bridge: ResolvedHost['bridge'] | undefined;
  let bridge4: Prefix | undefined;
  let bridge6: Prefix | undefined;
  /** bridge.ipv6 as written. */
  let bridge6Given: unknown;
  const br = c.obj(at(top, 'bridge'), 'bridge', BRIDGE_KEYS);
  if (br) {
    const brName = c.ifName(at(br, 'name'), 'bridge.name');
    claimIf(brName, 'bridge.name');
    const macV = at(br, 'mac');
    const brMac = absent(macV) ? undefined : c.mac(macV, 'bridge.mac');
    claimMac(brMac, 'bridge.mac');
    let veth: { name: string; peer: string } | undefined;
    const vethV = at(br, 'veth');
    if (!absent(vethV)) {
      const v = c.obj(vethV, 'bridge.veth', VETH_KEYS);
      if (v) {
        const vn = c.ifName(at(v, 'name'), 'bridge.veth.name');
        claimIf(vn, 'bridge.veth.name');
        const vp = c.ifName(at(v, 'peer'), 'bridge.veth.peer');
        claimIf(vp, 'bridge.veth.peer');
        if (vn !== undefined && vp !== undefined) veth = { name: vn, peer: vp };
      }
    }
    bridge4 = c.prefix(at(br, 'ipv4'), 'bridge.ipv4', 4);
    if (bridge4) {
      const v = at(br, 'ipv4');
      if (bridge4.length > 30) bridge4 = c.add('bridge.ipv4', v, 'prefix length must be at most 30: the subnet needs room for the VMs');
      else if (bridge4.addr.value === bridge4.first) bridge4 = c.add('bridge.ipv4', v, `is the network address of ${prefixText(bridge4)}; expected a host address such as ${formatBigint(bridge4.first + 1n, 4)}/${bridge4.length}`);
      else if (bridge4.addr.value === bridge4.last) bridge4 = c.add('bridge.ipv4', v, `is the broadcast address of ${prefixText(bridge4)}`);
    }
    const ipv6V = at(br, 'ipv6');
    bridge6Given = ipv6V;
    if (!absent(ipv6V)) {
      bridge6 = c.prefix(ipv6V, 'bridge.ipv6', 6);
      if (bridge6 && bridge6.length < 128 && bridge6.addr.value === bridge6.first) {
        bridge6 = c.add('bridge.ipv6', ipv6V, `is the network (subnet-router anycast) address of ${prefixText(bridge6)}; expected a host address`);
      }
    }
    const stp = c.bool(at(br, 'stp'), 'bridge.stp', DEFAULTS.stp);
    if (brName !== undefined && bridge4) {
      bridge = {
        name: brName,
        ...(brMac !== undefined ? { mac: brMac } : {}),
        ...(veth ? { veth } : {}),
        ipv4: toCidr(bridge4),
        ...(bridge6 ? { ipv6: toCidr(bridge6) } : {}),
        stp,
      };
    }
  }

  /** Checks that an IPv4 address is a usable VM-side address of the bridge subnet. */
  const inBridgeSubnet = (a: Addr, path: string, value: unknown): boolean => {
    if (!bridge4) return true; // already reported
    const net = prefixText(bridge4);
    if (!contains(bridge4, a.value)) return !c.add(path, value, `not inside the bridge subnet ${net}`);
    if (a.value === bridge4.first) return !c.add(path, value, `is the network address of the bridge subnet ${net}`);
    if (a.value === bridge4.last) return !c.add(path, value, `is the broadcast address of the bridge subnet ${net}`);
    if (a.value === bridge4.addr.value) return !c.add(path, value, `is the bridge's own address (bridge.ipv4)`);
    return true;
  };

  // dhcp
  let dhcp: ResolvedHost['dhcp'] | undefined;
  const dhcpV = at(top, 'dhcp');
  if (!absent(dhcpV)) {
    const d = c.obj(dhcpV, 'dhcp', DHCP_KEYS);
    if (d) {
      const rangeV = at(d, 'range');
      let range: [string, string] | undefined;
      if (!Array.isArray(rangeV) || rangeV.length !== 2) {
        c.add('dhcp.range', rangeV, rangeV === undefined ? 'required' : 'expected [first, last] (two IPv4 addresses)');
      } else {
        const a = c.addr(rangeV[0], 'dhcp.range[0]', 4);
        const b = c.addr(rangeV[1], 'dhcp.range[1]', 4);
        const okA = a !== undefined && inBridgeSubnet(a, 'dhcp.range[0]', rangeV[0]);
        const okB = b !== undefined && inBridgeSubnet(b, 'dhcp.range[1]', rangeV[1]);
        if (a && b && okA && okB) {
          if (a.value > b.value) c.add('dhcp.range', rangeV, `first address ${a.text} is after last address ${b.text}`);
          else if (bridge4 && bridge4.addr.value >= a.value && bridge4.addr.value <= b.value) {
            c.add('dhcp.range', rangeV, `includes the bridge's own address ${bridge4.addr.text}`);
          } else range = [a.text, b.text];
        }
      }
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
      let dnsServers: string[] | undefined;
      const serversV = at(d, 'dnsServers');
      if (!absent(serversV)) {
        if (!Array.isArray(serversV)) c.add('dhcp.dnsServers', serversV, 'expected a list of IPv4 or IPv6 addresses');
        else {
          const ok: string[] = [];
          serversV.forEach((v, i) => {
            const fam = typeof v === 'string' ? isIP(v) : 0;
            const a = fam === 4 || fam === 6 ? c.addr(v, `dhcp.dnsServers[${i}]`, fam) : c.add(`dhcp.dnsServers[${i}]`, v, `expected an IPv4 or IPv6 address${typeof v === 'string' && v.includes('/') ? ' without a prefix length' : ''}`);
            if (a) ok.push(a.text);
          });
          if (ok.length === serversV.length) dnsServers = ok;
        }
      }
      if (range && leaseTime !== undefined) {
        dhcp = { range, leaseTime, ...(domain !== undefined ? { domain } : {}), ...(dnsServers !== undefined ? { dnsServers } : {}) };
      }
    }
  }

  // ipv6
  let ipv6: ResolvedHost['ipv6'] | undefined;
  let prefix6: Prefix | undefined;
  const ipv6V = at(top, 'ipv6');
  const hasIpv6 = !absent(ipv6V);
  if (hasIpv6) {
    const s = c.obj(ipv6V, 'ipv6', IPV6_KEYS);
    if (s) {
      const pv = at(s, 'prefix');
      prefix6 = c.prefix(pv, 'ipv6.prefix', 6);
      if (prefix6 && prefix6.addr.value !== prefix6.first) {
        prefix6 = c.add('ipv6.prefix', pv, `host bits are set; the network is ${prefixText(prefix6)}`);
      }
      const mode = c.oneOf(at(s, 'mode'), 'ipv6.mode', IPV6_MODES);
      const acceptRa = c.bool(at(s, 'acceptRa'), 'ipv6.acceptRa', DEFAULTS.acceptRa);
      const proxy: NonNullable<ResolvedHost['ipv6']>['proxy'] = { ...DEFAULTS.proxy };
      let proxyOk = true;
      const proxyV = at(s, 'proxy');
      if (!absent(proxyV)) {
        const p = c.obj(proxyV, 'ipv6.proxy', PROXY_KEYS);
        if (!p) proxyOk = false;
        else {
          const limits = { maxConnections: Number.MAX_SAFE_INTEGER, idleTimeoutMs: MAX_TIMER_MS, connectTimeoutMs: MAX_TIMER_MS };
          for (const key of PROXY_KEYS) {
            const v = c.int(at(p, key), `ipv6.proxy.${key}`, 1, limits[key], DEFAULTS.proxy[key]);
            if (v === undefined) proxyOk = false;
            else proxy[key] = v;
          }
        }
      }
      if (prefix6 && bridge6) {
        if (!contains(prefix6, bridge6.addr.value) || bridge6.length < prefix6.length) {
          c.add('bridge.ipv6', bridge6Given, `not inside ipv6.prefix ${prefixText(prefix6)}`);
        }
      }
      if (mode === 'routed' && br && absent(bridge6Given)) {
        c.add('bridge.ipv6', undefined, "required with ipv6.mode 'routed': it is the VMs' IPv6 gateway");
      }
      if (prefix6 && mode) ipv6 = proxyOk ? { prefix: toCidr(prefix6), mode, acceptRa, proxy } : undefined;
    }
  }

  // vms
  const vms: ResolvedVm[] = [];
  let vmsOk = true;
  const vmsV = at(top, 'vms');
  if (!absent(vmsV) && !Array.isArray(vmsV)) {
    c.add('vms', vmsV, 'expected a list of VMs');
    vmsOk = false;
  }
  const vmList: unknown[] = Array.isArray(vmsV) ? vmsV : [];
  const vmNames = new Map<string, string>();
  const vmIpv4s = new Map<bigint, string>();
  const vmIpv6s = new Map<bigint, string>();
  const diskUses = new Map<string, { path: string; readOnly: boolean }>();
  const ports: PortUse[] = [];

  vmList.forEach((vmV, i) => {
    const p = `vms[${i}]`;
    const v = c.obj(vmV, p, VM_KEYS);
    if (!v) return void (vmsOk = false);
    const before = c.problems.length;

    // name and TAP
    const nameV = at(v, 'name');
    let vmName = c.str(nameV, `${p}.name`);
    if (vmName !== undefined && !VM_NAME_RE.test(vmName)) {
      vmName = c.add(
        `${p}.name`, nameV,
        vmName.length > VM_NAME_MAX && /^[a-z][a-z0-9-]*$/.test(vmName)
          ? `longer than ${VM_NAME_MAX} characters: the TAP ${TAP_PREFIX}<name> must fit in 15 bytes`
          : `expected 1 to ${VM_NAME_MAX} characters of a-z, 0-9 and '-', starting with a letter (the TAP ${TAP_PREFIX}<name> must fit in 15 bytes)`,
      );
    }
    if (vmName !== undefined) {
      const other = vmNames.get(vmName);
      if (other !== undefined) c.add(`${p}.name`, vmName, `VM name ${vmName} is already used by ${other}`);
      else vmNames.set(vmName, `${p}.name`);
      claimIf(TAP_PREFIX + vmName, `${p}.name`, 'TAP name');
    }

    // MAC
    const macV = at(v, 'mac');
    let mac: string | undefined;
    if (!absent(macV)) {
      mac = c.mac(macV, `${p}.mac`);
      claimMac(mac, `${p}.mac`);
    } else if (vmName !== undefined) {
      mac = stableMac(vmName, 0);
      claimMac(mac, `${p}.mac`, ' (the default for this name)');
    }

    // addresses
    const ipv4V = at(v, 'ipv4');
    let ipv4 = c.addr(ipv4V, `${p}.ipv4`, 4);
    if (ipv4 && !inBridgeSubnet(ipv4, `${p}.ipv4`, ipv4V)) ipv4 = undefined;
    if (ipv4) {
      const other = vmIpv4s.get(ipv4.value);
      if (other !== undefined) c.add(`${p}.ipv4`, ipv4V, `IPv4 address ${ipv4.text} is already used by ${other}`);
      else vmIpv4s.set(ipv4.value, `${p}.ipv4`);
    }
    const ipv6V = at(v, 'ipv6');
    let vmIpv6: Addr | undefined;
    if (!absent(ipv6V)) {
      vmIpv6 = c.addr(ipv6V, `${p}.ipv6`, 6);
      if (vmIpv6 && !hasIpv6) {
        vmIpv6 = c.add(`${p}.ipv6`, ipv6V, 'a VM IPv6 address needs the ipv6 section (its prefix and mode)');
      } else if (vmIpv6 && prefix6) {
        const pre = prefixText(prefix6);
        if (!contains(prefix6, vmIpv6.value)) vmIpv6 = c.add(`${p}.ipv6`, ipv6V, `not inside ipv6.prefix ${pre}`);
        else if (vmIpv6.value === prefix6.first && prefix6.length < 128) vmIpv6 = c.add(`${p}.ipv6`, ipv6V, `is the network (subnet-router anycast) address of ${pre}`);
        else if (bridge6 && vmIpv6.value === bridge6.addr.value) vmIpv6 = c.add(`${p}.ipv6`, ipv6V, "is the bridge's own address (bridge.ipv6)");
      }
      if (vmIpv6) {
        const other = vmIpv6s.get(vmIpv6.value);
        if (other !== undefined) c.add(`${p}.ipv6`, ipv6V, `IPv6 address ${vmIpv6.text} is already used by ${other}`);
        else vmIpv6s.set(vmIpv6.value, `${p}.ipv6`);
      }
    }

    // machine
    const memoryMiB = c.int(at(v, 'memoryMiB'), `${p}.memoryMiB`, 16, 1_048_576, DEFAULTS.memoryMiB);
    const cpus = c.int(at(v, 'cpus'), `${p}.cpus`, 1, 64, DEFAULTS.cpus);
    const accel = c.oneOf(at(v, 'accel'), `${p}.accel`, ACCELS, DEFAULTS.accel);
    const autostart = c.bool(at(v, 'autostart'), `${p}.autostart`, true);

    // boot
    const kernelV = at(v, 'kernel');
    const kernel = absent(kernelV) ? undefined : c.path(kernelV, `${p}.kernel`, base);
    const initrdV = at(v, 'initrd');
    const initrd = absent(initrdV) ? undefined : c.path(initrdV, `${p}.initrd`, base);
    const appendV = at(v, 'append');
    const append = absent(appendV) ? undefined : c.str(appendV, `${p}.append`);
    if (absent(kernelV)) {
      if (!absent(initrdV)) c.add(`${p}.initrd`, initrdV, 'needs kernel');
      if (!absent(appendV)) c.add(`${p}.append`, appendV, 'needs kernel');
    }
    const disks = resolveDisks(c, at(v, 'disk'), `${p}.disk`, base, diskUses);
    if (absent(kernelV) && disks !== undefined && disks.length === 0) {
      c.add(p, vmName ?? vmV, 'a VM needs a kernel or at least one disk');
    }

    // forwards
    const forwards: ResolvedForward[] = [];
    const fwV = at(v, 'forwards');
    if (!absent(fwV) && !Array.isArray(fwV)) c.add(`${p}.forwards`, fwV, 'expected a list of forwards');
    const fwList: unknown[] = Array.isArray(fwV) ? fwV : [];
    fwList.forEach((fV, j) => {
      const f = resolveForward(c, fV, `${p}.forwards[${j}]`, ports);
      if (f) forwards.push(f);
    });

    if (c.problems.length > before) return;
    vms.push({
      name: vmName!,
      mac: mac!,
      ipv4: ipv4!.text,
      ...(vmIpv6 ? { ipv6: vmIpv6.text } : {}),
      tap: TAP_PREFIX + vmName!,
      memoryMiB: memoryMiB!,
      cpus: cpus!,
      accel: accel!,
      ...(kernel !== undefined ? { kernel } : {}),
      ...(initrd !== undefined ? { initrd } : {}),
      ...(append !== undefined ? { append } : {}),
      disks: disks!,
      forwards,
      autostart,
    });
  });

  if (c.problems.length > 0 || !uplink || !bridge || !name || !vmsOk) {
    // every failure above has added a problem; this only guards against a check that forgot to
    if (c.problems.length === 0) c.add('', undefined, 'invalid host file (no problem recorded: a bug)');
    throw new HostSpecError(c.problems, source);
  }
  return {
    name,
    uplink,
    ...(publicIPv4 ? { publicIPv4: publicIPv4.text } : {}),
    bridge,
    ...(dhcp ? { dhcp } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    vms,
  };
}

/** `disk`: a path, a {@link DiskSpec}, or a list of them. Returns undefined after a problem. */
function resolveDisks(
  c: Checker,
  v: unknown,
  path: string,
  baseDir: string,
  uses: Map<string, { path: string; readOnly: boolean }>,
): ResolvedDisk[] | undefined {
  if (absent(v)) return [];
  const items: Array<[unknown, string]> = Array.isArray(v) ? v.map((d, i) => [d, `${path}[${i}]`]) : [[v, path]];
  const out: ResolvedDisk[] = [];
  let ok = true;
  for (const [d, p] of items) {
    let disk: ResolvedDisk | undefined;
    let filePath = p;
    if (typeof d === 'string') {
      const file = c.path(d, p, baseDir);
      if (file !== undefined) disk = { file, format: DEFAULTS.diskFormat, cache: DEFAULTS.diskCache, readOnly: false };
    } else if (isObj(d)) {
      const o = c.obj(d, p, DISK_KEYS)!;
      filePath = `${p}.file`;
      const file = c.path(at(o, 'file'), filePath, baseDir);
      const format = c.oneOf(at(o, 'format'), `${p}.format`, DISK_FORMATS, DEFAULTS.diskFormat);
      const cache = c.oneOf(at(o, 'cache'), `${p}.cache`, DISK_CACHES, DEFAULTS.diskCache);
      const readOnly = c.bool(at(o, 'readOnly'), `${p}.readOnly`, false);
      if (file !== undefined && format && cache) disk = { file, format, cache, readOnly };
      else ok = false;
    } else {
      c.add(p, d, 'expected a path or a mapping with file (and format, cache, readOnly)');
    }
    if (!disk) {
      ok = false;
      continue;
    }
    // A writable image used twice (by two VMs, or twice by one) would be corrupted.
    const other = uses.get(disk.file);
    if (other !== undefined && !(other.readOnly && disk.readOnly)) {
      c.add(filePath, disk.file, `disk ${disk.file} is already used by ${other.path}; only read-only disks can be shared`);
      ok = false;
    } else if (other === undefined) uses.set(disk.file, { path: filePath, readOnly: disk.readOnly });
    out.push(disk);
  }
  return ok ? out : undefined;
}

/** One forward; checks its public ports against the earlier ones (`ports`, which it extends). */
function resolveForward(c: Checker, v: unknown, path: string, ports: PortUse[]): ResolvedForward | undefined {
  const f = c.obj(v, path, FORWARD_KEYS);
  if (!f) return undefined;
  const before = c.problems.length;
  const portV = at(f, 'port');
  let port: PortSpec | undefined;
  let first: number | undefined;
  let last: number | undefined;
  if (Array.isArray(portV)) {
    const a: unknown = portV[0];
    const b: unknown = portV[1];
    const isPort = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535;
    if (portV.length !== 2 || !isPort(a) || !isPort(b)) c.add(`${path}.port`, portV, 'expected a port range [first, last] of integers from 1 to 65535');
    else if (a > b) c.add(`${path}.port`, portV, `reversed range: first port ${a} is after last port ${b}`);
    else [port, first, last] = [[a, b], a, b];
  } else if (absent(portV)) {
    c.add(`${path}.port`, undefined, 'required');
  } else {
    first = last = c.int(portV, `${path}.port`, 1, 65535);
    port = first;
  }
  const protocol = c.oneOf(at(f, 'protocol'), `${path}.protocol`, PROTOCOLS, DEFAULTS.protocol);
  const toPortV = at(f, 'toPort');
  let toPort = absent(toPortV) ? first : c.int(toPortV, `${path}.toPort`, 1, 65535);
  if (toPort !== undefined && first !== undefined && last !== undefined && toPort + (last - first) > 65535) {
    toPort = c.add(`${path}.toPort`, toPortV, `the range ${first}-${last} would map to ${toPort}-${toPort + (last - first)}, past 65535`);
  }
  if (first !== undefined && last !== undefined && protocol) {
    const other = ports.find((u) => u.protocol === protocol && u.first <= last! && first! <= u.last);
    if (other) {
      const mine = portsText(first, last);
      const theirs = portsText(other.first, other.last);
      c.add(
        `${path}.port`, portV,
        mine === theirs
          ? `${mine}/${protocol} is already forwarded by ${other.path}`
          : `${mine}/${protocol} overlap${first === last ? 's' : ''} ${theirs}/${protocol} forwarded by ${other.path}`,
      );
    } else ports.push({ path, protocol, first, last });
  }
  if (c.problems.length > before || port === undefined || toPort === undefined || !protocol) return undefined;
  return { protocol, port, toPort };
}
