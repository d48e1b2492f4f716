/**
 * The records of the state file (version 2): what apply made, as identities, never as
 * instructions. A record names the thing it stands for (a link's name and owner mark, an
 * address, a sysctl key and the value it had, a firewall owner, a VM's name) and holds the
 * validated data that describes it (a bridge's MAC, a firewall model, a service's options), so
 * that an undo can make it again; it never holds a binary, a command line or a path: the VMs'
 * run directories, pidfiles and sockets and the services' directories are derived from the state
 * directory and the name, binaries come from built-in defaults and the host file, and a VM is
 * recorded by its name and the fingerprint of its definition only.
 *
 * Each record has a `status`: `intended` is written before the step touches the system (with the
 * identity it will create: a link's temporary name, a sysctl's value before the change), `done`
 * after it. A run that finds an `intended` record reconciles it with the live system first
 * (reconcile.ts).
 *
 * {@link parseState} reads a state file strictly: JSON of the exact shape, no unknown field,
 * every value checked by the validator of its kind (interface names, MACs, prefixes, sysctl keys
 * of the few vmhost sets, firewall models, service options), every id the one its data gives;
 * anything else is a {@link HostStateError} naming the file and the field. A firewall model or
 * service options equal to what the run itself wants ({@link Known}) are not validated again.
 * @module
 */
import { parseCidr, parseMac, validateIfName, ValidationError } from '@vmhost/net';
import { validateModel, type FirewallModel } from '@vmhost/firewall';
import { HostStateError } from '../errors.js';
import { validateDnsmasqOptions, type DnsmasqOptions } from '../services/dnsmasq.js';
import { normalizeProxyOptions, type ProxyOptions } from '../services/proxy6.js';
import type { BridgeLinkData, EntryKind, IfbLinkData, QdiscData, TapLinkData, TcFilterData, VethLinkData } from './entries.js';
import { parseQdiscData, parseTcFilterData } from './tc-records.js';

/** The version of the state file this module reads and writes. */
export const STATE_VERSION = 2;

/** `intended`: written before the step touches the system; `done`: after. */
export type RecordStatus = 'intended' | 'done';

interface Base<K extends EntryKind> {
  kind: K;
  id: string;
  status: RecordStatus;
}

/** A sysctl vmhost set, with the value it had before (put back by down). */
export interface SysctlRecord extends Base<'sysctl'> {
  data: { key: string; value: string };
  previous: string;
}

/** A link vmhost made; it carries the owner mark (ifalias `vmhost:<owner>`), checked before any deletion. */
export interface LinkRecord extends Base<'link'> {
  data: BridgeLinkData | VethLinkData | TapLinkData | IfbLinkData;
  /** The kernel's index once made. */
  ifindex: number | null;
  /**
   * The token of the temporary names the link is made under (`vmhx<token>`, its veth peer
   * `vmhy<token>`) before it is renamed and marked in one request; null once done.
   */
  temp: string | null;
  /**
   * Present when the link was not made by vmhost but adopted (the host file's `adopt`): how it
   * was before (up or not, its bridge), what down puts back; such a link carries no mark and is
   * never deleted.
   */
  adopted?: { up: boolean; master: string | null };
}

/** An address vmhost added (on the uplink: with the protocol mark, see marks.ts), or adopted (`adopted`: never deleted). */
export interface AddressRecord extends Base<'address'> {
  data: { dev: string; cidr: string };
  adopted?: true;
}

/** A route vmhost added (with the protocol mark), or adopted (`adopted`: never deleted). */
export interface RouteRecord extends Base<'route'> {
  data: { to: string; dev: string };
  adopted?: true;
}

/** A proxy neighbour vmhost added (with the protocol mark), or adopted (`adopted`: never deleted). */
export interface ProxyNeighborRecord extends Base<'proxyNeighbor'> {
  data: { to: string; dev: string };
  adopted?: true;
}

/** The firewall owner's chains, with the model applied (validated as any model). */
export interface FirewallRecord extends Base<'firewall'> {
  data: { model: FirewallModel };
}

/** A qdisc on one of this host's links, by the link, its place and handle (entries.ts `QdiscData`). */
export interface QdiscRecord extends Base<'qdisc'> {
  data: QdiscData;
}

