/**
 * The tiny test guest of the demo and the tests, built from Debian packages only: Debian's kernel
 * (`linux-image-<abi>-amd64`, fetched with `apt-get download` and unpacked with `dpkg-deb -x`,
 * never installed on the host) and an initramfs of `busybox-static`, the virtio/ACPI modules in
 * load order and a small `/init`. Programs are spawned with argument arrays; the initramfs is
 * written here (cpio newc, gzip), so no `cpio` program is needed.
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { ValidationError } from '@vmhost/net';
import { GuestBuildError } from '../../errors.js';
import { cpioNewc, type CpioEntry } from './cpio.js';
import { GUEST_APPEND, GUEST_DIRS, GUEST_MARKERS, GUEST_MODULES, GUEST_SCRIPTS } from './files.js';
import { TOOL_C, TOOL_CFLAGS } from './tool.js';

/** Options of {@link buildTestGuest}. */
export interface TestGuestOptions {
  /** Where the guest goes (absolute). Default: {@link defaultGuestDir}. */
  dir?: string;
  /**
   * The Debian kernel package, e.g. `linux-image-6.1.0-28-amd64`. Default: `$VMHOST_GUEST_KERNEL`,
   * else what the `linux-image-amd64` metapackage depends on.
   */
  kernelPackage?: string;
  /** The static busybox to put in the guest. Default: `/bin/busybox` (Debian's `busybox-static`). */
  busybox?: string;
  /** Build again even when `dir` holds a current build. */
  force?: boolean;
  /** Progress lines (what is downloaded, what was built). Default: none. */
  log?: (line: string) => void;
}

/** A built test guest: what to boot and how to recognise its stages on the serial console. */
export interface TestGuest {
  /** The directory holding `vmlinuz`, `vmlinux`, `initrd.img` and `guest.json`. */
  dir: string;
  /** The kernel as Debian ships it (a compressed bzImage). */
  kernel: string;
  /**
   * The same kernel uncompressed (an ELF with a PVH entry note): QEMU boots it directly, which
   * skips the kernel's own decompression, slow under TCG (2.3 s instead of 5.7 s to the guest's
   * TCP service here: docs/kvm-machine.md). Also what `machine: 'microvm'` boots.
   */
  vmlinux: string;
  initrd: string;
  /** The kernel command line the guest is made for (`vmhost.name=`, `vmhost.ip6=`, `vmhost.ip6b=`, `vmhost.gw6=` may be added). */
  append: string;
  /** Lines /init prints on the serial console (`console=ttyS0`). */
  markers: typeof GUEST_MARKERS;
  /** The Debian kernel package and its version. */
  package: string;
  kernelVersion: string;
  /** The modules /init loads, in order. */
  modules: string[];
  /**
   * Whether the guest has `/bin/vmhost-tool` (built when the builder found a C compiler on
   * x86-64): the UDP echo on port 7 and hostile mode's router advertisements.
   */
  tool: boolean;
  /** False when `dir` already held a current build and nothing was done. */
  built: boolean;
}

/** Changes with anything that makes a different guest: a build with another stamp is redone. */
const STAMP = createHash('sha256')
  .update(JSON.stringify({ format: 2, dirs: GUEST_DIRS, modules: GUEST_MODULES, scripts: GUEST_SCRIPTS, append: GUEST_APPEND, markers: GUEST_MARKERS, tool: [TOOL_C, TOOL_CFLAGS] }))
  .digest('hex')
  .slice(0, 16);

const run = promisify(execFile);

/**
 * Where the test guest is cached: `$XDG_CACHE_HOME/vmhost/guest`, else `~/.cache/vmhost/guest`
 * (`/root/.cache/vmhost/guest` for root).
 */
export function defaultGuestDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'vmhost', 'guest');
}

