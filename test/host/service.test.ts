// The pure parts of `vmhost run`: exit classification and restart decisions (policy.ts), the
// mapping of rtnetlink notifications to entries (drift.ts), IPv6 learning (learn6.ts), the
// systemd unit (systemd.ts), the status file's reader (status-file.ts) and the metrics text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Neighbor, RtnlEvent } from '@vmhost/net';
import { classifyExit, Restarts } from '../../packages/host/src/service/policy.js';
import { driftIndex, driftOf } from '../../packages/host/src/service/drift.js';
import { Learner } from '../../packages/host/src/service/learn6.js';
import { systemdQuote, systemdUnit } from '../../packages/host/src/service/systemd.js';
import { readServiceStatus, writeServiceStatus } from '../../packages/host/src/service/status-file.js';
import { renderMetrics } from '../../packages/host/src/service/metrics.js';
import { desiredOptions } from '../../packages/host/src/engine/context.js';
import { desiredState, firewallModel } from '../../packages/host/src/engine/desired.js';
import { parseHostFile } from '../../packages/host/src/spec/parse.js';
import type { ServiceStatusFile } from '../../packages/host/src/service/types.js';

const TUNING = { backoffMs: 1000, backoffMaxMs: 8000, crashLoopCount: 5, crashLoopWindowMs: 600_000 };

test('classifyExit: vm stop, panic, guest poweroff, host quit, host-error, a death without SHUTDOWN, pid only', () => {
  const base = { qmp: true, panicked: false, stoppedByVmStop: false };
  assert.equal(classifyExit({ ...base, stoppedByVmStop: true, shutdown: { guest: true, reason: 'guest-shutdown' } }), 'stopped');
  assert.equal(classifyExit({ ...base, panicked: true }), 'panic');
  assert.equal(classifyExit({ ...base, shutdown: { guest: true, reason: 'guest-panic' } }), 'panic');
  assert.equal(classifyExit({ ...base, shutdown: { guest: true, reason: 'guest-shutdown' } }), 'poweroff');
  assert.equal(classifyExit({ ...base, shutdown: { guest: true, reason: 'guest-reset' } }), 'poweroff');
  assert.equal(classifyExit({ ...base, shutdown: { guest: false, reason: 'host-qmp-quit' } }), 'host');
  assert.equal(classifyExit({ ...base, shutdown: { guest: false, reason: 'host-signal' } }), 'host');
  assert.equal(classifyExit({ ...base, shutdown: { guest: false, reason: 'host-error' } }), 'crash');
  assert.equal(classifyExit(base), 'crash');
  assert.equal(classifyExit({ ...base, qmp: false }), 'unknown');
});

test('Restarts: the policies; the first restart at once, then doubling up to the maximum; the crash loop given up; a reset forgets it', () => {
  const r = new Restarts(TUNING, 'on-failure');
  assert.deepEqual(r.decide('poweroff', 0), { action: 'leave', why: 'the guest powered off; restart: on-failure' });
  assert.deepEqual(r.decide('host', 0), { action: 'leave', why: 'stopped from the host (QMP quit or a signal to QEMU); restart: on-failure' });
  assert.deepEqual(r.decide('stopped', 0, 'always'), { action: 'leave', why: 'stopped by vmhost vm stop' });
  assert.equal(r.decide('crash', 0, 'never').action, 'leave');
  assert.equal(r.decide('poweroff', 0, 'always').action, 'restart');
  const delays: number[] = [];
  let now = 0;
  for (let i = 0; i < 5; i++) {
    const d = r.decide('crash', now);
    assert.equal(d.action, 'restart');
    if (d.action !== 'restart') return;
    assert.equal(d.attempt, i + 1);
    delays.push(d.delayMs);
    now += d.delayMs + 10;
    r.record(now);
  }
  assert.deepEqual(delays, [0, 1000, 2000, 4000, 8000]);
  assert.deepEqual(r.decide('panic', now), { action: 'give-up', restarts: 5 });
  assert.equal(r.gaveUp, true);
  assert.equal(r.total, 5);
  // the window slides: restarts older than it no longer count
  assert.equal(r.decide('crash', now + 600_000).action, 'restart');
  r.reset();
  assert.equal(r.gaveUp, false);
  assert.deepEqual(r.decide('crash', now), { action: 'restart', delayMs: 0, attempt: 1 });
  // a service (no policy): always restarted, never given up
  const s = new Restarts(TUNING, undefined);
  for (let i = 0; i < 20; i++) {
    const d = s.decide('unknown', i);
    assert.equal(d.action, 'restart');
    s.record(i);
  }
  assert.equal(s.delay(20), 8000);
});