/** A tc filter on one of this host's links, by the link, its place and priority. */
export interface TcFilterRecord extends Base<'tcFilter'> {
  data: TcFilterData;
}

/** dnsmasq's options without its directory (always `<stateDir>/dnsmasq`); null when recovered without them. */
export interface DnsmasqRecord extends Base<'dnsmasq'> {
  data: { options: Omit<DnsmasqOptions, 'dir' | 'netns'> | null };
}

/** The IPv6 proxy's options without its directory (always `<stateDir>/proxy6`); null when recovered without them. */
export interface Proxy6Record extends Base<'proxy6'> {
  data: { options: ProxyOptions | null };
}

/**
 * A VM by name; its run directory is `<stateDir>/vms/<name>`. `fingerprint` is the sha256 of its
 * definition (the QEMU options) when started, null when found by recovery (the next apply then
 * restarts it once with the host file's definition).
 */
export interface VmRecord extends Base<'vm'> {
  data: { name: string; fingerprint: string | null };
}

/** One record of the state file. */
export type StateRecord = SysctlRecord | LinkRecord | AddressRecord | RouteRecord | ProxyNeighborRecord | FirewallRecord | QdiscRecord | TcFilterRecord | DnsmasqRecord | Proxy6Record | VmRecord;

/** The state file's content (version 2). */
export interface StateFile {
  version: 2;
  /** The host's name. */
  name: string;
  entries: StateRecord[];
  updatedAt: string;
}

// ------------------------------------------------------------------------------- the few sysctls

const IFNAME = '[^/:\\s\\0]{1,15}';
/** The sysctls vmhost sets (desired.ts), by key. */
const SYSCTL_KEYS = [
  /^net\.ipv4\.ip_forward$/,
  /^net\.ipv6\.conf\.all\.forwarding$/,
  new RegExp(`^net\\.ipv6\\.conf\\.${IFNAME}\\.(accept_ra|proxy_ndp)$`),
  /^net\.bridge\.bridge-nf-call-ip6tables$/,
];
const SYSCTL_VALUE = /^[0-9]{1,3}$/;

/** Whether `key` is one of the sysctls vmhost sets. */
export function isVmhostSysctl(key: string): boolean {
  return SYSCTL_KEYS.some((r) => r.test(key));
}

/** VM names as the host file allows them (spec/vms.ts). */
export const VM_NAME = /^[a-z][a-z0-9-]{0,10}$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;
/** The token of a link's temporary names. */
export const TEMP_TOKEN = /^[0-9a-f]{11}$/;

// ------------------------------------------------------------------------------- parsing

/** A problem at a path of the file (converted to a HostStateError naming the file). */
class Bad extends Error {}

type Obj = Record<string, unknown>;

function obj(v: unknown, at: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad(`${at}: expected an object`);
  return v as Obj;
}

/** `v` with exactly the keys `required` and any of `optional`. */
function shape(v: unknown, at: string, required: readonly string[], optional: readonly string[] = []): Obj {
  const o = obj(v, at);
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) throw new Bad(`${at}: unknown field ${JSON.stringify(k)}`);
  for (const k of required) if (!(k in o)) throw new Bad(`${at}: missing field ${JSON.stringify(k)}`);
  return o;
}

function str(v: unknown, at: string, max = 4096): string {
  if (typeof v !== 'string' || v.length > max) throw new Bad(`${at}: expected a string${max < 4096 ? ` of at most ${max} characters` : ''}`);
  return v;
}

function bool(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new Bad(`${at}: expected true or false`);
  return v;
}

/** Runs a validator of the packages (throwing ValidationError) and reports its complaint at `at`. */
function check<T>(at: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ValidationError) throw new Bad(err.field ? `${at}.${err.field}: ${err.message}` : `${at}: ${JSON.stringify(err.value)}: ${err.reason}`);
    throw err;
  }
}

const ifname = (v: unknown, at: string): string => check(at, () => (validateIfName(v, ''), v as string));
const mac = (v: unknown, at: string): string => {
  const s = str(v, at, 17);
  const m = check(at, () => parseMac(s, ''));
  if (m !== s) throw new Bad(`${at}: expected the MAC in lower case with ':' (${m})`);
  return m;
};

