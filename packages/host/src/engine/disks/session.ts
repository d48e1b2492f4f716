/**
 * A VM's disks on the host: which of its disks have a chain (the writable ones and those on a
 * base image), the checks of the host file's images before anything is touched (a base that is
 * missing, of another format than the host file says, larger than `size`), the disk directory
 * (`<dataDir>/disks/<vm>`, made and checked as the state directory is), and a session on it: the
 * VM's disk lock (`<stateDir>/vms/<vm>/lock`, held from reading the record until QEMU has opened
 * the images, or until an operation is done), the record read strictly, QMP when the VM runs, an
 * interrupted operation finished first, stray files swept.
 *
 * {@link prepareDrives} is the start path every start takes (apply, `vm start`, a restart, a
 * rollback): the drives of the VM's QEMU on the active top of each chain, after the chain was
 * checked against the record and the files.
 * @module
 */
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { imageInfo, qemuImg, Vm, type DriveOptions, type QmpClient } from '@vmhost/kvm';
import { HostDiskError, HostPreconditionError } from '../../errors.js';
import type { HostOptions, QemuUser, ResolvedDisk, ResolvedHost, ResolvedVm } from '../../types.js';
import { DATA_ROOT, stateDirFor } from '../context.js';
import { vmDir } from '../desired.js';
import { liveQemuPid } from '../kinds/vm.js';
import { checkStateDir, dataDir, lock, privateDir, setSearchable, unreachableBy } from '../state-dir.js';
import { initDisk, images, plainDisk, topOf } from './chain.js';
import { chownChain, newOverlayName, sweep, verifyChain } from './images.js';
import { emptyRecord, readChainRecord, type ChainRecord, type DiskChain } from './record.js';
import { runIntent, startIntent, type OpEnv } from './run-op.js';

/** A VM of a host and where its files are. */
export interface VmDisks {
  host: ResolvedHost;
  vm: ResolvedVm;
  /** Its index in the host file's `vms` (for field names). */
  vmIndex: number;
  options: HostOptions;
  /** The state directory (made and checked when a session starts). */
  stateDir: string;
  /** The persistent data directory. */
  dataDir: string;
  /** The ids the VM's QEMU runs as (`qemu.user`); undefined: root. */
  owner?: { uid: number; gid: number };
  notice(message: string): void;
}

/** The disks of `vm` that have a chain: on a base image, or writable. */
export function chainDisks(vm: ResolvedVm): number[] {
  return vm.disks.flatMap((d, j) => (d.base || !d.readOnly ? [j] : []));
}

