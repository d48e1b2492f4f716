// The vmhost CLI against fake engine functions: output, exit codes, --json shapes, help, usage
// errors, spec errors, apply failures and what reaches the engine (names, HostOptions).
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { ValidationError, VmhostError } from '@vmhost/net';
import { followFile, formatTable, main, type CliDeps } from '../../packages/host/src/cli/index.js';
import { GuestBuildError, HostAbortedError, HostApplyError, HostOwnerError, HostPreconditionError, HostSpecError, HostStateError } from '../../packages/host/src/errors.js';
import { GUEST_MARKERS } from '../../packages/host/src/guests/test-guest/files.js';
import type { Conflict, HostOptions, HostStatus, Plan, Report, ResolvedHost, Step } from '../../packages/host/src/types.js';

const HOST: ResolvedHost = {
  name: 'lab',
  uplink: 'eth0',
  qemu: { user: 'auto' },
  bridge: {
    name: 'br0',
    ipv4: { family: 4, address: '192.168.0.1', prefixLength: 24, cidr: '192.168.0.1/24', network: '192.168.0.0/24' },
    stp: false,
    adopt: false,
  },
  vms: [],
  onStop: 'shutdown',
};

const STEPS: Step[] = [
  { id: 'link:br0', action: 'create', description: 'create bridge br0 (mac de:ad:be:ef:24:31, stp off)' },
  { id: 'address:br0:192.168.0.1/24', action: 'create', description: 'add address 192.168.0.1/24 to br0' },
  { id: 'sysctl:net.ipv4.ip_forward', action: 'set', description: 'set net.ipv4.ip_forward = 1' },
  { id: 'link:old0', action: 'delete', description: 'delete link old0' },
  { id: 'vm:web', action: 'start', description: 'start vm web' },
];

const STATUS: HostStatus = {
  name: 'lab',
  netns: 'labns',
  bridge: { name: 'br0', exists: true, up: true, addresses: ['192.168.0.1/24', '2001:db8::1/64'] },
  uplink: { name: 'eth0', exists: true, up: true, addresses: ['203.0.113.5/24'] },
  vms: [
    { name: 'web', running: true, qmpStatus: 'running', pid: 4242, mac: '52:54:00:12:34:56', ipv4: '192.168.0.10', ipv6: '2001:db8::10', tap: 'vmt-web' },
    { name: 'db', running: false, mac: '52:54:00:12:34:57', ipv4: '192.168.0.11', tap: 'vmt-db' },
  ],
  forwards: [
    { vm: 'web', protocol: 'tcp', port: 8080, to: '192.168.0.10', toPort: 80 },
    { vm: 'web', protocol: 'udp', port: [6000, 6010], to: '192.168.0.10', toPort: 6000 },
  ],
  ipv6: { mode: 'routed', prefix: '2001:db8::/64', proxyNeighbors: ['2001:db8::10'], routes: ['2001:db8::10/128 dev br0'] },
  dnsmasq: { running: true, pid: 777 },
  leases: [
    { expires: new Date('2030-01-02T03:04:05Z'), mac: '52:54:00:12:34:56', ipv4: '192.168.0.10', hostname: 'web' },
    { expires: null, mac: '52:54:00:12:34:57', ipv4: '192.168.0.11', hostname: null },
  ],
  applied: true,
};

type Call = { fn: string; args: unknown[] };

/** Fake deps that record their calls; `over` replaces single functions. */
function fakeDeps(over: Partial<CliDeps> = {}): { deps: CliDeps; calls: Call[] } {
  const calls: Call[] = [];
  const rec = <T>(fn: string, args: unknown[], value: T): T => {
    calls.push({ fn, args });
    return value;
  };
  const report = (steps: Step[]): Report => ({ steps: steps.map((s) => ({ ...s, ms: 3 })), changed: steps.length > 0, ms: 1500 });
  const deps: CliDeps = {
    loadHostFile: async (path) => rec('loadHostFile', [path], HOST),
    plan: async (host, options) => rec('plan', [host, options], { steps: STEPS, conflicts: [] }),
    apply: async (host, options) => {
      rec('apply', [host, options], undefined);
      STEPS.forEach((step, index) => {
        options?.onProgress?.({ type: 'step-start', step, index, total: STEPS.length });
        options?.onProgress?.({ type: 'step-done', step, index, total: STEPS.length, ms: 12 });
      });
      return report(STEPS);
    },
    down: async (host, options) => {
      rec('down', [host, options], undefined);
      const step: Step = { id: 'link:br0', action: 'delete', description: 'delete bridge br0' };
      options?.onProgress?.({ type: 'step-start', step, index: 0, total: 1 });
      options?.onProgress?.({ type: 'step-done', step, index: 0, total: 1, ms: 7 });
      return report([step]);
    },
    recover: async (host, options) =>
      rec('recover', [host, options], { file: '/run/vmhost/lab/state.json', changed: true, movedAside: '/run/vmhost/lab/state.json.corrupt-x', records: [{ id: 'link:br0', description: 'link br0' }], notices: ['sysctl net.ipv4.ip_forward is 1'] }),
    status: async (host, options) => rec('status', [host, options], STATUS),
    startVm: async (host, name, options) => rec('startVm', [host, name, options], undefined),
    stopVm: async (host, name, options) => rec('stopVm', [host, name, options], { step: 'powerdown', ms: 1234 }),
    snapshotVm: async (host, name, options) =>
      rec('snapshotVm', [host, name, options], { vm: name, label: options?.label ?? 'snap-20240501-120000', live: true, takenAt: '2024-05-01T12:00:00.000Z', disks: [{ index: 0, frozen: '/var/lib/vm/web.qcow2', top: '/var/lib/vmhost/host/disks/web/d0-0123456789ab.qcow2' }], ms: 80 }),
    listVmSnapshots: async (host, name, options) =>
      rec('listVmSnapshots', [host, name, options], {
        vm: name,
        dir: '/var/lib/vmhost/host/disks/web',
        snapshots: [{ label: 's1', takenAt: '2024-05-01T12:00:00.000Z', disks: [0], bytes: 3 * 1024 * 1024 }],
        disks: [{ index: 0, mode: 'plain' as const, base: null, top: '/var/lib/vmhost/host/disks/web/d0-0123456789ab.qcow2', images: [
          { file: '/var/lib/vm/web.qcow2', label: 's1', takenAt: '2024-05-01T12:00:00.000Z', createdAt: null, bytes: 3 * 1024 * 1024, top: false },
          { file: '/var/lib/vmhost/host/disks/web/d0-0123456789ab.qcow2', label: null, takenAt: null, createdAt: '2024-05-01T12:00:00.000Z', bytes: 196_608, top: true },
        ] }],
        deleted: [],
        pending: null,
      }),
    rollbackVm: async (host, name, label, options) => rec('rollbackVm', [host, name, label, options], { vm: name, label, restarted: true, discarded: ['/x/d0-0123456789ab.qcow2'], ms: 2500 }),
    commitVm: async (host, name, options) => rec('commitVm', [host, name, options], { vm: name, label: options?.label ?? null, live: true, disks: [{ index: 0, into: '/var/lib/vm/web.qcow2', merged: 2 }], ms: 230 }),
    deleteVmSnapshot: async (host, name, label, options) => rec('deleteVmSnapshot', [host, name, label, options], { vm: name, label, live: false, ms: 40 }),
    consoleFile: (host, name, options) => rec('consoleFile', [host, name, options], '/nonexistent/console.log'),
    service: async (host, options) => {
      rec('service', [host, options], undefined);
      return {
        run: async () => {
          options.onEvent?.({ time: '2030-01-02T03:04:05.000Z', type: 'applied', message: 'host lab applied: 0 step(s) in 5 ms', ms: 5 });
          // runs until the signal is aborted, as the real one does
          if (options.signal && !options.signal.aborted) await new Promise((r) => options.signal!.addEventListener('abort', r, { once: true }));
          rec('service.stopped', [], undefined);
        },
        reload: (trigger) => void rec('reload', [trigger], undefined),
      };
    },
    runDemo: async (options) => {
      rec('runDemo', [options], undefined);
      options?.out?.('demo: all checks passed');
      return true;
    },
    buildGuest: async (options) => {
      options?.log?.('downloading linux-image-6.1.0-99-amd64');
      return rec('buildGuest', [options], {
        dir: options?.dir ?? '/root/.cache/vmhost/guest', kernel: 'k', vmlinux: 'v', initrd: 'i', append: 'console=ttyS0', markers: GUEST_MARKERS,
        package: 'linux-image-6.1.0-99-amd64', kernelVersion: '6.1.0-99-amd64', modules: ['virtio_net'], tool: true, built: true,
      });
    },
    ...over,
  };
  return { deps, calls };
}