function cidr(v: unknown, at: string): string {
  const s = str(v, at, 64);
  const p = check(at, () => parseCidr(s, ''));
  if (p.cidr !== s) throw new Bad(`${at}: expected the canonical form ${p.cidr}`);
  return s;
}

function linkData(v: unknown, at: string): LinkRecord['data'] {
  const kind = obj(v, at).kind;
  if (kind === 'bridge') {
    const o = shape(v, at, ['name', 'kind', 'mac', 'stp']);
    return { name: ifname(o.name, `${at}.name`), kind, mac: o.mac === null ? null : mac(o.mac, `${at}.mac`), stp: bool(o.stp, `${at}.stp`) };
  }
  if (kind === 'veth') {
    const o = shape(v, at, ['name', 'kind', 'peer', 'mac', 'master', 'promisc']);
    return { name: ifname(o.name, `${at}.name`), kind, peer: ifname(o.peer, `${at}.peer`), mac: o.mac === null ? null : mac(o.mac, `${at}.mac`), master: ifname(o.master, `${at}.master`), promisc: bool(o.promisc, `${at}.promisc`) };
  }
  if (kind === 'tap') {
    const o = shape(v, at, ['name', 'kind', 'master']);
    return { name: ifname(o.name, `${at}.name`), kind, master: ifname(o.master, `${at}.master`) };
  }
  if (kind === 'ifb') {
    const o = shape(v, at, ['name', 'kind']);
    return { name: ifname(o.name, `${at}.name`), kind };
  }
  throw new Bad(`${at}.kind: expected bridge, veth, tap or ifb`);
}

/**
 * The `data.options` of a service record: null, or options without the `derived` fields (always
 * derived from the state directory, never read), checked by the service's own `validate`.
 */
function serviceOptions(data: unknown, at: string, derived: readonly string[], what: string, validate: (o: Obj) => unknown): Obj | null {
  const d = shape(data, `${at}.data`, ['options']);
  if (d.options === null) return null;
  const opts = obj(d.options, `${at}.data.options`);
  if (derived.some((k) => k in opts)) throw new Bad(`${at}.data.options: a state file never names ${what}`);
  check(`${at}.data.options`, () => validate(opts));
  return opts;
}

/**
 * What this run wants (its desired state): the firewall model and the services' options as they
 * are recorded. A record holding exactly one of them (equal as JSON, key order aside) needs no
 * validation of it: the engine made it from the resolved host file, and every use of it validates
 * it again (the firewall's plan and apply, the services' starts). Its shape is still checked.
 */
export interface Known {
  firewall?: FirewallModel;
  dnsmasq?: object;
  proxy6?: object;
}

/** Whether two values of JSON are equal (object keys in any order; a key holding undefined is absent). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Obj;
  const y = b as Obj;
  // without arrays of keys: a 300-VM firewall model is compared on every run
  let n = 0;
  for (const k in x) {
    if (!hasOwn(x, k) || x[k] === undefined) continue;
    n++;
    if (!hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
  }
  for (const k in y) if (hasOwn(y, k) && y[k] !== undefined) n--;
  return n === 0;
}

const hasOwn = (o: Obj, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** Runs `validate` unless `value` is the `known` one. */
const unlessKnown = (value: unknown, known: unknown, validate: () => unknown): void => {
  if (known === undefined || !sameJson(value, known)) validate();
};

/** `{ adopted: true }` when the record says so (the only value it may have), else nothing. */
function adoptedFlag(o: Obj, at: string): { adopted?: true } {
  if (!('adopted' in o)) return {};
  if (o.adopted !== true) throw new Bad(`${at}.adopted: expected true (or no field)`);
  return { adopted: true };
}

