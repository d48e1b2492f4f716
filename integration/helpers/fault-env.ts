// The fault suite's environments: lab namespaces with a host file and state directory, their
// snapshots (before anything, and what a clean apply makes), a pool of them for concurrent
// subtests, and the checks every fault ends with: `status` agrees with the oracle, the next apply
// makes the host exactly as a clean apply does, and down leaves the namespace exactly as before.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allPids, cmdline, netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { apply, down, parseHostFile, plan, status, type HostOptions, type ResolvedHost } from '@vmhost/host';
import { appliedView, hostSnapshot, processNames, type HostSnapshot } from './host-snapshot.js';
import { ipJson } from './ns.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GUEST = join(ROOT, '.cache', 'guest');

/** A host file: routed IPv6 with RA, dnsmasq, a veth on the bridge, the VMs `vms` (test guest). */
export function hostText(name: string, autostart: boolean, vms: string[]): string {
  const vm = (v: string, i: number): string => `
  - name: ${v}
    ipv4: 192.168.0.${100 + i}
    ipv6: "2001:db8:8:5688::${100 + i}"
    memoryMiB: 128
    kernel: ${join(GUEST, 'vmlinuz')}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet"
    autostart: ${autostart}
    forwards: [{ port: ${1234 + i}, toPort: 22 }]`;
  return `name: ${name}
uplink: eth0
bridge: { name: br0, mac: "de:ad:be:ef:24:31", veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], leaseTime: 72h, domain: lan }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed, acceptRa: true }
vms:${vms.map(vm).join('')}
`;
}

/** One namespace to break things in, with its host file, state directory and snapshots. */
export interface Env {
  lab: Lab;
  ns: string;
  file: string;
  host: ResolvedHost;
  opts: HostOptions & { stateDir: string };
  /** The CLI's global options for this env. */
  g: string[];
  baseline: HostSnapshot;
  /** What a clean apply makes (processes by name, MACs left out). */
  applied: ReturnType<typeof appliedView>;
}

let envs = 0;
let dir: string | undefined;

/** The directory of the host files (removed at exit). */
function filesDir(): string {
  if (dir === undefined) {
    const d = mkdtempSync(join(tmpdir(), 'vmhost-faults-'));
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
    dir = d;
  }
  return dir;
}

