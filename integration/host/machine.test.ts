// A VM's QEMU machine and sandbox from the host file, through the real `vmhost` CLI: a microvm
// test guest booted from its PVH vmlinux and a q35 one, both sandboxed by default ('auto'), one with
// `sandbox: "off"`. Checked with independent oracles: QEMU's own command line and seccomp status in
// /proc, and the guests' services reached from an `internet` namespace through the forwards; down
// leaves the namespace as before (ip -j, iptables-save, /proc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { ROOT, vmhost, type CliResult } from '../helpers/cli.js';
import { hostSnapshot } from '../helpers/host-snapshot.js';
import { cleanUp } from '../helpers/cleanup.js';

const GUEST = join(ROOT, '.cache', 'guest');
const PUBLIC4 = '203.0.113.2';

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function vm(name: string, n: number, kernel: string, extra: string): string {
  return `  - name: ${name}
    ipv4: 192.168.7.${n}
    memoryMiB: 128
    kernel: ${join(GUEST, kernel)}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=${name}"
    forwards: [{ port: ${2200 + n}, toPort: 22 }]
${extra}`;
}

/** QEMU's pid of VM `name` (its pidfile under the state directory). */
function qemuPid(stateDir: string, name: string): number {
  return Number(readFileSync(join(stateDir, 'vms', name, 'qemu.pid'), 'utf8').trim());
}

test('machine: microvm boots the PVH vmlinux with virtio-mmio devices; sandbox auto puts QEMU under seccomp, off leaves it out; both reachable through their forwards', async (t) => {
  const lab = await Lab.create({
    prefix: 'vmhl-mach-',
    namespaces: { internet: {}, host: {} },
    links: [{ a: { ns: 'internet', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: [`${PUBLIC4}/24`] } }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-machine-'));
  const { downFirst } = cleanUp(t, lab, dir);
  const ns = lab.ns('host');
  const baseline = await hostSnapshot(ns);
  const file = join(dir, 'host.yaml');
  writeFileSync(
    file,
    `name: mach
uplink: eth0
bridge: { name: brm, ipv4: 192.168.7.1/24 }
dhcp: { range: [192.168.7.100, 192.168.7.150] }
vms:
${vm('micro', 100, 'vmlinux', '    machine: microvm\n')}${vm('plain', 101, 'vmlinuz', '    sandbox: "off"\n')}`,
  );
  const stateDir = join(dir, 'state');
  const g = ['--netns', ns, '--state-dir', stateDir, '--data-dir', join(dir, 'data')];
  downFirst(() => vmhost([...g, 'down', file]));

  ok(await vmhost([...g, 'apply', file]), 'apply');
  const micro = qemuPid(stateDir, 'micro');
  const plain = qemuPid(stateDir, 'plain');
  const args = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const status = (pid: number, key: string): string | undefined => readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s*(\\S+)`, 'm'))?.[1];
  const m = args(micro);
  assert.match(m[m.indexOf('-machine') + 1] ?? '', /^microvm\b/);
  assert.ok(m.some((a) => a.startsWith('virtio-net-device')), `microvm's NIC is virtio-mmio: ${m.join(' ')}`);
  assert.ok(m.includes('-sandbox'), 'sandbox auto: on where this QEMU has it');
  assert.equal(status(micro, 'Seccomp'), '2', 'QEMU runs under a seccomp filter');
  const p = args(plain);
  assert.match(p[p.indexOf('-machine') + 1] ?? '', /^q35\b/);
  assert.equal(p.includes('-sandbox'), false, 'sandbox off');
  assert.equal(status(plain, 'Seccomp'), '0');

  // both guests serve their ssh-like banner through the host's forwards (polled: the guests boot on TCG)
  const banner = async (port: number): Promise<string> => {
    const r = await netns.run(lab.ns('internet'), '/bin/busybox', ['nc', '-w', '3', PUBLIC4, String(port)], { input: '', timeoutMs: 10_000 });
    return r.stdout.trim();
  };
  for (const [port, name] of [[2300, 'micro'], [2301, 'plain']] as const) {
    const deadline = performance.now() + 180_000;
    let got = '';
    while ((got = await banner(port)) !== `SSH-2.0-vmhost-guest ${name}`) {
      if (performance.now() > deadline) assert.fail(`${name} not reachable on ${PUBLIC4}:${port} after 180 s (last answer ${JSON.stringify(got)})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  ok(await vmhost([...g, 'down', file]), 'down');
  assert.deepEqual(await hostSnapshot(ns), baseline, 'down: the namespace as before');
});