/** Parses one record; `dir` is the state directory (the services' directories are derived from it). */
function parseRecord(v: unknown, at: string, dir: string, known: Known = {}): StateRecord {
  const kind = obj(v, at).kind;
  const base = (o: Obj): { id: string; status: RecordStatus } => {
    const status = o.status;
    if (status !== 'intended' && status !== 'done') throw new Bad(`${at}.status: expected "intended" or "done"`);
    return { id: str(o.id, `${at}.id`, 300), status };
  };
  let r: StateRecord;
  switch (kind) {
    case 'sysctl': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data', 'previous']);
      const d = shape(o.data, `${at}.data`, ['key', 'value']);
      const key = str(d.key, `${at}.data.key`, 64);
      if (!isVmhostSysctl(key)) throw new Bad(`${at}.data.key: ${JSON.stringify(key)} is not a sysctl vmhost sets`);
      const value = str(d.value, `${at}.data.value`, 3);
      const previous = str(o.previous, `${at}.previous`, 3);
      for (const [x, f] of [[value, 'data.value'], [previous, 'previous']] as const) if (!SYSCTL_VALUE.test(x)) throw new Bad(`${at}.${f}: expected a small number`);
      r = { kind, ...base(o), data: { key, value }, previous };
      break;
    }
    case 'link': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data', 'ifindex', 'temp'], ['adopted']);
      const ifindex = o.ifindex;
      if (ifindex !== null && (!Number.isInteger(ifindex) || (ifindex as number) < 1 || (ifindex as number) > 0x7fffffff)) throw new Bad(`${at}.ifindex: expected an interface index or null`);
      if (o.temp !== null && (typeof o.temp !== 'string' || !TEMP_TOKEN.test(o.temp))) throw new Bad(`${at}.temp: expected 11 hex digits or null`);
      r = { kind, ...base(o), data: linkData(o.data, `${at}.data`), ifindex: ifindex as number | null, temp: o.temp as string | null };
      if ('adopted' in o) {
        const a = shape(o.adopted, `${at}.adopted`, ['up', 'master']);
        r.adopted = { up: bool(a.up, `${at}.adopted.up`), master: a.master === null ? null : ifname(a.master, `${at}.adopted.master`) };
      }
      break;
    }
    case 'address': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data'], ['adopted']);
      const d = shape(o.data, `${at}.data`, ['dev', 'cidr']);
      r = { kind, ...base(o), data: { dev: ifname(d.dev, `${at}.data.dev`), cidr: cidr(d.cidr, `${at}.data.cidr`) }, ...adoptedFlag(o, at) };
      break;
    }
    case 'route':
    case 'proxyNeighbor': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data'], ['adopted']);
      const d = shape(o.data, `${at}.data`, ['to', 'dev']);
      const to = kind === 'route' ? cidr(d.to, `${at}.data.to`) : str(d.to, `${at}.data.to`, 64);
      if (kind === 'proxyNeighbor') check(`${at}.data.to`, () => parseCidr(to, '', { defaultFull: true }));
      r = { kind, ...base(o), data: { to, dev: ifname(d.dev, `${at}.data.dev`) }, ...adoptedFlag(o, at) };
      break;
    }
    case 'firewall': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data']);
      const d = shape(o.data, `${at}.data`, ['model']);
      unlessKnown(d.model, known.firewall, () => check(`${at}.data.model`, () => validateModel(d.model as FirewallModel)));
      r = { kind, ...base(o), data: { model: d.model as FirewallModel } };
      break;
    }
    case 'qdisc': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data']);
      r = { kind, ...base(o), data: check(`${at}.data`, () => parseQdiscData(o.data)) };
      break;
    }
    case 'tcFilter': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data']);
      r = { kind, ...base(o), data: check(`${at}.data`, () => parseTcFilterData(o.data)) };
      break;
    }
    case 'dnsmasq': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data']);
      const options = serviceOptions(o.data, at, ['dir', 'netns'], "dnsmasq's directory or namespace", (x) => unlessKnown(x, known.dnsmasq, () => validateDnsmasqOptions({ ...(x as Omit<DnsmasqOptions, 'dir'>), dir: `${dir}/dnsmasq` })));
      r = { kind, ...base(o), data: { options: options as DnsmasqRecord['data']['options'] } };
      break;
    }
    case 'proxy6': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data']);
      const options = serviceOptions(o.data, at, ['dir'], "the proxy's directory", (x) => unlessKnown(x, known.proxy6, () => normalizeProxyOptions(x as unknown as ProxyOptions)));
      r = { kind, ...base(o), data: { options: options as ProxyOptions | null } };
      break;
    }
    case 'vm': {
      const o = shape(v, at, ['kind', 'id', 'status', 'data']);
      const d = shape(o.data, `${at}.data`, ['name', 'fingerprint']);
      const name = str(d.name, `${at}.data.name`, 11);
      if (!VM_NAME.test(name)) throw new Bad(`${at}.data.name: ${JSON.stringify(name)} is not a VM name`);
      if (d.fingerprint !== null && (typeof d.fingerprint !== 'string' || !FINGERPRINT.test(d.fingerprint))) throw new Bad(`${at}.data.fingerprint: expected a sha256 in hex or null`);
      r = { kind, ...base(o), data: { name, fingerprint: d.fingerprint as string | null } };
      break;
    }
    default:
      throw new Bad(`${at}.kind: unknown kind ${JSON.stringify(kind)?.slice(0, 40)}`);
  }
  const want = recordId(r);
  if (r.id !== want) throw new Bad(`${at}.id: ${JSON.stringify(r.id)} does not match its data (expected ${JSON.stringify(want)})`);
  return r;
}

