/**
 * VM options, their validation, and the QEMU command line they give. Pure: no I/O.
 * @module
 */
import { isAbsolute, join } from 'node:path';
import { parseMac, validateIfName, validateInt, ValidationError, type NetnsRef } from '@vmhost/net';
import { stableMac } from './mac.js';

/** A disk. */
export interface DriveOptions {
  /** Image file (absolute path). */
  file: string;
  /** Image format. Default 'qcow2'. */
  format?: 'qcow2' | 'raw';
  /** Bus. Default 'virtio' (virtio-blk-pci; virtio-blk-device on `microvm`, which has no IDE). */
  interface?: 'virtio' | 'ide';
  /** Host cache mode. Default 'writeback'. */
  cache?: 'writeback' | 'none' | 'writethrough' | 'directsync' | 'unsafe';
  /** Read-only. Default false. */
  readOnly?: boolean;
  /** Drive id, the QMP `device` name for block commands. Default `drive<INDEX>`. */
  id?: string;
}

/** A NIC, attached either to a TAP by name or to a TAP file descriptor opened by the caller. */
export interface NicOptions {
  /** TAP interface name; QEMU opens it (needs CAP_NET_ADMIN; in `netns` when given). */
  tap?: string;
  /**
   * An open TAP fd (e.g. from @vmhost/net's `openTap`), passed to QEMU at spawn, so QEMU needs no
   * privilege to open /dev/net/tun. The caller keeps ownership and may close it after start().
   */
  fd?: number;
  /** MAC; default a stable locally administered one ({@link stableMac} of name and index). */
  mac?: string;
  /**
   * Device model. Default 'virtio-net-pci', or 'virtio-net-device' (virtio-mmio) on `microvm`,
   * which has no PCI bus and takes no other model.
   */
  model?: 'virtio-net-pci' | 'virtio-net-device' | 'e1000' | 'e1000e' | 'rtl8139';
  /** Netdev id. Default `net<INDEX>`. */
  id?: string;
}

/** Everything that describes a VM. */
export interface VmOptions {
  /** VM name: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit. */
  name: string;
  /** Directory of the VM's runtime files (absolute): qmp.sock, evt.sock, qemu.pid, qemu.log, vm.json. */
  runDir: string;
  /** Memory in MiB. Default 256. */
  memoryMiB?: number;
  /** vCPUs. Default 1. */
  cpus?: number;
  /** 'kvm', 'tcg', or 'auto' (KVM only where it really works: see detectAccel). Default 'auto'. */
  accel?: 'auto' | 'kvm' | 'tcg';
  /**
   * Machine type. Default 'q35' (PCI, SeaBIOS). 'microvm': no PCI and no firmware work (qboot),
   * virtio-mmio disks and NICs, ACPI power button; boots a kernel directly (`kernel` required;
   * the guest kernel needs the virtio_mmio driver). See docs/kvm-machine.md for when it pays.
   * Other QEMU machine names are passed through as given.
   */
  machine?: 'q35' | 'microvm' | (string & {});
  /**
   * `microvm` under TCG only: the host's TSC frequency in kHz, given to the guest kernel as
   * `tsc_early_khz` (microvm has no HPET or ACPI PM timer, so the guest would calibrate its TSC
   * against the PIT alone, which fails on a loaded host and then hangs; under TCG the guest's TSC
   * runs at the host's). Default: the host's `cpu MHz` of /proc/cpuinfo, exact where the CPU
   * frequency is fixed (VMs, most servers); give it where frequency scaling changes that figure.
   */
  tscKhz?: number;
  /** Kernel image for direct boot (absolute path). */
  kernel?: string;
  /** Initial ramdisk (absolute path); needs `kernel`. */
  initrd?: string;
  /** Kernel command line; needs `kernel`. */
  append?: string;
  drives?: DriveOptions[];
  nics?: NicOptions[];
  /** Serial console written to a file (absolute path). Default: no serial port. */
  console?: { file: string };
  /** Network namespace QEMU runs in (where TAPs named by `tap` live). Default: the caller's. */
  netns?: NetnsRef;
  /**
   * Drop root for this user once QEMU has set everything up (`-runas`; the launcher runs as root):
   * a user name of /etc/passwd (`'nobody'` or `{ user: 'nobody' }`; checked when the Vm is made)
   * or numeric ids (`{ uid, gid }`, for users from elsewhere). QEMU opens TAPs by name, disks, the
   * console file, the pidfile and the QMP socket before it drops, so those stay root's; what it
   * opens later (live snapshot overlays, a commit's base reopened for writing) must be reachable
   * by that user. Never root (uid 0). See docs/kvm-unprivileged.md.
   */
  runAs?: string | { user: string } | { uid: number; gid: number };
  /**
   * QEMU's seccomp sandbox: `-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,
   * resourcecontrol=deny` (with `runAs`, `elevateprivileges=allow`: QEMU 7.2 installs the filter
   * before `-runas` calls setuid, and the dropped process has no capabilities and no_new_privs
   * anyway). `true`: required (start fails when this QEMU has no -sandbox); `'auto'`: where it
   * has one. Default false.
   */
  sandbox?: boolean | 'auto';
  /** QEMU binary. Default 'qemu-system-x86_64'. */
  qemuBinary?: string;
  /** More arguments, appended as given (still an array: never a shell string). */
  extraArgs?: string[];
}

