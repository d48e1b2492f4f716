// `vmhost run` end to end through the real CLI, inside lab namespaces with two test guests and an
// `internet` namespace, every fault made from outside as another tool would (`ip`, `iptables`,
// kill -9 of a pid this test found, QMP system_powerdown, an edited host file, SIGHUP, SIGTERM),
// and each repair checked with an independent oracle (`ip -j`, iptables-save, /proc) and real
// traffic from `internet` (the guests' SSH banners over the published IPv4 port and their own
// IPv6 addresses). The time from each fault to its repair is printed (a diagnostic, never asserted:
// bench/ has the figures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { cmdline, netns, procStat } from '@vmhost/net';
import { QmpClient, runFiles } from '@vmhost/kvm';
import { parseHostFile, type ServiceEvent } from '@vmhost/host';
import { vmhost } from '../helpers/cli.js';
import { Service, answers, banner } from '../helpers/service-run.js';
import { guestsReady, qemusOf } from '../helpers/fault-env.js';
import { ipJson, sh } from '../helpers/ns.js';
import { providerLab } from '../helpers/vm-lab.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GUEST = join(ROOT, '.cache', 'guest');
const PUBLIC4 = '203.0.113.2';

interface HostTextOptions {
  onStop?: 'keep' | 'shutdown';
  /** Forwards of web. */
  webForwards?: string;
}

function hostText(o: HostTextOptions = {}): string {
  const vm = (name: string, n: number, restart: string, forwards: string): string => `
  - name: ${name}
    mac: "de:ad:be:ef:32:${n - 90}"
    ipv4: 192.168.0.${n}
    ipv6: "2001:db8:8:5688::${n}"
    memoryMiB: 128
    restart: ${restart}
    kernel: ${join(GUEST, 'vmlinux')}
    initrd: ${join(GUEST, 'initrd.img')}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=${name} vmhost.ip6=2001:db8:8:5688::${n}/64 vmhost.gw6=2001:db8:8:5688::1"
    forwards: ${forwards}`;
  return `name: svc
uplink: eth0
onStop: ${o.onStop ?? 'shutdown'}
bridge: { name: br0, mac: "de:ad:be:ef:24:31", veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], leaseTime: 72h, domain: lan }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed }
vms:${vm('web', 100, 'always', o.webForwards ?? '[{ port: 1234, toPort: 22 }]')}${vm('db', 101, 'on-failure', '[{ port: 1301, toPort: 22 }]')}
`;
}

/** The QEMU pid of one VM of the state directory. */
function qemuOf(stateDir: string, vm: string): number | undefined {
  return qemusOf(stateDir).find((p) => (cmdline(p) ?? []).some((a) => a.includes(`/vms/${vm}/`)));
}

