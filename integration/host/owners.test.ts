// Several host files in one namespace (issue 17), through the real `vmhost` CLI, checked with
// independent oracles (`ip -j`, iptables-save, ip6tables-save, /proc, real connections from an
// `internet` namespace):
// - two hosts `ha` and `hb` with a VM of the same name on their own bridges, subnets and IPv6
//   prefixes, real test guests: each reachable over IPv4 and IPv6; down of one leaves the other's
//   traffic, links, chains, sysctls, dnsmasq and VM as they were; down of the second leaves the
//   namespace exactly as before either;
// - a third host file naming the first one's bridge is refused (exit 1, the owner named);
// - a hand-made bridge: refused ("not created by vmhost"), adopted with `bridge.adopt: true`,
//   left in place by down;
// - a holder of the shared sysctls killed in its down, or gone with its state, never strands the
//   other host.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import type { HostStatus } from '@vmhost/host';
import { ROOT, vmhost, type CliResult } from '../helpers/cli.js';
import { hostSnapshot, type HostSnapshot } from '../helpers/host-snapshot.js';
import { ipJson, sh } from '../helpers/ns.js';
import { cleanUp } from '../helpers/cleanup.js';

const GUEST = join(ROOT, '.cache', 'guest');
const PUBLIC4 = '203.0.113.2';

/** A host file: its own bridge, subnet (192.168.<n>.0/24) and IPv6 prefix (2001:db8:<n>::/64, routed, accept_ra on the shared uplink), one VM `vma`. */
function hostFile(name: string, n: number, o: { bridge?: string; port?: number; boot?: boolean; adopt?: boolean; bridgeExtra?: string } = {}): string {
  const bridge = o.bridge ?? `br${name.slice(-1)}`;
  const boot = o.boot ?? true;
  return `name: ${name}
uplink: eth0
bridge: { name: ${bridge}, ipv4: 192.168.${n}.1/24, ipv6: "2001:db8:${n}::1/64"${o.adopt ? ', adopt: true' : ''}${o.bridgeExtra ?? ''} }
dhcp: { range: [192.168.${n}.100, 192.168.${n}.150] }
ipv6: { prefix: "2001:db8:${n}::/64", mode: routed, acceptRa: true }
vms:
  - name: vma
    ipv4: 192.168.${n}.100
    ipv6: "2001:db8:${n}::100"
    memoryMiB: 128
    kernel: ${join(GUEST, boot ? 'vmlinux' : 'vmlinuz')}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=${name}-vma vmhost.ip6=2001:db8:${n}::100/64 vmhost.gw6=2001:db8:${n}::1"
    autostart: ${boot}
    forwards: [{ port: ${o.port ?? 2200 + n}, toPort: 22 }]
`;
}

interface World {
  lab: Lab;
  ns: string;
  inet: string;
  dir: string;
  baseline: HostSnapshot;
  /** Writes the host file `name` and returns the CLI's arguments before the command, and the file. */
  file(name: string, text: string): { g: string[]; file: string; stateDir: string };
}