/** Options with defaults filled in and validated. */
export interface ResolvedVmOptions extends Required<Pick<VmOptions, 'name' | 'runDir' | 'memoryMiB' | 'cpus' | 'accel' | 'machine' | 'qemuBinary'>> {
  kernel?: string;
  initrd?: string;
  append?: string;
  drives: Required<DriveOptions>[];
  nics: (Required<Pick<NicOptions, 'mac' | 'model' | 'id'>> & Pick<NicOptions, 'tap' | 'fd'>)[];
  console?: { file: string };
  netns?: NetnsRef;
  runAs?: { user: string } | { uid: number; gid: number };
  sandbox: boolean | 'auto';
  tscKhz?: number;
  extraArgs: string[];
}

/** What {@link buildArgs} needs to know of the host (probed by the launcher). */
export interface HostFacts {
  /** The host's TSC frequency in kHz (for `microvm` under TCG when `tscKhz` is not given). */
  tscKhz?: number;
  /** Whether the QEMU binary has `-sandbox` (for `sandbox: 'auto'`). */
  sandbox?: boolean;
}

/** Files of a VM in its run dir. */
export interface RunFiles {
  qmp: string;
  /**
   * A second QMP monitor, for a listener of events (QEMU serves one client per monitor): a
   * supervisor holds it for the VM's life while `qmp.sock` stays free for commands.
   */
  events: string;
  pidfile: string;
  log: string;
  state: string;
}

