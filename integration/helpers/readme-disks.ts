// The environment of the host README's `disks` example (packages/host/README.md), shared by the
// README test against the sources and the packaging test against the installed packages: a
// namespace whose uplink is eth0, a host file with the test guest `web` on a qcow2 disk, applied
// and the guest up (so that the example's rollback stops it by ACPI, not after a timeout); the
// example's own apply then has nothing to do. The example uses the default state and data
// directories of its namespace (/run/vmhost/<ns>, /var/lib/vmhost/<ns>): removed afterwards.
import assert from 'node:assert/strict';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Rtnl } from '@vmhost/net';
import { createImage } from '@vmhost/kvm';
import { apply, down, loadHostFile } from '@vmhost/host';
import { guest, waitForConsole } from '../kvm/helpers.js';
import { freshNetns } from './ns.js';

/** Sets up the example's host in `dir`; resolves with its environment variables. */
export async function disksExampleEnv(t: TestContext, dir: string, tag: string): Promise<{ HOST_FILE: string; NETNS: string }> {
  const ns = await freshNetns(t, tag);
  const h = await Rtnl.open({ netns: ns });
  try {
    await h.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth1' } });
  } finally {
    h.close();
  }
  const g = guest();
  chmodSync(dir, 0o711); // QEMU runs as its own user (qemu.user auto) and reopens its disk by name: it passes through
  const disk = join(dir, `${tag}-web.qcow2`);
  await createImage({ file: disk, format: 'qcow2', sizeBytes: 16 * 1024 * 1024 });
  const file = join(dir, `${tag}-host.yaml`);
  writeFileSync(file, `name: readme
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
vms:
  - name: web
    ipv4: 192.168.0.100
    memoryMiB: 128
    kernel: ${g.vmlinux}
    initrd: ${g.initrd}
    append: "${g.append}"
    disk: ${disk}
`);
  const host = await loadHostFile(file);
  t.after(async () => {
    await down(host, { netns: ns, deleteDisks: true }).catch(() => undefined);
    // the namespace's directories under the default roots (the roots stay: other tests use them)
    for (const root of ['/var/lib/vmhost', '/run/vmhost']) rmSync(join(root, ns), { recursive: true, force: true });
  });
  await apply(host, { netns: ns });
  await waitForConsole(join('/run/vmhost', ns, 'readme', 'vms', 'web', 'console.log'), g.markers.ready, 120_000);
  return { HOST_FILE: file, NETNS: ns };
}

/** What the example prints. */
export function checkDisksExample(stdout: string): void {
  assert.equal(stdout, 'before-upgrade: froze 1 disk(s)\n0 snapshot(s), 1 image(s) in the chain\n');
}
