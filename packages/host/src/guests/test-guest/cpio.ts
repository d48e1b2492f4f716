/**
 * A pure writer of the cpio "newc" format (the Linux initramfs format): directories and regular
 * files, owned by root, with a fixed mtime, so that the same tree gives the same bytes.
 * @module
 */

/** One entry of the archive: a directory, or a file with its contents. */
export type CpioEntry =
  | { type: 'dir'; name: string; mode: number }
  | { type: 'file'; name: string; mode: number; data: Buffer };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, nlink: number, size: number, name: string): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameBytes.length, 0];
  const head = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return Buffer.concat([head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length))]);
}

/**
 * The newc archive of `entries`, in the order given (parents before their children), ended by
 * the `TRAILER!!!` entry. Names are relative (`bin/busybox`), without a leading `./` or `/`.
 */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    if (e.name === '' || e.name.startsWith('/') || e.name.includes('\0')) throw new TypeError(`cpio: bad entry name ${JSON.stringify(e.name)}`);
    if (e.type === 'dir') {
      parts.push(header(i + 1, S_IFDIR | (e.mode & 0o7777), 2, 0, e.name));
    } else {
      parts.push(header(i + 1, S_IFREG | (e.mode & 0o7777), 1, e.data.length, e.name), e.data, Buffer.alloc(pad4(e.data.length)));
    }
  });
  parts.push(header(0, 0, 1, 0, 'TRAILER!!!'));
  return Buffer.concat(parts);
}