/** Where the runtime files of a run dir are. */
export function runFiles(runDir: string): RunFiles {
  return {
    qmp: join(runDir, 'qmp.sock'),
    events: join(runDir, 'evt.sock'),
    pidfile: join(runDir, 'qemu.pid'),
    log: join(runDir, 'qemu.log'),
    state: join(runDir, 'vm.json'),
  };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ID_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;
/** Longest Unix socket path (sun_path is 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;

function absPath(v: unknown, field: string): string {
  if (typeof v !== 'string' || !isAbsolute(v) || v.includes('\0')) throw new ValidationError(field, v, 'expected an absolute path');
  return v;
}

/**
 * Validates `o` and fills in the defaults. Every error names the field (`nics[1].mac`, ...).
 * @throws {ValidationError}
 */
export function resolveVmOptions(o: VmOptions): ResolvedVmOptions {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) {
    throw new ValidationError('name', o.name, 'expected 1-64 of [A-Za-z0-9_.-], starting with a letter or digit');
  }
  const runDir = absPath(o.runDir, 'runDir');
  if (Buffer.byteLength(runFiles(runDir).qmp) > SUN_PATH_MAX) {
    throw new ValidationError('runDir', o.runDir, `too long: the QMP socket path must fit in ${SUN_PATH_MAX} bytes`);
  }
  const memoryMiB = o.memoryMiB ?? 256;
  validateInt(memoryMiB, 'memoryMiB', 16, 16 * 1024 * 1024);
  const cpus = o.cpus ?? 1;
  validateInt(cpus, 'cpus', 1, 1024);
  const accel = o.accel ?? 'auto';
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new ValidationError('accel', accel, "expected 'auto', 'kvm' or 'tcg'");
  const machine = o.machine ?? 'q35';
  if (typeof machine !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(machine)) throw new ValidationError('machine', machine, 'expected a machine type name');
  const micro = machine === 'microvm';
  if (micro && o.kernel === undefined) throw new ValidationError('kernel', o.kernel, 'microvm boots a kernel directly: give kernel');
  const r: ResolvedVmOptions = {
    name: o.name,
    runDir,
    memoryMiB,
    cpus,
    accel,
    machine,
    qemuBinary: o.qemuBinary ?? 'qemu-system-x86_64',
    drives: [],
    nics: [],
    sandbox: false,
    extraArgs: [],
  };
  if (typeof r.qemuBinary !== 'string' || r.qemuBinary.length === 0) throw new ValidationError('qemuBinary', o.qemuBinary, 'expected a program');
  if (o.kernel !== undefined) r.kernel = absPath(o.kernel, 'kernel');
  if (o.initrd !== undefined) {
    if (o.kernel === undefined) throw new ValidationError('initrd', o.initrd, 'needs kernel');
    r.initrd = absPath(o.initrd, 'initrd');
  }
  if (o.append !== undefined) {
    if (o.kernel === undefined) throw new ValidationError('append', o.append, 'needs kernel');
    if (typeof o.append !== 'string' || o.append.includes('\0')) throw new ValidationError('append', o.append, 'expected a string');
    r.append = o.append;
  }
  const ids = new Set<string>();
  const checkId = (id: unknown, field: string): string => {
    if (typeof id !== 'string' || !ID_RE.test(id)) throw new ValidationError(field, id, 'expected 1-32 of [A-Za-z0-9_.-], starting with a letter');
    if (ids.has(id)) throw new ValidationError(field, id, 'is used twice');
    ids.add(id);
    return id;
  };
  if (o.drives !== undefined && !Array.isArray(o.drives)) throw new ValidationError('drives', o.drives, 'expected an array');
  (o.drives ?? []).forEach((d, i) => {
    const f = `drives[${i}]`;
    if (!d || typeof d !== 'object') throw new ValidationError(f, d, 'expected an object');
    const format = d.format ?? 'qcow2';
    if (format !== 'qcow2' && format !== 'raw') throw new ValidationError(`${f}.format`, d.format, "expected 'qcow2' or 'raw'");
    const iface = d.interface ?? 'virtio';
    if (iface !== 'virtio' && iface !== 'ide') throw new ValidationError(`${f}.interface`, d.interface, "expected 'virtio' or 'ide'");
    if (micro && iface !== 'virtio') throw new ValidationError(`${f}.interface`, d.interface, "microvm has no IDE: expected 'virtio'");
    const cache = d.cache ?? 'writeback';
    if (!['writeback', 'none', 'writethrough', 'directsync', 'unsafe'].includes(cache)) {
      throw new ValidationError(`${f}.cache`, d.cache, "expected 'writeback', 'none', 'writethrough', 'directsync' or 'unsafe'");
    }
    if (d.readOnly !== undefined && typeof d.readOnly !== 'boolean') throw new ValidationError(`${f}.readOnly`, d.readOnly, 'expected a boolean');
    r.drives.push({ file: absPath(d.file, `${f}.file`), format, interface: iface, cache, readOnly: d.readOnly ?? false, id: checkId(d.id ?? `drive${i}`, `${f}.id`) });
  });
  if (o.nics !== undefined && !Array.isArray(o.nics)) throw new ValidationError('nics', o.nics, 'expected an array');
  (o.nics ?? []).forEach((n, i) => {
    const f = `nics[${i}]`;
    if (!n || typeof n !== 'object') throw new ValidationError(f, n, 'expected an object');
    if ((n.tap === undefined) === (n.fd === undefined)) throw new ValidationError(f, n, 'expected exactly one of tap and fd');
    if (n.tap !== undefined) validateIfName(n.tap, `${f}.tap`);
    if (n.fd !== undefined) validateInt(n.fd, `${f}.fd`, 0, 0x7fffffff);
    const mac = n.mac === undefined ? stableMac(o.name, i) : parseMac(n.mac, `${f}.mac`);
    const model = n.model ?? (micro ? 'virtio-net-device' : 'virtio-net-pci');
    if (micro && model !== 'virtio-net-device') throw new ValidationError(`${f}.model`, n.model, "microvm has no PCI bus: expected 'virtio-net-device'");
    if (!['virtio-net-pci', 'virtio-net-device', 'e1000', 'e1000e', 'rtl8139'].includes(model)) {
      throw new ValidationError(`${f}.model`, n.model, "expected 'virtio-net-pci', 'virtio-net-device', 'e1000', 'e1000e' or 'rtl8139'");
    }
    if (!micro && model === 'virtio-net-device') throw new ValidationError(`${f}.model`, n.model, "'virtio-net-device' needs machine 'microvm'");
    const nic: ResolvedVmOptions['nics'][number] = { mac, model, id: checkId(n.id ?? `net${i}`, `${f}.id`) };
    if (n.tap !== undefined) nic.tap = n.tap;
    if (n.fd !== undefined) nic.fd = n.fd;
    r.nics.push(nic);
  });
  const macs = new Set<string>();
  r.nics.forEach((n, i) => {
    if (macs.has(n.mac)) throw new ValidationError(`nics[${i}].mac`, n.mac, 'is used twice');
    macs.add(n.mac);
  });
  if (o.console !== undefined) r.console = { file: absPath(o.console?.file, 'console.file') };
  if (o.netns !== undefined) r.netns = o.netns;
  if (o.runAs !== undefined) r.runAs = resolveRunAs(o.runAs);
  if (o.sandbox !== undefined) {
    if (o.sandbox !== true && o.sandbox !== false && o.sandbox !== 'auto') throw new ValidationError('sandbox', o.sandbox, "expected true, false or 'auto'");
    r.sandbox = o.sandbox;
  }
  if (o.tscKhz !== undefined) {
    validateInt(o.tscKhz, 'tscKhz', 1_000, 100_000_000);
    r.tscKhz = o.tscKhz;
  }
  if (o.extraArgs !== undefined) {
    if (!Array.isArray(o.extraArgs) || o.extraArgs.some((a) => typeof a !== 'string')) {
      throw new ValidationError('extraArgs', o.extraArgs, 'expected an array of strings');
    }
    r.extraArgs = [...o.extraArgs];
  }
  return r;
}

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}\$?$/i;

