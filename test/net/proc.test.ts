// The process module of @vmhost/net (packages/net/src/proc): /proc facts (state, parent, process
// group, start time, also for a command name with spaces and parentheses), pidfiles, owner records,
// and terminate: a signal ladder by pid, with real child processes: a `sleep`, a process that
// ignores SIGTERM, a process group whose leader started a child of its own; the open-file limit
// of this process (checked against /proc/PID/limits, also a child's; restored afterwards); watchExit
// (pidfd): a child killed, a process that is not our child, one gone before the watch, a closed watch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as kvm from '@vmhost/kvm';
import {
  cmdline,
  formatOwnerRecord,
  groupMembers,
  isAlive,
  isOwnerAlive,
  noFileLimit,
  parseOwnerRecord,
  procStat,
  raiseNoFileLimit,
  readPidfile,
  selfOwner,
  sendSignal,
  setNoFileLimit,
  terminate,
  ValidationError,
  watchExit,
} from '@vmhost/net';

/** A pid that cannot exist (above pid_max's ceiling). */
const NO_PID = 2 ** 22 + 1;

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-proc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Spawns a child, killed after the test whatever happens; resolves once it runs. */
async function child(t: { after(fn: () => void): void }, cmd: string, args: string[], opts: { detached?: boolean } = {}): Promise<ChildProcess> {
  const c = spawn(cmd, args, { detached: opts.detached ?? false, stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => {
    if (c.pid !== undefined) sendSignal(c.pid, 'SIGKILL', { group: opts.detached === true });
  });
  await new Promise((resolve, reject) => {
    c.once('spawn', resolve);
    c.once('error', reject);
  });
  return c;
}

/** A node child that ignores SIGTERM, resolved once its handler is installed. */
async function stubborn(t: { after(fn: () => void): void }): Promise<ChildProcess> {
  const c = await child(t, process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"]);
  await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
  return c;
}

const exited = (c: ChildProcess): Promise<NodeJS.Signals | null> =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve(c.signalCode) : new Promise((r) => c.once('exit', (_code, sig) => r(sig)));

test('procStat: this process, with a start time; undefined for a pid that does not exist or is no pid', () => {
  const me = procStat(process.pid);
  assert.ok(me && /^[RS]$/.test(me.state), JSON.stringify(me));
  assert.equal(me.ppid, process.ppid);
  assert.ok(Number.isSafeInteger(me.startTime) && me.startTime > 0);
  assert.equal(procStat(process.pid)?.startTime, me.startTime, 'stable');
  for (const bad of [NO_PID, 0, -1, 1.5, Number.NaN]) assert.equal(procStat(bad), undefined, String(bad));
  assert.equal(isAlive(NO_PID), false);
  assert.equal(cmdline(NO_PID), undefined);
});

test('procStat and groupMembers: a detached child leads its own group, also with a command name like "a) b (c"; a zombie is not alive', async (t) => {
  const odd = join(tmp(t), 'a) b (c');
  symlinkSync('/bin/sleep', odd);
  const c = await child(t, odd, ['30'], { detached: true });
  const pid = c.pid!;
  const st = procStat(pid);
  assert.deepEqual({ ppid: st?.ppid, pgid: st?.pgid }, { ppid: process.pid, pgid: pid });
  assert.ok(st!.startTime >= procStat(process.pid)!.startTime);
  assert.deepEqual(groupMembers(pid), [pid]);
  assert.deepEqual(cmdline(pid), [odd, '30']);
  c.kill('SIGKILL');
  await exited(c);
  assert.deepEqual(groupMembers(pid), []);
  assert.equal(isAlive(pid), false);
});

test('readPidfile: the pid; undefined for a missing file, text, zero or a negative number', (t) => {
  const dir = tmp(t);
  const f = join(dir, 'x.pid');
  writeFileSync(f, '1234\n');
  assert.equal(readPidfile(f), 1234);
  for (const bad of ['', 'abc', '0', '-5', '12.5']) {
    writeFileSync(f, bad);
    assert.equal(readPidfile(f), undefined, bad);
  }
  assert.equal(readPidfile(join(dir, 'missing')), undefined);
});

test('owner records: PID STARTTIME; alive only while that very process runs; old pid-only records', async (t) => {
  const me = selfOwner();
  assert.equal(formatOwnerRecord(me), `${process.pid} ${me.startTime}\n`);
  assert.deepEqual(parseOwnerRecord(formatOwnerRecord()), me);
  assert.equal(isOwnerAlive(me), true);
  assert.equal(isOwnerAlive({ pid: process.pid, startTime: me.startTime! + 1 }), false, 'another start time: a reused pid');
  assert.equal(isOwnerAlive({ pid: process.pid, startTime: undefined }), true, 'a record without start time');
  assert.deepEqual(parseOwnerRecord(`${process.pid}\n`), { pid: process.pid, startTime: undefined });
  for (const bad of ['', 'x 1', '0 5', '-3']) assert.equal(parseOwnerRecord(bad), undefined, bad);
  assert.equal(isOwnerAlive(undefined), false);
  const c = await child(t, 'sleep', ['30']);
  const owner = { pid: c.pid!, startTime: procStat(c.pid!)!.startTime };
  assert.equal(isOwnerAlive(owner), true);
  c.kill('SIGKILL');
  await exited(c);
  assert.equal(isOwnerAlive(owner), false, 'dead (a zombie or reaped)');
});

test('terminate: a sleep ends at SIGTERM; a process already gone is reported so without a signal', async (t) => {
  const c = await child(t, 'sleep', ['30']);
  const r = await terminate(c.pid!);
  assert.deepEqual({ gone: r.gone, signal: r.signal }, { gone: true, signal: 'SIGTERM' });
  assert.equal(await exited(c), 'SIGTERM');
  const again = await terminate(c.pid!);
  assert.deepEqual({ gone: again.gone, signal: again.signal }, { gone: true, signal: null });
});

test('terminate: a process that ignores SIGTERM is ended by the next rung, SIGKILL', async (t) => {
  const c = await stubborn(t);
  const r = await terminate(c.pid!, { ladder: [{ signal: 'SIGTERM', waitMs: 300 }, { signal: 'SIGKILL', waitMs: 5_000 }] });
  assert.deepEqual({ gone: r.gone, signal: r.signal }, { gone: true, signal: 'SIGKILL' });
  assert.ok(r.ms >= 300, `waited the SIGTERM rung out first (${r.ms} ms)`);
  assert.equal(await exited(c), 'SIGKILL');
});

test('terminate: when it survives the whole ladder, gone is false and the process still runs', async (t) => {
  const c = await stubborn(t);
  const r = await terminate(c.pid!, { signal: 'SIGTERM', waitMs: 100 });
  assert.deepEqual({ gone: r.gone, signal: r.signal }, { gone: false, signal: null });
  assert.equal(isAlive(c.pid!), true);
  const k = await terminate(c.pid!, { signal: 'SIGKILL' });
  assert.equal(k.gone, true);
});

test('terminate with group: the leader and what it started end together; without, the grandchild survives', async (t) => {
  // A detached sh (its own process group) that starts a sleep of its own and waits for it.
  const start = async (): Promise<{ leader: number; grandchild: number }> => {
    const c = await child(t, '/bin/sh', ['-c', 'sleep 30 & wait'], { detached: true });
    const leader = c.pid!;
    // until the forked child has exec'd sleep (before that its cmdline is still sh's)
    const isSleep = (p: number): boolean => p !== leader && cmdline(p)?.join(' ') === 'sleep 30';
    let grandchild = groupMembers(leader).find(isSleep);
    for (let i = 0; i < 500 && grandchild === undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
      grandchild = groupMembers(leader).find(isSleep);
    }
    assert.ok(grandchild !== undefined, `the group has its sleep: ${groupMembers(leader).join(' ')}`);
    return { leader, grandchild };
  };
  const a = await start();
  const ra = await terminate(a.leader, { group: 'auto' });
  assert.deepEqual({ gone: ra.gone, signal: ra.signal }, { gone: true, signal: 'SIGTERM' });
  assert.equal(isAlive(a.grandchild), false);
  assert.deepEqual(groupMembers(a.leader), []);

  const b = await start();
  const rb = await terminate(b.leader, { signal: 'SIGKILL' });
  assert.equal(rb.gone, true);
  assert.equal(isAlive(b.grandchild), true, 'only the leader was signalled');
  assert.equal((await terminate(b.grandchild, { signal: 'SIGKILL' })).gone, true);
});

test('terminate validates: not this process, a positive pid, one of signal and ladder, waits >= 0', async () => {
  for (const [pid, opts, field] of [
    [process.pid, {}, 'pid'],
    [0, {}, 'pid'],
    [1.5, {}, 'pid'],
    [NO_PID, { signal: 'SIGTERM', ladder: [] }, 'signal'],
    [NO_PID, { ladder: [] }, 'ladder'],
    [NO_PID, { ladder: [{ signal: 'SIGTERM', waitMs: -1 }] }, 'ladder[0].waitMs'],
  ] as const) {
    await assert.rejects(terminate(pid, opts as Parameters<typeof terminate>[1]), (e: unknown) => e instanceof ValidationError && e.field === field);
  }
});

test('@vmhost/kvm re-exports the process helpers of @vmhost/net (the same functions)', () => {
  assert.equal(kvm.procStat, procStat);
  assert.equal(kvm.isAlive, isAlive);
  assert.equal(kvm.readPidfile, readPidfile);
  assert.equal(kvm.groupMembers, groupMembers);
  assert.equal(kvm.cmdline, cmdline);
});

/** "Max open files" of /proc/PID/limits: the oracle of the open-file limit. */
function procNoFile(pid: number | 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/);
  const n = (s: string | undefined): number => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(soft), hard: n(hard) };
}