/** A lab: `internet` (a provider routing the hosts' prefixes on-link to the host, a client address) and `host` with the uplink eth0. */
async function world(t: TestContext, tag: string): Promise<World> {
  const lab = await Lab.create({
    prefix: `vmhl-own${tag}-`,
    namespaces: { internet: {}, host: {} },
    links: [{ a: { ns: 'internet', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24', 'fe80::1/64'], b: [`${PUBLIC4}/24`] } }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-owners-'));
  cleanUp(t, lab, dir);
  const ih = await lab.rtnl('internet');
  await ih.addresses.add('lo', '2001:db8:ffff::10/128', { nodad: true });
  for (const n of [10, 20, 30]) await ih.routes.add({ to: `2001:db8:${n}::/64`, dev: 'up0' });
  const hh = await lab.rtnl('host');
  await hh.routes.add({ to: 'default', family: 6, via: 'fe80::1', dev: 'eth0' });
  const ns = lab.ns('host');
  // eth0's link-local address is tentative (DAD) for a second or two, and its local route appears
  // only after: the baseline waits for it, or a later snapshot differs by that route
  const tentative = async (): Promise<number> => (await ipJson<Array<{ addr_info?: Array<{ local?: string }> }>>(ns, ['-6', 'addr', 'show', 'dev', 'eth0', 'tentative'])).flatMap((a) => a.addr_info ?? []).filter((i) => i.local !== undefined).length;
  for (let i = 0; i < 200 && (await tentative()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await tentative(), 0, "eth0's addresses left DAD");
  return {
    lab,
    ns,
    inet: lab.ns('internet'),
    dir,
    baseline: await hostSnapshot(ns),
    file(name, text) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, text);
      const stateDir = join(dir, `state-${name}`);
      return { g: ['--netns', ns, '--state-dir', stateDir], file, stateDir };
    },
  };
}

/** What the server at `address`:`port` says first, from the internet namespace (busybox nc); '' when nothing answers. */
async function banner(w: World, address: string, port: number): Promise<string> {
  const r = await netns.run(w.inet, '/bin/busybox', ['nc', '-w', '5', address, String(port)], { input: '', timeoutMs: 15_000 });
  return r.stdout.trim();
}

/** Waits until the guest of `stateDir` has its IPv4 lease and says it is ready (its console). */
async function guestReady(stateDir: string, ipv4: string): Promise<void> {
  const log = join(stateDir, 'vms', 'vma', 'console.log');
  const deadline = performance.now() + 120_000;
  const ready = (): boolean => {
    try {
      const text = readFileSync(log, 'utf8');
      return text.includes(`VMHOST-GUEST: ip ${ipv4}`) && text.includes('VMHOST-GUEST: ready');
    } catch {
      return false;
    }
  };
  // a condition, polled (the guest gives no other signal)
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`guest of ${stateDir} not ready with ${ipv4} after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function statusOf(g: string[], file: string): Promise<HostStatus> {
  return JSON.parse(ok(await vmhost([...g, 'status', file, '--json']), 'status').stdout) as HostStatus;
}

/** Everything of host `owner` in the namespace: its links (with marks), addresses, routes, proxy neighbours, chains, and the shared sysctls. */
async function ownerView(ns: string, owner: string, bridge: string, tap: string, n: number): Promise<Record<string, unknown>> {
  const s = await hostSnapshot(ns);
  const ours = (l: string): boolean => l.startsWith(`${bridge} `) || l.startsWith(`${tap} `);
  const chains = (text: string): string[] => text.split('\n').filter((l) => l.includes(`VMHOST-${owner}-`) || l.includes(`"vmhost:${owner}"`));
  return {
    links: s.links.filter(ours),
    addrs: s.addrs.filter((a) => a.startsWith(`${bridge} `) && !a.includes(' fe80:')),
    r4: s.r4.filter((r) => r.includes(` ${bridge} `)),
    r6: s.r6.filter((r) => r.startsWith(`2001:db8:${n}::`)),
    proxy: s.proxy.filter((p) => p.startsWith(`2001:db8:${n}::`)),
    ipv4: chains(s.ipv4),
    ipv6: chains(s.ipv6),
    sysctls: s.sysctls,
  };
}

test('two host files with the same VM names in one namespace: each its own TAP, bridge and dnsmasq, each reachable; down of one leaves the other working and untouched; down of both leaves the namespace as before; a third naming the first one\'s bridge is refused', async (t) => {
  const w = await world(t, 'two');
  const a = w.file('ha', hostFile('ha', 10));
  const b = w.file('hb', hostFile('hb', 20));

  ok(await vmhost([...a.g, 'apply', a.file]), 'apply ha');
  const pb = await vmhost([...b.g, 'plan', b.file]);
  ok(pb, 'plan hb');
  assert.doesNotMatch(pb.stdout, /doe-vma|bra\b|conflict/, 'hb plans nothing of ha\'s');
  ok(await vmhost([...b.g, 'apply', b.file]), 'apply hb');
  // neither host's plan sees a change (hb's apply did not take ha's sysctls, TAP or bridge)
  for (const [x, name] of [[a, 'ha'], [b, 'hb']] as const) assert.match(ok(await vmhost([...x.g, 'plan', x.file, '--detailed-exitcode']), `plan ${name}`).stdout, /No changes/);

  // each VM `vma` has its own TAP (the owner's tag), on its own bridge, marked with its owner
  const links = await ipJson<Array<{ ifname: string; master?: string; ifalias?: string }>>(w.ns, ['link', 'show']);
  const link = (n: string): { master?: string; ifalias?: string } | undefined => links.find((l) => l.ifname === n);
  assert.deepEqual([link('doe-vma')?.master, link('doe-vma')?.ifalias], ['bra', 'vmhost:ha']);
  assert.deepEqual([link('aip-vma')?.master, link('aip-vma')?.ifalias], ['brb', 'vmhost:hb']);
  assert.deepEqual([link('bra')?.ifalias, link('brb')?.ifalias], ['vmhost:ha', 'vmhost:hb']);

  await Promise.all([guestReady(a.stateDir, '192.168.10.100'), guestReady(b.stateDir, '192.168.20.100')]);
  // real connections from the internet: IPv4 port forwards and each VM's own IPv6
  assert.equal(await banner(w, PUBLIC4, 2210), 'SSH-2.0-vmhost-guest ha-vma');
  assert.equal(await banner(w, PUBLIC4, 2220), 'SSH-2.0-vmhost-guest hb-vma');
  assert.equal(await banner(w, '2001:db8:10::100', 22), 'SSH-2.0-vmhost-guest ha-vma');
  assert.equal(await banner(w, '2001:db8:20::100', 22), 'SSH-2.0-vmhost-guest hb-vma');

  // dnsmasq per owner: one each, on its own bridge, with its own lease file (the same MAC, two leases)
  const [sa, sb] = [await statusOf(a.g, a.file), await statusOf(b.g, b.file)];
  assert.deepEqual(sa.leases.map((l) => `${l.mac} ${l.ipv4}`), [`${sa.vms[0]!.mac} 192.168.10.100`]);
  assert.deepEqual(sb.leases.map((l) => `${l.mac} ${l.ipv4}`), [`${sa.vms[0]!.mac} 192.168.20.100`]);
  for (const [s, dir, bridge] of [[sa, a.stateDir, 'bra'], [sb, b.stateDir, 'brb']] as const) {
    const conf = readFileSync(join(dir, 'dnsmasq', 'dnsmasq.conf'), 'utf8');
    assert.match(conf, new RegExp(`^interface=${bridge}$`, 'm'));
    assert.match(conf, new RegExp(`^dhcp-leasefile=${join(dir, 'dnsmasq', 'dnsmasq.leases')}$`, 'm'));
    assert.ok(s.dnsmasq?.pid !== undefined && readFileSync(`/proc/${s.dnsmasq.pid}/cmdline`, 'utf8').includes(join(dir, 'dnsmasq', 'dnsmasq.conf')));
  }
  // the shared sysctls are held by both; status says so
  assert.deepEqual(sa.shared?.map((x) => `${x.key}=${x.value} ${x.heldWith.join(',')}`).sort(), [
    'net.ipv4.ip_forward=1 hb',
    'net.ipv6.conf.all.forwarding=1 hb',
    'net.ipv6.conf.eth0.accept_ra=2 hb',
    'net.ipv6.conf.eth0.proxy_ndp=1 hb',
  ]);
  assert.equal(sa.conflicts, undefined);

  // a third host file naming ha's bridge: plan shows the conflict, apply refuses (exit 1, ha named), nothing changes
  const c = w.file('hc', hostFile('hc', 30, { bridge: 'bra' }));
  const before = await hostSnapshot(w.ns);
  const pc = await vmhost([...c.g, 'plan', c.file]);
  assert.equal(pc.code, 1, pc.stdout + pc.stderr);
  assert.match(pc.stdout, /^! bridge bra belongs to host ha \(its owner mark: ifalias "vmhost:ha"\)$/m);
  assert.match(pc.stderr, /apply would refuse: \d+ conflicts? \(host ha\)/);
  const ac = await vmhost([...c.g, 'apply', c.file]);
  assert.equal(ac.code, 1, ac.stderr);
  assert.match(ac.stderr, /EHOST_OWNER: .*bridge bra belongs to host ha/);
  const sc = await statusOf(c.g, c.file);
  assert.ok(sc.conflicts?.some((x) => x.id === 'link:bra' && x.owner === 'ha'), JSON.stringify(sc.conflicts));
  assert.deepEqual(await hostSnapshot(w.ns), before, 'the refused apply changed nothing');

  // down of ha: hb's traffic, links, chains, sysctls, dnsmasq and VM as they were
  const hbBefore = await ownerView(w.ns, 'hb', 'brb', 'aip-vma', 20);
  const downA = ok(await vmhost([...a.g, 'down', a.file]), 'down ha');
  assert.match(downA.stderr, /sysctl net\.ipv4\.ip_forward stays 1: host hb holds it too/);
  assert.deepEqual(await ownerView(w.ns, 'hb', 'brb', 'aip-vma', 20), hbBefore, "hb's links, addresses, routes, proxy neighbours, chains and the sysctls are untouched");
  assert.ok(sb.dnsmasq?.pid !== undefined && isAlive(sb.dnsmasq.pid), "hb's dnsmasq still runs");
  assert.ok(sb.vms[0]!.pid !== undefined && isAlive(sb.vms[0]!.pid), "hb's VM still runs");
  const sb2 = await statusOf(b.g, b.file);
  assert.deepEqual([sb2.dnsmasq?.pid, sb2.vms[0]!.pid, sb2.vms[0]!.running], [sb.dnsmasq.pid, sb.vms[0]!.pid, true]);
  assert.equal(await banner(w, PUBLIC4, 2220), 'SSH-2.0-vmhost-guest hb-vma');
  assert.equal(await banner(w, '2001:db8:20::100', 22), 'SSH-2.0-vmhost-guest hb-vma');
  assert.equal(await banner(w, PUBLIC4, 2210), '', "ha's forward is gone");
  assert.ok(!(await ipJson<Array<{ ifname: string }>>(w.ns, ['link', 'show'])).some((l) => ['bra', 'doe-vma'].includes(l.ifname)), "ha's links are gone");
  assert.match(ok(await vmhost([...b.g, 'plan', b.file, '--detailed-exitcode']), 'plan hb').stdout, /No changes/);

  // down of hb: the namespace exactly as before either, no shared record left
  ok(await vmhost([...b.g, 'down', b.file]), 'down hb');
  assert.deepEqual(await hostSnapshot(w.ns), w.baseline, 'the namespace as before both hosts');
  assert.equal(existsSync(join('/run/vmhost', w.ns)), false, 'no shared record left');
});

test('adoption: a hand-made bridge is refused ("not created by vmhost"), adopted with bridge.adopt, never another host\'s, and left in place (as it was) by down', async (t) => {
  const w = await world(t, 'adopt');
  // the bridge (its own MAC, or its ports would give it theirs) and its address, made by hand,
  // down (as /etc/network/interfaces might leave it)
  await sh(w.ns, 'ip', ['link', 'add', 'brh', 'address', '02:00:00:00:10:01', 'type', 'bridge']);
  await sh(w.ns, 'ip', ['addr', 'add', '192.168.10.1/24', 'dev', 'brh']);
  const baseline = await hostSnapshot(w.ns);
  const h = w.file('hh', hostFile('hh', 10, { bridge: 'brh', boot: false }));

  const p = await vmhost([...h.g, 'plan', h.file]);
  assert.equal(p.code, 1, p.stdout);
  assert.match(p.stdout, /^! bridge brh exists and was not created by vmhost \(set bridge\.adopt: true to adopt it\)$/m);
  const refused = await vmhost([...h.g, 'apply', h.file]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /EHOST_OWNER: .*bridge brh exists and was not created by vmhost/);
  assert.deepEqual(await hostSnapshot(w.ns), baseline, 'refused: nothing changed');

  // bridge.mac and bridge.stp are for a bridge vmhost makes: an adopted one keeps its own, and the plan says so
  const adopting = w.file('hh', hostFile('hh', 10, { bridge: 'brh', boot: false, adopt: true, bridgeExtra: ', mac: "02:00:00:00:99:99", stp: true' }));
  const pa = ok(await vmhost([...adopting.g, 'plan', adopting.file]), 'plan with adopt');
  assert.match(pa.stdout, /^= adopt bridge brh \(its own MAC and STP kept\)$/m);
  assert.match(pa.stdout, /^= adopt address 192\.168\.10\.1\/24 on brh$/m);
  assert.match(pa.stdout, /^\+ create address 2001:db8:10::1\/64 on brh$/m);
  ok(await vmhost([...adopting.g, 'apply', adopting.file]), 'apply with adopt');
  const brh = (await ipJson<Array<{ ifname: string; flags: string[]; ifalias?: string }>>(w.ns, ['link', 'show', 'brh']))[0]!;
  assert.ok(brh.flags.includes('UP'), 'the adopted bridge is up');
  assert.equal(brh.ifalias, undefined, 'an adopted bridge carries no mark');
  const kept = (await ipJson<Array<{ address: string; linkinfo: { info_data: { stp_state: number } } }>>(w.ns, ['-d', 'link', 'show', 'brh']))[0]!;
  assert.equal(kept.address, '02:00:00:00:10:01', 'the adopted bridge keeps its own MAC');
  assert.equal(kept.linkinfo.info_data.stp_state, 0, 'the adopted bridge keeps its own STP setting');
  const state = JSON.parse(readFileSync(join(adopting.stateDir, 'state.json'), 'utf8')) as { entries: Array<{ id: string; adopted?: unknown }> };
  assert.deepEqual(state.entries.find((e) => e.id === 'link:brh')?.adopted, { up: false, master: null });
  assert.equal(state.entries.find((e) => e.id === 'address:brh:192.168.10.1/24')?.adopted, true);
  assert.match(ok(await vmhost([...adopting.g, 'plan', adopting.file, '--detailed-exitcode']), 'replan').stdout, /No changes/);

  // another host adopting the same bridge: refused, naming the host that adopted it
  const other = w.file('hz', hostFile('hz', 20, { bridge: 'brh', boot: false, adopt: true, port: 2299 }));
  const r = await vmhost([...other.g, 'apply', other.file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /bridge brh belongs to host hh \(host hh's state file records it as adopted\)/);

  // down: the bridge and its address stay, down again as they were; all vmhost made is gone
  const d = ok(await vmhost([...adopting.g, 'down', adopting.file]), 'down');
  assert.match(d.stderr, /release link brh \(adopted: left in place, down again\)/);
  assert.deepEqual(await hostSnapshot(w.ns), baseline, 'down: the namespace as before apply, the hand-made bridge with it');
});

test('a holder of the shared sysctls killed in its down, or gone with its state, never strands the other host; the last one to leave puts the originals back', async (t) => {
  const w = await world(t, 'hold');
  const a = w.file('ha', hostFile('ha', 10, { boot: false }));
  const b = w.file('hb', hostFile('hb', 20, { boot: false }));
  ok(await vmhost([...a.g, 'apply', a.file]), 'apply ha');
  ok(await vmhost([...b.g, 'apply', b.file]), 'apply hb');
  const applied = (await hostSnapshot(w.ns)).sysctls;
  assert.deepEqual(applied, { 'ipv4/ip_forward': '1', 'ipv6/conf/all/forwarding': '1', 'ipv6/conf/eth0/proxy_ndp': '1', 'ipv6/conf/eth0/accept_ra': '2', 'bridge/bridge-nf-call-ip6tables': '1' });

  // ha killed right after it let go of net.ipv4.ip_forward (its last down step): hb keeps it
  const records = (JSON.parse(readFileSync(join(a.stateDir, 'state.json'), 'utf8')) as { entries: unknown[] }).entries.length;
  const killed = await vmhost([...a.g, 'down', a.file], { VMHOST_TEST: '1', VMHOST_TEST_FAULT: `SIGKILL@down:changed:${records - 1}` });
  assert.equal(killed.signal, 'SIGKILL');
  assert.deepEqual((await hostSnapshot(w.ns)).sysctls, applied, 'hb still has every shared sysctl');
  assert.match(ok(await vmhost([...b.g, 'plan', b.file, '--detailed-exitcode']), 'plan hb').stdout, /No changes/);
  ok(await vmhost([...a.g, 'down', a.file]), 'down ha again');
  assert.deepEqual((await hostSnapshot(w.ns)).sysctls, applied);

  // ha again, then its state is lost (its state directory removed): hb is the last live holder
  ok(await vmhost([...a.g, 'apply', a.file]), 'apply ha again');
  rmSync(a.stateDir, { recursive: true, force: true });
  const db = ok(await vmhost([...b.g, 'down', b.file]), 'down hb');
  assert.match(db.stderr, /host ha \(.*\) has no state file any more/);
  assert.deepEqual((await hostSnapshot(w.ns)).sysctls, w.baseline.sysctls, 'the originals are back');
  // ha's objects are still there (marked); recover finds them, down removes them: all as before
  const rc = ok(await vmhost([...a.g, 'recover', a.file]), 'recover ha');
  assert.match(rc.stdout, /link bra/);
  ok(await vmhost([...a.g, 'down', a.file]), 'down ha after recover');
  assert.deepEqual(await hostSnapshot(w.ns), w.baseline);
});