function resolveRunAs(v: unknown): { user: string } | { uid: number; gid: number } {
  const user = typeof v === 'string' ? v : v && typeof v === 'object' && 'user' in v ? (v as { user: unknown }).user : undefined;
  if (user !== undefined) {
    if (typeof user !== 'string' || !USER_RE.test(user)) throw new ValidationError(typeof v === 'string' ? 'runAs' : 'runAs.user', user, 'expected a user name');
    if (user === 'root') throw new ValidationError('runAs', user, 'must not be root');
    return { user };
  }
  if (!v || typeof v !== 'object' || !('uid' in v) || !('gid' in v)) throw new ValidationError('runAs', v, 'expected a user name, { user } or { uid, gid }');
  const { uid, gid } = v as { uid: unknown; gid: unknown };
  validateInt(uid, 'runAs.uid', 1, 0xfffffffe);
  validateInt(gid, 'runAs.gid', 0, 0xfffffffe);
  return { uid: uid as number, gid: gid as number };
}

/** QEMU option values: a ',' inside a value is written ',,'. */
export function qemuEscape(v: string): string {
  return v.replace(/,/g, ',,');
}

/**
 * The fds passed to QEMU at spawn, in order: QEMU sees them as fd 3, 4, ... (child stdio slots).
 */
export function passedFds(r: ResolvedVmOptions): number[] {
  return r.nics.filter((n) => n.fd !== undefined).map((n) => n.fd!);
}

