// @vmhost/host end to end, inside lab namespaces, checked with independent oracles (`ip -j`,
// iptables-save, /proc, real traffic): a failure injected before each step of apply leaves the host
// exactly as before; re-apply is a no-op; changing one VM's forwards touches only that VM's rules;
// down leaves links, addresses, routes, proxy neighbours, sysctls and iptables-save as before
// apply; and the demo's whole path with two real guests passes every check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '@vmhost/lab';
import { HostApplyError, apply, down, parseHostFile, plan, runDemo, status, vmRunDir, type DemoCheck, type ResolvedHost } from '@vmhost/host';
import { QmpClient, isAlive, runFiles } from '@vmhost/kvm';
import { hostSnapshot as snapshot } from '../helpers/host-snapshot.js';
import { cleanUp } from '../helpers/cleanup.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GUEST = join(ROOT, '.cache', 'guest');

function hostText(autostart: boolean): string {
  const vm = (name: string, mac: string, n: number, forwards: string): string => `
  - name: ${name}
    mac: "${mac}"
    ipv4: 192.168.0.${n}
    ipv6: "2001:db8:8:5688::${n}"
    kernel: ${join(GUEST, 'vmlinuz')}
    initrd: ${join(GUEST, 'initrd.img')}
    autostart: ${autostart}
    forwards: ${forwards}`;
  return `name: itest
uplink: eth0
bridge: { name: br0, mac: "de:ad:be:ef:24:31", veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], leaseTime: 72h, domain: lan }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed, acceptRa: true }
vms:${vm('web', 'de:ad:be:ef:32:10', 100, '[{ port: 1234, toPort: 22 }, { port: 80 }]')}${vm('mail', 'de:ad:be:ef:32:20', 200, '[{ port: 5678, toPort: 22 }, { port: 25 }]')}
`;
}

test('a failure injected before each step of apply leaves the host exactly as before; re-apply is a no-op; one VM\'s forwards change alone; down restores everything', async (t) => {
  const lab = await Lab.create({
    prefix: 'vmhl-host-',
    namespaces: { wan: {}, host: {} },
    links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24'], b: ['203.0.113.2/24', '2001:db8:8:5688::2/64'] } }],
  });
  const ns = lab.ns('host');
  const opts = { netns: ns, stateDir: join('/run/vmhost-itest', ns) };
  cleanUp(t, lab, opts.stateDir);
  const host: ResolvedHost = parseHostFile(hostText(false), { baseDir: ROOT });
  const before = await snapshot(ns);

  const p = await plan(host, opts);
  const ids = p.steps.map((s) => s.id);
  for (const want of ['sysctl:net.ipv4.ip_forward', 'sysctl:net.ipv6.conf.eth0.proxy_ndp', 'link:br0', 'link:veth0', 'link:ufx-web' /* host itest's TAP of VM web */, 'proxyNeighbor:eth0:2001:db8:8:5688::100', 'route:2001:db8:8:5688::200/128', 'firewall', 'dnsmasq']) {
    assert.ok(ids.includes(want), `plan has ${want}: ${ids.join(' ')}`);
  }
  assert.ok(!ids.some((i) => i.startsWith('vm:')), 'autostart false: no VM steps');

  for (let k = 0; k < p.steps.length; k++) {
    await assert.rejects(
      apply(host, { ...opts, beforeStep: (_s, i) => { if (i === k) throw new Error(`injected at ${i}`); } }),
      (e: unknown) => {
        assert.ok(e instanceof HostApplyError, String(e));
        assert.equal(e.step.id, p.steps[k]!.id);
        assert.equal(e.undone.length, k, 'every earlier step undone');
        assert.deepEqual(e.undoErrors, []);
        return true;
      },
    );
    assert.deepEqual(await snapshot(ns), before, `host as before after a failure at step ${k} (${p.steps[k]!.description})`);
  }

  const r = await apply(host, opts);
  assert.equal(r.steps.length, p.steps.length);
  // the oracle sees what apply made
  const after = await snapshot(ns);
  assert.ok((after.links as string[]).some((l) => l.startsWith('veth0 ') && l.includes('PROMISC') && l.includes(' br0 de:ad:be:ef:24:31')), String(after.links));
  assert.ok((after.proxy as string[]).includes('2001:db8:8:5688::100 eth0'));
  assert.ok((after.r6 as string[]).some((l) => l.startsWith('2001:db8:8:5688::200 br0')), String(after.r6));
  assert.deepEqual(after.sysctls, { 'ipv4/ip_forward': '1', 'ipv6/conf/all/forwarding': '1', 'ipv6/conf/eth0/proxy_ndp': '1', 'ipv6/conf/eth0/accept_ra': '2', 'bridge/bridge-nf-call-ip6tables': '1' });
  assert.match(after.ipv4 as string, /-A VMHOST-itest-web-D .*--dport 1234 -j DNAT --to-destination 192\.168\.0\.100:22/);
  assert.equal((after.pids as number[]).length, 1, 'dnsmasq runs');
  const st = await status(host, opts);
  assert.equal(st.dnsmasq?.running, true);
  assert.equal(st.bridge.exists, true);

  assert.deepEqual((await plan(host, opts)).steps, [], 're-plan: nothing');
  assert.equal((await apply(host, opts)).changed, false, 're-apply: nothing');
  assert.deepEqual(await snapshot(ns), after);

  // one VM's forwards change: only the firewall step, and only web's chains change
  const changed: ResolvedHost = { ...host, vms: host.vms.map((v) => (v.name === 'web' ? { ...v, forwards: [...v.forwards, { protocol: 'tcp' as const, port: 8443, toPort: 443 }] } : v)) };
  assert.deepEqual((await plan(changed, opts)).steps.map((s) => s.id), ['firewall']);
  await apply(changed, opts);
  const after2 = await snapshot(ns);
  const diff = (a: string, b: string): string[] => {
    const sa = new Set(a.split('\n'));
    const sb = new Set(b.split('\n'));
    return [...a.split('\n').filter((l) => !sb.has(l)), ...b.split('\n').filter((l) => !sa.has(l))];
  };
  const d4 = diff(after.ipv4 as string, after2.ipv4 as string);
  assert.ok(d4.length > 0);
  for (const l of d4) assert.match(l, /VMHOST-itest-web-|^$/, `only web's rules change: ${l}`);
  const d6 = diff(after.ipv6 as string, after2.ipv6 as string);
  assert.ok(d6.length > 0, 'web\'s IPv6 accept for the new port');
  for (const l of d6) assert.match(l, /^-A VMHOST-itest-web-F .*-d 2001:db8:8:5688::100\/128 /, `IPv6: only web's chain changes: ${l}`);

  const dn = await down(changed, opts);
  assert.ok(dn.steps.length >= p.steps.length);
  assert.deepEqual(await snapshot(ns), before, 'down: the host is as before apply');
  assert.ok(!existsSync(join(opts.stateDir, 'state.json')));
  assert.equal((await down(changed, opts)).changed, false, 'down again: nothing');
});

