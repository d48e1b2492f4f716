/**
 * The user the VMs' QEMU runs as (`qemu.user` of the host file, docs/kvm-unprivileged.md):
 * `auto` chooses a dedicated uid/gid per host from systemd's dynamic range 61184-65519, one that
 * neither /etc/passwd nor /etc/group uses (nor a systemd dynamic user holds), starting at a point
 * of the range given by the host's name and going up (wrapping), so that one host gets the same
 * ids on every run while the files stay as they are. uid and gid are the same number. `root`
 * keeps root; a user name is looked up in /etc/passwd; `UID:GID` is taken as it is. Files are read
 * as data; nothing is spawned.
 * @module
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { ValidationError } from '@vmhost/net';
import type { QemuUser, ResolvedHost } from '../types.js';

/** The range `auto` takes ids from: systemd's dynamic users (DynamicUser=), 61184-65519. */
export const QEMU_ID_RANGE: readonly [number, number] = [61184, 65519];

/** Ids QEMU runs as. */
export interface QemuIds {
  uid: number;
  gid: number;
}

/** The numbers of field `index` (2 for the uid of passwd, the gid of group) of a passwd or group file's text. */
export function usedIds(text: string, index = 2): Set<number> {
  const out = new Set<number>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[index] ?? '')) continue;
    out.add(Number(f[index]));
  }
  return out;
}

/**
 * The `auto` id of the host `hostName`: the first number from a start point given by the
 * sha-256 of the name, going up through {@link QEMU_ID_RANGE} (wrapping), that no set of `taken`
 * holds (the uids of /etc/passwd, the gids of /etc/group, systemd's dynamic users).
 * @throws {ValidationError} `qemu.user` when every number of the range is taken.
 */
export function autoQemuId(hostName: string, taken: ReadonlyArray<ReadonlySet<number>>): number {
  const [first, last] = QEMU_ID_RANGE;
  const size = last - first + 1;
  const start = createHash('sha256').update(`vmhost-qemu:${hostName}`).digest().readUInt32BE(0) % size;
  for (let k = 0; k < size; k++) {
    const id = first + ((start + k) % size);
    if (!taken.some((s) => s.has(id))) return id;
  }
  throw new ValidationError('qemu.user', 'auto', `every id of ${first}-${last} is used by /etc/passwd, /etc/group or a systemd dynamic user: give qemu.user a user or UID:GID`);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Where {@link qemuIds} reads the users and groups of the machine. */
export interface IdFiles {
  /** Default /etc/passwd. */
  passwd?: string;
  /** Default /etc/group. */
  group?: string;
  /** systemd's dynamic user locks (one entry per uid held). Default /run/systemd/dynamic-uid. */
  dynamicUids?: string;
}

/**
 * The ids QEMU runs as for `user` of host `hostName`, or undefined for root.
 * @throws {ValidationError} `qemu.user` for a user name /etc/passwd does not have or whose uid is 0.
 */
export function qemuIds(user: QemuUser, hostName: string, files: IdFiles = {}): QemuIds | undefined {
  if (user === 'root') return undefined;
  const passwd = files.passwd ?? '/etc/passwd';
  if (user === 'auto') {
    let dynamic: Set<number> = new Set();
    try {
      dynamic = new Set(readdirSync(files.dynamicUids ?? '/run/systemd/dynamic-uid').filter((n) => /^\d+$/.test(n)).map(Number));
    } catch {
      /* no systemd dynamic users */
    }
    const id = autoQemuId(hostName, [usedIds(readText(passwd)), usedIds(readText(files.group ?? '/etc/group')), dynamic]);
    return { uid: id, gid: id };
  }
  if ('uid' in user) {
    if (user.uid === 0) throw new ValidationError('qemu.user', `${user.uid}:${user.gid}`, 'uid 0 is root: write root');
    return { uid: user.uid, gid: user.gid };
  }
  for (const line of readText(passwd).split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || f[0] !== user.user || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    if (Number(f[2]) === 0) throw new ValidationError('qemu.user', user.user, 'has uid 0: QEMU would keep root (write root)');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new ValidationError('qemu.user', user.user, `no such user in ${passwd} (give UID:GID for users from elsewhere)`);
}

/** The ids the VMs of `host` run as (undefined: root). */
export function hostQemuIds(host: ResolvedHost): QemuIds | undefined {
  return qemuIds(host.qemu?.user ?? 'auto', host.name);
}