/**
 * The QEMU command line (without the binary) for resolved options and a decided accelerator.
 * QEMU stays in the foreground (no -daemonize: the launcher keeps it a direct child), writes its
 * pid to the pidfile, and serves QMP on the run dir's socket, and a second QMP monitor for an event
 * listener on `evt.sock` (shorter than `qmp.sock`'s name, so it fits wherever that one does).
 */
export function buildArgs(r: ResolvedVmOptions, accel: 'kvm' | 'tcg', host: HostFacts = {}): string[] {
  const f = runFiles(r.runDir);
  const micro = r.machine === 'microvm';
  let append = r.append;
  if (micro && accel === 'tcg' && !/(^|\s)tsc_early_khz=/.test(append ?? '')) {
    const khz = r.tscKhz ?? host.tscKhz;
    if (khz === undefined) throw new ValidationError('tscKhz', undefined, 'microvm under TCG needs the host TSC frequency (see VmOptions.tscKhz)');
    append = `${append ?? ''}${append ? ' ' : ''}tsc_early_khz=${khz}`;
  }
  const a: string[] = [
    '-name', `guest=${qemuEscape(r.name)}`,
    '-machine', `${r.machine},accel=${accel}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(r.memoryMiB),
    '-smp', String(r.cpus),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-chardev', `socket,id=vmhost-qmp,path=${qemuEscape(f.qmp)},server=on,wait=off`,
    '-mon', 'chardev=vmhost-qmp,mode=control',
    '-chardev', `socket,id=vmhost-events,path=${qemuEscape(f.events)},server=on,wait=off`,
    '-mon', 'chardev=vmhost-events,mode=control',
    '-pidfile', f.pidfile,
  ];
  if (r.console) a.push('-chardev', `file,id=vmhost-console,path=${qemuEscape(r.console.file)}`, '-serial', 'chardev:vmhost-console');
  if (r.kernel) a.push('-kernel', r.kernel);
  if (r.initrd) a.push('-initrd', r.initrd);
  if (append !== undefined) a.push('-append', append);
  for (const d of r.drives) {
    const ro = d.readOnly ? ',read-only=on' : '';
    // microvm: virtio-mmio, so the drive is a backend plugged into a virtio-blk-device
    a.push('-drive', `file=${qemuEscape(d.file)},format=${d.format},if=${micro ? 'none' : d.interface},id=${d.id},cache=${d.cache}${ro}`);
    if (micro) a.push('-device', `virtio-blk-device,drive=${d.id}`);
  }
  let nextFd = 3;
  for (const n of r.nics) {
    const backend = n.fd !== undefined ? `fd=${nextFd++}` : `ifname=${n.tap},script=no,downscript=no`;
    a.push('-netdev', `tap,id=${n.id},${backend}`);
    a.push('-device', `${n.model},netdev=${n.id},mac=${n.mac}`);
  }
  if (r.runAs) a.push('-runas', 'user' in r.runAs ? r.runAs.user : `${r.runAs.uid}:${r.runAs.gid}`);
  if (r.sandbox === true || (r.sandbox === 'auto' && host.sandbox)) {
    a.push('-sandbox', `on,obsolete=deny,elevateprivileges=${r.runAs ? 'allow' : 'deny'},spawn=deny,resourcecontrol=deny`);
  }
  a.push(...r.extraArgs);
  return a;
}
