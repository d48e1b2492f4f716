/**
 * cloud-init NoCloud seeds for VMs: `meta-data`, `user-data` and `network-config` (v2) rendered
 * from a VM's settings, and the seed volume (ISO 9660 with Rock Ridge, label `CIDATA`, written by
 * our own code in iso9660.ts) written atomically without following symlinks.
 *
 * Rendering is pure and deterministic: the same input gives the same bytes, and the instance-id
 * (`<vm>-<hash>`) is derived from everything else in the seed, so it changes exactly when the seed
 * changes (cloud-init then runs its per-instance modules again). See docs/host-cloud-init.md.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute } from 'node:path';
import { ip as ipm, parseMac, SystemError, ValidationError, type Prefix } from '@vmhost/net';
import { buildIso } from './iso9660.js';
import { parseSshPublicKey } from './ssh-key.js';

/**
 * The `yaml` package, loaded when a seed is first checked or rendered (synchronously: it is
 * CommonJS): a host without cloud-init never pays for loading it (~15 ms of a CLI run).
 */
let yamlLib: typeof import('yaml') | undefined;
const YAML = (): typeof import('yaml') => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

/** The addresses of the VM's NIC, for `networkConfig: 'auto'`. */
export interface CloudInitNetwork {
  /** The NIC's MAC: network-config matches the interface by it (whatever the guest names it). */
  mac: string;
  /** IPv4 address with prefix length, e.g. `198.51.100.10/24`. Left out: DHCPv4. */
  ipv4?: string;
  /** IPv4 default gateway (the bridge). */
  gateway4?: string;
  /**
   * The VM's IPv6 address; a bare address is written as `/128` (no on-link prefix: everything goes
   * through the host, see docs/host-guest-ipv6.md). Left out: DHCPv6.
   */
  ipv6?: string;
  /**
   * IPv6 default gateway (e.g. the bridge's link-local address). Left out: the default route comes
   * from the host's router advertisement (`accept-ra: true`).
   */
  gateway6?: string;
  /** DNS servers (IPv4 or IPv6), e.g. the bridge's addresses where dnsmasq answers. */
  dns?: readonly string[];
  /** DNS search domains, e.g. `['lan']`. */
  search?: readonly string[];
}

/** What a VM's seed is made from. */
export interface CloudInitInput {
  /** The VM's name (a DNS label): the instance-id's prefix and the default host name. */
  vm: string;
  /** The guest's host name (a DNS label). Default: `vm`. */
  hostname?: string;
  /** Domain: the guest's FQDN is `hostname.domain`. */
  domain?: string;
  /** The user created with the keys (sudo without password, password locked). Default `ops`. */
  user?: string;
  /** OpenSSH public key lines for `user` (checked: type, base64, the blob's type and size). */
  sshAuthorizedKeys: readonly string[];
  /**
   * The user's own user-data (a file's contents): `#cloud-config` (merged: its lists are appended,
   * its keys do not replace vmhost's) or a script starting with `#!` (run once per instance).
   */
  userData?: string;
  /** `auto` (default): network-config v2 from `network`; `none`: no network-config (cloud-init's fallback: DHCP on the first NIC). */
  networkConfig?: 'auto' | 'none';
  /** Required for `networkConfig: 'auto'`. */
  network?: CloudInitNetwork;
}

/** The rendered seed. */
export interface CloudInitSeed {
  /** `<vm>-<16 hex of sha256>` over user-data, network-config and the rest of meta-data. */
  instanceId: string;
  metaData: string;
  userData: string;
  /** Absent for `networkConfig: 'none'`. */
  networkConfig?: string;
}

/** The seed volume's label, as cloud-init's NoCloud looks for it. */
export const SEED_LABEL = 'CIDATA';
/** Largest user-data file accepted. */
export const MAX_USER_DATA_BYTES = 1024 * 1024;

const LABEL_RE = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
/** vmhost's own keys in the cloud-config; a merged #cloud-config cannot replace them. */
const MERGE_TYPE = 'list(append)+dict(no_replace,recurse_list)+str()';

function label(v: unknown, field: string): string {
  if (typeof v !== 'string' || !LABEL_RE.test(v)) throw new ValidationError(field, v, "expected a DNS label: 1-63 of [a-z0-9-], not starting or ending with '-'");
  return v;
}

function domainName(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length > 253 || !v.split('.').every((l) => LABEL_RE.test(l))) {
    throw new ValidationError(field, v, "expected a DNS name of labels of [a-z0-9-] (e.g. 'lan')");
  }
  return v;
}