/** The guest in `dir` when it is a current build of this version of vmhost, else undefined. */
export function readTestGuest(dir: string = defaultGuestDir()): TestGuest | undefined {
  let meta: { stamp?: unknown; package?: unknown; kernel?: unknown; modules?: unknown; tool?: unknown };
  try {
    meta = JSON.parse(readFileSync(join(dir, 'guest.json'), 'utf8')) as typeof meta;
  } catch {
    return undefined;
  }
  const kernel = join(dir, 'vmlinuz');
  const vmlinux = join(dir, 'vmlinux');
  const initrd = join(dir, 'initrd.img');
  const nonEmpty = (f: string): boolean => existsSync(f) && statSync(f).size > 0;
  if (meta.stamp !== STAMP || !nonEmpty(kernel) || !nonEmpty(vmlinux) || !nonEmpty(initrd) || !Array.isArray(meta.modules)) return undefined;
  return {
    dir, kernel, vmlinux, initrd, append: GUEST_APPEND, markers: GUEST_MARKERS,
    package: String(meta.package), kernelVersion: String(meta.kernel), modules: meta.modules.map(String), tool: meta.tool === true, built: false,
  };
}

/**
 * Builds the test guest into `options.dir` (default {@link defaultGuestDir}), or does nothing when
 * a current build is there. Needs `apt-get`/`apt-cache`/`dpkg-deb` (Debian or Ubuntu), Debian's
 * `busybox-static`, and access to the distribution's package mirror.
 *
 * The guest's `/init` loads the modules, arms the ACPI power button (a clean `poweroff -f`), takes
 * a DHCP lease on eth0 (`udhcpc`), sets `vmhost.ip6=ADDR/LEN` (and a second address,
 * `vmhost.ip6b=ADDR/LEN`, as SLAAC gives a real guest) and `vmhost.gw6=ADDR` from the kernel
 * command line (without `vmhost.gw6` it waits up to 10 s for the default route of the host's router
 * advertisement), and serves: port 22 `SSH-2.0-vmhost-guest NAME`, port 25 `220 NAME ESMTP
 * vmhost-guest`, HTTP on 80 (`GET /` → `vmhost-guest <mac>`; `/cgi-bin/disk` the first 64 bytes of
 * /dev/vda; `/cgi-bin/write?TEXT` writes TEXT there; `/cgi-bin/fetch?URL` what the guest gets
 * from URL; `/cgi-bin/lookup?-type=AAAA&NAME&SERVER` busybox nslookup's answer, the words
 * between `&` its arguments), printing {@link TestGuest.markers} on the serial console as it goes.
 * @throws {ValidationError} a bad option, or a cache directory that is a symlink or group/world-writable.
 * @throws {GuestBuildError} `EHOST_GUEST_BUILD`: a program failed (its stderr in the message) or a part is missing.
 */
