/**
 * Prometheus metrics of `vmhost run` (`--metrics 127.0.0.1:9464` or a Unix socket path): the text
 * exposition format written here (no dependency: a dozen families), served by node:http at
 * `/metrics`. Per VM: up, restarts, crash loop, the last exit; per TAP: rx/tx bytes and packets
 * (rtnetlink IFLA_STATS64, read at each scrape); per published port: the packets and bytes of its
 * DNAT rule (iptables-save -c, read at each scrape: the first packet of each connection, so the
 * packet count is connections; a connection's later packets pass the conntrack shortcut ahead of
 * it); repairs by entry kind; service restarts; learnt IPv6 addresses.
 * @module
 */
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { netns as ns, ValidationError, type LinkStats, type NetnsRef } from '@vmhost/net';

/** One sample: labels and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** One metric family. */
export interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** The text exposition format (version 0.0.4) of `families`. */
export function renderMetrics(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      const value = Number.isFinite(s.value) ? String(s.value) : s.value > 0 ? '+Inf' : s.value < 0 ? '-Inf' : 'NaN';
      out.push(`${f.name}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${value}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The TAP families from link counters; `vmOf` maps a TAP to its VM. */
export function tapFamilies(stats: readonly LinkStats[], vmOf: (tap: string) => string | undefined): Family[] {
  const fam = (name: string, help: string, pick: (s: LinkStats) => number): Family => ({
    name,
    help,
    type: 'counter',
    samples: stats.flatMap((s) => {
      const vm = vmOf(s.name);
      return vm === undefined ? [] : [{ labels: { vm, tap: s.name }, value: pick(s) }];
    }),
  });
  return [
    fam('vmhost_tap_rx_bytes_total', "Bytes the host received on the VM's TAP (what the VM sent).", (s) => s.rxBytes),
    fam('vmhost_tap_tx_bytes_total', "Bytes the host sent on the VM's TAP (what the VM received).", (s) => s.txBytes),
    fam('vmhost_tap_rx_packets_total', "Packets the host received on the VM's TAP.", (s) => s.rxPackets),
    fam('vmhost_tap_tx_packets_total', "Packets the host sent on the VM's TAP.", (s) => s.txPackets),
  ];
}

/** One rule's counters from `iptables-save -c`. */
export interface ForwardCounter {
  group: string;
  family: 4 | 6;
  protocol: string;
  port: string;
  packets: number;
  bytes: number;
}

/**
 * The counters of the owner's per-VM forward rules in `iptables-save -c` output: the DNAT rules of
 * the `-D` group chains (IPv4) or the accepts of the `-F` group chains (IPv6, routed mode), by
 * group, protocol and public port (rules of the same key, such as a hairpin copy, are added).
 */
export function forwardCounters(save: string, owner: string, family: 4 | 6): ForwardCounter[] {
  const kind = family === 4 ? 'D' : 'F';
  const re = new RegExp(`^\\[(\\d+):(\\d+)\\] -A VMHOST-${owner}-(\\w+)-${kind} (.*)$`);
  const byKey = new Map<string, ForwardCounter>();
  for (const line of save.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const rule = m[4]!;
    const proto = /(?:^| )-p (\w+)/.exec(rule)?.[1];
    const port = / --dport (\d+(?::\d+)?)/.exec(rule)?.[1];
    if (proto === undefined || port === undefined) continue;
    const key = `${m[3]}|${proto}|${port}`;
    const c = byKey.get(key) ?? { group: m[3]!, family, protocol: proto, port, packets: 0, bytes: 0 };
    c.packets += Number(m[1]);
    c.bytes += Number(m[2]);
    byKey.set(key, c);
  }
  return [...byKey.values()];
}

/** The forward families from rule counters; `vmOf` maps a firewall group to its VM. */
export function forwardFamilies(counters: readonly ForwardCounter[], vmOf: (group: string) => string | undefined): Family[] {
  const samples = (pick: (c: ForwardCounter) => number): Sample[] =>
    counters.flatMap((c) => {
      const vm = vmOf(c.group);
      return vm === undefined ? [] : [{ labels: { vm, family: String(c.family), protocol: c.protocol, port: c.port }, value: pick(c) }];
    });
  return [
    { name: 'vmhost_forward_packets_total', help: "Packets matched by a published port's DNAT (IPv4) or accept (IPv6) rule: the first of each connection.", type: 'counter', samples: samples((c) => c.packets) },
    { name: 'vmhost_forward_bytes_total', help: "Bytes of those packets (iptables-save -c of the owner's chains).", type: 'counter', samples: samples((c) => c.bytes) },
  ];
}

/** Reads `iptables-save -c -t nat` and `ip6tables-save -c -t filter` in `netns` (programs by argument array). */
export async function readForwardCounters(owner: string, netns: NetnsRef | undefined): Promise<ForwardCounter[]> {
  const run = async (cmd: string, args: string[]): Promise<string> => {
    const r = netns !== undefined ? await ns.run(netns, cmd, args, { timeoutMs: 10_000 }) : await runHere(cmd, args);
    return r.code === 0 ? r.stdout : '';
  };
  const [v4, v6] = await Promise.all([run('iptables-save', ['-c', '-t', 'nat']), run('ip6tables-save', ['-c', '-t', 'filter'])]);
  return [...forwardCounters(v4, owner, 4), ...forwardCounters(v6, owner, 6)];
}

async function runHere(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => resolve({ code: err ? 1 : 0, stdout }));
  });
}

/** Where `--metrics` listens: a TCP address or a Unix socket path. */
export type MetricsAddress = { host: string; port: number } | { path: string };

/**
 * Parses `--metrics`: `HOST:PORT` (an IP address: `127.0.0.1:9464`, `[::1]:9464`) or an absolute
 * Unix socket path.
 * @throws {ValidationError} naming the field `metrics`.
 */
export function parseMetricsAddress(v: string): MetricsAddress {
  if (typeof v !== 'string' || v.length === 0) throw new ValidationError('metrics', v, 'expected HOST:PORT or an absolute socket path');
  if (v.startsWith('/')) {
    if (Buffer.byteLength(v) > 107 || v.includes('\0')) throw new ValidationError('metrics', v, 'a Unix socket path of at most 107 bytes');
    return { path: v };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(v);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || isIP(host) === 0 || (m[1] !== undefined && isIP(host) !== 6) || port < 1 || port > 65535) {
    throw new ValidationError('metrics', v, 'expected IP:PORT (127.0.0.1:9464, [::1]:9464) or an absolute Unix socket path');
  }
  return { host, port };
}

/**
 * Serves `render()` at GET /metrics on `addr` (a Unix socket is made 0600; a stale socket there is
 * replaced, anything else refused). Resolves once listening.
 */
export async function serveMetrics(addr: MetricsAddress, render: () => Promise<string>): Promise<Server> {
  // loaded here: every other command of the CLI would pay for node:http at its start
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    render().then(
      (body) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  if ('path' in addr) {
    let st;
    try {
      st = lstatSync(addr.path);
    } catch {
      st = undefined;
    }
    if (st && !st.isSocket()) throw new ValidationError('metrics', addr.path, 'exists and is not a socket');
    if (st) rmSync(addr.path, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in addr) server.listen(addr.path, () => resolve());
    else server.listen(addr.port, addr.host, () => resolve());
  });
  if ('path' in addr) chmodSync(addr.path, 0o600);
  return server;
}
