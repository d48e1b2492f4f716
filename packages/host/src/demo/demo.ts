/**
 * The end-to-end demo (`npm run demo`, `vmhost demo`): the seed guide's host, built from one host
 * file inside network namespaces, proven from an `internet` namespace, then torn down.
 *
 * - `internet` (a provider router and a client): 203.0.113.1/24 and fe80::1 on `up0`; it treats
 *   the host's /64 as on-link (`2001:db8:8:5688::/64 dev up0`): neighbour discovery, not a routed
 *   prefix, which is exactly why VMs on their own IPv6 addresses need proxy NDP on the host. The
 *   client side has 198.51.100.10 and 2001:db8:ffff::10 and serves `GET /cgi-bin/ip` (the source
 *   address it sees) on 198.51.100.10:8080.
 * - `host`: one public IPv4 address (203.0.113.2/24) and 2001:db8:8:5688::2/64 on `eth0`; two
 *   real QEMU guests (web and mail, the test guest; KVM only where it really works), each with its
 *   own /128 from its command line and its default route from the router advertisements of the
 *   host's dnsmasq.
 * @module
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { iptablesBackend, save as fwSave } from '@vmhost/firewall';
import { Lab } from '@vmhost/lab';
import { loadHostFile } from '../spec/load.js';
import { apply, down, plan } from '../engine/run.js';
import { status } from '../engine/status.js';
import { stateDirFor } from '../engine/context.js';
import type { ResolvedHost } from '../types.js';
import { buildTestGuest, defaultGuestDir } from '../guests/test-guest/build.js';
import { prepareRealVm, realChecks, REAL_VM, type RealGuest, type RealVm } from './real.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Leave the namespaces and the host up at the end (clean up later with `vmhost down` and the lab sweep). */
  keep?: boolean;
  /** Print the results as JSON instead of a table. */
  json?: boolean;
  /** Where lines go. Default: console.log. */
  out?: (line: string) => void;
  /**
   * The test guest's directory (vmlinuz, initrd.img), built there first when it holds no current
   * build ({@link buildTestGuest}). Default: {@link defaultGuestDir} (`~/.cache/vmhost/guest`).
   */
  guestDir?: string;
  /**
   * A real guest too: this cloud image (with cloud-init; `scripts/build-debian-guest.sh` builds a
   * Debian 12 one) as a third VM configured by nothing but the host (a cloud-init seed with a fresh
   * ssh key, `ipv6: auto`, RA and DHCPv6, names), logged into with OpenSSH from the `internet`
   * namespace. Its boot takes 1-4 minutes on TCG.
   */
  real?: RealGuest;
}