/** The id a record's data gives (the same scheme as the entries': `link:br0`, `vm:web`, ...). */
export function recordId(r: StateRecord): string {
  switch (r.kind) {
    case 'sysctl':
      return `sysctl:${r.data.key}`;
    case 'link':
      return `link:${r.data.name}`;
    case 'address':
      return `address:${r.data.dev}:${r.data.cidr}`;
    case 'route':
      return `route:${r.data.to}`;
    case 'proxyNeighbor':
      return `proxyNeighbor:${r.data.dev}:${r.data.to}`;
    case 'qdisc':
      return `qdisc:${r.data.dev}:${r.data.parent}`;
    case 'tcFilter':
      return `tcFilter:${r.data.dev}:${r.data.parent}:${r.data.prio}`;
    case 'firewall':
    case 'dnsmasq':
    case 'proxy6':
      return r.kind;
    case 'vm':
      return `vm:${r.data.name}`;
  }
}

/**
 * Parses one record (a value of JSON) of the file `file` of the state directory `dir`, strictly,
 * as {@link parseState} parses each of its entries; `at` names it in a complaint.
 * @throws {HostStateError} `EHOST_STATE_CORRUPT` naming the file and the field.
 */
export function parseRecordOf(v: unknown, at: string, file: string, dir: string, known: Known = {}): StateRecord {
  try {
    return parseRecord(v, at, dir, known);
  } catch (err) {
    if (err instanceof Bad) throw new HostStateError(file, `not a vmhost state file: ${err.message}`);
    throw err;
  }
}

/**
 * Parses the text of the state file `file` of the state directory `dir` (strictly, as the module
 * says).
 * @throws {HostStateError} `EHOST_STATE_VERSION` for another version, else `EHOST_STATE_CORRUPT`
 *   naming the problem (`not JSON (...)`, `entries[2].data.name: ...`).
 */
export function parseState(text: string, file: string, dir: string, known: Known = {}): StateFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = text.trim() === '' ? 'empty' : `not JSON (${err instanceof Error ? err.message : String(err)})`;
    throw new HostStateError(file, `not a vmhost state file: ${why}`, { cause: err });
  }
  try {
    const top = obj(json, 'the file');
    if (top.version !== STATE_VERSION) {
      if (typeof top.version === 'number') {
        throw new HostStateError(file, `a state file of version ${top.version}; this vmhost reads version ${STATE_VERSION} only (${top.version === 1 ? 'made by vmhost before the write-ahead state: tear the host down with that version, or remove the file and the things it lists by hand' : 'made by another vmhost'})`, { code: 'EHOST_STATE_VERSION' });
      }
      throw new Bad('version: expected 2');
    }
    const o = shape(top, 'the file', ['version', 'name', 'entries', 'updatedAt']);
    const name = str(o.name, 'name', 64);
    const updatedAt = str(o.updatedAt, 'updatedAt', 64);
    if (!Array.isArray(o.entries)) throw new Bad('entries: expected an array');
    const seen = new Set<string>();
    const entries = o.entries.map((e, i) => {
      const r = parseRecord(e, `entries[${i}]`, dir, known);
      if (seen.has(r.id)) throw new Bad(`entries[${i}].id: ${JSON.stringify(r.id)} twice`);
      seen.add(r.id);
      return r;
    });
    return { version: STATE_VERSION, name, entries, updatedAt };
  } catch (err) {
    if (err instanceof Bad) throw new HostStateError(file, `not a vmhost state file: ${err.message}`);
    throw err;
  }
}