/** Waits until every autostarted VM's guest says it is ready on its console (so that it handles the ACPI power button). */
export async function guestsReady(e: Pick<Env, 'host' | 'opts'>): Promise<void> {
  for (const vm of e.host.vms.filter((v) => v.autostart)) {
    const log = join(e.opts.stateDir, 'vms', vm.name, 'console.log');
    const deadline = performance.now() + 90_000;
    const ready = (): boolean => {
      try {
        return readFileSync(log, 'utf8').includes('VMHOST-GUEST: ready');
      } catch {
        return false;
      }
    };
    // a condition, polled (the guest gives no other signal)
    while (!ready()) {
      if (performance.now() > deadline) throw new Error(`VM ${vm.name}: not ready after 90 s (${log})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function makeEnv(text: (name: string) => string): Promise<Env> {
  const lab = await Lab.create({
    prefix: 'vmhl-fault-',
    namespaces: { wan: {}, host: {} },
    links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24', '2001:db8:8:5688::2/64'] } }],
  });
  const ns = lab.ns('host');
  const name = `fault${++envs}`;
  const file = join(filesDir(), `${name}.yaml`);
  writeFileSync(file, text(name));
  const host = parseHostFile(text(name), { baseDir: ROOT });
  const opts = { netns: ns, stateDir: join('/run/vmhost-ftest', ns) };
  const baseline = await hostSnapshot(ns);
  await apply(host, opts);
  const applied = appliedView(await hostSnapshot(ns, { macs: false }));
  await guestsReady({ host, opts });
  await down(host, opts);
  assert.deepEqual(await hostSnapshot(ns), baseline, 'a clean apply and down leave the namespace as it was');
  return { lab, ns, file, host, opts, g: ['--netns', ns, '--state-dir', opts.stateDir], baseline, applied };
}

/** Closes an env's lab (what runs in it is killed) and removes its state directory, which records nothing real any more. */
async function closeEnv(e: Env): Promise<void> {
  await e.lab.close().catch(() => undefined);
  rmSync(e.opts.stateDir, { recursive: true, force: true });
}

/** Envs for concurrent subtests; a failed subtest's env is replaced (it may be dirty). */
export class Pool {
  private free: Env[] = [];
  private waiting: Array<(e: Env) => void> = [];
  private all: Env[] = [];
  constructor(private readonly text: (name: string) => string) {}
  async fill(n: number): Promise<void> {
    for (const e of await Promise.all(Array.from({ length: n }, () => makeEnv(this.text)))) {
      this.all.push(e);
      this.release(e);
    }
  }
  acquire(): Promise<Env> {
    const e = this.free.pop();
    return e ? Promise.resolve(e) : new Promise((r) => this.waiting.push(r));
  }
  release(e: Env): void {
    const w = this.waiting.shift();
    if (w) w(e);
    else this.free.push(e);
  }
  async replace(e: Env): Promise<void> {
    await closeEnv(e);
    this.all = this.all.filter((x) => x !== e);
    const fresh = await makeEnv(this.text);
    this.all.push(fresh);
    this.release(fresh);
  }
  async close(): Promise<void> {
    await Promise.all(this.all.map(closeEnv));
  }
  /** Runs `fn` with an env of the pool. */
  async with(fn: (e: Env) => Promise<void>): Promise<void> {
    const e = await this.acquire();
    try {
      await fn(e);
    } catch (err) {
      await this.replace(e);
      throw err;
    }
    this.release(e);
  }
}

/** The QEMU processes of the state directory `stateDir` (found in /proc by their command line). */
export function qemusOf(stateDir: string): number[] {
  return allPids().filter((p) => {
    const argv = cmdline(p);
    return !!argv?.[0]?.includes('qemu-system-') && argv.some((a) => a.includes(`${stateDir}/vms/`));
  });
}

/** `status` agrees with the oracle: the bridge, dnsmasq and each VM as the namespace shows them. */
export async function assertStatusTruthful(e: Env, what: string): Promise<Awaited<ReturnType<typeof status>>> {
  const st = await status(e.host, e.opts);
  const names = processNames((await netns.pids(e.ns)).filter((p) => p !== process.pid));
  const links = await ipJson<Array<{ ifname: string }>>(e.ns, ['link', 'show']);
  assert.equal(st.bridge.exists, links.some((l) => l.ifname === 'br0'), `${what}: status.bridge.exists`);
  assert.equal(st.dnsmasq?.running, names.includes('dnsmasq'), `${what}: status.dnsmasq.running (${names.join(' ')})`);
  const qemus = qemusOf(e.opts.stateDir);
  for (const vm of st.vms) {
    const live = qemus.filter((p) => cmdline(p)!.some((a) => a.includes(`/vms/${vm.name}/`)));
    assert.equal(vm.running, live.length > 0, `${what}: status of VM ${vm.name} (QEMU pids ${live.join(' ') || 'none'})`);
    if (vm.running) assert.equal(vm.pid, live[0], `${what}: the pid status shows`);
  }
  return st;
}

/** The next apply works and makes what a clean apply makes; down then leaves the namespace as before. */
export async function assertRecovers(e: Env, what: string, notices: string[] = []): Promise<void> {
  await apply(e.host, { ...e.opts, onProgress: (ev) => void (ev.type === 'notice' && notices.push(ev.message)) });
  assert.deepEqual((await plan(e.host, e.opts)).steps, [], `${what}: plan after the next apply`);
  assert.deepEqual(appliedView(await hostSnapshot(e.ns, { macs: false })), e.applied, `${what}: the next apply makes the host as a clean apply does`);
  assert.equal(qemusOf(e.opts.stateDir).length, e.host.vms.filter((v) => v.autostart).length, `${what}: one QEMU per autostarted VM`);
  await guestsReady(e);
  await down(e.host, e.opts);
  assert.deepEqual(await hostSnapshot(e.ns), e.baseline, `${what}: down leaves the namespace as before`);
  assert.equal(existsSync(join(e.opts.stateDir, 'state.json')), false, `${what}: no state file after down`);
  assert.deepEqual(qemusOf(e.opts.stateDir), [], `${what}: no QEMU left`);
}