export async function buildTestGuest(options: TestGuestOptions = {}): Promise<TestGuest> {
  const dir = options.dir ?? defaultGuestDir();
  if (typeof dir !== 'string' || !isAbsolute(dir) || dir.includes('\0')) throw new ValidationError('dir', dir, 'expected an absolute directory path');
  const log = options.log ?? (() => {});
  if (!options.force) {
    const current = readTestGuest(dir);
    if (current) return current;
  }
  const busybox = options.busybox ?? '/bin/busybox';
  const list = await tool(busybox, ['--list'], `${busybox} (Debian package busybox-static)`);
  if (!list.split('\n').includes('udhcpc')) throw new GuestBuildError(`${busybox} has no udhcpc applet: install Debian's busybox-static`);
  const pkg = options.kernelPackage ?? (process.env.VMHOST_GUEST_KERNEL || (await kernelPackage()));
  if (!/^linux-image-[\w.+-]+$/.test(pkg)) throw new ValidationError('kernelPackage', pkg, 'expected a Debian kernel package name (linux-image-...)');

  mkdirSync(dir, { recursive: true, mode: 0o755 });
  checkDir(dir);
  const work = mkdtempSync(join(dir, '.build-'));
  try {
    log(`downloading ${pkg}`);
    try {
      await tool('apt-get', ['download', '-q', pkg], 'apt-get', work);
    } catch {
      // A stale package list can name a file the mirror no longer has: refresh once and retry.
      await tool('apt-get', ['update', '-qq'], 'apt-get');
      await tool('apt-get', ['download', '-q', pkg], 'apt-get', work);
    }
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new GuestBuildError(`apt-get download ${pkg} left no .deb`);
    const unpacked = join(work, 'pkg');
    await tool('dpkg-deb', ['-x', join(work, deb), unpacked], 'dpkg-deb');
    const kernelVersion = readdirSync(join(unpacked, 'lib/modules'))[0];
    if (!kernelVersion) throw new GuestBuildError(`${pkg} has no lib/modules`);
    const { order, files } = resolveModules(join(unpacked, 'lib/modules', kernelVersion), GUEST_MODULES, log);

    const entries: CpioEntry[] = GUEST_DIRS.map((name) => ({ type: 'dir', name, mode: 0o755 }));
    entries.push({ type: 'file', name: 'bin/busybox', mode: 0o755, data: readFileSync(busybox) });
    for (const m of order) entries.push({ type: 'file', name: `lib/modules/${m}.ko`, mode: 0o644, data: readFileSync(files.get(m)!) });
    entries.push({ type: 'file', name: 'lib/modules/order', mode: 0o644, data: Buffer.from(order.map((m) => `${m}\n`).join('')) });
    for (const [name, text] of Object.entries(GUEST_SCRIPTS)) entries.push({ type: 'file', name, mode: 0o755, data: Buffer.from(text) });
    const helper = await compileTool(work, log);
    if (helper) entries.push({ type: 'file', name: 'bin/vmhost-tool', mode: 0o755, data: helper });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)); // parents before children

    const meta = { stamp: STAMP, package: pkg, kernel: kernelVersion, modules: order, append: GUEST_APPEND, markers: GUEST_MARKERS, tool: helper !== undefined };
    // loaded here: every other command of the CLI would pay for node:zlib at its start
    const { gzipSync } = await import('node:zlib');
    // guest.json last: a build is only current once everything else is in place.
    writeInto(work, dir, 'initrd.img', gzipSync(cpioNewc(entries), { level: 9 }));
    const bzImage = readFileSync(join(unpacked, 'boot', `vmlinuz-${kernelVersion}`));
    writeInto(work, dir, 'vmlinuz', bzImage);
    writeInto(work, dir, 'vmlinux', await extractVmlinux(bzImage));
    writeInto(work, dir, 'guest.json', Buffer.from(`${JSON.stringify(meta)}\n`));
    log(`built ${dir} (kernel ${kernelVersion}; modules ${order.join(' ')})`);
    return {
      dir, kernel: join(dir, 'vmlinuz'), vmlinux: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.img'),
      append: GUEST_APPEND, markers: GUEST_MARKERS, package: pkg, kernelVersion, modules: order, tool: helper !== undefined, built: true,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Compiles the guest's tool (tool.ts) with `cc` in `work`; undefined, with a log line, when there is
 * no C compiler or the builder is not x86-64 (the guest then has no UDP echo and hostile mode sends
 * no router advertisements).
 * @throws {GuestBuildError} when a compiler is there and fails.
 */
async function compileTool(work: string, log: (line: string) => void): Promise<Buffer | undefined> {
  if (process.arch !== 'x64') {
    log(`no vmhost-tool: the builder is ${process.arch}, the guest x86-64`);
    return undefined;
  }
  const src = join(work, 'vmhost-tool.c');
  const out = join(work, 'vmhost-tool');
  writeFileSync(src, TOOL_C, { flag: 'wx', mode: 0o600 });
  try {
    await run('cc', [...TOOL_CFLAGS, '-o', out, src], { cwd: work, encoding: 'utf8' });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') {
      log('no vmhost-tool: no C compiler (cc) here');
      return undefined;
    }
    throw new GuestBuildError(`cc failed compiling vmhost-tool: ${String((err as { stderr?: string }).stderr ?? err).trim()}`, { cause: err });
  }
  return readFileSync(out);
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * The uncompressed kernel inside a bzImage: its xz payload (Debian builds with CONFIG_KERNEL_XZ),
 * found by its magic as the kernel's scripts/extract-vmlinux does; the first offset that
 * decompresses (`xz -dc`, argument array) to an ELF wins.
 */
async function extractVmlinux(bzImage: Buffer): Promise<Buffer> {
  for (let off = bzImage.indexOf(XZ_MAGIC); off >= 0; off = bzImage.indexOf(XZ_MAGIC, off + 1)) {
    // xz exits non-zero on the bzImage's trailing bytes after the stream: the output still counts.
    const out = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn('xz', ['-dcq'], { stdio: ['pipe', 'pipe', 'ignore'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.on('error', (err) => reject(new GuestBuildError(`xz (Debian package xz-utils) could not run: ${err.message}`)));
      child.on('close', () => resolve(Buffer.concat(chunks)));
      child.stdin.on('error', () => undefined); // xz may stop reading at the end of its stream
      child.stdin.end(bzImage.subarray(off));
    });
    if (out.length > 0 && out.subarray(0, 4).equals(ELF_MAGIC)) return out;
  }
  throw new GuestBuildError('cannot extract vmlinux from the kernel image (no xz payload that decompresses to an ELF)');
}

/** Runs a program (argument array, no shell); its stdout, or GuestBuildError with its stderr. */
async function tool(file: string, args: string[], what: string, cwd?: string): Promise<string> {
  try {
    const r = await run(file, args, { cwd, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return r.stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string };
    const why = e.code === 'ENOENT' ? 'not installed' : (e.stderr ?? '').trim() || String(err);
    throw new GuestBuildError(`${[file, ...args].join(' ')} failed (${what}): ${why}`, { cause: err });
  }
}

/** What `linux-image-amd64` depends on (`linux-image-6.1.0-NN-amd64`), refreshing the package lists once if needed. */
async function kernelPackage(): Promise<string> {
  const find = async (): Promise<string | undefined> => {
    const out = await tool('apt-cache', ['depends', 'linux-image-amd64'], 'apt-cache').catch(() => '');
    return /Depends: (linux-image-\d[\w.+-]*)/.exec(out)?.[1];
  };
  let pkg = await find();
  if (!pkg) {
    await tool('apt-get', ['update', '-qq'], 'apt-get');
    pkg = await find();
  }
  if (!pkg) throw new GuestBuildError('cannot find the kernel package behind linux-image-amd64 (apt-cache depends linux-image-amd64)');
  return pkg;
}

/** The modules with their dependencies (from each module's `depends=` field), dependencies first. */
function resolveModules(moddir: string, wanted: readonly string[], log: (l: string) => void): { order: string[]; files: Map<string, string> } {
  const index = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ko') && !index.has(e.name.slice(0, -3))) index.set(e.name.slice(0, -3), join(d, e.name));
    }
  };
  walk(moddir);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (m: string): void => {
    if (seen.has(m)) return;
    seen.add(m);
    const f = index.get(m);
    if (!f) {
      log(`module ${m} is not a file of the kernel package (built in?)`);
      return;
    }
    const info = readFileSync(f).toString('latin1').split('\0').find((s) => s.startsWith('depends='));
    for (const d of (info?.slice('depends='.length) ?? '').split(',').filter(Boolean)) visit(d);
    order.push(m);
  };
  for (const m of wanted) visit(m);
  return { order, files: index };
}

/** Refuses a cache directory that is a symlink, not ours, or group/world-writable. */
function checkDir(dir: string): void {
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new ValidationError('dir', dir, 'the guest directory must be a real directory (not a symlink)');
  if ((st.mode & 0o022) !== 0) throw new ValidationError('dir', dir, `the guest directory is group/world-writable (mode ${(st.mode & 0o777).toString(8)})`);
  if (process.getuid && st.uid !== process.getuid()) throw new ValidationError('dir', dir, `the guest directory belongs to uid ${st.uid}, not to this user`);
}

/** Writes `data` to a new file in `work` (O_EXCL|O_NOFOLLOW, fsynced), then renames it to `dir/name` (a symlink there is replaced, not followed). */
function writeInto(work: string, dir: string, name: string, data: Buffer): void {
  const tmp = join(work, `${name}.new`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
}