async function run(argv: string[], over: Partial<CliDeps> = {}, isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  const { deps, calls } = fakeDeps(over);
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), isTTY }, deps);
  return { code, out: out.join('\n'), err: err.join('\n'), calls };
}

function call(calls: Call[], fn: string): Call {
  const c = calls.find((x) => x.fn === fn);
  assert.ok(c, `${fn} was not called (calls: ${calls.map((x) => x.fn).join(', ')})`);
  return c;
}

/** Runs `fn` with environment variables set (undefined: unset), restoring them afterwards. */
async function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (vals: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(vals)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(env);
  try {
    return await fn();
  } finally {
    set(saved);
  }
}

/** An error as @vmhost/net's NetlinkError makes them: `code` is the errno name, extack separate. */
function netlinkError(): Error {
  return Object.assign(new VmhostError('EEXIST', 'links.add br0: EEXIST (File exists)'), { extack: 'Device name already in use' });
}

/** An apply that fails at its third step after the first two are done. */
function failingApply(undoErrors: boolean): CliDeps['apply'] {
  return async (_host, options) => {
    const total = 4;
    for (const [index, step] of STEPS.slice(0, 2).entries()) {
      options?.onProgress?.({ type: 'step-start', step, index, total });
      options?.onProgress?.({ type: 'step-done', step, index, total, ms: 5 });
    }
    const failing = STEPS[2]!;
    const cause = netlinkError();
    options?.onProgress?.({ type: 'step-start', step: failing, index: 2, total });
    options?.onProgress?.({ type: 'step-failed', step: failing, index: 2, total, error: cause });
    const undone = [STEPS[1]!, STEPS[0]!];
    const errs = undoErrors ? [{ step: STEPS[0]!, error: Object.assign(new Error('links.del br0: EBUSY (Device or resource busy)'), { code: 'EBUSY' }) }] : [];
    throw new HostApplyError(failing, cause, undoErrors ? [STEPS[1]!] : undone, errs);
  };
}

// ------------------------------------------------------------------------------------- plan

test('plan prints the steps with their symbols and a summary', async () => {
  const r = await run(['plan', 'host.yaml']);
  assert.equal(r.code, 0);
  const lines = r.out.split('\n');
  assert.equal(lines[0], '+ create bridge br0 (mac de:ad:be:ef:24:31, stp off)');
  assert.ok(lines.includes('~ set net.ipv4.ip_forward = 1'));
  assert.ok(lines.includes('- delete link old0'));
  assert.ok(lines.includes('> start vm web'));
  assert.match(r.out, /Plan: 5 steps \(2 create, 1 set, 1 delete, 1 start\)/);
  assert.equal(call(r.calls, 'loadHostFile').args[0], 'host.yaml');
  assert.equal(r.err, '');
});

test('plan with nothing to do says "No changes."', async () => {
  const r = await run(['plan', 'host.yaml'], { plan: async () => ({ steps: [], conflicts: [] }) });
  assert.equal(r.code, 0);
  assert.match(r.out, /^No changes\./);
});

test('plan --detailed-exitcode: 0 without changes, 2 with changes pending', async () => {
  assert.equal((await run(['plan', 'host.yaml', '--detailed-exitcode'], { plan: async () => ({ steps: [], conflicts: [] }) })).code, 0);
  assert.equal((await run(['plan', '--detailed-exitcode', 'host.yaml'])).code, 2);
  assert.equal((await run(['plan', 'host.yaml'])).code, 0, 'without the option pending changes still exit 0');
  const failed = await run(['plan', 'host.yaml', '--detailed-exitcode'], { plan: async () => Promise.reject(new Error('boom')) });
  assert.equal(failed.code, 1);
});

test('plan --detailed-exitcode: every error is 1, a usage error and an invalid host file too (2 means changes only)', async () => {
  const usage: string[][] = [
    ['plan', '--detailed-exitcode'], // missing <file>
    ['plan', 'a.yaml', 'b.yaml', '--detailed-exitcode'],
    ['plan', 'a.yaml', '--detailed-exitcode', '--bogus'],
    ['apply', 'a.yaml', '--detailed-exitcode'], // not an option of apply
    ['--detailed-exitcode'],
  ];
  for (const argv of usage) {
    const r = await run(argv);
    assert.equal(r.code, 1, argv.join(' '));
    assert.match(r.err, /^Usage: vmhost /m, `${argv.join(' ')}: still a usage error on stderr`);
    assert.ok(!r.calls.some((c) => c.fn === 'plan'), argv.join(' '));
  }
  assert.equal((await run(['plan', 'a.yaml', '--bogus'])).code, 2, 'without the option a usage error stays 2');
  const problems = [{ path: 'uplink', value: 'bad name!', message: 'not an interface name' }];
  const invalid = { loadHostFile: async () => Promise.reject(new HostSpecError(problems, 'bad.yaml')) };
  const spec = await run(['plan', 'bad.yaml', '--detailed-exitcode'], invalid);
  assert.equal(spec.code, 1);
  assert.match(spec.err, /uplink/);
  assert.equal((await run(['plan', 'bad.yaml'], invalid)).code, 3, 'without the option an invalid file stays 3');
});

test('plan --json prints the Plan object', async () => {
  const r = await run(['plan', 'host.yaml', '--json']);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.out) as Plan, { steps: STEPS, conflicts: [] });
});