function cidr(v: unknown, field: string, family: 4 | 6, defaultLen?: number): string {
  if (typeof v !== 'string') throw new ValidationError(field, v, `expected an IPv${family} address${family === 4 ? ' with /prefix' : ''}`);
  const text = !v.includes('/') && defaultLen !== undefined ? `${v}/${defaultLen}` : v;
  const max = family === 4 ? 32 : 128;
  let p: Prefix;
  try {
    p = ipm.parsePrefix(text, { field, family });
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const bare = text.slice(0, text.includes('/') ? text.indexOf('/') : undefined);
    try {
      ipm.parseAddress(bare, field, family);
    } catch {
      throw new ValidationError(field, v, `expected an IPv${family} address`);
    }
    throw new ValidationError(field, v, text.includes('/') ? `prefix length must be 1-${max}` : 'missing /prefix length');
  }
  if (p.prefixLength < 1) throw new ValidationError(field, v, `prefix length must be 1-${max}`);
  return p.cidr;
}

function ip(v: unknown, field: string, family?: 4 | 6): string {
  try {
    return ipm.formatAddress(ipm.parseAddress(v, field, family));
  } catch {
    throw new ValidationError(field, v, `expected an IP${family ? `v${family}` : ''} address`);
  }
}

/**
 * Checks user-data: at most {@link MAX_USER_DATA_BYTES}, valid UTF-8 text, and either
 * `#cloud-config` (then a YAML mapping) or a script (`#!`).
 * @returns the kind.
 * @throws {ValidationError} naming `field`.
 */