/** One row of the demo's result table. */
export interface DemoCheck {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

const PREFIX = 'vmhd-';
/** Thrown to skip the remaining checks once apply has failed. */
const ABORT = Symbol('abort');
const PUBLIC4 = '203.0.113.2';
const CLIENT4 = '198.51.100.10';

function hostFile(guestDir: string, extraVms = ''): string {
  const kernel = join(guestDir, 'vmlinuz');
  const initrd = join(guestDir, 'initrd.img');
  const vm = (name: string, mac: string, v4: string, v6: string, forwards: string): string => `
  - name: ${name}
    mac: "${mac}"
    ipv4: ${v4}
    ipv6: "${v6}"
    memoryMiB: 256
    cpus: 1
    kernel: ${kernel}
    initrd: ${initrd}
    append: "console=ttyS0 panic=-1 quiet vmhost.name=${name} vmhost.ip6=${v6}/128"
    forwards: ${forwards}`;
  return `# The seed guide's host (see ../shared/seed-guide.txt), as one vmhost host file.
name: demo
uplink: eth0
publicIPv4: ${PUBLIC4}
bridge: { name: br0, mac: "de:ad:be:ef:24:31", veth: { name: veth0, peer: veth1 },
          ipv4: 192.168.0.1/24, ipv6: "2001:db8:8:5688::1/64" }
dhcp: { range: [192.168.0.100, 192.168.0.150], leaseTime: 72h, domain: lan }
ipv6: { prefix: "2001:db8:8:5688::/64", mode: routed }
vms:${vm('web', 'de:ad:be:ef:32:10', '192.168.0.100', '2001:db8:8:5688::100', '[{ port: 1234, toPort: 22 }, { port: 80 }]')}${vm('mail', 'de:ad:be:ef:32:20', '192.168.0.200', '2001:db8:8:5688::200', '[{ port: 5678, toPort: 22 }, { port: 25 }]')}${extraVms}
`;
}

/** Runs the demo; resolves true when every check passed. */
export async function runDemo(options: DemoOptions = {}): Promise<boolean> {
  const out = options.out ?? ((l: string) => console.log(l));
  const guestDir = (await buildTestGuest({ dir: options.guestDir ?? defaultGuestDir(), log: (l) => !options.json && out(`guest: ${l}`) })).dir;
  const checks: DemoCheck[] = [];
  const t0 = performance.now();
  const check = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
    const ts = performance.now();
    let ok = false;
    let detail: string;
    try {
      detail = await fn();
      ok = true;
    } catch (err) {
      detail = err instanceof Error ? err.message : String(err);
    }
    checks.push({ name, ok, detail: detail.replace(/\s+/g, ' ').trim().slice(0, 90), ms: Math.round(performance.now() - ts) });
    if (!options.json) out(`${ok ? 'PASS' : 'FAIL'}  ${name}: ${checks.at(-1)!.detail}`);
    return ok;
  };