test('the open-file limit: read, lowered, raised up to the hard limit; a child inherits it', async (t) => {
  const before = noFileLimit();
  assert.deepEqual(before, procNoFile('self'));
  t.after(() => setNoFileLimit(before));
  assert.ok(before.soft > 64, `soft limit ${before.soft}`);
  setNoFileLimit({ soft: 64, hard: before.hard });
  assert.deepEqual(procNoFile('self'), { soft: 64, hard: before.hard });
  const c = await child(t, 'sleep', ['30']);
  assert.deepEqual(procNoFile(c.pid!), { soft: 64, hard: before.hard }, 'a child inherits the limit');
  // raise: never lowers, goes up to what is asked within the hard limit
  assert.deepEqual(raiseNoFileLimit(32), { soft: 64, hard: before.hard });
  const want = Math.min(before.hard, 100);
  assert.deepEqual(raiseNoFileLimit(want), { soft: want, hard: before.hard });
  assert.deepEqual(procNoFile('self'), { soft: want, hard: before.hard });
  setNoFileLimit(before);
  assert.deepEqual(procNoFile('self'), before);
  for (const [v, field] of [
    [{ soft: 10, hard: 5 }, 'limit.soft'],
    [{ soft: -1, hard: 5 }, 'limit.soft'],
    [{ soft: 1, hard: 1.5 }, 'limit.hard'],
    [null, 'limit'],
  ] as const) {
    assert.throws(() => setNoFileLimit(v as never), (e: unknown) => e instanceof ValidationError && e.field === field);
  }
  assert.throws(() => raiseNoFileLimit(0), (e: unknown) => e instanceof ValidationError && e.field === 'wanted');
  assert.deepEqual(noFileLimit(), before);
});