test('the demo: two real guests, IPv4 forwards, each VM on its own IPv6 (routed), names from a VM and the host, plan-B proxy, NAT source, static leases, down leaves nothing', async () => {
  const lines: string[] = [];
  const ok = await runDemo({ json: true, out: (l) => lines.push(l), guestDir: GUEST });
  const result = JSON.parse(lines.join('\n')) as { ok: boolean; checks: DemoCheck[] };
  const failed = result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  assert.deepEqual(failed, []);
  assert.equal(ok, true);
  for (const name of ['IPv4 :1234 reaches web ssh', 'web own IPv6 answers (routed, proxy NDP)', 'plan-B proxy answers on web IPv6 :1234', 'DHCP leases are the static ones', 'mail resolves web.lan (A, AAAA, reverse)', 'the host resolves web.lan (A, AAAA, reverse)', 'nothing left: links, rules, processes']) {
    assert.ok(result.checks.some((c) => c.name === name && c.ok), name);
  }
});

test('a VM whose QMP socket another client holds still counts as running: plan changes nothing, status says QMP busy, down stops it by pid', async (t) => {
  const lab = await Lab.create({
    prefix: 'vmhl-qmpb-',
    namespaces: { wan: {}, host: {} },
    links: [{ a: { ns: 'wan', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { b: ['203.0.113.2/24'] } }],
  });
  const ns = lab.ns('host');
  const opts = { netns: ns, stateDir: join('/run/vmhost-itest', ns) };
  const { downFirst } = cleanUp(t, lab, opts.stateDir);
  const host = parseHostFile(`name: qmpbusy
uplink: eth0
bridge: { name: br0, ipv4: 192.168.0.1/24 }
vms:
  - name: web
    ipv4: 192.168.0.100
    memoryMiB: 128
    kernel: ${join(GUEST, 'vmlinuz')}
    initrd: ${join(GUEST, 'initrd.img')}
    forwards: [{ port: 1234, toPort: 22 }]
`, { baseDir: ROOT });
  downFirst(() => down(host, opts));
  await apply(host, opts);
  const free = await status(host, opts);
  assert.deepEqual(free.vms.map((v) => [v.name, v.running, v.qmpStatus, v.qmpBusy]), [['web', true, 'running', undefined]]);
  const pid = free.vms[0]!.pid!;

  // another client takes the VM's only QMP connection
  const other = await QmpClient.connect({ path: runFiles(vmRunDir(host, 'web', opts)).qmp });
  try {
    const busy = await status(host, opts);
    assert.deepEqual(busy.vms.map((v) => [v.name, v.running, v.qmpStatus, v.qmpBusy, v.pid]), [['web', true, undefined, true, pid]]);
    assert.deepEqual((await plan(host, opts)).steps.map((s) => s.id), [], 'the VM is not planned again');
    const d = await down(host, opts);
    assert.ok(d.steps.some((s) => s.id === 'vm:web'), d.steps.map((s) => s.id).join(' '));
  } finally {
    await other.close().catch(() => undefined);
  }
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(isAlive(pid), false, 'QEMU ended');
});