  const work = mkdtempSync(join(tmpdir(), 'vmhost-demo-'));
  // the VMs' QEMU runs as its own unprivileged id (qemu.user auto) and reopens a VM's image (the
  // real guest's overlay here) by name: the directory must be searchable by it (0711 lists nothing)
  chmodSync(work, 0o711);
  const lab = await Lab.create({
    prefix: PREFIX,
    cleanupOnExit: !options.keep,
    namespaces: { internet: {}, host: {} },
    links: [{ a: { ns: 'internet', name: 'up0' }, b: { ns: 'host', name: 'eth0' }, addresses: { a: ['203.0.113.1/24', 'fe80::1/64'], b: [`${PUBLIC4}/24`, '2001:db8:8:5688::2/64'] } }],
  });
  const hostNs = lab.ns('host');
  const inet = lab.ns('internet');
  let host: ResolvedHost | undefined;
  const opts = { netns: hostNs, stateDir: join('/run/vmhost-demo', hostNs), dataDir: join(work, 'data') };
  let real: RealVm | undefined;
  try {
    // The provider: routes the /64 on-link towards the host, serves the client addresses.
    const ih = await lab.rtnl('internet');
    await ih.addresses.add('lo', `${CLIENT4}/32`);
    await ih.addresses.add('lo', '2001:db8:ffff::10/128', { nodad: true });
    await ih.routes.add({ to: '2001:db8:8:5688::/64', dev: 'up0' });
    const hh = await lab.rtnl('host');
    await hh.routes.add({ to: 'default', via: '203.0.113.1' });
    await hh.routes.add({ to: 'default', family: 6, via: 'fe80::1', dev: 'eth0' });
    const www = join(work, 'www');
    mkdirSync(join(www, 'cgi-bin'), { recursive: true });
    writeFileSync(join(www, 'cgi-bin', 'ip'), '#!/bin/busybox sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n', { mode: 0o755 });
    lab.spawn('internet', '/bin/busybox', ['httpd', '-f', '-p', `${CLIENT4}:8080`, '-h', www]);

    const file = join(work, 'vmhost.yaml');
    if (options.real) real = await prepareRealVm(work, options.real, '2001:db8:8:5688::/64');
    writeFileSync(file, hostFile(guestDir, real?.yaml));
    host = await loadHostFile(file);
    if (!options.json) out(`host file ${file}; namespaces ${inet} and ${hostNs}; state in ${stateDirFor(host, opts)}`);

    const savedBefore = await fwSave({ netns: hostNs });
    const linkNames = async (): Promise<string> => (await hh.links.list()).map((l) => l.name).sort().join(' ');
    const linksBefore = await linkNames();
    const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv6.conf.eth0.proxy_ndp'];
    const sysctls = async (): Promise<string> => (await Promise.all(SYSCTLS.map(async (k) => `${k}=${await hh.sysctl.get(k)}`))).join(' ');
    const sysctlsBefore = await sysctls();

    const p = await plan(host, opts);
    if (!options.json) {
      out(`plan: ${p.steps.length} steps`);
      for (const s of p.steps) out(`  ${s.action.padEnd(7)} ${s.description}`);
    }
    const applyHost = host;
    const t0apply = performance.now();
    const applied = await check('apply', async () => {
      const r = await apply(applyHost, {
        ...opts,
        onProgress: (ev) => {
          if (!options.json && ev.type === 'step-done' && ev.ms > 300) out(`  ... ${ev.step.description} (${Math.round(ev.ms)} ms)`);
        },
      });
      return `${r.steps.length} steps in ${r.ms} ms`;
    });
    if (!applied) throw ABORT;
    const h = host;
    await check('guests boot and serve', async () => {
      const t = performance.now();
      await Promise.all(h.vms.filter((vm) => vm.name !== REAL_VM.name).map((vm) => waitFor(join(opts.stateDir, 'vms', vm.name, 'console.log'), 'VMHOST-GUEST: ready', 90_000)));
      return `web and mail ready ${Math.round(performance.now() - t)} ms after apply`;
    });
    await check('re-apply is a no-op', async () => {
      const again = await plan(h, opts);
      if (again.steps.length) throw new Error(`plan has ${again.steps.length} steps: ${again.steps.map((s) => s.description).join('; ')}`);
      return 'plan: no changes';
    });
    await check('IPv4 :1234 reaches web ssh', () => expect(nc(inet, PUBLIC4, 1234), 'SSH-2.0-vmhost-guest web'));
    await check('IPv4 :5678 reaches mail ssh', () => expect(nc(inet, PUBLIC4, 5678), 'SSH-2.0-vmhost-guest mail'));
    await check('IPv4 :80 reaches web http', () => expect(http(inet, `http://${PUBLIC4}/`), 'vmhost-guest de:ad:be:ef:32:10'));
    await check('IPv4 :25 reaches mail smtp', () => expect(nc(inet, PUBLIC4, 25), '220 mail ESMTP'));
    await check('web own IPv6 answers (routed, proxy NDP)', () => expect(nc(inet, '2001:db8:8:5688::100', 22), 'SSH-2.0-vmhost-guest web'));
    await check('mail own IPv6 answers (routed, proxy NDP)', () => expect(nc(inet, '2001:db8:8:5688::200', 25), '220 mail ESMTP'));
    await check('web reaches the internet as 203.0.113.2', () => expect(http(inet, `http://${PUBLIC4}/cgi-bin/fetch?http://${CLIENT4}:8080/cgi-bin/ip`), PUBLIC4));
    await check('mail reaches the internet as 203.0.113.2', () => expect(http(hostNs, `http://192.168.0.200/cgi-bin/fetch?http://${CLIENT4}:8080/cgi-bin/ip`), PUBLIC4));
    await check('hairpin: mail reaches web on public :80', () => expect(http(hostNs, `http://192.168.0.200/cgi-bin/fetch?http://${PUBLIC4}:80/`), 'vmhost-guest de:ad:be:ef:32:10'));
    await check('the host itself reaches :1234', () => expect(nc(hostNs, PUBLIC4, 1234), 'SSH-2.0-vmhost-guest web'));
    await check('DHCP leases are the static ones', async () => {
      const st = await status(h, opts);
      const leases = st.leases.filter((l) => l.mac !== REAL_VM.mac).map((l) => `${l.mac}=${l.ipv4}`).sort();
      const want = ['de:ad:be:ef:32:10=192.168.0.100', 'de:ad:be:ef:32:20=192.168.0.200'];
      if (JSON.stringify(leases) !== JSON.stringify(want)) throw new Error(`leases ${leases.join(' ')}`);
      return leases.join(' ');
    });

    // names: web's A, AAAA and reverse entries from the other VM (mail's busybox nslookup, through
    // its /cgi-bin/lookup) and from the host namespace, against both addresses of the bridge
    await check('mail resolves web.lan (A, AAAA, reverse)', () => webNames((args) => http(hostNs, `http://192.168.0.200/cgi-bin/lookup?${args.join('&')}`)));
    await check('the host resolves web.lan (A, AAAA, reverse)', () => webNames(async (args) => (await netns.run(hostNs, '/bin/busybox', ['nslookup', ...args], { timeoutMs: 10_000 })).stdout));

    if (real) await realChecks(check, { inet, publicIPv4: PUBLIC4, vm: real, t0: t0apply, domain: 'lan', other: 'web' });

    // Plan B: the same host with ipv6.mode proxy: the VM addresses move to the uplink and a TCP
    // proxy forwards each published port to the VM's IPv4 address.
    const proxyHost: ResolvedHost = { ...h, ipv6: { ...h.ipv6!, mode: 'proxy' } };
    await check('switch to plan B (ipv6 mode proxy)', async () => {
      const pp = await plan(proxyHost, opts);
      const r2 = await apply(proxyHost, opts);
      return `${pp.steps.length} steps (${pp.steps.map((s) => s.id.split(':')[0]).filter((v, i, a) => a.indexOf(v) === i).join(', ')}) in ${r2.ms} ms`;
    });
    await check('plan-B proxy answers on web IPv6 :1234', () => expect(nc(inet, '2001:db8:8:5688::100', 1234), 'SSH-2.0-vmhost-guest web'));
    await check('plan-B proxy answers on mail IPv6 :25', () => expect(nc(inet, '2001:db8:8:5688::200', 25), '220 mail ESMTP'));

    if (options.keep) {
      out(`--keep: left up; remove with: vmhost --netns ${hostNs} --state-dir ${opts.stateDir} --data-dir ${opts.dataDir} down ${file}`);
    } else {
      await check('down', async () => {
        const d = await down(proxyHost, opts);
        return `${d.steps.length} steps in ${d.ms} ms`;
      });
      await check('nothing left: links, rules, processes', async () => {
        const links = await linkNames();
        if (links !== linksBefore) throw new Error(`links ${links} (before: ${linksBefore})`);
        const saved = await fwSave({ netns: hostNs });
        // legacy iptables cannot delete a table: those apply made stay, empty (docs/firewall-atomic-apply.md)
        const legacy = (await iptablesBackend()) === 'legacy';
        const strip = (s: string): string => {
          const text = s.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '')).join('\n');
          return legacy ? withoutEmptyTables(text) : text;
        };
        if (strip(saved.ipv4) !== strip(savedBefore.ipv4) || strip(saved.ipv6) !== strip(savedBefore.ipv6)) throw new Error('iptables-save differs from before apply');
        const sc = await sysctls();
        if (sc !== sysctlsBefore) throw new Error(`sysctls ${sc} (before: ${sysctlsBefore})`);
        const routes6 = (await hh.routes.list({ family: 6 })).filter((r) => r.to.startsWith('2001:db8:8:5688::') && r.dstLength === 128);
        if (routes6.length) throw new Error(`routes left: ${routes6.map((r) => r.to).join(' ')}`);
        const proxies = await hh.neighbors.list({ family: 6, proxy: true });
        if (proxies.length) throw new Error(`proxy neighbours left: ${proxies.map((n) => n.to).join(' ')}`);
        const pids = await netns.pids(hostNs);
        const foreign = pids.filter((pid) => pid !== process.pid);
        if (foreign.length) throw new Error(`processes left in the host namespace: ${foreign.join(' ')}`);
        return `links: ${links}; sysctls, routes, proxy neighbours and iptables-save as before; no processes`;
      });
    }
  } catch (err) {
    if (err !== ABORT) throw err; // apply failed: its row says why; clean up and print the table
  } finally {
    if (!options.keep) {
      if (host) await down(host, opts).catch(() => undefined);
      await lab.close();
      rmSync(work, { recursive: true, force: true });
      // what a failed down left of the state (the namespace and its processes are gone now)
      rmSync(opts.stateDir, { recursive: true, force: true });
      await check('namespaces removed', async () => {
        const left = (await netns.list()).filter((n) => n === hostNs || n === inet);
        if (left.length) throw new Error(`left: ${left.join(' ')}`);
        return `${inet} and ${hostNs} are gone`;
      });
    }
  }
  const ok = checks.every((c) => c.ok);
  if (options.json) {
    out(JSON.stringify({ ok, ms: Math.round(performance.now() - t0), checks }, null, 2));
  } else {
    out('');
    const w = Math.max(...checks.map((c) => c.name.length));
    out(`${'check'.padEnd(w)}  result  ms`);
    for (const c of checks) out(`${c.name.padEnd(w)}  ${c.ok ? 'pass' : 'FAIL'}    ${c.ms}`);
    out(`${checks.filter((c) => c.ok).length}/${checks.length} checks passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return ok;
}

async function expect(got: Promise<string>, want: string): Promise<string> {
  const text = (await got).trim();
  if (!text.includes(want)) throw new Error(`expected "${want}", got "${text.slice(0, 80)}"`);
  return text.split('\n')[0]!;
}

/** A TCP connection from `ns` (busybox nc): what the server sends first. */
async function nc(ns: string, address: string, port: number): Promise<string> {
  const r = await netns.run(ns, '/bin/busybox', ['nc', '-w', '5', address, String(port)], { input: '', timeoutMs: 10_000 });
  if (!r.stdout.trim()) throw new Error(`nothing from ${address.includes(':') ? `[${address}]` : address}:${port} (${r.stderr.trim() || `exit ${String(r.code)}`})`);
  return r.stdout;
}

/** An HTTP GET from `ns` (busybox wget). */
async function http(ns: string, url: string): Promise<string> {
  const r = await netns.run(ns, '/bin/busybox', ['wget', '-q', '-O-', url], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`GET ${url}: ${r.stderr.trim() || `exit ${String(r.code)}`}`);
  return r.stdout;
}

/**
 * Checks web.lan's names with `lookup` (busybox nslookup's arguments → its output) against both
 * bridge addresses: A 192.168.0.100, AAAA 2001:db8:8:5688::100, both addresses back to web.lan.
 */
async function webNames(lookup: (args: string[]) => Promise<string>): Promise<string> {
  const wants: Array<[string[], RegExp]> = [];
  for (const server of ['192.168.0.1', '2001:db8:8:5688::1']) {
    wants.push(
      [['-type=A', 'web.lan', server], /^Address:\s+192\.168\.0\.100\s*$/m],
      [['-type=AAAA', 'web.lan', server], /^Address:\s+2001:db8:8:5688::100\s*$/m],
      [['192.168.0.100', server], /name = web\.lan\s*$/m],
      [['2001:db8:8:5688::100', server], /name = web\.lan\s*$/m],
    );
  }
  for (const [args, want] of wants) {
    const got = await lookup(args);
    if (!want.test(got)) throw new Error(`nslookup ${args.join(' ')}: ${got.trim().slice(0, 80)}`);
  }
  return 'A 192.168.0.100, AAAA 2001:db8:8:5688::100, PTR web.lan (both servers)';
}

async function waitFor(file: string, marker: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (existsSync(file) && readFileSync(file, 'utf8').includes(marker)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no "${marker}" in ${file} after ${timeoutMs} ms`);
}

/**
 * iptables-save text without its empty tables: those with nothing but built-in chains (upper
 * case) whose policy is ACCEPT, and no rule (what legacy iptables leaves of a table it cannot
 * delete).
 */
function withoutEmptyTables(save: string): string {
  return save.replace(/^\*\S+\n((?::[A-Z]+ ACCEPT *\n)*)COMMIT\n?/gm, '');
}