export function checkUserData(v: unknown, field = 'userData'): 'cloud-config' | 'script' {
  if (typeof v !== 'string') throw new ValidationError(field, v, 'expected the text of a user-data file');
  if (Buffer.byteLength(v) > MAX_USER_DATA_BYTES) throw new ValidationError(field, `${v.slice(0, 40)}...`, `larger than ${MAX_USER_DATA_BYTES} bytes`);
  if (v.includes('\0') || v.includes('\uFFFD')) throw new ValidationError(field, v.slice(0, 40), 'not UTF-8 text');
  const first = v.split('\n', 1)[0]!.replace(/\r$/, '');
  if (first.startsWith('#!')) return 'script';
  if (first.trimEnd() !== '#cloud-config') {
    throw new ValidationError(field, first.slice(0, 60), "user-data must start with '#cloud-config' or be a script starting with '#!'");
  }
  const doc = YAML().parseDocument(v, { uniqueKeys: true });
  if (doc.errors.length) throw new ValidationError(field, first, `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const js: unknown = doc.toJS();
  if (js !== null && js !== undefined && (typeof js !== 'object' || Array.isArray(js))) {
    throw new ValidationError(field, first, 'a #cloud-config must be a YAML mapping');
  }
  return 'cloud-config';
}

/** Validated input with defaults. */
interface Resolved {
  vm: string;
  hostname: string;
  domain?: string;
  user: string;
  keys: string[];
  userData?: { text: string; kind: 'cloud-config' | 'script' };
  networkConfig: 'auto' | 'none';
  network?: Required<Pick<CloudInitNetwork, 'mac'>> & { ipv4?: string; gateway4?: string; ipv6?: string; gateway6?: string; dns: string[]; search: string[] };
}

/**
 * Validates a seed's input (every error names its field, e.g. `sshAuthorizedKeys[1]`,
 * `network.ipv6`, `userData`) and fills in the defaults. Touches nothing.
 * @throws {ValidationError}
 */
export function validateCloudInit(i: CloudInitInput): Resolved {
  if (!i || typeof i !== 'object') throw new ValidationError('cloudInit', i, 'expected an object');
  const vm = label(i.vm, 'vm');
  const hostname = i.hostname === undefined ? vm : label(i.hostname, 'hostname');
  const user = i.user ?? 'ops';
  if (typeof user !== 'string' || !USER_RE.test(user) || user === 'root') throw new ValidationError('user', i.user, 'expected a user name of [a-z0-9_-] (not root)');
  if (!Array.isArray(i.sshAuthorizedKeys)) throw new ValidationError('sshAuthorizedKeys', i.sshAuthorizedKeys, 'expected an array of public key lines');
  const keys = i.sshAuthorizedKeys.map((k, n) => parseSshPublicKey(k, `sshAuthorizedKeys[${n}]`).line);
  const r: Resolved = { vm, hostname, user, keys, networkConfig: i.networkConfig ?? 'auto' };
  if (i.domain !== undefined) r.domain = domainName(i.domain, 'domain');
  if (i.userData !== undefined) r.userData = { text: i.userData, kind: checkUserData(i.userData, 'userData') };
  if (r.networkConfig !== 'auto' && r.networkConfig !== 'none') throw new ValidationError('networkConfig', i.networkConfig, "expected 'auto' or 'none'");
  if (r.networkConfig === 'auto') {
    const n = i.network;
    if (!n || typeof n !== 'object') throw new ValidationError('network', n, "networkConfig 'auto' needs the NIC's { mac, ipv4?, ipv6?, ... }");
    const net: NonNullable<Resolved['network']> = { mac: parseMac(n.mac, 'network.mac'), dns: [], search: [] };
    if (n.ipv4 !== undefined) net.ipv4 = cidr(n.ipv4, 'network.ipv4', 4);
    if (n.gateway4 !== undefined) net.gateway4 = ip(n.gateway4, 'network.gateway4', 4);
    if (n.ipv6 !== undefined) net.ipv6 = cidr(n.ipv6, 'network.ipv6', 6, 128);
    if (n.gateway6 !== undefined) net.gateway6 = ip(n.gateway6, 'network.gateway6', 6);
    if (n.dns !== undefined) {
      if (!Array.isArray(n.dns)) throw new ValidationError('network.dns', n.dns, 'expected an array of IP addresses');
      net.dns = n.dns.map((d, k) => ip(d, `network.dns[${k}]`));
    }
    if (n.search !== undefined) {
      if (!Array.isArray(n.search)) throw new ValidationError('network.search', n.search, 'expected an array of domains');
      net.search = n.search.map((d, k) => domainName(d, `network.search[${k}]`));
    }
    if (net.dns.length === 0 && net.search.length > 0) throw new ValidationError('network.search', n.search, 'search domains need dns servers');
    r.network = net;
  } else if (i.network !== undefined) {
    throw new ValidationError('network', i.network, "only with networkConfig 'auto'");
  }
  return r;
}

/**
 * YAML as cloud-init (PyYAML, YAML 1.1) reads it: the 1.1 schema quotes strings that 1.1 would
 * take for something else (a MAC such as 52:54:00:12:34:56 is a base-60 integer there, `on` a bool).
 */
const yaml = (v: unknown): string => YAML().stringify(v, { version: '1.1', lineWidth: 0 });

function renderNetwork(n: NonNullable<Resolved['network']>): string {
  const eth: Record<string, unknown> = { match: { macaddress: n.mac } };
  eth['dhcp4'] = n.ipv4 === undefined;
  eth['dhcp6'] = n.ipv6 === undefined;
  // The default IPv6 route (and, with M set, DHCPv6) comes from the host's router advertisement.
  eth['accept-ra'] = true;
  const addresses = [n.ipv4, n.ipv6].filter((a): a is string => a !== undefined);
  if (addresses.length) eth['addresses'] = addresses;
  const routes: Array<{ to: string; via: string }> = [];
  if (n.gateway4 !== undefined) routes.push({ to: '0.0.0.0/0', via: n.gateway4 });
  if (n.gateway6 !== undefined) routes.push({ to: '::/0', via: n.gateway6 });
  if (routes.length) eth['routes'] = routes;
  if (n.dns.length) eth['nameservers'] = n.search.length ? { addresses: n.dns, search: n.search } : { addresses: n.dns };
  return yaml({ version: 2, ethernets: { vmhost0: eth } });
}

function renderCloudConfig(r: Resolved): string {
  const cfg: Record<string, unknown> = { hostname: r.hostname };
  if (r.domain !== undefined) cfg['fqdn'] = `${r.hostname}.${r.domain}`;
  cfg['manage_etc_hosts'] = true;
  if (r.keys.length) {
    cfg['users'] = [{ name: r.user, gecos: 'vmhost', shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: true, ssh_authorized_keys: r.keys }];
  }
  cfg['disable_root'] = true;
  cfg['ssh_pwauth'] = false;
  // Host keys are made at the first boot and kept when the seed (and so the instance-id) changes.
  cfg['ssh_deletekeys'] = false;
  return `#cloud-config\n${yaml(cfg)}`;
}

/** Our cloud-config and the user's file as a MIME multipart (the user's part base64, so no boundary clash). */
function multipart(ours: string, user: NonNullable<Resolved['userData']>, hash: string): string {
  const boundary = `==vmhost-${hash.slice(0, 24)}==`;
  const userType = user.kind === 'cloud-config' ? 'text/cloud-config' : 'text/x-shellscript';
  const b64 = Buffer.from(user.text).toString('base64').replace(/.{76}/g, '$&\n');
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    'MIME-Version: 1.0',
    '',
    `--${boundary}`,
    'Content-Type: text/cloud-config; charset="utf-8"',
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: 7bit',
    'Content-Disposition: attachment; filename="vmhost.cfg"',
    '',
    ours.trimEnd(),
    `--${boundary}`,
    `Content-Type: ${userType}; charset="utf-8"`,
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: base64',
    ...(user.kind === 'cloud-config' ? [`Merge-Type: ${MERGE_TYPE}`] : []),
    `Content-Disposition: attachment; filename="${user.kind === 'cloud-config' ? 'user-data.cfg' : 'user-data.sh'}"`,
    '',
    b64.trimEnd(),
    `--${boundary}--`,
    '',
  ].join('\n');
}