const field = (i: number, j: number, key: string): string => `vms[${i}].disk[${j}].${key}`;

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Checks the images the host file names for `vms` (default all) before anything is touched: a
 * base image exists, is what `format` says and is not larger than `size`; a writable qcow2 disk
 * is qcow2 (a raw disk is not probed: its first bytes are the guest's).
 * @throws {HostPreconditionError} naming the field.
 */
export async function checkDiskSources(host: ResolvedHost, vms: readonly ResolvedVm[] = host.vms): Promise<void> {
  for (const vm of vms) {
    const i = host.vms.indexOf(vm);
    for (const [j, d] of vm.disks.entries()) {
      if (!d.base && (d.readOnly || d.format === 'raw')) continue;
      const key = d.base ? 'base' : 'file';
      if (!isFile(d.file)) throw new HostPreconditionError(field(i, j, key), d.file, 'no such file');
      let info;
      try {
        [info] = await imageInfo(d.file, { shared: true });
      } catch (err) {
        throw new HostPreconditionError(field(i, j, key), d.file, `not an image qemu-img can read (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
      }
      if (info?.format !== d.format) throw new HostPreconditionError(field(i, j, 'format'), d.format, `${d.file} is a ${String(info?.format)} image, not ${d.format}`);
      const size = d.base?.sizeBytes;
      if (size !== undefined && size < info['virtual-size']) {
        throw new HostPreconditionError(field(i, j, 'size'), size, `smaller than the virtual size of the base image ${d.file} (${info['virtual-size']} bytes): a disk cannot be smaller than its base`);
      }
    }
  }
}

/**
 * The disk directory of the VM (real path): made when `create`, else undefined when there is none.
 * With `v.owner` (QEMU runs as another user) the directories from the data directory down are
 * 0711, so that QEMU can reopen its images by name, and so are those of vmhost's default data
 * root (/var/lib/vmhost) above it; otherwise they keep 0700 or 0711.
 */
export function openDiskDir(v: VmDisks, create: boolean): string | undefined {
  const real = checkStateDir(v.dataDir, create, { keepSearchable: true });
  if (real === undefined) return undefined;
  if (!create) {
    try {
      lstatSync(join(real, 'disks', v.vm.name));
    } catch {
      return undefined;
    }
  }
  if (v.owner) {
    const root = checkStateDir(DATA_ROOT, false, { keepSearchable: true });
    if (root !== undefined && real.startsWith(`${root}/`)) {
      const rel = real.slice(root.length + 1).split('/');
      setSearchable(root, true);
      for (let k = 1; k <= rel.length; k++) setSearchable(join(root, ...rel.slice(0, k)), true);
    }
    setSearchable(real, true);
  }
  return dataDir(real, ['disks', v.vm.name], v.owner ? true : undefined);
}

/** `qemu.user` as the host file writes it. */
function qemuUserText(u: QemuUser): string {
  return typeof u === 'string' ? u : 'user' in u ? u.user : `${u.uid}:${u.gid}`;
}

/**
 * Refuses to start a VM whose QEMU, running as `v.owner`, could not reach the images it reopens
 * by name (live snapshot, commit): the disk directory `dir` and the host file's writable images.
 * @throws {HostPreconditionError} `qemu.user` naming the directory and what to do.
 */
function checkReachable(v: VmDisks, dir: string | undefined, disks: readonly DiskChain[]): void {
  if (!v.owner) return;
  const who = `uid ${v.owner.uid}`;
  const targets = [...(dir !== undefined ? [dir] : []), ...disks.filter((d) => d.mode === 'plain').map((d) => d.origin)];
  for (const t of targets) {
    const blocked = unreachableBy(t, v.owner);
    if (blocked !== undefined) {
      throw new HostPreconditionError(
        'qemu.user',
        qemuUserText(v.host.qemu?.user ?? 'auto'),
        `VM ${v.vm.name}'s QEMU runs as ${who} and reopens its images by name for a live snapshot or commit, but ${who} cannot pass through ${blocked} (on the way to ${t}): make it searchable (chmod o+x; 0711 shows nothing), move the ${dir !== undefined && t === targets[0] ? 'data directory (--data-dir)' : 'image'}, or set qemu.user: root`,
      );
    }
  }
}

/** The VM's run directory (real path, made); the disk lock lives there. */
export function runDirOf(v: VmDisks): string {
  const real = checkStateDir(v.stateDir, true) ?? v.stateDir;
  return privateDir(real, 'vms', v.vm.name);
}

/** The real uid and gid of process `pid` (/proc/PID/status), or undefined. */
export function processIds(pid: number | undefined): { uid: number; gid: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = /^Uid:\s+(\d+)/m.exec(text);
    const gid = /^Gid:\s+(\d+)/m.exec(text);
    return uid && gid ? { uid: Number(uid[1]), gid: Number(gid[1]) } : undefined;
  } catch {
    return undefined;
  }
}

/** An open session on a VM's disks. */
export interface Session {
  v: VmDisks;
  /** The disk directory. */
  dir: string;
  runDir: string;
  rec: ChainRecord;
  /** Where intents run (with QMP when the VM runs). */
  env: OpEnv;
  /** The running VM, attached (its QMP is `env.qmp`). */
  vm?: Vm;
}

/** The env of a session: `qmp` when the VM runs. */
function opEnv(v: VmDisks, dir: string, qmp: QmpClient | undefined): OpEnv {
  const env: OpEnv = {
    dir,
    vm: v.vm.name,
    sizeOf: (j) => v.vm.disks[j]?.base?.sizeBytes,
    notice: (m) => v.notice(m),
    checkpoint: async (op, phase, index) => {
      await v.options.checkpoint?.({ command: op, phase, step: { id: `disks:${v.vm.name}`, action: 'update', description: `${op} of the disks of VM ${v.vm.name}` }, index });
    },
  };
  if (qmp) env.qmp = qmp;
  return env;
}

/**
 * Opens a session on the VM's disks: the disk lock taken, the record read (an empty one when
 * there is none), QMP attached when the VM runs (unless `live: false`), an interrupted operation
 * finished first, strays swept. Close it to let go of QMP and the lock.
 * @throws {HostDiskError} `EHOST_DISK_QMP` when the VM runs and its QMP socket is held by another
 *   client. `HostBusyError` when another vmhost holds the VM's disk lock.
 */
export async function openSession(v: VmDisks, dir: string, opts: { live?: boolean; unlock?: () => void } = {}): Promise<Session & { close(): Promise<void> }> {
  const runDir = runDirOf(v);
  const unlock = opts.unlock ?? lock(runDir);
  let vm: Vm | undefined;
  const close = async (): Promise<void> => {
    await vm?.detach().catch(() => undefined);
    unlock();
  };
  try {
    const rec = readChainRecord(dir, v.vm.name) ?? emptyRecord(v.vm.name);
    if (opts.live !== false && liveQemuPid(runDir) !== undefined) {
      try {
        vm = await Vm.attach(runDir, { timeoutMs: 3_000 });
      } catch (err) {
        throw new HostDiskError('EHOST_DISK_QMP', join(runDir, 'qmp.sock'), `VM ${v.vm.name} runs but its QMP socket cannot be used (another client holds it?): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    const s: Session = { v, dir, runDir, rec, env: opEnv(v, dir, vm?.qmp) };
    if (vm) {
      // the user the running QEMU is (it may have been started with another qemu.user)
      const ids = processIds(liveQemuPid(runDir));
      if (ids && ids.uid !== 0) s.env.owner = ids;
    }
    if (vm) s.vm = vm;
    await finishInterrupted(s);
    return { ...s, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Runs `fn` on a session of the VM's disks ({@link openSession}), closed afterwards. */
export async function withSession<T>(v: VmDisks, dir: string, fn: (s: Session) => Promise<T>, opts: { live?: boolean } = {}): Promise<T> {
  const s = await openSession(v, dir, opts);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/**
 * Finishes an operation a kill interrupted (with a notice), then sweeps stray files. When it
 * cannot be finished but was settled (the record matches the files again, the intent is gone:
 * a merge that failed again lost its damaged labels), that is a notice and the session goes on;
 * an intent that is still there is an error.
 */
export async function finishInterrupted(s: Session): Promise<void> {
  const it = s.rec.intent;
  if (it) {
    s.v.notice(`VM ${s.v.vm.name}: finishing the interrupted ${it.op}${it.label ? ` ${it.label}` : ''} of its disks (started ${it.at})`);
    try {
      await runIntent(s.env, s.rec);
    } catch (err) {
      if (s.rec.intent) throw err;
      s.v.notice(`VM ${s.v.vm.name}: the interrupted ${it.op} could not be finished (${err instanceof Error ? err.message : String(err)}); its disks are as they were before it`);
    }
  }
  for (const f of sweep(s.dir, s.rec)) s.v.notice(`VM ${s.v.vm.name}: removed ${join(s.dir, f)}, which no chain record named`);
}

/** Whether the record's disk `d` is the host file's disk `spec`. */
function sameDisk(d: DiskChain, spec: ResolvedDisk): boolean {
  return d.mode === (spec.base ? 'base' : 'plain') && d.origin === spec.file && d.originFormat === spec.format;
}

/** A plain disk entry that holds nothing but its image (no overlay, no point): replaceable. */
const trivial = (d: DiskChain): boolean => d.mode === 'plain' && d.overlays.length === 0 && d.originPoint === null;

/**
 * Makes the record's disks those of the host file: a plain disk gets its entry (no file made);
 * a disk on a base image gets its first overlay (write-ahead: VM stopped); a disk whose recorded
 * chain is of another image is refused unless its entry holds nothing.
 * @throws {HostDiskError} `EHOST_DISK_MISMATCH` naming the field.
 */
export async function ensureDisks(s: Session): Promise<void> {
  const { v, rec } = s;
  const i = v.vmIndex;
  const fresh: number[] = [];
  v.vm.disks.forEach((spec, j) => {
    const d = rec.disks.find((x) => x.index === j);
    const writes = Boolean(spec.base) || !spec.readOnly;
    if (d && !writes) {
      if (trivial(d)) rec.disks = rec.disks.filter((x) => x !== d);
      else throw new HostDiskError('EHOST_DISK_MISMATCH', spec.file, `${field(i, j, 'readOnly')}: disk ${j} of VM ${v.vm.name} is read-only in the host file, but it has a chain of overlays (its data is in them): make it writable and commit it (vmhost vm commit) first`);
      return;
    }
    if (!writes) return;
    if (d && sameDisk(d, spec)) return;
    if (d && !trivial(d)) {
      const key = spec.base ? 'base' : 'file';
      throw new HostDiskError(
        'EHOST_DISK_MISMATCH',
        spec.file,
        `${field(i, j, key)}: disk ${j} of VM ${v.vm.name} is ${spec.file} (${spec.base ? 'a base image' : 'a disk'}, ${spec.format}) in the host file, but its recorded chain was made on ${d.origin} (${d.mode === 'base' ? 'a base image' : 'a disk'}, ${d.originFormat}) and holds data in ${images(d).length} image(s): put the old image back, or remove the chain (vmhost down --delete-disks)`,
      );
    }
    rec.disks = rec.disks.filter((x) => x.index !== j);
    if (spec.base) fresh.push(j);
    else rec.disks.push(plainDisk(j, spec.file, spec.format));
  });
  rec.disks.sort((a, b) => a.index - b.index);
  if (fresh.length === 0) return;
  if (s.env.qmp) throw new HostDiskError('EHOST_DISK_MISMATCH', s.dir, `VM ${v.vm.name} runs, but disk(s) ${fresh.join(', ')} on a base image have no overlay in ${s.dir}: it did not start from this data directory`);
  const at = new Date().toISOString();
  const add = fresh.map((j) => ({ disk: j, file: newOverlayName(j) }));
  for (const j of fresh) {
    const spec = v.vm.disks[j]!;
    rec.disks.push({ ...initDisk(j, spec.file, spec.format, '', at), overlays: [] });
  }
  rec.disks.sort((a, b) => a.index - b.index);
  await startIntent(s.env, rec, { op: 'init', label: null, at, pending: fresh, add, remove: [], resume: false });
}

/**
 * The start path: the drives of VM `vm` on the active top of each chain, with the lock held
 * until `release` (call it once QEMU has opened its images, or failed). Checks first (nothing
 * touched on a refusal): the host file's images, the record against the host file, the files
 * against the record. A disk on a base image gets its first overlay here (the first start), and
 * its top is grown to `size` when the host file asks for more. A VM with neither a base image
 * nor a recorded chain starts on the host file's images as they are.
 * @throws {HostPreconditionError}, {@link HostDiskError}, `DiskFormatError`.
 */
export async function prepareDrives(v: VmDisks, drives: DriveOptions[]): Promise<{ drives: DriveOptions[]; release: () => void }> {
  if (chainDisks(v.vm).length === 0) return { drives, release: () => undefined };
  await checkDiskSources(v.host, [v.vm]);
  const unlock = lock(runDirOf(v));
  let dir: string | undefined;
  try {
    dir = openDiskDir(v, v.vm.disks.some((d) => d.base));
  } catch (err) {
    unlock();
    throw err;
  }
  // no chain yet (plain disks never snapshotted): the host file's images, as they are (the
  // user QEMU runs as gets them: a live snapshot later reopens them by name)
  if (dir === undefined) {
    try {
      const plain = chainDisks(v.vm).map((j) => plainDisk(j, v.vm.disks[j]!.file, v.vm.disks[j]!.format));
      if (v.owner) checkReachable(v, undefined, plain);
      for (const d of plain) chownChain(d, '', v.owner);
    } catch (err) {
      unlock();
      throw err;
    }
    return { drives, release: unlock };
  }
  const out = drives.map((d) => ({ ...d }));
  // The VM is stopped (the start path runs for a stopped VM only): offline, no QMP.
  const s = await openSession(v, dir, { live: false, unlock });
  try {
    await ensureDisks(s);
    checkReachable(v, dir, s.rec.disks);
    for (const j of chainDisks(v.vm)) {
      const d = s.rec.disks.find((x) => x.index === j)!;
      // QEMU reopens the images by name after it dropped to its user: they are that user's
      chownChain(d, dir, v.owner);
      const seen = await verifyChain(d, dir, {}, v.owner?.uid);
      const top = topOf(d, dir);
      const want = v.vm.disks[j]!.base?.sizeBytes;
      if (want !== undefined && seen[0] && want > seen[0].virtualSize) {
        await qemuImg(['resize', '-q', '-f', 'qcow2', top.file, String(want)]);
        v.notice(`VM ${v.vm.name} disk ${j}: grown to ${want} bytes (its size in the host file)`);
      }
      out[j] = { ...out[j]!, file: top.file, format: top.format, readOnly: false };
    }
  } catch (err) {
    await s.close();
    throw err;
  }
  // the lock is kept until QEMU has the images open: an operation meanwhile would find it stopped
  return { drives: out, release: () => void s.close() };
}