test('colours only on a terminal', async () => {
  assert.doesNotMatch((await run(['plan', 'host.yaml'])).out, /\x1b\[/);
  const tty = await withEnv({ NO_COLOR: undefined }, () => run(['plan', 'host.yaml'], {}, true));
  assert.match(tty.out, /\x1b\[32m\+\x1b\[0m create bridge br0/);
  const noColor = await withEnv({ NO_COLOR: '1' }, () => run(['plan', 'host.yaml'], {}, true));
  assert.doesNotMatch(noColor.out, /\x1b\[/);
});

// ------------------------------------------------------------------------------------ apply / down

test('apply prints progress per step on stderr and a summary on stdout', async () => {
  const r = await run(['apply', 'host.yaml']);
  assert.equal(r.code, 0);
  const progress = r.err.split('\n');
  assert.equal(progress.length, 5);
  assert.equal(progress[0], '[1/5] create bridge br0 (mac de:ad:be:ef:24:31, stp off) ... done (12 ms)');
  assert.equal(progress[4], '[5/5] start vm web ... done (12 ms)');
  assert.equal(r.out, 'Apply complete: 5 steps in 1.5 s.');
  const opts = call(r.calls, 'apply').args[1] as HostOptions;
  assert.equal(typeof opts.onProgress, 'function');
});

test('apply without changes says so', async () => {
  const r = await run(['apply', 'host.yaml'], { apply: async () => ({ steps: [], changed: false, ms: 4 }) });
  assert.equal(r.code, 0);
  assert.match(r.out, /^No changes\./);
});

test('apply --json prints the Report', async () => {
  const r = await run(['apply', 'host.yaml', '--json']);
  assert.equal(r.code, 0);
  const report = JSON.parse(r.out) as Report;
  assert.equal(report.changed, true);
  assert.equal(report.steps.length, 5);
  assert.deepEqual(report.steps[0], { ...STEPS[0], ms: 3 });
});

test('apply failure: failing step, error with errno name and kernel message, undone steps; exit 1', async () => {
  const r = await run(['apply', 'host.yaml'], { apply: failingApply(false) });
  assert.equal(r.code, 1);
  assert.match(r.err, /\[3\/4\] set net\.ipv4\.ip_forward = 1 \.\.\. FAILED: links\.add br0: EEXIST \(File exists\) \(kernel: Device name already in use\)/);
  assert.match(r.err, /apply failed at step 3 \(sysctl:net\.ipv4\.ip_forward\): set net\.ipv4\.ip_forward = 1/);
  assert.match(r.err, /error: links\.add br0: EEXIST \(File exists\) \(kernel: Device name already in use\)/);
  assert.match(r.err, /undone \(2 steps\):\n {4}\+ add address 192\.168\.0\.1\/24 to br0\n {4}\+ create bridge br0/);
  assert.match(r.err, /the host is as it was before/);
  assert.doesNotMatch(r.err, /half-applied/);
  assert.doesNotMatch(r.err, /at .*\.ts:\d+/, 'no stack without --debug');
});

test('apply failure when undoing failed too: exit 4 and a half-applied warning', async () => {
  const r = await run(['apply', 'host.yaml'], { apply: failingApply(true) });
  assert.equal(r.code, 4);
  assert.match(r.err, /undo failed for 1 step:\n {4}create bridge br0 \(mac de:ad:be:ef:24:31, stp off\): links\.del br0: EBUSY/);
  assert.match(r.err, /half-applied/);
  assert.match(r.err, /vmhost status host\.yaml/);
});

test('apply failure --json: { error: { name, message, step, undone, undoErrors } }', async () => {
  const r = await run(['apply', 'host.yaml', '--json'], { apply: failingApply(true) });
  assert.equal(r.code, 4);
  const { error } = JSON.parse(r.out) as { error: Record<string, unknown> };
  assert.equal(error.name, 'HostApplyError');
  assert.match(String(error.message), /EEXIST/);
  assert.equal(error.code, 'EEXIST');
  assert.deepEqual(error.step, STEPS[2]);
  assert.deepEqual(error.undone, [STEPS[1]]);
  assert.equal((error.undoErrors as unknown[]).length, 1);
  assert.equal(error.halfApplied, true);
});

test('errors are recognised by class, not by name: a look-alike of HostApplyError or HostSpecError is a plain error (exit 1)', async () => {
  const lookAlike = Object.assign(new Error('something else'), { name: 'HostApplyError', step: STEPS[0], undone: [], undoErrors: [] });
  const r = await run(['apply', 'host.yaml'], { apply: async () => Promise.reject(lookAlike) });
  assert.equal(r.code, 1);
  assert.equal(r.err, 'vmhost: apply: something else');
  const specLike = Object.assign(new Error('not a spec error'), { name: 'HostSpecError', problems: [{ path: 'x', message: 'y' }] });
  const s = await run(['plan', 'host.yaml'], { loadHostFile: async () => Promise.reject(specLike) });
  assert.equal(s.code, 1);
  assert.equal(s.err, 'vmhost: plan: not a spec error');
});

test('down prints progress like apply', async () => {
  const r = await run(['down', 'host.yaml']);
  assert.equal(r.code, 0);
  assert.equal(r.err, '[1/1] delete bridge br0 ... done (7 ms)');
  assert.equal(r.out, 'Down complete: 1 step in 1.5 s.');
  const json = await run(['down', 'host.yaml', '--json']);
  assert.equal((JSON.parse(json.out) as Report).steps[0]!.id, 'link:br0');
});

test('down failure is reported like an apply failure', async () => {
  const r = await run(['down', 'host.yaml'], { down: failingApply(false) });
  assert.equal(r.code, 1);
  assert.match(r.err, /down failed at step 3/);
});

// ------------------------------------------------------------------------------------- status

test('status prints aligned tables', async () => {
  const r = await run(['status', 'host.yaml']);
  assert.equal(r.code, 0);
  const lines = r.out.split('\n');
  assert.equal(lines[0], 'Host lab (netns labns): applied');
  const header = lines.find((l) => l.startsWith('LINK'))!;
  const br = lines.find((l) => l.startsWith('br0'))!;
  assert.equal(header.indexOf('ADDRESSES'), br.indexOf('192.168.0.1/24'));
  assert.match(br, /br0\s+bridge\s+yes\s+up\s+192\.168\.0\.1\/24, 2001:db8::1\/64/);
  const vmHeader = lines.find((l) => l.startsWith('VM '))!;
  const web = lines.find((l) => l.startsWith('web '))!;
  const db = lines.find((l) => l.startsWith('db '))!;
  assert.match(web, /web\s+running\s+running\s+4242\s+192\.168\.0\.10\s+2001:db8::10\s+52:54:00:12:34:56\s+vmt-web/);
  assert.match(db, /db\s+stopped\s+-\s+-\s+192\.168\.0\.11\s+-/);
  assert.equal(vmHeader.indexOf('PID'), web.indexOf('4242'));
  assert.ok(lines.some((l) => /^web\s+tcp\s+8080\s+192\.168\.0\.10:80$/.test(l)));
  assert.ok(lines.some((l) => /^web\s+udp\s+6000-6010\s+192\.168\.0\.10:6000$/.test(l)));
  assert.ok(lines.includes('IPv6: routed, prefix 2001:db8::/64'));
  assert.ok(lines.some((l) => /proxy neighbours:\s+2001:db8::10$/.test(l)));
  assert.ok(lines.some((l) => /routes:\s+2001:db8::10\/128 dev br0$/.test(l)));
  assert.ok(lines.includes('dnsmasq: running (pid 777)'));
  assert.ok(lines.some((l) => /^192\.168\.0\.10\s+52:54:00:12:34:56\s+web\s+2030-01-02T03:04:05Z$/.test(l)));
  assert.ok(lines.some((l) => /^192\.168\.0\.11\s+52:54:00:12:34:57\s+-\s+never$/.test(l)));
  assert.ok(lines.every((l) => l === l.trimEnd()), 'no trailing blanks');
});

test('status names the steps an interrupted run left unconfirmed', async () => {
  const r = await run(['status', 'host.yaml'], { status: async () => ({ ...STATUS, pending: ['link:br0', 'vm:web'] }) });
  assert.equal(r.code, 0);
  assert.match(r.out, /^Host lab \(netns labns\): applied\nInterrupted: link:br0, vm:web recorded as intended, not confirmed \(the next apply or down settles them\)/);
});

test('status of an empty host', async () => {
  const empty: HostStatus = { ...STATUS, netns: undefined, vms: [], forwards: [], leases: [], applied: false } as HostStatus;
  delete (empty as { ipv6?: unknown }).ipv6;
  delete (empty as { dnsmasq?: unknown }).dnsmasq;
  delete (empty as { netns?: unknown }).netns;
  const r = await run(['status', 'host.yaml'], { status: async () => empty });
  assert.equal(r.code, 0);
  for (const s of ['Host lab: not applied', 'VMs: none', 'Forwards: none', 'IPv6: off', 'dnsmasq: not configured', 'Leases: none']) {
    assert.ok(r.out.split('\n').includes(s), s);
  }
});

test('status --json prints the HostStatus object', async () => {
  const r = await run(['--json', 'status', 'host.yaml']);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.out), JSON.parse(JSON.stringify(STATUS)));
});

// ------------------------------------------------------------------------- global options

test('plan, and only plan, starts reading the firewall before it loads the host file, in the namespace given', async () => {
  let log: Array<[string, unknown]> = [];
  const over: Partial<CliDeps> = {
    prefetchFirewall: (options) => void log.push(['prefetchFirewall', options]),
    loadHostFile: async (path) => {
      log.push(['loadHostFile', path]);
      return HOST;
    },
  };
  for (const argv of [['plan', 'h.yaml'], ['plan', 'h.yaml', '--json'], ['apply', 'h.yaml'], ['down', 'h.yaml'], ['status', 'h.yaml']]) {
    log = [];
    const r = await run(['--netns', 'lab', ...argv], over);
    assert.equal(r.code, 0, argv.join(' '));
    if (argv[0] === 'plan') assert.deepEqual(log, [['prefetchFirewall', { netns: 'lab' }], ['loadHostFile', 'h.yaml']], argv.join(' '));
    else assert.deepEqual(log, [['loadHostFile', 'h.yaml']], `${argv.join(' ')} reads the firewall after it locked the state, not before`);
  }
  // an invalid host file: the prefetch was started, the error is reported as always
  log = [];
  const bad = await run(['plan', 'h.yaml'], { ...over, loadHostFile: async () => Promise.reject(new HostSpecError([{ path: 'vms[0].ipv4', value: 'x', message: 'expected an IPv4 address' }], 'h.yaml')) });
  assert.equal(bad.code, 3);
  assert.match(bad.err, /vms\[0\]\.ipv4/);
  assert.deepEqual(log, [['prefetchFirewall', {}]]);
});

test('--netns and --state-dir reach HostOptions of every engine call', async () => {
  for (const argv of [['plan', 'h.yaml'], ['apply', 'h.yaml'], ['down', 'h.yaml'], ['status', 'h.yaml'], ['vm', 'start', 'web', '-f', 'h.yaml']]) {
    const r = await run(['--netns', 'lab', ...argv, '--state-dir', 'tmp/state']);
    assert.equal(r.code, 0, argv.join(' '));
    const c = r.calls.find((x) => x.fn !== 'loadHostFile')!;
    const opts = c.args[c.args.length - 1] as HostOptions;
    assert.equal(opts.netns, 'lab', argv.join(' '));
    assert.equal(opts.stateDir, resolve('tmp/state'), argv.join(' '));
  }
  const byPath = await run(['status', 'h.yaml', '--netns', '/proc/1/ns/net']);
  assert.deepEqual((call(byPath.calls, 'status').args[1] as HostOptions).netns, { path: '/proc/1/ns/net' });
  const none = await run(['status', 'h.yaml']);
  assert.deepEqual(call(none.calls, 'status').args[1], {});
});

test('--version prints the package version', async () => {
  const r = await run(['--version']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^vmhost \d+\.\d+\.\d+/);
});

// ------------------------------------------------------------------------------------- help

test('general help lists the commands and has examples', async () => {
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const r = await run(argv);
    assert.equal(r.code, 0);
    for (const c of ['plan', 'apply', 'down', 'status', 'vm start', 'vm stop', 'vm console', 'vm snapshot', 'vm snapshots', 'vm rollback', 'vm commit', 'vm snapshot-delete', 'demo']) assert.match(r.out, new RegExp(`\\n  ${c} `));
    assert.match(r.out, /Examples:\n {2}vmhost plan host\.yaml/);
    assert.match(r.out, /--netns NAME/);
    assert.match(r.out, /Exit codes:/);
  }
});

test('every command has help with examples', async () => {
  const cmds = [['plan'], ['apply'], ['down'], ['status'], ['recover'], ['vm'], ['vm', 'start'], ['vm', 'stop'], ['vm', 'console'], ['vm', 'snapshot'], ['vm', 'snapshots'], ['vm', 'rollback'], ['vm', 'commit'], ['vm', 'snapshot-delete'], ['demo']];
  for (const c of cmds) {
    for (const argv of [[...c, '--help'], ['help', ...c], [...c, 'x.yaml', '-h']]) {
      if (c.join(' ') === 'vm' && argv.length === 3 && argv[2] === '-h') continue;
      const r = await run(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.out, new RegExp(`^Usage: vmhost ${c.join(' ')}`), argv.join(' '));
      assert.match(r.out, /Examples:\n {2}(sudo )?(VMHOST_FILE=\S+ )?vmhost /, argv.join(' '));
      assert.equal(r.calls.length, 0, 'help loads nothing');
    }
  }
  assert.match((await run(['plan', '--help'])).out, /--detailed-exitcode/);
  assert.match((await run(['vm', 'stop', '--help'])).out, /--timeout SECONDS/);
  assert.match((await run(['vm', 'console', '--help'])).out, /--follow/);
  assert.match((await run(['vm', 'snapshot', '--help'])).out, /--name LABEL/);
  assert.match((await run(['down', '--help'])).out, /--delete-disks/);
  assert.match((await run(['vm', '--help'])).out, /\n  vm commit <name> \[label\] /);
});

test('no help text suggests a state directory in /tmp', async () => {
  const { commandHelp, generalHelp } = await import('../../packages/host/src/cli/index.js');
  const texts = [generalHelp(), ...['plan', 'apply', 'down', 'status', 'recover', 'vm', 'vm start', 'vm stop', 'vm console', 'vm snapshot', 'vm snapshots', 'vm rollback', 'vm commit', 'vm snapshot-delete', 'demo'].map((c) => commandHelp(c) ?? '')];
  for (const t of texts) assert.doesNotMatch(t, /--state-dir \/tmp/);
});

test('recover prints what it moved aside and rebuilt, and its notices; --force reaches the engine', async () => {
  const r = await run(['recover', 'host.yaml', '--force']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^Moved \/run\/vmhost\/lab\/state\.json aside to \/run\/vmhost\/lab\/state\.json\.corrupt-x\.\nRecovered 1 entry into \/run\/vmhost\/lab\/state\.json:\n {2}link br0$/);
  assert.match(r.err, /^note: sysctl net\.ipv4\.ip_forward is 1$/);
  assert.equal((call(r.calls, 'recover').args[1] as { force?: boolean }).force, true);
});

test('apply and down interrupted (HostAbortedError): what was undone or done; exit 130; notices print as notes', async () => {
  const step: Step = { id: 'link:br0', action: 'create', description: 'create bridge br0' };
  const a = await run(['apply', 'host.yaml'], {
    apply: async (_h, options) => {
      options?.onProgress?.({ type: 'notice', message: 'link:br0: an interrupted run had made it' });
      throw new HostAbortedError('apply', [step], [step], [], new Error('interrupted by SIGINT'));
    },
  });
  assert.equal(a.code, 130);
  assert.match(a.err, /note: link:br0: an interrupted run had made it/);
  assert.match(a.err, /vmhost: apply interrupted\n {2}undone \(1 step\):\n {4}\+ create bridge br0\nvmhost: the host is as it was before this apply\./);
  const d = await run(['down', 'host.yaml'], { down: async () => Promise.reject(new HostAbortedError('down', [step, step], [], [])) });
  assert.equal(d.code, 130);
  assert.match(d.err, /2 steps done; the state file records the rest: run 'vmhost down host\.yaml' again to finish/);
  const j = await run(['apply', 'host.yaml', '--json'], { apply: async () => Promise.reject(new HostAbortedError('apply', [], [], [])) });
  assert.equal(j.code, 130);
  assert.equal((JSON.parse(j.out) as { error: { code: string } }).error.code, 'EHOST_ABORTED');
});

const CONFLICTS: Conflict[] = [
  { id: 'link:br0', object: 'bridge br0', owner: 'web', message: 'bridge br0 belongs to host web (its owner mark: ifalias "vmhost:web")' },
  { id: 'link:krr-db', object: 'TAP krr-db', owner: null, message: 'TAP krr-db exists and was not created by vmhost (set vms[0].adopt: true to adopt it)', adopt: 'vms[0].adopt' },
];

test('plan with conflicts: the steps, a "!" line per conflict naming its owner, exit 1 (with --detailed-exitcode too)', async () => {
  for (const extra of [[], ['--detailed-exitcode']]) {
    const r = await run(['plan', 'host.yaml', ...extra], { plan: async () => ({ steps: STEPS.slice(1, 2), conflicts: CONFLICTS }) });
    assert.equal(r.code, 1);
    assert.deepEqual(r.out.split('\n'), [
      '+ add address 192.168.0.1/24 to br0',
      '! bridge br0 belongs to host web (its owner mark: ifalias "vmhost:web")',
      '! TAP krr-db exists and was not created by vmhost (set vms[0].adopt: true to adopt it)',
      '',
    ]);
    assert.equal(r.err, 'vmhost: plan: apply would refuse: 2 conflicts (host web, not created by vmhost)');
  }
  const j = await run(['plan', 'host.yaml', '--json'], { plan: async () => ({ steps: [], conflicts: CONFLICTS }) });
  assert.equal(j.code, 1);
  assert.deepEqual((JSON.parse(j.out) as Plan).conflicts, CONFLICTS);
});

test('apply refused by HostOwnerError: exit 1, every conflict named (and in --json, its code)', async () => {
  const r = await run(['apply', 'host.yaml'], { apply: async () => Promise.reject(new HostOwnerError(CONFLICTS)) });
  assert.equal(r.code, 1);
  assert.equal(r.err, `vmhost: apply: EHOST_OWNER: 2 conflicts: ${CONFLICTS[0]!.message}; ${CONFLICTS[1]!.message}`);
  const one = await run(['apply', 'host.yaml', '--json'], { apply: async () => Promise.reject(new HostOwnerError(CONFLICTS.slice(0, 1))) });
  assert.equal(one.code, 1);
  assert.deepEqual(JSON.parse(one.out), { error: { name: 'HostOwnerError', message: `EHOST_OWNER: ${CONFLICTS[0]!.message}`, code: 'EHOST_OWNER', conflicts: CONFLICTS.slice(0, 1) } });
});

test('status shows the conflicts and the shared sysctls held with other hosts', async () => {
  const r = await run(['status', 'host.yaml'], {
    status: async () => ({ ...STATUS, conflicts: CONFLICTS, shared: [{ key: 'net.ipv4.ip_forward', value: '1', original: '0', heldWith: ['web'] }, { key: 'net.ipv6.conf.all.forwarding', value: '1', original: '0', heldWith: [] }] }),
  });
  assert.equal(r.code, 0);
  const lines = r.out.split('\n');
  const at = lines.indexOf('Conflicts (apply refuses until they are gone): 2');
  assert.ok(at > 0, r.out);
  assert.deepEqual(lines.slice(at + 1, at + 3), [`  ! ${CONFLICTS[0]!.message}`, `  ! ${CONFLICTS[1]!.message}`]);
  assert.ok(lines.some((l) => /^ {2}net\.ipv4\.ip_forward=1\s+original 0\s+also held by web$/.test(l)), r.out);
  assert.ok(lines.some((l) => /^ {2}net\.ipv6\.conf\.all\.forwarding=1\s+original 0\s+held by this host only$/.test(l)), r.out);
});

test('a state file error names the file (exit 1)', async () => {
  const r = await run(['plan', 'host.yaml'], { plan: async () => Promise.reject(new HostStateError('/run/vmhost/lab/state.json', 'not a vmhost state file: empty')) });
  assert.equal(r.code, 1);
  assert.equal(r.err, 'vmhost: plan: EHOST_STATE_CORRUPT: /run/vmhost/lab/state.json: not a vmhost state file: empty');
});

test('the signal given to main reaches every engine call (the entry point aborts it on SIGINT/SIGTERM)', async () => {
  const ac = new AbortController();
  const out: string[] = [];
  const { deps, calls } = fakeDeps();
  await main(['apply', 'host.yaml'], { out: (s) => out.push(s), err: () => undefined }, deps, { signal: ac.signal });
  assert.equal((call(calls, 'apply').args[1] as HostOptions).signal, ac.signal);
});

// ------------------------------------------------------------------------------- usage errors

test('usage errors go to stderr with exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /Usage: vmhost/],
    [['plan'], /missing <file>/],
    [['plan', 'a.yaml', 'b.yaml'], /unexpected argument 'b\.yaml'/],
    [['plan', 'a.yaml', '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['vm'], /missing vm command/],
    [['vm', 'reboot', 'web'], /unknown vm command 'reboot'/],
    [['vm', 'start'], /missing <name>/],
    [['status', 'a.yaml', '--netns'], /argument missing/],
    [['status', 'a.yaml', '--netns', ''], /--netns needs a non-empty value/],
    [['vm', 'stop', 'web', '--timeout', 'soon'], /--timeout: expected a number of seconds/],
    [['demo', '--netns', 'x'], /--netns is not used by demo/],
    [['demo', 'extra'], /unexpected argument 'extra'/],
    [['help', 'nope'], /no help for unknown command 'nope'/],
    [['--json'], /missing command/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, re, argv.join(' '));
    assert.equal(r.out, '', argv.join(' '));
    assert.equal(r.calls.length, 0, argv.join(' '));
  }
  const r = await run(['plan', 'a.yaml', '--bogus']);
  assert.match(r.err, /Usage: vmhost plan \[options\] <file>\nRun 'vmhost plan --help' for more\./);
  assert.doesNotMatch(r.err, /To specify a positional/);
});

// ------------------------------------------------------------------------------- spec errors

test('an invalid host file prints FILE: path: message per problem and exits 3', async () => {
  const problems = [
    { path: 'bridge.ipv4', value: '192.168.0.1', message: 'expected an address with a prefix length' },
    { path: 'vms[1].name', value: 'Web_1', message: 'expected 1-11 characters of [a-z0-9-]' },
  ];
  const r = await run(['apply', 'bad.yaml'], { loadHostFile: async () => Promise.reject(new HostSpecError(problems, 'bad.yaml')) });
  assert.equal(r.code, 3);
  const lines = r.err.split('\n');
  assert.equal(lines[0], 'bad.yaml: bridge.ipv4: expected an address with a prefix length');
  assert.equal(lines[1], 'bad.yaml: vms[1].name: expected 1-11 characters of [a-z0-9-]');
  assert.match(r.err, /not a valid host file \(2 problems\)/);
  assert.ok(!r.calls.some((c) => c.fn === 'apply'));

  const json = await run(['plan', 'bad.yaml', '--json'], { loadHostFile: async () => Promise.reject(new HostSpecError(problems, 'bad.yaml')) });
  assert.equal(json.code, 3);
  const { error } = JSON.parse(json.out) as { error: { name: string; message: string; field: string; problems: unknown[] } };
  assert.equal(error.name, 'HostSpecError');
  assert.equal(error.field, 'bridge.ipv4');
  assert.equal(error.problems.length, 2);
});

test('a plain ValidationError from loading is a spec error too', async () => {
  const r = await run(['vm', 'start', 'web', '-f', 'x.yaml'], { loadHostFile: async () => Promise.reject(new ValidationError('uplink', 5, 'expected a string')) });
  assert.equal(r.code, 3);
  assert.match(r.err, /^x\.yaml: uplink: invalid uplink: 5: expected a string/);
});

// ------------------------------------------------------------------------------- other errors

test('other errors: one line, exit 1; stack only with --debug or VMHOST_DEBUG=1', async () => {
  const boom = async (): Promise<never> => {
    throw Object.assign(new Error("ENOENT: no such file or directory, open 'nope.yaml'"), { code: 'ENOENT' });
  };
  const r = await withEnv({ VMHOST_DEBUG: undefined }, () => run(['status', 'nope.yaml'], { loadHostFile: boom }));
  assert.equal(r.code, 1);
  assert.equal(r.err, "vmhost: status: ENOENT: no such file or directory, open 'nope.yaml'");
  const dbg = await withEnv({ VMHOST_DEBUG: undefined }, () => run(['status', 'nope.yaml', '--debug'], { loadHostFile: boom }));
  assert.match(dbg.err, /\n\s+at /);
  const env = await withEnv({ VMHOST_DEBUG: '1' }, () => run(['status', 'nope.yaml'], { loadHostFile: boom }));
  assert.match(env.err, /\n\s+at /);
  const codeOnly = await run(['status', 'h.yaml'], { status: async () => Promise.reject(Object.assign(new Error('setns failed'), { code: 'EPERM' })) });
  assert.equal(codeOnly.err, 'vmhost: status: EPERM: setns failed');
});

test('other errors with --json: { error: { name, message, field? } } on stdout', async () => {
  const r = await run(['status', 'h.yaml', '--json'], {
    status: async () => Promise.reject(new HostPreconditionError('uplink', 'eth9', 'no such interface')),
  });
  assert.equal(r.code, 1);
  const { error } = JSON.parse(r.out) as { error: Record<string, unknown> };
  assert.equal(error.name, 'HostPreconditionError');
  assert.equal(error.field, 'uplink');
  assert.match(String(error.message), /no such interface/);
});

// ---------------------------------------------------------------------------------------- vm

/** Options as passed, without the notice printer (`onProgress`). */
const noHooks = (o: unknown): Record<string, unknown> => Object.fromEntries(Object.entries(o as Record<string, unknown>).filter(([k]) => k !== 'onProgress'));

test('vm start passes the name and options; file from -f, VMHOST_FILE, else ./vmhost.yaml', async () => {
  const r = await withEnv({ VMHOST_FILE: 'env.yaml' }, () => run(['vm', 'start', 'web', '-f', 'flag.yaml', '--netns', 'lab']));
  assert.equal(r.code, 0);
  assert.equal(r.out, 'Started vm web.');
  assert.equal(call(r.calls, 'loadHostFile').args[0], 'flag.yaml');
  const c = call(r.calls, 'startVm');
  assert.equal(c.args[1], 'web');
  assert.deepEqual(noHooks(c.args[2]), { netns: 'lab' });
  const long = await run(['vm', 'start', '--file', 'long.yaml', 'web']);
  assert.equal(call(long.calls, 'loadHostFile').args[0], 'long.yaml');
  const env = await withEnv({ VMHOST_FILE: 'env.yaml' }, () => run(['vm', 'start', 'web']));
  assert.equal(call(env.calls, 'loadHostFile').args[0], 'env.yaml');
  const dflt = await withEnv({ VMHOST_FILE: undefined }, () => run(['vm', 'start', 'web']));
  assert.equal(call(dflt.calls, 'loadHostFile').args[0], 'vmhost.yaml');
  const json = await run(['vm', 'start', 'web', '--json']);
  assert.deepEqual(JSON.parse(json.out), { vm: 'web', started: true });
});

test('vm stop prints the ladder step; --timeout in seconds', async () => {
  const r = await run(['vm', 'stop', 'db', '--timeout', '2.5', '--state-dir', '/tmp/s']);
  assert.equal(r.code, 0);
  assert.equal(r.out, 'Stopped vm db by powerdown in 1.2 s.');
  const c = call(r.calls, 'stopVm');
  assert.equal(c.args[1], 'db');
  assert.deepEqual(c.args[2], { stateDir: '/tmp/s', timeoutMs: 2500 });
  const notRunning = await run(['vm', 'stop', 'db'], { stopVm: async () => ({ step: 'not-running', ms: 0 }) });
  assert.equal(notRunning.out, 'vm db was not running.');
  const kill = await run(['vm', 'stop', 'db'], { stopVm: async () => ({ step: 'sigkill', ms: 40_100 }) });
  assert.match(kill.out, /by sigkill/);
  const json = await run(['vm', 'stop', 'db', '--json']);
  assert.deepEqual(JSON.parse(json.out), { vm: 'db', step: 'powerdown', ms: 1234 });
});

test('vm snapshot passes --name as the label and prints the frozen and new images; --overlay is gone', async () => {
  const r = await run(['vm', 'snapshot', 'web', '--name', 'before-upgrade']);
  assert.equal(r.code, 0, r.err);
  const c = call(r.calls, 'snapshotVm');
  assert.equal(c.args[1], 'web');
  assert.deepEqual(noHooks(c.args[2]), { label: 'before-upgrade' });
  assert.match(r.out, /^Snapshot before-upgrade of vm web \(live, 80 ms\):\n {2}disk 0: frozen \/var\/lib\/vm\/web\.qcow2; now writing \/var\/lib\/vmhost\/host\/disks\/web\/d0-0123456789ab\.qcow2$/);
  const json = await run(['vm', 'snapshot', 'web', '--json']);
  assert.equal(JSON.parse(json.out).label, 'snap-20240501-120000');
  assert.deepEqual(noHooks(call(json.calls, 'snapshotVm').args[2]), {});
  const old = await run(['vm', 'snapshot', 'web', '--overlay', 'x.qcow2']);
  assert.equal(old.code, 2);
  assert.match(old.err, /Unknown option '--overlay'/);
});

test('vm snapshots, rollback, commit [label], snapshot-delete reach the engine with their arguments', async () => {
  const list = await run(['vm', 'snapshots', 'web']);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /LABEL +TAKEN +SIZE +DISKS\ns1 +2024-05-01T12:00:00\.000Z +3\.0 MiB +0/);
  assert.match(list.out, /disk 0:\n {2}  +s1 +3\.0 MiB +\/var\/lib\/vm\/web\.qcow2\n {2}\* +192\.0 KiB +\/var\/lib\/vmhost/);
  assert.equal(JSON.parse((await run(['vm', 'snapshots', 'web', '--json'])).out).snapshots[0].label, 's1');

  const rb = await run(['vm', 'rollback', 'web', 's1']);
  assert.equal(rb.code, 0, rb.err);
  assert.deepEqual(call(rb.calls, 'rollbackVm').args.slice(1, 3), ['web', 's1']);
  assert.deepEqual(noHooks(call(rb.calls, 'rollbackVm').args[3]), {});
  assert.match(rb.out, /^Rolled vm web back to s1 \(1 image\(s\) discarded, started again\) in 2\.5 s\.$/);
  assert.equal((await run(['vm', 'rollback', 'web'])).code, 2, 'the label is required');

  const all = await run(['vm', 'commit', 'web']);
  assert.equal(all.code, 0, all.err);
  assert.deepEqual(noHooks(call(all.calls, 'commitVm').args[2]), {});
  assert.match(all.out, /^Committed 2 image\(s\) of vm web disk 0 into \/var\/lib\/vm\/web\.qcow2 \(live, 230 ms\)\.$/);
  const into = await run(['vm', 'commit', 'web', 's1', '--timeout', '30']);
  assert.deepEqual(noHooks(call(into.calls, 'commitVm').args[2]), { label: 's1', timeoutMs: 30_000 });
  const extra = await run(['vm', 'commit', 'web', 's1', 's2']);
  assert.equal(extra.code, 2);
  assert.match(extra.err, /unexpected argument 's2'/);

  const del = await run(['vm', 'snapshot-delete', 'web', 's1']);
  assert.equal(del.code, 0, del.err);
  assert.deepEqual(call(del.calls, 'deleteVmSnapshot').args.slice(1, 3), ['web', 's1']);
  assert.deepEqual(noHooks(call(del.calls, 'deleteVmSnapshot').args[3]), {});
  assert.match(del.out, /^Deleted snapshot s1 of vm web \(stopped, 40 ms\)\.$/);

  // the engine's notices (an interrupted operation finished first) print on stderr
  const noted = await run(['vm', 'commit', 'web'], {
    commitVm: async (_h, name, options) => {
      options?.onProgress?.({ type: 'notice', message: 'VM web: finishing the interrupted snapshot s1 of its disks' });
      return { vm: name, label: null, live: false, disks: [], ms: 1 };
    },
  });
  assert.equal(noted.err, 'note: VM web: finishing the interrupted snapshot s1 of its disks');
  assert.equal(noted.out, 'vm web: nothing to commit.');
});