/** The pid of dnsmasq of the state directory (its pidfile). */
function dnsmasqPid(stateDir: string): number | undefined {
  try {
    const n = Number(readFileSync(join(stateDir, 'dnsmasq', 'dnsmasq.pid'), 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 && procStat(n) !== undefined ? n : undefined;
  } catch {
    return undefined;
  }
}


const isRepair = (id: string) => (e: ServiceEvent): boolean => e.type === 'repair' && (e.steps ?? []).some((s) => s.id === id);

test('vmhost run keeps the host: drift repaired from events, VMs restarted by policy, crash loops given up, reloads, onStop keep and shutdown', async (t) => {
  // the seed's network (PUBLIC4 is the host's uplink address); closed by the clean-up below, after its down
  const { lab, host: ns, internet: inet } = await providerLab('vmhl-svc-');
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-svc-'));
  const file = join(dir, 'host.yaml');
  writeFileSync(file, hostText());
  const stateDir = join('/run/vmhost-svc-test', ns);
  const dataDir = join(dir, 'data');
  const g = ['--netns', ns, '--state-dir', stateDir, '--data-dir', dataDir];
  const host = parseHostFile(hostText(), { baseDir: ROOT });
  const figures: string[] = [];
  const figure = (s: string): void => void figures.push(s);
  let svc!: Service; // assigned below; the clean-up may run before (a failed start)
  // one clean-up, in this order (node runs after-hooks first registered, first): the service
  // (which holds the state directory's lock), down while the namespace is still there (so that the
  // namespace's shared record under /run/vmhost is released), the lab, the files
  t.after(async () => {
    t.diagnostic(figures.join('; '));
    const child = (svc as Service | undefined)?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await vmhost([...g, 'down', file]);
    await lab.close();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const metricsSock = join(dir, 'metrics.sock');
  svc = new Service([...g, 'run', file, '--metrics', metricsSock]);
  await svc.wait('the first apply', (e) => e.type === 'applied', 0, 120_000);
  await guestsReady({ host, opts: { stateDir } });
  await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');
  await answers(inet, '2001:db8:8:5688::100', 22, 'SSH-2.0-vmhost-guest web');

  await t.test('the bridge deleted: made again with its addresses, ports and routes; dnsmasq restarted; traffic again', async () => {
    const m = svc.mark;
    const t0 = performance.now();
    await sh(ns, 'ip', ['link', 'del', 'br0']);
    const r = await svc.wait('the bridge repaired', isRepair('link:br0'), m);
    figure(`bridge deleted → repaired ${Math.round(performance.now() - t0)} ms (engine ${r.ms} ms)`);
    const links = await ipJson<Array<{ ifname: string; master?: string; operstate: string }>>(ns, ['link', 'show']);
    for (const l of [...host.vms.map((v) => v.tap), 'veth0']) assert.equal(links.find((x) => x.ifname === l)?.master, 'br0', `${l} is on br0 again`);
    const addrs = await ipJson<Array<{ addr_info: Array<{ local: string }> }>>(ns, ['addr', 'show', 'dev', 'br0']);
    assert.deepEqual(addrs[0]!.addr_info.map((a) => a.local).filter((a) => !a.startsWith('fe80')).sort(), ['192.168.0.1', '2001:db8:8:5688::1']);
    await svc.wait('the routes repaired', (e) => e.type === 'repair' && (e.steps ?? []).some((s) => s.id === 'route:2001:db8:8:5688::100/128'), m).catch(() => undefined);
    const routes = await ipJson<Array<{ dst: string; dev: string }>>(ns, ['-6', 'route', 'show', 'dev', 'br0']);
    assert.ok(routes.some((x) => x.dst === '2001:db8:8:5688::100'), JSON.stringify(routes));
    await svc.wait('dnsmasq restarted', (e) => e.type === 'restart' && e.service === 'dnsmasq', m);
    figure(`IPv4 after the bridge came back ${await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web')} ms`);
    await answers(inet, '2001:db8:8:5688::100', 22, 'SSH-2.0-vmhost-guest web');
  });

  await t.test('a proxy neighbour deleted: put back (only it); IPv6 traffic again', async () => {
    const m = svc.mark;
    const t0 = performance.now();
    await sh(ns, 'ip', ['-6', 'neigh', 'del', 'proxy', '2001:db8:8:5688::100', 'dev', 'eth0']);
    const r = await svc.wait('the proxy neighbour repaired', isRepair('proxyNeighbor:eth0:2001:db8:8:5688::100'), m);
    figure(`proxy neighbour deleted → repaired ${Math.round(performance.now() - t0)} ms`);
    assert.deepEqual(r.steps!.map((s) => s.id), ['proxyNeighbor:eth0:2001:db8:8:5688::100']);
    const proxies = await ipJson<Array<{ dst: string }>>(ns, ['-6', 'neigh', 'show', 'proxy', 'dev', 'eth0']);
    assert.ok(proxies.some((p) => p.dst === '2001:db8:8:5688::100'), JSON.stringify(proxies));
    await answers(inet, '2001:db8:8:5688::100', 22, 'SSH-2.0-vmhost-guest web');
  });

  await t.test('a VM\'s /128 route and the bridge\'s address deleted: put back; traffic again', async () => {
    const m = svc.mark;
    const t0 = performance.now();
    await sh(ns, 'ip', ['-6', 'route', 'del', '2001:db8:8:5688::100/128', 'dev', 'br0']);
    await sh(ns, 'ip', ['addr', 'del', '192.168.0.1/24', 'dev', 'br0']);
    await svc.wait('the route repaired', isRepair('route:2001:db8:8:5688::100/128'), m);
    await svc.wait('the address repaired', isRepair('address:br0:192.168.0.1/24'), m);
    figure(`route + address deleted → repaired ${Math.round(performance.now() - t0)} ms`);
    const routes = await ipJson<Array<{ dst: string }>>(ns, ['-6', 'route', 'show', 'dev', 'br0']);
    assert.ok(routes.some((x) => x.dst === '2001:db8:8:5688::100'), JSON.stringify(routes));
    const addrs = await ipJson<Array<{ addr_info: Array<{ local: string }> }>>(ns, ['-4', 'addr', 'show', 'dev', 'br0']);
    assert.deepEqual(addrs[0]!.addr_info.map((a) => a.local), ['192.168.0.1']);
    await answers(inet, '2001:db8:8:5688::100', 22, 'SSH-2.0-vmhost-guest web');
    await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');
  });

  await t.test('one of the owner\'s chains removed by another process (its jump deleted, the chain flushed and deleted): written again', async () => {
    const save = await sh(ns, 'iptables-save', ['-t', 'nat']);
    const jump = save.split('\n').find((l) => l.startsWith('-A PREROUTING') && /-j VMHOST-/.test(l));
    assert.ok(jump, save);
    const chain = /-j (VMHOST-\S+)/.exec(jump)![1]!;
    const words = [...jump.matchAll(/"([^"]*)"|(\S+)/g)].map((x) => x[1] ?? x[2]!);
    const m = svc.mark;
    const t0 = performance.now();
    await sh(ns, 'iptables', ['-t', 'nat', '-D', ...words.slice(1)]);
    await sh(ns, 'iptables', ['-t', 'nat', '-F', chain]);
    await sh(ns, 'iptables', ['-t', 'nat', '-X', chain]);
    await svc.wait('the firewall repaired', isRepair('firewall'), m);
    // the three commands are three generations: the rules are back once the last was repaired
    const deadline = performance.now() + 10_000;
    let now = '';
    while (performance.now() < deadline) {
      now = await sh(ns, 'iptables-save', ['-t', 'nat']);
      if (now.includes(jump) && now.includes(`:${chain} `)) break;
      await svc.wait('another firewall repair', isRepair('firewall'), svc.mark, 5_000).catch(() => undefined);
    }
    figure(`a chain removed → repaired ${Math.round(performance.now() - t0)} ms`);
    assert.ok(now.includes(jump), now);
    await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');
  });

  await t.test('iptables -F and iptables -t nat -F by another process: the owner\'s rules written again; traffic again', async () => {
    const m = svc.mark;
    const t0 = performance.now();
    await sh(ns, 'iptables', ['-t', 'nat', '-F']);
    await sh(ns, 'iptables', ['-F']);
    await svc.wait('the firewall repaired', isRepair('firewall'), m);
    // both flushes may come as one repair or two: the rules are back once iptables-save shows them
    const deadline = performance.now() + 10_000;
    let save = '';
    while (performance.now() < deadline) {
      save = await sh(ns, 'iptables-save', []);
      if (/--dport 1234 -j DNAT --to-destination 192\.168\.0\.100:22/.test(save) && /-A FORWARD .*VMHOST/.test(save)) break;
      await svc.wait('another firewall repair', isRepair('firewall'), svc.mark, 5_000).catch(() => undefined);
    }
    figure(`iptables -F → repaired ${Math.round(performance.now() - t0)} ms`);
    assert.match(save, /--dport 1234 -j DNAT --to-destination 192\.168\.0\.100:22/);
    assert.match(save, /-A FORWARD .*VMHOST/);
    await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');
  });

  await t.test('kill -9 dnsmasq: started again', async () => {
    const pid = dnsmasqPid(stateDir);
    assert.ok(pid, 'dnsmasq runs');
    const m = svc.mark;
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await svc.wait('dnsmasq restarted', (e) => e.type === 'restart' && e.service === 'dnsmasq', m);
    figure(`dnsmasq killed → running again ${Math.round(performance.now() - t0)} ms`);
    const again = dnsmasqPid(stateDir);
    assert.ok(again !== undefined && again !== pid, `a new dnsmasq (${again})`);
  });

  await t.test('--metrics on a Unix socket (0600): VMs up, TAP counters of the traffic, forward rule counters, repairs by kind, service restarts', async () => {
    assert.equal(statSync(metricsSock).mode & 0o777, 0o600);
    const text = await new Promise<string>((resolve, reject) => {
      get({ socketPath: metricsSock, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    assert.equal(value(/^vmhost_vm_up\{vm="web"\} (\S+)$/m), 1, text);
    const tap = host.vms[0]!.tap;
    assert.ok(value(new RegExp(`^vmhost_tap_tx_bytes_total\\{vm="web",tap="${tap}"\\} (\\S+)$`, 'm')) > 0, text);
    assert.ok(value(/^vmhost_forward_packets_total\{[^}]*vm="web"[^}]*\} (\S+)$/m) > 0, text);
    assert.ok(value(/^vmhost_repairs_total\{kind="link"\} (\S+)$/m) >= 1, text);
    assert.ok(value(/^vmhost_service_restarts_total\{service="dnsmasq"\} (\S+)$/m) >= 1, text);
  });

  await t.test('kill -9 of web\'s QEMU (restart: always): started again, serves again', async () => {
    const pid = qemuOf(stateDir, 'web');
    assert.ok(pid, 'web runs');
    const m = svc.mark;
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    const e = await svc.wait('web restarted', (x) => x.type === 'restart' && x.vm === 'web', m);
    assert.equal(e.cause, 'crash');
    const again = qemuOf(stateDir, 'web');
    assert.ok(again !== undefined && again !== pid, `a new QEMU (${again})`);
    figure(`QEMU killed → QEMU running ${Math.round(performance.now() - t0)} ms`);
    await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');
    figure(`QEMU killed → guest serving ${Math.round(performance.now() - t0)} ms`);
  });

  await t.test('the host file changed: applied (a new forward); a broken file (changed, and SIGHUP): reported, the host stays', async () => {
    let m = svc.mark;
    writeFileSync(file, hostText({ webForwards: '[{ port: 1234, toPort: 22 }, { port: 1235, toPort: 22 }]' }));
    const r = await svc.wait('the reload', (e) => e.type === 'reload', m);
    assert.ok(r.steps!.some((s) => s.id === 'firewall'), JSON.stringify(r.steps));
    await answers(inet, PUBLIC4, 1235, 'SSH-2.0-vmhost-guest web');
    m = svc.mark;
    writeFileSync(file, 'name: svc\nuplink: [broken\n');
    await svc.wait('the bad file reported', (e) => e.type === 'reload-failed', m);
    m = svc.mark;
    svc.child.kill('SIGHUP');
    const f = await svc.wait('SIGHUP with the bad file reported', (e) => e.type === 'reload-failed' && e.trigger === 'SIGHUP', m);
    assert.match(f.message, /the host stays as it is/);
    assert.match(await sh(ns, 'iptables-save', ['-t', 'nat']), /--dport 1235 -j DNAT/);
    await answers(inet, PUBLIC4, 1235, 'SSH-2.0-vmhost-guest web');
    m = svc.mark;
    writeFileSync(file, hostText());
    const back = await svc.wait('the reload of the good file', (e) => e.type === 'reload', m);
    assert.ok(back.steps!.some((s) => s.id === 'firewall'));
    assert.doesNotMatch(await sh(ns, 'iptables-save', ['-t', 'nat']), /--dport 1235 -j DNAT/);
  });

  await t.test('db (restart: on-failure) powered off by its guest: stays down', async () => {
    const runDir = join(stateDir, 'vms', 'db');
    const pid = qemuOf(stateDir, 'db');
    assert.ok(pid, 'db runs');
    const m = svc.mark;
    const qmp = await QmpClient.connect({ path: runFiles(runDir).qmp });
    try {
      await qmp.execute('system_powerdown');
    } finally {
      await qmp.close().catch(() => undefined);
    }
    const e = await svc.wait('db left down', (x) => x.type === 'skip' && x.vm === 'db', m, 60_000);
    assert.equal(e.cause, 'poweroff');
    assert.equal(qemuOf(stateDir, 'db'), undefined, 'no QEMU for db');
    const st = JSON.parse((await vmhost([...g, 'status', file, '--json'])).stdout) as { service: { running: boolean; vms: Record<string, { down?: string; running: boolean }> } };
    assert.equal(st.service.running, true);
    assert.match(st.service.vms.db!.down ?? '', /powered off; restart: on-failure/);
  });

  await t.test('web killed again and again: restarts with backoff, then given up as a crash loop (status shows it); SIGHUP gives it another go', async () => {
    const m = svc.mark;
    let gaveUp: ServiceEvent | undefined;
    for (let i = 0; i < 8 && !gaveUp; i++) {
      const pid = qemuOf(stateDir, 'web');
      assert.ok(pid, `web runs (round ${i})`);
      const from = svc.mark;
      process.kill(pid, 'SIGKILL');
      const e = await svc.wait('a restart or the give-up', (x) => x.vm === 'web' && (x.type === 'restart' || x.type === 'give-up'), from, 90_000);
      if (e.type === 'give-up') gaveUp = e;
    }
    assert.ok(gaveUp, 'given up');
    const delays = svc.events.slice(m).filter((e) => e.vm === 'web' && e.delayMs !== undefined).map((e) => e.delayMs);
    assert.deepEqual(delays, [1000, 2000, 4000, 8000], 'the first restart at once, then doubling');
    assert.equal(qemuOf(stateDir, 'web'), undefined, 'web left down');
    const st = JSON.parse((await vmhost([...g, 'status', file, '--json'])).stdout) as { service: { vms: Record<string, { crashLoop: boolean; restarts: number; down?: string }> } };
    assert.equal(st.service.vms.web!.crashLoop, true);
    assert.match(st.service.vms.web!.down ?? '', /crash loop/);
    const text = (await vmhost([...g, 'status', file])).stdout;
    assert.match(text, /Service \(vmhost run\): running/);
    assert.match(text, /web +always .*crash loop/);
    const from = svc.mark;
    svc.child.kill('SIGHUP');
    const r = await svc.wait('the reload', (e) => e.type === 'reload', from);
    assert.ok(r.steps!.some((s) => s.id === 'vm:web'), 'web started by the reload');
    assert.ok(qemuOf(stateDir, 'web'));
    assert.equal(svc.events.slice(from).some((e) => e.vm === 'db' && e.type === 'restart'), false, 'db (powered off) was not restarted');
    await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');
  });

  await t.test('SIGTERM with onStop keep: exit 0, VMs and dnsmasq run on; a new run adopts them; SIGTERM with shutdown: exit 0, nothing runs', async () => {
    let m = svc.mark;
    writeFileSync(file, hostText({ onStop: 'keep' }));
    await svc.wait('the reload (onStop keep)', (e) => e.type === 'reload', m);
    const web = qemuOf(stateDir, 'web');
    const dns = dnsmasqPid(stateDir);
    const r = await svc.stop('SIGTERM');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(svc.events.some((e) => e.type === 'stop' && /keep/.test(e.message)));
    assert.equal(qemuOf(stateDir, 'web'), web, 'web runs on');
    assert.equal(dnsmasqPid(stateDir), dns, 'dnsmasq runs on');
    await answers(inet, PUBLIC4, 1234, 'SSH-2.0-vmhost-guest web');

    svc = new Service([...g, 'run', file]);
    const a = await svc.wait('the apply of the second run', (e) => e.type === 'applied', 0, 120_000);
    // db was left down by the first run's policy; a new run starts what the file autostarts
    assert.deepEqual(a.steps!.map((s) => s.id), ['vm:db'], 'only db (down) is started; web and dnsmasq are adopted as they run');
    assert.equal(qemuOf(stateDir, 'web'), web);
    m = svc.mark;
    writeFileSync(file, hostText({ onStop: 'shutdown' }));
    await svc.wait('the reload (onStop shutdown)', (e) => e.type === 'reload', m);
    const r2 = await svc.stop('SIGTERM');
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(qemusOf(stateDir), [], 'no QEMU left');
    assert.equal(dnsmasqPid(stateDir), undefined, 'no dnsmasq left');
    const st = JSON.parse((await vmhost([...g, 'status', file, '--json'])).stdout) as { service: { running: boolean; state: string } };
    assert.deepEqual([st.service.running, st.service.state], [false, 'stopped']);
  });
});
