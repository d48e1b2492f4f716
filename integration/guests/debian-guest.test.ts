// A real Debian 12 guest (scripts/build-debian-guest.sh, TCG) next to the busybox test guest, made
// by `vmhost apply` through the CLI from one host file, in a lab like the demo's: an `internet`
// namespace (the provider, treating the host's /64 as on-link, and a client) and the host's
// namespace. The Debian VM has nothing but `cloudInit` with a fresh ssh key and `ipv6: auto`; the
// engine's dnsmasq gives it RA (M=1 O=1, the prefix off-link without SLAAC), its address by
// DHCPv6 and the VMs' names; the seed gives it the user, the key and network-config. From the
// `internet` namespace the real OpenSSH client logs in on the guest's own IPv6 address and through
// the public IPv4 port forward. Oracles: the guest's `ip -j`, `getent` and `cloud-init status`
// over ssh, the host namespace's `ip -j` (the bridge's link-local address, the router the guest must
// use), nslookup against dnsmasq from the host namespace, dnsmasq's lease file and log, and a
// snapshot of the namespace before apply and after down. The test guest has a fixed /128 from its
// command line and no gateway: it answers from outside only through the RA's default route, and
// its EUI-64 address (what SLAAC would form) does not answer.
//
// The slow part is the Debian guest's boot on TCG (1-4 min): it runs once, here, and the time from
// apply to the first ssh login is reported as a diagnostic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlay, detectAccel, runFiles } from '@vmhost/kvm';
import { isAlive, readPidfile } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { vmhost } from '../helpers/cli.js';
import { hostSnapshot } from '../helpers/host-snapshot.js';
import { ipJson } from '../helpers/ns.js';
import { guest as testGuest, waitForConsole } from '../kvm/helpers.js';
import { debianGuest, ssh, sshKeygen, waitForPing, waitForSsh } from './helpers.js';
import { cleanUp } from '../helpers/cleanup.js';
import { providerLab } from '../helpers/vm-lab.js';

/** The scenario (documentation ranges), the addresses as the host file and the oracles see them. */
const NET = {
  public4: '203.0.113.2',
  prefix: '2001:db8:8:5688::/64',
  bridge6: '2001:db8:8:5688::1',
  bridge4: '192.168.0.1',
  domain: 'lan',
  // ipv6: auto for 52:54:00:12:34:56: the EUI-64 address SLAAC forms (measured with A=1 in the guest)
  web: { name: 'web', mac: '52:54:00:12:34:56', ipv4: '192.168.0.10', ipv6: '2001:db8:8:5688:5054:ff:fe12:3456' },
  tg: { name: 'tg', mac: '52:54:00:12:34:57', ipv4: '192.168.0.20', ipv6: '2001:db8:8:5688::200', eui64: '2001:db8:8:5688:5054:ff:fe12:3457' },
  forward: 2222,
};

interface IpAddr { ifname: string; addr_info: Array<{ family?: string; local?: string; prefixlen?: number; dynamic?: boolean }> }
interface IpRoute { dst: string; gateway?: string; dev: string; protocol: string }

function hostFile(o: { web: { kernel: string; initrd: string; append: string; disk: string }; tg: { kernel: string; initrd: string; append: string }; key: string; userData: string }): string {
  return `# A real Debian guest configured by the host (RA, DHCPv6, names, a cloud-init seed) and a test guest.
name: dgtest
uplink: eth0
publicIPv4: ${NET.public4}
bridge: { name: br0, ipv4: ${NET.bridge4}/24, ipv6: "${NET.bridge6}/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], domain: ${NET.domain} }
ipv6: { prefix: "${NET.prefix}", mode: routed }
cloudInit: { userData: ${o.userData} }   # host-wide, merged into each VM's cloudInit
vms:
  - name: ${NET.web.name}
    mac: "${NET.web.mac}"
    ipv4: ${NET.web.ipv4}
    ipv6: auto
    memoryMiB: 1024
    kernel: ${o.web.kernel}
    initrd: ${o.web.initrd}
    append: "${o.web.append}"
    disk: ${o.web.disk}
    forwards: [{ port: ${NET.forward}, toPort: 22 }]
    cloudInit:
      sshAuthorizedKeys: ["${o.key}"]
  - name: ${NET.tg.name}
    mac: "${NET.tg.mac}"
    ipv4: ${NET.tg.ipv4}
    ipv6: "${NET.tg.ipv6}"
    kernel: ${o.tg.kernel}
    initrd: ${o.tg.initrd}
    append: "${o.tg.append} vmhost.name=${NET.tg.name} vmhost.ip6=${NET.tg.ipv6}/128"
`;
}