const ROOT = join(import.meta.dirname, '..', '..');
const HOST = `name: lab
uplink: eth0
bridge: { name: br0, veth: { name: veth0, peer: veth1 }, ipv4: 192.168.0.1/24, ipv6: "2001:db8::1/64" }
ipv6: { prefix: "2001:db8::/64", mode: routed, learn: true, learnLimit: 2 }
vms:
  - { name: web, mac: "52:54:00:00:00:01", ipv4: 192.168.0.10, ipv6: "2001:db8::10", isolation: false, forwards: [{ port: 2222, toPort: 22 }], kernel: /k, initrd: /i }
  - { name: db, mac: "52:54:00:00:00:02", ipv4: 192.168.0.11, isolation: false, kernel: /k, initrd: /i }
`;

test('driftOf: a host link changed or deleted, an address, route or proxy neighbour deleted, a route replaced; others ignored', () => {
  const host = parseHostFile(HOST, { baseDir: ROOT });
  const ix = driftIndex(desiredState(host, desiredOptions({ dir: '/run/x', dataDir: '/var/lib/x' })).map((d) => d.entry), 'eth0', 'br0');
  const link = (name: string, action: 'new' | 'del'): RtnlEvent => ({ type: 'link', action, link: { name } }) as unknown as RtnlEvent;
  assert.deepEqual(driftOf(ix, link('br0', 'del')), { ids: ['link:br0'], what: 'link br0 deleted' });
  const tap = host.vms[0]!.tap;
  assert.deepEqual(driftOf(ix, link(tap, 'new')), { ids: [`link:${tap}`], what: `link ${tap} changed` });
  assert.deepEqual(driftOf(ix, link('veth1', 'del'))?.ids, ['link:veth0'], 'the peer of the veth names the veth');
  assert.equal(driftOf(ix, link('eth0', 'del')), undefined, 'the uplink is not the host\'s');
  assert.equal(driftOf(ix, link('docker0', 'del')), undefined);
  const addr = (action: 'new' | 'del', link: string, cidr: string): RtnlEvent => ({ type: 'address', action, address: { link, cidr } }) as unknown as RtnlEvent;
  assert.deepEqual(driftOf(ix, addr('del', 'br0', '192.168.0.1/24'))?.ids, ['address:br0:192.168.0.1/24']);
  assert.equal(driftOf(ix, addr('new', 'br0', '192.168.0.1/24')), undefined, 'an address added is no drift');
  const route = (action: 'new' | 'del', to: string, dev: string): RtnlEvent => ({ type: 'route', action, route: { to, dev } }) as unknown as RtnlEvent;
  assert.deepEqual(driftOf(ix, route('del', '2001:db8::10/128', 'br0'))?.ids, ['route:2001:db8::10/128']);
  assert.equal(driftOf(ix, route('new', '2001:db8::10/128', 'br0')), undefined, 'our own route made again');
  assert.deepEqual(driftOf(ix, route('new', '2001:db8::10/128', 'eth0'))?.what, 'route 2001:db8::10/128 replaced (dev eth0)');
  const neigh = (action: 'new' | 'del', to: string, proxy: boolean): RtnlEvent => ({ type: 'neighbor', action, neighbor: { to, dev: 'eth0', proxy } }) as unknown as RtnlEvent;
  assert.deepEqual(driftOf(ix, neigh('del', '2001:db8::10', true))?.ids, ['proxyNeighbor:eth0:2001:db8::10']);
  assert.equal(driftOf(ix, neigh('del', '2001:db8::10', false)), undefined, 'an ordinary neighbour is not ours');
  assert.equal(driftOf(ix, { type: 'overrun' } as RtnlEvent), undefined);
});

