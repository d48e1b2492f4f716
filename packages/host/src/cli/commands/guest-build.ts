/**
 * `vmhost guest build`: builds the test guest of the demo (and of your own tests) into the cache.
 * @module
 */
import { resolve } from 'node:path';
import type { PlainCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** `vmhost guest build`. */
export const guestBuildCommand: PlainCommand = {
  name: 'guest build',
  usage: 'guest build [--dir DIR] [--force]',
  summary: 'Build the tiny test guest that the demo boots',
  options: { dir: { type: 'string' }, force: { type: 'boolean' } },
  args: [],
  hostOptions: false,
  file: 'none',
  help: `Builds the test guest (Debian's kernel and a busybox initramfs, about 10 MB) from Debian
packages: apt-get download and dpkg-deb, nothing installed on the host. Does nothing when the
directory already holds a current build. Prints the directory (--json: what was built).
Needs apt-get, dpkg-deb and Debian's busybox-static.

Options:
  --dir DIR         Where to put it (default $XDG_CACHE_HOME/vmhost/guest, else ~/.cache/vmhost/guest)
  --force           Build again even when a current build is there

Examples:
  sudo vmhost guest build
  vmhost guest build --dir /srv/vmhost/guest --json`,
  async run(ctx, { values }) {
    const dir = typeof values.dir === 'string' ? resolve(values.dir) : undefined;
    const guest = await ctx.deps.buildGuest({ ...(dir === undefined ? {} : { dir }), force: values.force === true, log: (l) => ctx.io.err(l) });
    if (ctx.json) ctx.io.out(JSON.stringify(guest, null, 2));
    else ctx.io.out(guest.dir);
    return EXIT.ok;
  },
};