/**
 * Runs `commands` on the guest in one ssh session (a login costs seconds on TCG) and returns each
 * one's output by key; a command that fails fails the test, naming it.
 */
async function inGuest<K extends string>(lab: Lab, key: string, target: string, commands: Record<K, string>): Promise<Record<K, string>> {
  const keys = Object.keys(commands) as K[];
  const script = keys.map((k) => `echo '@@ ${k}'; { ${commands[k]}; } || echo "@@! ${k} exited $?"`).join('\n');
  const out = await ssh(lab, 'internet', key, target, script);
  assert.doesNotMatch(out, /^@@! /m, out);
  const got = {} as Record<K, string>;
  for (const chunk of out.split(/^@@ /m).slice(1)) {
    const nl = chunk.indexOf('\n');
    got[chunk.slice(0, nl) as K] = chunk.slice(nl + 1);
  }
  assert.deepEqual(Object.keys(got), keys, out);
  return got;
}

test('a Debian guest configured only by the host (vmhost apply): ssh on its own IPv6 and through the IPv4 forward, RA route, DHCPv6 address, names, cloud-init done; down leaves the namespace as before', { timeout: 1_140_000 }, async (t) => {
  const img = debianGuest();
  const tg = testGuest();

  // ------------------------------------------------------------------ the network (as the demo's)
  const { lab, host: ns } = await providerLab('vmhl-dg-'); // the provider sees the /64 on-link: proxy NDP
  const stateDir = join('/run/vmhost-dgtest', ns);
  const work = mkdtempSync(join(tmpdir(), 'vmhost-dg-'));
  // down (needs the host file in work), the lab, then the state and the work directory
  const { downFirst } = cleanUp(t, lab, stateDir, work);
  // QEMU runs as its own unprivileged id (qemu.user auto) and reopens the VM's image by name for
  // live disk operations: the directory must be searchable by it (0711 lists nothing)
  chmodSync(work, 0o711);
  const dataDir = join(work, 'data');
  const global = ['--netns', ns, '--state-dir', stateDir, '--data-dir', dataDir];

  // ------------------------------------------------------------------ the host file
  const keys = sshKeygen(work);
  const disk = join(work, 'web.qcow2');
  await createOverlay({ file: disk, backing: img.image });
  const file = join(work, 'vmhost.yaml');
  const userData = join(work, 'user-data.yaml');
  writeFileSync(userData, '#cloud-config\nwrite_files:\n  - path: /etc/vmhost-user-data\n    content: "merged user-data\\n"\n');
  writeFileSync(file, hostFile({ web: { kernel: img.kernel, initrd: img.initrd, append: img.append, disk }, tg: { kernel: tg.vmlinux, initrd: tg.initrd, append: tg.append }, key: keys.pub, userData }));
  const before = await hostSnapshot(ns);
  t.diagnostic(`accelerator: ${detectAccel().accel} (${detectAccel().reason})`);

  // ------------------------------------------------------------------ apply
  const t0 = performance.now();
  const applied = await vmhost([...global, 'apply', file]);
  downFirst(() => vmhost([...global, 'down', file]));
  assert.equal(applied.code, 0, applied.stderr);
  t.diagnostic(`vmhost apply: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const seed = join(dataDir, 'seeds', 'web.iso');
  assert.ok(existsSync(seed), 'the seed is in the data directory');
  const instanceId = /start VM web \(1024 MiB, 1 cpu, 52:54:00:12:34:56, 192\.168\.0\.10, 2001:db8:8:5688:5054:ff:fe12:3456, cloud-init (web-[0-9a-f]{16})\)/.exec(applied.stderr)?.[1];
  assert.ok(instanceId, applied.stderr);
  const qemuAlive = (name: string) => (): boolean => {
    const pid = readPidfile(runFiles(join(stateDir, 'vms', name)).pidfile);
    return pid !== undefined && isAlive(pid);
  };

  // ------------------------------------------------------------------ the test guest
  await waitForConsole(join(stateDir, 'vms', 'tg', 'console.log'), tg.markers.ready, 300_000, qemuAlive('tg'));
  // /init waits for the RA's default route before it says ready: from outside, through it only
  await waitForPing(lab, 'internet', NET.tg.ipv6, 180_000);
  const noSlaac = await lab.run('host', 'busybox', ['ping', '-6', '-c', '2', '-W', '2', NET.tg.eui64], { timeoutMs: 30_000 });
  assert.notEqual(noSlaac.code, 0, `${NET.tg.eui64} (SLAAC) must not answer`);

  // ------------------------------------------------------------------ ssh, on its own IPv6 address
  const target = `ops@${NET.web.ipv6}`;
  // deadlines: boot ~1 min quiet, ~4 min under load; the runner caps a file at 20 min
  await waitForSsh(lab, 'internet', keys.key, target, 900_000, qemuAlive('web'));
  const firstLogin = (performance.now() - t0) / 1000;
  // cloud-init restarts sshd late in its run: wait for it to finish (logins may be refused meanwhile)
  const { stdout: status } = await waitForSsh(lab, 'internet', keys.key, target, 300_000, qemuAlive('web'), 'cloud-init status --wait');
  t.diagnostic(`Debian guest: first ssh login ${firstLogin.toFixed(0)} s after vmhost apply started, cloud-init done at ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  assert.match(status, /status: done\s*$/, status);
  // ... and through the public IPv4 port forward
  assert.equal((await ssh(lab, 'internet', keys.key, `ssh://ops@${NET.public4}:${NET.forward}`, 'hostname')).trim(), NET.web.name);

  // in the guest, in one ssh session (a login costs seconds on TCG): each command's output by key
  const tgFqdn = `${NET.tg.name}.${NET.domain}`;
  const g = await inGuest(lab, keys.key, target, {
    hostname: 'hostname',
    fqdn: 'hostname -f',
    instanceId: 'cat /var/lib/cloud/data/instance-id',
    userData: 'cat /etc/vmhost-user-data',
    addrs: 'ip -j -6 addr show scope global',
    routes: 'ip -j -6 route show',
    tg6: `getent ahostsv6 ${tgFqdn}`,
    tg4: `getent ahostsv4 ${tgFqdn}`,
    tgPtr6: `getent hosts ${NET.tg.ipv6}`,
    tgPtr4: `getent hosts ${NET.tg.ipv4}`,
    resolv: 'resolvectl dns; resolvectl domain',
    // for the log: what an operator would look at in the guest
    show: `ip -6 addr; ip -6 route; getent ahosts ${tgFqdn}; cloud-init status --long`,
  });
  assert.equal(g.hostname.trim(), NET.web.name);
  assert.equal(g.fqdn.trim(), `${NET.web.name}.${NET.domain}`);
  // the seed the plan named, and the host-wide user-data merged into it
  assert.equal(g.instanceId.trim(), instanceId);
  assert.equal(g.userData, 'merged user-data\n');

  // addresses: the host file's (auto) address as a /128, no SLAAC address, no global /64
  const addrs = JSON.parse(g.addrs) as IpAddr[];
  const global6 = addrs.flatMap((a) => a.addr_info.filter((i) => i.local !== undefined).map((i) => ({ ...i, ifname: a.ifname })));
  t.diagnostic(`guest ip -6 addr (global): ${JSON.stringify(global6.map((a) => `${a.local}/${a.prefixlen} ${a.ifname}${a.dynamic ? ' dynamic' : ''}`))}`);
  assert.ok(global6.some((a) => a.local === NET.web.ipv6 && a.prefixlen === 128), `${NET.web.ipv6}/128 in ${JSON.stringify(global6)}`);
  assert.ok(global6.length > 0 && global6.every((a) => a.prefixlen === 128), `only /128s (no SLAAC /64): ${JSON.stringify(global6)}`);

  // routes: default via the bridge's link-local address, learnt from the RA; no on-link /64
  const bridgeLl = (await ipJson<IpAddr[]>(ns, ['-6', 'addr', 'show', 'dev', 'br0', 'scope', 'link'])).flatMap((a) => a.addr_info.flatMap((i) => i.local ?? []));
  const routes = JSON.parse(g.routes) as IpRoute[];
  t.diagnostic(`guest ip -6 route: ${JSON.stringify(routes.map((r) => `${r.dst} ${r.gateway ? `via ${r.gateway} ` : ''}proto ${r.protocol}`))}`);
  const def = routes.find((r) => r.dst === 'default');
  assert.ok(def, `a default route in ${JSON.stringify(routes)}`);
  assert.deepEqual([def.gateway, def.protocol], [bridgeLl[0], 'ra']);
  assert.ok(!routes.some((r) => r.dst === NET.prefix), `no on-link route for ${NET.prefix}: ${JSON.stringify(routes)}`);

  // names: the other VM's A, AAAA and reverse entries from the Debian guest (glibc through its
  // resolver, set by RDNSS/DHCP); the Debian guest's own from the other VM (tg's busybox nslookup,
  // through its /cgi-bin/lookup) and from the host namespace, against both bridge addresses
  const words = (out: string): string[] => out.trim().split(/\s+/);
  assert.equal(words(g.tg6)[0], NET.tg.ipv6);
  assert.equal(words(g.tg4)[0], NET.tg.ipv4);
  assert.deepEqual(words(g.tgPtr6).slice(0, 2), [NET.tg.ipv6, tgFqdn]);
  assert.deepEqual(words(g.tgPtr4).slice(0, 2), [NET.tg.ipv4, tgFqdn]);
  t.diagnostic(`guest resolvectl: ${g.resolv.replace(/\n/g, ' | ')}`);
  const fromTg = (args: string[]): Promise<string> => lab.exec('host', 'busybox', ['wget', '-q', '-O-', `http://${NET.tg.ipv4}/cgi-bin/lookup?${args.join('&')}`], { timeoutMs: 20_000 });
  const fromHost = (args: string[]): Promise<string> => lab.exec('host', 'busybox', ['nslookup', ...args], { timeoutMs: 10_000 });
  const fqdn = `${NET.web.name}.${NET.domain}`;
  const esc = (a: string): string => a.replace(/\./g, '\\.');
  for (const [who, lookup] of [['tg', fromTg], ['host', fromHost]] as const) {
    for (const server of [NET.bridge4, NET.bridge6]) {
      for (const [args, want] of [
        [['-type=A', fqdn, server], new RegExp(`^Address:\\s+${esc(NET.web.ipv4)}\\s*$`, 'm')],
        [['-type=AAAA', fqdn, server], new RegExp(`^Address:\\s+${NET.web.ipv6}\\s*$`, 'm')],
        [[NET.web.ipv4, server], new RegExp(`name = ${esc(fqdn)}\\s*$`, 'm')],
        [[NET.web.ipv6, server], new RegExp(`name = ${esc(fqdn)}\\s*$`, 'm')],
      ] as const) {
        const got = await lookup([...args]);
        assert.match(got, want, `${who}: nslookup ${args.join(' ')}`);
      }
    }
  }

  // DHCPv6 matched the guest by MAC (its DUID is networkd's DUID-EN, not its MAC) and leased the auto address
  // (the guest configures the same address from network-config at once; its DHCPv6 exchange
  // follows the RA, well before cloud-init is done, but is waited for, not assumed)
  const leased = (): boolean => readFileSync(join(stateDir, 'dnsmasq', 'dnsmasq.leases'), 'utf8').split('\n').some((l) => l.split(' ')[2] === NET.web.ipv6 && l.split(' ')[3] === NET.web.name);
  for (const end = performance.now() + 120_000; !leased() && performance.now() < end;) await new Promise((r) => setTimeout(r, 500));
  assert.ok(leased(), readFileSync(join(stateDir, 'dnsmasq', 'dnsmasq.leases'), 'utf8'));
  assert.match(readFileSync(join(stateDir, 'dnsmasq', 'dnsmasq.log'), 'utf8'), new RegExp(`client MAC address: ${NET.web.mac}`));

  for (const line of g.show.trimEnd().split('\n')) t.diagnostic(`guest> ${line}`);

  // ------------------------------------------------------------------ down
  const downed = await vmhost([...global, 'down', file]);
  assert.equal(downed.code, 0, downed.stderr);
  assert.deepEqual(await hostSnapshot(ns), before, 'down: the namespace is as before apply');
  assert.ok(!existsSync(seed), 'down removes the seed');
});
