// The test network of the firewall tests, in fresh namespaces (always removed afterwards):
//
//   wan (203.0.113.1, 2001:db8::1)
//    | eth0 ↔ eth0 (veth)
//   host (eth0: 203.0.113.2, 2001:db8::2; br0: 192.168.0.1, 2001:db8:1::1)   ← the firewall runs here
//    | br0 ── vm0 ↔ eth0   vm  (192.168.0.100, 2001:db8:1::100, gateway the host)
//    |     └─ vm1 ↔ eth0   vm2 (192.168.0.200, 2001:db8:1::200, gateway the host)
//
// wan has no route to the VM subnets: it reaches the VMs only through the host's DNAT, and the
// VMs reach wan only through masquerade. The namespaces, links, addresses and routes are made by
// the lab kit @vmhost/lab (no `ip` spawned); its IPv6 addresses skip
// DAD, so they are usable at once.
// Also: a tiny TCP server/client in Node, run inside the namespaces, that reports the peer address.
import type { TestContext } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { sh } from '../helpers/ns.js';

/** Prefix of the firewall tests' lab namespaces (swept by scripts/run-tests.mjs). */
export const FW_LAB_PREFIX = 'vmhl-fw-';

export interface Topology {
  wan: string;
  host: string;
  vm: string;
  vm2: string;
}

export const ADDR = {
  wan4: '203.0.113.1',
  wan6: '2001:db8::1',
  host4: '203.0.113.2',
  host6: '2001:db8::2',
  br4: '192.168.0.1',
  br6: '2001:db8:1::1',
  vm4: '192.168.0.100',
  vm6: '2001:db8:1::100',
  vm2v4: '192.168.0.200',
  vm2v6: '2001:db8:1::200',
} as const;

/** Builds the topology; everything is removed when the test ends. */
export async function topology(t: TestContext): Promise<Topology> {
  const gateways = [{ to: 'default', via: ADDR.br4 }, { to: 'default', via: ADDR.br6 }];
  const lab = await Lab.create({
    prefix: FW_LAB_PREFIX,
    namespaces: {
      wan: {},
      host: { bridges: { br0: {} }, addresses: { br0: [`${ADDR.br4}/24`, `${ADDR.br6}/64`] } },
      vm: {},
      vm2: {},
    },
    links: [
      { a: { ns: 'host', name: 'eth0' }, b: { ns: 'wan', name: 'eth0' }, addresses: { a: [`${ADDR.host4}/24`, `${ADDR.host6}/64`], b: [`${ADDR.wan4}/24`, `${ADDR.wan6}/64`] } },
      { a: { ns: 'host', name: 'vm0', master: 'br0' }, b: { ns: 'vm', name: 'eth0' }, addresses: { b: [`${ADDR.vm4}/24`, `${ADDR.vm6}/64`] } },
      { a: { ns: 'host', name: 'vm1', master: 'br0' }, b: { ns: 'vm2', name: 'eth0' }, addresses: { b: [`${ADDR.vm2v4}/24`, `${ADDR.vm2v6}/64`] } },
    ],
    routes: { vm: gateways, vm2: gateways },
  });
  t.after(() => lab.close());
  return { wan: lab.ns('wan'), host: lab.ns('host'), vm: lab.ns('vm'), vm2: lab.ns('vm2') };
}

const SERVER = `
const net = require('node:net');
const ports = process.argv.slice(1).map(Number);
let ready = 0;
for (const port of ports) {
  const srv = net.createServer((s) => { s.end(JSON.stringify({ port, peer: s.remoteAddress.replace(/^::ffff:/, '') }) + '\\n'); });
  srv.listen({ port, host: '::', ipv6Only: false }, () => { if (++ready === ports.length) process.stdout.write('ready\\n'); });
}
`;

const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let data = '';
s.setTimeout(5000, () => { process.stdout.write(JSON.stringify({ error: 'ETIMEDOUT' })); process.exit(0); });
s.on('data', (d) => { data += d; });
s.on('end', () => { process.stdout.write(data.trim()); process.exit(0); });
s.on('error', (e) => { process.stdout.write(JSON.stringify({ error: e.code })); process.exit(0); });
`;

/** Starts a TCP server in `ns` on `ports` (IPv4 and IPv6) that answers with the peer's address; stopped when the test ends. */
export async function startServer(t: TestContext, ns: string, ports: number[]): Promise<void> {
  const child: ChildProcess = netns.spawn(ns, process.execPath, ['-e', SERVER, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`server in ${ns} exited ${String(code)}: ${err}`)));
  });
}

/** What a connection attempt gave: the server's answer, or the error code. */
export interface ConnectResult {
  port?: number;
  peer?: string;
  error?: string;
}

/** Connects from `ns` to `host:port` and returns what the server said (or the error). */
export async function connect(ns: string, host: string, port: number): Promise<ConnectResult> {
  const out = await sh(ns, process.execPath, ['-e', CLIENT, host, String(port)]);
  return JSON.parse(out) as ConnectResult;
}

/** iptables-save, ip6tables-save and ebtables-save of `ns`, without the comment lines and with counters zeroed. */
export async function saveStripped(ns: string): Promise<string> {
  const strip = (s: string): string =>
    s
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
      .join('\n');
  return `${strip(await sh(ns, 'iptables-save', []))}\n--- ip6tables ---\n${strip(await sh(ns, 'ip6tables-save', []))}\n--- ebtables ---\n${strip(await sh(ns, 'ebtables-nft-save', []))}`;
}