test('watchExit: resolves when a child is killed, and for a process that is not our child (a grandchild, re-parented); at once for a pid gone before; never after close()', async (t) => {
  const c = await child(t, 'sleep', ['30']);
  const w = watchExit(c.pid!);
  assert.equal(w.done, false);
  const first = await Promise.race([w.exited.then(() => 'exited'), new Promise((r) => setImmediate(() => r('pending')))]);
  assert.equal(first, 'pending', 'a live process: not exited');
  c.kill('SIGKILL');
  await w.exited;
  assert.equal(w.done, true);
  assert.equal(await exited(c), 'SIGKILL');
  // a grandchild: its parent (sh) exits at once, so the sleep is not our child
  const sh = await child(t, 'sh', ['-c', 'sleep 30 & echo $!']);
  const grand = Number(await new Promise<string>((r) => sh.stdout!.once('data', (d: Buffer) => r(d.toString().trim()))));
  t.after(() => sendSignal(grand, 'SIGKILL'));
  await exited(sh);
  assert.ok(isAlive(grand));
  const wg = watchExit(grand);
  sendSignal(grand, 'SIGTERM');
  await wg.exited;
  assert.equal(isAlive(grand), false);
  // gone before: resolved at once
  const gone = watchExit(NO_PID);
  await gone.exited;
  assert.equal(gone.done, true);
  // closed: never resolves, even when the process exits
  const c2 = await child(t, 'sleep', ['30']);
  const w2 = watchExit(c2.pid!);
  w2.close();
  w2.close();
  c2.kill('SIGKILL');
  await exited(c2);
  const after = await Promise.race([w2.exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('pending'), 50))]);
  assert.equal(after, 'pending');
  for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 31]) assert.throws(() => watchExit(bad), (e: unknown) => e instanceof ValidationError && e.field === 'pid', String(bad));
});