test('Learner: a VM\'s other global addresses learnt from the bridge\'s neighbours, up to the limit; forgotten when they fail; a new host file drops those out of the prefix', () => {
  const host = parseHostFile(HOST, { baseDir: ROOT });
  const l = new Learner(host);
  assert.equal(l.enabled, true);
  const n = (to: string, lladdr: string | null, state: string[] = ['reachable']): Neighbor => ({ family: 6, to, dev: 'br0', lladdr, state, proxy: false }) as unknown as Neighbor;
  assert.deepEqual(l.feed(n('2001:db8::10', '52:54:00:00:00:01'), false), [], 'its own address is not learnt');
  assert.deepEqual(l.feed(n('2001:db8::1', '52:54:00:00:00:01'), false), [], 'nor the bridge\'s');
  assert.deepEqual(l.feed(n('2001:db9::5', '52:54:00:00:00:01'), false), [], 'nor one outside the prefix');
  assert.deepEqual(l.feed(n('2001:db8::99', '52:54:00:00:00:99'), false), [], 'nor one of an unknown MAC');
  assert.deepEqual(l.feed(n('2001:db8::a', '52:54:00:00:00:01'), false), [{ vm: 'web', address: '2001:db8::a', action: 'learn' }]);
  assert.deepEqual(l.feed(n('2001:db8::a', '52:54:00:00:00:01'), false), [], 'known already');
  assert.deepEqual(l.feed(n('2001:db8::b', '52:54:00:00:00:01'), false), [{ vm: 'web', address: '2001:db8::b', action: 'learn' }]);
  assert.deepEqual(l.feed(n('2001:db8::c', '52:54:00:00:00:01'), false), [{ vm: 'web', address: '2001:db8::c', action: 'skip' }], 'over the limit of 2');
  assert.deepEqual(l.feed(n('2001:db8::c', '52:54:00:00:00:01'), false), [], 'told once');
  assert.deepEqual(l.feed(n('2001:db8::d', '52:54:00:00:00:02'), false), [{ vm: 'db', address: '2001:db8::d', action: 'learn' }], 'db has no own IPv6 and learns');
  assert.deepEqual(l.feed(n('2001:db8::a', '52:54:00:00:00:01', ['failed']), false), [{ vm: 'web', address: '2001:db8::a', action: 'unlearn' }]);
  assert.deepEqual(l.feed(n('2001:db8::d', null), true), [{ vm: 'db', address: '2001:db8::d', action: 'unlearn' }]);
  const eff = l.effective(host);
  assert.deepEqual(eff.vms.map((v) => v.learnedIpv6), [['2001:db8::b'], undefined]);
  const ids = desiredState(eff, desiredOptions({ dir: '/run/x', dataDir: '/var/lib/x' })).map((d) => d.entry.id);
  assert.ok(ids.includes('proxyNeighbor:eth0:2001:db8::b') && ids.includes('route:2001:db8::b/128'), ids.join(' '));
  assert.deepEqual(l.idsOf('2001:db8::b'), ['proxyNeighbor:eth0:2001:db8::b', 'route:2001:db8::b/128']);
  // web publishes port 22: the firewall accepts it to the learnt address too, and is among its entries
  assert.deepEqual(l.idsOf('2001:db8::b', 'web'), ['proxyNeighbor:eth0:2001:db8::b', 'route:2001:db8::b/128', 'firewall']);
  assert.deepEqual(l.idsOf('2001:db8::e', 'db'), ['proxyNeighbor:eth0:2001:db8::e', 'route:2001:db8::e/128'], 'db publishes nothing');
  const accepted = (h: typeof host): string[] => (firewallModel(h).forward ?? []).filter((r) => r.comment === 'web published (IPv6)').map((r) => `${r.destination} ${r.port}`);
  assert.deepEqual(accepted(eff), ['2001:db8::10 22', '2001:db8::b 22']);
  assert.deepEqual(accepted(host), ['2001:db8::10 22'], 'before learning: its own address only');
  const off = parseHostFile(HOST.replace('learn: true', 'learn: false'), { baseDir: ROOT });
  assert.deepEqual(l.setHost(off), [{ vm: 'web', address: '2001:db8::b', action: 'unlearn' }], 'learning off forgets all');
  assert.deepEqual(l.snapshot(), {});
});