test('down --delete-disks reaches the engine; without it, down keeps the disks', async () => {
  const keep = await run(['down', 'host.yaml']);
  assert.equal((call(keep.calls, 'down').args[1] as { deleteDisks?: boolean }).deleteDisks, undefined);
  const del = await run(['down', 'host.yaml', '--delete-disks']);
  assert.equal(del.code, 0, del.err);
  assert.equal((call(del.calls, 'down').args[1] as { deleteDisks?: boolean }).deleteDisks, true);
});

test('vm console prints the console file; a missing file is an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-cli-'));
  try {
    const file = join(dir, 'console.log');
    writeFileSync(file, 'Booting Linux\r\nlogin: root\r\n');
    const r = await run(['vm', 'console', 'web', '--netns', 'lab'], { consoleFile: () => file });
    assert.equal(r.code, 0);
    assert.equal(r.out, 'Booting Linux\nlogin: root');
    const json = await run(['vm', 'console', 'web', '--json'], { consoleFile: async () => file });
    assert.deepEqual(JSON.parse(json.out), { vm: 'web', file, content: 'Booting Linux\r\nlogin: root\r\n' });
    const missing = await run(['vm', 'console', 'web', '--netns', 'lab']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /vm web has no console log yet \(\/nonexistent\/console\.log\)/);
    const c = call(missing.calls, 'consoleFile');
    assert.equal(c.args[1], 'web');
    assert.deepEqual(c.args[2], { netns: 'lab' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vm console --follow tails the file until SIGINT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-cli-'));
  try {
    const file = join(dir, 'console.log');
    writeFileSync(file, 'first\n');
    const out: string[] = [];
    const { deps } = fakeDeps({ consoleFile: () => file });
    const done = main(['vm', 'console', 'web', '--follow'], { out: (s) => out.push(s), err: () => {} }, deps);
    const until = async (pred: () => boolean): Promise<void> => {
      for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(pred(), `timed out; got ${JSON.stringify(out)}`);
    };
    await until(() => out.includes('first'));
    appendFileSync(file, 'second\nthird');
    await until(() => out.includes('second'));
    process.emit('SIGINT');
    assert.equal(await done, 0);
    assert.deepEqual(out, ['first', 'second', 'third']);
    assert.equal(process.listenerCount('SIGINT'), 0, 'the SIGINT handler is removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('followFile waits for the file and starts over when it is replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-cli-'));
  try {
    const file = join(dir, 'console.log');
    const lines: string[] = [];
    let waited = 0;
    const ac = new AbortController();
    const done = followFile(file, (l) => lines.push(l), ac.signal, { intervalMs: 10, onWaiting: () => waited++ });
    // the file is written only once followFile has seen it missing (a fixed sleep raced a slow first stat)
    for (let i = 0; i < 500 && waited === 0; i++) await new Promise((r) => setTimeout(r, 10));
    writeFileSync(file, 'a\nb\n');
    for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    writeFileSync(file, 'c\n'); // truncated and rewritten (the VM was started again)
    for (let i = 0; i < 100 && lines.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await done;
    assert.equal(waited, 1);
    assert.deepEqual(lines, ['a', 'b', 'c']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vm console --follow with --json is a usage error', async () => {
  const r = await run(['vm', 'console', 'web', '--follow', '--json']);
  assert.equal(r.code, 2);
});

// -------------------------------------------------------------------------------------- demo

test('demo calls runDemo with --keep/--json and exits by its result', async () => {
  const r = await run(['demo', '--keep']);
  assert.equal(r.code, 0);
  assert.equal(r.out, 'demo: all checks passed');
  const c = call(r.calls, 'runDemo');
  assert.deepEqual({ ...(c.args[0] as object), out: undefined }, { keep: true, json: false, out: undefined });
  assert.ok(!r.calls.some((x) => x.fn === 'loadHostFile'), 'demo needs no host file');
  const failed = await run(['demo', '--json'], { runDemo: async (o) => (o?.json === true ? false : true) });
  assert.equal(failed.code, 1);
  const thrown = await run(['demo'], { runDemo: async () => Promise.reject(new Error('not root')) });
  assert.equal(thrown.code, 1);
  assert.equal(thrown.err, 'vmhost: demo: not root');
});

// -------------------------------------------------------------------------------- guest build

test('guest build builds into the default cache, or --dir (made absolute), and prints the directory', async () => {
  const r = await run(['guest', 'build']);
  assert.equal(r.code, 0);
  assert.equal(r.out, '/root/.cache/vmhost/guest');
  assert.equal(r.err, 'downloading linux-image-6.1.0-99-amd64', 'progress on stderr');
  assert.deepEqual({ ...(call(r.calls, 'buildGuest').args[0] as object), log: undefined }, { force: false, log: undefined });
  const d = await run(['guest', 'build', '--dir', 'rel/guest', '--force', '--json']);
  assert.equal(d.code, 0);
  assert.deepEqual({ ...(call(d.calls, 'buildGuest').args[0] as object), log: undefined }, { dir: resolve('rel/guest'), force: true, log: undefined });
  assert.equal((JSON.parse(d.out) as { dir: string }).dir, resolve('rel/guest'));
});

test('guest needs its subcommand; its help; it takes no host options', async () => {
  const missing = await run(['guest']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^vmhost: missing guest command: build$/m);
  const unknown = await run(['guest', 'boot']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown guest command 'boot'/);
  const help = await run(['guest', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: vmhost guest build \[--dir DIR\] \[--force\]$/m);
  assert.match((await run(['--help'])).out, /^ {2}guest build +Build the tiny test guest/m);
  const ns = await run(['guest', 'build', '--netns', 'x']);
  assert.equal(ns.code, 2);
  assert.ok(!ns.calls.some((c) => c.fn === 'buildGuest'));
  const failed = await run(['guest', 'build'], { buildGuest: async () => Promise.reject(new GuestBuildError('apt-get download failed')) });
  assert.equal(failed.code, 1);
  assert.match(failed.err, /^vmhost: guest build: EHOST_GUEST_BUILD: test guest: apt-get download failed$/m);
});

// ------------------------------------------------------------------------------------- table

test('formatTable aligns columns and ignores colour escapes in widths', () => {
  const t = formatTable(['A', 'LONGER', 'C'], [
    ['xx', '\x1b[32my\x1b[0m', 'z'],
    ['x', 'yyyyyyyy', ''],
  ]);
  assert.equal(t, 'A   LONGER    C\nxx  \x1b[32my\x1b[0m         z\nx   yyyyyyyy');
});

test('run: one line per event (text, or JSON with --json), the file made absolute, SIGHUP reloads, the signal stops it (exit 0)', async () => {
  const out: string[] = [];
  const { deps, calls } = fakeDeps();
  const stop = new AbortController();
  let hangup: (() => void) | undefined;
  const done = main(['--state-dir', '/run/x', 'run', 'host.yaml', '--metrics', '127.0.0.1:9464'], { out: (s) => out.push(s), err: () => undefined }, deps, { signal: stop.signal, onHangup: (l) => (hangup = l) });
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(hangup, 'run registers a SIGHUP listener');
  hangup();
  stop.abort();
  assert.equal(await done, 0);
  const opts = call(calls, 'service').args[1] as { file: string; metrics: string; stateDir: string; signal: AbortSignal };
  assert.equal(opts.file, join(process.cwd(), 'host.yaml'));
  assert.equal(opts.metrics, '127.0.0.1:9464');
  assert.equal(opts.stateDir, '/run/x');
  assert.equal(opts.signal, stop.signal);
  assert.deepEqual(call(calls, 'reload').args, ['SIGHUP']);
  assert.ok(calls.some((c) => c.fn === 'service.stopped'));
  assert.deepEqual(out, ['2030-01-02T03:04:05.000Z applied: host lab applied: 0 step(s) in 5 ms']);
  const j = await run(['run', 'host.yaml', '--json']);
  assert.equal(j.code, 0);
  assert.deepEqual(JSON.parse(j.out), { time: '2030-01-02T03:04:05.000Z', type: 'applied', message: 'host lab applied: 0 step(s) in 5 ms', ms: 5 });
});

test('systemd-unit prints a unit: ExecStart runs this CLI with the absolute host file and the global options, KillMode=process, the directories', async () => {
  const r = await run(['--netns', 'lab', '--state-dir', '/run/vmhost-lab', 'systemd-unit', 'host.yaml', '--metrics', '127.0.0.1:9464']);
  assert.equal(r.code, 0);
  const lines = r.out.split('\n');
  const sections = lines.filter((l) => /^\[\w+\]$/.test(l));
  assert.deepEqual(sections, ['[Unit]', '[Service]', '[Install]']);
  const kv = new Map(lines.filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const exec = kv.get('ExecStart')!.split(' ');
  assert.equal(exec[0], process.execPath);
  assert.ok(exec.some((w) => /\/cli\.(ts|js)$/.test(w)), exec.join(' '));
  assert.deepEqual(exec.slice(-8), ['--netns', 'lab', '--state-dir', '/run/vmhost-lab', '--metrics', '127.0.0.1:9464', 'run', join(process.cwd(), 'host.yaml')]);
  assert.equal(kv.get('After'), 'network-online.target');
  assert.equal(kv.get('Restart'), 'on-failure');
  assert.equal(kv.get('KillMode'), 'process');
  assert.equal(kv.get('RuntimeDirectory'), 'vmhost');
  assert.equal(kv.get('RuntimeDirectoryPreserve'), 'yes');
  assert.equal(kv.get('StateDirectory'), 'vmhost');
  assert.equal(kv.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(kv.get('WantedBy'), 'multi-user.target');
});

test('onCommand: called with the command name once its host file is read, or before a file-less command runs; not for a file that fails', async () => {
  const seen: string[] = [];
  const io = { out: (): void => undefined, err: (): void => undefined };
  const hook = { onCommand: (n: string): void => void seen.push(n) };
  const { deps } = fakeDeps({
    loadHostFile: async () => {
      seen.push('(read)');
      return HOST;
    },
  });
  assert.equal(await main(['plan', 'host.yaml'], io, deps, hook), 0);
  assert.deepEqual(seen, ['(read)', 'plan']);
  await main(['vm', 'stop', 'web', '-f', 'host.yaml'], io, deps, hook);
  assert.deepEqual(seen, ['(read)', 'plan', '(read)', 'vm stop']);
  await main(['systemd-unit', '--help'], io, deps, hook);
  assert.deepEqual(seen.length, 4, 'help runs no command');
  const bad = fakeDeps({ loadHostFile: async () => Promise.reject(new HostSpecError([{ path: 'name', value: 1, message: 'bad' }], 'host.yaml')) });
  assert.equal(await main(['apply', 'host.yaml'], io, bad.deps, hook), 3);
  assert.deepEqual(seen.length, 4, 'a host file that fails: no command runs');
  await main(['guest', 'build', '--help'], io, deps, hook);
  assert.deepEqual(seen.length, 4);
  // a command without a host file: before it runs
  await main(['demo'], io, deps, hook);
  assert.deepEqual(seen.slice(4), ['demo']);
});