/**
 * Renders the seed's three files. Pure and deterministic.
 * @throws {ValidationError} for bad input (see {@link validateCloudInit}).
 */
export function renderCloudInit(input: CloudInitInput): CloudInitSeed {
  const r = validateCloudInit(input);
  const ours = renderCloudConfig(r);
  const networkConfig = r.network ? renderNetwork(r.network) : undefined;
  const metaRest = yaml({ 'local-hostname': r.hostname });
  const hash = createHash('sha256')
    .update(JSON.stringify([ours, r.userData ?? null, networkConfig ?? null, metaRest]))
    .digest('hex');
  const userData = r.userData ? multipart(ours, r.userData, hash) : ours;
  const instanceId = `${r.vm}-${hash.slice(0, 16)}`;
  const seed: CloudInitSeed = { instanceId, metaData: `instance-id: ${instanceId}\n${metaRest}`, userData };
  if (networkConfig !== undefined) seed.networkConfig = networkConfig;
  return seed;
}

/** The seed volume: ISO 9660 + Rock Ridge, label {@link SEED_LABEL}, deterministic bytes. */
export function seedImage(seed: CloudInitSeed): Buffer {
  const files = [
    { name: 'meta-data', data: Buffer.from(seed.metaData) },
    { name: 'user-data', data: Buffer.from(seed.userData) },
  ];
  if (seed.networkConfig !== undefined) files.push({ name: 'network-config', data: Buffer.from(seed.networkConfig) });
  return buildIso({ volumeId: SEED_LABEL, files });
}

/** What {@link writeSeed} did. */
export interface WriteSeedResult {
  path: string;
  instanceId: string;
  bytes: number;
  /** False when the file already held exactly these bytes (nothing was written). */
  changed: boolean;
}

/** Refuses a directory that is a symlink, not a directory, or group/world-writable. */
function checkDir(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    throw SystemError.from(err, `seed directory ${dir}`);
  }
  if (st.isSymbolicLink() || !st.isDirectory()) throw new ValidationError('path', dir, 'the seed directory must be a real directory (not a symlink)');
  if ((st.mode & 0o022) !== 0) throw new ValidationError('path', dir, `the seed directory is group/world-writable (mode ${(st.mode & 0o777).toString(8)})`);
}

/** The current contents of `path` (not following a symlink there), or undefined. */
function readExisting(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the seed image of `input` to `path` (absolute) atomically: a temp file beside it created
 * with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600, fsynced, then renamed over `path` (a symlink at
 * `path` is replaced, never followed). When `path` already holds the same bytes nothing is written.
 * The directory must exist, be a real directory and not be group/world-writable.
 * @throws {ValidationError} bad input or directory (before anything is written).
 * @throws {SystemError} the write failed (the temp file is removed).
 */
export function writeSeed(path: string, input: CloudInitInput | CloudInitSeed): WriteSeedResult {
  if (typeof path !== 'string' || !isAbsolute(path) || path.includes('\0') || basename(path) === '') throw new ValidationError('path', path, 'expected an absolute file path');
  const seed = 'instanceId' in input ? input : renderCloudInit(input);
  const img = seedImage(seed);
  const dir = dirname(path);
  checkDir(dir);
  const old = readExisting(path);
  if (old && old.equals(img)) return { path, instanceId: seed.instanceId, bytes: img.length, changed: false };
  const tmp = `${dir}/.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let off = 0;
    while (off < img.length) off += writeSync(fd, img, off, img.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw SystemError.from(err, `writing the seed ${path}`);
  }
  return { path, instanceId: seed.instanceId, bytes: img.length, changed: true };
}