test('systemdUnit: the sections, ExecStart quoted for systemd, KillMode=process, the directories, the stop timeout by onStop', () => {
  assert.equal(systemdQuote('/usr/bin/node'), '/usr/bin/node');
  assert.equal(systemdQuote('/srv/my host.yaml'), '"/srv/my host.yaml"');
  assert.equal(systemdQuote('a$b%c"d'), '"a$$b%%c\\"d"');
  const unit = systemdUnit({ node: '/usr/bin/node', cli: '/opt/vmhost/cli.js', file: '/etc/vmhost/web host.yaml', name: 'web', onStop: 'shutdown', args: ['--netns', 'lab'], kill: '/bin/kill' });
  const lines = unit.split('\n');
  assert.deepEqual(lines.filter((l) => l.startsWith('[')), ['[Unit]', '[Service]', '[Install]']);
  assert.ok(lines.includes('ExecStart=/usr/bin/node /opt/vmhost/cli.js --netns lab run "/etc/vmhost/web host.yaml"'), unit);
  for (const want of ['After=network-online.target', 'Wants=network-online.target', 'Restart=on-failure', 'KillMode=process', 'TimeoutStopSec=90s', 'RuntimeDirectory=vmhost', 'RuntimeDirectoryPreserve=yes', 'StateDirectory=vmhost', 'ExecReload=/bin/kill -HUP $MAINPID', 'WantedBy=multi-user.target']) {
    assert.ok(lines.includes(want), `${want} in\n${unit}`);
  }
  assert.ok(systemdUnit({ node: '/n', cli: '/c', file: '/f', name: 'x', onStop: 'keep', args: [], kill: '/bin/kill' }).includes('TimeoutStopSec=30s'));
});

test('the status file: written 0600 and read back; a dead pid is not running; a file of another shape is ignored; a writable one refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-svc-status-'));
  try {
    const s: ServiceStatusFile = {
      version: 1, pid: process.pid, startTime: 0, host: 'lab', state: 'running', since: 'a', updatedAt: 'b',
      vms: { web: { policy: 'always', running: true, restarts: 2, crashLoop: false } }, services: {}, repairs: { byKind: { link: 1 }, last: [] },
    };
    writeServiceStatus(dir, s);
    const v = readServiceStatus(dir);
    assert.deepEqual(v?.status, s);
    assert.equal(v?.running, false, 'the start time does not match this process');
    writeFileSync(join(dir, 'service.json'), '{"version":2}', { mode: 0o600 });
    assert.equal(readServiceStatus(dir), undefined);
    chmodSync(join(dir, 'service.json'), 0o666);
    assert.throws(() => readServiceStatus(dir), { code: 'EHOST_STATE_UNSAFE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('renderMetrics: the text exposition format, labels escaped', () => {
  const text = renderMetrics([{ name: 'vmhost_vm_up', help: 'Whether the VM runs.', type: 'gauge', samples: [{ labels: { vm: 'we"b' }, value: 1 }] }]);
  assert.equal(text, '# HELP vmhost_vm_up Whether the VM runs.\n# TYPE vmhost_vm_up gauge\nvmhost_vm_up{vm="we\\"b"} 1\n');
});

test('RepairBatch: a burst is handed over once, with every id and trigger (each trigger once); full when asked', async () => {
  const { RepairBatch } = await import('../../packages/host/src/service/batch.js');
  let fired = 0;
  let done!: () => void;
  const firedOnce = new Promise<void>((r) => (done = r));
  const b = new RepairBatch({ debounceMs: 20, maxDebounceMs: 1000 }, () => {
    fired++;
    done();
  });
  b.add(['link:br0'], 'link br0 deleted');
  b.add(['address:br0:10.0.0.1/24', 'link:br0'], 'address 10.0.0.1/24 on br0 deleted');
  b.add([], 'link br0 deleted', true);
  assert.equal(b.has('link:br0'), true);
  await firedOnce;
  assert.equal(fired, 1);
  const got = b.take();
  assert.deepEqual([...got.ids], ['link:br0', 'address:br0:10.0.0.1/24']);
  assert.equal(got.full, true);
  assert.equal(got.trigger, 'link br0 deleted; address 10.0.0.1/24 on br0 deleted');
  assert.deepEqual(b.take(), { ids: new Set(), full: false, trigger: '' });
  b.close();
});
